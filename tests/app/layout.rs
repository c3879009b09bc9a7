//! The function folders and the router must agree: every `function.json` has a route with the
//! same method and path, and every route of the binary has a `function.json`.

use std::collections::BTreeSet;
use std::path::Path;

use pexip_sdk::functions::AppLayout;

use crate::support::*;

fn layout() -> AppLayout {
    AppLayout::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A concrete path for a route template (`room/{name}` → `/room/vbv-x`).
fn concrete(route: &str) -> String {
    let path = route
        .replace("{name}", "vbv-layoutcheck")
        .replace("{*path}", "");
    format!("/{}", path.trim_end_matches('/'))
}

#[tokio::test]
async fn every_function_folder_has_a_route_with_the_same_method() {
    let app = TestApp::spawn(Options::default()).await;
    for f in layout().http_functions() {
        for method in &f.methods {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = app
                .http
                .request(method.clone(), app.at(&concrete(&f.route)))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let unrouted =
                (status == 404 && body.contains(r#""code":"not_found""#)) || status == 405;
            assert!(
                !unrouted,
                "{} {method} /{} answered {status}: {body}",
                f.name, f.route
            );
        }
    }
    for t in layout().timers() {
        let json = app.invoke_timer(&t.name).await;
        assert!(json["Logs"].is_array(), "{}", t.name);
    }
}

#[test]
fn every_route_of_the_binary_has_a_function_folder() {
    let spec = serde_json::to_value(pexip_sdk::routes::openapi()).unwrap();
    let mut routes: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((
                method.to_uppercase(),
                path.trim_start_matches('/').to_owned(),
            ));
        }
    }
    // Served by the binary outside the documented API.
    routes.insert(("GET".into(), "openapi.json".into()));
    routes.insert(("GET".into(), "docs/{*path}".into()));
    let folders: BTreeSet<(String, String)> = layout()
        .http_functions()
        .flat_map(|f| {
            f.methods
                .iter()
                .map(|m| (m.clone(), f.route.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(routes, folders);
    let timers: BTreeSet<String> = layout().timers().map(|t| t.name.clone()).collect();
    assert_eq!(
        timers,
        ["gc_timer".to_owned(), "metrics_timer".to_owned()].into()
    );
}

#[test]
fn http_function_folders_allow_forwarding_and_private_routes_need_a_key() {
    for f in layout().http_functions() {
        let want = if f.route.starts_with("room") {
            "function"
        } else {
            "anonymous"
        };
        assert_eq!(f.auth_level, want, "{}", f.name);
    }
    assert!(layout().host.forwarding);
}

#[test]
fn local_settings_are_complete_dev_only_values() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("local.settings.json"))
            .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let values = json["Values"].as_object().unwrap();
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(values["AzureWebJobsStorage"], "UseDevelopmentStorage=true");
    assert!(
        values["PEXIP_BASE_URL"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let mut pairs: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    // The key file is written by `pexip-sdk sim --key-out`; stand in a key for the check.
    pairs.retain(|(k, _)| k != "PEXIP_PRIVATE_KEY_FILE");
    pairs.push(("PEXIP_PRIVATE_KEY".into(), "unused".into()));
    let env = pexip_sdk::config::Env::from_pairs(pairs);
    assert!(
        pexip_sdk::config::StorageSettings::from_env(&env)
            .unwrap()
            .is_some()
    );
    pexip_sdk::config::RoomSettings::from_env(&env).unwrap();
    pexip_sdk::config::EventSinkSettings::from_env(&env).unwrap();
    pexip_sdk::config::GenesysSettings::from_env(&env).unwrap();
    // `func start` runs `serve`, which wants the in-app check or this, said on purpose.
    assert_eq!(pexip_sdk::config::auth_disabled(&env), Ok(true));
}

#[test]
fn a_gc_run_fits_inside_the_hosts_function_timeout_and_its_timer_period() {
    // The host cancels an invocation after `functionTimeout` (Consumption default 5 min,
    // shorter than the GC's budget), so host.json sets it; the GC stops draining at its budget
    // and leaves time for the pool rebalance and the leak search after it.
    let timeout = layout()
        .host
        .function_timeout
        .expect("host.json sets functionTimeout");
    let settings = pexip_sdk::config::RoomSettings::from_env(&pexip_sdk::config::Env::from_pairs(
        Vec::<(String, String)>::new(),
    ))
    .unwrap();
    assert!(settings.gc_time_budget + std::time::Duration::from_secs(60) <= timeout);
    assert!(
        timeout <= std::time::Duration::from_secs(600),
        "one run per 10-minute period"
    );
}
