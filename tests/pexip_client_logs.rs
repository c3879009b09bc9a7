//! Logs of the Pexip client over a full create/patch/list/delete cycle against the simulator:
//! the stable dotted fields are there, and no PIN, token, assertion or key ever is.
//!
//! A binary of its own because the capture uses a thread-local subscriber, and tracing caches
//! per-callsite interest process-wide: other tests running in parallel threads without a
//! subscriber would race with it and silently disable some of our callsites.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pexip_sdk::config::{PexipAuth, PexipSettings, parse_base_url};
use pexip_sdk::pexip::{NewConference, PexipClient};
use pexip_sim::{self as sim, Fault, SimConfig};
use secrecy::SecretString;
use serde_json::json;

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn logs_of_a_full_cycle_carry_the_stable_fields_and_never_a_secret() {
    use tracing_subscriber::layer::SubscriberExt;
    // Paused time jumps to the next timer while a request is on the socket; a 1 ms ticker
    // keeps that timer from being the request's own timeout.
    let _tick = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let captured = Captured::default();
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

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::start(SimConfig::default(), listener).await.unwrap();
    let client = PexipClient::new(&PexipSettings {
        base_url: parse_base_url("PEXIP_BASE_URL", &sim.base_url()).unwrap(),
        auth: PexipAuth::OAuth2 {
            client_id: sim.client_id(),
            private_key: pexip_sdk::secrets::Secret::fixed(
                "PEXIP_PRIVATE_KEY",
                SecretString::from(sim.private_key_pem()),
            ),
        },
        max_in_flight: 5,
        request_timeout: Duration::from_secs(30),
        max_retries: 3,
    })
    .unwrap();
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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
