//! `POST /room/create`: allocation from the pool, idempotency, fallback, bad input.

use std::collections::HashSet;

use crate::support::*;

async fn created_room(app: &TestApp, uui: &str) -> serde_json::Value {
    let response = app.create(uui).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn create_returns_a_tagged_room_without_the_host_pin(backend: Backend) {
    let app = TestApp::spawn(Options::on(backend)).await;
    app.seed_pool().await;
    let rooms_before = app.sim_room_count();

    let room = created_room(&app, EXAMPLE_UUI).await;

    let object = room.as_object().unwrap();
    assert!(
        !object.contains_key("pin"),
        "the host PIN must not be returned: {room}"
    );
    assert_eq!(room["tag"], EXAMPLE_TAG);
    assert_eq!(room["service_type"], "conference");
    assert_eq!(room["allow_guests"], true);
    let guest_pin = room["guest_pin"].as_str().unwrap();
    assert!(guest_pin.len() == 4 && guest_pin.bytes().all(|b| b.is_ascii_digit()));
    let alias = &room["aliases"][0];
    assert_eq!(alias["alias"], room["name"]);
    for field in ["id", "alias", "conference", "creation_time", "description"] {
        assert!(alias.get(field).is_some(), "alias lacks {field}: {alias}");
    }
    // The room on Pexip carries the tag; it came from the pool, so no room was created
    // synchronously (the refill comes later, in the background).
    let on_sim = app
        .sim
        .rooms()
        .into_iter()
        .find(|r| r.name == room["name"])
        .unwrap();
    assert_eq!(on_sim.tag, EXAMPLE_TAG);
    assert_eq!(app.rooms.stats().pool_empty_fallbacks, 0);
    app.rooms.background_idle().await;
    assert_eq!(
        app.sim_room_count(),
        rooms_before + 1,
        "one replacement room"
    );
    assert_eq!(app.pool_depth().await, 5, "pool back at target");
}

#[tokio::test]
async fn create_returns_a_tagged_room_without_the_host_pin_in_memory() {
    create_returns_a_tagged_room_without_the_host_pin(Backend::Memory).await;
}

#[tokio::test]
async fn create_returns_a_tagged_room_without_the_host_pin_on_azurite() {
    create_returns_a_tagged_room_without_the_host_pin(Backend::Azurite).await;
}

async fn the_same_uui_data_returns_the_same_room(backend: Backend) {
    let app = TestApp::spawn(Options::on(backend)).await;
    app.seed_pool().await;
    let first = created_room(&app, EXAMPLE_UUI).await;
    let again = created_room(&app, "6964264d54497a4e4455324c4463324e54517a4d67").await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["name"], again["name"]);
    let other = created_room(&app, &uui("idtest", "OTHERCALL")).await;
    assert_ne!(first["id"], other["id"]);
    assert_eq!(app.rooms.stats().allocations, 2);
    assert_eq!(app.rooms.stats().allocations_existing, 1);
}

#[tokio::test]
async fn the_same_uui_data_returns_the_same_room_in_memory() {
    the_same_uui_data_returns_the_same_room(Backend::Memory).await;
}

#[tokio::test]
async fn the_same_uui_data_returns_the_same_room_on_azurite() {
    the_same_uui_data_returns_the_same_room(Backend::Azurite).await;
}

async fn parallel_creates_get_distinct_rooms_and_the_pool_refills(backend: Backend) {
    let app = TestApp::spawn(Options {
        pool_target: 20,
        ..Options::on(backend)
    })
    .await;
    app.seed_pool().await;
    let creates = (0..200).map(|i| {
        let app = &app;
        async move { created_room(app, &uui("id", &format!("CALL{i}"))).await }
    });
    let rooms = futures::future::join_all(creates).await;
    let ids: HashSet<u64> = rooms.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    let tags: HashSet<&str> = rooms.iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 200, "every caller got a room of their own");
    assert_eq!(tags.len(), 200);
    // Each room on Pexip carries exactly the tag of the one caller it was handed to.
    for room in &rooms {
        let on_sim = app
            .sim
            .rooms()
            .into_iter()
            .find(|r| r.name == room["name"])
            .unwrap();
        assert_eq!(on_sim.tag, room["tag"].as_str().unwrap());
    }
    app.rooms.background_idle().await;
    app.invoke_timer("metrics_timer").await;
    assert!(
        app.pool_depth().await >= 20,
        "pool back at target after the timer"
    );
}

