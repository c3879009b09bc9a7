//! The garbage collector (`gc_timer`): drains the deletion queue and deletes ended rooms.
//!
//! It loops until the queue is empty or the time budget is spent (the old service took 20
//! messages per run, ≤ 120 deletions an hour). Per batch of up to 32 messages it asks Pexip
//! which rooms are live and which of the named rooms exist, then settles each room with the
//! client's bounded concurrency, so Pexip latency, not round trips per room, sets the pace.
//!
//! Per room (its messages grouped):
//! - persistent → never touched; live in the batch's snapshot → deferred; gone → done;
//! - its conference ended → deleted only while its tag is one a `conference_ended` saw: a
//!   room whose tag changed since, either way (handed out after it ended untagged in the
//!   pool, or given back), is left alone;
//! - *quarantined* (a tagging PATCH that may still apply was sent to it) → deleted unless it
//!   carries another call's tag, or its call's record names it (then it is the call's room);
//! - a *suspected leak* (from the reconciler) → deleted only if it is still untagged and
//!   still not in the pool, looked at again now, a grace period after the suspicion;
//!
//! and every deletion goes through [`RoomService::delete_if_idle`] (ours, not persistent, not
//! live per the status API asked right before the `DELETE`).
//!
//! **Waiting is not failing.** A message deferred (live again, not old enough, already
//! deferred in this run) is sent again as a fresh message carrying the failures of its
//! earlier copies, and the old one deleted. Only what a copy was received for without being
//! settled — Pexip or the records failed, the process died — counts towards
//! `GC_MAX_DEQUEUE`: the copy's failures plus its dequeue count. (Deferring by changing the
//! visibility keeps the dequeue count rising; under a backlog, rooms live for a while reached
//! the poison queue in about two runs.)

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::RoomService;
use super::deletion::Deletion;
use super::stats::Counters;
use crate::pexip::Conference;
use crate::queue::{DeletionMessage, LEAK_REASON, QUARANTINE_REASON, ReceivedMessage};

/// Messages per receive (the service maximum).
const BATCH: u8 = 32;
/// How long received messages stay hidden while a batch is processed; a message whose room
/// failed to delete comes back after this.
const GC_VISIBILITY: Duration = Duration::from_secs(120);
/// Rooms settled at once; the Pexip client's cap bounds the real concurrency.
const DELETE_CONCURRENCY: usize = 5;
/// Queue updates (deletes, deferrals) sent at once; queue requests are not under the Pexip cap.
const QUEUE_CONCURRENCY: usize = 16;
/// Clock tolerance when judging a message's age against the grace period.
const AGE_TOLERANCE: Duration = Duration::from_secs(30);
/// Shortest deferral of a live room, whatever the grace period: the next look is a run later.
const MIN_LIVE_DEFERRAL: Duration = Duration::from_secs(60);

/// What one GC run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Messages received.
    pub received: usize,
    /// Rooms deleted on Pexip.
    pub deleted: usize,
    /// Rooms already gone (404 or not listed).
    pub already_gone: usize,
    /// Extra messages for a room already handled (one `conference_ended` per node).
    pub duplicates: usize,
    /// Rooms live again: deferred by the grace period.
    pub deferred_live: usize,
    /// Messages not yet old enough (written without a visibility delay): deferred.
    pub deferred_young: usize,
    /// Persistent rooms, never deleted.
    pub skipped_persistent: usize,
    /// Rooms that are not ours, or whose tag changed since their event.
    pub skipped_not_ours: usize,
    /// Quarantined rooms kept because their call's allocation record names them.
    pub quarantine_kept: usize,
    /// Suspected leaks deleted after the second look.
    pub leaks_deleted: usize,
    /// Suspected leaks that were not (tagged since, or in the pool after all): kept.
    pub not_leaks: usize,
    /// Messages moved to the poison queue (garbled or failed too often).
    pub poisoned: usize,
    /// Rooms whose deletion failed; their messages come back for another try.
    pub failed: usize,
    /// True when the run stopped because the time budget was spent.
    pub budget_exhausted: bool,
    /// True when the run stopped because Pexip or the queue could not be reached.
    pub interrupted: bool,
    /// Wall time of the run.
    pub duration_ms: u64,
}

