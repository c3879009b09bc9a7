//! Starting the simulator, and [`SimHandle`]: its address, its OAuth2 credentials, and the
//! in-process mirrors of the `/_sim/` control API (same `SimState` operations).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::clock::SimClock;
use super::counters::CounterCell;
use super::events::EventHub;
use super::faults::FaultTable;
use super::keys::{self, ClientRegistry};
use super::net::{ConnSwitch, SimListener};
use super::oauth::TokenStore;
use super::server;
use super::state::SimState;
use super::store::Store;
use super::{Counters, EventSinkTarget, Fault, JournalEntry, SimConfig, SimError};

/// How long `shutdown` waits for open requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How [`SimHandle::client_env_with`] hands over the client's private key (the client
/// accepts all three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyForm {
    /// `PEXIP_PRIVATE_KEY` holds the PEM.
    Pem,
    /// `PEXIP_PRIVATE_KEY` holds base64 of the PEM: one line a shell can export.
    Base64,
    /// `PEXIP_PRIVATE_KEY_FILE` names this file, which holds the PEM (the caller writes it).
    File(PathBuf),
}

/// A room as the control API shows it (`GET /_sim/rooms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRoom {
    pub id: u64,
    pub name: String,
    pub tag: String,
    pub aliases: Vec<String>,
    pub pin: String,
    pub guest_pin: String,
    /// Older than the replication delay (by the simulator clock), so conferences can start.
    pub dialable: bool,
    /// A simulated conference is running in it.
    pub live: bool,
    /// Resource URIs of the automatic participants linked to it, dialled when a conference
    /// starts (docs/pexip.md §9).
    #[serde(default)]
    pub automatic_participants: Vec<String>,
}

/// A running simulator. Cheap to clone (an `Arc` inside); dropping the last clone also
/// stops serving, like [`SimHandle::shutdown`] without the wait.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

// Shows where it serves and as whom; never the key.
impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.inner.state.base_url)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    state: Arc<SimState>,
    client_id: String,
    private_key_pem: String,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.state.events.shutdown();
    }
}

