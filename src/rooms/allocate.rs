//! Allocation: hand a ready room to a caller, one room per video call across every instance,
//! and refill the pool.
//!
//! The path a citizen waits on, at the floor of one Pexip round trip:
//!
//! 1. claim the call's allocation record (create-only) ∥ receive a pool message;
//! 2. **delete the message** — whoever deletes it owns the room;
//! 3. PATCH the room's tag ∥ record the room in the call's record (`tagging`);
//! 4. answer; confirm `allocated` in the record in the background.
//!
//! The message carries what the answer needs (written by the refill from its create), so no
//! room is read from Pexip; a repeated create for the call reads the record, not Pexip.
//! Creates for one call in one process take turns first (`turns.rs`): for load, not safety.
//!
//! Why it is safe:
//! - *One room, one caller.* Only the caller whose delete succeeds owns a room, and a room
//!   never goes back to the pool once a PATCH for it was sent: a PATCH that failed in a way
//!   that may still apply (timeout, 5xx, dropped connection) can land later, so the room goes
//!   to *quarantine* (the deletion queue, with the tag that was attempted), and the garbage
//!   collector deletes it unless the call's record names it. The fault that taught us this: a
//!   gateway answered 504 and let the Management Node apply the PATCH four seconds later, after
//!   the room had been requeued and handed to another caller. One message per room also
//!   matters (see [`crate::queue::Queue::send_once`]): a duplicated message let two callers
//!   claim one room within milliseconds.
//! - *One call, one room.* The call's record is created only if absent, and changed only by
//!   its owner, on condition that nobody else wrote since (see [`crate::locks`] for when the
//!   owner may answer before confirming, and how a dead owner is taken over). The rejected
//!   alternative — tag first, then look for other rooms with the same tag and let the lowest
//!   id win — cannot see a racer that has not tagged yet: two instances gave one call two
//!   rooms in 6 of 50 calls.
//!
//! Deleting the message before tagging means a crash in between leaks a room (the reconciler
//! finds it); for identity verification a leak is the lesser harm.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::stats::Counters;
use super::{Inner, RoomService, RoomsError};
use crate::domain::VideoCall;
use crate::locks::{Claim, Claimed, HeldRoom, LockError, RecordState, Stale, Waited};
use crate::pexip::{Conference, PexipError, naive_utc};
use crate::queue::{
    DeletionMessage, PoolMessage, PooledRoom, QUARANTINE_REASON, QueueError, ReceivedMessage,
};

/// How long a received pool message stays invisible while we claim it. Long enough for the
/// delete that follows; if we die before it, the room is back in the pool this soon.
const CLAIM_VISIBILITY: Duration = Duration::from_secs(30);
/// Pool messages tried per allocation before falling back to creating a room.
const MAX_POOL_TRIES: usize = 5;
/// Rooms created at once by a refill; the Pexip client's cap bounds the real concurrency.
const REFILL_CONCURRENCY: usize = 5;
/// Steps of one allocation (claim, wait, take over, fill) before giving up: each normally
/// happens once; more means the call's record keeps changing hands.
const MAX_STEPS: usize = 6;

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

/// The next step of an allocation.
enum Step {
    /// Answer the caller.
    Answer(Allocation),
    /// This attempt owns the call: find it a room (with a pool message already received, if
    /// any).
    Fill(Claim, Option<Result<Option<ReceivedMessage>, QueueError>>),
    /// Someone else owns the call: wait for its outcome.
    Wait(crate::locks::Sighting),
    /// Look at the call's record afresh (it changed hands under us).
    Claim,
}

/// How trying one pool room ended.
enum Tried {
    /// The room is the caller's.
    Won(Box<Conference>),
    /// Not usable (garbled, someone else's message, gone, already tagged, or quarantined after
    /// a PATCH that may still apply): try the next one.
    Skipped,
    /// Another attempt took the call over: its outcome is the answer.
    Lost,
}

