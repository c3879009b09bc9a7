//! `configuration/v1/automatic_participant/` (docs/pexip.md §9): CRUD with Pexip's fields,
//! defaults and validation, the link with `conference.automatic_participants` both ways, and
//! the dial-out when a conference starts.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use pexip_sim::{EventSinkTarget, SimConfig};

use crate::helpers::{Api, CONFERENCES, Receiver, location_id, start_sim, start_sim_with};

const PARTICIPANTS: &str = "/api/admin/configuration/v1/automatic_participant/";
const STATUS_PARTICIPANTS: &str = "/api/admin/status/v1/participant/";

fn participant_uri(id: u64) -> String {
    format!("{PARTICIPANTS}{id}/")
}

fn room_uri(id: u64) -> String {
    format!("{CONFERENCES}{id}/")
}

async fn create_participant(api: &Api, body: Value) -> u64 {
    let response = api.post(PARTICIPANTS, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    location_id(&response)
}

#[tokio::test]
async fn an_automatic_participant_has_pexips_fields_and_defaults_and_full_crud() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let response = api
        .post(
            PARTICIPANTS,
            &json!({"alias": "sip:queue@cc.example", "role": "chair"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        response.bytes().await.unwrap().is_empty(),
        "201 with no body"
    );
    let id = 1;
    let read = api.get_json(&participant_uri(id)).await;
    assert_eq!(
        read,
        json!({
            "id": id, "resource_uri": participant_uri(id),
            "creation_time": read["creation_time"],
            "alias": "sip:queue@cc.example", "description": "", "conference": [],
            "protocol": "sip", "call_type": "video", "role": "chair", "dtmf_sequence": "",
            "keep_conference_alive": "keep_conference_alive_if_multiple",
            "routing": "manual", "system_location": null, "streaming": false,
            "remote_display_name": "", "presentation_url": "",
        })
    );
    assert!(read["creation_time"].is_string());

    let patched = api
        .patch(
            &participant_uri(id),
            &json!({"protocol": "h323", "keep_conference_alive": "keep_conference_alive_never",
                    "dtmf_sequence": "1234#"}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let read = api.get_json(&participant_uri(id)).await;
    assert_eq!(read["protocol"], "h323");
    assert_eq!(read["role"], "chair", "unchanged");
    assert_eq!(read["dtmf_sequence"], "1234#");

    create_participant(&api, json!({"alias": "sip:other@cc.example"})).await;
    let list = api.get_json(&format!("{PARTICIPANTS}?role=chair")).await;
    assert_eq!(list["meta"]["total_count"], 1);
    assert_eq!(list["objects"][0]["id"], id);
    let all = api.get_json(PARTICIPANTS).await;
    assert_eq!(all["meta"]["total_count"], 2);

    assert_eq!(
        api.delete(&participant_uri(id)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&participant_uri(id)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&participant_uri(id)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invalid_automatic_participants_are_refused_with_pexips_error_shape() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let cases = [
        (json!({"role": "chair"}), "alias", "This field is required."),
        (json!({"alias": ""}), "alias", "This field cannot be blank."),
        (
            json!({"alias": "a", "protocol": "webrtc"}),
            "protocol",
            "Value 'webrtc' is not a valid choice.",
        ),
        (
            json!({"alias": "a", "role": "host"}),
            "role",
            "Value 'host' is not a valid choice.",
        ),
        (
            json!({"alias": "a", "routing": "auto"}),
            "routing",
            "Value 'auto' is not a valid choice.",
        ),
        (
            json!({"alias": "a", "keep_conference_alive": "always"}),
            "keep_conference_alive",
            "Value 'always' is not a valid choice.",
        ),
        (
            json!({"alias": "a", "call_type": "hologram"}),
            "call_type",
            "Value 'hologram' is not a valid choice.",
        ),
        (
            json!({"alias": "a", "conference": ["/api/admin/configuration/v1/conference/99/"]}),
            "conference",
            "Could not find the provided object via resource URI \
             '/api/admin/configuration/v1/conference/99/'.",
        ),
        (
            json!({"alias": "a", "conference": "/api/admin/configuration/v1/conference/1/"}),
            "conference",
            "Expected a list of resource URIs.",
        ),
    ];
    for (body, field, message) in cases {
        let response = api.post(PARTICIPANTS, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer,
            json!({"automatic_participant": {field: [message]}}),
            "{body}"
        );
    }
    assert_eq!(api.get_json(PARTICIPANTS).await["meta"]["total_count"], 0);
    let id = create_participant(&api, json!({"alias": "a"})).await;
    let blank = api.patch(&participant_uri(id), &json!({"alias": ""})).await;
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_link_is_written_as_uris_on_either_side_and_read_back_on_both() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let agent = create_participant(
        &api,
        json!({"alias": "sip:queue@cc.example", "role": "chair"}),
    )
    .await;
    // Written on the conference side, as URIs, in the create request itself.
    let room = api
        .create_room(json!({"name": "r1", "automatic_participants": [participant_uri(agent)]}))
        .await;
    let read = api.get_json(&room_uri(room)).await;
    let embedded = read["automatic_participants"].as_array().unwrap();
    assert_eq!(embedded.len(), 1);
    assert_eq!(embedded[0]["alias"], "sip:queue@cc.example");
    assert_eq!(embedded[0]["role"], "chair");
    assert_eq!(embedded[0]["resource_uri"], participant_uri(agent));
    assert_eq!(
        api.get_json(&participant_uri(agent)).await["conference"],
        json!([room_uri(room)])
    );
    assert_eq!(
        sim.rooms()[0].automatic_participants,
        [participant_uri(agent)]
    );

    // Written on the participant side: its conference list replaces its rooms.
    let other = api.create_room(json!({"name": "r2"})).await;
    let moved = api
        .patch(
            &participant_uri(agent),
            &json!({"conference": [room_uri(other)]}),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::ACCEPTED);
    assert_eq!(
        api.get_json(&room_uri(room)).await["automatic_participants"],
        json!([])
    );
    assert_eq!(
        api.get_json(&room_uri(other)).await["automatic_participants"][0]["id"],
        agent
    );

    // A conference PATCH replaces its set; unknown URIs are refused and change nothing.
    let refused = api
        .patch(
            &room_uri(other),
            &json!({"automatic_participants": [participant_uri(99)]}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let answer: Value = refused.json().await.unwrap();
    assert!(
        answer["conference"]["automatic_participants"][0]
            .as_str()
            .unwrap()
            .contains("Could not find"),
        "{answer}"
    );
    assert_eq!(
        api.get_json(&participant_uri(agent)).await["conference"],
        json!([room_uri(other)])
    );
    let cleared = api
        .patch(&room_uri(other), &json!({"automatic_participants": []}))
        .await;
    assert_eq!(cleared.status(), StatusCode::ACCEPTED);
    assert_eq!(
        api.get_json(&participant_uri(agent)).await["conference"],
        json!([])
    );

    // Deleting either side removes the link.
    api.patch(
        &room_uri(room),
        &json!({"automatic_participants": [participant_uri(agent)]}),
    )
    .await;
    assert_eq!(
        api.delete(&room_uri(room)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get_json(&participant_uri(agent)).await["conference"],
        json!([])
    );
    api.patch(
        &room_uri(other),
        &json!({"automatic_participants": [participant_uri(agent)]}),
    )
    .await;
    api.delete(&participant_uri(agent)).await;
    assert_eq!(
        api.get_json(&room_uri(other)).await["automatic_participants"],
        json!([])
    );
}

#[tokio::test]
async fn a_starting_conference_dials_each_linked_participant_out_until_it_ends() {
    let receiver = Receiver::start(0).await;
    let sim = start_sim_with(SimConfig {
        replication_delay: Duration::ZERO,
        event_sinks: vec![EventSinkTarget::new(receiver.url.clone())],
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim).await;
    let agent = sim
        .create_automatic_participant(json!({"alias": "sip:queue@cc.example", "role": "chair",
                                             "remote_display_name": "Agent"}))
        .unwrap();
    let recorder = create_participant(
        &api,
        json!({"alias": "rtmp://rec.example/live", "protocol": "rtmp", "streaming": true}),
    )
    .await;
    api.create_room(
        json!({"name": "call-1", "tag": "t-1", "aliases": [{"alias": "call-1@x"}],
                           "automatic_participants": [agent, participant_uri(recorder)]}),
    )
    .await;
    api.create_room(json!({"name": "quiet"})).await;

    sim.start_conference("call-1@x", 1, 2).await.unwrap();
    let list = api
        .get_json(&format!("{STATUS_PARTICIPANTS}?conference=call-1"))
        .await;
    assert_eq!(
        list["meta"]["total_count"], 3,
        "the caller and two dial-outs"
    );
    let objects = list["objects"].as_array().unwrap();
    assert_eq!(
        &sim.participants("call-1"),
        objects,
        "the in-process mirror"
    );
    let out: Vec<&Value> = objects
        .iter()
        .filter(|p| p["call_direction"] == "out")
        .collect();
    assert_eq!(out.len(), 2);
    let dialled = |alias: &str| {
        *out.iter()
            .find(|p| p["destination_alias"] == alias)
            .unwrap_or_else(|| panic!("{alias} dialled"))
    };
    let agent_call = dialled("sip:queue@cc.example");
    assert_eq!(agent_call["role"], "chair");
    assert_eq!(agent_call["protocol"], "SIP");
    assert_eq!(agent_call["display_name"], "Agent");
    assert_eq!(agent_call["service_tag"], "t-1");
    let recorder_call = dialled("rtmp://rec.example/live");
    assert_eq!(recorder_call["role"], "guest");
    assert_eq!(recorder_call["protocol"], "RTMP");
    let by_direction = api
        .get_json(&format!("{STATUS_PARTICIPANTS}?call_direction=out"))
        .await;
    assert_eq!(by_direction["meta"]["total_count"], 2);

    sim.end_conference("call-1").await.unwrap();
    let after = api.get_json(STATUS_PARTICIPANTS).await;
    assert_eq!(
        after["meta"]["total_count"], 0,
        "they leave with the conference"
    );
    assert!(sim.participants("call-1").is_empty());

    // Their events, like any participant's: joining, then leaving, with their direction.
    let events = receiver.events();
    let of_agent = |name: &str| {
        events
            .iter()
            .filter(|e| {
                e["event"] == name && e["data"]["destination_alias"] == "sip:queue@cc.example"
            })
            .count()
    };
    assert_eq!(of_agent("participant_connected"), 1);
    assert_eq!(of_agent("participant_updated"), 1);
    assert_eq!(of_agent("participant_disconnected"), 1);
    let updated = events
        .iter()
        .find(|e| {
            e["event"] == "participant_updated"
                && e["data"]["destination_alias"] == "sip:queue@cc.example"
        })
        .unwrap();
    assert_eq!(updated["data"]["call_direction"], "out");
    assert_eq!(updated["data"]["role"], "chair");
    assert_eq!(updated["data"]["protocol"], "SIP");

    // A room without links starts with its callers only.
    sim.start_conference("quiet", 2, 1).await.unwrap();
    let quiet = api
        .get_json(&format!("{STATUS_PARTICIPANTS}?conference=quiet"))
        .await;
    assert_eq!(quiet["meta"]["total_count"], 2);
    assert!(
        quiet["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["call_direction"] == "in")
    );
}
