//! The Azurite storage emulator as a test component: installed from the pinned
//! `crates/testkit/azurite/package.json` + lock (`npm ci`, under a lock so parallel test binaries do
//! not race), started from its own binary (`node_modules/.bin/azurite`, not `npx`, so the
//! process we hold is the server) with its queue service (the pool and deletion queues) and
//! its blob service (the allocation records) on ports the OS picks (`--queuePort 0
//! --blobPort 0`, read back from its log: no race for a "free" port), in memory, and stopped
//! when the guard drops. (The all-in-one binary also serves tables; nothing uses them.)
//! [`Azurite::start_on_disk`] keeps the data on disk instead, so the fault runs can stop it
//! and restart it on the same port with its messages intact, like a storage outage.
//!
//! A guard kept in a `static` is never dropped, so every Azurite also gets a tiny watchdog
//! (`sh`) reading a pipe from this process: when the test process ends, however it ends,
//! the pipe closes and the watchdog kills Azurite. No stray emulators after a panic or a
//! killed test run.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use url::Url;

use pexip_sdk::config::{DEV_ACCOUNT, DEV_ACCOUNT_KEY, StorageSettings};

/// Why Azurite could not be installed or started.
#[derive(Debug, thiserror::Error)]
pub enum AzuriteError {
    /// `npm ci` failed or left no server binary.
    #[error("cannot install Azurite: {0}")]
    Install(String),
    /// The server did not come up.
    #[error("cannot start Azurite: {0}")]
    Start(String),
}

/// `crates/testkit/azurite`, where the pinned package.json and lock live.
pub fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("azurite")
}

fn server_binary(dir: &Path) -> PathBuf {
    dir.join("node_modules").join(".bin").join("azurite")
}

