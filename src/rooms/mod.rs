//! The room service: allocation, replenishment, deletion, reconciliation and metrics, as plain
//! async functions over the Pexip client and the queues. Knows nothing of HTTP.
//!
//! Safety rules this module keeps (see docs/ARCHITECTURE.md, Safety rules):
//! - a room reaches at most one caller: whoever deletes its pool message owns it, a room that
//!   already carries a tag is never handed out again, and a room a tagging PATCH was sent to
//!   never goes back to the pool (it is quarantined);
//! - a video call gets at most one room: its allocation record ([`crate::locks`]) names it,
//!   across instances;
//! - a room is deleted only when it is ours (our name prefix or our tag), not persistent, not
//!   live according to Pexip's status API, and — when quarantined — not the room its call's
//!   record names;
//! - the explicit room routes (read, update, delete, the agent's read) see only managed rooms:
//!   ours by name or tag, or persistent; any other VMR on the node is "not found" to them;
//! - deletion messages that fail stay for redelivery until they are moved to the poison queue.

mod allocate;
mod bulk;
mod events;
mod gc;
mod health;
mod manage;
mod metrics;
mod reconcile;
mod stats;
mod turns;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use tokio_util::task::TaskTracker;

pub use allocate::{Allocation, AllocationSource};
pub use events::EventReport;
pub use gc::GcReport;
pub use health::{DeepHealth, HealthReport};
pub use manage::{RoomPatch, RoomPatchError};
pub use metrics::MetricsReport;
pub use reconcile::{ReconcileReport, TopUpReport};
pub use stats::ServiceStats;

use crate::config::RoomSettings;
use crate::domain::{PinPair, RoomName};
use crate::locks::{ALLOCATION_CONTAINER, AllocationLocks, LockError, LockService};
use crate::pexip::{AutomaticParticipantRef, Conference, NewConference, PexipClient, PexipError};
use crate::queue::{DELETION_QUEUE, POOL_QUEUE, Queue, QueueError, QueueService, poison_name};

