//! `pexip-sdk serve` as a child process, started the way the Azure Functions host starts it
//! (cleared environment plus the given settings, `FUNCTIONS_CUSTOMHANDLER_PORT`, the
//! readiness ping on `GET /`), for the scale-out test, the fault runs and the benchmarks.
//!
//! The guard kills the process when dropped, so a failing test leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::free_port;

/// A running `pexip-sdk serve`. Killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    port: u16,
    url: String,
    started: Instant,
}

impl ServeProcess {
    /// Start `binary serve` on a free port with exactly `env` (plus `PATH` and the port).
    /// Its stdout and stderr go to `log` (appended), or nowhere.
    ///
    /// Unless `env` configures in-app authentication (`AUTH_JWKS_URL`) or says otherwise
    /// (`AUTH_DISABLED`), it gets `AUTH_DISABLED=true`: the tests and benchmarks have no Entra
    /// ID tenant, and the host's function keys are the gate they stand in for.
    pub fn spawn(binary: &Path, env: &[(String, String)], log: Option<&Path>) -> Self {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .stdin(Stdio::null());
        if !env
            .iter()
            .any(|(k, _)| k == "AUTH_JWKS_URL" || k == "AUTH_DISABLED")
        {
            command.env("AUTH_DISABLED", "true");
        }
        for (k, v) in env {
            command.env(k, v);
        }
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the log file opens");
                let err = file.try_clone().expect("the log file clones");
                command.stdout(file).stderr(err);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let started = Instant::now();
        let child = command.spawn().expect("pexip-sdk serve starts");
        Self {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            started,
        }
    }

    /// Start `binary ARGS` with exactly `env` (plus `PATH`), serving on `port`, its stdout and
    /// stderr each into its own file: for tests that care which stream a line went to (the
    /// Functions host files them differently).
    pub fn spawn_split(
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
        port: u16,
        stdout: &Path,
        stderr: &Path,
    ) -> Self {
        let file = |path: &Path| std::fs::File::create(path).expect("an output file");
        let started = Instant::now();
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file(stdout))
            .stderr(file(stderr))
            .spawn()
            .expect("pexip-sdk starts");
        Self {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            started,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Poll `GET /` like the host's readiness check until any HTTP answer arrives; returns
    /// the time from exec to that answer. Panics if the process exits or `timeout` passes.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, timeout: Duration) -> Duration {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/", self.url);
        loop {
            if http.get(&url).send().await.is_ok() {
                return self.started.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pexip-sdk serve exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "pexip-sdk serve not ready within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM (what the host and Azure send on scale-in), then wait for the exit: `serve`
    /// finishes the requests and background work in flight first.
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        signal(self.child.id(), "TERM");
        self.wait_exit(timeout).await
    }

    /// SIGKILL: the instance dies mid-work, as when Azure recycles a worker without warning.
    pub async fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.wait_exit(Duration::from_secs(10)).await
    }

    async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Peak and current resident set size in MiB (`VmHWM`, `VmRSS` of /proc/PID/status);
    /// `None` off Linux or once the process is gone.
    pub fn rss_mib(&self) -> Option<(f64, f64)> {
        proc_rss_mib(self.child.id())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `SIGNAL` to `pid` with kill(1): the crate forbids `unsafe`, and a signal is all a
/// test needs.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Peak and current resident set size of `pid` in MiB, from /proc.
pub fn proc_rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// A fresh directory for logs of one run under `root` (created), named after `what`.
pub fn log_dir(root: &Path, what: &str) -> PathBuf {
    let dir = root.join(format!("{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the log directory is created");
    dir
}

/// The body the Functions host POSTs to `/{name}` to fire a timer, on its first run
/// (docs/azure.md §1.5 Timer invocations), built as `dev` builds it.
pub fn timer_payload(name: &str) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc();
    pexip_sdk::functions::timer_invoke_request(name, "0001-01-01T00:00:00+00:00", now, now)
}

/// The host's request that fires the timer `name` on `base` (invocation id, timer body).
pub fn timer_request(http: &reqwest::Client, base: &str, name: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}/{name}"))
        .header(
            pexip_sdk::functions::INVOCATION_ID_HEADER,
            uuid::Uuid::new_v4().to_string(),
        )
        .json(&timer_payload(name))
}

/// Fire the timer `name` on `base` as the host does; returns the invocation's `Logs`.
pub async fn invoke_timer(
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> Result<Vec<String>, String> {
    let response = timer_request(http, base, name)
        .send()
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{name}: status {}", response.status()));
    }
    let body: pexip_sdk::functions::InvokeResponse =
        response.json().await.map_err(|e| format!("{name}: {e}"))?;
    Ok(body.logs)
}
