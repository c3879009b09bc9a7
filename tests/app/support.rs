//! Test harness: a running app (service + simulator + queues) and small helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pexip_sdk::app::{App, AppSettings};
use pexip_sdk::config::{Env, StorageSettings};
use pexip_sdk::rooms::RoomService;
use pexip_sim::{self as sim, EventSinkTarget, SimConfig, SimHandle};
use testkit::azurite::Azurite;

/// Credentials the simulator's event sink uses.
pub const SINK_USER: &str = "pexip";
pub const SINK_PASSWORD: &str = "sink-password-for-tests";
/// Genesys tokens the fake understands.
pub const AGENT_TOKEN: &str = "agent-token-allowed";
pub const OTHER_DIVISION_TOKEN: &str = "agent-token-other-division";

/// Which queue backend the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Azurite,
}

/// How to start a test app.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    pub pool_target: usize,
    pub ready_delay_secs: u64,
    pub grace_secs: u64,
    /// Extra environment pairs (override the defaults above).
    pub env: Vec<(String, String)>,
    /// Sent as `Authorization: Bearer …` on every request of [`TestApp::http`] that sets no
    /// `Authorization` of its own (for apps with in-app auth on).
    pub bearer: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            pool_target: 5,
            ready_delay_secs: 0,
            grace_secs: 0,
            env: Vec::new(),
            bearer: None,
        }
    }
}

impl Options {
    pub fn on(backend: Backend) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }
}

/// A running app.
pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub sim: SimHandle,
    pub rooms: RoomService,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

