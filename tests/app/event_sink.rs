//! `POST /public/event_sink`: authentication, body handling, what gets queued.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_and_queue_nothing() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let event = conference_ended(room["name"].as_str().unwrap(), EXAMPLE_TAG, "10.0.0.1");
    let url = app.at("/public/event_sink");
    let attempts = [
        app.http.post(&url).json(&event),
        app.http
            .post(&url)
            .basic_auth(SINK_USER, Some("wrong"))
            .json(&event),
        app.http
            .post(&url)
            .basic_auth("admin", Some(SINK_PASSWORD))
            .json(&event),
        app.http
            .post(&url)
            .basic_auth(SINK_USER, None::<&str>)
            .json(&event),
        app.http.post(&url).bearer_auth(SINK_PASSWORD).json(&event),
        app.http
            .post(&url)
            .header("authorization", "Basic !!!notbase64")
            .json(&event),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("www-authenticate").is_some());
        let body: Value = response.json().await.unwrap();
        assert!(body["code"].is_string());
    }
    assert_eq!(app.deletion_depth().await, 0, "nothing queued");
    app.invoke_timer("gc_timer").await;
    assert_eq!(app.sim_requests(DELETE_ROUTE), 0, "no room deleted");
}

#[tokio::test]
async fn conference_ended_queues_our_room_once_per_request() {
    let app = TestApp::spawn(Options {
        grace_secs: 600,
        ..Options::default()
    })
    .await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let bulk = json!({"event": "eventsink_bulk", "node": "127.0.0.1", "seq": 0, "version": 2, "time": 1.0, "data": [
        conference_ended(name, EXAMPLE_TAG, "10.0.0.1"),
        conference_ended(name, EXAMPLE_TAG, "10.0.0.2"),
        {"node": "10.0.0.3", "seq": 9, "version": 2, "time": 1.0, "event": "participant_disconnected", "data": {"conference": name}},
    ]});
    let ack: Value = app.send_event(bulk).await.json().await.unwrap();
    assert_eq!(ack["detail"], "Event acknowledged and processed.");
    assert_eq!(ack["events"], 3);
    assert_eq!(ack["queued"], 1);
    assert_eq!(app.deletion_depth().await, 1);
}

#[tokio::test]
async fn events_for_rooms_we_do_not_delete_are_acknowledged_and_ignored() {
    let app = TestApp::spawn(Options::default()).await;
    let cases = [
        conference_ended("test_lobby", EXAMPLE_TAG, "n"),
        conference_ended("vkiosk_3", "", "n"),
        conference_ended("someone-elses-room", "CASEFLOW", "n"),
        json!({"event": "conference_ended", "data": {"name": "../../etc"}}),
        json!({"event": "conference_started", "data": {"name": "vbv-x"}}),
        json!({"event": "some_future_event", "data": {}}),
    ];
    for event in cases {
        let response = app.send_event(event.clone()).await;
        assert_eq!(response.status(), 200, "{event}");
        let ack: Value = response.json().await.unwrap();
        assert_eq!(ack["queued"], 0, "{event}");
    }
    assert_eq!(app.deletion_depth().await, 0);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let app = TestApp::spawn(Options {
        env: vec![("EVENT_SINK_MAX_BODY_BYTES".into(), "4096".into())],
        ..Options::default()
    })
    .await;
    let url = app.at("/public/event_sink");
    for body in ["", "{", "[]", r#"{"data":{}}"#, "null"] {
        let response = app
            .http
            .post(&url)
            .basic_auth(SINK_USER, Some(SINK_PASSWORD))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_event");
    }
    let huge = format!(r#"{{"event":"x","data":{{"pad":"{}"}}}}"#, "a".repeat(8192));
    let response = app
        .http
        .post(&url)
        .basic_auth(SINK_USER, Some(SINK_PASSWORD))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].is_string());
    assert_eq!(app.deletion_depth().await, 0);
}