#[tokio::test]
async fn parallel_creates_get_distinct_rooms_and_the_pool_refills_in_memory() {
    parallel_creates_get_distinct_rooms_and_the_pool_refills(Backend::Memory).await;
}

#[tokio::test]
async fn parallel_creates_get_distinct_rooms_and_the_pool_refills_on_azurite() {
    parallel_creates_get_distinct_rooms_and_the_pool_refills(Backend::Azurite).await;
}

#[tokio::test]
async fn bad_uui_data_is_refused_and_allocates_nothing() {
    let app = TestApp::spawn(Options::default()).await;
    app.seed_pool().await;
    let rooms_before = app.sim_room_count();
    let creates_before = app.sim_requests(CREATE_ROUTE);
    let ten_kb = "61".repeat(5 * 1024);
    let cases = [
        ("not hex", "zz26"),
        ("odd length", "696426a"),
        ("not UTF-8", "fffe264142"),
        ("no ampersand", "69644d54497a"),
        ("host not allowed", "6576696c2e636f6d2f3f264142"),
        ("bad characters in the id", "696426412f42"),
        ("empty", ""),
        ("10 KB", ten_kb.as_str()),
        ("only the suffix", ";encoding=hex"),
    ];
    for (what, raw) in cases {
        let response = app.create(raw).await;
        assert_eq!(response.status(), 400, "{what}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_uui_data", "{what}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    // A missing parameter is refused as FastAPI refused it, before the handler.
    let missing = app.http.post(app.at("/room/create")).send().await.unwrap();
    assert_eq!(missing.status(), 422);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"detail": [{"type": "missing", "loc": ["query", "uuiData"],
            "msg": "Field required", "input": null}], "code": "validation_error"})
    );
    assert_eq!(app.sim_room_count(), rooms_before, "nothing created");
    assert_eq!(app.sim_requests(CREATE_ROUTE), creates_before);
    assert_eq!(app.pool_depth().await, 5, "nothing taken from the pool");
    assert_eq!(app.rooms.stats().allocations, 0);
}

#[tokio::test]
async fn an_empty_pool_still_serves_a_room_by_creating_one() {
    let app = TestApp::spawn(Options::default()).await;
    let room = created_room(&app, EXAMPLE_UUI).await;
    assert_eq!(room["tag"], EXAMPLE_TAG);
    assert!(room.get("pin").is_none());
    assert_eq!(app.rooms.stats().pool_empty_fallbacks, 1);
    app.rooms.background_idle().await;
    assert_eq!(app.pool_depth().await, 5, "the fallback starts a top-up");
}

#[tokio::test]
async fn rooms_still_replicating_are_not_handed_out() {
    let app = TestApp::spawn(Options {
        ready_delay_secs: 300,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    let room = created_room(&app, EXAMPLE_UUI).await;
    assert_eq!(
        app.rooms.stats().pool_empty_fallbacks,
        1,
        "the pool's rooms are not dialable yet"
    );
    let pooled: HashSet<String> = app
        .sim
        .rooms()
        .into_iter()
        .filter(|r| r.tag.is_empty())
        .map(|r| r.name)
        .collect();
    assert!(!pooled.contains(room["name"].as_str().unwrap()));
    assert_eq!(pooled.len(), 5);
}

#[tokio::test]
async fn a_pooled_room_that_pexip_lost_is_skipped() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    let pooled = app.sim.rooms();
    app.rooms
        .pexip()
        .delete_conference(pooled[0].id)
        .await
        .unwrap();
    let room = created_room(&app, EXAMPLE_UUI).await;
    assert_eq!(room["name"], pooled[1].name.as_str());
    assert_eq!(app.rooms.stats().pool_empty_fallbacks, 0);
}

#[tokio::test]
async fn concurrent_creates_for_one_video_call_on_one_instance_share_one_room() {
    let app = TestApp::spawn(Options::default()).await;
    app.seed_pool().await;
    let creates = (0..10).map(|_| created_room(&app, EXAMPLE_UUI));
    let rooms = futures::future::join_all(creates).await;
    let ids: HashSet<u64> = rooms.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 1, "every create got the same room: {ids:?}");
    app.rooms.background_idle().await;
    let tagged: Vec<_> = app
        .sim
        .rooms()
        .into_iter()
        .filter(|r| !r.tag.is_empty())
        .collect();
    assert_eq!(tagged.len(), 1, "one room tagged for the call");
    assert_eq!(app.rooms.stats().allocations, 1);
    assert_eq!(app.rooms.stats().allocations_existing, 9);
    assert_eq!(
        app.pool_depth().await,
        5,
        "one pool room used, one replaced"
    );
}

