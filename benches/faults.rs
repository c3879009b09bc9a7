//! Fault runs (`cargo bench --bench faults`, about two minutes): three `pexip-sdk serve`
//! processes (release build) share one Azurite and one Pexip simulator while creates with
//! distinct `uuiData` run against them at a steady concurrency, through one phase per fault:
//!
//! - none (baseline); one instance killed with SIGKILL mid-load and replaced;
//! - Azurite stopped for 4 s and restarted on the same port (its store is on disk, so the
//!   messages survive, as in a storage outage; see `Azurite::start_on_disk`);
//! - simulator faults on `/api/admin/`: latency, 429 with `Retry-After`, 5xx, "500 after
//!   create", dropped connections, tagging PATCHes that fail and land late anyway, and all of
//!   them at once.
//!
//! Every fifth successful call is repeated on another instance and must get the same room.
//! After the phases, calls that never got an answer are retried once (as a client would),
//! the instances stop, and a fresh instance takes the simulator's events: conferences start
//! and end in some of the rooms handed out, then it runs one `gc_timer` (GC, pool rebalance,
//! reconciler) with `LEAK_MIN_AGE_SECONDS=0`, so the rooms leaked or quarantined by the faults
//! are healed at once instead of an hour later. Then every room on the simulator must be
//! accounted for: in the pool, handed to a caller (carrying that caller's tag), or
//! persistent; and the simulator's journal (every write to every room, in order) must show
//! that no room ever carried two callers' tags, and that every room handed to a caller and
//! deleted since was deleted only after its conference ended.
//!
//! Prints a Markdown report (also written to `target/bench-faults.md`): requests by outcome
//! and p50/p99 latency per phase, rooms leaked and healed, rooms handed out twice. Exits
//! with status 1 when an invariant is broken (a room handed out twice, a room unaccounted
//! for, a repeated call answered with another room, a handed-out room deleted before its
//! conference ended).
//!
//! Under `cargo test --all-targets` (no `--bench`) the same run is a smoke pass of a few
//! seconds per phase in a debug build: every fault and every check, nothing written.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pexip_sdk::queue::{POOL_QUEUE, PoolMessage, QueueService};
use pexip_sim::{EventSinkTarget, Fault, JournalKind, SimHandle};
use testkit::azurite::Azurite;
use testkit::env::AppEnv;
use testkit::serve::{ServeProcess, invoke_timer, log_dir};
use testkit::stats::{Latencies, ms};

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");
const INSTANCES: usize = 3;
/// Creates in flight at once over all instances.
const CONCURRENCY: usize = 12;
/// Phase length and the moments faults strike within a phase.
struct Timing {
    phase: Duration,
    kill_after: Duration,
    outage_after: Duration,
    outage: Duration,
}

/// The full run (`cargo bench`): about two minutes.
const FULL: Timing = Timing {
    phase: Duration::from_secs(8),
    kill_after: Duration::from_secs(3),
    outage_after: Duration::from_secs(2),
    outage: Duration::from_secs(4),
};

/// The smoke pass `cargo test --all-targets` makes (no `--bench`): every phase and every
/// check, briefly, so the run keeps working and its invariants stay tested.
const SMOKE: Timing = Timing {
    phase: Duration::from_millis(1_500),
    kill_after: Duration::from_millis(500),
    outage_after: Duration::from_millis(300),
    outage: Duration::from_secs(1),
};
const POOL_TARGET: usize = 30;
const PERSISTENT_ROOMS: usize = 5;
const ADMIN: &str = "/api/admin/";
const SINK_PASSWORD: &str = "fault-run-sink";
/// One in this many rooms handed out gets a conference that ends before the GC runs.
const CONFERENCE_EVERY: usize = 10;

fn tag_of(call: usize) -> String {
    testkit::id_tag(&format!("FAULT{call}"))
}

fn uui_of(call: usize) -> String {
    testkit::uui("id", &format!("FAULT{call}"))
}

/// A room as a caller got it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Handed {
    id: u64,
    name: String,
    tag: String,
}

