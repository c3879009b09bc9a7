//! Secrets from Key Vault end to end, through the official SDK: `ManagedIdentityCredential`
//! (App Service source) gets tokens from a loopback fake of the identity endpoint, and
//! `SecretClient` reads from an https fake vault with a CA and a certificate made here, which
//! answers a request without a token with the 401 challenge (docs/azure.md §8 Key Vault).
//!
//! Why a test binary of its own, without libtest's harness: `ManagedIdentityCredential`
//! picks its source from the *process* environment (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`)
//! when it is built, with no way to pass them in, and this crate forbids the `unsafe` that
//! `std::env::set_var` needs. So `main` starts the fake identity endpoint and runs this same
//! executable again as a child per test with those variables set (`--key-vault-child`). The
//! child runs the fake vault (it changes the vault's contents mid-test: rotation, outage), the
//! secret store, and for one test the whole app against the Pexip simulator; it reports
//! through its exit status. The parent checks what the identity endpoint was asked, and runs
//! the real binary for the start-up failure.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use pexip_sdk::app::{App, AppSettings};
use pexip_sdk::config::{
    EVENT_SINK_PASSWORD, Env, KEY_VAULT_CLIENT_ID, KEY_VAULT_REFRESH_SECONDS, KEY_VAULT_URL,
    PEXIP_PASSWORD, PEXIP_PRIVATE_KEY, PexipAuth, StorageSettings,
};

use pexip_sdk::secrets::{Secret, SecretsError, VaultOptions};
use pexip_sim::{self as sim, SimConfig};
use secrecy::ExposeSecret as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const CHILD_FLAG: &str = "--key-vault-child";
const IDENTITY_HEADER: &str = "fake-identity-header-value";
/// The user-assigned identity of the test that uses one.
const CLIENT_ID: &str = "kv-mi-client-1";
/// Tokens the fake identity endpoint issues start with this, then name the resource.
const TOKEN_PREFIX: &str = "fake-mi-token";
/// The resource Key Vault's challenge names, and so the one tokens must be for.
const VAULT_RESOURCE: &str = "https://vault.azure.net";

const BINARY: &str = env!("CARGO_BIN_EXE_pexip-sdk");

