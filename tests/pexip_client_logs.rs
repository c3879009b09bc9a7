//! Logs of the Pexip client over a full create/patch/list/delete cycle against the simulator:
//! the stable dotted fields are there, and no PIN, token, assertion or key ever is.
//!
//! A binary of its own because the capture uses a thread-local subscriber, and tracing caches
//! per-callsite interest process-wide: other tests running in parallel threads without a
//! subscriber would race with it and silently disable some of our callsites.

use pexip_sdk::pexip::NewConference;
use pexip_sim::{Fault, SimConfig};
use serde_json::json;
use testkit::logs::Captured;

#[tokio::test(start_paused = true)]
async fn logs_of_a_full_cycle_carry_the_stable_fields_and_never_a_secret() {
    use tracing_subscriber::layer::SubscriberExt;
    // Paused time jumps to the next timer while a request is on the socket; a 1 ms ticker
    // keeps that timer from being the request's own timeout.
    let _tick = testkit::time::tick();
    let captured = Captured::new();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("pexip_sdk::pexip", tracing::Level::TRACE),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(captured.clone()),
        );
    let _default = tracing::subscriber::set_default(subscriber);

    let sim = testkit::sim::start_with(SimConfig::default()).await;
    let client = testkit::sim::pexip_client(&sim, &[]);
    // A retried failure and a 401 renewal, so the warning paths log too.
    sim.add_fault(Fault::status(503).method("GET").count(1));
    sim.add_fault(Fault::status(401).method("PATCH").count(1));
    let created = client
        .create_conference(&NewConference {
            name: "logged".to_owned(),
            pin: "482913".to_owned(),
            guest_pin: "771204".to_owned(),
            allow_guests: true,
            aliases: vec!["logged@vc.example.com".to_owned()],
            ..NewConference::default()
        })
        .await
        .unwrap();
    client
        .patch_conference(created.id, &json!({"pin": "135791", "guest_pin": "246802"}))
        .await
        .unwrap();
    client.list_conferences(&[("pin", "135791")]).await.unwrap();
    client.delete_conference(created.id).await.unwrap();

    let logs = captured.text();
    assert!(logs.contains("\"pexip.method\":\"PATCH\""), "{logs}");
    assert!(logs.contains("\"pexip.path\":\"/api/admin/configuration/v1/conference/\""));
    assert!(logs.contains("\"pexip.status\":503"));
    assert!(logs.contains("\"duration_ms\""));
    let key_body = sim.private_key_pem().lines().nth(1).unwrap().to_owned();
    for secret in [
        "482913",
        "771204",
        "135791",
        "246802",
        "Bearer",
        "eyJ",
        key_body.as_str(),
    ] {
        assert!(!logs.contains(secret), "logs contain {secret:?}:\n{logs}");
    }
}