impl TestApp {
    /// Start the simulator and the app; the pool is *not* seeded (see `seed_pool`).
    pub async fn spawn(options: Options) -> Self {
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = sim::start(
            SimConfig {
                replication_delay: Duration::ZERO,
                ..SimConfig::default()
            },
            sim_listener,
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut sink = EventSinkTarget::new(format!("{url}/public/event_sink"));
        sink.username = Some(SINK_USER.into());
        sink.password = Some(SINK_PASSWORD.into());
        sim.add_event_sink(sink);

        let genesys = fake_genesys().await;
        let prefix = format!(
            "t{}-{}-",
            std::process::id(),
            NEXT_PREFIX.fetch_add(1, Ordering::SeqCst)
        );
        let mut pairs: Vec<(String, String)> = vec![
            ("PEXIP_BASE_URL".into(), sim.base_url()),
            ("PEXIP_CLIENT_ID".into(), sim.client_id()),
            ("PEXIP_PRIVATE_KEY".into(), sim.private_key_pem()),
            ("EVENT_SINK_USERNAME".into(), SINK_USER.into()),
            ("EVENT_SINK_PASSWORD".into(), SINK_PASSWORD.into()),
            ("ROOM_POOL_TARGET".into(), options.pool_target.to_string()),
            (
                "ROOM_READY_DELAY_SECONDS".into(),
                options.ready_delay_secs.to_string(),
            ),
            (
                "ROOM_DELETE_GRACE_SECONDS".into(),
                options.grace_secs.to_string(),
            ),
            ("QUEUE_NAME_PREFIX".into(), prefix),
            ("GENESYS_API_BASE".into(), genesys),
            ("GENESYS_ALLOWED_DIVISIONS".into(), "div-sbc".into()),
        ];
        pairs.extend(options.env.iter().cloned());
        let env = Env::from_pairs(pairs);
        let storage = match options.backend {
            Backend::Memory => StorageSettings::InMemory,
            Backend::Azurite => Azurite::shared().expect("Azurite").settings(),
        };
        let settings = AppSettings::from_env(&env, Some(storage)).unwrap();
        let app = App::build(settings).unwrap();
        app.prepare_queues().await;
        let rooms = app.rooms.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &options.bearer {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        Self {
            url,
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            sim,
            rooms,
            shutdown: Some(tx),
        }
    }

    /// Fill the pool to its target and wait until the rooms are enqueued.
    pub async fn seed_pool(&self) {
        self.rooms.top_up_pool().await.unwrap();
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `POST /room/create?uuiData=...` with the raw query value.
    pub async fn create(&self, uui: &str) -> reqwest::Response {
        self.http
            .post(self.at(&format!("/room/create?uuiData={uui}")))
            .send()
            .await
            .unwrap()
    }

    /// Rooms on the simulator.
    pub fn sim_room_count(&self) -> usize {
        self.sim.rooms().len()
    }

    /// Approximate messages in the pool queue.
    pub async fn pool_depth(&self) -> u64 {
        self.rooms.pool_queue().approximate_count().await.unwrap()
    }

    /// Approximate messages in the deletion queue.
    pub async fn deletion_depth(&self) -> u64 {
        self.rooms
            .deletion_queue()
            .approximate_count()
            .await
            .unwrap()
    }

    /// `GET` a path of the app; the JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.at(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The room called `name` on the simulator, if there is one.
    pub fn sim_room(&self, name: &str) -> Option<pexip_sim::SimRoom> {
        self.sim.rooms().into_iter().find(|r| r.name == name)
    }

    /// Sim counter for one route pattern.
    pub fn sim_requests(&self, route: &str) -> u64 {
        self.sim
            .counters()
            .requests
            .get(route)
            .copied()
            .unwrap_or(0)
    }

    /// POST to the event sink with the right credentials.
    pub async fn send_event(&self, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.at("/public/event_sink"))
            .basic_auth(SINK_USER, Some(SINK_PASSWORD))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Fire a timer the way the Functions host does.
    pub async fn invoke_timer(&self, name: &str) -> serde_json::Value {
        let response = self
            .http
            .post(self.at(&format!("/{name}")))
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .json(&timer_payload(name))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Create a room directly on Pexip (as an operator, another team or the replaced service
/// would have), with host PIN `123456`, guest PIN `4321` and its name as alias.
pub async fn pexip_room(app: &TestApp, name: &str, tag: &str) -> u64 {
    let new = pexip_sdk::pexip::NewConference {
        name: name.into(),
        service_type: "conference".into(),
        description: String::new(),
        tag: tag.into(),
        pin: "123456".into(),
        guest_pin: "4321".into(),
        allow_guests: true,
        aliases: vec![name.into()],
        extra: serde_json::Map::new(),
    };
    app.rooms.pexip().create_conference(&new).await.unwrap().id
}

pub const DELETE_ROUTE: &str = "DELETE /api/admin/configuration/v1/conference/{id}/";
pub const CREATE_ROUTE: &str = "POST /api/admin/configuration/v1/conference/";
pub const PATCH_ROUTE: &str = "PATCH /api/admin/configuration/v1/conference/{id}/";

/// The documented example: `id&MTIzNDU2LDc2NTQzMg` in hex.
pub const EXAMPLE_UUI: &str = "6964264d54497a4e4455324c4463324e54517a4d67;encoding=hex";
pub const EXAMPLE_TAG: &str = "https://id.gov.bc.ca/idcheck/protected/video/MTIzNDU2LDc2NTQzMg";

/// Hex UUI data for `host&id`.
pub fn uui(host: &str, id: &str) -> String {
    hex::encode(format!("{host}&{id}"))
}

/// The timer payload of docs/azure.md §1.5 Timer invocations.
pub fn timer_payload(name: &str) -> serde_json::Value {
    serde_json::json!({
        "Data": {"timer": {
            "Schedule": {"AdjustForDST": true},
            "ScheduleStatus": {"Last": "2026-09-24T13:08:00.0096035+00:00", "Next": "2026-09-24T13:18:00+00:00", "LastUpdated": "2026-09-24T13:08:00.0096035+00:00"},
            "IsPastDue": false
        }},
        "Metadata": {"sys": {"MethodName": name, "UtcNow": "2026-09-24T13:08:00.01Z", "RandGuid": "7c1a0d7e-3b7e-4d1f-9a57-0c0c4a7e2f11"}}
    })
}

/// A `conference_ended` envelope as one node sends it.
pub fn conference_ended(name: &str, tag: &str, node: &str) -> serde_json::Value {
    serde_json::json!({"node": node, "seq": 3, "version": 2, "time": 1736003600.2, "event": "conference_ended",
        "data": {"name": name, "service_type": "conference", "tag": tag, "is_started": true,
                 "is_locked": false, "guests_muted": false, "start_time": 1736000000.1, "end_time": 1736003600.2}})
}

/// A loopback fake of Genesys Cloud's `GET /api/v2/users/me`.
async fn fake_genesys() -> String {
    use axum::http::{HeaderMap, StatusCode};
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/api/v2/users/me",
        axum::routing::get(move |headers: HeaderMap| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if auth == format!("Bearer {AGENT_TOKEN}") {
                    Ok(axum::Json(
                        serde_json::json!({"id": "u1", "division": {"id": "div-sbc"}}),
                    ))
                } else if auth == format!("Bearer {OTHER_DIVISION_TOKEN}") {
                    Ok(axum::Json(
                        serde_json::json!({"id": "u2", "division": {"id": "div-other"}}),
                    ))
                } else {
                    Err(StatusCode::UNAUTHORIZED)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
