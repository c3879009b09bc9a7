//! Allocation: hand a ready room to a caller, idempotently per video call, and refill the pool.
//!
//! The order is the safety argument: receive a pool message → **delete it** → check the room is
//! untagged → PATCH the tag → answer. Only the caller whose delete succeeds owns the room, so a
//! room can never reach two callers; a crash after the delete leaks a room, which the
//! reconciler finds. The rejected alternative, PATCH first and delete after, can hand one room
//! to two callers when the message reappears after a crash.
//!
//! The argument needs one message per room, so every pool send is at most once
//! ([`crate::queue::Queue::send_once`]): the fault run caught an SDK retry of a send that had
//! been stored (its answer lost when storage went away) putting a room in the pool twice, and
//! two callers claiming it within the same few milliseconds. The "untagged" check cannot close
//! that window: Pexip has no conditional update.
//!
//! Idempotency per video call: a create first looks for a room already tagged for the call.
//! Two creates for the same call can both miss it; within one process they take turns (the
//! second then finds the first's room), and across instances each re-reads the tag after
//! tagging and the lowest id wins (see `settle_duplicates` for what that cannot close).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use super::stats::Counters;
use super::{Inner, RoomService, RoomsError};
use crate::domain::VideoCall;
use crate::pexip::{Conference, PexipError};
use crate::queue::{PoolMessage, QueueError, ReceivedMessage};

/// How long a received pool message stays invisible while we claim it. Long enough for the
/// delete that follows; if we die before it, the room is back in the pool this soon.
const CLAIM_VISIBILITY: Duration = Duration::from_secs(30);
/// Pool messages tried per allocation before falling back to creating a room.
const MAX_POOL_TRIES: usize = 5;
/// Rooms created at once by a refill; the Pexip client's cap bounds the real concurrency.
const REFILL_CONCURRENCY: usize = 5;

/// Where an allocated room came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationSource {
    /// The video call already had this room (a repeated create).
    Existing,
    /// Popped from the pool.
    Pool,
    /// Created on the spot because the pool was empty.
    Created,
}

/// A room handed to a caller.
#[derive(Debug, Clone)]
pub struct Allocation {
    pub conference: Conference,
    pub source: AllocationSource,
}

/// What became of one pool message.
enum Claim {
    /// The room is ours and tagged.
    Won(Box<Conference>),
    /// Not usable (someone else owns it, gone, already tagged, garbled): try the next one.
    Skipped,
}

