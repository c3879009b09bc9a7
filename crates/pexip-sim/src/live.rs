//! Simulated live conferences: who is in them, on which Conferencing Nodes, and their JSON
//! forms in the status API (docs/pexip.md §7.1, §7.2) and in event-sink `data` (§8.4).
//!
//! Participants are the callers a test asks for (dialled in over WebRTC) plus, as Pexip does
//! when a conference starts, one dial-out per automatic participant linked to the room
//! (docs/pexip.md §9).

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::clock::naive_utc;
use super::store::{AutoParticipantRecord, ConferenceRecord};

/// Status API collection paths.
pub(crate) const STATUS_CONFERENCE_PATH: &str = "/api/admin/status/v1/conference/";
pub(crate) const STATUS_PARTICIPANT_PATH: &str = "/api/admin/status/v1/participant/";

/// A conference running in a room, spread over one or more nodes.
#[derive(Debug, Clone)]
pub(crate) struct LiveConference {
    /// The status UUID.
    pub(crate) id: String,
    pub(crate) room_id: u64,
    /// Copied from the room at start, as Pexip does.
    pub(crate) name: String,
    pub(crate) tag: String,
    pub(crate) service_type: String,
    pub(crate) start_time: f64,
    /// Node addresses, one publisher each.
    pub(crate) nodes: Vec<String>,
    pub(crate) participants: Vec<LiveParticipant>,
}

/// One participant of a live conference.
#[derive(Debug, Clone)]
pub(crate) struct LiveParticipant {
    pub(crate) id: String,
    pub(crate) call_uuid: String,
    pub(crate) conversation_id: String,
    pub(crate) node: String,
    pub(crate) role: &'static str,
    /// `in` for callers, `out` for automatic participants Pexip dialled.
    pub(crate) call_direction: &'static str,
    /// As the status API spells it: `WebRTC` for callers, `SIP`, `H323`, ... for dial-outs.
    pub(crate) protocol: String,
    pub(crate) display_name: String,
    pub(crate) source_alias: String,
    pub(crate) destination_alias: String,
    pub(crate) remote_address: String,
    pub(crate) connect_time: f64,
}

/// The address of the `i`-th simulated Conferencing Node.
pub(crate) fn node_address(i: usize) -> String {
    format!("10.44.{}.{}", i / 250, i % 250 + 1)
}

impl LiveConference {
    /// Start a conference in `room` with `participants` callers spread round-robin over
    /// `nodes` nodes (the first caller is the host, `chair`; the rest are guests), and dial
    /// out to each of `automatic` from the first node.
    pub(crate) fn new(
        room: &ConferenceRecord,
        dialled: &str,
        participants: usize,
        nodes: usize,
        automatic: &[&AutoParticipantRecord],
        now: f64,
    ) -> Self {
        let nodes: Vec<String> = (0..nodes).map(node_address).collect();
        let callers = (0..participants).map(|i| {
            let display_name = format!("Participant {}", i + 1);
            LiveParticipant {
                id: Uuid::new_v4().to_string(),
                call_uuid: Uuid::new_v4().to_string(),
                conversation_id: Uuid::new_v4().to_string(),
                node: nodes[i % nodes.len()].clone(),
                role: if i == 0 { "chair" } else { "guest" },
                call_direction: "in",
                protocol: "WebRTC".to_owned(),
                source_alias: format!(
                    "sip:{}@example.com",
                    display_name.replace(' ', ".").to_lowercase()
                ),
                display_name,
                destination_alias: dialled.to_owned(),
                remote_address: format!("192.0.2.{}", i % 250 + 1),
                connect_time: now,
            }
        });
        let dial_outs = automatic.iter().enumerate().map(|(i, p)| {
            let alias = p.text("alias").to_owned();
            let display_name = match p.text("remote_display_name") {
                "" => alias.clone(),
                name => name.to_owned(),
            };
            LiveParticipant {
                id: Uuid::new_v4().to_string(),
                call_uuid: Uuid::new_v4().to_string(),
                conversation_id: Uuid::new_v4().to_string(),
                node: nodes[0].clone(),
                role: if p.text("role") == "chair" {
                    "chair"
                } else {
                    "guest"
                },
                call_direction: "out",
                protocol: p.text("protocol").to_uppercase(),
                display_name,
                // Pexip calls out from the room: the caller id is the room's own alias.
                source_alias: dialled.to_owned(),
                destination_alias: alias,
                remote_address: format!("198.51.100.{}", i % 250 + 1),
                connect_time: now,
            }
        });
        let participants = callers.chain(dial_outs).collect();
        Self {
            id: Uuid::new_v4().to_string(),
            room_id: room.id,
            name: room.text("name").to_owned(),
            tag: room.text("tag").to_owned(),
            service_type: room.text("service_type").to_owned(),
            start_time: now,
            nodes,
            participants,
        }
    }

    /// The participants connected through `node`.
    pub(crate) fn on_node<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = &'a LiveParticipant> {
        self.participants.iter().filter(move |p| p.node == node)
    }

    fn is_started(&self) -> bool {
        self.participants.iter().any(|p| p.role == "chair")
    }

    /// `status/v1/conference` object.
    pub(crate) fn status_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "service_type": self.service_type,
            "tag": self.tag,
            "is_started": self.is_started(),
            "is_locked": false,
            "guests_muted": false,
            "direct_media_available": false,
            "start_time": naive_utc(self.start_time),
            "resource_uri": format!("{STATUS_CONFERENCE_PATH}{}/", self.id),
        })
    }

    /// `data` of `conference_started` / `conference_ended` (with `end_time`).
    pub(crate) fn event_data(&self, end_time: Option<f64>) -> Value {
        let mut data = json!({
            "name": self.name,
            "service_type": self.service_type,
            "tag": self.tag,
            "is_started": self.is_started(),
            "is_locked": false,
            "guests_muted": false,
            "start_time": self.start_time,
        });
        if let Some(end) = end_time {
            data["end_time"] = json!(end);
        }
        data
    }
}

