//! The garbage collector, the reconciler and the metrics timer.

use std::time::Duration;

use pexip_sdk::queue::DeletionMessage;
use serde_json::Value;

use crate::support::*;

async fn allocated(app: &TestApp, call: &str) -> String {
    let room: Value = app.create(&uui("id", call)).await.json().await.unwrap();
    room["name"].as_str().unwrap().to_owned()
}

/// Put a deletion message on the queue directly (as the older service wrote them).
async fn enqueue_deletion(app: &TestApp, name: &str) {
    let message = DeletionMessage {
        name: name.into(),
        reason: "test".into(),
        first_enqueued: time::OffsetDateTime::now_utc(),
        tag: None,
    };
    app.rooms
        .deletion_queue()
        .send(&message.to_text(), Duration::ZERO)
        .await
        .unwrap();
}

async fn gc_report(app: &TestApp) -> Value {
    let response = app.invoke_timer("gc_timer").await;
    let line = response["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix("gc: "))
        .expect("a gc line in Logs")
        .to_owned();
    serde_json::from_str(&line).unwrap()
}

async fn a_conference_ended_on_three_nodes_is_deleted_once_after_the_grace_period(
    backend: Backend,
) {
    let app = TestApp::spawn(Options {
        grace_secs: 2,
        ..Options::on(backend)
    })
    .await;
    let name = allocated(&app, "THREENODES").await;
    app.sim.start_conference(&name, 3, 3).await.unwrap();
    app.sim.end_conference(&name).await.unwrap();
    assert_eq!(
        app.deletion_depth().await,
        3,
        "one message per node's conference_ended"
    );

    let early = gc_report(&app).await;
    assert_eq!(
        early["deleted"], 0,
        "nothing is deleted inside the grace period"
    );
    assert!(app.sim.rooms().iter().any(|r| r.name == name));

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let report = gc_report(&app).await;
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(report["duplicates"], 2, "{report}");
    assert_eq!(
        app.sim_requests(DELETE_ROUTE),
        1,
        "exactly one Pexip delete"
    );
    assert!(!app.sim.rooms().iter().any(|r| r.name == name));
    assert_eq!(app.deletion_depth().await, 0);
    let tag = "https://id.gov.bc.ca/idcheck/protected/video/THREENODES";
    assert!(
        app.rooms
            .allocation_records()
            .read(tag)
            .await
            .unwrap()
            .is_none(),
        "the call's allocation record went with its room"
    );
}

#[tokio::test]
async fn a_conference_ended_on_three_nodes_is_deleted_once_after_the_grace_period_in_memory() {
    a_conference_ended_on_three_nodes_is_deleted_once_after_the_grace_period(Backend::Memory).await;
}

#[tokio::test]
async fn a_conference_ended_on_three_nodes_is_deleted_once_after_the_grace_period_on_azurite() {
    a_conference_ended_on_three_nodes_is_deleted_once_after_the_grace_period(Backend::Azurite)
        .await;
}

#[tokio::test]
async fn a_room_live_again_is_not_deleted() {
    let app = TestApp::spawn(Options::default()).await;
    let name = allocated(&app, "REJOIN").await;
    app.sim.start_conference(&name, 2, 1).await.unwrap();
    app.sim.end_conference(&name).await.unwrap();
    // The citizen reconnects before the GC runs.
    app.sim.start_conference(&name, 1, 1).await.unwrap();
    let report = gc_report(&app).await;
    assert_eq!(report["deferred_live"], 1, "{report}");
    assert_eq!(report["deleted"], 0);
    assert!(app.sim.rooms().iter().any(|r| r.name == name));
    assert_eq!(app.sim_requests(DELETE_ROUTE), 0);
    assert_eq!(app.deletion_depth().await, 1, "kept for later");
}

#[tokio::test]
async fn the_gc_never_deletes_persistent_or_foreign_rooms() {
    let app = TestApp::spawn(Options::default()).await;
    for name in ["test_lobby", "vkiosk_9", "someone-elses-room"] {
        let new = pexip_sdk::pexip::NewConference {
            name: name.into(),
            service_type: "conference".into(),
            description: String::new(),
            tag: "CASEFLOW".into(),
            pin: "123456".into(),
            guest_pin: "4321".into(),
            allow_guests: true,
            aliases: vec![name.into()],
            extra: serde_json::Map::new(),
        };
        app.rooms.pexip().create_conference(&new).await.unwrap();
        enqueue_deletion(&app, name).await;
    }
    let report = gc_report(&app).await;
    assert_eq!(report["skipped_persistent"], 2, "{report}");
    assert_eq!(report["skipped_not_ours"], 1, "{report}");
    assert_eq!(app.sim_requests(DELETE_ROUTE), 0);
    let names: Vec<String> = app.sim.rooms().into_iter().map(|r| r.name).collect();
    for name in ["test_lobby", "vkiosk_9", "someone-elses-room"] {
        assert!(names.contains(&name.to_owned()), "{name} kept");
    }
}

#[tokio::test]
async fn a_room_retagged_since_its_event_is_not_deleted() {
    let app = TestApp::spawn(Options::default()).await;
    let name = allocated(&app, "FIRST").await;
    let message = DeletionMessage {
        name: name.clone(),
        reason: "conference_ended".into(),
        first_enqueued: time::OffsetDateTime::now_utc(),
        tag: Some("https://id.gov.bc.ca/idcheck/protected/video/SOMEONEELSE".into()),
    };
    app.rooms
        .deletion_queue()
        .send(&message.to_text(), Duration::ZERO)
        .await
        .unwrap();
    let report = gc_report(&app).await;
    assert_eq!(report["skipped_not_ours"], 1, "{report}");
    assert!(app.sim.rooms().iter().any(|r| r.name == name));
}

#[tokio::test]
async fn the_gc_drains_more_than_one_batch_and_poisons_garbage() {
    let app = TestApp::spawn(Options {
        pool_target: 70,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    let mut names = Vec::new();
    for i in 0..70 {
        names.push(allocated(&app, &format!("DRAIN{i}")).await);
    }
    for name in &names {
        enqueue_deletion(&app, name).await;
    }
    enqueue_deletion(&app, "vbv-already-gone").await;
    app.rooms
        .deletion_queue()
        .send("{not json", Duration::ZERO)
        .await
        .unwrap();
    let report = gc_report(&app).await;
    assert_eq!(report["deleted"], 70, "{report}");
    assert_eq!(report["already_gone"], 1, "{report}");
    assert_eq!(report["poisoned"], 1, "{report}");
    assert_eq!(app.deletion_depth().await, 0);
    for name in &names {
        assert!(!app.sim.rooms().iter().any(|r| &r.name == name));
    }
}

#[tokio::test]
async fn transient_pexip_failures_leave_the_message_for_another_run() {
    let app = TestApp::spawn(Options::default()).await;
    let name = allocated(&app, "FLAKY").await;
    enqueue_deletion(&app, &name).await;
    app.sim.add_fault(
        pexip_sim::Fault::status(503)
            .count(10)
            .method("DELETE")
            .path_prefix("/api/admin/configuration/v1/conference/"),
    );
    let report = gc_report(&app).await;
    assert_eq!(report["failed"], 1, "{report}");
    assert!(app.sim.rooms().iter().any(|r| r.name == name));
    assert_eq!(
        app.deletion_depth().await,
        1,
        "the message stays for redelivery"
    );
}

#[tokio::test]
async fn the_reconciler_deletes_leaks_and_nothing_else() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        env: vec![("LEAK_MIN_AGE_SECONDS".into(), "0".into())],
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    let handed_out = allocated(&app, "KEEPME").await;
    app.rooms.background_idle().await;
    // A leak: a room with our prefix, untagged, not in the pool (a crash between claim and tag).
    let leak = pexip_sdk::pexip::NewConference {
        name: "vbv-leakedroom".into(),
        service_type: "conference".into(),
        description: String::new(),
        tag: String::new(),
        pin: "123456".into(),
        guest_pin: "4321".into(),
        allow_guests: true,
        aliases: vec!["vbv-leakedroom".into()],
        extra: serde_json::Map::new(),
    };
    app.rooms.pexip().create_conference(&leak).await.unwrap();
    let mut foreign = leak.clone();
    foreign.name = "someone-elses-room".into();
    foreign.aliases = vec!["someone-elses-room".into()];
    app.rooms.pexip().create_conference(&foreign).await.unwrap();

    let response = app.invoke_timer("gc_timer").await;
    let logs = response["Logs"].to_string();
    assert!(logs.contains("reconcile"), "{logs}");
    let names: Vec<String> = app.sim.rooms().into_iter().map(|r| r.name).collect();
    assert!(
        !names.contains(&"vbv-leakedroom".to_owned()),
        "the leak is deleted"
    );
    assert!(names.contains(&handed_out));
    assert!(names.contains(&"someone-elses-room".to_owned()));
    assert_eq!(app.pool_depth().await, 2, "pooled rooms are kept");
    assert_eq!(app.rooms.stats().leaks_found, 1);
}

#[tokio::test]
async fn timers_answer_the_host_shape_and_metrics_are_reported() {
    let app = TestApp::spawn(Options::default()).await;
    app.seed_pool().await;
    allocated(&app, "METRICS").await;
    let response = app.invoke_timer("metrics_timer").await;
    assert_eq!(response["Outputs"], serde_json::json!({}));
    assert!(response["ReturnValue"].is_null());
    let line = response["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix("metrics: "))
        .unwrap()
        .to_owned();
    let metrics: Value = serde_json::from_str(&line).unwrap();
    for field in [
        "pool_depth",
        "deletion_backlog",
        "poison_count",
        "live_conferences",
        "live_participants",
        "managed_rooms",
    ] {
        assert!(metrics[field].is_u64(), "{field}: {metrics}");
    }
    assert_eq!(metrics["since_last"]["allocations"], 1);
    let again = app.invoke_timer("metrics_timer").await;
    assert!(
        again["Logs"][0]
            .as_str()
            .unwrap()
            .contains(r#""allocations":0"#),
        "counts are since the last run"
    );

    for body in [
        "",
        "not json",
        r#"{"Data":{"timer":{"ScheduleStatus":null,"IsPastDue":true}}}"#,
    ] {
        let response = app
            .http
            .post(app.at("/gc_timer"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "lenient parse of {body:?}");
        let json: Value = response.json().await.unwrap();
        assert!(json["Logs"].is_array());
        // The GC timer ends with the sweep of old allocation records: the one record here
        // is young and stays.
        let records = json["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find_map(|l| l.strip_prefix("records: "))
            .expect("a records line in Logs");
        let records: Value = serde_json::from_str(records).unwrap();
        assert_eq!(
            (records["records"].as_u64(), records["removed"].as_u64()),
            (Some(1), Some(0))
        );
    }
}

/// The "pool: {…}" line of a timer's `Logs`.
fn pool_line(response: &Value) -> Value {
    let line = response["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix("pool: "))
        .expect("a pool line in Logs")
        .to_owned();
    serde_json::from_str(&line).unwrap()
}

async fn the_gc_timer_trims_a_pool_above_its_target_and_the_metrics_timer_does_not(
    backend: Backend,
) {
    let app = TestApp::spawn(Options {
        pool_target: 3,
        ..Options::on(backend)
    })
    .await;
    app.seed_pool().await;
    let kept = allocated(&app, "TRIMKEEP").await;
    app.rooms.background_idle().await;
    // Another instance topped up at the same time: four rooms too many.
    app.rooms.bulk_create(4).unwrap();
    app.rooms.background_idle().await;
    assert_eq!(app.pool_depth().await, 7);

    let metrics = app.invoke_timer("metrics_timer").await;
    assert_eq!(pool_line(&metrics)["trimmed"], 0, "{metrics}");
    assert_eq!(app.pool_depth().await, 7, "only the GC timer trims");

    let gc = app.invoke_timer("gc_timer").await;
    let pool = pool_line(&gc);
    assert_eq!(pool["trimmed"], 4, "{gc}");
    assert_eq!(pool["created"], 0, "{gc}");
    assert_eq!(app.pool_depth().await, 3, "the pool is back at its target");
    let rooms = app.sim.rooms();
    assert_eq!(rooms.len(), 4, "three pooled rooms and the handed-out one");
    assert!(rooms.iter().any(|r| r.name == kept && !r.tag.is_empty()));
    assert_eq!(app.rooms.stats().rooms_trimmed, 4);

    // The remaining pool still serves callers.
    let room: Value = app
        .create(&uui("id", "AFTERTRIM"))
        .await
        .json()
        .await
        .unwrap();
    assert!(rooms.iter().any(|r| r.name == room["name"]));
}

#[tokio::test]
async fn the_gc_timer_trims_a_pool_above_its_target_and_the_metrics_timer_does_not_in_memory() {
    the_gc_timer_trims_a_pool_above_its_target_and_the_metrics_timer_does_not(Backend::Memory)
        .await;
}

#[tokio::test]
async fn the_gc_timer_trims_a_pool_above_its_target_and_the_metrics_timer_does_not_on_azurite() {
    the_gc_timer_trims_a_pool_above_its_target_and_the_metrics_timer_does_not(Backend::Azurite)
        .await;
}

#[tokio::test]
async fn a_trim_leaves_a_tagged_pooled_room_alone() {
    let app = TestApp::spawn(Options {
        pool_target: 1,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    app.rooms.bulk_create(1).unwrap();
    app.rooms.background_idle().await;
    // Tag both pooled rooms behind the service's back: they belong to someone now.
    for room in app.sim.rooms() {
        app.rooms
            .pexip()
            .patch_conference(
                room.id,
                &serde_json::json!({"tag": "https://id.gov.bc.ca/idcheck/protected/video/X"}),
            )
            .await
            .unwrap();
    }
    let gc = app.invoke_timer("gc_timer").await;
    assert_eq!(pool_line(&gc)["trimmed"], 0, "{gc}");
    assert_eq!(app.sim.rooms().len(), 2, "no tagged room is deleted");
}

#[tokio::test]
async fn a_timer_top_up_counts_the_refills_still_in_flight() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    // Replacement rooms take a long time to create, so both are still on their way to the
    // pool when the timer runs.
    app.sim.add_fault(
        pexip_sim::Fault::latency(3_000)
            .method("POST")
            .path_prefix("/api/admin/configuration/v1/conference/"),
    );
    allocated(&app, "INFLIGHT1").await;
    allocated(&app, "INFLIGHT2").await;
    assert_eq!(app.pool_depth().await, 0);

    let metrics = app.invoke_timer("metrics_timer").await;
    let pool = pool_line(&metrics);
    assert_eq!(pool["in_flight"], 2, "{metrics}");
    assert_eq!(
        pool["created"], 0,
        "the refills in flight are not made twice"
    );
    app.rooms.background_idle().await;
    assert_eq!(app.pool_depth().await, 2, "exactly at target");
    assert_eq!(app.sim_room_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_timer_run_longer_than_the_request_timeout_completes_and_a_room_request_does_not() {
    let _tick = testkit::time::tick();
    let app = TestApp::spawn(Options {
        env: vec![("PEXIP_REQUEST_TIMEOUT_SECONDS".into(), "300".into())],
        ..Options::default()
    })
    .await;
    // Pexip takes 70 s to answer the GC's first question (which conferences are live).
    app.sim.add_fault(
        pexip_sim::Fault::latency(70_000)
            .count(1)
            .path_prefix("/api/admin/status/v1/conference/"),
    );
    let started = tokio::time::Instant::now();
    let gc = gc_report(&app).await;
    assert!(started.elapsed() >= Duration::from_secs(70));
    assert_eq!(gc["interrupted"], false, "{gc}");

    // Routes callers use still give up after a minute.
    app.sim.add_fault(
        pexip_sim::Fault::latency(70_000)
            .count(1)
            .path_prefix("/api/admin/configuration/v1/conference/"),
    );
    let slow = app.http.get(app.at("/room")).send().await.unwrap();
    assert_eq!(slow.status(), 503);
}