impl RoomService {
    /// Give the caller of `call` a room tagged with the call's tag URL.
    pub async fn allocate(&self, call: &VideoCall) -> Result<Allocation, RoomsError> {
        let tag = call.tag(&self.inner.settings.uui.template);
        // Creates for one video call take turns in this process: the second finds the room
        // the first tagged instead of taking another one.
        let _turn = self.inner.tag_turns.take(&tag).await;
        // The tag lookup (idempotency) runs beside the pop so the common path pays no extra
        // round trip.
        let (existing, popped) = tokio::join!(self.find_tagged(&tag), self.pop());
        match existing {
            Ok(Some(conference)) => {
                if let Ok(Some(message)) = popped {
                    self.release(&message).await;
                }
                Counters::add(&self.inner.stats.allocations_existing, 1);
                tracing::info!(room.name = %conference.name, "video call already has a room");
                return Ok(Allocation {
                    conference,
                    source: AllocationSource::Existing,
                });
            }
            Ok(None) => {}
            Err(e) => {
                if let Ok(Some(message)) = popped {
                    self.release(&message).await;
                }
                return Err(e.into());
            }
        }

        let mut next = match popped {
            Ok(message) => message,
            Err(e) => {
                // The pool is unreachable; a room created on the spot still serves the caller.
                tracing::warn!(error = %e, "pool queue unavailable; creating a room directly");
                None
            }
        };
        for _ in 0..MAX_POOL_TRIES {
            let Some(message) = next.take() else { break };
            if let Claim::Won(conference) = self.claim(message, &tag).await? {
                self.spawn_replenish(1);
                return Ok(self
                    .settle_duplicates(*conference, &tag, AllocationSource::Pool)
                    .await);
            }
            next = self.pop().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "pool queue unavailable while retrying");
                None
            });
        }

        Counters::add(&self.inner.stats.pool_empty_fallbacks, 1);
        tracing::warn!("pool empty: creating a room synchronously");
        let conference = self.create_room(&self.inner.pexip, &tag).await?;
        self.spawn_top_up();
        Ok(self
            .settle_duplicates(conference, &tag, AllocationSource::Created)
            .await)
    }

    /// After tagging `ours`: if a create for the same call on another instance tagged a room
    /// too, both must answer the same one. The rule is "lowest id wins" (what
    /// [`Self::find_tagged`] answers as well): a loser answers the winner's room and deletes
    /// its own in the background. The loser's room is never put back in the pool: an
    /// idempotent create may already have handed it out, so only deleting it is safe.
    ///
    /// This closes the race when each side sees the other's tag. It cannot when one side
    /// checked before the other tagged (Pexip has no compare-and-set, and only a uniqueness
    /// constraint could serve as a lock); the two calls then keep one room each, and no room
    /// ever reaches two different calls either way.
    async fn settle_duplicates(
        &self,
        ours: Conference,
        tag: &str,
        source: AllocationSource,
    ) -> Allocation {
        let winner = match self.find_tagged(tag).await {
            Ok(winner) => winner,
            Err(e) => {
                // The room is tagged and ours; not knowing about a duplicate is no reason to
                // fail the caller.
                tracing::warn!(room.name = %ours.name, error = %e, "could not check for a duplicate allocation");
                None
            }
        };
        match winner {
            Some(winner) if winner.id < ours.id && winner.tag == tag => {
                Counters::add(&self.inner.stats.allocations_existing, 1);
                Counters::add(&self.inner.stats.duplicates_released, 1);
                tracing::warn!(
                    room.name = %winner.name,
                    room.released = %ours.name,
                    "another instance allocated a room for this video call at the same time; answering its room"
                );
                self.spawn_release_duplicate(ours);
                Allocation {
                    conference: winner,
                    source: AllocationSource::Existing,
                }
            }
            _ => {
                Counters::add(&self.inner.stats.allocations, 1);
                if source == AllocationSource::Pool {
                    tracing::info!(room.name = %ours.name, "room allocated from the pool");
                }
                Allocation {
                    conference: ours,
                    source,
                }
            }
        }
    }

    /// Delete a room that lost a duplicate allocation, unless a conference runs in it.
    fn spawn_release_duplicate(&self, room: Conference) {
        let background = self.inner.pexip.background();
        self.inner.tasks.spawn(async move {
            match background.is_live(&room.name).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!(room.name = %room.name, "duplicate room is live; kept");
                    return;
                }
                Err(e) => {
                    tracing::warn!(room.name = %room.name, error = %e, "could not check a duplicate room; kept for the GC");
                    return;
                }
            }
            if let Err(e) = background.delete_conference(room.id).await {
                tracing::warn!(room.name = %room.name, error = %e, "could not delete a duplicate room");
            }
        });
    }

    /// The room already tagged for this call, if any (lowest id wins if several).
    async fn find_tagged(&self, tag: &str) -> Result<Option<Conference>, PexipError> {
        let rooms = self.inner.pexip.list_conferences(&[("tag", tag)]).await?;
        Ok(rooms.into_iter().min_by_key(|c| c.id))
    }

    async fn pop(&self) -> Result<Option<ReceivedMessage>, QueueError> {
        Ok(self
            .inner
            .pool
            .receive(1, CLAIM_VISIBILITY)
            .await?
            .into_iter()
            .next())
    }

    /// Make a popped message visible again (we did not need it).
    async fn release(&self, message: &ReceivedMessage) {
        if let Err(e) = self
            .inner
            .pool
            .set_visibility(&message.receipt, Duration::ZERO)
            .await
        {
            // It reappears by itself after CLAIM_VISIBILITY.
            tracing::debug!(error = %e, "could not release a pool message early");
        }
    }

    async fn claim(&self, message: ReceivedMessage, tag: &str) -> Result<Claim, RoomsError> {
        let pool = &self.inner.pool;
        let Ok(entry) = PoolMessage::parse(&message.text) else {
            tracing::warn!("garbled pool message moved to the poison queue");
            if let Err(e) = pool.move_to(&message, &self.inner.pool_poison).await {
                tracing::warn!(error = %e, "could not move a garbled pool message");
            }
            return Ok(Claim::Skipped);
        };
        match pool.delete(&message.receipt).await {
            Ok(()) => {}
            // Our claim expired and someone else received the message: the room is theirs.
            Err(QueueError::StaleReceipt | QueueError::MessageNotFound) => {
                return Ok(Claim::Skipped);
            }
            Err(e) => return Err(e.into()),
        }
        // From here the room is ours alone. Anything that fails puts it back in the pool.
        match self.tag_claimed(&entry, tag).await {
            Ok(claim) => Ok(claim),
            Err(e) => {
                self.requeue(&entry).await;
                Err(e)
            }
        }
    }

    async fn tag_claimed(&self, entry: &PoolMessage, tag: &str) -> Result<Claim, RoomsError> {
        let pexip = &self.inner.pexip;
        let found = match entry.id {
            Some(id) => match pexip.get_conference(id).await {
                Ok(c) => Some(c),
                Err(PexipError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => pexip.find_conference(&entry.name).await?,
        };
        let Some(mut conference) = found.filter(|c| c.name == entry.name) else {
            tracing::info!(room.name = %entry.name, "pooled room no longer exists; skipped");
            return Ok(Claim::Skipped);
        };
        if !conference.tag.is_empty() {
            // Never hand out a room that is already someone's, whatever the queue says.
            tracing::warn!(room.name = %conference.name, "pooled room already tagged; skipped");
            return Ok(Claim::Skipped);
        }
        match pexip
            .patch_conference(conference.id, &json!({ "tag": tag }))
            .await
        {
            Ok(()) => {}
            Err(PexipError::NotFound) => return Ok(Claim::Skipped),
            Err(e) => return Err(e.into()),
        }
        conference.tag = tag.to_owned();
        Ok(Claim::Won(Box::new(conference)))
    }

    /// Put a claimed room back in the pool. If this fails too the room is leaked, and the
    /// reconciler will find it.
    pub(super) async fn requeue(&self, entry: &PoolMessage) {
        // At most once: a second message for the room would let two callers claim it.
        if let Err(e) = self
            .inner
            .pool
            .send_once(&entry.to_text(), Duration::ZERO)
            .await
        {
            tracing::warn!(room.name = %entry.name, error = %e, "claimed room could not be returned to the pool");
        }
    }

    /// Create `count` pool rooms in the background (one per allocation; bulk create).
    pub(super) fn spawn_replenish(&self, count: usize) {
        // Counted before the task starts, so a top-up that runs first already sees them.
        let pending = Pending::enter(self, count);
        let service = self.clone();
        self.inner.tasks.spawn(async move {
            service.create_counted(pending).await;
        });
    }

    /// Create `count` rooms and enqueue each with the replication delay, with background
    /// priority. Returns how many made it into the pool.
    pub(super) async fn create_pool_rooms(&self, count: usize) -> usize {
        self.create_counted(Pending::enter(self, count)).await
    }

    async fn create_counted(&self, pending: Pending) -> usize {
        use futures::StreamExt as _;
        let count = pending.count;
        let created = futures::stream::iter(0..count)
            .map(|_| async {
                let created = self.create_pool_room().await;
                pending.done_one();
                created
            })
            .buffer_unordered(REFILL_CONCURRENCY)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        Counters::add(&self.inner.stats.rooms_replenished, created as u64);
        Counters::add(
            &self.inner.stats.replenish_failures,
            (count - created) as u64,
        );
        created
    }

    async fn create_pool_room(&self) -> bool {
        let background = self.inner.pexip.background();
        // The pool message needs only the name and the id: no read-back of the new room.
        let created = match self.new_room("") {
            Ok(new) => background
                .create_conference_id(&new)
                .await
                .map(|id| (new.name, id))
                .map_err(RoomsError::from),
            Err(e) => Err(e),
        };
        let (name, id) = match created {
            Ok(created) => created,
            Err(e) => {
                tracing::warn!(error = %e, "could not create a pool room");
                return false;
            }
        };
        let entry = PoolMessage { name, id: Some(id) };
        // Invisible until Pexip has replicated the room to its Conferencing Nodes. Sent at
        // most once: a send retried after it was stored but its answer lost would put the
        // room in the pool twice, and two callers could then claim it at the same moment.
        // If this fails the room is deleted, which also defuses a message that was stored
        // after all (an allocation skips a pooled room that no longer exists).
        match self
            .inner
            .pool
            .send_once(&entry.to_text(), self.inner.settings.ready_delay)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(room.name = %entry.name, error = %e, "could not enqueue a new pool room; deleting it");
                if let Err(e) = background.delete_conference(id).await {
                    tracing::warn!(room.name = %entry.name, error = %e, "could not delete the unpooled room; the reconciler will");
                }
                false
            }
        }
    }
}

