//! The simulator's shared state, and the operations that both the `/_sim/` control routes
//! and [`super::SimHandle`] call, so each has exactly one code path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::clock::SimClock;
use super::counters::CounterCell;
use super::events::{Completion, EventHub};
use super::faults::FaultTable;
use super::journal::{Happened, JournalEntry, JournalKind};
use super::keys::ClientRegistry;
use super::live::LiveConference;
use super::oauth::TokenStore;
use super::store::{AutoParticipantRecord, ConferenceRecord, Store};
use super::validation::{self, FieldErrors};
use super::{SimError, SimRoom};

/// Most participants one simulated conference may have.
const MAX_PARTICIPANTS: usize = 10_000;
/// Most nodes one simulated conference may span.
const MAX_NODES: usize = 1_000;
/// `disconnect_reason` of participants whose conference ended normally.
pub(crate) const REASON_HANGUP: &str = "Call disconnected";
/// `disconnect_reason` of participants removed by `command/v1/conference/disconnect/`.
pub(crate) const REASON_API: &str = "Disconnected by an API request";

/// Cheap-to-clone handle on the state, as axum handlers receive it.
pub(crate) type Shared = Arc<SimState>;

/// Everything the running simulator holds.
pub(crate) struct SimState {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) base_url: String,
    /// `{base_url}/oauth/token/`, the audience assertions must name.
    pub(crate) token_url: String,
    pub(crate) token_lifetime: Duration,
    pub(crate) absolute_location: bool,
    pub(crate) max_list_limit: usize,
    pub(crate) basic_auth: Option<(String, String)>,
    pub(crate) replication_delay: Mutex<Duration>,
    pub(crate) clock: SimClock,
    pub(crate) clients: ClientRegistry,
    pub(crate) tokens: Mutex<TokenStore>,
    pub(crate) store: Mutex<Store>,
    pub(crate) counters: Arc<CounterCell>,
    pub(crate) faults: Mutex<FaultTable>,
    pub(crate) events: EventHub,
}

