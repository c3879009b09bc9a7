//! Secrets from Key Vault end to end, through the official SDK: `ManagedIdentityCredential`
//! gets tokens from the fake identity endpoint, and `SecretClient` reads from an https fake
//! vault with a CA and a certificate made here, which answers a request without a token with
//! the 401 challenge (docs/azure.md §8 Key Vault).
//! The fake vault changes its contents mid-test (rotation, outage); one test runs the whole
//! app against the Pexip simulator, one the real binary for the start-up failure.
//!
//! Every test runs through [`in_child`]: its logs are captured, shown if it fails, and
//! checked afterwards for the secret values the tests store.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use base64::Engine as _;
use pexip_sdk::app::{App, AppSettings};
use pexip_sdk::config::{
    EVENT_SINK_PASSWORD, Env, KEY_VAULT_CLIENT_ID, KEY_VAULT_REFRESH_SECONDS, KEY_VAULT_URL,
    PEXIP_PASSWORD, PEXIP_PRIVATE_KEY, PexipAuth, StorageSettings,
};
use pexip_sdk::secrets::{Secret, SecretsError, VaultOptions};
use secrecy::ExposeSecret as _;
use testkit::env::AppEnv;
use testkit::identity::{self, IdentityEndpoint};
use testkit::keys;
use testkit::logs::Captured;
use testkit::recording::{Request, Stub};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The user-assigned identity of the test that uses one.
const CLIENT_ID: &str = "kv-mi-client-1";
/// The resource Key Vault's challenge names, and so the one tokens must be for.
const VAULT_RESOURCE: &str = "https://vault.azure.net";

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");

/// Secret values the tests store (keys by their PEM header, plain or base64); none may ever
/// appear in a log line.
const SECRET_VALUES: [&str; 5] = [
    "sink-password-one",
    "sink-password-two",
    "BEGIN PRIVATE KEY",
    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS",
    "mgr-admin-password",
];

/// Which clock a test runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    Real,
    /// Paused tokio time (one thread): the rotation and outage tests wait out the default
    /// five-minute refresh interval in a moment.
    Paused,
}

/// Run one test body in this child process: every log line captured (and printed with a
/// panic, so a failure shows them), on the given clock; afterwards no secret value may be
/// in the logs, whatever the test did.
fn in_child<F: Future<Output = ()>>(clock: Clock, body: impl FnOnce(Captured) -> F) {
    let logs = Captured::new();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(logs.clone())
        .init();
    let default_hook = std::panic::take_hook();
    let shown = logs.clone();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("--- child log ---\n{}--- end ---", shown.text());
        default_hook(info);
    }));
    let mut builder = match clock {
        Clock::Real => tokio::runtime::Builder::new_multi_thread(),
        Clock::Paused => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = builder
        .enable_all()
        .start_paused(clock == Clock::Paused)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _tick = (clock == Clock::Paused).then(testkit::time::tick);
        body(logs.clone()).await;
    });
    let text = logs.text();
    for value in SECRET_VALUES {
        assert!(!text.contains(value), "a secret value was logged");
    }
}

// ---------------------------------------------------------------------------------------------
// The fake vault

/// The fake vault's contents and switches.
#[derive(Default)]
struct VaultState {
    secrets: Mutex<HashMap<String, String>>,
    /// Accept connections and close them at once (an outage).
    down: AtomicBool,
}

/// One request the fake vault answered, as the tests look at it.
#[derive(Debug, Clone)]
struct VaultRequest {
    path: String,
    api_version: Option<String>,
    authorized: bool,
    status: u16,
}

/// A fake Key Vault on https://127.0.0.1:PORT/ and a client transport that trusts it.
struct FakeVault {
    url: String,
    state: Arc<VaultState>,
    stub: Stub,
    transport: azure_core::http::Transport,
}

