//! The event sink's work: turn `conference_ended` events into deletion messages.
//!
//! Nothing is deleted here: the message is delayed by the grace period, and the garbage
//! collector checks Pexip (still ours? live again?) before it deletes anything. A forged or
//! repeated event can therefore at worst cost one status check.

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::Counters;
use super::{RoomService, RoomsError};
use crate::domain::{RoomName, SinkEvent};
use crate::queue::{CONFERENCE_ENDED_REASON, DeletionMessage};

/// What the event sink did with one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventReport {
    /// Well-formed events in the request (bulk envelopes unpacked).
    pub events: usize,
    /// Items of a bulk envelope that were not events (skipped, logged).
    pub malformed: usize,
    /// Rooms queued for deletion.
    pub queued: usize,
    /// `conference_ended` events for persistent rooms, rooms not ours, or without a name.
    pub skipped: usize,
}

impl RoomService {
    /// Queue each room whose conference ended for deletion after the grace period. A room
    /// named several times in one request (one `conference_ended` per node) is queued once.
    pub async fn handle_events(&self, events: &[SinkEvent]) -> Result<EventReport, RoomsError> {
        let malformed = events
            .iter()
            .filter(|e| matches!(e, SinkEvent::Malformed))
            .count();
        let mut report = EventReport {
            events: events.len() - malformed,
            malformed,
            ..EventReport::default()
        };
        if malformed > 0 {
            // Never the items themselves: they may hold anything.
            tracing::warn!(
                malformed,
                events = report.events,
                "event-sink bulk body with malformed items; the rest was accepted"
            );
        }
        // Room → the tag its conference had (the GC refuses a room whose tag has changed
        // since, either way).
        let mut rooms: BTreeMap<&RoomName, &str> = BTreeMap::new();
        for event in events {
            match event {
                SinkEvent::ConferenceEnded { room, tag, .. }
                    if !self.is_persistent(room.as_str()) && self.is_ours(room.as_str(), tag) =>
                {
                    rooms.insert(room, tag.as_str());
                }
                SinkEvent::ConferenceEnded { room, .. } => {
                    tracing::debug!(room.name = %room, "conference_ended for a room we do not delete");
                    report.skipped += 1;
                }
                SinkEvent::UnnamedConferenceEnded => report.skipped += 1,
                SinkEvent::Ignored(_) | SinkEvent::Malformed => {}
            }
        }
        let grace = self.inner.settings.delete_grace;
        for (room, tag) in rooms {
            // The tag even when empty: "ended untagged" lets the GC refuse a room handed out
            // since.
            let message = DeletionMessage::new(room.as_str(), CONFERENCE_ENDED_REASON, Some(tag));
            self.inner.deletion.send(&message.to_text(), grace).await?;
            report.queued += 1;
            Counters::add(&self.inner.stats.deletions_queued, 1);
            tracing::info!(room.name = %room, grace_s = grace.as_secs(), "room queued for deletion");
        }
        Ok(report)
    }
}
