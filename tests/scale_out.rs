//! Scale-out: Azure Functions runs many copies of the handler against one pool. Four
//! `pexip-sdk serve` processes (started like the host starts them) share one Azurite (one
//! `QUEUE_NAME_PREFIX`) and one Pexip simulator; 2,000 creates with distinct `uuiData` are
//! spread over them concurrently. Every caller must get its own room, no room may reach two
//! callers, and after the timers run the pool must be back at its target with every other
//! room accounted for.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pexip_sdk::queue::{POOL_QUEUE, PoolMessage, QueueService};
use pexip_sim::SimHandle;
use testkit::azurite::{Azurite, report};
use testkit::env::AppEnv;
use testkit::serve::{ServeProcess, invoke_timer, log_dir};

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");
const INSTANCES: usize = 4;
const CREATES: usize = 2_000;
/// Creates in flight at once over all instances.
const CONCURRENCY: usize = 64;
const POOL_TARGET: usize = 40;

fn tag_of(call: usize) -> String {
    testkit::id_tag(&format!("SCALE{call}"))
}

fn uui_of(call: usize) -> String {
    testkit::uui("id", &format!("SCALE{call}"))
}

fn instance_env(sim: &SimHandle, azurite: &Azurite, prefix: &str) -> AppEnv {
    AppEnv::new()
        .storage(azurite)
        .queue_prefix(prefix)
        .pexip(sim)
        .event_sink("pexip", "scale-out-sink")
        .set("ROOM_POOL_TARGET", POOL_TARGET.to_string())
        // Replacements are visible at once, so the pool cycles under the load and the four
        // instances keep competing for the same messages.
        .set("ROOM_READY_DELAY_SECONDS", "0")
        .set("RUST_LOG", "warn")
}

/// What one caller got.
#[derive(Debug, Clone)]
struct Handed {
    id: u64,
    name: String,
    tag: String,
}

async fn create_all(http: &reqwest::Client, urls: &[String]) -> Vec<Handed> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, next, urls) = (http.clone(), next.clone(), urls.to_vec());
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let call = next.fetch_add(1, Ordering::Relaxed);
                    if call >= CREATES {
                        return got;
                    }
                    let base = &urls[call % urls.len()];
                    let response = http
                        .post(format!("{base}/room/create?uuiData={}", uui_of(call)))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let body: serde_json::Value = response.json().await.unwrap();
                    assert_eq!(status, 200, "call {call}: {body}");
                    got.push((
                        call,
                        Handed {
                            id: body["id"].as_u64().unwrap(),
                            name: body["name"].as_str().unwrap().to_owned(),
                            tag: body["tag"].as_str().unwrap().to_owned(),
                        },
                    ));
                }
            })
        })
        .collect();
    let mut by_call: Vec<Option<Handed>> = vec![None; CREATES];
    for worker in workers {
        for (call, handed) in worker.await.unwrap() {
            by_call[call] = Some(handed);
        }
    }
    by_call
        .into_iter()
        .map(|h| h.expect("every call answered"))
        .collect()
}

