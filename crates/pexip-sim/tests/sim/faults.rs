//! Each fault kind, through the handle and through `/_sim/faults`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use pexip_sim::{Fault, FaultKind, JournalKind};

use crate::helpers::{Api, Assertion, CONFERENCES, http, request_token, start_sim};

#[tokio::test]
async fn a_status_fault_answers_429_with_retry_after_for_the_next_matching_request_only() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    sim.add_fault(
        Fault::status_with_retry_after(429, 2)
            .count(1)
            .method("GET")
            .path_prefix(CONFERENCES),
    );

    let post = api.post(CONFERENCES, &json!({"name": "unaffected"})).await;
    assert_eq!(
        post.status(),
        StatusCode::CREATED,
        "POST does not match the method filter"
    );
    let limited = api.get(CONFERENCES).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert!(limited.bytes().await.unwrap().is_empty());
    assert_eq!(
        api.get(CONFERENCES).await.status(),
        StatusCode::OK,
        "count 1 is used up"
    );

    let route = format!("GET {CONFERENCES}");
    assert_eq!(
        sim.counters().requests_for(&route),
        2,
        "the refused request is counted too"
    );
}

#[tokio::test]
async fn server_error_faults_also_hit_the_token_endpoint() {
    let sim = start_sim().await;
    sim.add_fault(Fault::status(503).count(2).path_prefix("/oauth/token/"));
    for _ in 0..2 {
        let response = request_token(&sim, &Assertion::for_sim(&sim).sign()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let response = request_token(&sim, &Assertion::for_sim(&sim).sign()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sim.counters().tokens_issued, 1);
}

#[tokio::test]
async fn after_create_makes_the_room_and_still_answers_500() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    sim.add_fault(Fault::after_create().count(1));
    let response = api
        .post(CONFERENCES, &json!({"name": "half-created"}))
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("location").is_none());
    let rooms = sim.rooms();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].name, "half-created");

    let retry = api
        .post(CONFERENCES, &json!({"name": "half-created"}))
        .await;
    assert_eq!(
        retry.status(),
        StatusCode::BAD_REQUEST,
        "a blind retry hits the unique name"
    );
    let found = api
        .get_json(&format!("{CONFERENCES}?name=half-created"))
        .await;
    assert_eq!(found["meta"]["total_count"], 1);
}

#[tokio::test]
async fn after_create_leaves_refused_creates_alone() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    sim.add_fault(Fault::after_create().count(1));
    let invalid = api.post(CONFERENCES, &json!({"name": ""})).await;
    assert_eq!(
        invalid.status(),
        StatusCode::BAD_REQUEST,
        "only a successful create is turned into 500"
    );
    let created = api.post(CONFERENCES, &json!({"name": "ok"})).await;
    assert_eq!(
        created.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "the fault was still armed"
    );
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    sim.add_fault(Fault::drop_connection().count(1).method("GET"));
    let dropped = api.request(reqwest::Method::GET, CONFERENCES).send().await;
    let error = dropped.expect_err("no response may arrive");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(
        api.get(CONFERENCES).await.status(),
        StatusCode::OK,
        "the next request is served"
    );
    assert_eq!(
        sim.counters().requests_for(&format!("GET {CONFERENCES}")),
        2
    );
}

#[tokio::test]
async fn latency_keeps_requests_in_flight_and_max_in_flight_records_the_peak() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    sim.reset_counters();
    sim.add_fault(Fault::latency(400).path_prefix(CONFERENCES));
    let started = Instant::now();
    let calls = (0..4).map(|_| {
        let api = api.clone();
        async move { api.get(CONFERENCES).await.status() }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the latency was applied"
    );
    let counters = sim.counters();
    assert_eq!(counters.max_in_flight, 4);
    assert_eq!(counters.in_flight, 0);
    // The token endpoint is not part of /api/admin, so it never counts as in flight.
    sim.clear_faults();
    sim.reset_counters();
    request_token(&sim, &Assertion::for_sim(&sim).sign()).await;
    assert_eq!(sim.counters().max_in_flight, 0);
}

#[tokio::test]
async fn rates_of_zero_and_one_never_and_always_apply() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let never = sim.add_fault(Fault::status(500).rate(0.0));
    for _ in 0..10 {
        assert_eq!(api.get(CONFERENCES).await.status(), StatusCode::OK);
    }
    sim.clear_faults();
    sim.add_fault(Fault::status(502).rate(1.0));
    for _ in 0..10 {
        assert_eq!(api.get(CONFERENCES).await.status(), StatusCode::BAD_GATEWAY);
    }
    assert!(never >= 1);
}

