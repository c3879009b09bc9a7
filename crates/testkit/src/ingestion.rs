//! A loopback stand-in for the Application Insights ingestion endpoint (the connection
//! string's `IngestionEndpoint`): it accepts what the real one accepts — `POST /v2/track`
//! with a gzipped JSON array of envelopes — and keeps every envelope, decoded, for a test to
//! assert on (docs/azure.md §9 Application Insights).
//!
//! [`Ingestion::start_failing`] answers every upload with 503, as an ingestion outage does;
//! [`Ingestion::start_discarding`] accepts uploads without decoding them, for a benchmark
//! that must not charge the fake's own work to the service it measures.
//!
//! It speaks https only, like the real one: the exporter turns any `IngestionEndpoint` into
//! an https URL. Its certificate comes from a test CA ([`Ingestion::ca_pem`]); a `serve`
//! process trusts it through `SSL_CERT_FILE`, which the platform's certificate loader reads
//! instead of the system store ([`Ingestion::trust_env`]).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

use crate::tls::{TlsListener, loopback_pki};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

/// The instrumentation key every fake connection string carries.
pub const INSTRUMENTATION_KEY: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

#[derive(Default)]
struct Received {
    envelopes: Vec<Value>,
    uploads: usize,
    /// Uploads that were not gzipped JSON arrays (the real endpoint would refuse them).
    refused: Vec<String>,
}

/// What the endpoint does with an upload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Decode and keep the envelopes.
    Keep,
    /// Accept without reading further.
    Discard,
    /// Answer 503.
    Fail,
}

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Received>>,
    mode: Mode,
}

/// A running fake ingestion endpoint; stops when dropped.
pub struct Ingestion {
    url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
    ca_file: PathBuf,
}

impl Ingestion {
    /// Start on a free loopback port, accepting uploads.
    pub async fn start() -> Self {
        Self::start_with(Mode::Keep).await
    }

    /// Start on a free loopback port, answering every upload with 503.
    pub async fn start_failing() -> Self {
        Self::start_with(Mode::Fail).await
    }

    /// Start on a free loopback port, accepting every upload unread (only counted).
    pub async fn start_discarding() -> Self {
        Self::start_with(Mode::Discard).await
    }

    async fn start_with(mode: Mode) -> Self {
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the fake ingestion endpoint");
        let url = format!("https://{}/", tcp.local_addr().expect("its address"));
        let (ca_pem, tls) = loopback_pki();
        let ca_file = std::env::temp_dir().join(format!(
            "pexip-sdk-ingestion-ca-{}.pem",
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&ca_file, ca_pem).expect("the CA file is written");
        let shared = Shared {
            received: Arc::default(),
            mode,
        };
        let app = axum::Router::new()
            .route("/v2/track", post(track))
            .with_state(shared.clone());
        let listener = TlsListener::new(tcp, tls);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            shared,
            server,
            ca_file,
        }
    }

    /// `https://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM file of the CA that signed the endpoint's certificate.
    pub fn ca_pem(&self) -> &Path {
        &self.ca_file
    }

    /// The setting that makes a child process trust the endpoint (and nothing else: the
    /// file replaces the system's roots).
    pub fn trust_env(&self) -> (String, String) {
        (
            "SSL_CERT_FILE".to_owned(),
            self.ca_file.display().to_string(),
        )
    }

    /// A connection string pointing the exporter here.
    pub fn connection_string(&self) -> String {
        format!(
            "InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={};LiveEndpoint={}",
            self.url, self.url
        )
    }

    /// Every envelope received so far, in order.
    pub fn envelopes(&self) -> Vec<Value> {
        self.lock().envelopes.clone()
    }

    /// How many uploads arrived (accepted or not).
    pub fn uploads(&self) -> usize {
        self.lock().uploads
    }

    /// Why uploads were refused (not gzip, not a JSON array): empty for a well-behaved client.
    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Ingestion {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

async fn track(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let mut received = shared.received.lock().unwrap_or_else(|e| e.into_inner());
    received.uploads += 1;
    match shared.mode {
        Mode::Fail => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"itemsReceived": 0, "itemsAccepted": 0, "errors": []})),
            );
        }
        // The exporter reads only the status of a 200.
        Mode::Discard => return (StatusCode::OK, axum::Json(json!({}))),
        Mode::Keep => {}
    }
    match decode(&headers, &body) {
        Ok(items) => {
            let n = items.len();
            received.envelopes.extend(items);
            (
                StatusCode::OK,
                axum::Json(json!({"itemsReceived": n, "itemsAccepted": n, "errors": []})),
            )
        }
        Err(why) => {
            received.refused.push(why.clone());
            (StatusCode::BAD_REQUEST, axum::Json(json!({"error": why})))
        }
    }
}

/// The envelopes of one upload: gzip (as `Content-Encoding` says), then a JSON array.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, String> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if encoding != "gzip" {
        return Err(format!("Content-Encoding is {encoding:?}, not gzip"));
    }
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut json)
        .map_err(|e| format!("not gzip: {e}"))?;
    match serde_json::from_slice(&json).map_err(|e| format!("not JSON: {e}"))? {
        Value::Array(items) => Ok(items),
        other => Err(format!("not a JSON array: {other}")),
    }
}
