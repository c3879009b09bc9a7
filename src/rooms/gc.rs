//! The garbage collector (`gc_timer`): drains the deletion queue and deletes ended rooms.
//!
//! It loops until the queue is empty or the time budget is spent (the old service took 20
//! messages per run, ≤ 120 deletions an hour). Per batch of up to 32 messages it asks Pexip
//! twice (which rooms are live; which of the named rooms exist) and then deletes with the
//! client's bounded concurrency, so Pexip latency, not round trips per room, sets the pace.
//!
//! Per room: persistent → never touched; live again → deferred by the grace period; gone →
//! done; not ours, or re-tagged since the event → left alone; otherwise deleted (404 = done),
//! and its call's allocation record with it. A *quarantined* room (a tagging PATCH that may
//! still apply was sent to it) is deleted unless its call's record names it: then it is the
//! call's room after all. A message that keeps failing is moved to the poison queue after
//! `GC_MAX_DEQUEUE` tries.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::RoomService;
use super::stats::Counters;
use crate::pexip::{Conference, Deleted};
use crate::queue::{DeletionMessage, QUARANTINE_REASON, ReceivedMessage};

/// Messages per receive (the service maximum).
const BATCH: u8 = 32;
/// How long received messages stay hidden while a batch is processed; a message whose room
/// failed to delete comes back after this.
const GC_VISIBILITY: Duration = Duration::from_secs(120);
/// Rooms deleted at once; the Pexip client's cap bounds the real concurrency.
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
    /// Rooms that are not ours or were re-tagged since the event.
    pub skipped_not_ours: usize,
    /// Quarantined rooms kept because their call's allocation record names them.
    pub quarantine_kept: usize,
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

/// One room's messages in a batch.
#[derive(Default)]
struct Group {
    messages: Vec<ReceivedMessage>,
    /// The tag the room had when its conference ended, if the event said.
    tag: Option<String>,
    /// Whether a message says its conference ended (not only that it was quarantined).
    ended: bool,
    /// The tag a tagging PATCH attempted, when the room was quarantined.
    quarantined_for: Option<String>,
}

/// What happened to one room.
enum Outcome {
    Deleted,
    Gone,
    DeferLive,
    NotOurs,
    /// Quarantined, but its call's record names it: the call's room.
    Kept,
    Failed,
}