/// Tag the room `id` for `EXAMPLE_TAG` while the service's own tagging PATCH is held up by
/// the simulator, as another instance serving the same video call would. Returns the
/// service's answer.
async fn race_another_instance(app: &TestApp, other_id: u64) -> serde_json::Value {
    // Only the service's PATCH is slowed: the fault is used up by the first one.
    app.sim.add_fault(
        pexip_sim::Fault::latency(1_500)
            .count(1)
            .method("PATCH")
            .path_prefix("/api/admin/configuration/v1/conference/"),
    );
    let create = {
        let (http, url) = (
            app.http.clone(),
            app.at(&format!("/room/create?uuiData={EXAMPLE_UUI}")),
        );
        tokio::spawn(async move { http.post(url).send().await.unwrap() })
    };
    // Wait until the service's PATCH has reached the simulator (the fault is consumed).
    loop {
        let faults: serde_json::Value = app
            .http
            .get(format!("{}/_sim/faults", app.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if faults.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.rooms
        .pexip()
        .patch_conference(other_id, &serde_json::json!({ "tag": EXAMPLE_TAG }))
        .await
        .unwrap();
    let response = create.await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_create_that_finds_an_older_room_tagged_for_its_call_answers_it_and_deletes_its_own() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        ..Options::default()
    })
    .await;
    // The other instance's room is older (lower id) than every pool room.
    let other = app
        .rooms
        .pexip()
        .create_conference(&testkit::sim::conference("vbv-otherinstance"))
        .await
        .unwrap();
    app.seed_pool().await;

    let answer = race_another_instance(&app, other.id).await;

    assert_eq!(
        answer["id"], other.id,
        "both instances answer the older room"
    );
    assert_eq!(answer["tag"], EXAMPLE_TAG);
    app.rooms.background_idle().await;
    let tagged: Vec<_> = app
        .sim
        .rooms()
        .into_iter()
        .filter(|r| !r.tag.is_empty())
        .collect();
    assert_eq!(tagged.len(), 1, "the losing room is deleted: {tagged:?}");
    assert_eq!(tagged[0].id, other.id);
    assert_eq!(app.rooms.stats().duplicates_released, 1);
    assert_eq!(app.pool_depth().await, 2, "the pool room used was replaced");
}

#[tokio::test]
async fn a_create_whose_room_is_the_oldest_tagged_for_its_call_keeps_it() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    // The other instance's room is younger (higher id): it is the one to give way.
    let other = app
        .rooms
        .pexip()
        .create_conference(&testkit::sim::conference("vbv-otherinstance"))
        .await
        .unwrap();

    let answer = race_another_instance(&app, other.id).await;

    assert!(answer["id"].as_u64().unwrap() < other.id);
    assert_eq!(answer["tag"], EXAMPLE_TAG);
    app.rooms.background_idle().await;
    assert_eq!(app.rooms.stats().duplicates_released, 0);
    assert!(
        app.sim.rooms().iter().any(|r| r.id == other.id),
        "the other instance's room is its own to release"
    );
}
