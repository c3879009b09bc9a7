//! The last step of every automatic deletion — the garbage collector (ended, quarantined,
//! leaked and unused rooms), the pool trim and the bulk delete: the rules each of them must
//! keep before a `DELETE`, in one place (docs/ARCHITECTURE.md, Safety rules, rule 4).
//!
//! A room is deleted only when it is ours (our name prefix or our tag format), not
//! persistent, and not live according to Pexip's status API asked for that room right before
//! the `DELETE`. A snapshot taken for a whole batch would be seconds old by the time the last
//! room of the batch is deleted, and a citizen who joined meanwhile would lose the room.
//! Whatever is deleted, the allocation record of its call goes with it when it names the
//! room, so a repeated create is never answered with a room that is gone.

use super::RoomService;
use crate::pexip::{Conference, Deleted};

/// How an attempt to delete one room ended.
#[derive(Debug)]
pub(super) enum Deletion {
    /// Deleted now.
    Deleted,
    /// It was already gone (404).
    Gone,
    /// A conference is running in it: left alone.
    Live,
    /// Persistent, or not ours: never deleted automatically.
    Refused,
    /// Pexip could not be asked, or refused the delete.
    Failed,
}

impl RoomService {
    /// Delete `room` unless it is persistent, not ours — judged by its name and `tag` (the
    /// room's tag, or for a quarantined room the tag its PATCH attempted) — or live right
    /// now. `what` names the deletion in the log line.
    pub(super) async fn delete_if_idle(
        &self,
        room: &Conference,
        tag: &str,
        what: &'static str,
    ) -> Deletion {
        if self.is_persistent(&room.name) || !self.is_ours(&room.name, tag) {
            tracing::warn!(room.name = %room.name, "{what}: refused, the room is persistent or not ours");
            return Deletion::Refused;
        }
        let background = self.inner.pexip.background();
        match background.is_live(&room.name).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(room.name = %room.name, "{what}: not now, a conference is live in it");
                return Deletion::Live;
            }
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "{what}: cannot ask whether it is live; will retry");
                return Deletion::Failed;
            }
        }
        let deletion = match background.delete_conference(room.id).await {
            Ok(Deleted::Now) => {
                tracing::info!(room.name = %room.name, "{what}");
                Deletion::Deleted
            }
            Ok(Deleted::AlreadyGone) => Deletion::Gone,
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "{what}: the delete failed; will retry");
                return Deletion::Failed;
            }
        };
        if !room.tag.is_empty() {
            self.forget_record(room).await;
        }
        deletion
    }

    /// Remove the allocation record of a deleted room's call (if it names the room). A
    /// failure only leaves it for the sweep.
    pub(super) async fn forget_record(&self, room: &Conference) {
        if let Err(e) = self.inner.locks.forget_room(&room.tag, room.id).await {
            tracing::warn!(room.name = %room.name, error = %e, "could not remove the allocation record of a deleted room");
        }
    }
}