/// A received message and what it says.
struct Entry {
    message: ReceivedMessage,
    deletion: DeletionMessage,
}

/// Which rule a message asks for; a room with several kinds of messages follows the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    Leak,
    Quarantine,
    Ended,
}

impl Rule {
    fn of(deletion: &DeletionMessage) -> Self {
        match deletion.reason.as_str() {
            QUARANTINE_REASON => Rule::Quarantine,
            LEAK_REASON => Rule::Leak,
            // `conference_ended`, and whatever the older service wrote.
            _ => Rule::Ended,
        }
    }
}

/// One room's messages in a batch, the one that decides first.
#[derive(Default)]
struct Group {
    entries: Vec<Entry>,
}

impl Group {
    fn rule(&self) -> Rule {
        self.entries
            .iter()
            .map(|e| Rule::of(&e.deletion))
            .max()
            .unwrap_or(Rule::Ended)
    }

    /// The tags the room's `conference_ended` messages saw (`None`: unknown, older service).
    fn ended_tags(&self) -> impl Iterator<Item = Option<&str>> {
        self.entries
            .iter()
            .filter(|e| Rule::of(&e.deletion) == Rule::Ended)
            .map(|e| e.deletion.tag.as_deref())
    }

    /// The tag a quarantined room's PATCH attempted.
    fn attempted_tag(&self) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| Rule::of(&e.deletion) == Rule::Quarantine)
            .find_map(|e| e.deletion.tag.as_deref())
    }

    /// The message that decides (kept, or deferred, for the room), first.
    fn sort(&mut self) {
        self.entries
            .sort_by_key(|e| std::cmp::Reverse(Rule::of(&e.deletion)));
    }
}

/// What happened to one room.
enum Outcome {
    Deleted,
    Gone,
    DeferLive,
    NotOurs,
    /// Quarantined, but its call's record names it: the call's room.
    Kept,
    /// A suspected leak, deleted.
    LeakDeleted,
    /// A suspected leak that is not one.
    NotLeak,
    Failed,
}

impl From<Deletion> for Outcome {
    fn from(deletion: Deletion) -> Self {
        match deletion {
            Deletion::Deleted => Outcome::Deleted,
            Deletion::Gone => Outcome::Gone,
            Deletion::Live => Outcome::DeferLive,
            Deletion::Refused => Outcome::NotOurs,
            Deletion::Failed => Outcome::Failed,
        }
    }
}

/// What one run remembers across its batches.
#[derive(Default)]
struct Run {
    /// Rooms settled in this run: later messages naming them are duplicates.
    settled: HashSet<String>,
    /// Rooms found live in this run: a message seeing them again waits for a later run.
    deferred: HashSet<String>,
    /// The pool's room names, listed once per run when a suspected leak needs them.
    pooled: tokio::sync::OnceCell<HashSet<String>>,
}