impl FakeVault {
    async fn start(secrets: &[(&str, &str)]) -> Self {
        let (ca_pem, server_config) = testkit::tls::loopback_pki();
        let state = Arc::new(VaultState::default());
        state.secrets.lock().unwrap().extend(
            secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", tcp.local_addr().unwrap());
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(server_config)),
            state: state.clone(),
        };
        let answers = state.clone();
        let stub = Stub::serve(listener, url.clone(), move |request| {
            vault_answer(&answers, request)
        });
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
            .build()
            .unwrap();
        Self {
            url,
            state,
            stub,
            transport: azure_core::http::Transport::new(Arc::new(http)),
        }
    }

    /// What a test passes to the store: trust the test CA, and accept the challenge's
    /// `vault.azure.net` resource for a vault on 127.0.0.1.
    fn options(&self) -> VaultOptions {
        VaultOptions {
            transport: Some(self.transport.clone()),
            skip_challenge_resource_check: true,
        }
    }

    fn set(&self, name: &str, value: &str) {
        self.state
            .secrets
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<VaultRequest> {
        self.stub
            .exchanges()
            .iter()
            .map(|e| VaultRequest {
                path: e.request.path().to_owned(),
                api_version: e.request.query("api-version"),
                authorized: authorized(&e.request),
                status: e.status.as_u16(),
            })
            .collect()
    }

    /// Successful reads of `name` so far.
    fn reads_of(&self, name: &str) -> usize {
        let path = format!("/secrets/{name}/");
        self.seen()
            .iter()
            .filter(|r| r.path == path && r.status == 200)
            .count()
    }
}

/// Whether `request` carries a token from the identity endpoint for the vault resource.
fn authorized(request: &Request) -> bool {
    request
        .header("authorization")
        .and_then(identity::audience)
        .is_some_and(|audience| audience == VAULT_RESOURCE)
}

/// `GET /secrets/{name}/?api-version=…` (Get Secret, latest version). Without a token for
/// the vault resource: 401 with Key Vault's challenge.
fn vault_answer(state: &VaultState, request: &Request) -> axum::response::Response {
    if !authorized(request) {
        let challenge = format!(
            "Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001\", resource=\"{VAULT_RESOURCE}\""
        );
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            axum::Json(serde_json::json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})),
        )
            .into_response();
    }
    let name = request
        .path()
        .strip_prefix("/secrets/")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or("");
    let value = state.secrets.lock().unwrap().get(name).cloned();
    match value {
        Some(value) => axum::Json(serde_json::json!({
            "value": value,
            "id": format!("https://127.0.0.1/secrets/{name}/0123456789abcdef0123456789abcdef"),
            "attributes": {"enabled": true, "created": 1_700_000_000, "updated": 1_700_000_000, "recoveryLevel": "Recoverable+Purgeable"},
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": {"code": "SecretNotFound", "message": format!("A secret with (name/id) {name} was not found in this key vault.")}})),
        )
            .into_response(),
    }
}

/// TCP + TLS for `axum::serve`. While the vault is down, connections are closed unanswered.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<VaultState>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if self.state.down.load(Ordering::SeqCst) {
                drop(stream);
                continue;
            }
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

// ---------------------------------------------------------------------------------------------
// Settings through config, as in production

/// The environment of a deployment with Key Vault: Pexip OAuth2 with the key in the vault.
fn vault_env(vault: &FakeVault, pexip_base: &str, extra: &[(&str, &str)]) -> Env {
    AppEnv::new()
        .set(KEY_VAULT_URL, &vault.url)
        .set("PEXIP_BASE_URL", pexip_base)
        .set("PEXIP_CLIENT_ID", "client-1")
        .set("EVENT_SINK_USERNAME", "pexip")
        .extend(extra.iter().copied())
        .to_env()
}

async fn load(env: &Env, vault: &FakeVault) -> anyhow::Result<AppSettings> {
    AppSettings::load(env, Some(StorageSettings::InMemory), vault.options()).await
}

/// The identity endpoint, a vault holding the Pexip key and the event sink's password
/// (`sink-password-one`), and settings loaded from it with the default refresh interval.
async fn started_with_two_secrets() -> (IdentityEndpoint, FakeVault, AppSettings) {
    let identity = IdentityEndpoint::start().await;
    let private_pem = keys::p256().private_pem;
    let vault = FakeVault::start(&[
        ("pexip-jwt-key", private_pem.as_str()),
        ("event-sink-password", "sink-password-one"),
    ])
    .await;
    let env = vault_env(&vault, "https://pexip.example.com", &[]);
    let settings = load(&env, &vault).await.expect("settings");
    (identity, vault, settings)
}

