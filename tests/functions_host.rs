//! Plays the Azure Functions host against the real binary: start it as host.json says (working
//! directory, arguments, the host's environment), wait for the readiness ping, forward HTTP
//! requests with the host's headers, invoke the timers with the documented payloads, and stop
//! it with SIGTERM. Queues are Azurite (serve refuses in-memory), Pexip is the simulator.
//!
//! The same play runs twice: on the repository (what `func start` runs) and on the unzipped
//! deployment package that `scripts/package` writes (what Azure runs). The package is built
//! from the debug binary the tests already have: what is under test is the layout, and a
//! release build would double CI's build time.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pexip_sdk::functions::AppLayout;
use pexip_sim::EventSinkTarget;
use serde_json::{Value, json};
use testkit::azurite::Azurite;
use testkit::env::AppEnv;
use testkit::free_port;

const APP_ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The binary under test. host.json names `target/release/pexip-sdk`; tests run the build
/// cargo made for them, with the arguments and working directory host.json gives.
const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");

struct Handler(Child);

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The handler as the host starts it from `root`: host.json's arguments and working
/// directory, the host's environment, and `executable` as the program.
fn host_command_in<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    root: &Path,
    executable: &Path,
    env: &[(K, V)],
) -> Command {
    let layout = AppLayout::load(root).unwrap();
    let mut command = Command::new(executable);
    command
        .args(&layout.host.arguments)
        .current_dir(root.join(&layout.host.working_directory))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// The handler started from the repository. host.json names `target/release/pexip-sdk`;
/// tests run the build cargo made for them.
fn host_command<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)]) -> Command {
    let layout = AppLayout::load(Path::new(APP_ROOT)).unwrap();
    assert_eq!(layout.host.executable, "target/release/pexip-sdk");
    host_command_in(Path::new(APP_ROOT), Path::new(BINARY), env)
}

