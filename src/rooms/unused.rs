//! Rooms handed out and never used (`gc_timer`): a citizen who gave up leaves a tagged room
//! whose conference never starts, so no `conference_ended` ever queues it for deletion.
//! After `ROOM_MAX_UNUSED_HOURS` (default 24) without a conference the garbage collector
//! deletes it.
//!
//! How the two times are known:
//! - **tagged at**: the last write of the call's allocation record, by the storage service's
//!   clock. The record is written when the room is tagged for the call (or adopted from a
//!   stalled allocation) and never after, so it is the time of the hand-out, measured on a
//!   clock no instance can skew. Pexip keeps no such time (only `creation_time`, which for a
//!   pool room is hours earlier), and rooms without a record (tagged through `PATCH
//!   /room/{name}`, or by the replaced service) are not judged: their hand-out time is
//!   unknown. `ROOM_MAX_UNUSED_HOURS` is therefore bounded by
//!   `ALLOCATION_RECORD_MAX_AGE_HOURS`, so the sweep never removes the evidence first.
//! - **live since**: not tracked. A conference that ran and ended already queued the room
//!   through its `conference_ended` (the usual way out); what is left to know is whether one
//!   is running now, and that is the status API, asked for the room right before its
//!   `DELETE` (`deletion.rs`). Recording every start in the record would cost a conditional
//!   blob write per node per event, for an answer the status API gives exactly when it
//!   matters.
//!
//! So a room is deleted when its record was written more than the limit ago, it still
//! carries the record's tag (a room re-tagged since belongs to another call), and no
//! conference is live in it — never while in use.

use serde::Serialize;
use time::OffsetDateTime;

use super::deletion::Deletion;
use super::stats::Counters;
use super::{RoomService, RoomsError};
use crate::pexip::PexipError;

/// What the search for unused rooms did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnusedReport {
    /// Allocation records older than the limit that name a room.
    pub records: usize,
    /// Rooms deleted (their records with them).
    pub deleted: usize,
    /// Rooms kept because a conference is live in them.
    pub live: usize,
    /// Records whose room is gone or carries another tag now (the record is left to the
    /// sweep, or removed with the room).
    pub moved_on: usize,
    /// Rooms that could not be checked or deleted (tried again next run).
    pub failed: usize,
}

impl RoomService {
    /// Delete the rooms handed out more than `ROOM_MAX_UNUSED_HOURS` ago whose conference
    /// is not live.
    pub async fn delete_unused_rooms(&self) -> Result<UnusedReport, RoomsError> {
        let cutoff = OffsetDateTime::now_utc() - self.inner.settings.max_unused;
        self.delete_rooms_handed_out_before(cutoff).await
    }

    /// [`Self::delete_unused_rooms`] with an explicit cutoff: rooms whose record was last
    /// written before it (tests pass one, as the records' clock cannot be moved).
    pub async fn delete_rooms_handed_out_before(
        &self,
        cutoff: OffsetDateTime,
    ) -> Result<UnusedReport, RoomsError> {
        let records = self.inner.locks.naming_rooms_before(cutoff).await?;
        let mut report = UnusedReport {
            records: records.len(),
            ..UnusedReport::default()
        };
        let background = self.inner.pexip.background();
        for record in records {
            let Some(held) = record.state.room() else {
                continue;
            };
            let room = match background.get_conference(held.id).await {
                Ok(room) => room,
                Err(PexipError::NotFound) => {
                    // Deleted some other way: a repeated create must not be answered with it.
                    if let Err(e) = self.inner.locks.forget_room(&record.tag, held.id).await {
                        tracing::warn!(room.name = %held.name, error = %e, "could not remove the allocation record of a room that is gone");
                    }
                    report.moved_on += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(room.name = %held.name, error = %e, "cannot read a room handed out long ago; will retry");
                    report.failed += 1;
                    continue;
                }
            };
            if room.name != held.name || room.tag != record.tag {
                report.moved_on += 1;
                continue;
            }
            match self
                .delete_if_idle(&room, &room.tag, "room handed out and never used deleted")
                .await
            {
                Deletion::Deleted => report.deleted += 1,
                Deletion::Gone | Deletion::Refused => report.moved_on += 1,
                Deletion::Live => report.live += 1,
                Deletion::Failed => report.failed += 1,
            }
        }
        Counters::add(&self.inner.stats.rooms_deleted, report.deleted as u64);
        if report.deleted > 0 {
            tracing::info!(
                deleted = report.deleted,
                live = report.live,
                "rooms handed out and never used deleted"
            );
        }
        Ok(report)
    }
}
