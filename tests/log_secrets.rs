//! Nothing secret reaches a log. Captures every log line (all targets, TRACE, JSON as in
//! Azure) through a full lifecycle — token, create, update with new PINs, agent read, event
//! sink with Basic auth, GC, delete, all `/room*` calls with an Entra ID bearer token — and
//! asserts that no PIN, access token, private key, password, agent token or raw uuiData
//! appears. Its own test binary: it installs the global
//! subscriber.

#[path = "app/idp.rs"]
#[allow(dead_code)]
mod idp;
#[path = "app/support.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use serde_json::{Value, json};
use support::*;
use testkit::logs::Captured;

/// Every secret the run handled, by kind.
fn leaks(logs: &str, secrets: &[(String, String)]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(_, s)| !s.is_empty() && logs.contains(s.as_str()))
        .map(|(kind, _)| kind.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_lifecycle_logs_no_secret() {
    let capture = Captured::new();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .init();

    // The detector must be able to fail: a canary secret logged on purpose is found.
    tracing::info!(pin = "99990000111122", "canary");
    assert_eq!(
        leaks(
            &capture.text(),
            &[("canary".into(), "99990000111122".into())]
        ),
        ["canary"]
    );

    // In-app authentication on: every /room* call carries this bearer token.
    let entra = idp::Idp::start(&[&idp::KEY_A]).await;
    let bearer = idp::KEY_A.sign(&idp::claims());
    let forged = idp::ROGUE.sign_as("kid-a", &idp::claims());
    // Long PINs so a match is a leak, not a coincidence with a port or a duration.
    let mut env = vec![
        ("HOST_PIN_LENGTH".to_owned(), "14".to_owned()),
        ("GUEST_PIN_LENGTH".to_owned(), "12".to_owned()),
    ];
    env.extend(entra.env());
    let app = TestApp::spawn(Options {
        env,
        bearer: Some(bearer.clone()),
        ..Options::default()
    })
    .await;
    app.seed_pool().await;

    let refused = app
        .http
        .get(app.at("/room"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "a forged bearer token is refused");

    let raw_uui = uui("id", "Q2l0aXplblNlc3Npb24xMjM0NTY");
    let created = app.create(&format!("{raw_uui};encoding=hex")).await;
    assert_eq!(created.status(), 200);
    let room: Value = created.json().await.unwrap();
    let name = room["name"].as_str().unwrap().to_owned();

    let new_host_pin = "86420975318642";
    let new_guest_pin = "753197531975";
    let updated = app
        .http
        .patch(app.at(&format!("/room/{name}")))
        .json(&json!({"pin": new_host_pin, "guest_pin": new_guest_pin}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 202);
    let bad_pin = app
        .http
        .patch(app.at(&format!("/room/{name}")))
        .json(&json!({"pin": "13579bad24680"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_pin.status(), 400);

    let read = app
        .http
        .get(app.at(&format!("/public/room/{name}")))
        .header("x-auth-token", AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let refused = app
        .http
        .get(app.at(&format!("/public/room/{name}")))
        .header("x-auth-token", "forged-agent-token-0042")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    app.sim.start_conference(&name, 2, 2).await.unwrap();
    app.sim.end_conference(&name).await.unwrap();
    let wrong = app
        .http
        .post(app.at("/public/event_sink"))
        .basic_auth(SINK_USER, Some("wrong-sink-password-77"))
        .json(&conference_ended(&name, "", "n"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    app.invoke_timer("gc_timer").await;
    assert!(
        !app.sim.rooms().iter().any(|r| r.name == name),
        "the GC deleted the room"
    );

    let other: Value = app
        .create(&uui("idtest", "U2Vjb25kQ2FsbDk4NzY1"))
        .await
        .json()
        .await
        .unwrap();
    let deleted = app
        .http
        .delete(app.at(&format!("/room/{}", other["name"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    app.invoke_timer("metrics_timer").await;
    app.rooms.background_idle().await;

    let mut secrets: Vec<(String, String)> = vec![
        ("new host PIN".into(), new_host_pin.into()),
        ("new guest PIN".into(), new_guest_pin.into()),
        ("refused PIN".into(), "13579bad24680".into()),
        ("event sink password".into(), SINK_PASSWORD.into()),
        (
            "wrong event sink password".into(),
            "wrong-sink-password-77".into(),
        ),
        ("agent token".into(), AGENT_TOKEN.into()),
        (
            "forged agent token".into(),
            "forged-agent-token-0042".into(),
        ),
        ("raw uuiData".into(), raw_uui.clone()),
        ("video call id".into(), "Q2l0aXplblNlc3Npb24xMjM0NTY".into()),
        ("basic auth header".into(), "cGV4aXA6".into()), // base64 of "pexip:"
        ("Entra bearer token".into(), bearer.clone()),
        ("forged bearer token".into(), forged.clone()),
    ];
    secrets.extend(testkit::sim::secrets(&app.sim));

    let logs = capture.text();
    assert!(
        logs.lines().count() > 50,
        "the run was logged: {} lines",
        logs.lines().count()
    );
    assert!(
        logs.contains("room allocated"),
        "our own events were captured"
    );
    let found = leaks(&logs, &secrets);
    assert!(found.is_empty(), "secrets in the logs: {found:?}");
    assert!(
        !logs.contains("eyJ"),
        "a JWT (the client assertion or a bearer token) reached a log"
    );
    assert!(
        logs.contains(idp::CLIENT_ID),
        "the caller's client id (not a secret) is on the request spans"
    );
}
