//! Application Insights telemetry, end to end: `serve` with `APPLICATIONINSIGHTS_CONNECTION_STRING`
//! pointing at a loopback fake of the ingestion endpoint (testkit::ingestion), through a whole
//! lifecycle (testkit::lifecycle: creates, event sink, GC, metrics, a Pexip outage), stopped
//! with SIGTERM; then the decoded envelopes are checked: requests named by route template with
//! the caller's trace continued, dependencies per Pexip and storage attempt (retries apart),
//! traces with their severities, the metrics' values, the cloud role, and no secret anywhere.
//!
//! Also: an ingestion endpoint that is down neither fails requests nor holds up the exit, and
//! without the setting nothing leaves the process (no exporter thread, no socket but loopback).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use pexip_sim::SimHandle;
use serde_json::Value;
use testkit::azurite::Azurite;
use testkit::free_port;
use testkit::ingestion::{INSTRUMENTATION_KEY, Ingestion};
use testkit::lifecycle::{self, Lifecycle, PATCHED_GUEST_PIN, PATCHED_HOST_PIN, POOL_TARGET};
use testkit::serve::ServeProcess;

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");
const SINK_PASSWORD: &str = "sink-secret-telemetry-4411";
const ROLE: &str = "func-pexip-telemetry-test";
/// The caller's W3C trace context on the first create.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

struct Stack {
    _azurite: &'static Azurite,
    azurite_port: u16,
    sim: SimHandle,
    env: Vec<(String, String)>,
    port: u16,
}

/// Azurite, the simulator and `serve`'s environment (with `extra` settings).
async fn stack(extra: &[(&str, String)]) -> Stack {
    let azurite = Azurite::shared().expect("Azurite");
    let port = free_port();
    let sim = lifecycle::simulator(port, SINK_PASSWORD).await;
    let env = lifecycle::serve_env(azurite, &sim, port, SINK_PASSWORD, "json")
        .extend(extra.iter().cloned())
        .pairs()
        .to_vec();
    Stack {
        _azurite: azurite,
        azurite_port: azurite.port(),
        sim,
        env,
        port,
    }
}

/// Start `serve` on `stack`, run the lifecycle, and return the process (still running) and
/// what the lifecycle did.
async fn run(stack: &Stack, what: &str) -> (ServeProcess, Lifecycle) {
    let dir = std::env::temp_dir().join(format!("pexip-sdk-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut process = ServeProcess::spawn_split(
        Path::new(BINARY),
        &["serve".to_owned()],
        &stack.env,
        stack.port,
        &dir.join("stdout"),
        &dir.join("stderr"),
    );
    let http = reqwest::Client::new();
    process.wait_ready(&http, Duration::from_secs(30)).await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    let life = testkit::lifecycle::run(
        &http,
        process.url(),
        &stack.sim.base_url(),
        Some(&traceparent),
    )
    .await;
    (process, life)
}

/// The names of `pid`'s threads (`/proc/PID/task/*/comm`, 15 characters at most).
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

fn of_type<'a>(envelopes: &'a [Value], base_type: &str) -> Vec<&'a Value> {
    envelopes
        .iter()
        .filter(|e| e["data"]["baseType"] == base_type)
        .collect()
}