/// Why a room operation failed, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum RoomsError {
    /// No room has this name.
    #[error("room not found")]
    NotFound,
    /// The room is persistent (`test_`, `vkiosk_`, ...) and this service never deletes it.
    #[error("room is persistent and cannot be deleted")]
    Persistent,
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
    /// A room update that may not be written.
    #[error("{0}")]
    Patch(#[from] RoomPatchError),
    /// Pexip refused or failed.
    #[error("Pexip: {0}")]
    Pexip(#[from] PexipError),
    /// The queues failed.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// The allocation records failed.
    #[error("allocation records: {0}")]
    Lock(#[from] LockError),
    /// The same kind of job is already running (one at a time).
    #[error("{0}")]
    Busy(String),
    /// A rate limit of this service: try again after `retry_after`.
    #[error("{detail}")]
    QuotaExceeded {
        detail: String,
        retry_after: std::time::Duration,
    },
}

/// The room service. Cheap to clone; one per process.
#[derive(Clone)]
pub struct RoomService {
    inner: Arc<Inner>,
}

struct Inner {
    /// Caller-priority client; `.background()` for work no caller waits on.
    pexip: PexipClient,
    /// `room-creation-queue`: rooms ready to hand out.
    pool: Queue,
    /// Where garbled pool messages go.
    pool_poison: Queue,
    /// `room-deletion-queue`: rooms whose conference ended.
    deletion: Queue,
    /// Where deletion messages go after failing too often.
    deletion_poison: Queue,
    /// Each video call's allocation record: which room it has, across instances.
    locks: AllocationLocks,
    /// Creates for one video call take turns within this process (to spare the records
    /// their polling; see `turns.rs`).
    tag_turns: turns::TagTurns,
    settings: RoomSettings,
    stats: stats::Counters,
    /// Background work (replenishment, bulk jobs), awaited on graceful shutdown.
    tasks: TaskTracker,
    /// Set once the queues are known to exist.
    queues_ready: AtomicBool,
    /// Set while a background top-up runs, so a burst of pool-empty allocations starts one.
    top_up_running: AtomicBool,
    /// Pool rooms this process is creating right now (created on Pexip, not yet enqueued).
    /// A top-up counts them as in the pool: without that, a top-up started while
    /// replenishments are in flight creates their rooms a second time.
    pool_creating: AtomicUsize,
    /// Bulk creates: one at a time, and the rooms they asked for in the last hour.
    bulk: bulk::BulkJobs,
    /// Counters at the previous metrics run, to report "since the last run".
    last_metrics: std::sync::Mutex<Option<metrics::Baseline>>,
}

impl RoomService {
    /// Build the service over a Pexip client, a queue service and a record service (the
    /// same storage account). No I/O.
    pub fn new(
        pexip: PexipClient,
        queues: &QueueService,
        records: &LockService,
        settings: RoomSettings,
    ) -> Result<Self, RoomsError> {
        let named = |name: &str| queues.queue(&format!("{}{name}", settings.queue_prefix));
        let container =
            records.store(&format!("{}{ALLOCATION_CONTAINER}", settings.queue_prefix))?;
        let locks = AllocationLocks::new(container, settings.claim_timeout);
        Ok(Self {
            inner: Arc::new(Inner {
                pexip,
                pool: named(POOL_QUEUE)?,
                pool_poison: named(&poison_name(POOL_QUEUE))?,
                deletion: named(DELETION_QUEUE)?,
                deletion_poison: named(&poison_name(DELETION_QUEUE))?,
                locks,
                tag_turns: turns::TagTurns::default(),
                settings,
                stats: stats::Counters::default(),
                tasks: TaskTracker::new(),
                top_up_running: AtomicBool::new(false),
                pool_creating: AtomicUsize::new(0),
                bulk: bulk::BulkJobs::default(),
                queues_ready: AtomicBool::new(false),
                last_metrics: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Create the four queues and the allocation records' container if they do not exist.
    /// Idempotent, and a no-op once it has succeeded: `serve` calls it at start and every
    /// timer run calls it again, so storage that was down at start is set up by the next run.
    pub async fn ensure_queues(&self) -> Result<(), RoomsError> {
        let i = &self.inner;
        if i.queues_ready.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        for q in [&i.pool, &i.pool_poison, &i.deletion, &i.deletion_poison] {
            q.ensure_exists().await?;
        }
        i.locks.ensure_exists().await?;
        i.queues_ready
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The settings the service runs with.
    pub fn settings(&self) -> &RoomSettings {
        &self.inner.settings
    }

    /// The Pexip client (health checks use it).
    pub fn pexip(&self) -> &PexipClient {
        &self.inner.pexip
    }

    /// The pool queue (health checks and tests use it).
    pub fn pool_queue(&self) -> &Queue {
        &self.inner.pool
    }

    /// The deletion queue.
    pub fn deletion_queue(&self) -> &Queue {
        &self.inner.deletion
    }

    /// The video calls' allocation records (tests read them).
    pub fn allocation_records(&self) -> &AllocationLocks {
        &self.inner.locks
    }

    /// The first configured automatic participant (`ROOM_AUTOMATIC_PARTICIPANTS`) the
    /// Management Node does not have, if any: with it every room create would be refused.
    pub async fn missing_automatic_participant(
        &self,
    ) -> Result<Option<AutomaticParticipantRef>, PexipError> {
        for participant in &self.inner.settings.automatic_participants {
            if !self
                .inner
                .pexip
                .automatic_participant_exists(*participant)
                .await?
            {
                return Ok(Some(*participant));
            }
        }
        Ok(None)
    }

    /// Cumulative counters since start.
    pub fn stats(&self) -> ServiceStats {
        self.inner.stats.snapshot()
    }

    /// Stop accepting background work and wait (up to `timeout`) for what is running, so a
    /// SIGTERM does not cut a replenishment between "room created" and "room enqueued".
    pub async fn shutdown(&self, timeout: std::time::Duration) {
        self.inner.tasks.close();
        if tokio::time::timeout(timeout, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.inner.tasks.len(),
                "background work still running at shutdown"
            );
        }
    }

    /// Wait until all background work started so far has finished (tests, benchmarks).
    pub async fn background_idle(&self) {
        let tasks = &self.inner.tasks;
        // TaskTracker::wait needs a closed tracker; reopen afterwards so work can continue.
        tasks.close();
        tasks.wait().await;
        tasks.reopen();
    }

    /// True for rooms this service never deletes. The prefix is compared ignoring ASCII case:
    /// `TEST_lobby` is as much an operator's room as `test_lobby`, and a guard that a
    /// capital letter defeats would not be one.
    fn is_persistent(&self, name: &str) -> bool {
        self.inner.settings.persistent_prefixes.iter().any(|p| {
            name.get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        })
    }

    /// True for rooms the explicit routes may read, update or delete: ours by name or tag
    /// (the replaced service's rooms carry our tag but not our prefix, and must keep working
    /// at cut-over), or persistent. Every other VMR of the node belongs to someone else.
    fn is_managed(&self, room: &Conference) -> bool {
        self.is_ours(&room.name, &room.tag) || self.is_persistent(&room.name)
    }

    /// True for rooms this service created (its name prefix) or handed out (its tag format).
    fn is_ours(&self, name: &str, tag: &str) -> bool {
        name.starts_with(self.inner.settings.name_prefix.as_str())
            || self.inner.settings.uui.is_our_tag(tag)
    }

    /// The request to create a new room: fresh name and PINs, guests allowed, and the
    /// configured automatic participants linked in the same request (docs/pexip.md §9
    /// Automatic participants: a link is configuration, which takes ~90 s to reach the
    /// Conferencing Nodes, so it is made at creation, never at allocation).
    fn new_room(&self, tag: &str) -> Result<NewConference, RoomsError> {
        let s = &self.inner.settings;
        let name = RoomName::generate(&s.name_prefix);
        let pins = PinPair::generate(s.host_pin_length, s.guest_pin_length)
            .map_err(|e| RoomsError::Invalid(e.to_string()))?;
        let mut aliases = vec![name.as_str().to_owned()];
        if let Some(domain) = &s.alias_domain {
            aliases.push(format!("{name}@{domain}"));
        }
        Ok(NewConference {
            name: name.as_str().to_owned(),
            service_type: "conference".to_owned(),
            description: String::new(),
            tag: tag.to_owned(),
            pin: pins.host.expose().to_owned(),
            guest_pin: pins.guest.expose().to_owned(),
            allow_guests: true,
            aliases,
            extra: automatic_participants(&s.automatic_participants),
        })
    }
}

/// The create body's extra fields linking `participants` (none when the list is empty, so a
/// service without an agent leg sends what it always sent).
fn automatic_participants(
    participants: &[AutomaticParticipantRef],
) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    if !participants.is_empty() {
        extra.insert(
            "automatic_participants".into(),
            participants.iter().map(|p| p.uri()).collect(),
        );
    }
    extra
}
