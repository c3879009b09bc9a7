//! A service's whole life in a few seconds, over HTTP only (so it drives `dev` and `serve`
//! alike): the timers, creates, a read, an update with new PINs, a conference that ends (the
//! simulator posts `conference_ended` to the event sink), the GC, and a Pexip outage (503s
//! that retries absorb, 500s on the tag update, then Pexip down for the timers and a create,
//! which fails). Tests that look at what the service *emitted* meanwhile (log lines, telemetry)
//! run it; its own assertions are only that each step was answered as such a step is.

use pexip_sim::{EventSinkTarget, SimHandle};
use serde_json::{Value, json};

use crate::azurite::Azurite;
use crate::env::AppEnv;
use crate::uui;

/// Host PIN the update writes; needs `HOST_PIN_LENGTH=14` (long, so finding it in output is
/// a leak, not a coincidence).
pub const PATCHED_HOST_PIN: &str = "86420975318642";
/// Guest PIN the update writes; needs `GUEST_PIN_LENGTH=12`.
pub const PATCHED_GUEST_PIN: &str = "753197531975";
/// The settings the lifecycle assumes.
pub const SETTINGS: [(&str, &str); 4] = [
    ("HOST_PIN_LENGTH", "14"),
    ("GUEST_PIN_LENGTH", "12"),
    ("ROOM_DELETE_GRACE_SECONDS", "0"),
    ("ROOM_READY_DELAY_SECONDS", "0"),
];

/// Rooms `serve` keeps in the pool during the lifecycle.
pub const POOL_TARGET: u64 = 3;

/// A simulator whose new rooms are dialable at once, posting its events to the service on
/// `port` with HTTP Basic `pexip` / `sink_password`.
pub async fn simulator(port: u16, sink_password: &str) -> SimHandle {
    let sim = crate::sim::start().await;
    let mut sink = EventSinkTarget::new(format!("http://127.0.0.1:{port}/public/event_sink"));
    sink.username = Some("pexip".into());
    sink.password = Some(sink_password.into());
    sim.add_event_sink(sink);
    sim
}

/// `serve`'s settings for the lifecycle on `port`: Azurite's queues under a prefix of its
/// own, `sim` as Pexip, the event sink's credentials, [`SETTINGS`], a pool of
/// [`POOL_TARGET`], `LOG_FORMAT` = `format`, and the in-app token check off.
pub fn serve_env(
    azurite: &Azurite,
    sim: &SimHandle,
    port: u16,
    sink_password: &str,
    format: &str,
) -> AppEnv {
    AppEnv::new()
        .extend(SETTINGS)
        .set("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .storage(azurite)
        .queue_prefix(format!(
            "life{}-",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ))
        .pexip(sim)
        .event_sink("pexip", sink_password)
        .set("ROOM_POOL_TARGET", POOL_TARGET.to_string())
        .set("LOG_FORMAT", format)
        // No Entra ID tenant in tests: the host's function keys are the gate on purpose.
        .set("AUTH_DISABLED", "true")
}

/// What the run did.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Room names handed out, in order.
    pub rooms: Vec<String>,
    /// Every `uuiData` sent (raw hex: a secret for logs).
    pub uui: Vec<String>,
    /// Video call ids inside them.
    pub video_call_ids: Vec<String>,
    /// Status of each create, in order.
    pub create_statuses: Vec<u16>,
}

