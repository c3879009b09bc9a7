//! Performance harness (`cargo bench --bench service`, a few minutes): runs the release
//! binary and prints one Markdown table with each measure, its target and whether it was met
//! (also written to `target/bench-service.md`).
//!
//! 1. exec → first answer on `GET /` of `serve`, median of 50 starts (Azurite queues);
//! 2. create latency p50/p99 and creates per second at concurrency 1, 16 and 64, in `dev`
//!    mode (embedded simulator, in-memory queues) and with `serve` against Azurite (simulator
//!    in this process), each level started from a full pool (`metrics_timer` tops it up and
//!    reports how many creates found it empty);
//! 3. RSS of `serve` (the production process): idle after start, and its peak under that load;
//! 4. GC drain rate: 10,000 deletion messages, 20 ms of simulated Pexip latency on every
//!    Management API request, the default concurrency cap (5), one `gc_timer` run, with
//!    in-memory queues (`-- gc-azurite` adds the same against Azurite: minutes, because the
//!    emulator scans every message on each queue operation);
//! 5. caller priority: create latency (concurrency 4) with 20 ms of Pexip latency, without
//!    and then during a bulk refill of 500 pool rooms (`POST /room/bulk?count=500`);
//! 6. deep-health flood (issue 13): the same create latency without and then during a flood
//!    of anonymous `GET /public/health?deep=true` at concurrency 100 (at least 2,000 checks,
//!    and on until the creates are done);
//! 7. what Application Insights telemetry costs: `serve` + Azurite create p50 at concurrency
//!    1 and 16 without and with the exporter (to a loopback fake ingestion endpoint), and the
//!    peak RSS of each.
//!
//! Figures, not assertions: these machines are shared and noisy. The targets come from
//! issue 6.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pexip_sdk::queue::{DELETION_QUEUE, DeletionMessage, Queue, QueueService};
use pexip_sim::{Fault, SimHandle};
use testkit::azurite::Azurite;
use testkit::env::AppEnv;
use testkit::serve::{ServeProcess, free_port, invoke_timer, log_dir, proc_rss_mib};
use testkit::stats::{Latencies, Row, checked, ms, report, row};

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");
const PEXIP_LATENCY_MS: u64 = 20;
const PRIORITY_CONCURRENCY: usize = 4;
const FLOOD_CONCURRENCY: usize = 100;

/// How much of everything: the full run, or the quick smoke pass `cargo test --all-targets`
/// makes (without `--bench`), which only keeps the harness itself working.
struct Plan {
    ready_starts: usize,
    /// Pool of `dev` for its load levels: big enough that no create finds it empty.
    dev_pool: usize,
    /// (concurrency, creates) per level in `dev`.
    dev_levels: [(usize, usize); 3],
    /// Smaller against Azurite: the emulator scans every message of a queue on each
    /// operation, so a big pool would measure Azurite, not the service.
    azurite_pool: usize,
    azurite_levels: [(usize, usize); 3],
    gc_rooms: usize,
    /// Repetitions of the off, on, on, off rounds of the telemetry section.
    telemetry_repeats: usize,
    bulk_refill: usize,
    priority_creates: usize,
    /// Deep health checks in the flood (at least; it lasts as long as the creates).
    flood_checks: usize,
}

const FULL: Plan = Plan {
    ready_starts: 50,
    dev_pool: 2_500,
    dev_levels: [(1, 300), (16, 1_000), (64, 2_000)],
    azurite_pool: 400,
    azurite_levels: [(1, 150), (16, 300), (64, 350)],
    gc_rooms: 10_000,
    // More rounds on one Azurite slow every later round (its memory grows with each pool).
    telemetry_repeats: 1,
    bulk_refill: 500,
    priority_creates: 150,
    flood_checks: 2_000,
};

const SMOKE: Plan = Plan {
    ready_starts: 3,
    dev_pool: 150,
    dev_levels: [(1, 5), (16, 32), (64, 64)],
    azurite_pool: 100,
    azurite_levels: [(1, 5), (16, 16), (64, 64)],
    gc_rooms: 100,
    telemetry_repeats: 1,
    bulk_refill: 20,
    priority_creates: 10,
    flood_checks: 100,
};