/// Every test, and the user-assigned client id its child uses (`None`: system-assigned).
const TESTS: [(&str, Option<&str>); 6] = [
    (
        "secrets_are_read_through_the_sdk_after_the_key_vault_challenge",
        Some(CLIENT_ID),
    ),
    (
        "a_missing_secret_fails_the_start_naming_the_vault_and_the_secret",
        None,
    ),
    (
        "a_rotated_secret_is_picked_up_within_the_refresh_interval",
        None,
    ),
    (
        "a_vault_outage_after_start_keeps_the_last_good_value_and_warns",
        None,
    ),
    (
        "the_pexip_client_and_the_event_sink_use_rotated_secrets",
        None,
    ),
    (
        "serve_exits_2_with_one_line_when_the_vault_is_down_at_start",
        None,
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        return child(&args[1..]);
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // Honour a libtest-style name filter (`cargo test <filter>` passes it to every binary).
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<(&str, Option<&str>)> = TESTS
        .into_iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }
    parent(&selected);
    println!("\ntest result: ok. {} passed; 0 failed\n", selected.len());
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Parent: the identity endpoint, the children, the real binary

/// What the fake identity endpoint was asked.
#[derive(Debug, Clone)]
struct TokenRequest {
    api_version: Option<String>,
    resource: Option<String>,
    client_id: Option<String>,
    identity_header: Option<String>,
    metadata: Option<String>,
}

#[derive(Clone, Default)]
struct Identity {
    seen: Arc<Mutex<Vec<TokenRequest>>>,
}

/// The App Service identity endpoint: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&
/// resource=…[&client_id=…]` with `x-identity-header`; `expires_on` is a string, as App
/// Service sends it.
async fn token(
    State(identity): State<Identity>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request = TokenRequest {
        api_version: query.get("api-version").cloned(),
        resource: query.get("resource").cloned(),
        client_id: query.get("client_id").cloned(),
        identity_header: header("x-identity-header"),
        metadata: header("metadata"),
    };
    identity.seen.lock().unwrap().push(request.clone());
    if request.identity_header.as_deref() != Some(IDENTITY_HEADER) {
        return (StatusCode::UNAUTHORIZED, "bad identity header").into_response();
    }
    let resource = request.resource.unwrap_or_default();
    let expires_on = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    axum::Json(serde_json::json!({
        "access_token": format!("{TOKEN_PREFIX} {resource}"),
        "expires_on": expires_on.to_string(),
        "token_type": "Bearer",
        "resource": resource,
    }))
    .into_response()
}

fn parent(selected: &[(&str, Option<&str>)]) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let identity = Identity::default();
    let addr: SocketAddr = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/msi/token", get(token))
            .with_state(identity.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let identity_endpoint = format!("http://{addr}/msi/token");

    for (name, client_id) in selected {
        identity.seen.lock().unwrap().clear();
        if *name == "serve_exits_2_with_one_line_when_the_vault_is_down_at_start" {
            runtime.block_on(serve_exits_2_when_the_vault_is_down(&identity_endpoint));
        } else {
            run_child(&identity_endpoint, name);
            let seen = identity.seen.lock().unwrap().clone();
            assert!(
                !seen.is_empty(),
                "{name}: the identity endpoint was never asked"
            );
            for request in &seen {
                assert_eq!(
                    request.api_version.as_deref(),
                    Some("2019-08-01"),
                    "{request:?}"
                );
                assert_eq!(
                    request.resource.as_deref(),
                    Some(VAULT_RESOURCE),
                    "{request:?}"
                );
                assert_eq!(request.client_id.as_deref(), *client_id, "{request:?}");
                assert_eq!(
                    request.identity_header.as_deref(),
                    Some(IDENTITY_HEADER),
                    "{request:?}"
                );
                assert_eq!(request.metadata.as_deref(), Some("true"), "{request:?}");
            }
        }
        println!("test {name} ... ok");
    }
}

/// `IDENTITY_*` set, and no other managed-identity source that would take precedence.
fn with_identity(command: &mut Command, identity_endpoint: &str) {
    command
        .env("IDENTITY_ENDPOINT", identity_endpoint)
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env_remove("IDENTITY_SERVER_THUMBPRINT")
        .env_remove("IMDS_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .env_remove("MSI_SECRET");
}

fn run_child(identity_endpoint: &str, name: &str) {
    let exe = std::env::current_exe().expect("own executable");
    let mut command = Command::new(exe);
    command.args([CHILD_FLAG, name]);
    with_identity(&mut command, identity_endpoint);
    let output = command.output().expect("run the child");
    assert!(
        output.status.success(),
        "{name}: child failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The real binary, started as the Functions host starts it, with a vault that accepts
/// connections and closes them at once: `serve` must exit with status 2 and one line naming
/// the vault and the secret, without ever listening.
async fn serve_exits_2_when_the_vault_is_down(identity_endpoint: &str) {
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
    with_identity(&mut command, identity_endpoint);
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
}

// ---------------------------------------------------------------------------------------------
// Child: the fake vault and the tests

fn child(args: &[String]) -> ExitCode {
    let [name] = args else {
        eprintln!("usage: {CHILD_FLAG} <test>");
        return ExitCode::from(2);
    };
    let logs = Logs::install();
    // A failing child shows its log lines with the panic, for the parent's report.
    let default_hook = std::panic::take_hook();
    let logs_for_hook = logs.clone();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("--- child log ---\n{}--- end ---", logs_for_hook.text());
        default_hook(info);
    }));
    // The rotation and outage tests run on paused time, so the refresh interval is the
    // default five minutes and the test still takes a moment.
    let paused = matches!(
        name.as_str(),
        "a_rotated_secret_is_picked_up_within_the_refresh_interval"
            | "a_vault_outage_after_start_keeps_the_last_good_value_and_warns"
    );
    let mut builder = if paused {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .start_paused(paused)
        .build()
        .expect("runtime");
    // A real-time watchdog: paused time cannot bound a test that waits for something that
    // never comes.
    let (watched, watched_logs) = (name.clone(), logs.clone());
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("--- child log ---\n{}--- end ---", watched_logs.text());
        eprintln!("{watched}: timed out after 120 s");
        std::process::exit(1);
    });
    runtime.block_on(async {
        // Paused time jumps to the next timer whenever the runtime is idle, even while a
        // request is on a real socket: a 1 ms ticker keeps every jump at 1 ms (see
        // tests/pexip_client.rs).
        let _tick = paused.then(tick);
        match name.as_str() {
            "secrets_are_read_through_the_sdk_after_the_key_vault_challenge" => {
                secrets_are_read_through_the_sdk().await
            }
            "a_missing_secret_fails_the_start_naming_the_vault_and_the_secret" => {
                a_missing_secret_fails_the_start().await
            }
            "a_rotated_secret_is_picked_up_within_the_refresh_interval" => {
                a_rotated_secret_is_picked_up_within_the_refresh_interval().await
            }
            "a_vault_outage_after_start_keeps_the_last_good_value_and_warns" => {
                a_vault_outage_after_start_keeps_the_last_good_value(&logs).await
            }
            "the_pexip_client_and_the_event_sink_use_rotated_secrets" => {
                the_pexip_client_and_the_event_sink_use_rotated_secrets().await
            }
            other => panic!("unknown test {other}"),
        }
    });
    // Whatever happened, no secret value reached the logs.
    let text = logs.text();
    for value in SECRET_VALUES {
        assert!(!text.contains(value), "{name}: a secret value was logged");
    }
    ExitCode::SUCCESS
}