/// Poll `GET /` like the host's `IsWorkerReady`: any HTTP answer means ready.
async fn wait_ready(http: &reqwest::Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/")).send().await {
            assert!(r.status().is_success());
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the handler exited before it was ready: {status}");
        }
        assert!(Instant::now() < deadline, "handler not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The headers the host adds to a forwarded request.
fn forwarded(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("x-azure-functions-hostversion", "4.1037.0.0")
        .header(
            "x-azure-functions-invocationid",
            uuid::Uuid::new_v4().to_string(),
        )
        .header("user-agent", "Azure-Functions-Host/4.1037.0.0")
        .header("x-functions-key", "function-key-checked-by-the-host")
        .header("x-forwarded-for", "203.0.113.7:50312")
}

fn timer_payload(name: &str, status: Value, past_due: bool) -> Value {
    json!({"Data": {"timer": {"Schedule": {"AdjustForDST": true}, "ScheduleStatus": status, "IsPastDue": past_due}},
           "Metadata": {"sys": {"MethodName": name, "UtcNow": "2026-11-27T10:00:00.0000001Z", "RandGuid": uuid::Uuid::new_v4().to_string()}}})
}

#[tokio::test]
async fn the_host_can_start_forward_to_invoke_and_stop_the_handler() {
    play_the_host(Path::new(APP_ROOT), Path::new(BINARY)).await;
}

/// Start the handler of the app at `root` (with `executable`), then the readiness ping, the
/// timers, a forwarded create and a room's whole life, and SIGTERM.
async fn play_the_host(root: &Path, executable: &Path) {
    let azurite = Azurite::shared().expect("Azurite");
    let sim = testkit::sim::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut sink = EventSinkTarget::new(format!("{base}/public/event_sink"));
    sink.username = Some("pexip".into());
    sink.password = Some("sink-secret".into());
    sim.add_event_sink(sink);

    let env = AppEnv::new()
        .set("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .set("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
        .set(
            "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
            uuid::Uuid::new_v4().to_string(),
        )
        .set("FUNCTIONS_APP_ROOT_PATH", root.display().to_string())
        .set("FUNCTIONS_WORKER_RUNTIME", "custom")
        .storage(azurite)
        // Both plays run at once in this binary: each needs queues of its own.
        .queue_prefix(format!(
            "host{}-",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ))
        .pexip(&sim)
        .event_sink("pexip", "sink-secret")
        .set("ROOM_POOL_TARGET", "3")
        .set("ROOM_READY_DELAY_SECONDS", "0")
        .set("ROOM_DELETE_GRACE_SECONDS", "0")
        .set("LOG_FORMAT", "json")
        // The host's function keys are the gate here (no Entra ID tenant in tests).
        .set("AUTH_DISABLED", "true");
    let mut handler = Handler(
        host_command_in(root, executable, env.pairs())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &base, &mut handler.0).await;

    // Timers, with each payload variant the host sends.
    let statuses = [
        json!({"Last": "2026-11-27T09:50:00.0096035+00:00", "Next": "2026-11-27T10:00:00+00:00", "LastUpdated": "2026-11-27T09:50:00.0096035+00:00"}),
        json!({"Last": "0001-01-01T00:00:00+00:00", "Next": "2026-11-27T10:00:00+00:00", "LastUpdated": "0001-01-01T00:00:00+00:00"}),
        Value::Null,
    ];
    for name in ["metrics_timer", "gc_timer"] {
        for (i, status) in statuses.iter().enumerate() {
            let response = http
                .post(format!("{base}/{name}"))
                .header("content-type", "application/json")
                .header(
                    "x-azure-functions-invocationid",
                    uuid::Uuid::new_v4().to_string(),
                )
                .header("x-azure-functions-hostversion", "4.1037.0.0")
                .header("user-agent", "Azure-Functions-Host/4.1037.0.0")
                .json(&timer_payload(name, status.clone(), i == 2))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{name}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["Outputs"], json!({}));
            assert!(body["ReturnValue"].is_null());
            assert!(!body["Logs"].as_array().unwrap().is_empty());
        }
    }
    // The timers topped the pool up on Azurite.
    assert_eq!(sim.rooms().len(), 3);

    // A forwarded create, then the room's whole life through the event sink and the GC.
    let created = forwarded(http.post(format!(
        "{base}/room/create?uuiData=6964264d54497a4e4455324c4463324e54517a4d67;encoding=hex"
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(created.status(), 200);
    let room: Value = created.json().await.unwrap();
    assert_eq!(
        room["tag"],
        "https://id.gov.bc.ca/idcheck/protected/video/MTIzNDU2LDc2NTQzMg"
    );
    assert!(room.get("pin").is_none());
    let name = room["name"].as_str().unwrap();
    let read = forwarded(http.get(format!("{base}/room/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    sim.start_conference(name, 2, 2).await.unwrap();
    sim.end_conference(name).await.unwrap();
    let gc = http
        .post(format!("{base}/gc_timer"))
        .json(&timer_payload("gc_timer", statuses[0].clone(), false))
        .send()
        .await
        .unwrap();
    assert_eq!(gc.status(), 200);
    assert!(
        !sim.rooms().iter().any(|r| r.name == name),
        "the GC deleted the room after its conference"
    );

    // SIGTERM: graceful shutdown, exit status 0.
    let pid = handler.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(25);
    let status = loop {
        if let Some(status) = handler.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// Run `serve` with `env` and return (exit code, stderr).
fn serve_fails_with<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)]) -> (i32, String) {
    let output = host_command(env).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_fails_fast_with_one_line_naming_the_setting() {
    let port = ("FUNCTIONS_CUSTOMHANDLER_PORT", "1".to_owned());
    let pexip = [
        ("PEXIP_BASE_URL", "https://pexip.example".to_owned()),
        ("PEXIP_USERNAME", "admin".to_owned()),
        ("PEXIP_PASSWORD", "secret-password".to_owned()),
        ("EVENT_SINK_USERNAME", "pexip".to_owned()),
        ("EVENT_SINK_PASSWORD", "sink-secret".to_owned()),
    ];
    let dev_storage = (
        "AzureWebJobsStorage",
        "UseDevelopmentStorage=true".to_owned(),
    );
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "FUNCTIONS_CUSTOMHANDLER_PORT"),
        (
            vec![("FUNCTIONS_CUSTOMHANDLER_PORT", "0".into())],
            "FUNCTIONS_CUSTOMHANDLER_PORT",
        ),
        // Issue 13, item 16: no in-app check and not disabled on purpose.
        (
            [vec![port.clone(), dev_storage.clone()], pexip.to_vec()].concat(),
            "AUTH_JWKS_URL",
        ),
        // Issue 13, item 18: a bound and plain http off loopback.
        (
            [
                vec![
                    port.clone(),
                    dev_storage.clone(),
                    ("PEXIP_MAX_IN_FLIGHT", "1000".into()),
                ],
                pexip.to_vec(),
            ]
            .concat(),
            "PEXIP_MAX_IN_FLIGHT",
        ),
        (
            [
                vec![port.clone(), dev_storage.clone()],
                pexip.to_vec(),
                vec![("PEXIP_BASE_URL", "http://pexip.example".into())],
            ]
            .concat(),
            "PEXIP_BASE_URL",
        ),
        (vec![port.clone()], "AzureWebJobsStorage"),
        (
            vec![
                port.clone(),
                ("AzureWebJobsStorage", "UseDevelopmentStorage=true".into()),
            ],
            "PEXIP_BASE_URL",
        ),
        (
            [
                vec![
                    port.clone(),
                    (
                        "AzureWebJobsStorage",
                        "DefaultEndpointsProtocol=https;AccountName=acct".into(),
                    ),
                ],
                pexip.to_vec(),
            ]
            .concat(),
            "AzureWebJobsStorage",
        ),
        (
            [
                vec![
                    port.clone(),
                    (
                        "AzureWebJobsStorage",
                        "AccountKey=not-base64!!;AccountName=a;QueueEndpoint=http://x".into(),
                    ),
                ],
                pexip.to_vec(),
            ]
            .concat(),
            "AzureWebJobsStorage",
        ),
        (
            [
                vec![
                    port.clone(),
                    ("AzureWebJobsStorage", "UseDevelopmentStorage=true".into()),
                    ("ROOM_POOL_TARGET", "many".into()),
                ],
                pexip.to_vec(),
            ]
            .concat(),
            "ROOM_POOL_TARGET",
        ),
        (
            [
                vec![
                    port.clone(),
                    ("AzureWebJobsStorage", "UseDevelopmentStorage=true".into()),
                    ("AUTH_AUDIENCE", "api://pexip-sdk".into()),
                ],
                pexip.to_vec(),
            ]
            .concat(),
            "AUTH_JWKS_URL",
        ),
        (
            [
                vec![
                    port.clone(),
                    ("AzureWebJobsStorage", "UseDevelopmentStorage=true".into()),
                    (
                        "EVENT_SINK_ALLOWED_NETWORKS",
                        "10.0.0.0/8,10.0.0.0/33".into(),
                    ),
                ],
                pexip.to_vec(),
            ]
            .concat(),
            "EVENT_SINK_ALLOWED_NETWORKS",
        ),
    ];
    for (env, setting) in cases {
        let (code, stderr) = serve_fails_with(&env);
        assert_eq!(code, 2, "{setting}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line for {setting}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(setting),
            "{setting}: {stderr}"
        );
        assert!(
            !stderr.contains("secret-password") && !stderr.contains("not-base64"),
            "{stderr}"
        );
    }
}

/// Start `serve` with `env`, wait until it is ready, stop it with SIGTERM; its stdout and
/// stderr (INFO lines go to the one, WARN and ERROR to the other).
async fn serve_and_stop<K: AsRef<str>, V: AsRef<str>>(env: &[(K, V)]) -> (String, String) {
    let port = free_port();
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect();
    env.push(("FUNCTIONS_CUSTOMHANDLER_PORT".to_owned(), port.to_string()));
    let mut handler = Handler(
        host_command(&env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("http://127.0.0.1:{port}"), &mut handler.0).await;
    let pid = handler.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Little output, and the process is exiting: reading one pipe after the other is safe.
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut handler.0.stdout.take().unwrap(), &mut stdout).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut handler.0.stderr.take().unwrap(), &mut stderr).unwrap();
    (stdout, stderr)
}

/// Issue 13, item 16: `serve` starts without the in-app check only when `AUTH_DISABLED=true`
/// says so (refused otherwise, see `serve_fails_fast_with_one_line_naming_the_setting`), and
/// then warns.
#[tokio::test]
async fn serve_warns_at_start_when_in_app_authentication_is_disabled() {
    // Nothing here is contacted before the first request, except the queues, whose absence
    // at start is only a warning.
    let base = [
        (
            "AzureWebJobsStorage",
            "UseDevelopmentStorage=true".to_owned(),
        ),
        ("PEXIP_BASE_URL", "https://pexip.example".to_owned()),
        ("PEXIP_USERNAME", "admin".to_owned()),
        ("PEXIP_PASSWORD", "secret-password".to_owned()),
        ("EVENT_SINK_USERNAME", "pexip".to_owned()),
        ("EVENT_SINK_PASSWORD", "sink-secret".to_owned()),
        ("QUEUE_NAME_PREFIX", format!("warn{}-", std::process::id())),
    ];
    const WARNING: &str = "in-app authentication of /room* is off";
    let disabled = [base.to_vec(), vec![("AUTH_DISABLED", "true".to_owned())]].concat();
    let (_, stderr) = serve_and_stop(&disabled).await;
    assert!(stderr.contains(WARNING), "{stderr}");

    let configured = [
        base.to_vec(),
        vec![
            (
                "AUTH_JWKS_URL",
                "https://login.microsoftonline.com/t/discovery/v2.0/keys".to_owned(),
            ),
            (
                "AUTH_ISSUER",
                "https://login.microsoftonline.com/t/v2.0".to_owned(),
            ),
            ("AUTH_AUDIENCE", "api://pexip-sdk".to_owned()),
            ("AUTH_ALLOWED_ROLES", "Rooms.Manage".to_owned()),
        ],
    ]
    .concat();
    let (stdout, stderr) = serve_and_stop(&configured).await;
    assert!(stdout.contains("serving"), "the run was logged: {stdout}");
    assert!(
        !stderr.contains(WARNING) && !stdout.contains(WARNING),
        "{stderr}"
    );
}

/// A fresh directory for this test run.
fn scratch_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pexip-sdk-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_deployment_package_holds_the_app_and_runs_under_the_host() {
    let dir = scratch_dir("package");
    let zip_path = dir.join("functionapp.zip");
    let packaged = Command::new(Path::new(APP_ROOT).join("scripts/package"))
        .args(["--binary", BINARY, "--out"])
        .arg(&zip_path)
        .output()
        .unwrap();
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );

    // Exactly host.json, every function folder's function.json and the binary, run bit set.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    names.sort();
    let repo = AppLayout::load(Path::new(APP_ROOT)).unwrap();
    let mut expected: Vec<String> = repo
        .functions
        .iter()
        .map(|f| format!("{}/function.json", f.name()))
        .chain(["host.json".to_owned(), "pexip-sdk".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "no local.settings.json, no sources, nothing else"
    );
    let mode = archive.by_name("pexip-sdk").unwrap().unix_mode().unwrap();
    assert_eq!(
        mode & 0o777,
        0o755,
        "the binary keeps its run bit: {mode:o}"
    );

    let root = dir.join("app");
    archive.extract(&root).unwrap();
    let layout = AppLayout::load(&root).unwrap();
    assert_eq!(layout.host.executable, "pexip-sdk", "a file inside the zip");
    assert_eq!(layout.host.arguments, repo.host.arguments);
    assert_eq!(layout.host.route_prefix, repo.host.route_prefix);
    assert!(layout.host.forwarding);
    let executable = root.join(&layout.host.executable);
    play_the_host(&root, &executable).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn funcignore_lets_core_tools_upload_what_the_package_holds() {
    let root = Path::new(APP_ROOT);
    // Every file a walk honouring .funcignore (gitignore syntax, as Core Tools reads it)
    // keeps, outside target/ (build output varies; checked path by path below).
    let mut kept: Vec<String> = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .add_custom_ignore_filename(".funcignore")
        .filter_entry(|e| e.file_name() != "target")
        .build()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    kept.sort();
    let layout = AppLayout::load(root).unwrap();
    let mut expected: Vec<String> = layout
        .functions
        .iter()
        .map(|f| format!("{}/function.json", f.name()))
        .chain(["host.json".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(kept, expected);

    let mut rules = ignore::gitignore::GitignoreBuilder::new(root);
    assert!(rules.add(root.join(".funcignore")).is_none());
    let rules = rules.build().unwrap();
    let ignored = |path: &str| {
        rules
            .matched_path_or_any_parents(root.join(path), false)
            .is_ignore()
    };
    assert!(
        !ignored(&layout.host.executable),
        "the binary host.json names is uploaded"
    );
    for path in [
        "target/release/deps/pexip_sdk-0123.d",
        "target/debug/pexip-sdk",
        "local.settings.json",
        "src/lib.rs",
        "Cargo.toml",
        "deploy/main.bicep",
        "crates/testkit/azurite/node_modules/azurite/package.json",
    ] {
        assert!(ignored(path), "{path} must not be uploaded");
    }
}

#[tokio::test]
async fn serve_checks_at_start_that_the_automatic_participants_exist() {
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = pexip_sim::start(pexip_sim::SimConfig::default(), sim_listener)
        .await
        .unwrap();
    let agent = sim
        .create_automatic_participant(json!({"alias": "sip:agent@cc.example", "role": "chair"}))
        .unwrap();
    // Nothing but Pexip is contacted before `serve` listens (the queues' absence at start is
    // only a warning).
    let base = AppEnv::new()
        .set("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .pexip(&sim)
        .event_sink("pexip", "sink-secret")
        .queue_prefix(format!("agent{}-", std::process::id()))
        .set("AUTH_DISABLED", "true");
    let missing = "/api/admin/configuration/v1/automatic_participant/42/";
    let env = base
        .clone()
        .set("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
        .set("ROOM_AUTOMATIC_PARTICIPANTS", format!("{agent},42"))
        // Log lines off: what remains on stderr is the operator's error line.
        .set("RUST_LOG", "off");
    // The simulator answers from this runtime: wait for the child on another thread.
    let (code, stderr) = tokio::task::spawn_blocking(move || serve_fails_with(env.pairs()))
        .await
        .unwrap();
    assert_eq!(code, 2, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [format!(
            "error: ROOM_AUTOMATIC_PARTICIPANTS is invalid: {missing} does not exist on the Pexip \
             Management Node"
        )],
        "{stderr}"
    );

    // The ones that exist let it start.
    let env = base.set("ROOM_AUTOMATIC_PARTICIPANTS", agent.clone());
    let (stdout, _) = serve_and_stop(env.pairs()).await;
    assert!(stdout.contains("serving"), "{stdout}");
}
