//! Every line the service writes is filed by the Azure Functions host at the level the
//! service gave it (testkit::host_console replays the host's rule, with
//! `UseStdErrorStreamForErrorsOnly` on — a custom handler's default — and off).
//!
//! First the writer alone, on records made to trip the rule (an INFO line about failures, an
//! ERROR line with "warning" in it, multi-line text); then `dev` and `serve`, each in JSON and
//! text, through a whole lifecycle (start, timers, creates, event sink, GC, metrics, a Pexip
//! outage, SIGTERM) with everything at DEBUG: no line may be filed at another level.

use std::path::Path;
use std::time::Duration;

use pexip_sdk::telemetry::console::{Encoding, Record, Stream};
use testkit::azurite::Azurite;
use testkit::env::AppEnv;
use testkit::free_port;
use testkit::logs::Captured;
use testkit::serve::ServeProcess;
use testkit::{host_console, lifecycle};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");

/// Every line of `stdout` and `stderr` that the host would file at another level than the
/// record's own, with both settings of the host's flag. Panics on a stderr line that is not
/// a record (nothing else may go there). Returns the mismatches and the count of each level.
fn misfiled(stdout: &str, stderr: &str) -> (Vec<String>, [usize; 3]) {
    let mut wrong = Vec::new();
    let mut seen = [0; 3];
    for (stream, text) in [
        (host_console::Stream::Stdout, stdout),
        (host_console::Stream::Stderr, stderr),
    ] {
        for line in text.lines() {
            let Some(level) = host_console::own_level(line) else {
                assert_eq!(
                    stream,
                    host_console::Stream::Stdout,
                    "stderr carries only records: {line:?}"
                );
                continue;
            };
            let want = host_console::expected(&level);
            seen[want as usize] += 1;
            for errors_only in [true, false] {
                let got = host_console::classify(stream, line, errors_only);
                if got != want {
                    wrong.push(format!(
                        "{level} → {got:?} (errors_only {errors_only}): {line}"
                    ));
                }
            }
        }
    }
    (wrong, seen)
}

// --- The writer alone -----------------------------------------------------------------------

/// The console's choice of stream and rewriting, into two captures instead of the process's
/// stdout and stderr.
#[derive(Clone)]
struct InMemory {
    encoding: Encoding,
    stdout: Captured,
    stderr: Captured,
}