/// Keep paused time moving in 1 ms steps.
fn tick() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

/// Secret values the tests store (keys by their PEM header, plain or base64); none may ever
/// appear in a log line.
const SECRET_VALUES: [&str; 5] = [
    "sink-password-one",
    "sink-password-two",
    "BEGIN PRIVATE KEY",
    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS",
    "mgr-admin-password",
];

/// Every log line of the child, for assertions.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn install() -> Self {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// One request the fake vault answered.
#[derive(Debug, Clone)]
struct VaultRequest {
    path: String,
    api_version: Option<String>,
    authorized: bool,
    status: u16,
}

/// The fake vault's contents and switches.
#[derive(Default)]
struct VaultState {
    secrets: Mutex<HashMap<String, String>>,
    seen: Mutex<Vec<VaultRequest>>,
    /// Accept connections and close them at once (an outage).
    down: AtomicBool,
}

/// A fake Key Vault on https://127.0.0.1:PORT/ and a client transport that trusts it.
struct FakeVault {
    url: String,
    state: Arc<VaultState>,
    transport: azure_core::http::Transport,
}

impl FakeVault {
    async fn start(secrets: &[(&str, &str)]) -> Self {
        let (ca_pem, server_config) = test_pki();
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
        let app = axum::Router::new()
            .fallback(vault_request)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
            .build()
            .unwrap();
        Self {
            url,
            state,
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
        self.state.seen.lock().unwrap().clone()
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

/// A CA made now, and a server certificate for 127.0.0.1 it signed. Returns the CA's PEM (the
/// client's only trust anchor) and the server's TLS configuration.
fn test_pki() -> (String, rustls::ServerConfig) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pexip-sdk test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), config)
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

/// `GET /secrets/{name}/?api-version=…` (Get Secret, latest version). Without a token from
/// the identity endpoint for the vault resource: 401 with Key Vault's challenge.
async fn vault_request(
    State(state): State<Arc<VaultState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let api_version = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned());
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN_PREFIX} {VAULT_RESOURCE}"));
    let response = if !authorized {
        let challenge = format!(
            "Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001\", resource=\"{VAULT_RESOURCE}\""
        );
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            axum::Json(serde_json::json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})),
        )
            .into_response()
    } else {
        let name = path
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
    };
    state.seen.lock().unwrap().push(VaultRequest {
        path,
        api_version,
        authorized,
        status: response.status().as_u16(),
    });
    response
}