/// Names of every room in the pool queue (receives each message once; run when idle).
async fn pooled_names(queues: &QueueService, prefix: &str) -> Vec<String> {
    let pool = queues.queue(&format!("{prefix}{POOL_QUEUE}")).unwrap();
    let mut names = Vec::new();
    loop {
        let batch = pool.receive(32, Duration::from_secs(300)).await.unwrap();
        if batch.is_empty() {
            return names;
        }
        names.extend(
            batch
                .iter()
                .map(|m| PoolMessage::parse(&m.text).unwrap().name),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_hand_out_two_thousand_distinct_rooms_and_the_pool_returns_to_target() {
    let azurite = Azurite::shared().expect("Azurite");
    let sim = testkit::sim::start().await;
    let prefix = format!("scale{}-", std::process::id());
    let env = instance_env(&sim, azurite, &prefix);
    let logs = log_dir(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        "scale-out",
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();

    let mut instances: Vec<ServeProcess> = (0..INSTANCES)
        .map(|i| {
            ServeProcess::spawn(
                BINARY.as_ref(),
                env.pairs(),
                Some(&logs.join(format!("instance-{i}.log"))),
            )
        })
        .collect();
    for instance in &mut instances {
        instance.wait_ready(&http, Duration::from_secs(60)).await;
    }
    let urls: Vec<String> = instances.iter().map(|i| i.url().to_owned()).collect();

    // The host fires a timer on one instance at a time: it seeds the pool.
    invoke_timer(&http, &urls[0], "metrics_timer")
        .await
        .unwrap();
    assert_eq!(sim.rooms().len(), POOL_TARGET, "the pool is seeded");

    let started = Instant::now();
    let handed = create_all(&http, &urls).await;
    let load_time = started.elapsed();

    // Scale-in: SIGTERM lets each instance finish its background refills before it exits.
    for instance in &mut instances {
        let status = instance.terminate(Duration::from_secs(60)).await;
        assert!(status.success(), "graceful exit: {status}");
    }
    // The next timer runs land on a fresh instance.
    let mut timers =
        ServeProcess::spawn(BINARY.as_ref(), env.pairs(), Some(&logs.join("timers.log")));
    timers.wait_ready(&http, Duration::from_secs(60)).await;
    let metrics_logs = invoke_timer(&http, timers.url(), "metrics_timer")
        .await
        .unwrap();
    let gc_logs = invoke_timer(&http, timers.url(), "gc_timer").await.unwrap();

    // Every caller got its own room, tagged for its own call.
    let ids: HashSet<u64> = handed.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), CREATES, "every caller got a different room");
    for (call, h) in handed.iter().enumerate() {
        assert_eq!(h.tag, tag_of(call), "call {call} got {h:?}");
    }

    // On Pexip: each tagged room carries exactly one caller's tag, and it is the room that
    // caller was given; nothing else is tagged.
    let rooms = sim.rooms();
    let expected: HashMap<&str, u64> = handed.iter().map(|h| (h.tag.as_str(), h.id)).collect();
    let tagged: Vec<_> = rooms.iter().filter(|r| !r.tag.is_empty()).collect();
    assert_eq!(tagged.len(), CREATES, "one tagged room per caller");
    for room in &tagged {
        assert_eq!(
            expected.get(room.tag.as_str()),
            Some(&room.id),
            "room {} carries tag {} but was not handed to that caller",
            room.name,
            room.tag
        );
    }

    // The rest is the pool, exactly at its target: no room leaked, none left over.
    let queues = QueueService::connect(&azurite.settings()).unwrap();
    let pooled = pooled_names(&queues, &prefix).await;
    let untagged: HashSet<&str> = rooms
        .iter()
        .filter(|r| r.tag.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    let pooled_set: HashSet<&str> = pooled.iter().map(String::as_str).collect();
    assert_eq!(pooled.len(), pooled_set.len(), "no room is pooled twice");
    assert_eq!(
        untagged, pooled_set,
        "every untagged room is in the pool and every pooled room is untagged\nmetrics: {metrics_logs:?}\ngc: {gc_logs:?}"
    );
    assert_eq!(
        pooled.len(),
        POOL_TARGET,
        "the pool is back at its target\nmetrics: {metrics_logs:?}\ngc: {gc_logs:?}"
    );
    let handed_names: HashSet<&str> = handed.iter().map(|h| h.name.as_str()).collect();
    assert!(handed_names.is_disjoint(&pooled_set));

    let levelled: Vec<&String> = metrics_logs
        .iter()
        .chain(&gc_logs)
        .filter(|l| l.starts_with("pool"))
        .collect();
    report(&format!(
        "scale-out: {CREATES} creates over {INSTANCES} instances in {:.1} s ({:.0}/s); {} rooms on the simulator; timers: {levelled:?}",
        load_time.as_secs_f64(),
        CREATES as f64 / load_time.as_secs_f64(),
        rooms.len()
    ));
}
