//! What pexip-sdk's tests and benchmarks share; a dev-dependency only, production code never
//! calls it. Shared fakes and env builders live here once instead of being copied into each
//! test file.
//!
//! # Layout
//!
//! Peers the service talks to:
//! - [`sim`]: the Pexip simulator on a loopback port, and a client configured for it.
//! - [`azurite`]: installs (pinned, `crates/testkit/azurite`) and starts the Azurite emulator
//!   (queue and blob services) on ports of its own, and stops it when the guard drops, even
//!   after a panic.
//! - [`genesys`]: Genesys Cloud, as the service's own stand-in with the tests' agent tokens.
//! - [`identity`]: the App Service managed-identity endpoint, for the Azure SDK's
//!   `ManagedIdentityCredential`.
//! - [`recording`]: a stub that records every request and answers from a closure; the fakes
//!   above and those of single tests are built on it.
//!
//! The service under test:
//! - [`env`]: [`env::AppEnv`], the settings that point the service at those peers.
//! - [`serve`]: `pexip-sdk serve` as a child process started like the Functions host starts
//!   it, SIGTERM and SIGKILL, its RSS, and the host's timer invocations.
//! - [`lifecycle`]: a service's whole life over HTTP (creates, event sink, GC, metrics, a
//!   Pexip outage), for tests that check what it emitted meanwhile.
//!
//! What the service emits, and where it goes:
//! - [`host_console`]: how the Functions host files each line a handler writes.
//! - [`ingestion`]: a fake Application Insights ingestion endpoint that decodes and keeps the
//!   envelopes the exporter uploads.
//!
//! Harness and tools:
//! - [`harness`] and [`tests!`]: the harness of test binaries that must own their process
//!   environment (one child process per test).
//! - [`logs`]: capture of formatted log lines, for assertions on what is (never) logged.
//! - [`time`]: paused tokio time that still lets requests on real sockets finish.
//! - [`keys`]: EC P-256 key pairs made at test time.
//! - [`tls`]: a test CA and a TLS listener for loopback fakes of https-only services.
//! - [`stats`]: latency percentiles for the benchmarks and the fault runs.
//! - Below: free ports, queue names, the `uuiData` a caller sends, and one timed create.

pub mod azurite;
pub mod env;
pub mod genesys;
pub mod harness;
pub mod host_console;
pub mod identity;
pub mod ingestion;
pub mod keys;
pub mod lifecycle;
pub mod logs;
pub mod recording;
pub mod serve;
pub mod sim;
pub mod stats;
pub mod time;
pub mod tls;

/// A free port on 127.0.0.1, picked by the OS. The caller (or its child) binds it a moment
/// later; the Functions host hands its handler a port the same way.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A queue name no other test uses: `<prefix>-<random hex>`, within the service's rules as
/// long as `prefix` is lowercase letters, digits and single hyphens (at most 30 chars).
pub fn unique_queue_name(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..20])
}

/// `uuiData` as the contact centre sends it (hex, before `;encoding=hex`): `host&video_call_id`.
pub fn uui(host: &str, video_call_id: &str) -> String {
    hex::encode(format!("{host}&{video_call_id}"))
}

/// The tag of the room handed out for `video_call_id` on the `id` host.
pub fn id_tag(video_call_id: &str) -> String {
    format!("https://id.gov.bc.ca/idcheck/protected/video/{video_call_id}")
}

/// `POST /room/create` for `video_call_id` on the `id` host, as the benchmarks' callers make
/// it: how long it took (the answer read to its end) and whether it was answered 200.
pub async fn timed_create(
    http: &reqwest::Client,
    base: &str,
    video_call_id: &str,
) -> (std::time::Duration, bool) {
    let started = std::time::Instant::now();
    let answered = match http
        .post(format!(
            "{base}/room/create?uuiData={}",
            uui("id", video_call_id)
        ))
        .send()
        .await
    {
        Ok(response) => {
            let ok = response.status() == 200;
            let _ = response.bytes().await;
            ok
        }
        Err(_) => false,
    };
    (started.elapsed(), answered)
}
