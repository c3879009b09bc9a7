//! The OpenAPI document: a snapshot (so changes are deliberate), its structure, and `/docs`.
//!
//! To accept a deliberate change: `UPDATE_SNAPSHOTS=1 cargo test --test app openapi`.

use serde_json::Value;

use crate::support::*;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

fn spec() -> Value {
    serde_json::to_value(pexip_sdk::routes::openapi()).unwrap()
}

#[test]
fn the_spec_matches_its_snapshot() {
    let pretty = serde_json::to_string_pretty(&spec()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let stored =
        std::fs::read_to_string(SNAPSHOT).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1");
    assert!(
        stored == pretty,
        "the OpenAPI document changed; review and run with UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn the_spec_is_openapi_3_1_and_documents_every_route_with_errors_and_security() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    for scheme in [
        "function_key",
        "entra_bearer",
        "event_sink_basic",
        "agent_token",
    ] {
        assert!(schemes.contains_key(scheme), "{scheme}");
    }
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                op["description"].is_string() || op["summary"].is_string(),
                "{method} {path}"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}"
            );
            if path.starts_with("/room") {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{"function_key": [], "entra_bearer": []}]),
                    "{method} {path} needs the function key and the bearer token"
                );
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            } else {
                assert!(
                    !op["security"].to_string().contains("entra_bearer"),
                    "{method} {path} is not behind the bearer check"
                );
            }
            if path != "/public/health" {
                assert!(
                    responses.keys().any(|k| k.starts_with('4')),
                    "{method} {path} documents an error"
                );
            }
        }
    }
    assert_eq!(operations, 10);
}

#[tokio::test]
async fn the_app_serves_the_spec_and_the_swagger_ui() {
    let app = TestApp::spawn(Options::default()).await;
    let served: Value = app
        .http
        .get(app.at("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, spec());
    let docs = app.http.get(app.at("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.at("/docs"))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection() || redirect.status() == 200);
    let js = app
        .http
        .get(app.at("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200, "assets are served from the binary");
    assert!(js.bytes().await.unwrap().len() > 100_000);
}
