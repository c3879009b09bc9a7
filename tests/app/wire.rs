//! What a caller of the replaced FastAPI service sees on the wire, route by route: Pydantic's
//! booleans in queries, FastAPI's 422 for requests refused before the handler, JSON bodies
//! without `Content-Type`, trailing slashes, and `X-Process-Time` on every answer. (The host
//! PIN on reads is in `rooms_api`; a Python `requests` client runs the same checks in
//! `tests/python/`.)

use serde_json::{Value, json};

use crate::support::*;

async fn room_name(app: &TestApp) -> String {
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    room["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn query_booleans_read_as_pydantic_reads_them() {
    let app = TestApp::spawn(Options::default()).await;
    let name = room_name(&app).await;
    // Pexip's full object has `resource_uri`; the constrained view does not.
    let full_view = |body: &Value| body.get("resource_uri").is_some();
    for (value, constrained) in [
        ("true", true),
        ("True", true),
        ("1", true),
        ("yes", true),
        ("ON", true),
        ("t", true),
        ("y", true),
        ("false", false),
        ("False", false),
        ("FALSE", false),
        ("0", false),
        ("no", false),
        ("off", false),
        ("f", false),
        ("N", false),
    ] {
        let url = app.at(&format!("/room/{name}?constrained_attributes={value}"));
        let response = app.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{value}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(full_view(&body), !constrained, "{value}");
    }
    for value in ["maybe", "", "%20true", "2"] {
        let url = app.at(&format!("/room/{name}?constrained_attributes={value}"));
        let response = app.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 422, "{value:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "validation_error");
        assert_eq!(
            body["detail"][0],
            json!({"type": "bool_parsing", "loc": ["query", "constrained_attributes"],
                   "msg": "Input should be a valid boolean, unable to interpret input",
                   "input": value.replace("%20", " ")})
        );
    }
    // The other boolean parameters read the same way.
    let deep = app.get_json("/public/health?deep=Yes").await;
    assert!(deep["checks"].is_object(), "{deep}");
    let confirm = app
        .http
        .delete(app.at("/room/bulk?confirm=off"))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 400, "confirm=off is false: not confirmed");
    let list = app.get_json("/room?constrained_attributes=0").await;
    assert!(list.as_array().unwrap().iter().all(full_view));
}

#[tokio::test]
async fn requests_fastapi_refused_before_the_handler_get_its_422_body() {
    let app = TestApp::spawn(Options::default()).await;
    let name = room_name(&app).await;
    let url = app.at(&format!("/room/{name}"));
    let cases: Vec<(reqwest::RequestBuilder, Value)> = vec![
        (
            app.http.post(app.at("/room/bulk?count=ten")),
            json!([{"type": "int_parsing", "loc": ["query", "count"],
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                    "input": "ten"}]),
        ),
        (
            app.http
                .patch(&url)
                .header("content-type", "application/json")
                .body(""),
            json!([{"type": "missing", "loc": ["body"], "msg": "Field required",
                    "input": null}]),
        ),
        (
            app.http
                .patch(&url)
                .header("content-type", "text/plain")
                .body(r#"{"description": "x"}"#),
            json!([{"type": "model_attributes_type", "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": "{\"description\": \"x\"}"}]),
        ),
        (
            app.http
                .patch(&url)
                .json(&json!({"pin": 123456, "colour": "red"})),
            json!([
                {"type": "extra_forbidden", "loc": ["body", "colour"],
                 "msg": "Extra inputs are not permitted", "input": "red"},
                {"type": "string_type", "loc": ["body", "pin"],
                 "msg": "Input should be a valid string", "input": 123456},
            ]),
        ),
    ];
    for (request, detail) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 422);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"detail": detail, "code": "validation_error"}));
    }
    // JSON that does not parse: where it broke, as a character offset.
    let response = app
        .http
        .patch(&url)
        .header("content-type", "application/json")
        .body(r#"{"tag": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let item = &body["detail"][0];
    assert_eq!(item["type"], "json_invalid");
    assert_eq!(item["loc"], json!(["body", 8]));
    assert_eq!(item["msg"], "JSON decode error");
    assert!(item["ctx"]["error"].is_string(), "{body}");

    // Errors the handler raises keep their status and a text `detail`.
    let handler = app.create("zz").await;
    assert_eq!(handler.status(), 400);
    let body: Value = handler.json().await.unwrap();
    assert!(body["detail"].is_string() && body["code"] == "invalid_uui_data");
}

#[tokio::test]
async fn a_json_body_without_content_type_is_read_as_json() {
    let app = TestApp::spawn(Options::default()).await;
    let name = room_name(&app).await;
    let response = app
        .http
        .patch(app.at(&format!("/room/{name}")))
        .body(r#"{"guest_pin": "2468", "description": "no content type"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(app.sim_room(&name).unwrap().guest_pin, "2468");
}

#[tokio::test]
async fn paths_with_a_trailing_slash_reach_the_same_route() {
    let app = TestApp::spawn(Options::default()).await;
    let created = app
        .http
        .post(app.at(&format!("/room/create/?uuiData={EXAMPLE_UUI}")))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let room: Value = created.json().await.unwrap();
    let name = room["name"].as_str().unwrap();

    let with = app.get_json(&format!("/room/{name}/")).await;
    let without = app.get_json(&format!("/room/{name}")).await;
    assert_eq!(with, without);
    let full = app
        .get_json(&format!("/room/{name}/?constrained_attributes=false"))
        .await;
    assert!(full.get("resource_uri").is_some(), "the query survives");

    for (request, status) in [
        (app.http.get(app.at("/room/")), 200),
        (app.http.get(app.at("/public/health/")), 200),
        (
            app.http
                .get(app.at(&format!("/public/room/{name}/")))
                .header("x-auth-token", AGENT_TOKEN),
            200,
        ),
        (
            app.http
                .patch(app.at(&format!("/room/{name}/")))
                .json(&json!({"description": "slash"})),
            202,
        ),
        (app.http.delete(app.at(&format!("/room/{name}/"))), 204),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{}", response.url());
    }
    assert!(app.sim_room(name).is_none());
}

#[tokio::test]
async fn every_answer_carries_x_process_time_in_seconds() {
    let app = TestApp::spawn(Options::default()).await;
    let requests = [
        app.http
            .post(app.at(&format!("/room/create?uuiData={EXAMPLE_UUI}"))),
        app.http.get(app.at("/room")),
        app.http.get(app.at("/room/vbv-nosuchroom")),
        app.http.get(app.at("/room?constrained_attributes=maybe")),
        app.http.put(app.at("/room/create")),
        app.http.get(app.at("/nope")),
        app.http.post(app.at("/public/event_sink")),
        app.http.get(app.at("/public/health")),
        app.http.get(app.at("/openapi.json")),
        app.http.get(app.at("/docs/")),
        app.http.get(app.at("/")),
        app.http
            .post(app.at("/metrics_timer"))
            .json(&testkit::serve::timer_payload("metrics_timer")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let seconds: f64 = response
            .headers()
            .get("x-process-time")
            .unwrap_or_else(|| panic!("{} {}", response.status(), response.url()))
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..60.0).contains(&seconds), "{seconds}");
    }
}
