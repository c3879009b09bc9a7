//! Queue throughput against Azurite (Azure backend, Shared Key over loopback HTTP) and the
//! in-memory backend: messages per second for send, for receive-32 + delete (the GC's
//! drain) and for receive-1 + delete (the pool's allocate step), 16 concurrent workers.
//! Prints a Markdown table.
//!
//! `cargo bench --bench queue` runs it in full. Run without `--bench` (as `cargo test
//! --all-targets` does) it makes a quick smoke pass with few messages, so the benchmark
//! itself stays working.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pexip_sdk::queue::{Queue, QueueService};
use testkit::azurite::Azurite;
use testkit::unique_queue_name;

const WORKERS: usize = 16;
const HIDE: Duration = Duration::from_secs(300);

struct Row {
    backend: &'static str,
    send: f64,
    drain_batch: f64,
    drain_single: f64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let messages = if full { 3000 } else { 64 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let azurite = Azurite::start().expect("Azurite starts");
    let backends = [
        (
            "Azurite (Shared Key, http)",
            QueueService::connect(&azurite.settings()).expect("client"),
        ),
        ("in-memory", QueueService::in_memory()),
    ];
    let rows: Vec<Row> = backends
        .into_iter()
        .map(|(backend, service)| {
            runtime.block_on(async {
                // Warm up connections and the server's code paths.
                measure(&service, 64).await;
                let (send, drain_batch, drain_single) = measure(&service, messages).await;
                Row {
                    backend,
                    send,
                    drain_batch,
                    drain_single,
                }
            })
        })
        .collect();
    println!("\nqueue throughput, {messages} messages, {WORKERS} concurrent workers\n");
    println!("| backend | send msgs/s | receive(32)+delete msgs/s | receive(1)+delete msgs/s |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} |",
            row.backend, row.send, row.drain_batch, row.drain_single
        );
    }
}

/// Messages per second for: sending `n`, draining them 32 at a time, and (after sending
/// them again) draining them one at a time.
async fn measure(service: &QueueService, n: usize) -> (f64, f64, f64) {
    let queue = service.queue(&unique_queue_name("bench")).expect("name");
    queue.ensure_exists().await.expect("create");
    let send = rate(n, send_all(&queue, n)).await;
    let drain_batch = rate(n, drain(&queue, 32, n)).await;
    send_all(&queue, n).await;
    let drain_single = rate(n, drain(&queue, 1, n)).await;
    assert_eq!(queue.approximate_count().await.expect("count"), 0);
    (send, drain_batch, drain_single)
}

async fn rate(n: usize, work: impl Future<Output = ()>) -> f64 {
    let start = Instant::now();
    work.await;
    n as f64 / start.elapsed().as_secs_f64()
}

async fn send_all(queue: &Queue, n: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let queue = queue.clone();
            let next = next.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    queue
                        .send(r#"{"name":"vmr-bench-0000","id":1}"#, Duration::ZERO)
                        .await
                        .expect("send");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
}

/// Receive up to `batch` at a time and delete each, until `n` are gone.
async fn drain(queue: &Queue, batch: u8, n: usize) {
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let queue = queue.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while done.load(Ordering::Relaxed) < n {
                    let got = queue.receive(batch, HIDE).await.expect("receive");
                    if got.is_empty() {
                        break;
                    }
                    for message in &got {
                        queue.delete(&message.receipt).await.expect("delete");
                    }
                    done.fetch_add(got.len(), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    assert_eq!(
        done.load(Ordering::Relaxed),
        n,
        "every message drained once"
    );
}
