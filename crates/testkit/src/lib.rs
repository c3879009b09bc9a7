//! Support for tests and benchmarks; production code never calls it.
//!
//! - [`azurite`]: installs (pinned, `crates/testkit/azurite`) and starts the Azurite emulator
//!   (queue and blob services) on ports of its own, and stops it when the guard drops, even
//!   when a test panics.
//! - [`serve`]: `pexip-sdk serve` as a child process started like the Functions host starts
//!   it, SIGTERM and SIGKILL, its RSS, and the host's timer invocations.
//! - [`stats`]: latency percentiles for the benchmarks and the fault runs.

pub mod azurite;
pub mod serve;
pub mod stats;

/// A queue name no other test uses: `<prefix>-<random hex>`, within the service's rules as
/// long as `prefix` is lowercase letters, digits and single hyphens (at most 30 chars).
pub fn unique_queue_name(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..20])
}