/// Pool rooms a refill will create, counted in `pool_creating` from the moment the refill
/// is decided (not when each creation starts: only a few run at once, and a top-up meanwhile
/// must not make the waiting ones a second time). Each creation that ends removes one; a
/// dropped refill removes what is left.
struct Pending {
    inner: Arc<Inner>,
    count: usize,
    left: AtomicUsize,
}

impl Pending {
    fn enter(service: &RoomService, count: usize) -> Self {
        service
            .inner
            .pool_creating
            .fetch_add(count, Ordering::AcqRel);
        Self {
            inner: service.inner.clone(),
            count,
            left: AtomicUsize::new(count),
        }
    }

    fn done_one(&self) {
        if self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            self.inner.pool_creating.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.inner
            .pool_creating
            .fetch_sub(*self.left.get_mut(), Ordering::AcqRel);
    }
}

/// Turns per video call (tag URL) in this process: allocations for the same call run one
/// after the other. Entries live only while someone holds or awaits a turn.
#[derive(Default)]
pub(super) struct TagTurns {
    turns: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// One allocation's turn; the next waiter for the same tag goes when it drops.
pub(super) struct Turn<'a> {
    turns: &'a TagTurns,
    tag: String,
    slot: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl TagTurns {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        // Every critical section is a map operation that cannot panic halfway.
        self.turns
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(super) async fn take(&self, tag: &str) -> Turn<'_> {
        let slot = self.map().entry(tag.to_owned()).or_default().clone();
        let guard = slot.clone().lock_owned().await;
        Turn {
            turns: self,
            tag: tag.to_owned(),
            slot,
            guard: Some(guard),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.turns.map();
        // The map's Arc and ours are the only ones left: nobody waits, so forget the tag.
        // New waiters clone under the map lock, so this check cannot race with them.
        if Arc::strong_count(&self.slot) == 2 {
            map.remove(&self.tag);
        }
    }
}