fn op_id(envelope: &Value) -> &str {
    envelope["tags"]["ai.operation.id"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_lifecycle_reaches_application_insights_as_requests_dependencies_traces_and_metrics() {
    let ingestion = Ingestion::start().await;
    let (trust, ca) = ingestion.trust_env();
    let stack = stack(&[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            ingestion.connection_string(),
        ),
        ("WEBSITE_SITE_NAME", ROLE.to_owned()),
        (&trust, ca),
    ])
    .await;
    let (mut process, life) = run(&stack, "telemetry").await;
    let threads = thread_names(process.pid());
    assert!(
        threads.iter().any(|t| t.starts_with("OpenTelemetry")),
        "the exporter runs on its own threads: {threads:?}"
    );
    // SIGTERM: the process flushes what is buffered before it exits.
    let status = process.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}");

    assert!(ingestion.refused().is_empty(), "{:?}", ingestion.refused());
    let envelopes = ingestion.envelopes();
    let types: BTreeSet<&str> = envelopes
        .iter()
        .filter_map(|e| e["data"]["baseType"].as_str())
        .collect();
    // The decoded envelopes, for a person to read: the proof of what Azure would receive.
    let proof = Path::new(env!("CARGO_TARGET_TMPDIR")).join("telemetry-envelopes.json");
    std::fs::write(&proof, serde_json::to_string_pretty(&envelopes).unwrap()).unwrap();
    eprintln!(
        "telemetry: {} envelopes in {} uploads, types {types:?}; decoded in {}",
        envelopes.len(),
        ingestion.uploads(),
        proof.display()
    );
    for envelope in &envelopes {
        assert_eq!(envelope["iKey"], INSTRUMENTATION_KEY);
        assert_eq!(envelope["tags"]["ai.cloud.role"], ROLE, "{envelope}");
    }

    // Requests: one per invocation, named by method and route template only.
    let requests = of_type(&envelopes, "RequestData");
    let names: BTreeSet<&str> = requests
        .iter()
        .filter_map(|r| r["data"]["baseData"]["name"].as_str())
        .collect();
    eprintln!("telemetry: request names {names:?}");
    for name in [
        "POST /room/create",
        "GET /room/{name}",
        "PATCH /room/{name}",
        "POST /public/event_sink",
        "POST /gc_timer",
        "POST /metrics_timer",
    ] {
        assert!(names.contains(name), "{name} in {names:?}");
    }
    for request in &requests {
        let data = &request["data"]["baseData"];
        let text = data.to_string();
        assert!(
            !text.contains('?') && !text.contains("vbv-"),
            "no raw path or query: {text}"
        );
        assert!(data["duration"].as_str().is_some_and(|d| d.contains(':')));
    }
    let creates: Vec<&&Value> = requests
        .iter()
        .filter(|r| r["data"]["baseData"]["name"] == "POST /room/create")
        .collect();
    assert_eq!(
        creates.len(),
        life.create_statuses.len(),
        "one request per create"
    );
    let codes: Vec<String> = creates
        .iter()
        .map(|r| {
            r["data"]["baseData"]["responseCode"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        codes.contains(&"503".to_owned()) && codes.contains(&"200".to_owned()),
        "{codes:?}"
    );
    let failed = creates
        .iter()
        .find(|r| r["data"]["baseData"]["responseCode"] == "503")
        .unwrap();
    assert_eq!(
        failed["data"]["baseData"]["success"], false,
        "a 5xx is a failed request"
    );

    // The caller's trace is continued: same operation id, our request its child.
    let traced = creates
        .iter()
        .find(|r| op_id(r) == TRACE_ID)
        .expect("the create that came with a traceparent continues its trace");
    assert_eq!(traced["tags"]["ai.operation.parentId"], PARENT_SPAN);
    assert_eq!(traced["data"]["baseData"]["responseCode"], "200");
    assert_eq!(traced["tags"]["ai.operation.name"], "POST /room/create");
    let request_id = traced["data"]["baseData"]["id"].as_str().unwrap();

    // Dependencies of that create: storage (pool message) and the Pexip PATCH, children of it.
    let dependencies = of_type(&envelopes, "RemoteDependencyData");
    let pexip_target = format!(
        "127.0.0.1:{}",
        url::Url::parse(&stack.sim.base_url())
            .unwrap()
            .port()
            .unwrap()
    );
    let storage_target = format!("127.0.0.1:{}", stack.azurite_port);
    let of_create: Vec<&&Value> = dependencies
        .iter()
        .filter(|d| op_id(d) == TRACE_ID)
        .collect();
    let patch = of_create
        .iter()
        .find(|d| {
            d["data"]["baseData"]["name"] == "PATCH /api/admin/configuration/v1/conference/{id}/"
        })
        .unwrap_or_else(|| panic!("the tag update: {of_create:#?}"));
    let patch = &patch["data"]["baseData"];
    assert_eq!(patch["target"], pexip_target.as_str());
    assert_eq!(patch["resultCode"], "202", "Pexip answers a PATCH with 202");
    assert_eq!(patch["type"], "HTTP");
    assert_eq!(patch["success"], true);
    assert!(
        of_create
            .iter()
            .any(|d| d["tags"]["ai.operation.parentId"] == request_id),
        "dependencies are children of the request"
    );
    let storage: Vec<&str> = of_create
        .iter()
        .filter(|d| d["data"]["baseData"]["target"] == storage_target.as_str())
        .filter_map(|d| d["data"]["baseData"]["name"].as_str())
        .collect();
    assert!(
        storage.contains(&"DELETE /devstoreaccount1/{queue}/messages/{messageid}"),
        "the pool message was received and deleted: {storage:?}"
    );
    for dependency in &dependencies {
        let data = &dependency["data"]["baseData"];
        let text = data.to_string();
        assert!(!text.contains('?'), "no query string: {text}");
        assert!(
            !text.contains("popreceipt") && !text.contains("vbv-"),
            "{text}"
        );
    }
    // The outage: the PATCHes answered 503 are dependencies of their own, failed, then the
    // retry that worked.
    let patch_codes: Vec<&str> = dependencies
        .iter()
        .filter(|d| {
            d["data"]["baseData"]["name"] == "PATCH /api/admin/configuration/v1/conference/{id}/"
        })
        .filter_map(|d| d["data"]["baseData"]["resultCode"].as_str())
        .collect();
    assert!(
        patch_codes.iter().filter(|c| **c == "503").count() >= 2 && patch_codes.contains(&"500"),
        "retries are separate dependencies: {patch_codes:?}"
    );

    // Traces: log events with their severity, inside their request's operation.
    let traces = of_type(&envelopes, "MessageData");
    // Application Insights' SeverityLevel: 0 Verbose, 1 Information, 2 Warning, 3 Error.
    let severity_of = |message: &str| -> BTreeSet<u64> {
        traces
            .iter()
            .filter(|t| t["data"]["baseData"]["message"] == message)
            .filter_map(|t| t["data"]["baseData"]["severityLevel"].as_u64())
            .collect()
    };
    assert_eq!(
        severity_of("room allocated from the pool"),
        BTreeSet::from([1])
    );
    assert_eq!(
        severity_of("pexip request failed; retrying"),
        BTreeSet::from([2])
    );
    // tower-http's line for a 5xx answer is an ERROR.
    assert_eq!(severity_of("response failed"), BTreeSet::from([3]));
    assert!(
        traces.iter().any(|t| op_id(t) == TRACE_ID
            && t["data"]["baseData"]["message"] == "room allocated from the pool"),
        "the create's log events carry its operation id"
    );

    // Metrics: the gauges of the last metrics run, the counters, the create latency.
    let metrics = of_type(&envelopes, "MetricData");
    let values = |name: &str| -> Vec<(f64, Value)> {
        metrics
            .iter()
            .flat_map(|m| {
                m["data"]["baseData"]["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |p| (p, m))
            })
            .filter(|(p, _)| p["name"] == name)
            .map(|(p, m)| {
                (
                    p["value"].as_f64().unwrap(),
                    m["data"]["baseData"]["properties"].clone(),
                )
            })
            .collect()
    };
    let pool = values("pool_depth");
    assert_eq!(
        pool.last().map(|(v, _)| *v),
        Some(POOL_TARGET as f64),
        "the last metrics run saw the pool at its target: {pool:?}"
    );
    assert_eq!(values("poison_count").last().map(|(v, _)| *v), Some(0.0));
    let allocations: f64 = values("allocations").iter().map(|(v, _)| v).sum();
    let succeeded = life.create_statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        allocations, succeeded as f64,
        "every allocation counted once"
    );
    let unavailable: f64 = values("pexip_errors")
        .iter()
        .filter(|(_, props)| props["class"] == "unavailable")
        .map(|(v, _)| v)
        .sum();
    assert!(unavailable >= 2.0, "Pexip errors by class: {unavailable}");
    let latency_count: f64 = metrics
        .iter()
        .flat_map(|m| m["data"]["baseData"]["metrics"].as_array().unwrap())
        .filter(|p| p["name"] == "room_create_duration_ms")
        .filter_map(|p| p["count"].as_f64())
        .sum();
    assert_eq!(
        latency_count,
        life.create_statuses.len() as f64,
        "a latency per create"
    );

    // No secret left the process.
    let everything = serde_json::to_string(&envelopes).unwrap();
    let mut secrets: Vec<(String, String)> = vec![
        ("updated host PIN".into(), PATCHED_HOST_PIN.into()),
        ("updated guest PIN".into(), PATCHED_GUEST_PIN.into()),
        ("event sink password".into(), SINK_PASSWORD.into()),
        ("uuiData parameter".into(), "uuiData".into()),
    ];
    for (uui, id) in life.uui.iter().zip(&life.video_call_ids) {
        secrets.push(("raw uuiData".into(), uui.clone()));
        secrets.push(("video call id".into(), id.clone()));
    }
    secrets.extend(testkit::sim::secrets(&stack.sim));
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, value)| everything.contains(value.as_str()))
        .map(|(kind, _)| kind.as_str())
        .collect();
    assert!(leaked.is_empty(), "secrets in the telemetry: {leaked:?}");
    assert!(!everything.contains("eyJ"), "a JWT reached the telemetry");
}