impl RoomService {
    /// Give the caller of `call` a room tagged with the call's tag URL: the room the call
    /// already has, or a new one.
    pub async fn allocate(&self, call: &VideoCall) -> Result<Allocation, RoomsError> {
        let tag = call.tag(&self.inner.settings.uui.template);
        let locks = &self.inner.locks;
        // A second create for the call in this process waits here, then reads the record once.
        let _turn = self.inner.tag_turns.take(&tag).await;
        // The claim runs beside the pop, so the common path pays no extra round trip.
        let (claimed, popped) = tokio::join!(locks.claim(&tag), self.pop());
        let mut step = match claimed {
            Ok(Claimed::Owned(claim)) => Step::Fill(claim, Some(popped)),
            other => {
                self.release_popped(popped).await;
                self.step_of(other?)?
            }
        };
        for _ in 0..MAX_STEPS {
            step = match step {
                Step::Answer(allocation) => return Ok(allocation),
                Step::Fill(claim, popped) => {
                    let popped = match popped {
                        Some(popped) => popped,
                        None => self.pop().await,
                    };
                    self.fill(claim, popped).await?
                }
                Step::Wait(sighting) => match locks.wait(&tag, sighting).await? {
                    Waited::Allocated(room) => Step::Answer(self.existing(room)?),
                    Waited::Owned(claim) => Step::Fill(claim, None),
                    Waited::Stale(stale) => self.take_over(&tag, stale).await?,
                },
                Step::Claim => self.step_of(locks.claim(&tag).await?)?,
            };
        }
        match step {
            Step::Answer(allocation) => Ok(allocation),
            _ => Err(RoomsError::Lock(LockError::Other(
                "the video call's allocation kept changing hands; try again".to_owned(),
            ))),
        }
    }

    fn step_of(&self, claimed: Claimed) -> Result<Step, RoomsError> {
        Ok(match claimed {
            Claimed::Owned(claim) => Step::Fill(claim, None),
            Claimed::Allocated(room) => Step::Answer(self.existing(room)?),
            Claimed::Busy(sighting) => Step::Wait(sighting),
        })
    }

    /// The answer for a call that already has `room`.
    fn existing(&self, room: HeldRoom) -> Result<Allocation, RoomsError> {
        let conference: Conference = serde_json::from_value(room.view).map_err(|e| {
            RoomsError::Lock(LockError::Other(format!(
                "the allocation record's room cannot be read: {e}"
            )))
        })?;
        Counters::add(&self.inner.stats.allocations_existing, 1);
        tracing::info!(room.name = %conference.name, "video call already has a room");
        Ok(Allocation {
            conference,
            source: AllocationSource::Existing,
        })
    }