impl RoomService {
    /// Drain the deletion queue within the configured time budget.
    pub async fn collect_garbage(&self) -> GcReport {
        let started = Instant::now();
        let deadline = started + self.inner.settings.gc_time_budget;
        let mut report = GcReport::default();
        // Rooms settled in this run: later messages naming them are duplicates.
        let mut settled: HashSet<String> = HashSet::new();
        // Rooms found live in this run: a message seeing them again waits for a later run.
        let mut deferred: HashSet<String> = HashSet::new();
        loop {
            if Instant::now() >= deadline {
                report.budget_exhausted = true;
                break;
            }
            // Ask Pexip first: if it is down, stop before receiving, so an outage does not
            // raise dequeue counts towards the poison queue.
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
                .process_batch(batch, &live, &mut settled, &mut deferred, &mut report)
                .await
            {
                report.interrupted = true;
                break;
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        Counters::add(&self.inner.stats.rooms_deleted, report.deleted as u64);
        tracing::info!(
            gc.received = report.received,
            gc.deleted = report.deleted,
            gc.already_gone = report.already_gone,
            gc.duplicates = report.duplicates,
            gc.deferred_live = report.deferred_live,
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
        settled: &mut HashSet<String>,
        deferred: &mut HashSet<String>,
        report: &mut GcReport,
    ) -> bool {
        let live_deferral = self.inner.settings.delete_grace.max(MIN_LIVE_DEFERRAL);
        let mut groups: HashMap<String, Group> = HashMap::new();
        // Messages settled without asking Pexip: forgotten (None) or deferred (Some).
        let mut early: Vec<(ReceivedMessage, Option<Duration>)> = Vec::new();
        for message in batch {
            let Ok(entry) = DeletionMessage::parse(&message.text) else {
                tracing::warn!("garbled deletion message moved to the poison queue");
                self.poison(&message, report).await;
                continue;
            };
            if message.dequeue_count > self.inner.settings.gc_max_dequeue {
                tracing::warn!(room.name = %entry.name, dequeue_count = message.dequeue_count, "deletion failed too often; moved to the poison queue");
                self.poison(&message, report).await;
                continue;
            }
            if settled.contains(&entry.name) {
                report.duplicates += 1;
                early.push((message, None));
                continue;
            }
            if deferred.contains(&entry.name) {
                early.push((message, Some(live_deferral)));
                continue;
            }
            if let Some(wait) = self.too_young(&message) {
                report.deferred_young += 1;
                early.push((message, Some(wait)));
                continue;
            }
            if self.is_persistent(&entry.name) {
                report.skipped_persistent += 1;
                early.push((message, None));
                continue;
            }
            let group = groups.entry(entry.name.clone()).or_default();
            if entry.reason == QUARANTINE_REASON {
                group.quarantined_for = group.quarantined_for.take().or(entry.tag);
            } else {
                group.ended = true;
                group.tag = group.tag.take().or(entry.tag);
            }
            group.messages.push(message);
        }
        let mut updates: Vec<(&ReceivedMessage, Option<Duration>)> = Vec::new();
        for (message, defer) in &early {
            updates.push((message, *defer));
        }
        self.apply(updates).await;
        if groups.is_empty() {
            return true;
        }

        // One list call for every room named in the batch.
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
        let mut by_name: HashMap<String, Conference> =
            rooms.into_iter().map(|c| (c.name.clone(), c)).collect();

        let work: Vec<(String, Group, Option<Conference>)> = groups
            .into_iter()
            .map(|(name, group)| {
                let room = by_name.remove(&name);
                (name, group, room)
            })
            .collect();
        let outcomes: Vec<(String, Group, Outcome)> = futures::stream::iter(work)
            .map(|(name, group, room)| async move {
                let outcome = self.settle(&name, &group, room, live).await;
                (name, group, outcome)
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .collect()
            .await;

        // The queue updates of the whole batch go out together: one by one they took
        // longer than the deletions themselves.
        let mut updates: Vec<(&ReceivedMessage, Option<Duration>)> = Vec::new();
        for (name, group, outcome) in &outcomes {
            let (first, rest) = group.messages.split_first().expect("a group has a message");
            match outcome {
                Outcome::Failed => {
                    // Leave every message: they come back after GC_VISIBILITY.
                    report.failed += 1;
                    continue;
                }
                Outcome::DeferLive => {
                    report.deferred_live += 1;
                    updates.push((first, Some(live_deferral)));
                    deferred.insert(name.clone());
                }
                Outcome::Deleted => {
                    report.deleted += 1;
                    updates.push((first, None));
                    settled.insert(name.clone());
                }
                Outcome::Gone => {
                    report.already_gone += 1;
                    updates.push((first, None));
                    settled.insert(name.clone());
                }
                Outcome::NotOurs => {
                    report.skipped_not_ours += 1;
                    updates.push((first, None));
                    settled.insert(name.clone());
                }
                Outcome::Kept => {
                    report.quarantine_kept += 1;
                    updates.push((first, None));
                    settled.insert(name.clone());
                }
            }
            report.duplicates += rest.len();
            updates.extend(rest.iter().map(|m| (m, None)));
        }
        self.apply(updates).await;
        true
    }

    /// Forget (`None`) or defer (`Some(delay)`) messages, several at a time.
    async fn apply(&self, updates: Vec<(&ReceivedMessage, Option<Duration>)>) {
        futures::stream::iter(updates)
            .for_each_concurrent(QUEUE_CONCURRENCY, |(message, defer)| async move {
                match defer {
                    None => self.forget(message).await,
                    Some(by) => self.defer(message, by).await,
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
    ) -> Outcome {
        if live.contains(name) {
            tracing::info!(room.name = %name, "conference live again; deletion deferred");
            return Outcome::DeferLive;
        }
        let Some(room) = room else {
            return Outcome::Gone;
        };
        if let (false, Some(attempted)) = (group.ended, group.quarantined_for.as_deref()) {
            return self.settle_quarantined(room, attempted).await;
        }
        let event_tag = group.tag.as_deref();
        let retagged = event_tag.is_some_and(|t| !t.is_empty() && t != room.tag);
        if retagged || !self.is_ours(&room.name, &room.tag) {
            tracing::warn!(room.name = %name, "room is not ours or was re-tagged since its conference ended; not deleted");
            return Outcome::NotOurs;
        }
        let outcome = self
            .delete_now(&room, "room deleted after its conference ended")
            .await;
        if matches!(outcome, Outcome::Deleted | Outcome::Gone) && !room.tag.is_empty() {
            self.forget_record(&room).await;
        }
        outcome
    }

    /// A quarantined room: deleted unless the call it was being tagged for holds it after
    /// all (its record names it), or it carries another call's tag.
    async fn settle_quarantined(&self, room: Conference, attempted: &str) -> Outcome {
        if !room.tag.is_empty() && room.tag != attempted {
            tracing::warn!(room.name = %room.name, "quarantined room carries another tag; not deleted");
            return Outcome::NotOurs;
        }
        if !self.is_ours(&room.name, attempted) {
            return Outcome::NotOurs;
        }
        match self.inner.locks.names_room(attempted, room.id).await {
            Ok(true) => {
                tracing::info!(room.name = %room.name, "quarantined room is its call's room; kept");
                Outcome::Kept
            }
            Ok(false) => self.delete_now(&room, "quarantined room deleted").await,
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "cannot read the call's allocation record; will retry");
                Outcome::Failed
            }
        }
    }

    async fn delete_now(&self, room: &Conference, done: &'static str) -> Outcome {
        match self
            .inner
            .pexip
            .background()
            .delete_conference(room.id)
            .await
        {
            Ok(Deleted::Now) => {
                tracing::info!(room.name = %room.name, "{done}");
                Outcome::Deleted
            }
            Ok(Deleted::AlreadyGone) => Outcome::Gone,
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "room deletion failed; will retry");
                Outcome::Failed
            }
        }
    }

    /// Remove the allocation record of a deleted room's call (if it names the room). A
    /// failure only leaves it for the sweep.
    pub(super) async fn forget_record(&self, room: &Conference) {
        if let Err(e) = self.inner.locks.forget_room(&room.tag, room.id).await {
            tracing::warn!(room.name = %room.name, error = %e, "could not remove the allocation record of a deleted room");
        }
    }

    /// How much longer a message must wait, if it was written without a visibility delay
    /// (older service) and is younger than the grace period.
    fn too_young(&self, message: &ReceivedMessage) -> Option<Duration> {
        let grace = self.inner.settings.delete_grace;
        let inserted = message.inserted_at?;
        let age = OffsetDateTime::now_utc() - inserted;
        let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
        (age + AGE_TOLERANCE < grace).then(|| grace - age)
    }

    async fn forget(&self, message: &ReceivedMessage) {
        if let Err(e) = self.inner.deletion.delete(&message.receipt).await {
            tracing::debug!(error = %e, "could not delete a settled deletion message; it will be seen again");
        }
    }

    async fn defer(&self, message: &ReceivedMessage, by: Duration) {
        if let Err(e) = self
            .inner
            .deletion
            .set_visibility(&message.receipt, by)
            .await
        {
            tracing::debug!(error = %e, "could not defer a deletion message");
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
