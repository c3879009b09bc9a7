//! Shared test plumbing: start a simulator on 127.0.0.1:0, sign client assertions with the
//! PEM it hands out, call its API with a token, and receive its events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pexip_sim::{self as sim, SimConfig, SimHandle};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Conference collection path.
pub const CONFERENCES: &str = "/api/admin/configuration/v1/conference/";
/// Alias collection path.
pub const ALIASES: &str = "/api/admin/configuration/v1/conference_alias/";

/// An HTTP client that never goes through an environment proxy.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// A simulator with rooms dialable at once (the replication delay has its own tests).
pub async fn start_sim() -> SimHandle {
    start_sim_with(SimConfig {
        replication_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
}

pub async fn start_sim_with(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    sim::start(config, listener)
        .await
        .expect("start the simulator")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Claims of a client assertion, good by default; tests break one field at a time.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Option<String>,
    pub key_pem: String,
}

impl Assertion {
    /// A valid assertion for the simulator's own client.
    pub fn for_sim(sim: &SimHandle) -> Self {
        let now = unix_now();
        Self {
            iss: sim.client_id(),
            sub: sim.client_id(),
            aud: format!("{}/oauth/token/", sim.base_url()),
            iat: now,
            exp: now + 300,
            jti: Some(uuid::Uuid::new_v4().to_string()),
            key_pem: sim.private_key_pem(),
        }
    }

    pub fn sign(&self) -> String {
        let mut claims = json!({
            "iss": self.iss, "sub": self.sub, "aud": self.aud, "iat": self.iat, "exp": self.exp,
        });
        if let Some(jti) = &self.jti {
            claims["jti"] = json!(jti);
        }
        let key = EncodingKey::from_ec_pem(self.key_pem.as_bytes()).expect("EC key");
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).expect("sign")
    }
}

/// A P-256 key pair the simulator does not know: (PKCS#8 PEM private, SPKI PEM public).
pub fn other_key() -> (String, String) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generate");
    let private = pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        pair.to_pkcs8v1().expect("pkcs8").as_ref().to_vec(),
    ));
    let public = pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        pair.public_key().as_der().expect("spki").as_ref().to_vec(),
    ));
    (private, public)
}

/// POST a token request with the three form fields a client sends.
pub async fn request_token(sim: &SimHandle, assertion: &str) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token/", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("token request")
}

/// A fresh access token for the simulator's own client.
pub async fn token(sim: &SimHandle) -> String {
    let response = request_token(sim, &Assertion::for_sim(sim).sign()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// A client of the simulator's Management API holding a token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl Api {
    pub async fn new(sim: &SimHandle) -> Self {
        Self {
            base: sim.base_url(),
            http: http(),
            token: token(sim).await,
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, path)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    /// Create a room; returns its id (from `Location`).
    pub async fn create_room(&self, body: Value) -> u64 {
        let response = self.post(CONFERENCES, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "create {body}");
        location_id(&response)
    }
}

/// The trailing integer of a response's `Location`.
pub fn location_id(response: &reqwest::Response) -> u64 {
    let location = response
        .headers()
        .get(header::LOCATION)
        .expect("Location")
        .to_str()
        .expect("ascii");
    location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("id at the end of Location")
}

/// One POST the test receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub body: Value,
}

/// An event-sink receiver on 127.0.0.1:0 that records every POST. It can answer 503 to the
/// first `fail_first` requests, to exercise the simulator's retries.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

#[derive(Clone)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let state = ReceiverState {
            received: Arc::clone(&received),
            arrived: Arc::clone(&arrived),
            fail_first: Arc::new(Mutex::new(fail_first)),
        };
        let app = Router::new()
            .route("/events", post(receive))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/events", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            arrived,
        }
    }

    /// Every POST accepted so far (failed ones are not recorded).
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Every single-event envelope accepted so far, unwrapping bulk envelopes.
    pub fn events(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .flat_map(|r| match r.body["event"].as_str() {
                Some("eventsink_bulk") => r.body["data"].as_array().cloned().unwrap_or_default(),
                _ => vec![r.body],
            })
            .collect()
    }

    /// Wait until at least `n` events were accepted (a guard fails a hung test).
    pub async fn wait_for_events(&self, n: usize) {
        let wait = async {
            loop {
                let notified = self.arrived.notified();
                if self.events().len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("expected {n} events, got {}", self.events().len()));
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    {
        let mut fail = state.fail_first.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.received.lock().expect("lock").push(Received {
        authorization,
        body,
    });
    state.arrived.notify_waiters();
    StatusCode::OK
}
