//! Rooms the explicit routes may touch: ours by name prefix, those the replaced service
//! handed out (our tag, no prefix), and the persistent ones. Any other VMR of the Management
//! Node is 404 to every route and stays as it was; updates write only what this service
//! would write itself.

use serde_json::{Value, json};

use crate::support::*;

/// The write requests the simulator has seen so far: (PATCH, DELETE) on a conference.
fn writes(app: &TestApp) -> (u64, u64) {
    (
        app.sim_requests(PATCH_ROUTE),
        app.sim_requests(DELETE_ROUTE),
    )
}

#[tokio::test]
async fn a_foreign_vmr_is_not_found_by_any_route_and_stays_untouched() {
    let app = TestApp::spawn(Options::default()).await;
    // Another team's rooms on the same node: no prefix of ours, no tag of ours.
    pexip_room(&app, "finance-weekly", "").await;
    pexip_room(&app, "hearing-12", "CASEFLOW").await;
    pexip_room(
        &app,
        "lookalike",
        "https://evil.gov.bc.ca/idcheck/protected/video/MTIz",
    )
    .await;
    let before = app.sim.rooms();
    let writes_before = writes(&app);

    for name in ["finance-weekly", "hearing-12", "lookalike"] {
        let requests = [
            app.http.get(app.at(&format!("/room/{name}"))),
            app.http
                .get(app.at(&format!("/room/{name}?constrained_attributes=false"))),
            app.http
                .patch(app.at(&format!("/room/{name}")))
                .json(&json!({"guest_pin": "9999", "pin": "999999"})),
            app.http.delete(app.at(&format!("/room/{name}"))),
            app.http
                .get(app.at(&format!("/public/room/{name}")))
                .header("x-auth-token", AGENT_TOKEN),
        ];
        for request in requests {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 404, "{name}");
            let body: Value = response.json().await.unwrap();
            // The same answer as for a room that does not exist: nothing confirms it does.
            assert_eq!(
                body,
                json!({"detail": "room not found", "code": "room_not_found"}),
                "{name}"
            );
        }
    }
    assert_eq!(app.sim.rooms(), before, "every foreign room as it was");
    assert_eq!(writes(&app), writes_before, "no write reached Pexip");
}

#[tokio::test]
async fn a_room_the_replaced_service_handed_out_keeps_working() {
    let app = TestApp::spawn(Options::default()).await;
    // The old service named rooms without our prefix and tagged them with our template.
    let name = "MTIzNDU2LDc2NTQzMg";
    pexip_room(&app, name, EXAMPLE_TAG).await;

    let read = app
        .http
        .get(app.at(&format!("/room/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(
        (read["tag"].as_str(), read["pin"].as_str()),
        (Some(EXAMPLE_TAG), Some("123456"))
    );
    let agent = app
        .http
        .get(app.at(&format!("/public/room/{name}")))
        .header("x-auth-token", AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 200);

    let update = app
        .http
        .patch(app.at(&format!("/room/{name}")))
        .json(&json!({"guest_pin": "5555"}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 202);
    assert_eq!(app.sim_room(name).unwrap().guest_pin, "5555");

    let delete = app
        .http
        .delete(app.at(&format!("/room/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert!(app.sim_room(name).is_none());
}

#[tokio::test]
async fn weak_empty_or_equal_pins_are_refused_and_nothing_is_written() {
    // Equal lengths, so that equal PINs are possible at all.
    let app = TestApp::spawn(Options {
        env: vec![
            ("HOST_PIN_LENGTH".into(), "6".into()),
            ("GUEST_PIN_LENGTH".into(), "6".into()),
        ],
        ..Options::default()
    })
    .await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let url = app.at(&format!("/room/{name}"));
    let before = app.sim_room(name).unwrap();
    let (host, guest) = (before.pin.clone(), before.guest_pin.clone());
    let writes_before = writes(&app);

    let cases = [
        ("weak host PIN", json!({"pin": "1234"})),
        ("weak guest PIN", json!({"guest_pin": "12345#"})),
        ("too long", json!({"pin": "1234567"})),
        ("empty host PIN", json!({"pin": ""})),
        ("empty guest PIN", json!({"guest_pin": ""})),
        ("not digits", json!({"pin": "12a456"})),
        ("equal", json!({"pin": "246802", "guest_pin": "246802"})),
        (
            "equal but for #",
            json!({"pin": "246802#", "guest_pin": "246802"}),
        ),
        ("host = the room's guest PIN", json!({ "pin": guest })),
        (
            "guest = the room's host PIN",
            json!({ "guest_pin": format!("{host}#") }),
        ),
    ];
    for (what, body) in cases {
        let response = app.http.patch(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], "invalid_pin", "{what}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            !detail.contains(&host) && !detail.contains(&guest) && !detail.contains("246802"),
            "{what}: a PIN is never echoed: {detail}"
        );
    }
    assert_eq!(app.sim_room(name).unwrap(), before, "the room as it was");
    assert_eq!(writes(&app), writes_before, "no write reached Pexip");

    let good = app
        .http
        .patch(&url)
        .json(&json!({"pin": "246802", "guest_pin": "135791#"}))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 202);
    let after = app.sim_room(name).unwrap();
    assert_eq!(
        (after.pin.as_str(), after.guest_pin.as_str()),
        ("246802", "135791#")
    );
}

#[tokio::test]
async fn a_tag_is_written_only_when_empty_or_one_of_ours() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let url = app.at(&format!("/room/{name}"));
    for foreign in [
        "https://evil.example/idcheck/protected/video/MTIz",
        "https://id.gov.bc.ca/idcheck/protected/video/a/b",
        "CASEFLOW",
    ] {
        let response = app
            .http
            .patch(&url)
            .json(&json!({ "tag": foreign }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{foreign}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_tag");
    }
    assert_eq!(app.sim_room(name).unwrap().tag, EXAMPLE_TAG);
    let ours = "https://iddev.gov.bc.ca/idcheck/protected/video/T3RoZXI";
    for tag in [ours, ""] {
        let response = app
            .http
            .patch(&url)
            .json(&json!({ "tag": tag }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{tag:?}");
        assert_eq!(app.sim_room(name).unwrap().tag, tag);
    }
}

#[tokio::test]
async fn persistent_rooms_are_refused_whatever_the_case_of_their_prefix() {
    let app = TestApp::spawn(Options {
        env: vec![("PERSISTENT_ROOM_PREFIXES".into(), "test_".into())],
        ..Options::default()
    })
    .await;
    pexip_room(&app, "TEST_x", "").await;
    let deletes_before = app.sim_requests(DELETE_ROUTE);
    for name in ["TEST_x", "Test_absent"] {
        let response = app
            .http
            .delete(app.at(&format!("/room/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "persistent_room");
    }
    assert!(app.sim_room("TEST_x").is_some());
    assert_eq!(app.sim_requests(DELETE_ROUTE), deletes_before);
    // Persistent rooms are managed: they can be read.
    let read = app.http.get(app.at("/room/TEST_x")).send().await.unwrap();
    assert_eq!(read.status(), 200);
}