/// The live handle the settings hold for `setting`: the one copy of that secret.
fn handle(settings: &AppSettings, setting: &str) -> Secret {
    match (setting, &settings.pexip.auth) {
        (PEXIP_PRIVATE_KEY, PexipAuth::OAuth2 { private_key, .. }) => private_key.clone(),
        (PEXIP_PASSWORD, PexipAuth::Basic { password, .. }) => password.clone(),
        (EVENT_SINK_PASSWORD, _) => settings.event_sink.password.clone(),
        _ => panic!("the settings hold no {setting}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

pub fn secrets_are_read_through_the_sdk_after_the_key_vault_challenge() {
    in_child(Clock::Real, |_| async {
        let identity = IdentityEndpoint::start().await;
        let private_pem = keys::p256().private_pem;
        // The older service stored the key as base64 of the PEM; both forms are accepted.
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(&private_pem);
        let vault = FakeVault::start(&[
            ("kv-pexip-key", key_b64.as_str()),
            ("event-sink-password", "sink-password-one"),
        ])
        .await;
        let env = vault_env(
            &vault,
            "https://pexip.example.com",
            &[
                ("KV_SECRET_PEXIP_PRIVATE_KEY", "kv-pexip-key"),
                (KEY_VAULT_CLIENT_ID, CLIENT_ID),
            ],
        );
        let settings = load(&env, &vault).await.expect("settings from Key Vault");
        assert_eq!(
            handle(&settings, PEXIP_PRIVATE_KEY)
                .current()
                .expose_secret(),
            key_b64
        );
        assert_eq!(
            handle(&settings, EVENT_SINK_PASSWORD)
                .current()
                .expose_secret(),
            "sink-password-one"
        );
        assert_eq!(
            handle(&settings, EVENT_SINK_PASSWORD).source(),
            "Key Vault secret event-sink-password"
        );
        assert_eq!(
            settings.event_sink.password.current().expose_secret(),
            "sink-password-one"
        );
        // The client parses the base64 form: building the app succeeds.
        App::build(settings).expect("app");

        // The SDK's challenge dance: the first request carries no token and gets the 401,
        // then every request is authorized; paths end in a slash and carry an api-version.
        let seen = vault.seen();
        assert!(!seen[0].authorized && seen[0].status == 401, "{seen:?}");
        assert!(
            seen[1..].iter().all(|r| r.authorized && r.status == 200),
            "{seen:?}"
        );
        let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/secrets/kv-pexip-key/",
                "/secrets/kv-pexip-key/",
                "/secrets/event-sink-password/"
            ]
        );
        assert!(seen.iter().all(|r| r.api_version.is_some()), "{seen:?}");

        // With Basic auth to Pexip, the password is read instead of the key.
        vault.set("mgr-admin", "mgr-admin-password");
        let env = Env::from_pairs([
            (KEY_VAULT_URL, vault.url.as_str()),
            (KEY_VAULT_CLIENT_ID, CLIENT_ID),
            ("PEXIP_BASE_URL", "https://pexip.example.com"),
            ("PEXIP_USERNAME", "admin"),
            ("KV_SECRET_PEXIP_PASSWORD", "mgr-admin"),
            ("EVENT_SINK_USERNAME", "pexip"),
        ]);
        let settings = load(&env, &vault).await.expect("Basic settings");
        assert_eq!(
            handle(&settings, PEXIP_PASSWORD).current().expose_secret(),
            "mgr-admin-password"
        );
        assert!(matches!(settings.pexip.auth, PexipAuth::Basic { .. }));
        assert_eq!(
            handle(&settings, PEXIP_PASSWORD).source(),
            "Key Vault secret mgr-admin"
        );
        App::build(settings).expect("app with Basic auth");
        identity.assert_asked_only_for(VAULT_RESOURCE, Some(CLIENT_ID));
    });
}

pub fn a_missing_secret_fails_the_start_naming_the_vault_and_the_secret() {
    in_child(Clock::Real, |_| async {
        let identity = IdentityEndpoint::start().await;
        let private_pem = keys::p256().private_pem;
        let vault = FakeVault::start(&[("pexip-jwt-key", private_pem.as_str())]).await;
        let env = vault_env(&vault, "https://pexip.example.com", &[]);
        let err = load(&env, &vault).await.err().expect("a start error");
        let secrets_error = err
            .downcast_ref::<SecretsError>()
            .expect("a SecretsError (exit status 2)");
        assert!(
            matches!(secrets_error, SecretsError::NotFound { name, setting, .. }
                if name == "event-sink-password" && setting == EVENT_SINK_PASSWORD),
            "{secrets_error:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "Key Vault {} has no secret \"event-sink-password\" (the value of EVENT_SINK_PASSWORD)",
                vault.url
            )
        );
        identity.assert_asked_only_for(VAULT_RESOURCE, None);
    });
}