static PLAN: std::sync::OnceLock<&'static Plan> = std::sync::OnceLock::new();

fn plan() -> &'static Plan {
    PLAN.get().copied().unwrap_or(&SMOKE)
}

/// Latency and rate of one load level.
struct Level {
    concurrency: usize,
    latencies: Latencies,
    per_second: f64,
    failures: usize,
    /// Creates that found the pool empty and made a room on the spot.
    fallbacks: u64,
}

/// `total` creates with fresh calls at `concurrency`.
async fn create_load(
    http: &reqwest::Client,
    base: &str,
    concurrency: usize,
    total: usize,
    tag: &str,
) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, next, base, tag) =
                (http.clone(), next.clone(), base.to_owned(), tag.to_owned());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut failures = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return (latencies, failures);
                    }
                    let (took, ok) =
                        testkit::timed_create(&http, &base, &format!("{tag}{i}")).await;
                    latencies.push(took);
                    if !ok {
                        failures += 1;
                    }
                }
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await.expect("worker");
        latencies.extend(&l);
        failures += f;
    }
    Level {
        concurrency,
        latencies,
        per_second: total as f64 / started.elapsed().as_secs_f64(),
        failures,
        fallbacks: 0,
    }
}

/// Fire `metrics_timer`: it tops the pool up (so the next level starts from a full pool)
/// and reports the pool-empty fallbacks since its previous run.
async fn fallbacks_since_last(http: &reqwest::Client, base: &str) -> u64 {
    let logs = invoke_timer(http, base, "metrics_timer")
        .await
        .expect("metrics_timer runs");
    logs.iter()
        .find_map(|l| l.strip_prefix("metrics: "))
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .and_then(|m| m["since_last"]["pool_empty_fallbacks"].as_u64())
        .unwrap_or(0)
}

/// The load levels against `base`, each started from a full pool.
async fn levels(
    http: &reqwest::Client,
    base: &str,
    plan: &[(usize, usize)],
    tag: &str,
) -> Vec<Level> {
    fallbacks_since_last(http, base).await;
    let mut levels = Vec::new();
    for (i, &(concurrency, total)) in plan.iter().enumerate() {
        let mut level = create_load(http, base, concurrency, total, &format!("{tag}{i}L")).await;
        // Let the background refills land, then count and top up.
        tokio::time::sleep(Duration::from_secs(2)).await;
        level.fallbacks = fallbacks_since_last(http, base).await;
        levels.push(level);
    }
    levels
}

/// Rooms on a simulator, over its control API.
async fn sim_room_count(http: &reqwest::Client, sim_base: &str) -> usize {
    let rooms: serde_json::Value = http
        .get(format!("{sim_base}/_sim/rooms"))
        .send()
        .await
        .expect("simulator answers")
        .json()
        .await
        .expect("rooms JSON");
    rooms.as_array().map_or(0, Vec::len)
}

