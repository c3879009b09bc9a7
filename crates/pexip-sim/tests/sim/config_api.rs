//! `conference` and `conference_alias`: status codes, bodies, validation, lists.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use pexip_sim::SimConfig;

use crate::helpers::{ALIASES, Api, CONFERENCES, http, location_id, start_sim, start_sim_with};

fn detail(id: u64) -> String {
    format!("{CONFERENCES}{id}/")
}

#[tokio::test]
async fn conference_crud_answers_pexips_status_codes_and_empty_bodies() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;

    let created = api
        .post(
            CONFERENCES,
            &json!({"name": "pool-0001", "tag": "pool:rooms", "pin": "482913", "guest_pin": "771204",
                    "allow_guests": true, "aliases": [{"alias": "pool-0001@vc.example.com"}, {"alias": "7100001"}]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = location_id(&created);
    assert_eq!(location, detail(id), "Location is a path by default");
    assert!(created.bytes().await.unwrap().is_empty());

    let room = api.get_json(&detail(id)).await;
    assert_eq!(room["id"], id);
    assert_eq!(room["resource_uri"], detail(id));
    assert_eq!(room["name"], "pool-0001");
    assert_eq!(room["service_type"], "conference", "schema default");
    assert_eq!(room["description"], "");
    assert_eq!(room["guests_can_present"], true);
    assert_eq!(room["participant_limit"], Value::Null);
    let creation_time = room["creation_time"].as_str().unwrap();
    assert_eq!(
        creation_time.len(),
        "2025-01-03T10:00:00.123456".len(),
        "{creation_time}"
    );
    assert_eq!(&creation_time[10..11], "T");
    assert!(!creation_time.ends_with('Z') && !creation_time.contains('+'));
    let aliases = room["aliases"].as_array().unwrap();
    assert_eq!(aliases.len(), 2);
    assert_eq!(aliases[0]["alias"], "pool-0001@vc.example.com");
    assert_eq!(aliases[0]["conference"], detail(id));
    for field in ["id", "description", "creation_time"] {
        assert!(aliases[0].get(field).is_some(), "nested alias has {field}");
    }

    let patched = api
        .patch(
            &detail(id),
            &json!({"pin": "550193", "description": "assigned"}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    assert!(patched.bytes().await.unwrap().is_empty());
    let room = api.get_json(&detail(id)).await;
    assert_eq!(
        (room["pin"].as_str(), room["description"].as_str()),
        (Some("550193"), Some("assigned"))
    );
    assert_eq!(
        room["guest_pin"], "771204",
        "PATCH keeps unmentioned fields"
    );

    let replaced = api
        .request(reqwest::Method::PUT, &detail(id))
        .json(&json!({"name": "pool-0001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::NO_CONTENT);
    let room = api.get_json(&detail(id)).await;
    assert_eq!(room["pin"], "", "PUT resets unmentioned fields");
    assert_eq!(
        room["aliases"].as_array().unwrap().len(),
        2,
        "PUT without aliases keeps them"
    );

    let deleted = api.delete(&detail(id)).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(deleted.bytes().await.unwrap().is_empty());
    let gone = api.get(&detail(id)).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(gone.bytes().await.unwrap().is_empty());
    assert_eq!(
        api.delete(&detail(id)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.patch(&detail(id), &json!({"pin": "1234"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("{CONFERENCES}abc/")).await.status(),
        StatusCode::NOT_FOUND
    );
    let aliases = api.get_json(ALIASES).await;
    assert_eq!(
        aliases["meta"]["total_count"], 0,
        "aliases cascade with their room"
    );
}

#[tokio::test]
async fn location_is_an_absolute_url_when_configured_and_ids_are_never_reused() {
    let sim = start_sim_with(SimConfig {
        absolute_location: true,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim).await;
    let first = api.post(CONFERENCES, &json!({"name": "a"})).await;
    let first_id = location_id(&first);
    assert_eq!(
        first.headers()["location"].to_str().unwrap(),
        format!("{}{}", sim.base_url(), detail(first_id))
    );
    api.delete(&detail(first_id)).await;
    let second = api.create_room(json!({"name": "a"})).await;
    assert!(second > first_id);
}

#[tokio::test]
async fn invalid_conferences_are_refused_in_pexips_error_shape() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "taken", "aliases": [{"alias": "taken@example.com"}]}))
        .await;
    let long = "x".repeat(251);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "name", "This field is required."),
        (json!({"name": ""}), "name", "This field cannot be blank."),
        (
            json!({"name": "taken"}),
            "name",
            "Virtual Meeting Room with this Name already exists.",
        ),
        (json!({"name": long}), "name", "at most 250 characters"),
        (
            json!({"name": "n", "description": long}),
            "description",
            "at most 250 characters",
        ),
        (
            json!({"name": "n", "tag": long}),
            "tag",
            "at most 250 characters",
        ),
        (
            json!({"name": "n", "primary_owner_email_address": "e".repeat(101)}),
            "primary_owner_email_address",
            "at most 100",
        ),
        (json!({"name": "n", "pin": "123"}), "pin", "4 to 20 digits"),
        (
            json!({"name": "n", "pin": "12a45"}),
            "pin",
            "4 to 20 digits",
        ),
        (
            json!({"name": "n", "pin": "123456789012345678901"}),
            "pin",
            "4 to 20 digits",
        ),
        (
            json!({"name": "n", "pin": "12345678901234567890#"}),
            "pin",
            "4 to 20 digits",
        ),
        (
            json!({"name": "n", "pin": "1234", "guest_pin": "12#4"}),
            "guest_pin",
            "4 to 20 digits",
        ),
        (
            json!({"name": "n", "pin": "1234", "guest_pin": "1234"}),
            "guest_pin",
            "different",
        ),
        (
            json!({"name": "n", "allow_guests": true}),
            "pin",
            "Host PIN is required",
        ),
        (
            json!({"name": "n", "service_type": "party"}),
            "service_type",
            "is not a valid choice",
        ),
        (
            json!({"name": "n", "call_type": "hologram"}),
            "call_type",
            "is not a valid choice",
        ),
        (
            json!({"name": "n", "allow_guests": "perhaps"}),
            "allow_guests",
            "True or False",
        ),
        (
            json!({"name": "n", "participant_limit": -1}),
            "participant_limit",
            "greater than or equal to 0",
        ),
        (
            json!({"name": "n", "max_callrate_in": 64}),
            "max_callrate_in",
            "greater than or equal to 128",
        ),
        (
            json!({"name": "n", "max_callrate_out": 9000}),
            "max_callrate_out",
            "less than or equal to 8192",
        ),
        (
            json!({"name": "n", "participant_limit": "many"}),
            "participant_limit",
            "must be an integer",
        ),
        (
            json!({"name": "n", "aliases": [{"alias": "taken@example.com"}]}),
            "aliases",
            "already exists",
        ),
        (
            json!({"name": "n", "aliases": [{"alias": "dup"}, {"alias": "dup"}]}),
            "aliases",
            "already exists",
        ),
        (
            json!({"name": "n", "aliases": [{"description": "no alias"}]}),
            "aliases",
            "alias",
        ),
        (json!({"name": "n", "aliases": "x"}), "aliases", "list"),
    ];
    for (body, field, message) in cases {
        let response = api.post(CONFERENCES, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let errors: Value = response.json().await.unwrap();
        let messages = errors["conference"][field]
            .as_array()
            .unwrap_or_else(|| panic!("{body} -> {errors}"));
        assert!(
            messages
                .iter()
                .any(|m| m.as_str().unwrap().contains(message)),
            "{body} -> {errors}"
        );
    }
    let valid_pins = [
        ("1234", "5678#"),
        ("12345678901234567890", ""),
        ("1234567890123456789#", "0000"),
    ];
    for (i, (pin, guest_pin)) in valid_pins.into_iter().enumerate() {
        let body = json!({"name": format!("ok-{i}"), "pin": pin, "guest_pin": guest_pin, "allow_guests": true});
        assert_eq!(
            api.post(CONFERENCES, &body).await.status(),
            StatusCode::CREATED,
            "{body}"
        );
    }
    assert_eq!(
        sim.rooms().len(),
        1 + valid_pins.len(),
        "no invalid request created anything"
    );
}

#[tokio::test]
async fn patch_validates_against_the_merged_room_and_excludes_itself_from_uniqueness() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let id = api
        .create_room(json!({"name": "r1", "pin": "1234", "allow_guests": true, "aliases": [{"alias": "r1-alias"}]}))
        .await;
    api.create_room(json!({"name": "r2"})).await;

    let same_name = api
        .patch(
            &detail(id),
            &json!({"name": "r1", "aliases": [{"alias": "r1-alias"}]}),
        )
        .await;
    assert_eq!(same_name.status(), StatusCode::ACCEPTED);
    let read_only = api
        .patch(&detail(id), &json!({"id": 999, "resource_uri": "/x/", "creation_time": "2000-01-01T00:00:00", "unknown": 1}))
        .await;
    assert_eq!(read_only.status(), StatusCode::ACCEPTED);
    let room = api.get_json(&detail(id)).await;
    assert_eq!(room["id"], id);
    assert_ne!(room["creation_time"], "2000-01-01T00:00:00");

    let cases = [
        (json!({"name": "r2"}), "name"),
        (json!({"pin": ""}), "pin"),
        (json!({"guest_pin": "1234"}), "guest_pin"),
        (json!({"name": ""}), "name"),
    ];
    for (body, field) in cases {
        let response = api.patch(&detail(id), &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let errors: Value = response.json().await.unwrap();
        assert!(errors["conference"][field].is_array(), "{body} -> {errors}");
    }
    let room = api.get_json(&detail(id)).await;
    assert_eq!(
        (room["name"].as_str(), room["pin"].as_str()),
        (Some("r1"), Some("1234"))
    );

    let replaced = api
        .patch(&detail(id), &json!({"aliases": [{"alias": "r1-new"}]}))
        .await;
    assert_eq!(replaced.status(), StatusCode::ACCEPTED);
    let room = api.get_json(&detail(id)).await;
    let aliases: Vec<&str> = room["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["r1-new"], "aliases in PATCH replace the set");
}

#[tokio::test]
async fn a_conference_with_a_conflicting_alias_is_not_created_at_all() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "first", "aliases": [{"alias": "shared"}]}))
        .await;
    let response = api
        .post(
            CONFERENCES,
            &json!({"name": "second", "aliases": [{"alias": "fresh"}, {"alias": "shared"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let names: Vec<String> = sim.rooms().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["first"]);
    let fresh = api.get_json(&format!("{ALIASES}?alias=fresh")).await;
    assert_eq!(
        fresh["meta"]["total_count"], 0,
        "no alias of the refused room was kept"
    );
}

#[tokio::test]
async fn conference_alias_crud_shows_in_the_parent_room() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let room = api.create_room(json!({"name": "owner"})).await;
    let other = api
        .create_room(json!({"name": "other", "aliases": [{"alias": "other-1"}]}))
        .await;

    let created = api
        .post(
            ALIASES,
            &json!({"alias": "owner-1", "conference": detail(room), "description": "d"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let alias_id = location_id(&created);
    assert!(created.bytes().await.unwrap().is_empty());
    let alias = api.get_json(&format!("{ALIASES}{alias_id}/")).await;
    assert_eq!(alias["conference"], detail(room));
    assert_eq!(alias["resource_uri"], format!("{ALIASES}{alias_id}/"));
    assert_eq!(
        api.get_json(&detail(room)).await["aliases"][0]["alias"],
        "owner-1"
    );

    let by_conference = api
        .get_json(&format!("{ALIASES}?conference={}", detail(other)))
        .await;
    assert_eq!(by_conference["meta"]["total_count"], 1);
    assert_eq!(by_conference["objects"][0]["alias"], "other-1");
    let by_alias = api
        .get_json(&format!("{ALIASES}?alias__icontains=OWNER"))
        .await;
    assert_eq!(by_alias["objects"][0]["id"], alias_id);

    let refusals = [
        (
            json!({"alias": "other-1", "conference": detail(room)}),
            "alias",
        ),
        (
            json!({"alias": "x", "conference": detail(9999)}),
            "conference",
        ),
        (json!({"alias": "x"}), "conference"),
        (json!({"conference": detail(room)}), "alias"),
    ];
    for (body, field) in refusals {
        let response = api.post(ALIASES, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let errors: Value = response.json().await.unwrap();
        assert!(
            errors["conference_alias"][field].is_array(),
            "{body} -> {errors}"
        );
    }

    let alias_url = format!("{ALIASES}{alias_id}/");
    assert_eq!(
        api.patch(&alias_url, &json!({"alias": "other-1"}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.patch(&alias_url, &json!({"alias": "owner-1"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.patch(&alias_url, &json!({"alias": "owner-2"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.get_json(&detail(room)).await["aliases"][0]["alias"],
        "owner-2"
    );
    assert_eq!(
        api.delete(&alias_url).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.delete(&alias_url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.get_json(&detail(room)).await["aliases"], json!([]));
}

#[tokio::test]
async fn lists_paginate_over_three_pages_with_filters_and_path_links() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let mut tagged = BTreeSet::new();
    for i in 0..30 {
        let tag = if i % 3 == 0 { "other" } else { "pool" };
        let id = api
            .create_room(json!({"name": format!("room-{i:02}"), "tag": tag}))
            .await;
        if tag == "pool" {
            tagged.insert(id);
        }
    }
    assert_eq!(tagged.len(), 20);

    let mut seen = Vec::new();
    let mut path = format!("{CONFERENCES}?tag=pool&limit=7");
    let mut pages = 0;
    loop {
        let page = api.get_json(&path).await;
        pages += 1;
        assert_eq!(page["meta"]["total_count"], 20);
        assert_eq!(page["meta"]["limit"], 7);
        seen.extend(
            page["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_u64().unwrap()),
        );
        match page["meta"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(CONFERENCES), "next is a path: {next}");
                assert!(next.contains("tag=pool"), "next keeps the filter: {next}");
                path = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "stable id order");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), tagged);

    let second = api
        .get_json(&format!("{CONFERENCES}?tag=pool&limit=7&offset=7"))
        .await;
    assert_eq!(
        second["meta"]["previous"],
        format!("{CONFERENCES}?tag=pool&limit=7&offset=0")
    );
    let default_page = api.get_json(CONFERENCES).await;
    assert_eq!(default_page["meta"]["limit"], 20);
    assert_eq!(default_page["objects"].as_array().unwrap().len(), 20);

    let starts = api
        .get_json(&format!("{CONFERENCES}?name__startswith=room-1&limit=0"))
        .await;
    assert_eq!(starts["meta"]["total_count"], 10);
    let exact = api.get_json(&format!("{CONFERENCES}?name=room-07")).await;
    assert_eq!(exact["objects"].as_array().unwrap().len(), 1);
    let ordered = api
        .get_json(&format!("{CONFERENCES}?order_by=-name&limit=2"))
        .await;
    let names: Vec<&str> = ordered["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["room-29", "room-28"]);
    let several = api
        .get_json(&format!("{CONFERENCES}?name__in=room-01,room-02,nope"))
        .await;
    assert_eq!(several["meta"]["total_count"], 2);
}

#[tokio::test]
async fn limit_zero_means_everything_up_to_the_cap() {
    let sim = start_sim_with(SimConfig {
        max_list_limit: 4,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim).await;
    for i in 0..6 {
        api.create_room(json!({"name": format!("r{i}")})).await;
    }
    for query in ["limit=0", "limit=500"] {
        let page = api.get_json(&format!("{CONFERENCES}?{query}")).await;
        assert_eq!(page["meta"]["limit"], 4, "{query}");
        assert_eq!(page["objects"].as_array().unwrap().len(), 4, "{query}");
        assert_eq!(
            page["meta"]["next"],
            format!("{CONFERENCES}?limit=4&offset=4"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn unknown_filters_lookups_and_bad_bodies_get_a_400_error() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    for query in [
        "colour=red",
        "name__regex=x",
        "name__like=x",
        "order_by=colour",
        "limit=abc",
        "id=x",
    ] {
        let response = api.get(&format!("{CONFERENCES}?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{query} -> {body}");
    }
    let not_json = api
        .request(reqwest::Method::POST, CONFERENCES)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert!(not_json.json::<Value>().await.unwrap()["error"].is_string());
    let not_object = api.post(CONFERENCES, &json!(["name"])).await;
    assert_eq!(not_object.status(), StatusCode::BAD_REQUEST);
}

/// Tastypie's rule (docs/pexip.md §1.4): a filter naming no field of the resource is ignored
/// and the list answered without it. `PUT /_sim/filters` switches it on, and can make fields
/// absent (as on a release without them), so a client's filter on them comes back ignored.
#[tokio::test]
async fn in_tastypie_mode_unknown_filters_are_ignored_and_fields_can_be_absent() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "vbv-1", "tag": "t1"})).await;
    api.create_room(json!({"name": "other"})).await;
    let names = |page: Value| -> Vec<String> {
        page["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |mode: Value| {
        let url = format!("{}/_sim/filters", sim.base_url());
        async move {
            let response = http().put(url).json(&mode).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    };
    set(json!({"ignore_unknown": true})).await;
    let page = api.get_json(&format!("{CONFERENCES}?colour=red")).await;
    assert_eq!(names(page), ["vbv-1", "other"]);
    let page = api
        .get_json(&format!("{CONFERENCES}?colour=red&name__startswith=vbv-"))
        .await;
    assert_eq!(names(page), ["vbv-1"], "known filters still apply");

    set(json!({"ignore_unknown": true, "absent": ["name"]})).await;
    let page = api
        .get_json(&format!("{CONFERENCES}?name__startswith=vbv-"))
        .await;
    assert_eq!(names(page), ["vbv-1", "other"], "every room");
    let page = api.get_json(&format!("{CONFERENCES}?tag=t1")).await;
    assert_eq!(names(page), ["vbv-1"]);

    sim.set_filter_mode(pexip_sim::FilterMode::ignore_all());
    let page = api.get_json(&format!("{CONFERENCES}?tag=t1&name=x")).await;
    assert_eq!(names(page), ["vbv-1", "other"]);

    set(json!({})).await;
    let refused = api.get(&format!("{CONFERENCES}?colour=red")).await;
    assert_eq!(
        refused.status(),
        StatusCode::BAD_REQUEST,
        "back to the default"
    );
    let bad = http()
        .put(format!("{}/_sim/filters", sim.base_url()))
        .json(&json!({"absent": "name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_collection_delete_removes_every_room_and_is_counted() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    api.create_room(json!({"name": "a"})).await;
    api.create_room(json!({"name": "b"})).await;
    assert_eq!(sim.counters().collection_deletes, 0);
    let response = api.delete(CONFERENCES).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(sim.rooms().is_empty());
    assert_eq!(sim.counters().collection_deletes, 1);
}

#[tokio::test]
async fn the_schema_describes_fields_filters_and_defaults() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let schema = api.get_json(&format!("{CONFERENCES}schema/")).await;
    assert_eq!(schema["default_limit"], 20);
    assert_eq!(schema["fields"]["service_type"]["default"], "conference");
    assert!(
        schema["fields"]["service_type"]["valid_choices"]
            .as_array()
            .unwrap()
            .contains(&json!("lecture"))
    );
    assert_eq!(schema["filtering"]["name"], 1);
}
