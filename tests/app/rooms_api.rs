//! The other `/room*` routes: read, update, delete, list, bulk jobs, and the error envelope.

use serde_json::{Value, json};

use crate::support::*;

async fn envelope(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].is_string() && body["code"].is_string(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn a_room_reads_constrained_by_default_and_in_full_on_request() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    assert!(room.get("pin").is_none(), "create never shows the host PIN");

    let constrained = app.get_json(&format!("/room/{name}")).await;
    let mut want = room.clone();
    want["pin"] = Value::String(app.sim_room(name).unwrap().pin);
    // The create answered from the pool message, the read from Pexip: the same room, except
    // what only a read of Pexip knows (each alias's id, Pexip's own creation time).
    let known = |mut v: Value| {
        for alias in v["aliases"].as_array_mut().unwrap() {
            let alias = alias.as_object_mut().unwrap();
            alias.remove("id");
            alias.remove("creation_time");
        }
        v
    };
    assert_eq!(
        known(constrained.clone()),
        known(want),
        "the read is what create returned, plus the host PIN"
    );
    assert_eq!(room["aliases"][0]["id"], 0, "not known without a read");
    assert!(constrained["aliases"][0]["id"].as_u64().unwrap() > 0);

    let full: Value = app
        .http
        .get(app.at(&format!("/room/{name}?constrained_attributes=false")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["name"], name);
    assert!(
        full["pin"].as_str().is_some_and(|p| p.len() == 6),
        "the full object has the host PIN"
    );
    assert!(
        full.get("resource_uri").is_some() && full.get("host_view").is_some(),
        "{full}"
    );
}

#[tokio::test]
async fn unknown_and_invalid_room_names_get_404_and_400() {
    let app = TestApp::spawn(Options::default()).await;
    let body = envelope(
        app.http
            .get(app.at("/room/vbv-nosuchroom"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(body["code"], "room_not_found");
    // (`..` is covered by the unit tests: HTTP clients normalise it away before sending.)
    for bad in ["a%20b", "a%2Fb", "%C3%A9t%C3%A9", "x%00y", "a%3Fb%3Dc"] {
        let body = envelope(
            app.http
                .get(app.at(&format!("/room/{bad}")))
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;
        assert_eq!(body["code"], "invalid_room_name", "{bad}");
        let body = envelope(
            app.http
                .delete(app.at(&format!("/room/{bad}")))
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;
        assert_eq!(body["code"], "invalid_room_name", "{bad}");
    }
    assert_eq!(app.sim_requests(DELETE_ROUTE), 0);
}

#[tokio::test]
async fn a_partial_update_changes_only_the_given_fields() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let response = app
        .http
        .patch(app.at(&format!("/room/{name}")))
        .json(&json!({"guest_pin": "9876", "description": "assigned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let on_sim = app
        .sim
        .rooms()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap();
    assert_eq!(on_sim.guest_pin, "9876");
    assert_eq!(on_sim.tag, EXAMPLE_TAG, "untouched");
}

#[tokio::test]
async fn invalid_updates_get_the_error_envelope() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let url = app.at(&format!("/room/{}", room["name"].as_str().unwrap()));
    let patches_before = app.sim_requests(PATCH_ROUTE);
    let cases: [(&str, u16, &str); 7] = [
        (r#"{"pin":"12"}"#, 400, "invalid_pin"),
        (r#"{"tag":"https://evil.example/x"}"#, 400, "invalid_tag"),
        ("{}", 400, "invalid_request"),
        // FastAPI's request validation: 422 with its list.
        (r#"{"name":"rename"}"#, 422, "validation_error"),
        (r#"{"tag": 5}"#, 422, "validation_error"),
        (r#"{"tag": "#, 422, "validation_error"),
        ("[]", 422, "validation_error"),
    ];
    for (body, status, code) in cases {
        let response = app
            .http
            .patch(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let got: Value = response.json().await.unwrap();
        assert_eq!(got["code"], code, "{body}");
        if status == 422 {
            assert!(got["detail"][0]["loc"][0] == "body", "{got}");
        } else {
            assert!(got["detail"].is_string(), "{got}");
        }
    }
    let not_json = app
        .http
        .patch(&url)
        .header("content-type", "text/plain")
        .body(r#"{"tag":""}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 422);
    assert_eq!(
        app.sim_requests(PATCH_ROUTE),
        patches_before,
        "nothing reached Pexip"
    );
    let missing = app
        .http
        .patch(app.at("/room/vbv-nosuchroom"))
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    envelope(missing, 404).await;
}

#[tokio::test]
async fn delete_removes_a_room_at_once_and_refuses_persistent_ones() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let response = app
        .http
        .delete(app.at(&format!("/room/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert!(!app.sim.rooms().iter().any(|r| r.name == name));
    // The call's record went with its room: a new create gets a new room.
    let records = app.rooms.allocation_records();
    assert!(records.read(EXAMPLE_TAG).await.unwrap().is_none());
    let again: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    assert_ne!(again["name"], name);
    envelope(
        app.http
            .delete(app.at(&format!("/room/{name}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    for persistent in ["test_lobby", "vkiosk_42"] {
        pexip_room(&app, persistent, "").await;
        let body = envelope(
            app.http
                .delete(app.at(&format!("/room/{persistent}")))
                .send()
                .await
                .unwrap(),
            409,
        )
        .await;
        assert_eq!(body["code"], "persistent_room");
        assert!(app.sim.rooms().iter().any(|r| r.name == persistent));
    }
}

#[tokio::test]
async fn the_list_holds_every_managed_room_and_nothing_else() {
    let app = TestApp::spawn(Options {
        pool_target: 45,
        ..Options::default()
    })
    .await;
    app.seed_pool().await;
    pexip_room(&app, "test_lobby", "").await;
    pexip_room(&app, "VKIOSK_7", "").await;
    pexip_room(&app, "MTIzNDU2LDc2NTQzMg", EXAMPLE_TAG).await;
    pexip_room(&app, "someone-elses-room", "").await;
    pexip_room(&app, "tagged-elsewhere", "https://evil.example/video/MTIz").await;
    let list = app.get_json("/room").await;
    let list = list.as_array().unwrap();
    assert_eq!(
        list.len(),
        48,
        "45 pool rooms, two persistent ones and the replaced service's"
    );
    assert!(list.iter().all(|r| r["pin"].is_string()), "with host PINs");
    let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for managed in ["test_lobby", "VKIOSK_7", "MTIzNDU2LDc2NTQzMg"] {
        assert!(names.contains(&managed), "{managed}");
    }
    for foreign in ["someone-elses-room", "tagged-elsewhere"] {
        assert!(!names.contains(&foreign), "{foreign}");
    }
    let full = app.get_json("/room?constrained_attributes=false").await;
    assert_eq!(full.as_array().unwrap().len(), 48);
    assert!(full[0].get("pin").is_some() && full[0].get("host_view").is_some());
}

#[tokio::test]
async fn bulk_create_fills_the_pool_in_the_background() {
    let app = TestApp::spawn(Options::default()).await;
    let response = app
        .http
        .post(app.at("/room/bulk?count=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    app.rooms.background_idle().await;
    assert_eq!(app.pool_depth().await, 7);
    assert_eq!(app.sim_room_count(), 7);
    for bad in ["count=0", "count=-1", "count=100000"] {
        let response = app
            .http
            .post(app.at(&format!("/room/bulk?{bad}")))
            .send()
            .await
            .unwrap();
        envelope(response, 400).await;
    }
    for (bad, kind) in [("count=abc", "int_parsing"), ("", "missing")] {
        let response = app
            .http
            .post(app.at(&format!("/room/bulk?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["detail"][0]["type"], kind, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", "count"]));
    }
}

#[tokio::test]
async fn bulk_delete_needs_confirmation_and_spares_persistent_and_live_rooms() {
    let app = TestApp::spawn(Options::default()).await;
    app.seed_pool().await;
    let live: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let live_name = live["name"].as_str().unwrap().to_owned();
    app.sim.start_conference(&live_name, 2, 1).await.unwrap();
    let gone_tag = "https://id.gov.bc.ca/idcheck/protected/video/BULKGONE";
    app.create(&uui("id", "BULKGONE")).await;
    pexip_room(&app, "test_lobby", "").await;
    pexip_room(&app, "someone-elses-room", "").await;
    app.rooms.background_idle().await;

    let refused = app.http.delete(app.at("/room/bulk")).send().await.unwrap();
    assert_eq!(
        envelope(refused, 400).await["code"],
        "confirmation_required"
    );
    assert_eq!(app.sim_requests(DELETE_ROUTE), 0);

    let response = app
        .http
        .delete(app.at("/room/bulk?confirm=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    app.rooms.background_idle().await;
    let mut left: Vec<String> = app.sim.rooms().into_iter().map(|r| r.name).collect();
    left.sort();
    let mut want = vec![
        live_name,
        "someone-elses-room".to_owned(),
        "test_lobby".to_owned(),
    ];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(app.pool_depth().await, 0);
    let records = app.rooms.allocation_records();
    assert!(
        records.read(gone_tag).await.unwrap().is_none(),
        "a deleted room's record goes with it"
    );
    assert!(
        records.read(EXAMPLE_TAG).await.unwrap().is_some(),
        "the live room's stays"
    );
    assert_eq!(app.sim.counters().collection_deletes, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = TestApp::spawn(Options::default()).await;
    // Starlette's words in `detail`, as the replaced service answered.
    let not_found = envelope(app.http.get(app.at("/nope")).send().await.unwrap(), 404).await;
    assert_eq!(
        not_found,
        json!({"detail": "Not Found", "code": "not_found"})
    );
    let put = app.http.put(app.at("/room/create")).send().await.unwrap();
    assert_eq!(
        envelope(put, 405).await,
        json!({"detail": "Method Not Allowed", "code": "method_not_allowed"})
    );
    let bad_query = app
        .http
        .get(app.at("/room?constrained_attributes=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_query.status(), 422);
    let body: Value = bad_query.json().await.unwrap();
    assert_eq!(body["code"], "validation_error");
}

#[tokio::test]
async fn oversized_request_heads_are_refused_before_any_work() {
    let app = TestApp::spawn(Options::default()).await;
    let long_target = app.at(&format!("/room/create?uuiData={}", "61".repeat(9000)));
    let response = app.http.post(long_target).send().await.unwrap();
    assert_eq!(envelope(response, 414).await["code"], "uri_too_long");
    let response = app
        .http
        .get(app.at("/public/health"))
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(envelope(response, 431).await["code"], "headers_too_large");
    assert_eq!(app.sim_room_count(), 0);
}