async fn wait_for_rooms(http: &reqwest::Client, sim_base: &str, at_least: usize) {
    let give_up = Instant::now() + Duration::from_secs(300);
    while sim_room_count(http, sim_base).await < at_least {
        assert!(Instant::now() < give_up, "the pool was not seeded in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running `pexip-sdk dev` (embedded simulator, in-memory queues).
struct Dev {
    child: std::process::Child,
    base: String,
    sim_base: String,
}

impl Dev {
    async fn start(http: &reqwest::Client, pool: usize, env: &[(&str, &str)]) -> Self {
        let (port, sim_port) = (free_port(), free_port());
        let child = std::process::Command::new(BINARY)
            .args(["dev", "--port", &port.to_string()])
            .args(["--sim-port", &sim_port.to_string()])
            .envs(env.iter().copied())
            .env("ROOM_POOL_TARGET", pool.to_string())
            .env("RUST_LOG", "warn")
            .env_remove("AzureWebJobsStorage")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dev starts");
        let dev = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            sim_base: format!("http://127.0.0.1:{sim_port}"),
        };
        let give_up = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{}/", dev.base)).send().await.is_err() {
            assert!(Instant::now() < give_up, "dev did not start");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wait_for_rooms(http, &dev.sim_base, pool).await;
        dev
    }

    async fn add_fault(&self, http: &reqwest::Client, fault: &Fault) {
        let r = http
            .post(format!("{}/_sim/faults", self.sim_base))
            .json(fault)
            .send()
            .await
            .expect("fault added");
        assert!(r.status().is_success());
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_env(sim: &SimHandle, azurite: &Azurite, prefix: &str) -> AppEnv {
    AppEnv::new()
        .storage(azurite)
        .queue_prefix(prefix)
        .pexip(sim)
        .event_sink("pexip", "bench-sink")
        .set("ROOM_READY_DELAY_SECONDS", "0")
        .set("RUST_LOG", "warn")
}

/// Median and p90 of exec → first answer over `runs` starts of `serve`.
async fn exec_to_ready(azurite: &Azurite, http: &reqwest::Client, runs: usize) -> Latencies {
    let mut samples = Latencies::default();
    for i in 0..runs {
        let env = AppEnv::new()
            .storage(azurite)
            .queue_prefix(format!("ready{i}-"))
            .set("PEXIP_BASE_URL", "http://127.0.0.1:9")
            .set("PEXIP_USERNAME", "admin")
            .set("PEXIP_PASSWORD", "bench")
            .event_sink("pexip", "bench");
        let mut serve = ServeProcess::spawn(BINARY.as_ref(), env.pairs(), None);
        samples.push(serve.wait_ready(http, Duration::from_secs(30)).await);
    }
    samples
}

fn level_rows(rows: &mut Vec<Row>, what: &str, levels: &[Level], dev: bool) {
    for l in levels {
        let measure = format!(
            "{what} create, concurrency {}: p50 / p99 / creates per s",
            l.concurrency
        );
        let value = format!(
            "{} / {} ms / {:.0}{}{}",
            ms(l.latencies.percentile(0.5)),
            ms(l.latencies.percentile(0.99)),
            l.per_second,
            if l.failures > 0 {
                format!(" ({} failed)", l.failures)
            } else {
                String::new()
            },
            if l.fallbacks > 0 {
                format!(" ({} found the pool empty)", l.fallbacks)
            } else {
                String::new()
            }
        );
        if dev && l.concurrency == 64 {
            let p99 = l.latencies.percentile(0.99);
            rows.push(checked(
                measure,
                value,
                "p99 ≤ 20 ms",
                p99 <= Duration::from_millis(20),
            ));
        } else {
            rows.push(row(measure, value));
        }
    }
}

/// Sections named on the command line (`cargo bench --bench service -- dev gc`).
fn sections() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

/// Whether `section` was named.
fn named(section: &str) -> bool {
    sections().iter().any(|n| n == section)
}

/// Whether to run `section`: the default set (ready, dev, azurite, telemetry, gc, priority,
/// flood) runs when none is named.
fn wanted(section: &str) -> bool {
    sections().is_empty() || named(section)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let _ = PLAN.set(if full { &FULL } else { &SMOKE });
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    let target_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let logs = log_dir(&target_dir.join("tmp"), "bench-service");
    let azurite = Azurite::start().expect("Azurite starts");
    let mut rows = Vec::new();

    if wanted("ready") {
        let starts = plan().ready_starts;
        let ready = exec_to_ready(&azurite, &http, starts).await;
        let median = ready.percentile(0.5);
        rows.push(checked(
            format!("`serve` exec → first answer on `GET /` (median of {starts}; p90)"),
            format!("{} ms ({} ms)", ms(median), ms(ready.percentile(0.9))),
            "median ≤ 50 ms",
            median <= Duration::from_millis(50),
        ));
    }
    if wanted("dev") {
        rows.extend(dev_creates(&http).await);
    }
    let sim = testkit::sim::start().await;
    if wanted("azurite") {
        rows.extend(serve_creates(&http, &sim, &azurite, &logs).await);
    }
    if wanted("telemetry") {
        rows.extend(telemetry_cost(&http, &sim, &azurite, &logs).await);
    }
    if wanted("gc") {
        rows.push(gc_in_memory(&http, &sim).await);
    }
    // Opt-in: about four minutes, bound by the emulator, not by the service.
    if named("gc-azurite") {
        rows.push(gc_azurite(&http, &sim, &azurite, &logs).await);
    }
    if wanted("priority") {
        rows.extend(priority_under_refill(&http).await);
    }
    if wanted("flood") {
        rows.extend(creates_under_health_flood(&http).await);
    }

    let table = report(&rows, full, "service", started);
    println!("{table}");
    if full {
        let _ = std::fs::write(target_dir.join("bench-service.md"), &table);
    }
}

/// What Application Insights costs `serve`: create p50 at concurrency 1 and 16 against
/// Azurite, without and with `APPLICATIONINSIGHTS_CONNECTION_STRING` (a loopback fake of the
/// ingestion endpoint that accepts uploads unread: in Azure, decoding them is not this
/// machine's work), `RUST_LOG=info` as in Azure. Rounds in the order off, on, on, off
/// (repeated), so drift on a shared machine hits both sides alike; the ratio compares the
/// medians of each side's p50s.
async fn telemetry_cost(
    http: &reqwest::Client,
    sim: &SimHandle,
    azurite: &Azurite,
    logs: &std::path::Path,
) -> Vec<Row> {
    let ingestion = testkit::ingestion::Ingestion::start_discarding().await;
    let pool = plan().azurite_pool;
    let order = [false, true, true, false].repeat(plan().telemetry_repeats);
    let plan = &plan().azurite_levels[..2];
    let mut p50s: [Vec<Vec<Duration>>; 2] = Default::default();
    let mut peak_rss = [0.0f64; 2];
    for (round, on) in order.into_iter().enumerate() {
        let mut env = serve_env(sim, azurite, &format!("tel{round}-"))
            .set("RUST_LOG", "info")
            .set("ROOM_POOL_TARGET", pool.to_string());
        if on {
            let (trust, ca) = ingestion.trust_env();
            env = env
                .set(
                    "APPLICATIONINSIGHTS_CONNECTION_STRING",
                    ingestion.connection_string(),
                )
                .set(&trust, ca);
        }
        let log = logs.join(format!("telemetry-{round}.log"));
        let mut serve = ServeProcess::spawn(BINARY.as_ref(), env.pairs(), Some(&log));
        serve.wait_ready(http, Duration::from_secs(30)).await;
        let levels = levels(http, serve.url(), plan, &format!("TEL{round}")).await;
        let (peak, _) = serve.rss_mib().expect("serve RSS");
        serve.terminate(Duration::from_secs(60)).await;
        let side = usize::from(on);
        peak_rss[side] = peak_rss[side].max(peak);
        p50s[side].push(levels.iter().map(|l| l.latencies.percentile(0.5)).collect());
    }
    let uploads = ingestion.uploads();
    let mut rows = Vec::new();
    for (i, &(concurrency, _)) in plan.iter().enumerate() {
        let median = |side: usize| {
            let mut v: Vec<Duration> = p50s[side].iter().map(|round| round[i]).collect();
            v.sort();
            let mid = v.len() / 2;
            if v.len().is_multiple_of(2) {
                (v[mid - 1] + v[mid]) / 2
            } else {
                v[mid]
            }
        };
        let (off, on) = (median(0), median(1));
        let ratio = on.as_secs_f64() / off.as_secs_f64();
        rows.push(checked(
            format!("`serve` + Azurite create p50 at c={concurrency}: without → with Application Insights"),
            format!("{} ms → {} ms (×{ratio:.3})", ms(off), ms(on)),
            "≤ ×1.10",
            ratio <= 1.10,
        ));
    }
    rows.push(row(
        "`serve` peak RSS without → with Application Insights",
        format!(
            "{:.1} MiB → {:.1} MiB ({uploads} uploads received)",
            peak_rss[0], peak_rss[1]
        ),
    ));
    rows
}

/// `dev` mode creates at each level, and the peak RSS of the `dev` process.
async fn dev_creates(http: &reqwest::Client) -> Vec<Row> {
    let mut rows = Vec::new();
    let dev = Dev::start(http, plan().dev_pool, &[]).await;
    let levels = levels(http, &dev.base, &plan().dev_levels, "DEV").await;
    let peak = proc_rss_mib(dev.child.id()).map_or(f64::NAN, |(peak, _)| peak);
    level_rows(&mut rows, "`dev`", &levels, true);
    rows.push(row(
        "`dev` peak RSS (service + simulator) after its load",
        format!("{peak:.1} MiB"),
    ));
    rows
}

/// `serve` against Azurite: creates at each level, RSS idle and at peak.
async fn serve_creates(
    http: &reqwest::Client,
    sim: &SimHandle,
    azurite: &Azurite,
    logs: &std::path::Path,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let pool = plan().azurite_pool;
    let env = serve_env(sim, azurite, "load-").set("ROOM_POOL_TARGET", pool.to_string());
    let mut serve =
        ServeProcess::spawn(BINARY.as_ref(), env.pairs(), Some(&logs.join("serve.log")));
    serve.wait_ready(http, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, idle_rss) = serve.rss_mib().expect("serve RSS");
    let levels = levels(http, serve.url(), &plan().azurite_levels, "AZ").await;
    let (load_peak, _) = serve.rss_mib().expect("serve RSS");
    serve.terminate(Duration::from_secs(60)).await;
    level_rows(&mut rows, "`serve` + Azurite", &levels, false);
    rows.push(row(
        "`serve` RSS idle, after start",
        format!("{idle_rss:.1} MiB"),
    ));
    rows.push(checked(
        format!("`serve` peak RSS (VmHWM) after seeding {pool} rooms and the load above"),
        format!("{load_peak:.1} MiB"),
        "≤ 50 MB",
        load_peak * 1.048_576 <= 50.0,
    ));
    rows
}

/// Create `plan().gc_rooms` rooms of ours on the simulator and queue a deletion message for each.
async fn fill_for_gc(sim: &SimHandle, deletion: &Queue, label: &str) {
    use futures::StreamExt as _;
    // Created through a client of our own, outside the service's cap.
    let admin = testkit::sim::pexip_client(sim, &[("PEXIP_MAX_IN_FLIGHT", "16")]);
    deletion.ensure_exists().await.unwrap();
    futures::stream::iter(0..plan().gc_rooms)
        .for_each_concurrent(16, |i| {
            let admin = &admin;
            async move {
                let name = format!("vbv-gc{label}-{i}");
                admin
                    .create_conference_id(&testkit::sim::conference(&name))
                    .await
                    .expect("room created");
                let message = DeletionMessage::new(&name, "conference_ended", None);
                deletion
                    .send(&message.to_text(), Duration::ZERO)
                    .await
                    .expect("deletion queued");
            }
        })
        .await;
}

/// Fire one `gc_timer` on `base` with Pexip slowed down, and report on it.
async fn timed_gc(http: &reqwest::Client, sim: &SimHandle, base: &str, what: &str) -> Row {
    let rooms_before = sim.rooms().len();
    sim.reset_counters();
    sim.add_fault(Fault::latency(PEXIP_LATENCY_MS).path_prefix("/api/admin/"));
    let t = Instant::now();
    let logs = invoke_timer(http, base, "gc_timer")
        .await
        .expect("gc_timer runs");
    let wall = t.elapsed();
    sim.clear_faults();
    let max_in_flight = sim.counters().max_in_flight;
    let report: serde_json::Value = logs
        .iter()
        .find_map(|l| l.strip_prefix("gc: "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let deleted = report["deleted"].as_u64().unwrap_or(0);
    let gc_time = Duration::from_millis(report["duration_ms"].as_u64().unwrap_or(0));
    let rooms_after = sim.rooms().len();
    let gc_rooms = plan().gc_rooms;
    checked(
        format!(
            "GC drain ({what}): {gc_rooms} queued deletions, +{PEXIP_LATENCY_MS} ms Pexip latency, cap 5, one `gc_timer`"
        ),
        format!(
            "{deleted} deleted in {:.1} s ({:.0}/s; rooms {rooms_before} → {rooms_after}; timer answered in {:.1} s; Pexip max in flight {max_in_flight})",
            gc_time.as_secs_f64(),
            deleted as f64 / gc_time.as_secs_f64().max(0.001),
            wall.as_secs_f64()
        ),
        format!("{gc_rooms} inside one 10-minute run"),
        deleted as usize == gc_rooms
            && report["budget_exhausted"] == false
            && gc_time < Duration::from_secs(600),
    )
}

fn gc_env(sim: &SimHandle, prefix: &str) -> AppEnv {
    AppEnv::new()
        .queue_prefix(prefix)
        .pexip(sim)
        .event_sink("pexip", "bench-sink")
        .set("ROOM_POOL_TARGET", "0")
        .set("ROOM_DELETE_GRACE_SECONDS", "0")
        .set("RUST_LOG", "warn")
}

/// The GC with in-memory queues, served in this process exactly as `serve` wires it: the
/// drain rate Pexip's latency and the cap allow. (Azurite is no stand-in for Azure Storage's
/// throughput here: it scans every message on each queue operation; see `gc_azurite`.)
async fn gc_in_memory(http: &reqwest::Client, sim: &SimHandle) -> Row {
    use pexip_sdk::app::{App, AppSettings};
    let env = gc_env(sim, "gcmem-").to_env();
    let settings =
        AppSettings::from_env(&env, Some(pexip_sdk::config::StorageSettings::InMemory)).unwrap();
    let app = App::build(settings).unwrap();
    app.prepare_queues().await;
    fill_for_gc(sim, app.rooms.deletion_queue(), "mem").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    let row = timed_gc(http, sim, &base, "in-memory queues").await;
    let _ = stop.send(());
    let _ = server.await;
    row
}

/// The same with `serve` against Azurite.
async fn gc_azurite(
    http: &reqwest::Client,
    sim: &SimHandle,
    azurite: &Azurite,
    logs: &std::path::Path,
) -> Row {
    let prefix = "gcaz-";
    let queues = QueueService::connect(&azurite.settings()).unwrap();
    let deletion = queues.queue(&format!("{prefix}{DELETION_QUEUE}")).unwrap();
    fill_for_gc(sim, &deletion, "az").await;
    let env = gc_env(sim, prefix).storage(azurite);
    let mut serve = ServeProcess::spawn(BINARY.as_ref(), env.pairs(), Some(&logs.join("gc.log")));
    serve.wait_ready(http, Duration::from_secs(30)).await;
    let row = timed_gc(http, sim, serve.url(), "`serve` + Azurite").await;
    serve.terminate(Duration::from_secs(60)).await;
    row
}

/// A `dev` with 20 ms of Pexip latency and a pool for two runs of `plan().priority_creates`,
/// and the create latency of the first run (the quiet baseline), its refills landed.
async fn slow_dev_baseline(http: &reqwest::Client, tag: &str) -> (Dev, Level) {
    let creates = plan().priority_creates;
    let dev = Dev::start(http, 2 * creates + 50, &[]).await;
    dev.add_fault(
        http,
        &Fault::latency(PEXIP_LATENCY_MS).path_prefix("/api/admin/"),
    )
    .await;
    let quiet = create_load(http, &dev.base, PRIORITY_CONCURRENCY, creates, tag).await;
    // Let the replacements of those creates land, so both runs start alike.
    tokio::time::sleep(Duration::from_secs(3)).await;
    (dev, quiet)
}

/// Create latency with and without a bulk refill running, with 20 ms of Pexip latency.
async fn priority_under_refill(http: &reqwest::Client) -> Vec<Row> {
    let (creates, refill) = (plan().priority_creates, plan().bulk_refill);
    let (dev, quiet) = slow_dev_baseline(http, "QUIET").await;
    let rooms_before = sim_room_count(http, &dev.sim_base).await;
    let bulk = http
        .post(format!("{}/room/bulk?count={refill}", dev.base))
        .send()
        .await
        .expect("bulk create");
    assert_eq!(bulk.status(), 202);
    let busy = create_load(http, &dev.base, PRIORITY_CONCURRENCY, creates, "BUSY").await;
    // How far the refill got while the creates ran: rooms made meanwhile, less the
    // creates' own replacements. Below 500 means it ran for the whole measurement.
    let refilled = sim_room_count(http, &dev.sim_base)
        .await
        .saturating_sub(rooms_before)
        .saturating_sub(creates);
    let (q99, b99) = (
        quiet.latencies.percentile(0.99),
        busy.latencies.percentile(0.99),
    );
    let ratio = b99.as_secs_f64() / q99.as_secs_f64().max(1e-9);
    vec![
        row(
            format!(
                "`dev` create, concurrency {PRIORITY_CONCURRENCY}, +{PEXIP_LATENCY_MS} ms Pexip latency: p50 / p99"
            ),
            format!("{} / {} ms", ms(quiet.latencies.percentile(0.5)), ms(q99)),
        ),
        checked(
            format!(
                "… the same while a bulk refill of {refill} runs: p50 / p99 (refill progress when the creates ended)"
            ),
            format!(
                "{} / {} ms, p99 ×{ratio:.2} ({refilled} of {refill})",
                ms(busy.latencies.percentile(0.5)),
                ms(b99)
            ),
            "p99 within 2× of without",
            ratio <= 2.0,
        ),
    ]
}

/// What a deep-health flood did.
struct Flood {
    checks: usize,
    not_ok: usize,
    latencies: Latencies,
    took: Duration,
}

/// `GET /public/health?deep=true` from `FLOOD_CONCURRENCY` workers until at least `at_least`
/// were sent and `done` is set.
async fn health_flood(
    http: reqwest::Client,
    base: String,
    at_least: usize,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Flood {
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..FLOOD_CONCURRENCY)
        .map(|_| {
            let (http, base, sent, done) = (http.clone(), base.clone(), sent.clone(), done.clone());
            tokio::spawn(async move {
                let (mut latencies, mut not_ok) = (Latencies::default(), 0);
                while sent.fetch_add(1, Ordering::Relaxed) < at_least
                    || !done.load(Ordering::Relaxed)
                {
                    let t = Instant::now();
                    match http
                        .get(format!("{base}/public/health?deep=true"))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                        }
                        _ => not_ok += 1,
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, not_ok)
            })
        })
        .collect();
    let mut flood = Flood {
        checks: 0,
        not_ok: 0,
        latencies: Latencies::default(),
        took: Duration::ZERO,
    };
    for w in workers {
        let (l, n) = w.await.expect("flood worker");
        flood.latencies.extend(&l);
        flood.not_ok += n;
    }
    flood.checks = flood.latencies.len();
    flood.took = started.elapsed();
    flood
}

/// Create latency with 20 ms of Pexip latency, without and during a deep-health flood.
async fn creates_under_health_flood(http: &reqwest::Client) -> Vec<Row> {
    let (creates, checks) = (plan().priority_creates, plan().flood_checks);
    let (dev, quiet) = slow_dev_baseline(http, "FQUIET").await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = tokio::spawn(health_flood(
        http.clone(),
        dev.base.clone(),
        checks,
        done.clone(),
    ));
    let busy = create_load(http, &dev.base, PRIORITY_CONCURRENCY, creates, "FBUSY").await;
    done.store(true, Ordering::Relaxed);
    let flood = flood.await.expect("flood");
    let (q99, b99) = (
        quiet.latencies.percentile(0.99),
        busy.latencies.percentile(0.99),
    );
    let ratio = b99.as_secs_f64() / q99.as_secs_f64().max(1e-9);
    let failed = busy.failures + quiet.failures;
    vec![
        row(
            format!(
                "`dev` create, concurrency {PRIORITY_CONCURRENCY}, +{PEXIP_LATENCY_MS} ms Pexip latency, no flood: p50 / p99"
            ),
            format!("{} / {} ms", ms(quiet.latencies.percentile(0.5)), ms(q99)),
        ),
        checked(
            format!(
                "… the same during a flood of deep health checks at concurrency {FLOOD_CONCURRENCY} (≥ {checks}): p50 / p99 (checks, their p50 / p99, non-200)"
            ),
            format!(
                "{} / {} ms, p99 ×{ratio:.2} ({} checks in {:.1} s, {} / {} ms, {} non-200{})",
                ms(busy.latencies.percentile(0.5)),
                ms(b99),
                flood.checks,
                flood.took.as_secs_f64(),
                ms(flood.latencies.percentile(0.5)),
                ms(flood.latencies.percentile(0.99)),
                flood.not_ok,
                if failed > 0 {
                    format!(", {failed} creates failed")
                } else {
                    String::new()
                }
            ),
            "p99 within 2× of without",
            ratio <= 2.0 && failed == 0 && flood.not_ok == 0,
        ),
    ]
}