/// What the callers were told, over the whole run.
#[derive(Default)]
struct Book {
    /// The room each call got (its latest answer).
    handed: HashMap<usize, Handed>,
    /// The calls each room id was given to.
    calls_by_room: HashMap<u64, BTreeSet<usize>>,
    /// Calls whose every attempt so far failed.
    unanswered: BTreeSet<usize>,
    /// Calls answered with a room other than the one they got before.
    repeat_mismatches: usize,
}

/// Requests by outcome and their latencies, for one phase.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, usize>,
    latencies: Latencies,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.latencies.extend(&other.latencies);
    }

    fn total(&self) -> usize {
        self.outcomes.values().sum()
    }
}

struct Run {
    http: reqwest::Client,
    urls: RwLock<Vec<String>>,
    next_call: AtomicUsize,
    book: Mutex<Book>,
}

impl Run {
    fn url(&self, n: usize) -> String {
        let urls = self.urls.read().expect("urls lock");
        urls[n % urls.len()].clone()
    }

    /// One create; returns its outcome label and, on success, the room.
    async fn create(&self, call: usize, base: &str, tally: &mut Tally) -> Option<Handed> {
        let started = Instant::now();
        let result = self
            .http
            .post(format!("{base}/room/create?uuiData={}", uui_of(call)))
            .send()
            .await;
        let (label, handed) = match result {
            Err(_) => ("connection failed".to_owned(), None),
            Ok(response) => {
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if status == 200 {
                    let handed = Handed {
                        id: body["id"].as_u64().unwrap_or_default(),
                        name: body["name"].as_str().unwrap_or_default().to_owned(),
                        tag: body["tag"].as_str().unwrap_or_default().to_owned(),
                    };
                    ("200".to_owned(), Some(handed))
                } else {
                    let code = body["code"].as_str().unwrap_or("no envelope");
                    (format!("{status} {code}"), None)
                }
            }
        };
        tally.latencies.push(started.elapsed());
        *tally.outcomes.entry(label).or_default() += 1;
        let mut book = self.book.lock().expect("book lock");
        match &handed {
            Some(h) => {
                if let Some(before) = book.handed.insert(call, h.clone())
                    && before.id != h.id
                {
                    book.repeat_mismatches += 1;
                }
                book.calls_by_room.entry(h.id).or_default().insert(call);
                book.unanswered.remove(&call);
            }
            None => {
                if !book.handed.contains_key(&call) {
                    book.unanswered.insert(call);
                }
            }
        }
        handed
    }

    /// Creates until `deadline` with fresh calls; every fifth success is repeated on the
    /// next instance.
    async fn worker(self: Arc<Self>, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        while Instant::now() < deadline {
            let call = self.next_call.fetch_add(1, Ordering::Relaxed);
            let first = self.url(call);
            if self.create(call, &first, &mut tally).await.is_some() && call.is_multiple_of(5) {
                let other = self.url(call + 1);
                self.create(call, &other, &mut tally).await;
            }
        }
        tally
    }
}

/// Run the load for `duration` while `action` happens beside it.
async fn phase(run: &Arc<Run>, duration: Duration, action: impl Future<Output = ()>) -> Tally {
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| tokio::spawn(run.clone().worker(deadline)))
        .collect();
    action.await;
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.await.expect("worker"));
    }
    tally
}

fn instance_env(sim: &SimHandle, azurite: &Azurite, prefix: &str) -> AppEnv {
    AppEnv::new()
        .storage(azurite)
        .queue_prefix(prefix)
        .pexip(sim)
        .event_sink("pexip", SINK_PASSWORD)
        .set("ROOM_POOL_TARGET", POOL_TARGET.to_string())
        // Ended conferences and quarantined rooms are deleted by the next GC run, so the
        // accounting after recovery sees them gone.
        .set("ROOM_DELETE_GRACE_SECONDS", "0")
        // Pool rooms are visible at once, so the reconciler can list the whole pool.
        .set("ROOM_READY_DELAY_SECONDS", "0")
        .set("PEXIP_REQUEST_TIMEOUT_SECONDS", "5")
        // A create that died with its instance holds its call this long; the retries at the
        // end would wait it out.
        .set("ALLOCATION_CLAIM_TIMEOUT_SECONDS", "3")
        // Info, as in Azure: the instance logs name every room handed out, for a post-mortem.
        .set("RUST_LOG", "info")
}

