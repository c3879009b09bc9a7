//! Pexip event-sink bodies: a single envelope `{node, seq, version, time, event, data}` or an
//! `eventsink_bulk` envelope whose `data` is a list of single envelopes.
//!
//! Only `conference_ended` matters to us; every other event (and any event name Pexip adds
//! later) is acknowledged and ignored. A conference spread over N nodes ends N times, so the
//! caller must treat repeats as harmless.
//!
//! A body that is not an envelope at all is refused, but one bad item of a bulk envelope is
//! not: it becomes [`SinkEvent::Malformed`] and the other items count. A node resends a body
//! it got a non-2xx for, one body at a time and in order (docs/pexip.md §8.2), so refusing a
//! whole bulk for one item would block that node's sink for good.

use serde::Deserialize;
use serde_json::Value;

use super::RoomName;

/// Deepest bulk nesting followed; Pexip never nests a bulk inside a bulk.
const MAX_BULK_DEPTH: usize = 2;

/// What the service does with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkEvent {
    /// A conference ended on one node: queue its room for deletion.
    ConferenceEnded {
        room: RoomName,
        node: Option<String>,
        /// The VMR's tag as the node reported it (empty when absent).
        tag: String,
    },
    /// A `conference_ended` whose room name is missing or not a valid room name.
    UnnamedConferenceEnded,
    /// Anything else, by event name (ignored).
    Ignored(String),
    /// An item of a bulk envelope that is not an event envelope itself (skipped; the rest of
    /// the body counts).
    Malformed,
}

/// Why an event-sink body was refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventBodyError {
    #[error("the body is not valid JSON")]
    NotJson,
    #[error("the body is not a Pexip event envelope (object with an 'event' name)")]
    NotAnEnvelope,
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    node: Option<Value>,
    #[serde(default)]
    data: Value,
}

/// Parse a request body into the events it carries, in order.
pub fn parse_event_sink_body(body: &[u8]) -> Result<Vec<SinkEvent>, EventBodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| EventBodyError::NotJson)?;
    let mut events = Vec::new();
    collect(value, 0, &mut events)?;
    Ok(events)
}

fn collect(value: Value, depth: usize, out: &mut Vec<SinkEvent>) -> Result<(), EventBodyError> {
    let envelope: Envelope =
        serde_json::from_value(value).map_err(|_| EventBodyError::NotAnEnvelope)?;
    match envelope.event.as_str() {
        "eventsink_bulk" if depth < MAX_BULK_DEPTH => {
            let Value::Array(items) = envelope.data else {
                return Err(EventBodyError::NotAnEnvelope);
            };
            for item in items {
                if collect(item, depth + 1, out).is_err() {
                    out.push(SinkEvent::Malformed);
                }
            }
        }
        "conference_ended" => out.push(conference_ended(&envelope)),
        other => out.push(SinkEvent::Ignored(other.to_owned())),
    }
    Ok(())
}

