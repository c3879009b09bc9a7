//! The journal: every write to a room (create, update, delete) and every start and end of a
//! conference in one, in the order they took effect, so tests prove invariants from the
//! whole history rather than from the end state ("no room ever carried two callers' tags",
//! "no handed-out room was deleted before its conference ended").
//!
//! It lives inside the store, under the store's lock, so its order is the order of the
//! writes. Served as `GET /_sim/journal` and [`super::SimHandle::journal`].

use serde::{Deserialize, Serialize};

/// What happened to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    /// `POST conference/`.
    Created,
    /// `PATCH` or `PUT conference/<id>/` (also when the tag did not change).
    Updated,
    /// `DELETE conference/<id>/` (or the collection).
    Deleted,
    /// A conference started in the room (control API).
    ConferenceStarted,
    /// The room's conference ended (control API or the disconnect command).
    ConferenceEnded,
}

/// One entry of the journal; the JSON of `GET /_sim/journal` is an array of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the journal, from 1.
    pub seq: u64,
    /// When it took effect, by the simulator clock (Unix seconds).
    pub time: f64,
    /// What happened.
    pub kind: JournalKind,
    /// The HTTP method of a write (`POST`, `PATCH`, `PUT`, `DELETE`); `None` for conferences.
    pub method: Option<String>,
    /// The room's id.
    pub room_id: u64,
    /// The room's name (after the write; before it for a delete).
    pub room: String,
    /// The room's tag before the write; `None` for a create.
    pub tag_before: Option<String>,
    /// The room's tag after the write; `None` for a delete.
    pub tag_after: Option<String>,
}

/// The entries so far.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: Vec<JournalEntry>,
}

/// One entry before it gets its position.
pub(crate) struct Happened<'a> {
    pub(crate) kind: JournalKind,
    pub(crate) method: Option<&'a str>,
    pub(crate) room_id: u64,
    pub(crate) room: &'a str,
    pub(crate) tag_before: Option<&'a str>,
    pub(crate) tag_after: Option<&'a str>,
}

impl Journal {
    pub(crate) fn record(&mut self, time: f64, happened: Happened<'_>) {
        let seq = self.entries.len() as u64 + 1;
        self.entries.push(JournalEntry {
            seq,
            time,
            kind: happened.kind,
            method: happened.method.map(str::to_owned),
            room_id: happened.room_id,
            room: happened.room.to_owned(),
            tag_before: happened.tag_before.map(str::to_owned),
            tag_after: happened.tag_after.map(str::to_owned),
        });
    }

    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        self.entries.clone()
    }
}
