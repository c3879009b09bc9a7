//! The agent's room read and the health route.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn an_allowed_agent_reads_the_room_with_its_host_pin() {
    let app = TestApp::spawn(Options::default()).await;
    let room: Value = app.create(EXAMPLE_UUI).await.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    let url = app.at(&format!("/public/room/{name}"));
    let read: Value = app
        .http
        .get(&url)
        .header("x-auth-token", AGENT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let on_sim = app
        .sim
        .rooms()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap();
    assert_eq!(read["pin"], on_sim.pin.as_str());
    assert_eq!(read["guest_pin"], room["guest_pin"]);
    assert_eq!(read["tag"], EXAMPLE_TAG);

    let cases: [(Option<&str>, u16); 3] = [
        (None, 401),
        (Some("forged"), 401),
        (Some(OTHER_DIVISION_TOKEN), 403),
    ];
    for (token, status) in cases {
        let mut request = app.http.get(&url);
        if let Some(t) = token {
            request = request.header("x-auth-token", t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{token:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("pin").is_none() && body["code"].is_string());
    }
    let missing = app
        .http
        .get(app.at("/public/room/vbv-nosuchroom"))
        .header("x-auth-token", AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn health_is_alive_and_deep_health_checks_pexip_and_the_queues() {
    let app = TestApp::spawn(Options::default()).await;
    let health: Value = app
        .http
        .get(app.at("/public/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "alive");
    let ts = health["timestamp"].as_str().unwrap();
    assert_eq!(
        ts.len(),
        "2024-03-05T14:31:06.145782".len(),
        "naive ISO with microseconds: {ts}"
    );
    assert!(!ts.ends_with('Z'));

    let deep = app
        .http
        .get(app.at("/public/health?deep=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    let deep: Value = deep.json().await.unwrap();
    assert_eq!(deep["checks"]["pexip"], "ok");
    assert_eq!(deep["checks"]["queues"], "ok");
}

/// Issue 13, item 11: a failed deep check says `failed`, never the upstream error (which
/// names internal URLs and Pexip's own words).
#[tokio::test]
async fn deep_health_reports_a_failure_without_its_cause() {
    let app = TestApp::spawn(Options::default()).await;
    app.sim.add_fault(
        pexip_sim::Fault::status(503)
            .count(100)
            .path_prefix("/api/admin/status/"),
    );
    let down = app
        .http
        .get(app.at("/public/health?deep=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    let down: Value = down.json().await.unwrap();
    assert_eq!(down["status"], "degraded");
    assert_eq!(down["checks"]["pexip"], "failed");
    assert_eq!(down["checks"]["queues"], "ok");
    let text = down.to_string();
    for leak in ["503", "127.0.0.1", "http", "Pexip"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

/// Issue 13, item 11: a flood of deep checks costs Pexip one check (its two status requests),
/// not two requests per call.
#[tokio::test]
async fn a_flood_of_deep_health_checks_costs_pexip_one_check() {
    let app = TestApp::spawn(Options::default()).await;
    // Slow enough that the whole flood arrives while the first check runs.
    app.sim
        .add_fault(pexip_sim::Fault::latency(300).path_prefix("/api/admin/status/"));
    app.sim.reset_counters();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (http, url) = (app.http.clone(), app.at("/public/health?deep=true"));
            tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let status_requests: u64 = app
        .sim
        .counters()
        .requests
        .iter()
        .filter(|(route, _)| route.contains("/api/admin/status/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(status_requests, 2, "{:?}", app.sim.counters().requests);
}