fn sim_faults(name: &str) -> Vec<Fault> {
    let admin = |f: Fault| f.path_prefix(ADMIN);
    match name {
        "latency" => vec![admin(Fault::latency(200).rate(0.3))],
        "429" => vec![admin(Fault::status_with_retry_after(429, 1).rate(0.1))],
        "5xx" => vec![
            admin(Fault::status(503).rate(0.1)),
            admin(Fault::status(500).rate(0.02)),
        ],
        "after_create" => vec![admin(Fault::after_create().rate(0.3))],
        "drop" => vec![admin(Fault::drop_connection().rate(0.05))],
        // A gateway that gives up while the Management Node goes on: the PATCH fails (504
        // retried, a 500, a cut connection) and lands a moment later anyway.
        "late" => vec![
            admin(Fault::late(300, Some(504)).rate(0.1).method("PATCH")),
            admin(Fault::late(200, Some(500)).rate(0.05).method("PATCH")),
            admin(Fault::late(150, None).rate(0.03).method("PATCH")),
        ],
        "mixed" => vec![
            admin(Fault::latency(100).rate(0.2)),
            admin(Fault::status_with_retry_after(429, 1).rate(0.03)),
            admin(Fault::status(503).rate(0.03)),
            admin(Fault::after_create().rate(0.1)),
            admin(Fault::drop_connection().rate(0.02)),
            admin(Fault::late(300, Some(504)).rate(0.03).method("PATCH")),
        ],
        _ => Vec::new(),
    }
}