/// A fresh P-256 key pair: PKCS#8 PEM private key and SPKI PEM public key.
fn new_key_pair() -> (String, String) {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let private = pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        pair.to_pkcs8v1().unwrap().as_ref().to_vec(),
    ));
    let public = pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        pair.public_key().as_der().unwrap().as_ref().to_vec(),
    ));
    (private, public)
}

/// The environment of a deployment with Key Vault: Pexip OAuth2 with the key in the vault.
fn vault_env(vault: &FakeVault, pexip_base: &str, extra: &[(&str, &str)]) -> Env {
    let mut pairs: Vec<(String, String)> = vec![
        (KEY_VAULT_URL.into(), vault.url.clone()),
        ("PEXIP_BASE_URL".into(), pexip_base.into()),
        ("PEXIP_CLIENT_ID".into(), "client-1".into()),
        ("EVENT_SINK_USERNAME".into(), "pexip".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    Env::from_pairs(pairs)
}

async fn load(env: &Env, vault: &FakeVault) -> anyhow::Result<AppSettings> {
    AppSettings::load(env, Some(StorageSettings::InMemory), vault.options()).await
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

async fn secrets_are_read_through_the_sdk() {
    let (private_pem, _) = new_key_pair();
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

    // The SDK's challenge dance: the first request carries no token and gets the 401, then
    // every request is authorized; paths end in a slash and carry an api-version.
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
}

async fn a_missing_secret_fails_the_start() {
    let (private_pem, _) = new_key_pair();
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
}

async fn a_rotated_secret_is_picked_up_within_the_refresh_interval() {
    let (private_pem, _) = new_key_pair();
    let vault = FakeVault::start(&[
        ("pexip-jwt-key", private_pem.as_str()),
        ("event-sink-password", "sink-password-one"),
    ])
    .await;
    // The default interval: five minutes.
    let env = vault_env(&vault, "https://pexip.example.com", &[]);
    let settings = load(&env, &vault).await.expect("settings");
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
    // By the first scheduled read: one read after the start's, well before a second interval
    // (paused time runs on while sockets are busy, so the read itself takes a few "seconds").
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
}

async fn a_vault_outage_after_start_keeps_the_last_good_value(logs: &Logs) {
    let (private_pem, _) = new_key_pair();
    let vault = FakeVault::start(&[
        ("pexip-jwt-key", private_pem.as_str()),
        ("event-sink-password", "sink-password-one"),
    ])
    .await;
    let env = vault_env(&vault, "https://pexip.example.com", &[]);
    let settings = load(&env, &vault).await.expect("settings");
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
}

async fn the_pexip_client_and_the_event_sink_use_rotated_secrets() {
    let sim = sim::start(
        SimConfig {
            replication_delay: Duration::ZERO,
            ..SimConfig::default()
        },
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
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
    let (new_private, new_public) = new_key_pair();
    sim.register_client(&sim.client_id(), &new_public).unwrap();
    sim.advance_clock(Duration::from_secs(3601));
    assert!(!list_rooms().await.unwrap().status().is_success());
    assert_eq!(sim.counters().tokens_issued, 1);

    // Rotate both secrets in the vault (the key as base64 of PEM, as the old service stored
    // it) and wait for the refresh.
    vault.set(
        "pexip-jwt-key",
        &base64::engine::general_purpose::STANDARD.encode(&new_private),
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
}