pub fn a_rotated_secret_is_picked_up_within_the_refresh_interval() {
    in_child(Clock::Paused, |_| async {
        // The default interval: five minutes.
        let (identity, vault, settings) = started_with_two_secrets().await;
        let mut password = handle(&settings, EVENT_SINK_PASSWORD);
        let rotated_at = tokio::time::Instant::now();
        vault.set("event-sink-password", "sink-password-two");

        // Not read again before the interval is over...
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(password.current().expose_secret(), "sink-password-one");
        assert_eq!(vault.reads_of("event-sink-password"), 1);

        // ...and picked up by the read at the end of it.
        let new = password.changed().await.expect("a new value");
        assert_eq!(new.expose_secret(), "sink-password-two");
        // By the first scheduled read: one read after the start's, well before a second
        // interval (paused time runs on while sockets are busy, so the read itself takes a
        // few "seconds").
        let waited = rotated_at.elapsed();
        assert!(
            waited >= Duration::from_secs(299) && waited < Duration::from_secs(330),
            "picked up after {waited:?}"
        );
        assert_eq!(vault.reads_of("event-sink-password"), 2);
        // The other secret was read again too, and did not change.
        assert_eq!(vault.reads_of("pexip-jwt-key"), 2);
        assert!(
            handle(&settings, PEXIP_PRIVATE_KEY)
                .take_changed()
                .is_none()
        );
        identity.assert_asked_only_for(VAULT_RESOURCE, None);
    });
}

