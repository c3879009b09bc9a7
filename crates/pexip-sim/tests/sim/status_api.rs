//! Status API and the disconnect command while simulated conferences run.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Api, start_sim};

const STATUS_CONFERENCES: &str = "/api/admin/status/v1/conference/";
const STATUS_PARTICIPANTS: &str = "/api/admin/status/v1/participant/";

#[tokio::test]
async fn status_lists_show_live_conferences_and_their_participants() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(
        json!({"name": "live-room", "tag": "pool:a", "aliases": [{"alias": "live@example.com"}]}),
    )
    .await;
    api.create_room(json!({"name": "quiet-room", "tag": "pool:a"}))
        .await;
    api.create_room(json!({"name": "other-room", "tag": "pool:b"}))
        .await;

    let empty = api.get_json(&format!("{STATUS_CONFERENCES}?limit=1")).await;
    assert_eq!(empty["meta"]["total_count"], 0);

    let id = sim
        .start_conference("live@example.com", 3, 2)
        .await
        .unwrap();
    sim.start_conference("other-room", 2, 1).await.unwrap();

    let all = api.get_json(&format!("{STATUS_CONFERENCES}?limit=1")).await;
    assert_eq!(all["meta"]["total_count"], 2);
    let by_tag = api
        .get_json(&format!("{STATUS_CONFERENCES}?tag=pool:a"))
        .await;
    assert_eq!(by_tag["meta"]["total_count"], 1);
    let conference = &by_tag["objects"][0];
    assert_eq!(conference["id"], id.as_str());
    assert_eq!(conference["name"], "live-room");
    assert_eq!(conference["tag"], "pool:a");
    assert_eq!(conference["service_type"], "conference");
    assert_eq!(conference["is_started"], true);
    assert!(conference["start_time"].is_string());
    assert_eq!(
        conference["resource_uri"],
        format!("{STATUS_CONFERENCES}{id}/")
    );
    assert_eq!(
        api.get_json(&format!("{STATUS_CONFERENCES}{id}/")).await["name"],
        "live-room"
    );
    let by_name = api
        .get_json(&format!("{STATUS_CONFERENCES}?name=live-room"))
        .await;
    assert_eq!(by_name["objects"][0]["id"], id.as_str());

    let participants = api
        .get_json(&format!("{STATUS_PARTICIPANTS}?limit=1"))
        .await;
    assert_eq!(participants["meta"]["total_count"], 5);
    let in_room = api
        .get_json(&format!("{STATUS_PARTICIPANTS}?conference=live-room"))
        .await;
    let objects = in_room["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3);
    for p in objects {
        assert_eq!(p["conference"], "live-room");
        assert_eq!(p["service_tag"], "pool:a");
        assert_eq!(p["service_type"], "conference");
    }
    let nodes: std::collections::BTreeSet<&str> = objects
        .iter()
        .map(|p| p["media_node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 2, "participants are spread over the nodes");
    let chairs = api
        .get_json(&format!(
            "{STATUS_PARTICIPANTS}?service_tag=pool:a&role=chair"
        ))
        .await;
    assert_eq!(chairs["meta"]["total_count"], 1);
    let pid = objects[0]["id"].as_str().unwrap();
    assert_eq!(
        api.get_json(&format!("{STATUS_PARTICIPANTS}{pid}/")).await["id"],
        pid
    );

    let rooms = sim.rooms();
    let live: Vec<(&str, bool)> = rooms.iter().map(|r| (r.name.as_str(), r.live)).collect();
    assert_eq!(
        live,
        [
            ("live-room", true),
            ("quiet-room", false),
            ("other-room", true)
        ]
    );

    sim.end_conference("live-room").await.unwrap();
    let after = api
        .get_json(&format!("{STATUS_CONFERENCES}?tag=pool:a"))
        .await;
    assert_eq!(after["meta"]["total_count"], 0);
    assert_eq!(
        api.get(&format!("{STATUS_CONFERENCES}{id}/"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let left = api.get_json(STATUS_PARTICIPANTS).await;
    assert_eq!(left["meta"]["total_count"], 2);
    let bad_filter = api.get(&format!("{STATUS_PARTICIPANTS}?colour=red")).await;
    assert_eq!(bad_filter.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_disconnect_command_ends_a_live_conference() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "r"})).await;
    let id = sim.start_conference("r", 2, 1).await.unwrap();
    let path = "/api/admin/command/v1/conference/disconnect/";

    let response = api.post(path, &json!({"conference_id": id})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "success", "data": null})
    );
    assert_eq!(
        api.get_json(STATUS_CONFERENCES).await["meta"]["total_count"],
        0
    );
    assert!(!sim.rooms()[0].live);

    assert_eq!(
        api.post(path, &json!({"conference_id": id})).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(path, &json!({})).await.status(),
        StatusCode::BAD_REQUEST
    );
}
