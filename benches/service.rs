//! Service benchmark (`cargo bench --bench service`): runs the release binary and prints a
//! Markdown table (also written to `target/bench-service.md`).
//!
//! - exec → first answer on `GET /` for `serve` (median of 30 starts; Azurite queues);
//! - `dev` mode create latency p50/p99 and creates per second at concurrency 1, 16 and 64;
//! - peak RSS of the `dev` process (its `VmHWM`) idle and after the load.
//!
//! Figures, not assertions: these machines are shared and noisy.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pexip_sdk::testkit::azurite::Azurite;

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Peak resident set size in MiB (`VmHWM`), and the current one (`VmRSS`).
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> Instant {
    loop {
        if http.get(format!("{base}/")).send().await.is_ok() {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Median exec → first answer of `serve`, over `runs` starts.
async fn exec_to_ready(runs: usize) -> (Duration, Duration) {
    let azurite = Azurite::shared().expect("Azurite");
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    for i in 0..runs {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let child = Command::new(BINARY)
            .arg("serve")
            .env_clear()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("AzureWebJobsStorage", azurite.connection_string())
            .env("QUEUE_NAME_PREFIX", format!("ready{i}-"))
            .env("PEXIP_BASE_URL", "http://127.0.0.1:9")
            .env("PEXIP_USERNAME", "admin")
            .env("PEXIP_PASSWORD", "bench")
            .env("EVENT_SINK_USERNAME", "pexip")
            .env("EVENT_SINK_PASSWORD", "bench")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _guard = Proc(child);
        let ready = wait_ready(&http, &base).await;
        samples.push(ready - started);
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.9))
}

struct Level {
    concurrency: usize,
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

async fn create_load(base: &str, concurrency: usize, total: usize, offset: usize) -> Level {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let http = http.clone();
        let next = next.clone();
        let base = base.to_owned();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let uui = hex::encode(format!("id&BENCH{}", offset + i));
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/room/create?uuiData={uui}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await;
                latencies.push(t.elapsed());
            }
        })
    });
    let mut all: Vec<Duration> = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    Level {
        concurrency,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        per_second: total as f64 / elapsed.as_secs_f64(),
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` this runs as a quick smoke check
    // that every step still works, with figures that mean nothing.
    let full = std::env::args().any(|a| a == "--bench");
    let (starts, pool, loads): (usize, usize, &[(usize, usize)]) = if full {
        (30, 1200, &[(1, 200), (16, 400), (64, 600)])
    } else {
        (2, 40, &[(1, 5), (4, 20)])
    };
    let (ready_p50, ready_p90) = exec_to_ready(starts).await;

    // dev mode with a pool big enough that every create is served from it.
    let port = free_port();
    let sim_port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(BINARY)
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--sim-port",
            &sim_port.to_string(),
        ])
        .env("ROOM_POOL_TARGET", pool.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _dev = Proc(child);
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    // Wait for the seeded pool.
    loop {
        let rooms: serde_json::Value = http
            .get(format!("http://127.0.0.1:{sim_port}/_sim/rooms"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if rooms.as_array().map_or(0, Vec::len) >= pool {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (idle_peak, _) = rss_mib(pid);
    let mut levels = Vec::new();
    let mut offset = 0;
    for &(concurrency, total) in loads {
        levels.push(create_load(&base, concurrency, total, offset).await);
        offset += total;
        // Let the background refills catch up so each level starts from a full pool.
        if full {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    let (load_peak, _) = rss_mib(pid);

    let mut table = String::new();
    table.push_str("| measure | value |\n|---|---|\n");
    table.push_str(&format!(
        "| exec → first answer on `GET /` (serve, median of 30) | {} ms (p90 {} ms) |\n",
        ms(ready_p50),
        ms(ready_p90)
    ));
    table.push_str(&format!(
        "| peak RSS of `dev` (service + simulator), pool seeded, idle | {idle_peak:.1} MiB |\n"
    ));
    table.push_str(&format!(
        "| peak RSS of `dev` after the create load | {load_peak:.1} MiB |\n"
    ));
    table.push_str("\n| dev mode creates | p50 | p99 | creates/s |\n|---|---|---|---|\n");
    for l in &levels {
        table.push_str(&format!(
            "| concurrency {} | {} ms | {} ms | {:.0} |\n",
            l.concurrency,
            ms(l.p50),
            ms(l.p99),
            l.per_second
        ));
    }
    println!("{table}");
    if full {
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-service.md");
        let _ = std::fs::write(out, &table);
    }
}
