//! What a caller can make the service do at once: timer runs, bulk creates, slow request
//! heads (issue 13, items 14, 15 and 19).

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Wait until the simulator serves at least one request (the first run is under way).
async fn until_pexip_is_busy(app: &TestApp) {
    while app.sim.counters().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `Logs` of a timer answer.
fn logs(answer: &Value) -> Vec<String> {
    answer["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

/// Issue 13, item 14: a second `gc_timer` while one runs answers 200 at once and does
/// nothing; the run in progress finishes its work.
#[tokio::test]
async fn a_timer_invoked_while_it_runs_is_skipped_with_a_200() {
    let app = TestApp::spawn(Options::default()).await;
    // Slow Pexip, so the first run (which fills the empty pool) is still going.
    app.sim
        .add_fault(pexip_sim::Fault::latency(500).path_prefix("/api/admin/"));
    let first = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url.clone());
        async move {
            let response = testkit::serve::timer_request(&http, &url, "gc_timer")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    });
    until_pexip_is_busy(&app).await;
    let second = logs(&app.invoke_timer("gc_timer").await);
    assert_eq!(
        second,
        ["gc_timer: skipped, the previous run is still going"]
    );
    let first = logs(&first.await.unwrap());
    assert!(first.iter().any(|l| l.starts_with("gc: ")), "{first:?}");
    assert!(first.iter().any(|l| l.starts_with("pool: ")), "{first:?}");
    // The other timer has a turn of its own.
    let metrics = logs(&app.invoke_timer("metrics_timer").await);
    assert!(
        metrics.iter().any(|l| l.starts_with("metrics: ")),
        "{metrics:?}"
    );
    // Once the run is over, the next one runs.
    let third = logs(&app.invoke_timer("gc_timer").await);
    assert!(third.iter().any(|l| l.starts_with("gc: ")), "{third:?}");
}

/// Issue 13, item 15: one bulk create at a time (409), and no more rooms asked for in an
/// hour than `BULK_CREATE_MAX_PER_HOUR` (429 with `Retry-After`).
#[tokio::test]
async fn bulk_creates_run_one_at_a_time_under_an_hourly_cap() {
    let app = TestApp::spawn(Options {
        pool_target: 0,
        env: vec![
            ("BULK_CREATE_MAX".into(), "5".into()),
            ("BULK_CREATE_MAX_PER_HOUR".into(), "8".into()),
        ],
        ..Options::default()
    })
    .await;
    app.sim
        .add_fault(pexip_sim::Fault::latency(300).path_prefix("/api/admin/"));
    let bulk = |count: usize| {
        app.http
            .post(app.at(&format!("/room/bulk?count={count}")))
            .send()
    };
    assert_eq!(bulk(5).await.unwrap().status(), 202);
    let busy = bulk(1).await.unwrap();
    assert_eq!(busy.status(), 409);
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["code"], "job_running");

    app.rooms.background_idle().await;
    assert_eq!(app.sim_room_count(), 5);
    let capped = bulk(5).await.unwrap();
    assert_eq!(capped.status(), 429);
    let retry_after: u64 = capped.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body: Value = capped.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // What is left of the hour is still usable.
    assert_eq!(bulk(3).await.unwrap().status(), 202);
    app.rooms.background_idle().await;
    assert_eq!(app.sim_room_count(), 8);
}

/// Issue 13, item 19: a client that sends half a request head and then nothing loses its
/// connection after the header read timeout instead of holding it for ever.
#[tokio::test(start_paused = true)]
async fn a_connection_that_never_finishes_its_request_head_is_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::spawn(Options::default()).await;
    let mut stream = tokio::net::TcpStream::connect(app.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /public/health HTTP/1.1\r\nHost: slow\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    // Paused time: the server's timer fires as soon as everything else is idle. The outer
    // timeout only turns "held for ever" into a failure instead of a hung test.
    let read = tokio::time::timeout(
        Duration::from_secs(24 * 3600),
        stream.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "the connection was held open");
    let waited = started.elapsed();
    assert!(
        waited >= pexip_sdk::server::HEADER_READ_TIMEOUT
            && waited < pexip_sdk::server::HEADER_READ_TIMEOUT * 2,
        "{waited:?}"
    );
}
