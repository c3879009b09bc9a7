//! Test harness: a running app (service + simulator + queues) and small helpers.

use std::sync::atomic::{AtomicUsize, Ordering};

use pexip_sdk::app::{App, AppSettings};
use pexip_sdk::config::StorageSettings;
use pexip_sdk::rooms::RoomService;
use pexip_sim::{EventSinkTarget, SimHandle};
use testkit::azurite::Azurite;
use testkit::env::AppEnv;
/// Genesys tokens the stand-in understands.
pub use testkit::genesys::{AGENT_TOKEN, OTHER_DIVISION_TOKEN};
pub use testkit::uui;

/// Credentials the simulator's event sink uses.
pub const SINK_USER: &str = "pexip";
pub const SINK_PASSWORD: &str = "sink-password-for-tests";

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
        let sim = testkit::sim::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut sink = EventSinkTarget::new(format!("{url}/public/event_sink"));
        sink.username = Some(SINK_USER.into());
        sink.password = Some(SINK_PASSWORD.into());
        sim.add_event_sink(sink);

        let genesys = testkit::genesys::start().await;
        let prefix = format!(
            "t{}-{}-",
            std::process::id(),
            NEXT_PREFIX.fetch_add(1, Ordering::SeqCst)
        );
        let env = AppEnv::new()
            .pexip(&sim)
            .event_sink(SINK_USER, SINK_PASSWORD)
            .set("ROOM_POOL_TARGET", options.pool_target.to_string())
            .set(
                "ROOM_READY_DELAY_SECONDS",
                options.ready_delay_secs.to_string(),
            )
            .set("ROOM_DELETE_GRACE_SECONDS", options.grace_secs.to_string())
            .queue_prefix(prefix)
            .genesys(&genesys)
            .extend(options.env.iter().cloned())
            .to_env();
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

    /// Send `head` (a request head, up to and including its blank line) on a connection of
    /// its own and nothing after it, then read the status line of the answer: what the
    /// service decides from the head alone, whatever body the head announced.
    pub async fn status_for_head(&self, head: &str) -> u16 {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let address = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut status_line = String::new();
        tokio::io::BufReader::new(stream)
            .read_line(&mut status_line)
            .await
            .unwrap();
        status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {status_line:?}"))
    }

    /// Fire a timer the way the Functions host does.
    pub async fn invoke_timer(&self, name: &str) -> serde_json::Value {
        let response = testkit::serve::timer_request(&self.http, &self.url, name)
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

/// A `conference_ended` envelope as one node sends it.
pub fn conference_ended(name: &str, tag: &str, node: &str) -> serde_json::Value {
    serde_json::json!({"node": node, "seq": 3, "version": 2, "time": 1736003600.2, "event": "conference_ended",
        "data": {"name": name, "service_type": "conference", "tag": tag, "is_started": true,
                 "is_locked": false, "guests_muted": false, "start_time": 1736000000.1, "end_time": 1736003600.2}})
}
