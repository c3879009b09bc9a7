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

/// An app whose event sink takes bodies up to 4 KiB.
async fn app_with_4k_body_limit() -> TestApp {
    TestApp::spawn(Options {
        env: vec![("EVENT_SINK_MAX_BODY_BYTES".into(), "4096".into())],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let app = app_with_4k_body_limit().await;
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

/// Issue 13, item 12: the gate reads the head only. A caller without the right credentials
/// (or from the wrong network) is refused before the service reads, or waits for, a body.
#[tokio::test]
async fn callers_are_refused_on_their_head_before_the_body_is_read() {
    let app = app_with_4k_body_limit().await;
    let url = app.at("/public/event_sink");
    // Over the limit and with wrong credentials: refused for the credentials, not the size.
    let huge = format!(r#"{{"event":"x","data":{{"pad":"{}"}}}}"#, "a".repeat(8192));
    let response = app
        .http
        .post(&url)
        .basic_auth(SINK_USER, Some("not-the-password"))
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app.http.post(&url).body(huge).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // A body announced and never sent: the answer comes from the head alone.
    let head = "POST /public/event_sink HTTP/1.1\r\nHost: sink\r\n\
                Content-Type: application/json\r\nContent-Length: 4000\r\n\
                Authorization: Basic cGV4aXA6d3Jvbmc=\r\n\r\n";
    assert_eq!(app.status_for_head(head).await, 401);

    // With an allow-list, a caller from outside it is refused the same way (403).
    let listed = TestApp::spawn(allow_list(&[])).await;
    let head = format!(
        "POST /public/event_sink HTTP/1.1\r\nHost: sink\r\nContent-Length: 4000\r\n\
         X-Forwarded-For: 192.0.2.9\r\nAuthorization: Basic {}\r\n\r\n",
        base64_credentials()
    );
    assert_eq!(listed.status_for_head(&head).await, 403);
    assert_eq!(
        app.deletion_depth().await + listed.deletion_depth().await,
        0
    );
}

/// `pexip:<password>` as a Basic credential.
fn base64_credentials() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{SINK_USER}:{SINK_PASSWORD}"))
}

/// Settings that restrict the event sink to 10.20.0.0/16 and 2001:db8:20::/48.
fn allow_list(extra: &[(&str, &str)]) -> Options {
    let mut env = vec![(
        "EVENT_SINK_ALLOWED_NETWORKS".to_owned(),
        "10.20.0.0/16, 2001:db8:20::/48".to_owned(),
    )];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Options {
        env,
        ..Options::default()
    }
}

/// A `conference_ended` with the right credentials and these `X-Forwarded-For` lines.
async fn send_from(app: &TestApp, forwarded: &[&str], event: &Value) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.at("/public/event_sink"))
        .basic_auth(SINK_USER, Some(SINK_PASSWORD))
        .json(event);
    for value in forwarded {
        request = request.header("x-forwarded-for", *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn event_sink_calls_from_outside_the_allowed_networks_get_403_and_delete_nothing() {
    let app = TestApp::spawn(allow_list(&[])).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let event = conference_ended(name, EXAMPLE_TAG, "10.0.0.1");
    let cases: [(&str, &[&str]); 8] = [
        ("no X-Forwarded-For", &[]),
        ("an address outside", &["198.51.100.7:50312"]),
        (
            "an allowed address spoofed on the left",
            &["10.20.1.1, 10.20.1.2, 198.51.100.7:50312"],
        ),
        (
            "the spoofed address on a line of its own",
            &["10.20.1.1", "198.51.100.7:50312"],
        ),
        ("an IPv6 address outside", &["[2001:db8:99::1]:443"]),
        (
            "an IPv4-mapped address outside",
            &["[::ffff:198.51.100.7]:443"],
        ),
        ("not an address", &["10.20.1.1, unknown"]),
        ("an empty header", &[""]),
    ];
    for (case, forwarded) in cases {
        let response = send_from(&app, forwarded, &event).await;
        assert_eq!(response.status(), 403, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "source_not_allowed", "{case}");
    }
    assert_eq!(app.deletion_depth().await, 0, "nothing queued");
    app.invoke_timer("gc_timer").await;
    assert_eq!(app.sim_requests(DELETE_ROUTE), 0, "no room deleted");
    assert!(app.sim.rooms().iter().any(|r| r.name == name));
}

#[tokio::test]
async fn event_sink_calls_from_an_allowed_network_still_need_credentials_and_are_processed() {
    let app = TestApp::spawn(allow_list(&[])).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let event = conference_ended(name, EXAMPLE_TAG, "10.0.0.1");

    let wrong = app
        .http
        .post(app.at("/public/event_sink"))
        .basic_auth(SINK_USER, Some("wrong"))
        .header("x-forwarded-for", "10.20.3.4:50312")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.status(),
        401,
        "the network is no substitute for credentials"
    );
    assert_eq!(app.deletion_depth().await, 0);

    for forwarded in [
        &["10.20.3.4:50312"][..],
        &["198.51.100.7, 10.20.3.4:50312"],
        &["[2001:db8:20::5]:443"],
        &["[::ffff:10.20.3.4]:443"],
    ] {
        let response = send_from(&app, forwarded, &event).await;
        assert_eq!(response.status(), 200, "{forwarded:?}");
        let ack: Value = response.json().await.unwrap();
        assert_eq!(ack["queued"], 1, "{forwarded:?}");
    }
    app.invoke_timer("gc_timer").await;
    assert_eq!(app.sim_requests(DELETE_ROUTE), 1);
    assert!(!app.sim.rooms().iter().any(|r| r.name == name));
}

#[tokio::test]
async fn with_two_trusted_proxy_hops_the_second_entry_from_the_right_is_the_caller() {
    let app = TestApp::spawn(allow_list(&[("EVENT_SINK_TRUSTED_PROXY_HOPS", "2")])).await;
    let event = conference_ended("vbv-nosuchroom", EXAMPLE_TAG, "10.0.0.1");
    let cases: [(&[&str], u16); 4] = [
        (&["10.20.3.4, 172.16.0.9:443"], 200),
        (&["198.51.100.7, 10.20.3.4, 172.16.0.9:443"], 200),
        (&["10.20.3.4, 198.51.100.7, 172.16.0.9:443"], 403),
        (&["10.20.3.4:443"], 403),
    ];
    for (forwarded, status) in cases {
        let response = send_from(&app, forwarded, &event).await;
        assert_eq!(response.status(), status, "{forwarded:?}");
    }
}

#[tokio::test]
async fn a_replayed_conference_ended_deletes_the_room_at_most_once() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let event = conference_ended(name, EXAMPLE_TAG, "10.0.0.1");

    // The same event many times, some at once, one inside a bulk envelope.
    let app_ref = &app;
    let responses =
        futures::future::join_all((0..12).map(|_| app_ref.send_event(event.clone()))).await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    let bulk = json!({"event": "eventsink_bulk", "node": "10.0.0.1", "seq": 0, "version": 2, "time": 1.0,
        "data": [event.clone(), event.clone(), event.clone()]});
    assert_eq!(app.send_event(bulk.clone()).await.status(), 200);
    app.invoke_timer("gc_timer").await;
    assert_eq!(app.sim_requests(DELETE_ROUTE), 1, "one Pexip delete");
    assert!(!app.sim.rooms().iter().any(|r| r.name == name));

    // Replayed after the room is gone: acknowledged, and nothing more is deleted.
    app.rooms.background_idle().await;
    let rooms_left = app.sim_room_count();
    for _ in 0..5 {
        assert_eq!(app.send_event(event.clone()).await.status(), 200);
    }
    assert_eq!(app.send_event(bulk).await.status(), 200);
    app.invoke_timer("gc_timer").await;
    app.invoke_timer("gc_timer").await;
    assert_eq!(app.sim_requests(DELETE_ROUTE), 1, "still one Pexip delete");
    assert_eq!(app.deletion_depth().await, 0, "every replay was settled");
    assert_eq!(
        app.sim_room_count(),
        rooms_left,
        "no other room was touched"
    );
}