/// The version pinned in `crates/testkit/azurite/package.json`.
fn pinned_version(dir: &Path) -> Result<String, AzuriteError> {
    let text = fs::read_to_string(dir.join("package.json"))
        .map_err(|e| AzuriteError::Install(format!("cannot read package.json: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| AzuriteError::Install(format!("package.json is not JSON: {e}")))?;
    json["dependencies"]["azurite"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AzuriteError::Install("package.json pins no azurite".to_owned()))
}

/// Whether the pinned version is what `node_modules` holds.
fn is_installed(dir: &Path) -> bool {
    let Ok(pinned) = pinned_version(dir) else {
        return false;
    };
    let installed = fs::read_to_string(dir.join("node_modules/azurite/package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned));
    server_binary(dir).exists() && installed.as_deref() == Some(pinned.as_str())
}

/// Install the pinned Azurite with `npm ci` unless it is already there; returns the server
/// binary. Safe to call from parallel tests and test binaries.
pub fn ensure_installed() -> Result<PathBuf, AzuriteError> {
    let dir = package_dir();
    let lock = dir.join(".install-lock");
    // `npm ci` runs only while the lock is held, so a half-written tree always comes with
    // the lock present: check the tree first, then that nobody is installing.
    if is_installed(&dir) && !lock.exists() {
        return Ok(server_binary(&dir));
    }
    let _lock = DirLock::acquire(&lock)?;
    if !is_installed(&dir) {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                AzuriteError::Install(format!("cannot run npm (is Node.js installed?): {e}"))
            })?;
        if !output.status.success() {
            return Err(AzuriteError::Install(format!(
                "npm ci failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        if !is_installed(&dir) {
            return Err(AzuriteError::Install(
                "npm ci succeeded but the pinned azurite is missing".to_owned(),
            ));
        }
    }
    Ok(server_binary(&dir))
}

/// A cross-process lock: a directory, because creating one is atomic everywhere. A lock
/// older than ten minutes is taken to be left by a killed run and broken.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(path: &Path) -> Result<Self, AzuriteError> {
        let give_up = Instant::now() + Duration::from_secs(15 * 60);
        loop {
            match fs::create_dir(path) {
                Ok(()) => {
                    return Ok(Self {
                        path: path.to_owned(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(10 * 60));
                    if stale {
                        let _ = fs::remove_dir(path);
                        continue;
                    }
                    if Instant::now() > give_up {
                        return Err(AzuriteError::Install(format!(
                            "timed out waiting for the install lock {}",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => {
                    return Err(AzuriteError::Install(format!(
                        "cannot create the install lock {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// How long a starting Azurite may take before we give up (a busy 2-core CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Azurite (queue and blob services). Dropping it stops the server.
#[derive(Debug)]
pub struct Azurite {
    server: Child,
    watchdog: Child,
    workdir: PathBuf,
    queue_endpoint: Url,
    blob_endpoint: Url,
    /// Arguments after the port: persistence and the caller's extras, kept for a restart.
    args: Vec<String>,
    scheme: String,
}

impl Azurite {
    /// Start Azurite over http for the development account (Shared Key auth).
    pub fn start() -> Result<Self, AzuriteError> {
        Self::launch(&[], "http")
    }

    /// Start Azurite over http with its data on disk (`--location` in its work directory)
    /// instead of in memory, so [`Self::stop`] and [`Self::restart`] model a storage outage:
    /// the service goes away and comes back on the same endpoint with every message it
    /// held. (Azurite writes its store on a graceful stop; a restart of the in-memory mode
    /// would come back empty, which no real storage account does.)
    pub fn start_on_disk() -> Result<Self, AzuriteError> {
        Self::launch_with(&[], "http", true)
    }

    /// Start Azurite over https with `--oauth basic`: it then accepts bearer tokens (it
    /// decodes them without checking the signature: issuer `https://sts.windows.net/…`,
    /// audience `https://storage.azure.com`, current `iat`/`nbf`/`exp`). `cert_pem` and
    /// `key_pem` are PEM files for 127.0.0.1, made by the test.
    pub fn start_https_oauth(cert_pem: &Path, key_pem: &Path) -> Result<Self, AzuriteError> {
        let cert = cert_pem.to_string_lossy().into_owned();
        let key = key_pem.to_string_lossy().into_owned();
        Self::launch(
            &["--oauth", "basic", "--cert", &cert, "--key", &key],
            "https",
        )
    }

    /// One http Azurite shared by every test of this test binary (queue names keep tests
    /// apart: see [`super::unique_queue_name`]). Stopped by its watchdog when the process
    /// ends.
    pub fn shared() -> Result<&'static Azurite, &'static str> {
        static SHARED: OnceLock<Result<Azurite, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Azurite::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    fn launch(extra: &[&str], scheme: &str) -> Result<Self, AzuriteError> {
        Self::launch_with(extra, scheme, false)
    }

    fn launch_with(extra: &[&str], scheme: &str, on_disk: bool) -> Result<Self, AzuriteError> {
        let binary = ensure_installed()?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let workdir = std::env::temp_dir().join(format!(
            "pexip-sdk-azurite-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&workdir).map_err(|e| {
            AzuriteError::Start(format!("cannot create {}: {e}", workdir.display()))
        })?;
        let mut args: Vec<String> = if on_disk {
            let data = workdir.join("data");
            vec!["--location".to_owned(), data.to_string_lossy().into_owned()]
        } else {
            vec!["--inMemoryPersistence".to_owned()]
        };
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let (server, watchdog, log_path) =
            spawn_server(&binary, &workdir, Ports::default(), &args)?;
        // From here on, the guard's Drop cleans up whatever happens.
        let placeholder = Url::parse("http://127.0.0.1/").expect("static URL");
        let mut azurite = Self {
            server,
            watchdog,
            workdir,
            queue_endpoint: placeholder.clone(),
            blob_endpoint: placeholder,
            args,
            scheme: scheme.to_owned(),
        };
        let ports = azurite.wait_for_ports(&log_path, scheme)?;
        let endpoint = |port: u16| {
            Url::parse(&format!("{scheme}://127.0.0.1:{port}/{DEV_ACCOUNT}"))
                .map_err(|e| AzuriteError::Start(e.to_string()))
        };
        azurite.queue_endpoint = endpoint(ports.queue)?;
        azurite.blob_endpoint = endpoint(ports.blob)?;
        Ok(azurite)
    }

    /// Stop the server gracefully (SIGTERM: Azurite writes an on-disk store before it
    /// exits) and wait for it. Requests fail until [`Self::restart`].
    pub fn stop(&mut self) {
        if matches!(self.server.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.server.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.server.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.server.kill();
            let _ = self.server.wait();
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }

    /// Start the server again on the same ports with the same arguments (and so, with
    /// [`Self::start_on_disk`], the same data).
    pub fn restart(&mut self) -> Result<(), AzuriteError> {
        self.stop();
        let binary = ensure_installed()?;
        let ports = Ports {
            queue: self.port(),
            blob: self.blob_port(),
        };
        let (server, watchdog, log_path) = spawn_server(&binary, &self.workdir, ports, &self.args)?;
        self.server = server;
        self.watchdog = watchdog;
        let scheme = self.scheme.clone();
        let listening = self.wait_for_ports(&log_path, &scheme)?;
        if listening != ports {
            return Err(AzuriteError::Start(format!(
                "restarted on ports {listening:?}, not {ports:?}"
            )));
        }
        Ok(())
    }

    /// Wait until the log says where the queue and blob services listen (the all-in-one
    /// binary writes "Azurite Queue service is successfully listening at <url>", and the same
    /// for Blob).
    fn wait_for_ports(&mut self, log_path: &Path, scheme: &str) -> Result<Ports, AzuriteError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            let port = |service: &str| {
                let line = log.lines().find(|l| {
                    l.contains(&format!("Azurite {service} service"))
                        && l.contains("successfully listen")
                })?;
                let marker = format!("{scheme}://127.0.0.1:");
                let at = line.find(&marker)? + marker.len();
                let digits: String = line[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse::<u16>().ok()
            };
            if let (Some(queue), Some(blob)) = (port("Queue"), port("Blob")) {
                return Ok(Ports { queue, blob });
            }
            if let Ok(Some(status)) = self.server.try_wait() {
                return Err(AzuriteError::Start(format!(
                    "azurite exited ({status}): {}",
                    log.trim()
                )));
            }
            if Instant::now() > deadline {
                return Err(AzuriteError::Start(format!(
                    "azurite did not listen within {START_TIMEOUT:?}: {}",
                    log.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The queue service URL of the development account, without a trailing slash.
    pub fn queue_endpoint(&self) -> &Url {
        &self.queue_endpoint
    }

    /// The blob service URL of the development account, without a trailing slash.
    pub fn blob_endpoint(&self) -> &Url {
        &self.blob_endpoint
    }

    /// The port of the queue service.
    pub fn port(&self) -> u16 {
        self.queue_endpoint
            .port()
            .expect("the endpoint has an explicit port")
    }

    /// The port of the blob service.
    pub fn blob_port(&self) -> u16 {
        self.blob_endpoint
            .port()
            .expect("the endpoint has an explicit port")
    }

    /// Connection-string settings for this Azurite (development account, Shared Key).
    pub fn settings(&self) -> StorageSettings {
        StorageSettings::development(self.queue_endpoint.clone(), self.blob_endpoint.clone())
    }

    /// A full connection string for this Azurite, as `AzureWebJobsStorage` would hold it.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol={};AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};QueueEndpoint={};BlobEndpoint={};",
            self.queue_endpoint.scheme(),
            self.queue_endpoint,
            self.blob_endpoint
        )
    }

    /// The server's process id (tests check it is gone after drop).
    pub fn pid(&self) -> u32 {
        self.server.id()
    }
}

/// The ports of the two services we use (0: the OS picks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Ports {
    queue: u16,
    blob: u16,
}

/// Start `azurite` on `ports` with `args`, logging to a fresh file in `workdir`, plus its
/// watchdog. Returns both and the log's path. The table service takes any free port.
fn spawn_server(
    binary: &Path,
    workdir: &Path,
    ports: Ports,
    args: &[String],
) -> Result<(Child, Child, PathBuf), AzuriteError> {
    static NEXT_LOG: AtomicU32 = AtomicU32::new(0);
    let log_path = workdir.join(format!(
        "azurite-{}.log",
        NEXT_LOG.fetch_add(1, Ordering::Relaxed)
    ));
    let log = fs::File::create(&log_path)
        .map_err(|e| AzuriteError::Start(format!("cannot create the log file: {e}")))?;
    let log_err = log
        .try_clone()
        .map_err(|e| AzuriteError::Start(format!("cannot share the log file: {e}")))?;
    let mut server = Command::new(binary)
        .args(["--queueHost", "127.0.0.1", "--queuePort"])
        .arg(ports.queue.to_string())
        .args(["--blobHost", "127.0.0.1", "--blobPort"])
        .arg(ports.blob.to_string())
        .args(["--tableHost", "127.0.0.1", "--tablePort", "0"])
        .args([
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ])
        .args(args)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            AzuriteError::Start(format!(
                "cannot run {} (is Node.js installed?): {e}",
                binary.display()
            ))
        })?;
    match spawn_watchdog(server.id(), workdir) {
        Ok(watchdog) => Ok((server, watchdog, log_path)),
        Err(e) => {
            let _ = server.kill();
            let _ = server.wait();
            Err(e)
        }
    }
}

/// `sh` waits for end-of-file on its stdin (our pipe; the write end closes when this
/// process ends), then terminates the server, removes its work directory, and kills the
/// server if it lingers.
fn spawn_watchdog(server_pid: u32, workdir: &Path) -> Result<Child, AzuriteError> {
    Command::new("sh")
        .args([
            "-c",
            "while read -r _; do :; done; kill -TERM \"$0\" 2>/dev/null; rm -rf \"$1\"; \
             sleep 5; kill -KILL \"$0\" 2>/dev/null",
        ])
        .arg(server_pid.to_string())
        .arg(workdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| AzuriteError::Start(format!("cannot start the watchdog (sh): {e}")))
}

impl Drop for Azurite {
    fn drop(&mut self) {
        // Stop the watchdog first (SIGKILL: it never reaches its own kill), so it cannot
        // signal a recycled pid later; then stop and reap the server.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = fs::remove_dir_all(&self.workdir);
    }
}

/// Write one line straight to the process's stderr, past libtest's output capture, so CI
/// logs show it even for passing tests (e.g. `queue-conformance: azurite ok <test>`).
pub fn report(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