/// Run it against the service at `base` with the simulator's control API at `sim`.
/// `traceparent` goes on the first create.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    sim: &str,
    traceparent: Option<&str>,
) -> Lifecycle {
    let mut life = Lifecycle::default();
    timer(http, base, "metrics_timer").await;

    let first = life
        .create(http, base, "id", "TGlmZWN5Y2xlT25lMTIzNDU2", traceparent)
        .await;
    assert_eq!(first, 200, "the first create");
    life.create(http, base, "idtest", "TGlmZWN5Y2xlVHdvNjU0MzIx", None)
        .await;
    let name = life.rooms[0].clone();
    let read = http
        .get(format!("{base}/room/{name}"))
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), 200, "read");
    let updated = http
        .patch(format!("{base}/room/{name}"))
        .json(&json!({"pin": PATCHED_HOST_PIN, "guest_pin": PATCHED_GUEST_PIN}))
        .send()
        .await
        .expect("update");
    assert_eq!(updated.status(), 202, "update");

    // A conference on two nodes ends: two conference_ended events reach the event sink.
    let started = http
        .post(format!("{sim}/_sim/conferences"))
        .json(&json!({"room": name, "participants": 2, "nodes": 2}))
        .send()
        .await
        .expect("start a conference");
    assert_eq!(started.status(), 201, "conference started");
    let ended = http
        .post(format!("{sim}/_sim/conferences/{name}/end"))
        .send()
        .await
        .expect("end it");
    assert!(ended.status().is_success(), "conference ended");
    timer(http, base, "gc_timer").await;

    // The outage: two 503s on the tag update (retried), then every tag update answered 500
    // (retried until the retries run out; the create falls back as the allocation flow
    // decides), then every call
    // refused with 503 while the timers and a create run (that create fails).
    fault(
        http,
        sim,
        json!({"kind": "status", "status": 503, "count": 2, "method": "PATCH"}),
    )
    .await;
    life.create(http, base, "id", "T3V0YWdlUmV0cmllZDk4NzY1", None)
        .await;
    clear_faults(http, sim).await;
    fault(
        http,
        sim,
        json!({"kind": "status", "status": 500, "method": "PATCH"}),
    )
    .await;
    life.create(http, base, "id", "T3V0YWdlRmFpbGVkMTIzNDU2", None)
        .await;
    clear_faults(http, sim).await;
    fault(
        http,
        sim,
        json!({"kind": "status", "status": 503, "path_prefix": "/api/admin"}),
    )
    .await;
    timer(http, base, "metrics_timer").await;
    timer(http, base, "gc_timer").await;
    life.create(http, base, "iddev", "T3V0YWdlRG93bjU1NTU1NTU1", None)
        .await;
    clear_faults(http, sim).await;

    // The first run counts the pool the outage drained, then tops it up. A refill the
    // outage's allocations started may still be retrying in the background: counted as in
    // flight, so not created again, yet not in the pool. The metrics run again, briefly
    // apart, until one finds the pool at its target (the last run is what tests read).
    timer(http, base, "metrics_timer").await;
    for _ in 0..RECOVERY_RUNS {
        let logs = crate::serve::invoke_timer(http, base, "metrics_timer")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if pool_depth(&logs) == Some(POOL_TARGET) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    life
}

/// Metrics runs after the outage, at most, waiting for the pool to be back at its target.
const RECOVERY_RUNS: usize = 20;

/// The pool depth a metrics run logged (`metrics: {json}`).
fn pool_depth(logs: &[String]) -> Option<u64> {
    let json = logs.iter().find_map(|l| l.strip_prefix("metrics: "))?;
    serde_json::from_str::<Value>(json).ok()?["pool_depth"].as_u64()
}

impl Lifecycle {
    async fn create(
        &mut self,
        http: &reqwest::Client,
        base: &str,
        host: &str,
        video_call_id: &str,
        traceparent: Option<&str>,
    ) -> u16 {
        let uui = uui(host, video_call_id);
        let mut request = http.post(format!("{base}/room/create?uuiData={uui}"));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request.send().await.expect("create");
        let status = response.status().as_u16();
        if status == 200 {
            let room: Value = response.json().await.expect("a room");
            self.rooms
                .push(room["name"].as_str().expect("its name").to_owned());
        }
        self.uui.push(uui);
        self.video_call_ids.push(video_call_id.to_owned());
        self.create_statuses.push(status);
        status
    }
}

async fn timer(http: &reqwest::Client, base: &str, name: &str) {
    crate::serve::invoke_timer(http, base, name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn clear_faults(http: &reqwest::Client, sim: &str) {
    let cleared = http
        .delete(format!("{sim}/_sim/faults"))
        .send()
        .await
        .expect("clear the faults");
    assert!(cleared.status().is_success());
}

async fn fault(http: &reqwest::Client, sim: &str, fault: Value) {
    let added = http
        .post(format!("{sim}/_sim/faults"))
        .json(&fault)
        .send()
        .await
        .expect("add a fault");
    assert!(added.status().is_success(), "fault {fault}");
}