impl LiveParticipant {
    /// `status/v1/participant` object.
    pub(crate) fn status_json(&self, conference: &LiveConference) -> Value {
        // Two halves: one `json!` this large exceeds the macro recursion limit.
        let mut object = json!({
            "id": self.id,
            "conference": conference.name,
            "service_tag": conference.tag,
            "service_type": conference.service_type,
            "display_name": self.display_name,
            "source_alias": self.source_alias,
            "destination_alias": self.destination_alias,
            "participant_alias": self.destination_alias,
            "role": self.role,
            "call_direction": self.call_direction,
            "call_uuid": self.call_uuid,
            "conversation_id": self.conversation_id,
            "call_tag": "",
            "parent_id": self.id,
            "protocol": self.protocol,
            "vendor": "Simulated",
            "remote_address": self.remote_address,
            "remote_port": 40000,
            "connect_time": naive_utc(self.connect_time),
        });
        let rest = json!({
            "bandwidth": 1024,
            "rx_bandwidth": 1024,
            "tx_bandwidth": 1024,
            "call_quality": "1_good",
            "encryption": "On",
            "has_media": true,
            "transcoding_enabled": true,
            "media_node": self.node,
            "signalling_node": self.node,
            "proxy_node": "",
            "system_location": "Simulated",
            "license_count": 1,
            "license_type": "port",
            "is_muted": false,
            "is_client_muted": false,
            "is_presenting": false,
            "is_streaming": false,
            "is_recording": false,
            "is_transcribing": false,
            "is_on_hold": false,
            "is_direct": false,
            "is_idp_authenticated": false,
            "idp_uuid": "",
            "is_disconnect_supported": true,
            "is_mute_supported": true,
            "is_presentation_supported": true,
            "is_transfer_supported": true,
            "resource_uri": format!("{STATUS_PARTICIPANT_PATH}{}/", self.id),
        });
        if let (Value::Object(object), Value::Object(rest)) = (&mut object, rest) {
            object.extend(rest);
        }
        object
    }

    /// `data` of the participant events. While connecting, `service_type` is `connecting`
    /// and `connect_time` null (the first `participant_connected`).
    pub(crate) fn event_data(
        &self,
        conference: &LiveConference,
        connecting: bool,
    ) -> Map<String, Value> {
        let data = json!({
            "uuid": self.id,
            "call_id": self.call_uuid,
            "conversation_id": self.conversation_id,
            "related_uuids": [],
            "conference": conference.name,
            "service_tag": conference.tag,
            "service_type": if connecting { "connecting" } else { conference.service_type.as_str() },
            "call_direction": self.call_direction,
            "protocol": self.protocol,
            "role": if connecting { "unknown" } else { self.role },
            "display_name": self.display_name,
            "source_alias": self.source_alias,
            "destination_alias": self.destination_alias,
            "vendor": "Simulated",
            "remote_address": self.remote_address,
            "call_tag": "",
            "connect_time": if connecting { Value::Null } else { json!(self.connect_time) },
            "media_node": self.node,
            "signalling_node": self.node,
            "proxy_node": "",
            "system_location": "Simulated",
            "has_media": !connecting,
            "is_muted": false,
            "is_client_muted": false,
            "is_presenting": false,
            "is_streaming": false,
            "is_idp_authenticated": false,
            "encryption": "On",
            "rx_bandwidth": if connecting { 0 } else { 1024 },
            "tx_bandwidth": if connecting { 0 } else { 1024 },
        });
        match data {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// `media_streams` of a participant leaving at `end`.
    pub(crate) fn media_streams(&self, end: f64) -> Value {
        json!([
            {"stream_id": "0", "stream_type": "audio", "node": self.node,
             "start_time": self.connect_time, "end_time": end,
             "rx_bitrate": 64, "tx_bitrate": 64, "rx_codec": "opus", "tx_codec": "opus",
             "rx_packets_received": 0, "tx_packets_sent": 0, "rx_packets_lost": 0,
             "tx_packets_lost": 0, "rx_packet_loss": 0.0, "tx_packet_loss": 0.0},
            {"stream_id": "1", "stream_type": "video", "node": self.node,
             "start_time": self.connect_time, "end_time": end,
             "rx_bitrate": 960, "tx_bitrate": 960, "rx_codec": "VP8", "tx_codec": "VP8",
             "rx_resolution": "1280x720", "tx_resolution": "1280x720", "rx_fps": 30.0, "tx_fps": 30.0,
             "rx_packets_received": 0, "tx_packets_sent": 0, "rx_packets_lost": 0,
             "tx_packets_lost": 0, "rx_packet_loss": 0.0, "tx_packet_loss": 0.0},
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_distinct_for_many_nodes() {
        let nodes: std::collections::BTreeSet<_> = (0..600).map(node_address).collect();
        assert_eq!(nodes.len(), 600);
        assert_eq!(node_address(0), "10.44.0.1");
    }
}