#[tokio::test]
async fn faults_can_be_managed_over_the_control_api() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let url = format!("{}/_sim/faults", sim.base_url());
    let added = http()
        .post(&url)
        .json(&json!({"kind": "status", "status": 503, "count": 3, "method": "GET"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let id = added.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    assert_eq!(
        api.get(CONFERENCES).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let listed: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["kind"], "status");
    assert_eq!(listed[0]["remaining"], 2);

    let removed = http().delete(format!("{url}/{id}")).send().await.unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.get(CONFERENCES).await.status(), StatusCode::OK);

    for bad in [
        json!({"kind": "status", "status": 200}),
        json!({"kind": "latency"}),
        json!({"kind": "teleport"}),
        json!({"kind": "drop", "rate": 2.0}),
    ] {
        let response = http().post(&url).json(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    http()
        .post(&url)
        .json(&json!({"kind": "latency", "ms": 1}))
        .send()
        .await
        .unwrap();
    let cleared = http().delete(&url).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    let listed: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([]));
    let parsed: Fault =
        serde_json::from_value(json!({"kind": "after_create", "count": 1})).unwrap();
    assert_eq!(parsed.kind, FaultKind::AfterCreate);
}

/// Poll until `done` holds; panics after a minute (a guard against hanging, not a timing
/// assertion).
async fn eventually(mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < give_up, "did not happen within a minute");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_late_fault_answers_the_error_now_and_applies_the_write_later() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let id = api.create_room(json!({"name": "late-room"})).await;
    let room = format!("{CONFERENCES}{id}/");
    sim.add_fault(Fault::late(300, Some(504)).count(1).method("PATCH"));

    let answered = api.patch(&room, &json!({"tag": "first-caller"})).await;
    assert_eq!(answered.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(answered.bytes().await.unwrap().is_empty());
    let tag_now = api.get_json(&room).await["tag"].clone();
    assert_eq!(tag_now, "", "not applied when the error was answered");

    eventually(|| sim.rooms()[0].tag == "first-caller").await;
    let update = sim
        .journal()
        .into_iter()
        .find(|e| e.kind == JournalKind::Updated)
        .expect("the late write is journalled");
    assert_eq!(update.method.as_deref(), Some("PATCH"));
    assert_eq!(update.tag_before.as_deref(), Some(""));
    assert_eq!(update.tag_after.as_deref(), Some("first-caller"));
    assert_eq!(
        sim.counters()
            .requests_for(&format!("PATCH {CONFERENCES}{{id}}/")),
        1,
        "one request on the wire, counted once"
    );
}

#[tokio::test]
async fn a_late_fault_without_a_status_drops_the_connection_and_still_applies_the_write() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let id = api.create_room(json!({"name": "cut-room"})).await;
    let room = format!("{CONFERENCES}{id}/");
    sim.add_fault(Fault::late(100, None).count(1).method("PATCH"));

    let dropped = api
        .request(reqwest::Method::PATCH, &room)
        .json(&json!({"tag": "cut-caller"}))
        .send()
        .await;
    let error = dropped.expect_err("no response may arrive");
    assert!(error.status().is_none(), "{error:?}");
    eventually(|| sim.rooms()[0].tag == "cut-caller").await;
}

#[tokio::test]
async fn a_late_delete_removes_the_room_after_answering_502() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let id = api.create_room(json!({"name": "late-delete"})).await;
    sim.add_fault(Fault::late(50, Some(502)).count(1).method("DELETE"));
    let answered = api.delete(&format!("{CONFERENCES}{id}/")).await;
    assert_eq!(answered.status(), StatusCode::BAD_GATEWAY);
    eventually(|| sim.rooms().is_empty()).await;
    assert!(
        sim.journal()
            .iter()
            .any(|e| e.kind == JournalKind::Deleted && e.room_id == id)
    );
}

#[tokio::test]
async fn late_faults_are_added_over_the_control_api_and_checked() {
    let sim = start_sim().await;
    let url = format!("{}/_sim/faults", sim.base_url());
    let added = http()
        .post(&url)
        .json(&json!({"kind": "late", "ms": 20, "status": 504, "method": "PATCH"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let listed: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["kind"], "late");
    assert_eq!(listed[0]["ms"], 20);
    assert_eq!(listed[0]["status"], 504);
    let refused = http()
        .post(&url)
        .json(&json!({"kind": "late", "ms": 20, "status": 204}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}
