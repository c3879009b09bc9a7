//! The agent leg: every room this service creates links the automatic participants of
//! `ROOM_AUTOMATIC_PARTICIPANTS` in its create request, so Pexip dials the contact-centre
//! agent when a conference starts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::*;

/// The URI the first automatic participant of a fresh simulator gets.
const AGENT_URI: &str = "/api/admin/configuration/v1/automatic_participant/1/";
const AGENT_ALIAS: &str = "sip:queue@contact-centre.test";

/// An app whose rooms link the agent (created on its simulator before any room is).
async fn app_with_agent(env: &[(&str, &str)]) -> TestApp {
    let mut pairs: Vec<(String, String)> =
        vec![("ROOM_AUTOMATIC_PARTICIPANTS".into(), AGENT_URI.into())];
    pairs.extend(env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let app = TestApp::spawn(Options {
        pool_target: 2,
        env: pairs,
        ..Options::default()
    })
    .await;
    let uri = app
        .sim
        .create_automatic_participant(json!({"alias": AGENT_ALIAS, "role": "chair"}))
        .unwrap();
    assert_eq!(uri, AGENT_URI);
    app
}

/// Rooms made every way the service makes them: an on-the-spot create (empty pool) and the
/// top-up it starts, an allocation from the pool and its replacement, a bulk create.
/// Returns the Management API requests by route, without the token requests.
async fn make_rooms_every_way(app: &TestApp) -> BTreeMap<String, u64> {
    app.sim.reset_counters();
    let on_the_spot = app.create(EXAMPLE_UUI).await;
    assert_eq!(on_the_spot.status(), 200);
    app.rooms.background_idle().await;
    let from_pool = app.create(&uui("idtest", "UG9vbFJvb20")).await;
    assert_eq!(from_pool.status(), 200);
    app.rooms.background_idle().await;
    let bulk = app
        .http
        .post(app.at("/room/bulk?count=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(bulk.status(), 202);
    app.rooms.background_idle().await;
    let mut requests = app.sim.counters().requests;
    requests.remove("POST /oauth/token/");
    requests
}

#[tokio::test]
async fn every_room_a_refill_or_an_on_the_spot_create_makes_links_the_agent_without_extra_requests()
{
    let with_agent = app_with_agent(&[]).await;
    let requests = make_rooms_every_way(&with_agent).await;
    let rooms = with_agent.sim.rooms();
    // 1 on the spot + 2 topped up + 1 replacement + 2 bulk.
    assert_eq!(rooms.len(), 6);
    for room in &rooms {
        assert_eq!(room.automatic_participants, [AGENT_URI], "{}", room.name);
    }
    // One create request per room: the link rode in it.
    assert_eq!(requests.get(CREATE_ROUTE).copied(), Some(6));
    assert!(
        !requests.keys().any(|k| k.contains("automatic_participant")),
        "{requests:?}"
    );

    // The same work without the agent leg asks Pexip exactly the same.
    let without = TestApp::spawn(Options {
        pool_target: 2,
        ..Options::default()
    })
    .await;
    assert_eq!(make_rooms_every_way(&without).await, requests);
    assert!(
        without
            .sim
            .rooms()
            .iter()
            .all(|r| r.automatic_participants.is_empty())
    );
}

#[tokio::test]
async fn a_conference_on_a_handed_out_room_dials_the_agent() {
    let app = app_with_agent(&[]).await;
    app.seed_pool().await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();

    // The full view shows the link, as Pexip embeds it.
    let full = app
        .get_json(&format!("/room/{name}?constrained_attributes=false"))
        .await;
    let linked = full["automatic_participants"].as_array().unwrap();
    assert_eq!(linked.len(), 1, "{full}");
    assert_eq!(linked[0]["alias"], AGENT_ALIAS);
    assert_eq!(linked[0]["role"], "chair");
    assert_eq!(linked[0]["resource_uri"], AGENT_URI);

    // The citizen calls in; Pexip calls the agent out. (What the status API lists, from the
    // simulator's in-process mirror of it.)
    app.sim.start_conference(name, 1, 1).await.unwrap();
    let objects = app.sim.participants(name);
    assert_eq!(objects.len(), 2, "{objects:?}");
    let agent = objects
        .iter()
        .find(|p| p["call_direction"] == "out")
        .expect("the agent was dialled");
    assert_eq!(agent["destination_alias"], AGENT_ALIAS);
    assert_eq!(agent["role"], "chair");
    assert_eq!(agent["protocol"], "SIP");
    assert_eq!(agent["service_tag"], EXAMPLE_TAG);

    app.sim.end_conference(name).await.unwrap();
    assert!(
        app.sim.participants(name).is_empty(),
        "the agent left with the call"
    );
}
