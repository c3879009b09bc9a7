//! Fuzzing the two parsers that take hostile input from the network, with proptest and a large
//! case count: the UUI parser (`POST /room/create?uuiData=`) and the event-sink body parser
//! (`POST /public/event_sink`). Properties: no panic, and anything accepted is safe — a tag
//! URL on an allowed host with one base64url path segment; room names that are URL-path-safe.
//! `FUZZ_CASES` sets the cases per property (default 20,000; each run prints its count).

use pexip_sdk::domain::{
    RoomName, SinkEvent, TagTemplate, UuiPolicy, VideoCall, parse_event_sink_body,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn policy() -> UuiPolicy {
    UuiPolicy {
        allowed_hosts: vec!["id".into(), "idtest".into(), "iddev".into()],
        template: TagTemplate::default(),
    }
}

fn check_tag(raw: &str) -> Result<(), TestCaseError> {
    if let Ok(call) = VideoCall::parse(raw, &policy()) {
        let tag = call.tag(&policy().template);
        let url = url::Url::parse(&tag).map_err(|e| TestCaseError::fail(format!("{tag}: {e}")))?;
        prop_assert!(
            ["id.gov.bc.ca", "idtest.gov.bc.ca", "iddev.gov.bc.ca"]
                .contains(&url.host_str().unwrap_or(""))
        );
        prop_assert_eq!(url.path_segments().map(|s| s.count()), Some(4));
        prop_assert!(url.query().is_none() && url.fragment().is_none());
        prop_assert!(policy().is_our_tag(&tag));
    }
    Ok(())
}

fn check_events(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(events) = parse_event_sink_body(body) {
        for event in events {
            if let SinkEvent::ConferenceEnded { room, .. } = event {
                prop_assert!(RoomName::parse(room.as_str()).is_ok());
            }
        }
    }
    Ok(())
}

#[test]
fn the_uui_parser_survives_arbitrary_input() {
    let n = cases();
    // Arbitrary text, arbitrary bytes behind valid hex, and near-valid `host&id` shapes.
    runner().run(&"\\PC{0,700}", |raw| check_tag(&raw)).unwrap();
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..300), |bytes| {
            check_tag(&hex::encode(&bytes))?;
            check_tag(&format!("{};encoding=hex", hex::encode(&bytes)))
        })
        .unwrap();
    runner()
        .run(
            &(
                "(id|idtest|iddev|ID|evil|id\\.evil|)",
                "[&]{0,2}",
                "[A-Za-z0-9_\\-+/=%.?#&@:]{0,140}",
            ),
            |(h, sep, id)| check_tag(&hex::encode(format!("{h}{sep}{id}"))),
        )
        .unwrap();
    eprintln!("fuzz: UUI parser ran {} cases", 3 * u64::from(n));
}

fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
        "(vbv-[A-Za-z0-9_-]{0,22}|test_x|\\.\\.|a/b|)".prop_map(serde_json::Value::from),
    ]
}

fn envelope() -> impl Strategy<Value = serde_json::Value> {
    let event = "(conference_ended|conference_started|participant_connected|eventsink_bulk|eventsink_started|[a-z_]{0,16})";
    let single = (event, proptest::collection::btree_map("(name|conference|tag|node|[a-z]{1,6})", json_scalar(), 0..5), json_scalar())
        .prop_map(|(event, data, node)| serde_json::json!({"event": event, "node": node, "seq": 1, "data": data}));
    single.prop_recursive(2, 24, 8, |inner| {
        proptest::collection::vec(inner, 0..8)
            .prop_map(|items| serde_json::json!({"event": "eventsink_bulk", "node": "127.0.0.1", "seq": 0, "data": items}))
    })
}

#[test]
fn the_event_sink_parser_survives_arbitrary_bodies() {
    let n = cases();
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |body| {
            check_events(&body)
        })
        .unwrap();
    runner()
        .run(&envelope(), |value| {
            check_events(value.to_string().as_bytes())
        })
        .unwrap();
    eprintln!("fuzz: event-sink parser ran {} cases", 2 * u64::from(n));
}