/// Start serving on `listener` (bind `127.0.0.1:0` in tests). Generates an ES256 (P-256) key
/// pair and registers `config.client_id` (or a random id) with its public key.
pub async fn start(config: SimConfig, listener: TcpListener) -> anyhow::Result<SimHandle> {
    let addr = listener
        .local_addr()
        .context("the listener has no local address")?;
    let base_url = format!("http://{addr}");
    let key = keys::generate()?;
    let client_id = config.client_id.unwrap_or_else(|| {
        let mut bytes = [0u8; 6];
        rand::rng().fill_bytes(&mut bytes);
        format!("sim-{}", hex::encode(bytes))
    });
    let counters = Arc::new(CounterCell::default());
    let events = EventHub::new(config.event_sinks, Arc::clone(&counters))
        .context("cannot build the event-sink HTTP client")?;
    let state = Arc::new(SimState {
        token_url: format!("{base_url}/oauth/token/"),
        base_url,
        token_lifetime: config.token_lifetime,
        absolute_location: config.absolute_location,
        max_list_limit: config.max_list_limit.max(1),
        basic_auth: config.basic_auth,
        replication_delay: Mutex::new(config.replication_delay),
        clock: SimClock::new(),
        clients: ClientRegistry::default(),
        tokens: Mutex::new(TokenStore::default()),
        store: Mutex::new(Store::default()),
        counters,
        faults: Mutex::new(FaultTable::default()),
        events,
    });
    state.clients.register(&client_id, &key.public_pem)?;

    let app = server::router(Arc::clone(&state));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            SimListener(listener),
            app.into_make_service_with_connect_info::<ConnSwitch>(),
        )
        .with_graceful_shutdown(async move {
            // A send or the sender's drop (last handle gone) both stop the server.
            let _ = stop_rx.await;
        })
        .await
    });
    tracing::info!(sim.base_url = %state.base_url, sim.client_id = %client_id, "pexip simulator serving");
    Ok(SimHandle {
        inner: Arc::new(Inner {
            state,
            client_id,
            private_key_pem: key.private_pem,
            stop: Mutex::new(Some(stop_tx)),
            server: Mutex::new(Some(server)),
        }),
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.inner.state.base_url.clone()
    }

    /// The OAuth2 client id registered at start.
    pub fn client_id(&self) -> String {
        self.inner.client_id.clone()
    }

    /// The PKCS#8 PEM private key of [`SimHandle::client_id`] (`-----BEGIN PRIVATE KEY-----`).
    pub fn private_key_pem(&self) -> String {
        self.inner.private_key_pem.clone()
    }

    /// The settings a Pexip client needs to use this simulator, as `(variable, value)` pairs:
    /// `PEXIP_BASE_URL`, `PEXIP_CLIENT_ID` and `PEXIP_PRIVATE_KEY` (the PEM). What tests and
    /// benchmarks hand the service, and what `pexip-sdk sim` prints (see
    /// [`SimHandle::client_env_with`]): one list of names, so the two cannot drift apart.
    pub fn client_env(&self) -> [(&'static str, String); 3] {
        self.client_env_with(KeyForm::Pem)
    }

    /// [`SimHandle::client_env`] with the private key in the form `key` says.
    pub fn client_env_with(&self, key: KeyForm) -> [(&'static str, String); 3] {
        use base64::Engine as _;
        let key = match key {
            KeyForm::Pem => ("PEXIP_PRIVATE_KEY", self.private_key_pem()),
            KeyForm::Base64 => (
                "PEXIP_PRIVATE_KEY",
                base64::engine::general_purpose::STANDARD.encode(self.private_key_pem()),
            ),
            KeyForm::File(path) => ("PEXIP_PRIVATE_KEY_FILE", path.display().to_string()),
        };
        [
            ("PEXIP_BASE_URL", self.base_url()),
            ("PEXIP_CLIENT_ID", self.client_id()),
            key,
        ]
    }

    /// Register another client id with an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn register_client(&self, client_id: &str, public_key_pem: &str) -> anyhow::Result<()> {
        self.inner.state.clients.register(client_id, public_key_pem)
    }

    /// Every room in id order (`GET /_sim/rooms`).
    pub fn rooms(&self) -> Vec<SimRoom> {
        self.inner.state.rooms()
    }

    /// Start a conference in the room named or aliased `room`, with `participants` spread
    /// round-robin over `nodes` nodes (`POST /_sim/conferences`); returns its status UUID
    /// once the start events were delivered (or one delivery failed).
    pub async fn start_conference(
        &self,
        room: &str,
        participants: usize,
        nodes: usize,
    ) -> Result<String, SimError> {
        self.inner
            .state
            .start_conference(room, participants, nodes)
            .await
    }

    /// End the room's conference (`POST /_sim/conferences/{room}/end`); returns once its
    /// events were delivered, or as soon as one delivery attempt failed (retries go on).
    pub async fn end_conference(&self, room: &str) -> Result<(), SimError> {
        self.inner.state.end_conference(room).await
    }

    /// The participants of the live conference in the room named `room` (its name as
    /// copied at start), as `GET status/v1/participant/?conference=<room>` lists them (the
    /// same JSON); empty when none runs there.
    pub fn participants(&self, room: &str) -> Vec<serde_json::Value> {
        self.inner.state.participants(room)
    }

    /// Create an automatic participant as `POST configuration/v1/automatic_participant/`
    /// would (same validation, e.g. `{"alias": "sip:agent@example", "role": "chair"}`);
    /// returns its resource URI. For `dev` and tests that set up a node before the service
    /// starts.
    pub fn create_automatic_participant(
        &self,
        body: serde_json::Value,
    ) -> Result<String, SimError> {
        let serde_json::Value::Object(input) = body else {
            return Err(SimError::Invalid("the body must be a JSON object".into()));
        };
        self.inner
            .state
            .create_auto_participant(&input)
            .map(|id| format!("/api/admin/configuration/v1/automatic_participant/{id}/"))
            .map_err(|errors| {
                SimError::Invalid(
                    serde_json::json!({ "automatic_participant": errors }).to_string(),
                )
            })
    }

    /// Inject a fault (`POST /_sim/faults`); returns its id.
    pub fn add_fault(&self, fault: Fault) -> u64 {
        self.inner
            .state
            .faults
            .lock()
            .expect("faults lock")
            .add(fault)
    }

    /// Remove every fault (`DELETE /_sim/faults`).
    pub fn clear_faults(&self) {
        self.inner.state.faults.lock().expect("faults lock").clear();
    }

    /// The access tokens issued so far and not yet expired (for tests that must prove a token
    /// never reached a log).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner
            .state
            .tokens
            .lock()
            .expect("token store lock")
            .issued()
    }

    /// A snapshot of the counters (`GET /_sim/counters`).
    pub fn counters(&self) -> Counters {
        self.inner.state.counters.snapshot()
    }

    /// Every write to a room and every conference start and end so far, in the order they
    /// took effect (`GET /_sim/journal`).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.inner.state.journal()
    }

    /// Zero the counters (`POST /_sim/counters/reset`).
    pub fn reset_counters(&self) {
        self.inner.state.counters.reset();
    }

    /// Move the simulator clock forward (`POST /_sim/clock`): expires tokens, ages rooms.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.state.clock.advance(by);
    }

    /// Change the replication delay (`PUT /_sim/replication_delay`); applies to every room.
    pub fn set_replication_delay(&self, delay: Duration) {
        *self
            .inner
            .state
            .replication_delay
            .lock()
            .expect("delay lock") = delay;
    }

    /// Send events to one more sink from now on (`POST /_sim/event_sinks`).
    pub fn add_event_sink(&self, sink: EventSinkTarget) {
        self.inner.state.events.add_sink(sink);
    }

    /// Stop serving: refuse new connections, let open requests finish (up to a few seconds),
    /// and stop the event publishers.
    pub async fn shutdown(self) {
        let stop = self.inner.stop.lock().expect("stop lock").take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let server = self.inner.server.lock().expect("server lock").take();
        if let Some(mut server) = server
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        self.inner.state.events.shutdown();
    }
}
