//! Support for tests and benchmarks; production code never calls it.
//!
//! - [`azurite`]: installs (pinned, `crates/testkit/azurite`) and starts the Azurite queue emulator on
//!   a port of its own, and stops it when the guard drops, even when a test panics.
//! - [`serve`]: `pexip-sdk serve` as a child process started like the Functions host starts
//!   it, SIGTERM and SIGKILL, its RSS, and the host's timer invocations.
//! - [`host_console`]: how the Functions host files each line a handler writes.
//! - [`ingestion`]: a fake Application Insights ingestion endpoint that decodes and keeps the
//!   envelopes the exporter uploads.
//! - [`lifecycle`]: a service's whole life over HTTP (creates, event sink, GC, metrics, a
//!   Pexip outage), for tests that check what it emitted meanwhile.
//! - [`tls`]: a test CA and a TLS listener for loopback fakes of https-only services.
//! - [`stats`]: latency percentiles for the benchmarks and the fault runs.

pub mod azurite;
pub mod host_console;
pub mod ingestion;
pub mod lifecycle;
pub mod serve;
pub mod stats;
pub mod tls;

/// A queue name no other test uses: `<prefix>-<random hex>`, within the service's rules as
/// long as `prefix` is lowercase letters, digits and single hyphens (at most 30 chars).
pub fn unique_queue_name(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..20])
}
