//! The managed-identity path end to end: `ManagedIdentityCredential` (App Service source)
//! gets a token from a loopback fake of the identity endpoint and the queue client (and the
//! allocation records' blob client) use it against Azurite in `--oauth basic` mode over
//! https, with a certificate made here.
//!
//! Why a test binary of its own, without libtest's harness: `ManagedIdentityCredential`
//! picks its source from the *process* environment (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`)
//! when it is built, with no way to pass them in, and this crate forbids the `unsafe` that
//! `std::env::set_var` needs. So `main` starts Azurite and the fake endpoint, then runs this
//! same executable again as a child with those variables set (`--managed-identity-child`);
//! the child does the queue work and reports through its exit status, and the parent
//! checks the outcome and what the fake endpoint saw.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pexip_sdk::config::{
    Env, STORAGE_BLOB_SERVICE_URI, STORAGE_CLIENT_ID, STORAGE_QUEUE_SERVICE_URI, StorageSettings,
};
use pexip_sdk::locks::{LockError, LockService};
use pexip_sdk::queue::{QueueError, QueueService};
use testkit::azurite::{Azurite, report};
use testkit::unique_queue_name;

const CHILD_FLAG: &str = "--managed-identity-child";
const IDENTITY_HEADER: &str = "fake-identity-header-value";
/// The user-assigned identity the round trip uses.
const CLIENT_ID: &str = "mi-client-1";
/// A client id for which the fake endpoint issues a token for the wrong audience.
const WRONG_AUDIENCE_CLIENT_ID: &str = "mi-client-wrong-audience";

const TESTS: [&str; 2] = [
    "managed_identity_tokens_from_the_identity_endpoint_authorize_queue_operations",
    "a_token_for_another_audience_is_unauthorized",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        return child(&args[1..]);
    }
    if args.iter().any(|a| a == "--list") {
        for name in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // Honour a libtest-style name filter (`cargo test <filter>` passes it to every binary).
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&str> = TESTS
        .into_iter()
        .filter(|name| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }
    parent(&selected);
    println!("\ntest result: ok. {} passed; 0 failed\n", selected.len());
    ExitCode::SUCCESS
}

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
struct Fake {
    seen: Arc<Mutex<Vec<TokenRequest>>>,
}

/// The App Service identity endpoint (`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&
/// resource=…[&client_id=…]`, header `x-identity-header`), answering with a JWT Azurite's
/// `--oauth basic` accepts: it decodes without verifying the signature and checks issuer,
/// audience and times.
async fn token(
    State(fake): State<Fake>,
    Query(query): Query<std::collections::HashMap<String, String>>,
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
    fake.seen.lock().unwrap().push(request.clone());
    if request.identity_header.as_deref() != Some(IDENTITY_HEADER) {
        return (StatusCode::UNAUTHORIZED, "bad identity header").into_response();
    }
    let resource = request.resource.unwrap_or_default();
    let audience = if request.client_id.as_deref() == Some(WRONG_AUDIENCE_CLIENT_ID) {
        "https://vault.azure.net".to_owned()
    } else {
        resource.clone()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
        "aud": audience,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "oid": "00000000-0000-0000-0000-00000000000a",
        "tid": "00000000-0000-0000-0000-000000000001",
    });
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"azurite-does-not-check-signatures"),
    )
    .expect("encode token");
    axum::Json(serde_json::json!({
        "access_token": jwt,
        "expires_on": (now + 3600).to_string(),
        "token_type": "Bearer",
        "resource": resource,
    }))
    .into_response()
}