impl<'a> MakeWriter<'a> for InMemory {
    type Writer = Record<Captured>;
    fn make_writer(&'a self) -> Self::Writer {
        unreachable!("the formatter asks for a writer per record")
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        let level = *meta.level();
        let capture = match Stream::for_level(level) {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        Record::new(level, self.encoding, capture.clone())
    }
}

fn tricky_records() {
    tracing::trace!(detail = "trace", "a trace record");
    tracing::debug!("a debug record; 2 retries failed");
    tracing::info!(
        failures = 3,
        errors = 2,
        "3 deletions failed, errors seen: severe"
    );
    tracing::warn!(error = "upstream error\nsecond line", "retrying");
    tracing::error!(
        detail = "a warning sign",
        "request failed; WARNING text\nacross lines"
    );
}

#[test]
fn records_are_one_line_each_filed_at_their_own_level() {
    for encoding in [Encoding::Text, Encoding::Json] {
        let writer = InMemory {
            encoding,
            stdout: Captured::new(),
            stderr: Captured::new(),
        };
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(writer.clone());
        match encoding {
            Encoding::Text => {
                tracing::subscriber::with_default(builder.compact().finish(), tricky_records)
            }
            Encoding::Json => tracing::subscriber::with_default(
                builder.json().flatten_event(true).finish(),
                tricky_records,
            ),
        }
        let (stdout, stderr) = (writer.stdout.text(), writer.stderr.text());
        assert_eq!(
            stdout.lines().count(),
            3,
            "{encoding:?}: TRACE, DEBUG, INFO on stdout"
        );
        assert_eq!(
            stderr.lines().count(),
            2,
            "{encoding:?}: WARN, ERROR on stderr, one line each"
        );
        let (wrong, seen) = misfiled(&stdout, &stderr);
        assert!(wrong.is_empty(), "{encoding:?}: {wrong:#?}");
        assert_eq!(seen, [3, 1, 1]);
        if encoding == Encoding::Json {
            let error: serde_json::Value =
                serde_json::from_str(stderr.lines().nth(1).unwrap()).unwrap();
            assert_eq!(
                error["detail"], "a warning sign",
                "the JSON still says what was logged"
            );
        }
    }
}

// --- dev and serve through a lifecycle ------------------------------------------------------

/// Run `binary args` with `env` through the lifecycle (the simulator's control API at
/// `sim`), stop it with SIGTERM, and return (stdout, stderr).
async fn lifecycle_output(
    what: &str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    port: u16,
    sim: &str,
) -> (String, String) {
    let dir =
        std::env::temp_dir().join(format!("pexip-sdk-console-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut process = ServeProcess::spawn_split(Path::new(BINARY), &args, &env, port, &out, &err);
    let http = reqwest::Client::new();
    process.wait_ready(&http, Duration::from_secs(30)).await;
    let life = testkit::lifecycle::run(&http, process.url(), sim, None).await;
    assert!(
        life.create_statuses.iter().any(|s| *s >= 500),
        "the outage failed a create: {life:?}"
    );
    let status = process.terminate(Duration::from_secs(25)).await;
    assert!(status.success(), "{what}: {status}");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let output = (read(&out), read(&err));
    let _ = std::fs::remove_dir_all(&dir);
    output
}

fn check(what: &str, stdout: &str, stderr: &str) {
    let (wrong, [info, warn, error]) = misfiled(stdout, stderr);
    assert!(
        wrong.is_empty(),
        "{what}: {} lines misfiled: {wrong:#?}",
        wrong.len()
    );
    // The run must have produced every kind of line, or the check above proves little.
    assert!(
        info > 100 && warn > 0 && error > 0,
        "{what}: {info} info, {warn} warn, {error} error"
    );
    eprintln!(
        "host-console: {what}: {info} Information, {warn} Warning, {error} Error lines, none misfiled"
    );
}

async fn dev(format: &str) {
    let (port, sim_port) = (free_port(), free_port());
    let args = [
        "dev",
        "--port",
        &port.to_string(),
        "--sim-port",
        &sim_port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    let env = AppEnv::new()
        .extend(lifecycle::SETTINGS)
        .set("LOG_FORMAT", format)
        .set("RUST_LOG", "debug")
        .pairs()
        .to_vec();
    let (stdout, stderr) = lifecycle_output(
        &format!("dev-{format}"),
        args,
        env,
        port,
        &format!("http://127.0.0.1:{sim_port}"),
    )
    .await;
    check(&format!("dev {format}"), &stdout, &stderr);
}

async fn serve(format: &str) {
    let azurite = Azurite::shared().expect("Azurite");
    let port = free_port();
    let sim = lifecycle::simulator(port, "sink-secret-console").await;
    let env = lifecycle::serve_env(azurite, &sim, port, "sink-secret-console", format)
        .set("RUST_LOG", "debug")
        .pairs()
        .to_vec();
    let (stdout, stderr) = lifecycle_output(
        &format!("serve-{format}"),
        vec!["serve".into()],
        env,
        port,
        &sim.base_url(),
    )
    .await;
    check(&format!("serve {format}"), &stdout, &stderr);
}

#[tokio::test]
async fn dev_json_lines_are_filed_at_their_own_level() {
    dev("json").await;
}

#[tokio::test]
async fn dev_text_lines_are_filed_at_their_own_level() {
    dev("text").await;
}

#[tokio::test]
async fn serve_json_lines_are_filed_at_their_own_level() {
    serve("json").await;
}

#[tokio::test]
async fn serve_text_lines_are_filed_at_their_own_level() {
    serve("text").await;
}
