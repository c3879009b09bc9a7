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

/// An untagged room of ours made on Pexip directly, not through the pool.
async fn room_outside_the_pool(app: &TestApp, name: &str) -> pexip_sdk::pexip::Conference {
    app.rooms
        .pexip()
        .create_conference(&testkit::sim::conference(name))
        .await
        .unwrap()
}

/// Poll the simulator until `done` holds (a guard against hanging, not a timing check).
async fn eventually(app: &TestApp, what: &str, done: impl Fn(&[pexip_sim::SimRoom]) -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done(&app.sim.rooms()) {
        assert!(std::time::Instant::now() < give_up, "{what} did not happen");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Every room carried at most one non-empty tag over its whole life (from the journal).
fn no_room_carried_two_tags(app: &TestApp) {
    let mut tags: std::collections::HashMap<u64, HashSet<String>> = Default::default();
    for entry in app.sim.journal() {
        if let Some(tag) = entry.tag_after.filter(|t| !t.is_empty()) {
            tags.entry(entry.room_id).or_default().insert(tag);
        }
    }
    for (room, tags) in tags {
        assert!(tags.len() <= 1, "room {room} carried {tags:?}");
    }
}

#[tokio::test]
async fn a_tagging_patch_that_may_still_apply_quarantines_the_room_and_the_caller_gets_the_next() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    let pooled = app.sim.rooms();
    // The first PATCH is answered 500 and applied 200 ms later anyway.
    app.sim.add_fault(
        pexip_sim::Fault::late(200, Some(500))
            .count(1)
            .method("PATCH"),
    );

    let room = created_room(&app, EXAMPLE_UUI).await;

    assert_eq!(room["tag"], EXAMPLE_TAG);
    assert_eq!(app.rooms.stats().rooms_quarantined, 1);
    let answered = room["name"].as_str().unwrap().to_owned();
    let quarantined = pooled
        .into_iter()
        .find(|r| r.name != answered)
        .unwrap()
        .name;
    eventually(&app, "the late PATCH", |rooms| {
        rooms
            .iter()
            .any(|r| r.name == quarantined && r.tag == EXAMPLE_TAG)
    })
    .await;
    // Both rooms taken from the pool were replaced; the quarantined one is not in it.
    app.rooms.background_idle().await;
    assert_eq!(app.pool_depth().await, 2);

    // The GC deletes the quarantined room (the call's record names the other one) and
    // keeps the answered one.
    let gc = app.invoke_timer("gc_timer").await;
    let names: HashSet<String> = app.sim.rooms().into_iter().map(|r| r.name).collect();
    assert!(!names.contains(&quarantined), "{gc}");
    assert!(names.contains(&answered), "{gc}");
    let again = created_room(&app, EXAMPLE_UUI).await;
    assert_eq!(again["name"], answered.as_str());
    no_room_carried_two_tags(&app);
}

#[tokio::test]
async fn a_dropped_connection_on_the_tagging_patch_never_puts_the_room_back() {
    let app = TestApp::spawn(Options {
        pool_target: 3,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    // Dropped connections are retried by the client; all four attempts are cut and land
    // late, so the create moves on to the next pool room.
    app.sim
        .add_fault(pexip_sim::Fault::late(100, None).count(4).method("PATCH"));
    let first = created_room(&app, EXAMPLE_UUI).await;
    let other = created_room(&app, &uui("id", "OTHERCALL")).await;
    assert_ne!(first["id"], other["id"]);
    assert_eq!(app.rooms.stats().rooms_quarantined, 1);
    app.rooms.background_idle().await;
    eventually(&app, "the late PATCHes", |rooms| {
        rooms.iter().filter(|r| r.tag == EXAMPLE_TAG).count() == 2
    })
    .await;
    no_room_carried_two_tags(&app);
}

#[tokio::test]
async fn a_repeated_create_reads_the_calls_record_and_asks_pexip_nothing() {
    let app = TestApp::spawn(Options::default()).await;
    app.seed_pool().await;
    let first = created_room(&app, EXAMPLE_UUI).await;
    app.rooms.background_idle().await;
    app.sim.reset_counters();

    let again = created_room(&app, EXAMPLE_UUI).await;

    assert_eq!(again, first, "the same answer, field for field");
    let requests: u64 = app.sim.counters().requests.values().sum();
    assert_eq!(requests, 0, "{:?}", app.sim.counters().requests);
}

#[tokio::test]
async fn the_first_create_of_a_call_makes_one_pexip_request_on_its_path() {
    let app = TestApp::spawn(Options::default()).await;
    app.seed_pool().await;
    app.sim.reset_counters();
    created_room(&app, EXAMPLE_UUI).await;
    let counters = app.sim.counters();
    assert_eq!(
        counters.requests_for("PATCH /api/admin/configuration/v1/conference/{id}/"),
        1
    );
    let reads: Vec<&String> = counters
        .requests
        .keys()
        .filter(|route| route.starts_with("GET"))
        .collect();
    assert!(reads.is_empty(), "no GET, no tag lookup: {reads:?}");
    app.rooms.background_idle().await;
    let counters = app.sim.counters();
    assert_eq!(counters.requests_for(CREATE_ROUTE), 1, "the refill's POST");
    assert_eq!(
        counters.requests.values().sum::<u64>(),
        2,
        "two requests in all: {:?}",
        counters.requests
    );
}

#[tokio::test]
async fn pool_messages_of_earlier_versions_still_work_with_one_read() {
    let app = TestApp::spawn(Options {
        pool_target: 0,
        ..Options::default()
    })
    .await;
    let mut made = Vec::new();
    for name in ["vbv-olderwithid", "vbv-oldestplain"] {
        made.push(room_outside_the_pool(&app, name).await);
    }
    let pool = app.rooms.pool_queue();
    let with_id = format!(r#"{{"name":"{}","id":{}}}"#, made[0].name, made[0].id);
    for text in [with_id.as_str(), made[1].name.as_str()] {
        pool.send(text, std::time::Duration::ZERO).await.unwrap();
    }
    app.sim.reset_counters();

    let a = created_room(&app, &uui("id", "OLDERONE")).await;
    let b = created_room(&app, &uui("id", "OLDERTWO")).await;

    let names: HashSet<&str> = [a["name"].as_str().unwrap(), b["name"].as_str().unwrap()].into();
    assert_eq!(names, HashSet::from(["vbv-olderwithid", "vbv-oldestplain"]));
    for room in [&a, &b] {
        assert_eq!(room["guest_pin"], "4321", "read from Pexip");
        assert!(room["aliases"][0]["id"].as_u64().unwrap() > 0);
        assert!(room.get("pin").is_none());
    }
    let counters = app.sim.counters();
    assert_eq!(
        counters.requests_for("GET /api/admin/configuration/v1/conference/{id}/"),
        1
    );
    assert_eq!(
        counters.requests_for("GET /api/admin/configuration/v1/conference/"),
        1,
        "the plain name is looked up by name"
    );
    assert_eq!(app.rooms.stats().pool_empty_fallbacks, 0);
}

#[tokio::test]
async fn a_create_for_a_call_whose_owner_stalled_before_tagging_takes_it_over() {
    let app = TestApp::spawn(Options {
        env: vec![("ALLOCATION_CLAIM_TIMEOUT_SECONDS".into(), "2".into())],
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    // Another instance claimed the call and died.
    let records = app.rooms.allocation_records();
    let pexip_sdk::locks::Claimed::Owned(_dead) = records.claim(EXAMPLE_TAG).await.unwrap() else {
        panic!("the call was free");
    };

    let room = created_room(&app, EXAMPLE_UUI).await;

    assert_eq!(room["tag"], EXAMPLE_TAG);
    let record = records.read(EXAMPLE_TAG).await.unwrap().unwrap();
    assert_eq!(
        record.state.room().unwrap().id,
        room["id"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn a_stalled_owner_whose_room_got_the_tag_is_adopted_and_one_that_did_not_is_set_aside() {
    let app = TestApp::spawn(Options {
        pool_target: 2,
        env: vec![("ALLOCATION_CLAIM_TIMEOUT_SECONDS".into(), "2".into())],
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    // Rooms the dead owners had taken out of the pool (their messages are gone).
    let mut rooms = Vec::new();
    for name in ["vbv-stalleda", "vbv-stalledb"] {
        room_outside_the_pool(&app, name).await;
        rooms.push(
            app.sim
                .rooms()
                .into_iter()
                .find(|r| r.name == name)
                .unwrap(),
        );
    }
    let records = app.rooms.allocation_records();
    let view = |r: &pexip_sim::SimRoom| pexip_sdk::locks::HeldRoom {
        id: r.id,
        name: r.name.clone(),
        view: serde_json::json!({"id": r.id, "name": r.name, "guest_pin": r.guest_pin,
            "allow_guests": true, "service_type": "conference", "tag": EXAMPLE_TAG}),
    };
    // Call A's owner died after its PATCH applied; call B's died before it did.
    let tag_b = "https://id.gov.bc.ca/idcheck/protected/video/STALLEDB";
    for (tag, room) in [(EXAMPLE_TAG, &rooms[0]), (tag_b, &rooms[1])] {
        let pexip_sdk::locks::Claimed::Owned(mut dead) = records.claim(tag).await.unwrap() else {
            panic!("the call was free");
        };
        let tagging = pexip_sdk::locks::RecordState::Tagging { room: view(room) };
        records.record(&mut dead, tagging).await.unwrap();
    }
    app.rooms
        .pexip()
        .patch_conference(rooms[0].id, &serde_json::json!({ "tag": EXAMPLE_TAG }))
        .await
        .unwrap();

    let a = created_room(&app, EXAMPLE_UUI).await;
    let b = created_room(&app, &uui("id", "STALLEDB")).await;

    assert_eq!(a["id"], rooms[0].id, "adopted: it may have been answered");
    assert_ne!(b["id"], rooms[1].id, "set aside: it cannot have been");
    assert_eq!(b["tag"], tag_b);
    assert_eq!(app.rooms.stats().rooms_quarantined, 1);
    no_room_carried_two_tags(&app);
}