impl SimState {
    /// Lock the data store. Never held across an `.await`.
    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }

    /// Whether a room has outlived the replication delay (by the simulator clock). Only
    /// creation counts: a PATCH (say, new PINs) does not make a room undialable again, although
    /// real nodes also take ~90 s to see such a change. Kept simple on purpose; the service
    /// handles that window with its own ready delay.
    fn is_dialable(&self, room: &ConferenceRecord) -> bool {
        let delay = *self.replication_delay.lock().expect("delay lock");
        self.clock.elapsed().saturating_sub(room.created_at) >= delay
    }

    /// Every room, in id order, as the control API shows it.
    pub(crate) fn rooms(&self) -> Vec<SimRoom> {
        let store = self.store();
        store
            .conferences()
            .map(|room| SimRoom {
                id: room.id,
                name: room.text("name").to_owned(),
                tag: room.text("tag").to_owned(),
                aliases: store.aliases_of(room.id).map(|a| a.alias.clone()).collect(),
                pin: room.text("pin").to_owned(),
                guest_pin: room.text("guest_pin").to_owned(),
                dialable: self.is_dialable(room),
                live: store.live.values().any(|l| l.room_id == room.id),
                automatic_participants: store
                    .auto_participants_of(room.id)
                    .map(AutoParticipantRecord::uri)
                    .collect(),
            })
            .collect()
    }

    /// The status API objects of the participants of the conference live in `room`.
    pub(crate) fn participants(&self, room: &str) -> Vec<Value> {
        let store = self.store();
        store
            .live
            .values()
            .filter(|c| c.name == room)
            .flat_map(|c| c.participants.iter().map(move |p| p.status_json(c)))
            .collect()
    }

    /// Create an `automatic_participant` from a request body (`POST
    /// configuration/v1/automatic_participant/`, or [`super::SimHandle`]); returns its id, or
    /// Pexip's field errors.
    pub(crate) fn create_auto_participant(
        &self,
        input: &serde_json::Map<String, Value>,
    ) -> Result<u64, FieldErrors> {
        let mut store = self.store();
        let write = validation::automatic_participant(&store, input, None)?;
        let now = self.clock.naive_now();
        Ok(store.create_auto_participant(
            write.fields,
            write.conferences.as_deref().unwrap_or_default(),
            &now,
        ))
    }

    /// Start a conference in the room named or aliased `room`, with `participants` spread
    /// over `nodes` Conferencing Nodes; returns its status UUID once the start events were
    /// delivered (or one delivery failed).
    pub(crate) async fn start_conference(
        &self,
        room: &str,
        participants: usize,
        nodes: usize,
    ) -> Result<String, SimError> {
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(SimError::Invalid(format!("nodes must be 1..={MAX_NODES}")));
        }
        if !(1..=MAX_PARTICIPANTS).contains(&participants) {
            return Err(SimError::Invalid(format!(
                "participants must be 1..={MAX_PARTICIPANTS}"
            )));
        }
        let (id, completions) = {
            let mut store = self.store();
            let record = store
                .find_room(room)
                .ok_or_else(|| SimError::UnknownRoom(room.to_owned()))?;
            if !self.is_dialable(record) {
                return Err(SimError::NotDialable);
            }
            if store.live.values().any(|l| l.room_id == record.id) {
                return Err(SimError::AlreadyLive(room.to_owned()));
            }
            let automatic: Vec<&AutoParticipantRecord> =
                store.auto_participants_of(record.id).collect();
            let conference = LiveConference::new(
                record,
                room,
                participants,
                nodes,
                &automatic,
                self.clock.unix_now(),
            );
            // Queued while the store is locked, so a concurrent end cannot overtake them.
            let completions = self.publish_start(&conference);
            let id = conference.id.clone();
            store.journal.record(
                self.clock.unix_now(),
                Happened {
                    kind: JournalKind::ConferenceStarted,
                    method: None,
                    room_id: conference.room_id,
                    room: &conference.name,
                    tag_before: None,
                    tag_after: None,
                },
            );
            store.live.insert(id.clone(), conference);
            (id, completions)
        };
        futures::future::join_all(completions.into_iter().map(Completion::wait)).await;
        Ok(id)
    }

    /// End the live conference of the room named or aliased `room` (its name as copied at
    /// start also matches), once its end events were delivered (or one delivery failed).
    pub(crate) async fn end_conference(&self, room: &str) -> Result<(), SimError> {
        let completions = {
            let mut store = self.store();
            let by_name = store
                .live
                .values()
                .find(|l| l.name == room)
                .map(|l| l.id.clone());
            let id = match by_name {
                Some(id) => id,
                None => {
                    let record = store
                        .find_room(room)
                        .ok_or_else(|| SimError::UnknownRoom(room.to_owned()))?;
                    let room_id = record.id;
                    store
                        .live
                        .values()
                        .find(|l| l.room_id == room_id)
                        .map(|l| l.id.clone())
                        .ok_or_else(|| SimError::NotLive(room.to_owned()))?
                }
            };
            self.remove_live(&mut store, &id, REASON_HANGUP)
        };
        futures::future::join_all(completions.into_iter().map(Completion::wait)).await;
        Ok(())
    }

    /// End a live conference by status UUID (`command/v1/conference/disconnect/`) without
    /// waiting for event delivery. `false` if there is no such conference.
    pub(crate) fn disconnect(&self, id: &str) -> bool {
        let mut store = self.store();
        if !store.live.contains_key(id) {
            return false;
        }
        drop(self.remove_live(&mut store, id, REASON_API));
        true
    }

    fn remove_live(&self, store: &mut Store, id: &str, reason: &str) -> Vec<Completion> {
        match store.live.remove(id) {
            Some(conference) => {
                store.journal.record(
                    self.clock.unix_now(),
                    Happened {
                        kind: JournalKind::ConferenceEnded,
                        method: None,
                        room_id: conference.room_id,
                        room: &conference.name,
                        tag_before: None,
                        tag_after: None,
                    },
                );
                self.publish_end(&conference, reason)
            }
            None => Vec::new(),
        }
    }

    /// The journal so far (`GET /_sim/journal`).
    pub(crate) fn journal(&self) -> Vec<JournalEntry> {
        self.store().journal.entries()
    }

    /// Per node: `conference_started`, then per participant (automatic participants dialled
    /// out included) `participant_connected` (connecting) and `participant_updated` (in the
    /// conference).
    fn publish_start(&self, conference: &LiveConference) -> Vec<Completion> {
        let time = conference.start_time;
        conference
            .nodes
            .iter()
            .map(|node| {
                self.events.publish(node, time, &|_version| {
                    let mut events = vec![("conference_started", conference.event_data(None))];
                    for p in conference.on_node(node) {
                        events.push((
                            "participant_connected",
                            Value::Object(p.event_data(conference, true)),
                        ));
                        events.push((
                            "participant_updated",
                            Value::Object(p.event_data(conference, false)),
                        ));
                    }
                    events
                })
            })
            .collect()
    }

    /// Per node: per participant (v2) `participant_media_streams_destroyed` and
    /// `participant_disconnected` (v1 carries `media_streams` in it), then one
    /// `conference_ended`.
    fn publish_end(&self, conference: &LiveConference, reason: &str) -> Vec<Completion> {
        let end = self.clock.unix_now();
        conference
            .nodes
            .iter()
            .map(|node| {
                self.events.publish(node, end, &|version| {
                    let mut events = Vec::new();
                    for p in conference.on_node(node) {
                        let streams = p.media_streams(end);
                        if version >= 2 {
                            events.push((
                                "participant_media_streams_destroyed",
                                json!({"uuid": p.id, "media_streams": streams.clone()}),
                            ));
                        }
                        let mut data = p.event_data(conference, false);
                        data.insert("disconnect_reason".into(), json!(reason));
                        data.insert("duration".into(), json!(end - p.connect_time));
                        data.insert("end_time".into(), json!(end));
                        if version < 2 {
                            data.insert("media_streams".into(), streams);
                        }
                        events.push(("participant_disconnected", Value::Object(data)));
                    }
                    events.push(("conference_ended", conference.event_data(Some(end))));
                    events
                })
            })
            .collect()
    }
}