fn conference_ended(envelope: &Envelope) -> SinkEvent {
    // The room is `data.name`; some payloads only carry `data.conference`.
    let name = ["name", "conference"]
        .iter()
        .filter_map(|k| envelope.data.get(k).and_then(Value::as_str))
        .find(|s| !s.is_empty());
    let node = envelope
        .node
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_owned);
    let tag = envelope
        .data
        .get("tag")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match name.map(RoomName::parse) {
        Some(Ok(room)) => SinkEvent::ConferenceEnded { room, node, tag },
        _ => SinkEvent::UnnamedConferenceEnded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ended(name: &str, node: &str) -> SinkEvent {
        ended_tagged(name, node, "")
    }

    fn ended_tagged(name: &str, node: &str, tag: &str) -> SinkEvent {
        SinkEvent::ConferenceEnded {
            room: RoomName::parse(name).unwrap(),
            node: Some(node.into()),
            tag: tag.into(),
        }
    }

    #[test]
    fn a_single_conference_ended_names_its_room() {
        let body =
            br#"{"node":"10.0.0.1","seq":7,"version":2,"time":1.5,"event":"conference_ended",
            "data":{"name":"vbv-abc","service_type":"conference","tag":"t","end_time":2.5}}"#;
        assert_eq!(
            parse_event_sink_body(body).unwrap(),
            [ended_tagged("vbv-abc", "10.0.0.1", "t")]
        );
    }

    #[test]
    fn the_name_falls_back_to_data_conference() {
        let body = br#"{"node":"n","event":"conference_ended","data":{"conference":"vbv-x"}}"#;
        assert_eq!(parse_event_sink_body(body).unwrap(), [ended("vbv-x", "n")]);
    }

    #[test]
    fn bulk_envelopes_are_unpacked_in_order() {
        let body =
            br#"{"event":"eventsink_bulk","node":"127.0.0.1","seq":0,"version":2,"time":1,"data":[
            {"node":"a","seq":1,"event":"participant_disconnected","data":{"conference":"vbv-1"}},
            {"node":"a","seq":2,"event":"conference_ended","data":{"name":"vbv-1"}},
            {"node":"b","seq":1,"event":"conference_ended","data":{"name":"vbv-1"}}]}"#;
        assert_eq!(
            parse_event_sink_body(body).unwrap(),
            [
                SinkEvent::Ignored("participant_disconnected".into()),
                ended("vbv-1", "a"),
                ended("vbv-1", "b")
            ]
        );
    }

    #[test]
    fn unknown_events_are_ignored_and_bad_names_are_flagged() {
        let body = br#"{"event":"eventsink_started","data":{}}"#;
        assert_eq!(
            parse_event_sink_body(body).unwrap(),
            [SinkEvent::Ignored("eventsink_started".into())]
        );
        for data in [
            r#"{}"#,
            r#"{"name":"../etc"}"#,
            r#"{"name":""}"#,
            r#"{"name":5}"#,
        ] {
            let body = format!(r#"{{"event":"conference_ended","data":{data}}}"#);
            assert_eq!(
                parse_event_sink_body(body.as_bytes()).unwrap(),
                [SinkEvent::UnnamedConferenceEnded]
            );
        }
    }

    #[test]
    fn a_malformed_bulk_item_is_skipped_and_the_rest_counts() {
        let body = br#"{"event":"eventsink_bulk","node":"n","seq":0,"data":[
            {"node":"a","event":"conference_ended","data":{"name":"vbv-1"}},
            "not an envelope",
            {"data":{"name":"vbv-2"}},
            {"event":"eventsink_bulk","data":{"not":"a list"}},
            {"node":"b","event":"conference_ended","data":{"name":"vbv-3"}}]}"#;
        assert_eq!(
            parse_event_sink_body(body).unwrap(),
            [
                ended("vbv-1", "a"),
                SinkEvent::Malformed,
                SinkEvent::Malformed,
                SinkEvent::Malformed,
                ended("vbv-3", "b")
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let cases: [(&[u8], EventBodyError); 5] = [
            (b"", EventBodyError::NotJson),
            (b"{", EventBodyError::NotJson),
            (b"[]", EventBodyError::NotAnEnvelope),
            (br#"{"data":{}}"#, EventBodyError::NotAnEnvelope),
            (
                br#"{"event":"eventsink_bulk","data":{}}"#,
                EventBodyError::NotAnEnvelope,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse_event_sink_body(body), Err(want));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_event_sink_body(&body);
        }

        #[test]
        fn arbitrary_envelopes_only_yield_valid_room_names(
            event in "(conference_ended|eventsink_bulk|participant_connected|[a-z_]{0,12})",
            name in "\\PC{0,40}",
        ) {
            let body = serde_json::json!({"event": event, "data": {"name": name}}).to_string();
            if let Ok(events) = parse_event_sink_body(body.as_bytes()) {
                for e in events {
                    if let SinkEvent::ConferenceEnded { room, .. } = e {
                        prop_assert_eq!(room.as_str(), name.as_str());
                    }
                }
            }
        }
    }
}