struct TestDir(PathBuf);

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parent(selected: &[&str]) {
    let dir = TestDir(
        std::env::temp_dir().join(format!("pexip-sdk-mi-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("test certificate");
    let cert_path = dir.0.join("cert.pem");
    let key_path = dir.0.join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");

    let azurite = Azurite::start_https_oauth(&cert_path, &key_path).expect("Azurite over https");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = Fake::default();
    let addr: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/msi/token", get(token))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let identity_endpoint = format!("http://{addr}/msi/token");
    let uri = azurite.queue_endpoint().as_str();
    let blob_uri = azurite.blob_endpoint().as_str();

    for name in selected {
        let client_id = if *name == TESTS[0] {
            CLIENT_ID
        } else {
            WRONG_AUDIENCE_CLIENT_ID
        };
        fake.seen.lock().unwrap().clear();
        run_child(
            &identity_endpoint,
            [uri, blob_uri],
            &cert_path,
            name,
            client_id,
        );
        let seen = fake.seen.lock().unwrap().clone();
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
                Some("https://storage.azure.com"),
                "{request:?}"
            );
            assert_eq!(request.client_id.as_deref(), Some(client_id), "{request:?}");
            assert_eq!(
                request.identity_header.as_deref(),
                Some(IDENTITY_HEADER),
                "{request:?}"
            );
            assert_eq!(request.metadata.as_deref(), Some("true"), "{request:?}");
        }
        println!("test {name} ... ok");
        report(&format!("queue-conformance: azurite ok {name}"));
    }
    drop(azurite);
}

fn run_child(
    identity_endpoint: &str,
    [uri, blob_uri]: [&str; 2],
    cert: &Path,
    name: &str,
    client_id: &str,
) {
    let exe = std::env::current_exe().expect("own executable");
    let output = Command::new(exe)
        .args([CHILD_FLAG, name, uri, blob_uri, client_id])
        .arg(cert)
        .env("IDENTITY_ENDPOINT", identity_endpoint)
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        // Other managed-identity sources would take precedence over App Service.
        .env_remove("IDENTITY_SERVER_THUMBPRINT")
        .env_remove("IMDS_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .env_remove("MSI_SECRET")
        .output()
        .expect("run the child");
    assert!(
        output.status.success(),
        "{name}: child failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child: real `ManagedIdentityCredential`, real queue client, Azurite over https.
fn child(args: &[String]) -> ExitCode {
    let [name, uri, blob_uri, client_id, cert] = args else {
        eprintln!("usage: {CHILD_FLAG} <test> <queue uri> <blob uri> <client id> <cert.pem>");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let outcome = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(120),
            child_test(name, [uri, blob_uri], client_id, Path::new(cert)),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn child_test(
    name: &str,
    [uri, blob_uri]: [&str; 2],
    client_id: &str,
    cert: &Path,
) -> Result<(), String> {
    let pem = std::fs::read(cert).map_err(|e| e.to_string())?;
    let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .tls_certs_only([certificate])
        .build()
        .map_err(|e| e.to_string())?;
    let transport = azure_core::http::Transport::new(Arc::new(http));

    // The settings come through config exactly as in production.
    let env = Env::from_pairs([
        (STORAGE_QUEUE_SERVICE_URI, uri),
        (STORAGE_BLOB_SERVICE_URI, blob_uri),
        (STORAGE_CLIENT_ID, client_id),
    ]);
    let settings = StorageSettings::from_env(&env)
        .map_err(|e| e.to_string())?
        .ok_or("no settings")?;
    if !matches!(settings, StorageSettings::ManagedIdentity { .. }) {
        return Err(format!(
            "expected managed identity settings, got {}",
            settings.describe()
        ));
    }
    let records = LockService::connect_with(&settings, Some(transport.clone()))
        .map_err(|e| e.to_string())?
        .store(&unique_queue_name("identity"))
        .map_err(|e| e.to_string())?;
    let service =
        QueueService::connect_with(&settings, Some(transport)).map_err(|e| e.to_string())?;
    let queue = service
        .queue(&unique_queue_name("identity"))
        .map_err(|e| e.to_string())?;

    if name == TESTS[1] {
        if !matches!(records.ensure_exists().await, Err(LockError::Unauthorized)) {
            return Err("expected the blob service to refuse the token".to_owned());
        }
        return match queue.ensure_exists().await {
            Err(QueueError::Unauthorized) => Ok(()),
            other => Err(format!("expected Unauthorized, got {other:?}")),
        };
    }
    // The allocation records: a create-only write, then a read of it.
    let record = |what: &'static str| move |e: LockError| format!("record {what}: {e}");
    records.ensure_exists().await.map_err(record("container"))?;
    let etag = records
        .create("call", b"{}")
        .await
        .map_err(record("create"))?;
    let read = records.read("call").await.map_err(record("read"))?;
    if read.map(|r| r.etag) != Some(etag) {
        return Err("the record read back is not the one written".to_owned());
    }
    let step = |what: &'static str| move |e: QueueError| format!("{what}: {e}");
    queue.ensure_exists().await.map_err(step("create"))?;
    queue
        .send("room-mi", Duration::ZERO)
        .await
        .map_err(step("send"))?;
    let got = queue
        .receive(1, Duration::from_secs(60))
        .await
        .map_err(step("receive"))?;
    let [message] = got.as_slice() else {
        return Err(format!("expected one message, got {}", got.len()));
    };
    if message.text != "room-mi" {
        return Err(format!("wrong text {:?}", message.text));
    }
    queue
        .delete(&message.receipt)
        .await
        .map_err(step("delete"))?;
    let count = queue.approximate_count().await.map_err(step("count"))?;
    if count != 0 {
        return Err(format!("expected an empty queue, count is {count}"));
    }
    Ok(())
}