impl RoomService {
    /// Drain the deletion queue within the configured time budget.
    pub async fn collect_garbage(&self) -> GcReport {
        let started = Instant::now();
        let deadline = started + self.inner.settings.gc_time_budget;
        let mut report = GcReport::default();
        let mut run = Run::default();
        loop {
            if Instant::now() >= deadline {
                report.budget_exhausted = true;
                break;
            }
            // Ask Pexip first: if it is down, stop before receiving, so an outage does not
            // raise dequeue counts towards the poison queue. The answer also spares a look
            // at rooms already known to be live; every deletion asks again for its room.
            let live = match self.inner.pexip.background().live_conferences(&[]).await {
                Ok(list) => list.into_iter().map(|c| c.name).collect::<HashSet<_>>(),
                Err(e) => {
                    tracing::warn!(error = %e, "GC stopped: Pexip status unavailable");
                    report.interrupted = true;
                    break;
                }
            };
            let batch = match self.inner.deletion.receive(BATCH, GC_VISIBILITY).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "GC stopped: deletion queue unavailable");
                    report.interrupted = true;
                    break;
                }
            };
            report.received += batch.len();
            if !self
                .process_batch(batch, &live, &mut run, &mut report)
                .await
            {
                report.interrupted = true;
                break;
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        Counters::add(
            &self.inner.stats.rooms_deleted,
            (report.deleted + report.leaks_deleted) as u64,
        );
        Counters::add(&self.inner.stats.leaks_found, report.leaks_deleted as u64);
        tracing::info!(
            gc.received = report.received,
            gc.deleted = report.deleted,
            gc.already_gone = report.already_gone,
            gc.duplicates = report.duplicates,
            gc.deferred_live = report.deferred_live,
            gc.leaks_deleted = report.leaks_deleted,
            gc.poisoned = report.poisoned,
            gc.failed = report.failed,
            duration_ms = report.duration_ms,
            "garbage collection finished"
        );
        report
    }

    /// Handle one batch. Returns false when Pexip could not be asked about the batch.
    async fn process_batch(
        &self,
        batch: Vec<ReceivedMessage>,
        live: &HashSet<String>,
        run: &mut Run,
        report: &mut GcReport,
    ) -> bool {
        let live_deferral = self.inner.settings.delete_grace.max(MIN_LIVE_DEFERRAL);
        let mut groups: HashMap<String, Group> = HashMap::new();
        // Messages settled without asking Pexip: forgotten (None) or deferred (Some).
        let mut early: Vec<(Entry, Option<Duration>)> = Vec::new();
        for message in batch {
            let Ok(deletion) = DeletionMessage::parse(&message.text) else {
                tracing::warn!("garbled deletion message moved to the poison queue");
                self.poison(&message, report).await;
                continue;
            };
            if deletion.failures.saturating_add(message.dequeue_count)
                > self.inner.settings.gc_max_dequeue
            {
                tracing::warn!(room.name = %deletion.name, failures = deletion.failures, dequeue_count = message.dequeue_count, "deletion failed too often; moved to the poison queue");
                self.poison(&message, report).await;
                continue;
            }
            let name = deletion.name.clone();
            let entry = Entry { message, deletion };
            if run.settled.contains(&name) {
                report.duplicates += 1;
                early.push((entry, None));
                continue;
            }
            if run.deferred.contains(&name) {
                early.push((entry, Some(live_deferral)));
                continue;
            }
            if let Some(wait) = self.too_young(&entry) {
                report.deferred_young += 1;
                early.push((entry, Some(wait)));
                continue;
            }
            if self.is_persistent(&name) {
                report.skipped_persistent += 1;
                early.push((entry, None));
                continue;
            }
            groups.entry(name).or_default().entries.push(entry);
        }
        let updates: Vec<(&Entry, Option<Duration>)> =
            early.iter().map(|(entry, defer)| (entry, *defer)).collect();
        self.apply(updates).await;
        if groups.is_empty() {
            return true;
        }

        // One list call for every room named in the batch, matched by name here (a node that
        // ignored the filter answers every room).
        let names: Vec<&str> = groups.keys().map(String::as_str).collect();
        let joined = names.join(",");
        let rooms = match self
            .inner
            .pexip
            .background()
            .list_conferences(&[("name__in", &joined)])
            .await
        {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "GC could not look rooms up; messages come back later");
                report.failed += groups.len();
                return false;
            }
        };
        let mut by_name: HashMap<String, Conference> = rooms
            .into_iter()
            .filter(|c| groups.contains_key(&c.name))
            .map(|c| (c.name.clone(), c))
            .collect();

        let work: Vec<(String, Group, Option<Conference>)> = groups
            .into_iter()
            .map(|(name, mut group)| {
                group.sort();
                let room = by_name.remove(&name);
                (name, group, room)
            })
            .collect();
        let run_ref = &*run;
        let outcomes: Vec<(String, Group, Outcome)> = futures::stream::iter(work)
            .map(|(name, group, room)| async move {
                let outcome = self.settle(&name, &group, room, live, run_ref).await;
                (name, group, outcome)
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .collect()
            .await;

        // The queue updates of the whole batch go out together: one by one they took
        // longer than the deletions themselves.
        let mut updates: Vec<(&Entry, Option<Duration>)> = Vec::new();
        for (name, group, outcome) in &outcomes {
            let (first, rest) = group.entries.split_first().expect("a group has a message");
            let settled = match outcome {
                Outcome::Failed => {
                    // Leave every message: they come back after GC_VISIBILITY.
                    report.failed += 1;
                    continue;
                }
                Outcome::DeferLive => {
                    report.deferred_live += 1;
                    updates.push((first, Some(live_deferral)));
                    run.deferred.insert(name.clone());
                    false
                }
                Outcome::Deleted => {
                    report.deleted += 1;
                    true
                }
                Outcome::Gone => {
                    report.already_gone += 1;
                    true
                }
                Outcome::NotOurs => {
                    report.skipped_not_ours += 1;
                    true
                }
                Outcome::Kept => {
                    report.quarantine_kept += 1;
                    true
                }
                Outcome::LeakDeleted => {
                    report.leaks_deleted += 1;
                    true
                }
                Outcome::NotLeak => {
                    report.not_leaks += 1;
                    true
                }
            };
            if settled {
                updates.push((first, None));
                run.settled.insert(name.clone());
            }
            report.duplicates += rest.len();
            updates.extend(rest.iter().map(|e| (e, None)));
        }
        self.apply(updates).await;
        true
    }

    /// Forget (`None`) or defer (`Some(delay)`) messages, several at a time.
    async fn apply(&self, updates: Vec<(&Entry, Option<Duration>)>) {
        futures::stream::iter(updates)
            .for_each_concurrent(QUEUE_CONCURRENCY, |(entry, defer)| async move {
                match defer {
                    None => self.forget(&entry.message).await,
                    Some(by) => self.defer(entry, by).await,
                }
            })
            .await;
    }

    /// Decide and act for one room.
    async fn settle(
        &self,
        name: &str,
        group: &Group,
        room: Option<Conference>,
        live: &HashSet<String>,
        run: &Run,
    ) -> Outcome {
        if live.contains(name) {
            tracing::info!(room.name = %name, "conference live again; deletion deferred");
            return Outcome::DeferLive;
        }
        let Some(room) = room else {
            return Outcome::Gone;
        };
        match group.rule() {
            Rule::Ended => self.settle_ended(&room, group).await,
            Rule::Quarantine => {
                let attempted = group.attempted_tag().unwrap_or_default();
                self.settle_quarantined(&room, attempted).await
            }
            Rule::Leak => self.settle_leak(&room, run).await,
        }
    }

    /// A room whose conference ended: deleted while its tag is still one the events saw.
    async fn settle_ended(&self, room: &Conference, group: &Group) -> Outcome {
        let unchanged = group
            .ended_tags()
            .any(|seen| seen.is_none_or(|seen| seen == room.tag));
        if !unchanged {
            tracing::warn!(room.name = %room.name, "room re-tagged since its conference ended; not deleted");
            return Outcome::NotOurs;
        }
        self.delete_if_idle(room, &room.tag, "room deleted after its conference ended")
            .await
            .into()
    }

    /// A quarantined room: deleted unless the call it was being tagged for holds it after
    /// all (its record names it), or it carries another call's tag.
    async fn settle_quarantined(&self, room: &Conference, attempted: &str) -> Outcome {
        if attempted.is_empty() || (!room.tag.is_empty() && room.tag != attempted) {
            tracing::warn!(room.name = %room.name, "quarantined room carries another tag; not deleted");
            return Outcome::NotOurs;
        }
        match self.inner.locks.names_room(attempted, room.id).await {
            Ok(true) => {
                tracing::info!(room.name = %room.name, "quarantined room is its call's room; kept");
                Outcome::Kept
            }
            // Judged as ours by the tag that was attempted: a room of the replaced service's
            // pool has our tag format, not our prefix.
            Ok(false) => self
                .delete_if_idle(room, attempted, "quarantined room deleted")
                .await
                .into(),
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "cannot read the call's allocation record; will retry");
                Outcome::Failed
            }
        }
    }

    /// A suspected leak, looked at again: still untagged and still not in the pool.
    async fn settle_leak(&self, room: &Conference, run: &Run) -> Outcome {
        if !room.tag.is_empty() {
            tracing::info!(room.name = %room.name, "suspected leak was tagged since; kept");
            return Outcome::NotLeak;
        }
        let pooled = run
            .pooled
            .get_or_try_init(|| async { self.pooled_names().await })
            .await;
        match pooled {
            Ok(pooled) if pooled.contains(&room.name) => {
                tracing::info!(room.name = %room.name, "suspected leak is in the pool; kept");
                return Outcome::NotLeak;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "cannot list the pool to check a suspected leak; will retry");
                return Outcome::Failed;
            }
        }
        if self.inner.settings.reconcile_dry_run {
            tracing::warn!(room.name = %room.name, "leaked room found (dry run: kept)");
            return Outcome::NotLeak;
        }
        match self.delete_if_idle(room, "", "leaked room deleted").await {
            Deletion::Deleted => Outcome::LeakDeleted,
            other => other.into(),
        }
    }

    /// How much longer a message must wait, if it is younger than the grace period: a
    /// message written without a visibility delay (older service). Its age counts from the
    /// earlier of the queue's insertion time and the time the message carries (which its
    /// copies keep when they are deferred).
    fn too_young(&self, entry: &Entry) -> Option<Duration> {
        let grace = self.inner.settings.delete_grace;
        let age = OffsetDateTime::now_utc() - first_enqueued(entry);
        let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
        (age + AGE_TOLERANCE < grace).then(|| grace - age)
    }

    async fn forget(&self, message: &ReceivedMessage) {
        if let Err(e) = self.inner.deletion.delete(&message.receipt).await {
            tracing::debug!(error = %e, "could not delete a settled deletion message; it will be seen again");
        }
    }

    /// Defer a message by sending it again, delayed, with the failures of this copy added,
    /// and deleting this copy. If the send fails, the copy is hidden instead (its dequeue
    /// count then keeps rising, but nothing is lost).
    async fn defer(&self, entry: &Entry, by: Duration) {
        let failures = entry
            .deletion
            .failures
            .saturating_add(entry.message.dequeue_count.saturating_sub(1));
        let again = DeletionMessage {
            failures,
            first_enqueued: first_enqueued(entry),
            ..entry.deletion.clone()
        };
        let queue = &self.inner.deletion;
        match queue.send(&again.to_text(), by).await {
            // A delete that fails leaves a duplicate, which the next run settles as one.
            Ok(()) => self.forget(&entry.message).await,
            Err(e) => {
                tracing::debug!(error = %e, "could not send a deferred deletion again; hiding it instead");
                if let Err(e) = queue.set_visibility(&entry.message.receipt, by).await {
                    tracing::debug!(error = %e, "could not defer a deletion message");
                }
            }
        }
    }

    async fn poison(&self, message: &ReceivedMessage, report: &mut GcReport) {
        match self
            .inner
            .deletion
            .move_to(message, &self.inner.deletion_poison)
            .await
        {
            Ok(()) => report.poisoned += 1,
            Err(e) => tracing::warn!(error = %e, "could not move a message to the poison queue"),
        }
    }
}

/// When the deletion was first asked for: the time the message carries, or the queue's
/// insertion time when that is earlier (a bare name from the older service carries none).
fn first_enqueued(entry: &Entry) -> OffsetDateTime {
    let carried = entry.deletion.first_enqueued;
    entry
        .message
        .inserted_at
        .map_or(carried, |inserted| inserted.min(carried))
}