/// Names of every room in the pool queue (receives each message once, hiding it: run last).
/// Messages the reconciler just hid while listing the pool come back within seconds, so
/// this waits until it has seen as many as the queue holds.
async fn pooled_names(queues: &QueueService, prefix: &str) -> Vec<String> {
    let pool = queues.queue(&format!("{prefix}{POOL_QUEUE}")).unwrap();
    let held = pool.approximate_count().await.unwrap();
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut names = Vec::new();
    let mut seen = 0;
    loop {
        let batch = pool.receive(32, Duration::from_secs(600)).await.unwrap();
        seen += batch.len() as u64;
        if batch.is_empty() {
            if seen >= held || Instant::now() > give_up {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        names.extend(
            batch
                .iter()
                .filter_map(|m| PoolMessage::parse(&m.text).ok().map(|e| e.name)),
        );
    }
}

/// How many times the instances logged a room quarantined after a failed tagging PATCH.
fn quarantine_lines(logs: &Path) -> usize {
    std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .map(|text| text.matches("tagging failed; room quarantined").count())
        .sum()
}

/// A field of the JSON after `prefix` in one of a timer's log lines.
fn log_field(logs: &[String], prefix: &str, field: &str) -> u64 {
    logs.iter()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .and_then(|v| v[field].as_u64())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let timing = if full { &FULL } else { &SMOKE };
    let run_started = Instant::now();
    let mut azurite = Azurite::start_on_disk().expect("Azurite starts");
    let sim = testkit::sim::start().await;
    let prefix = format!("faults{}-", std::process::id());
    let env = instance_env(&sim, &azurite, &prefix);
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let logs = log_dir(&target_dir.join("tmp"), "faults");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Persistent rooms the service must never touch.
    let admin = testkit::sim::pexip_client(&sim, &[]);
    for i in 0..PERSISTENT_ROOMS {
        admin
            .create_conference(&testkit::sim::conference(&format!("test_fault_{i}")))
            .await
            .unwrap();
    }

    let mut spawned = 0;
    let mut spawn = |name: &str| {
        spawned += 1;
        ServeProcess::spawn(
            BINARY.as_ref(),
            env.pairs(),
            Some(&logs.join(format!("{name}-{spawned}.log"))),
        )
    };
    let mut list = Vec::new();
    for i in 0..INSTANCES {
        let mut p = spawn(&format!("instance{i}"));
        p.wait_ready(&http, Duration::from_secs(30)).await;
        list.push(p);
    }
    let run = Arc::new(Run {
        http: http.clone(),
        urls: RwLock::new(list.iter().map(|p| p.url().to_owned()).collect()),
        next_call: AtomicUsize::new(0),
        book: Mutex::new(Book::default()),
    });
    invoke_timer(&http, &run.url(0), "metrics_timer")
        .await
        .expect("the pool is seeded");
    let instances = Arc::new(tokio::sync::Mutex::new(list));

    let mut phases: Vec<(String, Tally)> = Vec::new();

    // Baseline.
    phases.push((
        "no faults".into(),
        phase(&run, timing.phase, async {}).await,
    ));

    // One instance dies without warning mid-load; the host starts another.
    let replacement = spawn("replacement");
    let kill = {
        let (run, instances) = (run.clone(), instances.clone());
        let http = http.clone();
        async move {
            tokio::time::sleep(timing.kill_after).await;
            let mut instances = instances.lock().await;
            instances[0].kill().await;
            let mut fresh = replacement;
            fresh.wait_ready(&http, Duration::from_secs(30)).await;
            run.urls.write().expect("urls lock")[0] = fresh.url().to_owned();
            instances[0] = fresh;
        }
    };
    phases.push((
        "one instance killed (SIGKILL) and replaced".into(),
        phase(&run, timing.phase, kill).await,
    ));

    // Storage outage: Azurite stops for 4 s and comes back with its data.
    let outage = async {
        tokio::time::sleep(timing.outage_after).await;
        tokio::task::block_in_place(|| azurite.stop());
        tokio::time::sleep(timing.outage).await;
        tokio::task::block_in_place(|| azurite.restart()).expect("Azurite restarts");
    };
    phases.push((
        format!(
            "Azurite stopped {} s, restarted",
            timing.outage.as_secs_f64()
        ),
        phase(&run, timing.phase, outage).await,
    ));

    for (name, label) in [
        ("latency", "Pexip latency +200 ms on 30 %"),
        ("429", "Pexip 429 + Retry-After: 1 on 10 %"),
        ("5xx", "Pexip 503 on 10 %, 500 on 2 %"),
        (
            "after_create",
            "Pexip \"500 after create\" on 30 % of creates",
        ),
        ("drop", "Pexip drops 5 % of connections"),
        (
            "late",
            "tagging PATCHes fail (504 10 %, 500 5 %, cut 3 %) and land 150-300 ms later",
        ),
        ("mixed", "all Pexip faults at once"),
    ] {
        sim.clear_faults();
        for fault in sim_faults(name) {
            sim.add_fault(fault);
        }
        phases.push((label.into(), phase(&run, timing.phase, async {}).await));
    }
    sim.clear_faults();

    // Callers whose create failed try once more, as a client would.
    let unanswered: Vec<usize> = run
        .book
        .lock()
        .expect("book lock")
        .unanswered
        .iter()
        .copied()
        .collect();
    // All at once: a call whose earlier create died with its instance (or lost its storage)
    // waits out the claim timeout before it is taken over.
    let retries = unanswered.iter().enumerate().map(|(i, call)| {
        let run = run.clone();
        async move {
            let mut tally = Tally::default();
            let base = run.url(i);
            run.create(*call, &base, &mut tally).await;
            tally
        }
    });
    let mut retry = Tally::default();
    for tally in futures::future::join_all(retries).await {
        retry.merge(tally);
    }
    phases.push(("retry of unanswered calls (no faults)".into(), retry));

    // Recovery: the instances stop (their refills finish), a fresh one takes the events of
    // conferences in some handed-out rooms, then runs the GC timer.
    for instance in instances.lock().await.iter_mut() {
        instance.terminate(Duration::from_secs(60)).await;
    }
    // Late writes still in flight land before anything is judged.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rooms_before_heal = sim.rooms().len();
    let healer_env = env.clone().set("LEAK_MIN_AGE_SECONDS", "0");
    let mut healer = ServeProcess::spawn(
        BINARY.as_ref(),
        healer_env.pairs(),
        Some(&logs.join("healer.log")),
    );
    healer.wait_ready(&http, Duration::from_secs(30)).await;
    let mut sink = EventSinkTarget::new(format!("{}/public/event_sink", healer.url()));
    sink.username = Some("pexip".into());
    sink.password = Some(SINK_PASSWORD.into());
    sim.add_event_sink(sink);
    let conferences = {
        let book = run.book.lock().expect("book lock");
        let mut names: Vec<String> = book.handed.values().map(|h| h.name.clone()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .step_by(CONFERENCE_EVERY)
            .collect::<Vec<_>>()
    };
    for name in &conferences {
        sim.start_conference(name, 2, 1)
            .await
            .expect("a conference starts in a handed-out room");
        sim.end_conference(name).await.expect("and ends");
    }
    let gc_logs = invoke_timer(&http, healer.url(), "gc_timer")
        .await
        .expect("gc_timer runs");
    healer.terminate(Duration::from_secs(60)).await;

    // Accounting.
    let rooms = sim.rooms();
    let queues = QueueService::connect(&azurite.settings()).unwrap();
    let pooled = pooled_names(&queues, &prefix).await;
    let pooled_set: HashSet<&str> = pooled.iter().map(String::as_str).collect();
    let book = run.book.lock().expect("book lock");
    let handed_ids: HashMap<u64, &Handed> = book.handed.values().map(|h| (h.id, h)).collect();
    let unanswered_tags: HashSet<String> = book.unanswered.iter().map(|c| tag_of(*c)).collect();

    let mut persistent = 0;
    let mut handed = 0;
    let mut tagged_for_unanswered = 0;
    let mut in_pool = 0;
    let mut unaccounted = Vec::new();
    let mut twice = 0;
    let mut violations: Vec<String> = Vec::new();
    for room in &rooms {
        if room.name.starts_with("test_") {
            persistent += 1;
        } else if let Some(h) = handed_ids.get(&room.id) {
            handed += 1;
            // Handed out, so it must carry its caller's tag and be out of the pool.
            if room.tag != h.tag || pooled_set.contains(room.name.as_str()) {
                twice += 1;
                violations.push(format!(
                    "room {} ({}) answered with tag {:?} now carries {:?}, pooled: {}",
                    room.id,
                    room.name,
                    h.tag,
                    room.tag,
                    pooled_set.contains(room.name.as_str())
                ));
            }
        } else if unanswered_tags.contains(&room.tag) {
            // Tagged for a call whose every create failed: that call's next try gets it.
            tagged_for_unanswered += 1;
        } else if pooled_set.contains(room.name.as_str()) && room.tag.is_empty() {
            in_pool += 1;
        } else {
            unaccounted.push(format!("{} (tag {:?})", room.name, room.tag));
        }
    }
    let names: HashSet<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
    let dangling = pooled
        .iter()
        .filter(|n| !names.contains(n.as_str()))
        .count();
    // A room answered to two different calls.
    for (id, calls) in &book.calls_by_room {
        if calls.len() > 1 {
            twice += 1;
            violations.push(format!("room {id} answered to calls {calls:?}"));
        }
    }
    // From the journal: a room that ever carried two callers' tags, and handed-out rooms
    // deleted while live or before any conference of theirs ended.
    let journal = sim.journal();
    let mut tags_by_room: HashMap<u64, BTreeSet<String>> = HashMap::new();
    for entry in &journal {
        if let Some(tag) = entry.tag_after.as_ref().filter(|t| !t.is_empty()) {
            tags_by_room
                .entry(entry.room_id)
                .or_default()
                .insert(tag.clone());
        }
    }
    for (id, tags) in &tags_by_room {
        if tags.len() > 1 {
            twice += 1;
            violations.push(format!("room {id} carried the tags {tags:?}"));
        }
    }
    let present: HashSet<u64> = rooms.iter().map(|r| r.id).collect();
    let mut handed_deleted = 0;
    let mut deleted_too_early = Vec::new();
    for id in handed_ids.keys() {
        let history: Vec<_> = journal.iter().filter(|e| e.room_id == *id).collect();
        let Some(deleted_at) = history.iter().position(|e| e.kind == JournalKind::Deleted) else {
            if !present.contains(id) {
                deleted_too_early.push(format!("room {id} vanished without a journalled delete"));
            }
            continue;
        };
        handed_deleted += 1;
        let before = &history[..deleted_at];
        let ended = before
            .iter()
            .rposition(|e| e.kind == JournalKind::ConferenceEnded);
        let started = before
            .iter()
            .rposition(|e| e.kind == JournalKind::ConferenceStarted);
        let ended_first = matches!((ended, started), (Some(e), Some(s)) if e > s);
        if !ended_first {
            deleted_too_early.push(format!(
                "room {id} handed to a caller was deleted {}",
                if started.is_some() {
                    "while its conference was live"
                } else {
                    "without a conference that ended"
                }
            ));
        }
    }
    violations.extend(deleted_too_early.iter().cloned());
    let quarantined = quarantine_lines(&logs);
    let leaks_found = log_field(&gc_logs, "reconcile: ", "leaks");
    let leaks_healed = log_field(&gc_logs, "reconcile: ", "deleted");
    let trimmed = log_field(&gc_logs, "pool: ", "trimmed");
    let topped_up = log_field(&gc_logs, "pool: ", "created");

    let mut total = Tally::default();
    let mut out = String::new();
    out.push_str("| phase | requests | outcomes | p50 ms | p99 ms |\n|---|---|---|---|---|\n");
    for (name, tally) in &phases {
        let outcomes: Vec<String> = tally
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            tally.total(),
            outcomes.join(", "),
            ms(tally.latencies.percentile(0.5)),
            ms(tally.latencies.percentile(0.99)),
        ));
    }
    for (_, tally) in phases {
        total.merge(tally);
    }
    let outcomes: Vec<String> = total
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    out.push_str(&format!(
        "| **all** | {} | {} | {} | {} |\n\n",
        total.total(),
        outcomes.join(", "),
        ms(total.latencies.percentile(0.5)),
        ms(total.latencies.percentile(0.99)),
    ));
    let still_unanswered = book.unanswered.len();
    out.push_str("| accounting after recovery | value |\n|---|---|\n");
    for (what, value) in [
        ("calls answered", book.handed.len().to_string()),
        (
            "calls never answered (after one retry)",
            still_unanswered.to_string(),
        ),
        (
            "rooms on the simulator before the GC timer",
            rooms_before_heal.to_string(),
        ),
        ("rooms on the simulator after", rooms.len().to_string()),
        ("  handed to a caller, carrying its tag", handed.to_string()),
        (
            "  tagged for a call whose creates all failed (its next try gets it)",
            tagged_for_unanswered.to_string(),
        ),
        ("  in the pool", in_pool.to_string()),
        ("  persistent", persistent.to_string()),
        (
            "  unaccounted for (must be 0)",
            unaccounted.len().to_string(),
        ),
        ("pool entries whose room is gone", dangling.to_string()),
        (
            "rooms leaked by the faults (found by the reconciler)",
            leaks_found.to_string(),
        ),
        (
            "leaked rooms healed (deleted) by the reconciler",
            leaks_healed.to_string(),
        ),
        ("surplus pool rooms trimmed", trimmed.to_string()),
        ("pool rooms created by the top-up", topped_up.to_string()),
        (
            "rooms handed out, then deleted by the GC after their conference ended",
            format!("{handed_deleted} (of {} conferences)", conferences.len()),
        ),
        (
            "  handed-out rooms deleted while live or with no ended conference (must be 0)",
            deleted_too_early.len().to_string(),
        ),
        (
            "tagging PATCHes that failed and may land: rooms quarantined, never pooled again",
            quarantined.to_string(),
        ),
        (
            "rooms handed out twice or tagged for two calls (journal; must be 0)",
            twice.to_string(),
        ),
        (
            "repeated calls answered with another room (must be 0)",
            book.repeat_mismatches.to_string(),
        ),
        (
            "wall time",
            format!("{:.0} s", run_started.elapsed().as_secs_f64()),
        ),
    ] {
        out.push_str(&format!("| {what} | {value} |\n"));
    }
    println!("{out}");
    if !unaccounted.is_empty() {
        println!("unaccounted rooms: {unaccounted:?}");
    }
    for v in &violations {
        println!("handed out twice: {v}");
    }
    println!("instance logs: {}", logs.display());
    if full {
        let _ = std::fs::write(target_dir.join("bench-faults.md"), &out);
    }
    let broken = twice > 0
        || !unaccounted.is_empty()
        || !deleted_too_early.is_empty()
        || book.repeat_mismatches > 0
        || persistent != PERSISTENT_ROOMS;
    if broken {
        eprintln!("fault run: an invariant is broken");
        std::process::exit(1);
    }
}