pub fn a_vault_outage_after_start_keeps_the_last_good_value_and_warns() {
    in_child(Clock::Paused, |logs| async move {
        let (identity, vault, settings) = started_with_two_secrets().await;
        let password = handle(&settings, EVENT_SINK_PASSWORD);

        // The vault goes down (and its value changes, which nobody can see now).
        vault.set_down(true);
        vault.set("event-sink-password", "sink-password-two");
        let warning = "Key Vault refresh failed; keeping the last good value";
        tokio::time::advance(Duration::from_secs(300)).await;
        while logs.text().matches(warning).count() < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(password.current().expose_secret(), "sink-password-one");
        let text = logs.text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(warning)).collect();
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
        assert!(
            lines[0].contains("secret.name=pexip-jwt-key"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("secret.name=event-sink-password"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("unavailable"), "{}", lines[1]);

        // Back up: the next refresh brings the new value.
        vault.set_down(false);
        let mut password = password;
        let new = password.changed().await.expect("a new value");
        assert_eq!(new.expose_secret(), "sink-password-two");
        identity.assert_asked_only_for(VAULT_RESOURCE, None);
    });
}

pub fn the_pexip_client_and_the_event_sink_use_rotated_secrets() {
    in_child(Clock::Real, |_| async {
        let identity = IdentityEndpoint::start().await;
        let sim = testkit::sim::start().await;
        let vault = FakeVault::start(&[
            ("pexip-jwt-key", sim.private_key_pem().as_str()),
            ("event-sink-password", "sink-password-one"),
        ])
        .await;
        let mut env = vault_env(&vault, &sim.base_url(), &[(KEY_VAULT_REFRESH_SECONDS, "1")]);
        env.set("PEXIP_CLIENT_ID", sim.client_id());
        let settings = load(&env, &vault).await.expect("settings");
        let mut key = handle(&settings, PEXIP_PRIVATE_KEY);
        let mut password = handle(&settings, EVENT_SINK_PASSWORD);
        let app = App::build(settings).expect("app");
        let rooms = app.rooms.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(app.serve(listener, std::future::pending()));
        let http = reqwest::Client::new();
        let list_rooms = || http.get(format!("{base}/room")).send();
        let event = serde_json::json!({"node": "10.0.0.3", "seq": 9, "version": 2, "time": 1.0,
            "event": "participant_disconnected", "data": {"conference": "vbv-x"}});
        let sink = |password: &str| {
            http.post(format!("{base}/public/event_sink"))
                .basic_auth("pexip", Some(password))
                .json(&event)
                .send()
        };

        assert_eq!(list_rooms().await.unwrap().status(), 200);
        assert_eq!(sink("sink-password-one").await.unwrap().status(), 200);
        assert_eq!(sim.counters().tokens_issued, 1);

        // Pexip gets the client's new public key, and forgets the old one: once the token
        // expires, the old key can no longer get one.
        let new_key = keys::p256();
        sim.register_client(&sim.client_id(), &new_key.public_pem)
            .unwrap();
        sim.advance_clock(Duration::from_secs(3601));
        assert!(!list_rooms().await.unwrap().status().is_success());
        assert_eq!(sim.counters().tokens_issued, 1);

        // Rotate both secrets in the vault (the key as base64 of PEM, as the old service
        // stored it) and wait for the refresh.
        vault.set(
            "pexip-jwt-key",
            &base64::engine::general_purpose::STANDARD.encode(&new_key.private_pem),
        );
        vault.set("event-sink-password", "sink-password-two");
        key.changed().await.expect("the key changed");
        if password.take_changed().is_none() {
            password.changed().await.expect("the password changed");
        }

        // The next token request is signed with the new key; no restart.
        assert_eq!(list_rooms().await.unwrap().status(), 200);
        assert_eq!(sim.counters().tokens_issued, 2);
        assert_eq!(rooms.pexip().stats().token_renewals, 2);
        // The event sink takes the new password and refuses the old one.
        assert_eq!(sink("sink-password-one").await.unwrap().status(), 401);
        assert_eq!(sink("sink-password-two").await.unwrap().status(), 200);
        sim.shutdown().await;
        identity.assert_asked_only_for(VAULT_RESOURCE, None);
    });
}

/// The real binary, started as the Functions host starts it, with a vault that accepts
/// connections and closes them at once: `serve` must exit with status 2 and one line naming
/// the vault and the secret, without ever listening.
pub fn serve_exits_2_with_one_line_when_the_vault_is_down_at_start() {
    in_child(Clock::Real, |_| async {
        // Serving, so that `serve` gets a token if it asks for one.
        let _identity = IdentityEndpoint::start().await;
        let vault = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let vault_url = format!("https://{}/", vault.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((stream, _)) = vault.accept().await {
                drop(stream);
            }
        });
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "off")
            // Never bound: the vault fails first.
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
            .env("AUTH_DISABLED", "true")
            .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
            .env(KEY_VAULT_URL, &vault_url)
            .env("PEXIP_BASE_URL", "https://pexip.example.com")
            .env("PEXIP_CLIENT_ID", "client-1")
            .env("EVENT_SINK_USERNAME", "pexip")
            .stdin(Stdio::null());
        identity::pass_on(&mut command);
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::from(command).output(),
        )
        .await
        .expect("serve gave up within a minute")
        .expect("run serve");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        let [line] = lines.as_slice() else {
            panic!("expected one line, got {stderr:?}");
        };
        assert!(line.starts_with("error: Key Vault "), "{line}");
        assert!(line.contains(&vault_url), "{line}");
        assert!(line.contains("pexip-jwt-key"), "{line}");
        assert!(line.contains("unavailable"), "{line}");
    });
}
