//! Throughput of the Pexip client against the in-process simulator: create + get + delete
//! cycles (a create is POST + read-back GET, so a cycle is four HTTP requests) from 16
//! concurrent workers through one client at the default cap of 5, first with no added
//! latency, then with 20 ms injected on every `/api/admin` request.
//!
//! Run with `cargo bench --bench pexip_client [-- --seconds N]` (default 5 s per scenario).
//! Prints a Markdown table. `cargo test --all-targets` runs it too, without cargo bench's
//! `--bench` flag: then each scenario runs for 200 ms as a smoke test that fails on any error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pexip_sdk::pexip::{Deleted, NewConference, PexipClient};
use pexip_sim::{Fault, SimHandle};

const WORKERS: usize = 16;
const CAP: usize = 5;

struct Outcome {
    cycles: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let seconds = seconds_from_args().unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let sim = testkit::sim::start().await;
        let client = testkit::sim::pexip_client(&sim, &[("PEXIP_MAX_IN_FLIGHT", &CAP.to_string())]);
        let duration = if bench_mode {
            Duration::from_secs(seconds)
        } else {
            Duration::from_millis(200)
        };

        // Warm up: the token and the connection pool.
        run(&client, "warm", Duration::from_millis(500)).await;
        sim.reset_counters();

        let plain = run(&client, "plain", duration).await;
        let plain_peak = sim.counters().max_in_flight;
        sim.add_fault(Fault::latency(20).path_prefix("/api/admin/"));
        sim.reset_counters();
        let slow = run(&client, "slow", duration).await;
        let slow_peak = sim.counters().max_in_flight;
        sim.clear_faults();

        println!(
            "\n| scenario (cap {CAP}, {WORKERS} workers, {:.1} s{}) | cycles | cycles/s | p50 cycle | p99 cycle | errors | peak in flight |",
            duration.as_secs_f64(),
            if bench_mode { "" } else { ", smoke run" },
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        row("no added latency", &plain, plain_peak);
        row("20 ms per request", &slow, slow_peak);
        leftover_check(&sim);
        for outcome in [&plain, &slow] {
            anyhow::ensure!(outcome.errors == 0, "{} cycles failed", outcome.errors);
            anyhow::ensure!(outcome.cycles > 0, "no cycle completed");
        }
        anyhow::ensure!(slow_peak <= CAP as u64, "the cap was exceeded: {slow_peak}");
        Ok(())
    })
}

/// Run create+get+delete cycles from `WORKERS` tasks until `duration` has passed.
async fn run(client: &PexipClient, label: &str, duration: Duration) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let client = client.clone();
        let errors = errors.clone();
        let label = label.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let begun = Instant::now();
                let name = format!("bench-{label}-{worker}-{n}");
                n += 1;
                match cycle(&client, &name).await {
                    Ok(()) => latencies.push(begun.elapsed()),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Outcome {
        cycles: latencies.len(),
        elapsed,
        latencies,
        errors: errors.load(Ordering::Relaxed),
    }
}

async fn cycle(client: &PexipClient, name: &str) -> Result<(), pexip_sdk::pexip::PexipError> {
    let created = client
        .create_conference(&NewConference {
            name: name.to_owned(),
            pin: "482913".to_owned(),
            guest_pin: "771204".to_owned(),
            allow_guests: true,
            ..NewConference::default()
        })
        .await?;
    let read = client.get_conference(created.id).await?;
    if read.name != name {
        return Err(pexip_sdk::pexip::PexipError::Other {
            status: None,
            message: "read back another room".to_owned(),
        });
    }
    match client.delete_conference(created.id).await? {
        Deleted::Now => Ok(()),
        Deleted::AlreadyGone => Err(pexip_sdk::pexip::PexipError::NotFound),
    }
}

fn row(label: &str, outcome: &Outcome, peak: u64) {
    let rate = outcome.cycles as f64 / outcome.elapsed.as_secs_f64();
    println!(
        "| {label} | {} | {rate:.1} | {} | {} | {} | {peak} |",
        outcome.cycles,
        fmt_ms(percentile(&outcome.latencies, 50)),
        fmt_ms(percentile(&outcome.latencies, 99)),
        outcome.errors,
    );
}

fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() * p).div_ceil(100)).saturating_sub(1);
    sorted.get(index.min(sorted.len() - 1)).copied()
}

fn fmt_ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

/// Every cycle deletes what it created; a leftover room means a lost delete.
fn leftover_check(sim: &SimHandle) {
    let left = sim
        .rooms()
        .iter()
        .filter(|r| r.name.starts_with("bench-"))
        .count();
    if left > 0 {
        println!("\nwarning: {left} benchmark rooms were left behind");
    }
}

/// `--seconds N` from the command line; `cargo bench` adds its own flags (`--bench`), which
/// are ignored.
fn seconds_from_args() -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}
