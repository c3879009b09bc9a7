//! The `/_sim/` control API and its handle mirrors: rooms, conferences, replication delay,
//! clock, counters, shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use pexip_sim::{Counters, SimConfig, SimError, SimRoom};

use crate::helpers::{
    ALIASES, Api, Assertion, CONFERENCES, http, request_token, start_sim, start_sim_with,
};

#[tokio::test]
async fn a_room_younger_than_the_replication_delay_is_not_dialable_until_the_clock_moves() {
    let sim = start_sim_with(SimConfig::default()).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "young", "aliases": [{"alias": "young@example.com"}]}))
        .await;
    assert!(!sim.rooms()[0].dialable);
    assert_eq!(
        sim.start_conference("young", 1, 1).await,
        Err(SimError::NotDialable)
    );

    let response = http()
        .post(format!("{}/_sim/conferences", sim.base_url()))
        .json(&json!({"room": "young@example.com", "participants": 2, "nodes": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "not dialable yet"})
    );

    sim.advance_clock(Duration::from_secs(89));
    assert_eq!(
        sim.start_conference("young", 1, 1).await,
        Err(SimError::NotDialable)
    );
    let advanced = http()
        .post(format!("{}/_sim/clock", sim.base_url()))
        .json(&json!({"advance_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), StatusCode::NO_CONTENT);
    assert!(sim.rooms()[0].dialable);
    let started = http()
        .post(format!("{}/_sim/conferences", sim.base_url()))
        .json(&json!({"room": "young@example.com", "participants": 2, "nodes": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    let id = started.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).map(|_| ()), Ok(()));
    assert!(sim.rooms()[0].live);
}

#[tokio::test]
async fn a_room_can_be_made_older() {
    let sim = start_sim_with(SimConfig::default()).await;
    let api = Api::new(&sim).await;
    let id = api.create_room(json!({"name": "young"})).await;
    let created = |room: Value| room["creation_time"].as_str().unwrap().to_owned();
    let before = created(api.get_json(&format!("{CONFERENCES}{id}/")).await);
    assert!(!sim.rooms()[0].dialable);

    let response = http()
        .post(format!("{}/_sim/rooms/young/backdate", sim.base_url()))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let after = created(api.get_json(&format!("{CONFERENCES}{id}/")).await);
    let parse = |s: &str| {
        time::PrimitiveDateTime::parse(
            s,
            time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"
            ),
        )
        .unwrap()
    };
    assert_eq!(parse(&before) - parse(&after), time::Duration::hours(1));
    assert!(
        sim.rooms()[0].dialable,
        "older than the replication delay now"
    );
    assert_eq!(
        sim.backdate_room("nope", Duration::from_secs(1)),
        Err(SimError::UnknownRoom("nope".into()))
    );
}

#[tokio::test]
async fn the_replication_delay_can_be_changed_at_runtime() {
    let sim = start_sim_with(SimConfig::default()).await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "r"})).await;
    assert!(!sim.rooms()[0].dialable);
    let response = http()
        .put(format!("{}/_sim/replication_delay", sim.base_url()))
        .json(&json!({"seconds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(sim.rooms()[0].dialable);
    sim.set_replication_delay(Duration::from_secs(3600));
    assert!(!sim.rooms()[0].dialable);
}

#[tokio::test]
async fn starting_and_ending_conferences_reports_each_refusal() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "r", "aliases": [{"alias": "r-alias"}]}))
        .await;

    assert_eq!(
        sim.start_conference("nope", 1, 1).await,
        Err(SimError::UnknownRoom("nope".into()))
    );
    assert!(matches!(
        sim.start_conference("r", 1, 0).await,
        Err(SimError::Invalid(_))
    ));
    assert!(matches!(
        sim.start_conference("r", 0, 1).await,
        Err(SimError::Invalid(_))
    ));
    assert_eq!(
        sim.end_conference("r").await,
        Err(SimError::NotLive("r".into()))
    );
    sim.start_conference("r-alias", 1, 1).await.unwrap();
    assert_eq!(
        sim.start_conference("r", 1, 1).await,
        Err(SimError::AlreadyLive("r".into()))
    );

    let base = sim.base_url();
    let cases = [
        (
            "/_sim/conferences",
            json!({"room": "nope"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/_sim/conferences",
            json!({"room": "r"}),
            StatusCode::CONFLICT,
        ),
        (
            "/_sim/conferences",
            json!({"room": "r", "nodes": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/_sim/conferences",
            json!({"participants": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/_sim/conferences/nope/end",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, status) in cases {
        let response = http()
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path} {body}");
        assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    }
    let ended = http()
        .post(format!("{base}/_sim/conferences/r-alias/end"))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert!(!sim.rooms()[0].live);
    let again = http()
        .post(format!("{base}/_sim/conferences/r/end"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_rooms_route_needs_no_credentials_and_matches_the_handle() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(
        json!({"name": "r", "tag": "t", "pin": "1234", "guest_pin": "5678", "allow_guests": true,
                           "aliases": [{"alias": "a1"}, {"alias": "a2"}]}),
    )
    .await;
    let response = http()
        .get(format!("{}/_sim/rooms", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let rooms: Vec<SimRoom> = response.json().await.unwrap();
    assert_eq!(rooms, sim.rooms());
    let room = &rooms[0];
    assert_eq!(
        (
            room.name.as_str(),
            room.tag.as_str(),
            room.pin.as_str(),
            room.guest_pin.as_str()
        ),
        ("r", "t", "1234", "5678")
    );
    assert_eq!(room.aliases, ["a1", "a2"]);
    assert!(room.dialable && !room.live);
}

#[tokio::test]
async fn counters_count_requests_by_route_pattern_and_reset() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let id = api.create_room(json!({"name": "r"})).await;
    api.get(CONFERENCES).await;
    api.get(&format!("{CONFERENCES}{id}/")).await;
    api.get(&format!("{CONFERENCES}{id}/")).await;
    api.delete(&format!("{CONFERENCES}{id}/")).await;
    api.get(ALIASES).await;
    api.get("/api/admin/configuration/v1/nothing_here/").await;

    let response = http()
        .get(format!("{}/_sim/counters", sim.base_url()))
        .send()
        .await
        .unwrap();
    let counters: Counters = response.json().await.unwrap();
    assert_eq!(counters, sim.counters());
    let expected = [
        ("POST /oauth/token/", 1),
        ("POST /api/admin/configuration/v1/conference/", 1),
        ("GET /api/admin/configuration/v1/conference/", 1),
        ("GET /api/admin/configuration/v1/conference/{id}/", 2),
        ("DELETE /api/admin/configuration/v1/conference/{id}/", 1),
        ("GET /api/admin/configuration/v1/conference_alias/", 1),
        ("GET (unmatched)", 1),
    ];
    assert_eq!(
        counters.requests,
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    );
    assert_eq!(counters.tokens_issued, 1);
    assert_eq!(counters.max_in_flight, 1);
    assert_eq!(counters.in_flight, 0);

    let reset = http()
        .post(format!("{}/_sim/counters/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.counters(), Counters::default());
    let json: Value = http()
        .get(format!("{}/_sim/counters", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in [
        "requests",
        "in_flight",
        "max_in_flight",
        "tokens_issued",
        "collection_deletes",
        "events_sent",
        "event_failures",
    ] {
        assert!(json.get(key).is_some(), "counters JSON has {key}");
    }
}

#[tokio::test]
async fn the_clock_route_expires_tokens() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    http()
        .post(format!("{}/_sim/clock", sim.base_url()))
        .json(&json!({"advance_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.get(CONFERENCES).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let bad = http()
        .post(format!("{}/_sim/clock", sim.base_url()))
        .json(&json!({"advance_seconds": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn clients_can_be_registered_over_the_control_api() {
    let sim = start_sim().await;
    let (private, public) = crate::helpers::other_key();
    let url = format!("{}/_sim/clients", sim.base_url());
    let response = http()
        .post(&url)
        .json(&json!({"client_id": "script", "public_key_pem": public}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut assertion = Assertion::for_sim(&sim);
    assertion.iss = "script".into();
    assertion.sub = "script".into();
    assertion.key_pem = private;
    assert_eq!(
        request_token(&sim, &assertion.sign()).await.status(),
        StatusCode::OK
    );
    let bad = http()
        .post(&url)
        .json(&json!({"client_id": "x", "public_key_pem": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = start_sim().await;
    let url = format!("{}/_sim/rooms", sim.base_url());
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    sim.clone().shutdown().await;
    let error = http()
        .get(&url)
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(error.is_connect(), "{error:?}");
}