#[tokio::test]
async fn an_ingestion_outage_fails_no_request_and_does_not_hold_up_the_exit() {
    let ingestion = Ingestion::start_failing().await;
    let (trust, ca) = ingestion.trust_env();
    let stack = stack(&[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            ingestion.connection_string(),
        ),
        (&trust, ca),
    ])
    .await;
    let (mut process, life) = run(&stack, "telemetry-down").await;
    assert_eq!(life.create_statuses[..2], [200, 200], "{life:?}");
    // The exporter retries an upload for up to 35 s; the exit flush gives it 5.
    let status = process.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
    assert!(ingestion.uploads() > 0, "the exporter did try");
    assert!(ingestion.envelopes().is_empty());
}

/// The remote addresses of `pid`'s TCP sockets (from /proc: its socket inodes, looked up in
/// the kernel's TCP tables).
fn remote_addresses(pid: u32) -> Vec<String> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut remotes = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && inodes.contains(fields[9]) {
                remotes.push(fields[2].to_owned());
            }
        }
    }
    remotes
}

/// A `/proc/net/tcp` address (`0100007F:1F90`, or 32 hex digits for IPv6) is loopback or
/// unconnected.
fn is_loopback_or_unset(address: &str) -> bool {
    let host = address.split(':').next().unwrap_or("");
    match host.len() {
        // 127.x.x.x in little-endian hex ends in 7F; 0.0.0.0 is a listener.
        8 => host.ends_with("7F") || host == "00000000",
        // ::1, ::, or ::ffff:127.x.x.x.
        32 => {
            host == "00000000000000000000000001000000"
                || host == "00000000000000000000000000000000"
                || (host.starts_with("0000000000000000FFFF0000") && host.ends_with("7F"))
        }
        _ => false,
    }
}

#[tokio::test]
async fn without_a_connection_string_nothing_leaves_the_process() {
    let stack = stack(&[]).await;
    let (mut process, life) = run(&stack, "telemetry-off").await;
    assert_eq!(life.create_statuses[0], 200);
    let threads = thread_names(process.pid());
    assert!(
        !threads
            .iter()
            .any(|t| t.starts_with("OpenTelemetry") || t.starts_with("reqwest-interna")),
        "no exporter thread: {threads:?}"
    );
    let remotes = remote_addresses(process.pid());
    assert!(
        !remotes.is_empty(),
        "the check sees the process's connections"
    );
    let elsewhere: Vec<&String> = remotes
        .iter()
        .filter(|a| !is_loopback_or_unset(a))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "connections beyond loopback: {elsewhere:?}"
    );
    let status = process.terminate(Duration::from_secs(25)).await;
    assert!(status.success(), "{status}");
}
