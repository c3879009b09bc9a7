//! Event-sink delivery to a test receiver: per-node sequences, Basic auth, bulk envelopes,
//! protocol versions, retries in order, bounded give-up.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use pexip_sim::{EventSinkTarget, SimConfig};

use crate::helpers::{Api, Receiver, http, start_sim_with};

fn sink(receiver: &Receiver) -> EventSinkTarget {
    EventSinkTarget {
        url: receiver.url.clone(),
        username: Some("sink-user".into()),
        password: Some("sink-pass".into()),
        bulk: false,
        version: 2,
    }
}

fn config(sinks: Vec<EventSinkTarget>) -> SimConfig {
    SimConfig {
        replication_delay: Duration::ZERO,
        event_sinks: sinks,
        ..SimConfig::default()
    }
}

/// Event names per node, in arrival order.
fn by_node(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut nodes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in events {
        nodes
            .entry(event["node"].as_str().unwrap().to_owned())
            .or_default()
            .push(event.clone());
    }
    nodes
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_conference_on_three_nodes_ends_with_three_conference_ended_events() {
    let receiver = Receiver::start(0).await;
    let sim = start_sim_with(config(vec![sink(&receiver)])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "meet-1", "tag": "pool:x"}))
        .await;

    sim.start_conference("meet-1", 4, 3).await.unwrap();
    sim.end_conference("meet-1").await.unwrap();

    // Per node: eventsink_started, conference_started and conference_ended, plus 4 events
    // per participant (2 joining, 2 leaving). 4 participants over 3 nodes: 2, 1, 1.
    let expected_total = 3 * 3 + 4 * 4;
    let events = receiver.events();
    assert_eq!(
        events.len(),
        expected_total,
        "end_conference returned after delivery"
    );
    let ended: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "conference_ended")
        .collect();
    assert_eq!(ended.len(), 3);
    for e in &ended {
        let data = &e["data"];
        assert_eq!(data["name"], "meet-1");
        assert_eq!(data["tag"], "pool:x");
        assert_eq!(data["service_type"], "conference");
        for field in ["is_started", "is_locked", "guests_muted"] {
            assert!(data[field].is_boolean(), "{field}");
        }
        assert!(data["end_time"].as_f64().unwrap() >= data["start_time"].as_f64().unwrap());
    }

    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("sink-user:sink-pass")
    );
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(expected_auth.as_str()))
    );

    let nodes = by_node(&events);
    assert_eq!(nodes.len(), 3);
    let mut participants_seen = 0;
    for (node, events) in &nodes {
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "seq per node from 1 on {node}"
        );
        for e in events {
            assert_eq!(e["version"], 2);
            assert!(e["time"].is_f64());
        }
        let n = (events.len() - 3) / 4;
        participants_seen += n;
        let mut expected = vec!["eventsink_started", "conference_started"];
        expected.extend(
            std::iter::repeat_n(["participant_connected", "participant_updated"], n).flatten(),
        );
        expected.extend(
            std::iter::repeat_n(
                [
                    "participant_media_streams_destroyed",
                    "participant_disconnected",
                ],
                n,
            )
            .flatten(),
        );
        expected.push("conference_ended");
        assert_eq!(names(events), expected, "order on {node}");

        let connected = events
            .iter()
            .find(|e| e["event"] == "participant_connected")
            .unwrap();
        assert_eq!(connected["data"]["service_type"], "connecting");
        assert_eq!(connected["data"]["connect_time"], Value::Null);
        let updated = events
            .iter()
            .find(|e| e["event"] == "participant_updated")
            .unwrap();
        assert_eq!(updated["data"]["service_type"], "conference");
        assert!(updated["data"]["connect_time"].is_f64());
        assert_eq!(updated["data"]["conference"], "meet-1");
        assert_eq!(updated["data"]["service_tag"], "pool:x");
        let left = events
            .iter()
            .find(|e| e["event"] == "participant_disconnected")
            .unwrap();
        assert_eq!(left["data"]["disconnect_reason"], "Call disconnected");
        assert!(left["data"]["duration"].is_number());
        assert!(
            left["data"].get("media_streams").is_none(),
            "v2 sends them separately"
        );
    }
    assert_eq!(participants_seen, 4);
    assert_eq!(sim.counters().events_sent, expected_total as u64);
}

