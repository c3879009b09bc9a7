//! Allocation across instances, proven from the simulator's journal (every write to every
//! room, in order) rather than from the end state:
//!
//! - with tagging PATCHes that fail and still land later (`late` faults: an error or a cut
//!   connection now, the write a moment after), no room ever carries two calls' tags;
//! - with several creates for the same video call at once on two instances, each call gets
//!   exactly one room, and every create for it is answered that room.
//!
//! A room may carry a call's tag without being its room: a tagging PATCH that failed and
//! landed later, or an owner overtaken while tagging. Such a room must never carry another
//! call's tag nor be answered to anyone, and the GC deletes it; both tests check that too.
//!
//! Two `pexip-sdk serve` processes (started like the Functions host starts them) share one
//! Azurite (queues and allocation records) and one simulator.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pexip_sim::{Fault, JournalKind, SimHandle};
use testkit::azurite::{Azurite, report};
use testkit::env::AppEnv;
use testkit::serve::{ServeProcess, invoke_timer, log_dir};

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");
const CONFERENCE: &str = "/api/admin/configuration/v1/conference/";

fn instance_env(sim: &SimHandle, azurite: &Azurite, prefix: &str) -> AppEnv {
    AppEnv::new()
        .storage(azurite)
        .queue_prefix(prefix)
        .pexip(sim)
        .event_sink("pexip", "allocation-sink")
        .set("ROOM_POOL_TARGET", "30")
        .set("ROOM_READY_DELAY_SECONDS", "0")
        // Quarantined rooms are deleted by the next GC run.
        .set("ROOM_DELETE_GRACE_SECONDS", "0")
        .set("RUST_LOG", "warn")
}

/// A simulator and two ready `serve` instances on one Azurite, the pool seeded.
struct Cluster {
    sim: SimHandle,
    instances: Vec<ServeProcess>,
    http: reqwest::Client,
}