    /// Find a room for the call `claim` owns: pool rooms first, then a new one.
    async fn fill(
        &self,
        mut claim: Claim,
        popped: Result<Option<ReceivedMessage>, QueueError>,
    ) -> Result<Step, RoomsError> {
        let mut next = popped.unwrap_or_else(|e| {
            // The pool is unreachable; a room created on the spot still serves the caller.
            tracing::warn!(error = %e, "pool queue unavailable; creating a room directly");
            None
        });
        for _ in 0..MAX_POOL_TRIES {
            let Some(message) = next.take() else { break };
            match self.try_pool_room(&mut claim, message).await {
                Ok(Tried::Won(conference)) => {
                    self.spawn_replenish(1);
                    Counters::add(&self.inner.stats.allocations, 1);
                    tracing::info!(room.name = %conference.name, "room allocated from the pool");
                    return Ok(Step::Answer(Allocation {
                        conference: *conference,
                        source: AllocationSource::Pool,
                    }));
                }
                Ok(Tried::Skipped) => {}
                Ok(Tried::Lost) => return Ok(Step::Claim),
                Err(e) => {
                    self.give_up(claim).await;
                    return Err(e);
                }
            }
            next = self.pop().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "pool queue unavailable while retrying");
                None
            });
        }
        self.create_for(claim).await
    }

    /// Try to make one pool room the call's.
    async fn try_pool_room(
        &self,
        claim: &mut Claim,
        message: ReceivedMessage,
    ) -> Result<Tried, RoomsError> {
        let pool = &self.inner.pool;
        let Ok(entry) = PoolMessage::parse(&message.text) else {
            tracing::warn!("garbled pool message moved to the poison queue");
            if let Err(e) = pool.move_to(&message, &self.inner.pool_poison).await {
                tracing::warn!(error = %e, "could not move a garbled pool message");
            }
            return Ok(Tried::Skipped);
        };
        match pool.delete(&message.receipt).await {
            Ok(()) => {}
            // Our claim expired and someone else received the message: the room is theirs.
            Err(QueueError::StaleReceipt | QueueError::MessageNotFound) => {
                return Ok(Tried::Skipped);
            }
            Err(e) => return Err(e.into()),
        }
        // From here the room is ours alone.
        let Some(mut room) = self.pooled_room(&entry).await? else {
            return Ok(Tried::Skipped);
        };
        let tag = claim.tag().to_owned();
        // What the caller will be answered: the room with the call's tag.
        room.tag.clone_from(&tag);
        let held = held_room(&room)?;
        let patch = json!({ "tag": tag });
        let (patched, recorded) = tokio::join!(
            self.inner.pexip.patch_conference(room.id, &patch),
            self.inner
                .locks
                .record(claim, RecordState::Tagging { room: held.clone() }),
        );
        match patched {
            Ok(()) => {}
            // Gone: nothing was tagged, nothing to set aside.
            Err(PexipError::NotFound) => {
                tracing::info!(room.name = %room.name, "pooled room no longer exists; skipped");
                return match recorded {
                    Ok(()) => Ok(Tried::Skipped),
                    Err(LockError::Changed) => Ok(Tried::Lost),
                    Err(e) => Err(e.into()),
                };
            }
            Err(e) => {
                // It may still be applied (or was, and the answer got lost): never back in
                // the pool. Quarantine it and replace it.
                self.quarantine(&room.name, &tag).await;
                self.spawn_replenish(1);
                tracing::warn!(room.name = %room.name, error = %e, "tagging failed; room quarantined");
                return match recorded {
                    Err(LockError::Changed) => Ok(Tried::Lost),
                    Err(record_error) => Err(record_error.into()),
                    // Pexip may be struggling with this room only: try the next one. A
                    // definite refusal (credentials, validation) would refuse every room.
                    Ok(()) if e.may_have_applied() => Ok(Tried::Skipped),
                    Ok(()) => Err(e.into()),
                };
            }
        }
        if let Err(e) = recorded {
            // Tagged for the call, but not recorded as the call's (someone took the call
            // over, or the record could not be written): it must not be answered, and it
            // must not go back to the pool.
            self.quarantine(&room.name, &tag).await;
            self.spawn_replenish(1);
            return match e {
                LockError::Changed => Ok(Tried::Lost),
                e => Err(e.into()),
            };
        }
        let allocated = RecordState::Allocated { room: held };
        if self.inner.locks.is_fresh(claim) {
            // No takeover can have happened yet: answer now, confirm in the background.
            let (locks, mut confirm) = (self.inner.locks.clone(), claim.clone());
            self.inner.tasks.spawn(async move {
                if let Err(e) = locks.record(&mut confirm, allocated).await {
                    // Waiters see `tagging` until they take over, find the room tagged for
                    // the call, and adopt it.
                    tracing::warn!(error = %e, "could not confirm an allocation record");
                }
            });
            return Ok(Tried::Won(Box::new(room)));
        }
        // Slow: someone may have taken over. The conditional write says whether.
        match self.inner.locks.record(claim, allocated).await {
            Ok(()) => Ok(Tried::Won(Box::new(room))),
            Err(e) => {
                self.quarantine(&room.name, &tag).await;
                self.spawn_replenish(1);
                match e {
                    LockError::Changed => Ok(Tried::Lost),
                    e => Err(e.into()),
                }
            }
        }
    }

    /// The room a pool message stands for: from the message itself, or (for messages written
    /// before they carried the room) read once from Pexip. `None`: gone, or already tagged.
    async fn pooled_room(&self, entry: &PoolMessage) -> Result<Option<Conference>, RoomsError> {
        if let (
            Some(id),
            Some(PooledRoom {
                guest_pin,
                aliases,
                created,
            }),
        ) = (entry.id, &entry.room)
        {
            return Ok(Some(Conference::as_created(
                id,
                &entry.name,
                guest_pin,
                aliases,
                "",
                created.clone(),
            )));
        }
        let pexip = &self.inner.pexip;
        let found = match entry.id {
            Some(id) => match pexip.get_conference(id).await {
                Ok(c) => Ok(Some(c)),
                Err(PexipError::NotFound) => Ok(None),
                Err(e) => Err(e),
            },
            None => pexip.find_conference(&entry.name).await,
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                // Nothing was sent to the room: it can go back to the pool.
                self.requeue(entry).await;
                return Err(e.into());
            }
        };
        let Some(mut conference) = found.filter(|c| c.name == entry.name) else {
            tracing::info!(room.name = %entry.name, "pooled room no longer exists; skipped");
            return Ok(None);
        };
        if !conference.tag.is_empty() {
            // Never hand out a room that is already someone's, whatever the queue says.
            tracing::warn!(room.name = %conference.name, "pooled room already tagged; skipped");
            return Ok(None);
        }
        // The answer never carries the host PIN; neither does the record.
        conference.pin.clear();
        Ok(Some(conference))
    }

    /// The pool had no usable room: create one for the call, tagged in the create itself.
    async fn create_for(&self, mut claim: Claim) -> Result<Step, RoomsError> {
        Counters::add(&self.inner.stats.pool_empty_fallbacks, 1);
        tracing::warn!("pool empty: creating a room synchronously");
        self.spawn_top_up();
        let tag = claim.tag().to_owned();
        let new = match self.new_room(&tag) {
            Ok(new) => new,
            Err(e) => {
                self.give_up(claim).await;
                return Err(e);
            }
        };
        let id = match self.inner.pexip.create_conference_id(&new).await {
            Ok(id) => id,
            Err(e) => {
                if e.may_have_applied() {
                    // The client looked for it and did not find it, but a create that lands
                    // late would carry the call's tag: set the name aside.
                    self.quarantine(&new.name, &tag).await;
                }
                self.give_up(claim).await;
                return Err(e.into());
            }
        };
        let room = Conference::as_created(
            id,
            &new.name,
            &new.guest_pin,
            &new.aliases,
            &tag,
            Some(naive_utc(OffsetDateTime::now_utc())),
        );
        // Created with the tag: nothing is left that could fail, so record it as the call's.
        let allocated = RecordState::Allocated {
            room: held_room(&room)?,
        };
        match self.inner.locks.record(&mut claim, allocated).await {
            Ok(()) => {
                Counters::add(&self.inner.stats.allocations, 1);
                tracing::info!(room.name = %room.name, "room created for the video call");
                Ok(Step::Answer(Allocation {
                    conference: room,
                    source: AllocationSource::Created,
                }))
            }
            Err(e) => {
                self.quarantine(&room.name, &tag).await;
                match e {
                    LockError::Changed => Ok(Step::Claim),
                    e => {
                        self.give_up(claim).await;
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Take over a call whose owner stopped making progress.
    async fn take_over(&self, tag: &str, stale: Stale) -> Result<Step, RoomsError> {
        let locks = &self.inner.locks;
        let Some(room) = stale.room.clone() else {
            // It never got as far as a room.
            return Ok(match locks.take_over(stale, RecordState::Claiming).await? {
                Some(claim) => Step::Fill(claim, None),
                None => Step::Claim,
            });
        };
        // The owner stopped while tagging `room`. Its PATCH had applied if it answered the
        // room (it answers only after a successful PATCH): a room tagged for the call may
        // have been answered, so it is adopted; any other cannot have been.
        let current = match self.inner.pexip.get_conference(room.id).await {
            Ok(current) => Some(current),
            Err(PexipError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        if current.as_ref().is_some_and(|c| c.tag == tag) {
            let adopted = RecordState::Allocated { room: room.clone() };
            return Ok(match locks.take_over(stale, adopted).await? {
                Some(_) => {
                    tracing::info!(room.name = %room.name, "adopted the room of a stalled allocation");
                    Step::Answer(self.existing(room)?)
                }
                None => Step::Claim,
            });
        }
        Ok(match locks.take_over(stale, RecordState::Claiming).await? {
            Some(claim) => {
                if current.is_some_and(|c| c.tag.is_empty()) {
                    // Its PATCH may still land: set it aside.
                    self.quarantine(&room.name, tag).await;
                }
                Step::Fill(claim, None)
            }
            None => Step::Claim,
        })
    }

    /// The allocation failed before any room became the call's: give the claim up so the
    /// next create for the call need not wait for it to go stale.
    async fn give_up(&self, claim: Claim) {
        if let Err(e) = self.inner.locks.release(claim).await {
            tracing::warn!(error = %e, "could not release an allocation record");
        }
    }

    /// Set a room aside for deletion: a PATCH with the call's `tag` may have reached it, so
    /// it never goes back to the pool. The garbage collector deletes it after the grace
    /// period unless it is live or the call's record names it. If even this fails the room
    /// is leaked (logged).
    async fn quarantine(&self, name: &str, tag: &str) {
        Counters::add(&self.inner.stats.rooms_quarantined, 1);
        let message = DeletionMessage {
            name: name.to_owned(),
            reason: QUARANTINE_REASON.to_owned(),
            first_enqueued: OffsetDateTime::now_utc(),
            tag: Some(tag.to_owned()),
        };
        if let Err(e) = self
            .inner
            .deletion
            .send(&message.to_text(), self.inner.settings.delete_grace)
            .await
        {
            tracing::warn!(room.name = %name, error = %e, "could not quarantine a room; it is leaked");
        }
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
    async fn release_popped(&self, popped: Result<Option<ReceivedMessage>, QueueError>) {
        let Ok(Some(message)) = popped else { return };
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

    /// Put a claimed room that nothing was sent to back in the pool. If this fails too the
    /// room is leaked, and the reconciler will find it.
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
        let new = match self.new_room("") {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(error = %e, "could not create a pool room");
                return false;
            }
        };
        // One request: the message needs the id (from the 201's Location) and what we sent.
        let id = match background.create_conference_id(&new).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "could not create a pool room");
                return false;
            }
        };
        let entry = PoolMessage {
            name: new.name,
            id: Some(id),
            room: Some(PooledRoom {
                guest_pin: new.guest_pin,
                aliases: new.aliases,
                created: Some(naive_utc(OffsetDateTime::now_utc())),
            }),
        };
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

/// A room as the call's record keeps it: the answer's view, never the host PIN.
fn held_room(room: &Conference) -> Result<HeldRoom, RoomsError> {
    let mut view = room.clone();
    view.pin.clear();
    view.extra.clear();
    let view = serde_json::to_value(&view)
        .map_err(|e| RoomsError::Lock(LockError::Other(format!("cannot encode the room: {e}"))))?;
    Ok(HeldRoom {
        id: room.id,
        name: room.name.clone(),
        view,
    })
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