#[tokio::test]
async fn bulk_sinks_receive_eventsink_bulk_envelopes() {
    let receiver = Receiver::start(0).await;
    let mut target = sink(&receiver);
    target.bulk = true;
    let sim = start_sim_with(config(vec![target])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "bulk-room"})).await;
    sim.start_conference("bulk-room", 2, 2).await.unwrap();
    sim.end_conference("bulk-room").await.unwrap();

    let posts = receiver.received();
    assert!(!posts.is_empty());
    for post in &posts {
        let body = &post.body;
        assert_eq!(body["event"], "eventsink_bulk");
        assert_eq!(body["seq"], 0);
        assert_eq!(body["version"], 2);
        assert!(body["time"].is_number());
        let inner = body["data"].as_array().unwrap();
        assert!(!inner.is_empty());
        assert!(
            inner.iter().all(|e| e["node"] == body["node"]),
            "one bulk per node"
        );
    }
    let events = receiver.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "conference_ended")
            .count(),
        2
    );
    for (node, events) in by_node(&events) {
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "{node}"
        );
    }
}

#[tokio::test]
async fn version_1_sinks_get_media_streams_inside_participant_disconnected() {
    let receiver = Receiver::start(0).await;
    let mut target = sink(&receiver);
    target.version = 1;
    target.username = None;
    let sim = start_sim_with(config(vec![target])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "v1"})).await;
    sim.start_conference("v1", 1, 1).await.unwrap();
    sim.end_conference("v1").await.unwrap();

    let events = receiver.events();
    assert_eq!(
        names(&events),
        [
            "eventsink_started",
            "conference_started",
            "participant_connected",
            "participant_updated",
            "participant_disconnected",
            "conference_ended"
        ]
    );
    assert!(events[4]["data"]["media_streams"].is_array());
    assert!(events.iter().all(|e| e["version"] == 1));
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.authorization.is_none()),
        "no user, no Basic"
    );
}

#[tokio::test]
async fn seq_continues_across_conferences_on_the_same_publisher() {
    let receiver = Receiver::start(0).await;
    let sim = start_sim_with(config(vec![sink(&receiver)])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "again"})).await;
    for _ in 0..2 {
        sim.start_conference("again", 1, 1).await.unwrap();
        sim.end_conference("again").await.unwrap();
    }
    let events = receiver.events();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        names(&events)
            .iter()
            .filter(|n| **n == "eventsink_started")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_failing_sink_is_retried_in_order_until_it_accepts() {
    let receiver = Receiver::start(2).await;
    let sim = start_sim_with(config(vec![sink(&receiver)])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "flaky"})).await;
    sim.start_conference("flaky", 1, 1).await.unwrap();
    sim.end_conference("flaky").await.unwrap();

    receiver.wait_for_events(7).await;
    let events = receiver.events();
    assert_eq!(
        names(&events),
        [
            "eventsink_started",
            "conference_started",
            "participant_connected",
            "participant_updated",
            "participant_media_streams_destroyed",
            "participant_disconnected",
            "conference_ended"
        ],
        "the refused head event was retried before anything later"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(sim.counters().event_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_dead_sink_is_given_up_after_bounded_retries_and_counted() {
    // A port nobody listens on: every attempt fails at once.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", closed.local_addr().unwrap());
    drop(closed);
    let sim = start_sim_with(config(vec![EventSinkTarget::new(url)])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "lonely"})).await;

    // Both return after the first failed attempt instead of waiting out the retries.
    sim.start_conference("lonely", 1, 1).await.unwrap();
    sim.end_conference("lonely").await.unwrap();

    let total = 7;
    for _ in 0..10_000 {
        if sim.counters().event_failures >= total {
            break;
        }
        // Paused time: this only lets the publisher's backoff timers fire.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let counters = sim.counters();
    assert_eq!(counters.event_failures, total);
    assert_eq!(counters.events_sent, 0);
}

#[tokio::test]
async fn a_sink_added_over_the_control_api_receives_later_events() {
    let receiver = Receiver::start(0).await;
    let sim = start_sim_with(config(Vec::new())).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "late"})).await;
    let response = http()
        .post(format!("{}/_sim/event_sinks", sim.base_url()))
        .json(&json!({"url": receiver.url, "username": "u", "password": "p", "bulk": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    sim.start_conference("late", 1, 1).await.unwrap();
    sim.end_conference("late").await.unwrap();
    let events = receiver.events();
    assert_eq!(events.len(), 7);
    assert!(
        events.iter().all(|e| e["version"] == 2),
        "version defaults to 2"
    );
    let bad = http()
        .post(format!("{}/_sim/event_sinks", sim.base_url()))
        .json(&json!({"url": "not a url"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_disconnect_command_sends_participant_and_conference_events() {
    let receiver = Receiver::start(0).await;
    let sim = start_sim_with(config(vec![sink(&receiver)])).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "cmd"})).await;
    let id = sim.start_conference("cmd", 1, 1).await.unwrap();
    let response = api
        .post(
            "/api/admin/command/v1/conference/disconnect/",
            &json!({"conference_id": id}),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    receiver.wait_for_events(7).await;
    let events = receiver.events();
    assert_eq!(events[6]["event"], "conference_ended");
    assert_eq!(
        events[5]["data"]["disconnect_reason"],
        "Disconnected by an API request"
    );
}