impl Cluster {
    async fn start(name: &str) -> Self {
        let azurite = Azurite::shared().expect("Azurite");
        let sim = testkit::sim::start().await;
        let prefix = format!("{name}{}-", std::process::id());
        let env = instance_env(&sim, azurite, &prefix);
        let logs = log_dir(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), name);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .build()
            .unwrap();
        let mut instances: Vec<ServeProcess> = (0..2)
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
        invoke_timer(&http, instances[0].url(), "metrics_timer")
            .await
            .expect("the pool is seeded");
        Self {
            sim,
            instances,
            http,
        }
    }

    /// `POST /room/create` for `call` on instance `n`; the room's id, or the failure.
    async fn create(&self, n: usize, call: &str) -> Result<u64, String> {
        let base = self.instances[n % self.instances.len()].url();
        let response = self
            .http
            .post(format!(
                "{base}/room/create?uuiData={}",
                testkit::uui("id", call)
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{status}: {body}"));
        }
        assert_eq!(
            body["tag"],
            testkit::id_tag(call),
            "answered with the call's tag"
        );
        Ok(body["id"].as_u64().expect("an id"))
    }

    /// Every non-empty tag each room carried over its life, from the journal.
    fn tags_by_room(&self) -> HashMap<u64, BTreeSet<String>> {
        let mut tags: HashMap<u64, BTreeSet<String>> = HashMap::new();
        for entry in self.sim.journal() {
            if let Some(tag) = entry.tag_after.filter(|t| !t.is_empty()) {
                tags.entry(entry.room_id).or_default().insert(tag);
            }
        }
        tags
    }

    /// Run the GC; then every answered room must still be there and every room that carried
    /// a call's tag without being answered must be gone (it was quarantined).
    async fn rooms_set_aside_are_deleted(&self, answered: &BTreeSet<u64>) -> usize {
        let tagged: BTreeSet<u64> = self.tags_by_room().into_keys().collect();
        let set_aside: BTreeSet<u64> = tagged.difference(answered).copied().collect();
        invoke_timer(&self.http, self.instances[0].url(), "gc_timer")
            .await
            .expect("gc_timer runs");
        let present: BTreeSet<u64> = self.sim.rooms().into_iter().map(|r| r.id).collect();
        let lost: Vec<_> = answered.difference(&present).collect();
        assert!(lost.is_empty(), "answered rooms deleted: {lost:?}");
        let kept: Vec<_> = set_aside.intersection(&present).collect();
        assert!(kept.is_empty(), "rooms set aside but not deleted: {kept:?}");
        set_aside.len()
    }

    async fn stop(mut self) {
        for instance in &mut self.instances {
            let status = instance.terminate(Duration::from_secs(60)).await;
            assert!(status.success(), "graceful exit: {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_late_tagging_writes_no_room_ever_carries_two_calls() {
    const CREATES: usize = 500;
    const CONCURRENCY: usize = 16;
    let cluster = Arc::new(Cluster::start("late").await);
    // PATCHes that fail and land anyway: a gateway's 504 (retried by the client, every try
    // landing), a 500, a cut connection.
    for fault in [
        Fault::late(300, Some(504)).rate(0.10),
        Fault::late(200, Some(500)).rate(0.05),
        Fault::late(100, None).rate(0.03),
    ] {
        cluster
            .sim
            .add_fault(fault.method("PATCH").path_prefix(CONFERENCE));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (cluster, next) = (cluster.clone(), next.clone());
            tokio::spawn(async move {
                let mut answered = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= CREATES {
                        return answered;
                    }
                    let call = format!("LATE{i}");
                    let room = cluster.create(i, &call).await;
                    answered.push((call, room));
                }
            })
        })
        .collect();
    let mut answered: Vec<(String, Result<u64, String>)> = Vec::new();
    for worker in workers {
        answered.extend(worker.await.unwrap());
    }
    // Let every late write land before reading the history.
    cluster.sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let failed: Vec<&(String, Result<u64, String>)> =
        answered.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "creates failed: {failed:?}");
    let mut calls_by_room: HashMap<u64, Vec<&str>> = HashMap::new();
    for (call, room) in &answered {
        calls_by_room
            .entry(*room.as_ref().unwrap())
            .or_default()
            .push(call);
    }
    let shared: Vec<_> = calls_by_room.iter().filter(|(_, c)| c.len() > 1).collect();
    assert!(shared.is_empty(), "rooms answered to two calls: {shared:?}");
    let tags = cluster.tags_by_room();
    let two_tags: Vec<_> = tags.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(
        two_tags.is_empty(),
        "rooms that carried two calls: {two_tags:?}"
    );
    let answered_rooms: BTreeSet<u64> = calls_by_room.keys().copied().collect();
    let set_aside = cluster.rooms_set_aside_are_deleted(&answered_rooms).await;
    let late_writes = cluster
        .sim
        .journal()
        .iter()
        .filter(|e| e.kind == JournalKind::Updated)
        .count();
    report(&format!(
        "allocation: {CREATES} creates with late PATCHes over 2 instances; {} rooms tagged, {set_aside} set aside and deleted, {late_writes} tag writes, {} rooms ever existed",
        tags.len(),
        cluster
            .sim
            .journal()
            .iter()
            .filter(|e| e.kind == JournalKind::Created)
            .count()
    ));
    Arc::into_inner(cluster)
        .expect("the workers are done")
        .stop()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_for_one_call_on_two_instances_get_one_room() {
    const CALLS: usize = 50;
    const CREATES_PER_CALL: usize = 4;
    let cluster = Arc::new(Cluster::start("samecall").await);
    // Slow enough that the creates for one call overlap on both instances.
    cluster
        .sim
        .add_fault(Fault::latency(10).path_prefix("/api/admin/"));
    let started = Instant::now();
    let mut creates = Vec::new();
    for c in 0..CALLS {
        for k in 0..CREATES_PER_CALL {
            let cluster = cluster.clone();
            creates.push(tokio::spawn(async move {
                let call = format!("SAME{c}");
                let room = cluster.create(c + k, &call).await;
                (call, room)
            }));
        }
    }
    let mut answers: HashMap<String, Vec<u64>> = HashMap::new();
    for create in creates {
        let (call, room) = create.await.unwrap();
        answers
            .entry(call.clone())
            .or_default()
            .push(room.unwrap_or_else(|e| panic!("{call}: {e}")));
    }
    let elapsed = started.elapsed();
    let cluster = Arc::into_inner(cluster).expect("the creates are done");

    assert_eq!(answers.len(), CALLS);
    let mut rooms = BTreeSet::new();
    for (call, got) in &answers {
        assert_eq!(got.len(), CREATES_PER_CALL);
        assert!(
            got.iter().all(|id| *id == got[0]),
            "{call} was answered {got:?}"
        );
        rooms.insert(got[0]);
    }
    assert_eq!(rooms.len(), CALLS, "one room per call, none shared");
    // From the history: each call's tag went to its answered room, and any other room that
    // carried it carried no other call's tag (it was set aside; the GC deletes it below).
    let tags = cluster.tags_by_room();
    for (call, got) in &answers {
        let tag = testkit::id_tag(call);
        let carriers: Vec<u64> = tags
            .iter()
            .filter(|(_, t)| t.contains(&tag))
            .map(|(room, _)| *room)
            .collect();
        assert!(carriers.contains(&got[0]), "{call}: {carriers:?}");
        for room in carriers {
            assert_eq!(
                tags[&room].len(),
                1,
                "room {room} carried {:?}",
                tags[&room]
            );
        }
    }
    let set_aside = cluster.rooms_set_aside_are_deleted(&rooms).await;
    report(&format!(
        "allocation: {CALLS} calls × {CREATES_PER_CALL} creates over 2 instances in {:.1} s; {} rooms tagged, {set_aside} set aside and deleted",
        elapsed.as_secs_f64(),
        tags.len()
    ));
    cluster.stop().await;
}
