//! The one composition root: settings → clients → service → router → serve.
//!
//! `serve` (what the Functions host runs), `dev` and the tests build the application here and
//! nowhere else, so a test runs what production runs. [`crate::cli`] only parses arguments;
//! [`serve`] is the `serve` command, [`crate::dev`] adds the simulator and the in-process timers
//! around the same [`App`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{
    AUTH_DISABLED, AUTH_JWKS_URL, AuthSettings, ConfigError, Env, EventSinkSettings,
    GenesysSettings, KeyVaultSettings, PexipSettings, ROOM_AUTOMATIC_PARTICIPANTS, RoomSettings,
    StorageSettings,
};
use crate::entra::EntraAuth;
use crate::genesys::AgentAuth;
use crate::locks::LockService;
use crate::pexip::PexipClient;
use crate::queue::QueueService;
use crate::rooms::{DeepHealth, RoomService};
use crate::routes::{AppState, TimerTurns, build_router};
use crate::secrets::{SecretStore, VaultOptions};

/// How long background work may run after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How long `serve` waits at start for Pexip to say whether the automatic participants
/// exist; the host is waiting for the readiness ping meanwhile.
const START_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Every setting the service needs, validated before anything starts. Secret values are live
/// [`crate::secrets::Secret`] handles inside these settings and nowhere else.
pub struct AppSettings {
    pub pexip: PexipSettings,
    pub storage: StorageSettings,
    pub rooms: RoomSettings,
    pub event_sink: EventSinkSettings,
    pub genesys: GenesysSettings,
    /// In-app Entra ID check of `/room*`; `None` when `AUTH_JWKS_URL` is unset.
    pub auth: Option<AuthSettings>,
    /// `AUTH_DISABLED=true`: the check is off on purpose (`serve` refuses to start with it
    /// off otherwise).
    pub auth_disabled: bool,
}

impl AppSettings {
    /// Read all settings, secrets from the environment (`KEY_VAULT_URL` is not consulted:
    /// `dev` and tests use this). `storage_fallback` is used when `AzureWebJobsStorage*` is
    /// unset (`dev` passes in-memory; `serve` passes `None` and so requires a setting).
    pub fn from_env(
        env: &Env,
        storage_fallback: Option<StorageSettings>,
    ) -> Result<Self, ConfigError> {
        let storage = match StorageSettings::from_env(env)? {
            Some(s) => s,
            None => storage_fallback.ok_or_else(|| ConfigError::missing("AzureWebJobsStorage"))?,
        };
        Ok(Self {
            pexip: PexipSettings::from_env(env)?,
            storage,
            rooms: RoomSettings::from_env(env)?,
            event_sink: EventSinkSettings::from_env(env)?,
            genesys: GenesysSettings::from_env(env)?,
            auth: AuthSettings::from_env(env)?,
            auth_disabled: crate::config::auth_disabled(env)?,
        })
    }

    /// What `serve` runs: [`Self::from_env`], except that with `KEY_VAULT_URL` set the secrets
    /// are first read from Key Vault (a failure is an error naming the vault and the secret)
    /// and the settings hold their live handles. `vault` is [`VaultOptions::default`] in
    /// production.
    ///
    /// Errors are a [`ConfigError`] or a [`crate::secrets::SecretsError`] (both make the
    /// process exit with status 2).
    pub async fn load(
        env: &Env,
        storage_fallback: Option<StorageSettings>,
        vault: VaultOptions,
    ) -> anyhow::Result<Self> {
        let Some(key_vault) = KeyVaultSettings::from_env(env)? else {
            return Ok(Self::from_env(env, storage_fallback)?);
        };
        let store = SecretStore::open_with(&key_vault, vault).await?;
        let mut env = env.clone();
        store.supply(&mut env);
        Ok(Self::from_env(&env, storage_fallback)?)
    }
}

/// The wired application: the router's state and the service (for timers and shutdown).
pub struct App {
    /// What the handlers share; [`Self::router`] builds the routes over it.
    pub state: AppState,
    /// The service layer, for work outside a request (seeding the pool, shutdown, tests).
    pub rooms: RoomService,
}

impl App {
    /// Build the clients (queues and allocation records as `settings.storage` says, Pexip,
    /// Genesys, Entra ID) and the service. No network I/O beyond what the constructors need.
    pub fn build(settings: AppSettings) -> anyhow::Result<Self> {
        let queues = QueueService::connect(&settings.storage).context("queues")?;
        // The allocation records live in the queues' storage account (in memory with them).
        let records = LockService::connect(&settings.storage).context("allocation records")?;
        let pexip = PexipClient::new(&settings.pexip).context("Pexip client")?;
        let rooms =
            RoomService::new(pexip, &queues, &records, settings.rooms).context("room service")?;
        crate::telemetry::metrics::observe_service(&rooms);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("HTTP client")?;
        let state = AppState {
            rooms: rooms.clone(),
            event_sink: Arc::new(settings.event_sink),
            entra: settings.auth.map(|auth| EntraAuth::new(auth, http.clone())),
            agents: AgentAuth::new(settings.genesys, http),
            health: DeepHealth::new(rooms.clone()),
            timers: TimerTurns::default(),
        };
        Ok(Self { state, rooms })
    }

    /// The whole HTTP surface over this application's state.
    pub fn router(&self) -> axum::Router {
        build_router(self.state.clone())
    }

    /// Refuse to start when an automatic participant of `ROOM_AUTOMATIC_PARTICIPANTS` does
    /// not exist on the Management Node: every room create would be refused, and the agent
    /// leg with it. The error names the setting and the resource (exit status 2).
    ///
    /// When Pexip cannot answer within [`START_CHECK_TIMEOUT`] (its VMs are stopped on a
    /// schedule, or it is down), the service starts anyway with a warning: an outage is no
    /// configuration error, and a crash loop under the host would help nobody.
    pub async fn check_automatic_participants(&self) -> Result<(), ConfigError> {
        let check = self.rooms.missing_automatic_participant();
        match tokio::time::timeout(START_CHECK_TIMEOUT, check).await {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(missing))) => Err(ConfigError::invalid(
                ROOM_AUTOMATIC_PARTICIPANTS,
                format!("{missing} does not exist on the Pexip Management Node"),
            )),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not check ROOM_AUTOMATIC_PARTICIPANTS on Pexip at start");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(
                    "Pexip did not answer in time to check ROOM_AUTOMATIC_PARTICIPANTS at start"
                );
                Ok(())
            }
        }
    }

    /// Create the queues if needed. A storage outage at start is logged, not fatal: the
    /// routes answer 503 until it is back, which beats a crash loop under the host.
    pub async fn prepare_queues(&self) {
        if let Err(e) = self.rooms.ensure_queues().await {
            tracing::warn!(error = %e, "could not create the queues at start; will retry on use");
        }
    }

    /// Serve on `listener` until `shutdown` completes, then let background work finish.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        crate::server::serve(listener, self.router(), shutdown)
            .await
            .context("HTTP server")?;
        self.rooms.shutdown(SHUTDOWN_GRACE).await;
        Ok(())
    }
}

/// `pexip-sdk serve`: read the settings (failing fast with the variable's name) and the
/// secrets (from Key Vault when `KEY_VAULT_URL` is set, failing fast with the vault's and the
/// secret's names), then serve on 127.0.0.1:`port` (default `FUNCTIONS_CUSTOMHANDLER_PORT`)
/// until SIGTERM.
pub async fn serve(env: &Env, port: Option<u16>) -> anyhow::Result<()> {
    const PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
    let port = match port {
        Some(p) => p,
        None => match env.required(PORT)?.parse::<u16>() {
            Ok(0) => return Err(ConfigError::invalid(PORT, "must be between 1 and 65535").into()),
            Ok(p) => p,
            Err(e) => return Err(ConfigError::invalid(PORT, e).into()),
        },
    };
    // Key Vault (when configured) is read before anything listens: without its credentials
    // the service cannot work, and a clear exit beats a handler that answers errors.
    let settings = AppSettings::load(env, None, VaultOptions::default()).await?;
    if matches!(settings.storage, StorageSettings::InMemory) {
        return Err(ConfigError::invalid(
            "AzureWebJobsStorage",
            "serve needs real queues shared by every instance; the in-memory backend is for dev only",
        )
        .into());
    }
    if settings.auth.is_none() {
        // API Management and the host's function keys still gate /room*, as with the old
        // service, but this layer then does not hold by itself: only on purpose.
        if !settings.auth_disabled {
            return Err(ConfigError::needed(
                AUTH_JWKS_URL,
                format!(
                    "serve checks Entra ID tokens on /room*; set {AUTH_DISABLED}=true if the \
                     host's function keys and API Management are the only gate on purpose"
                ),
            )
            .into());
        }
        tracing::warn!(
            "in-app authentication of /room* is off (AUTH_DISABLED=true): only the host's \
             function keys and API Management protect it"
        );
    }
    let app = App::build(settings)?;
    app.check_automatic_participants().await?;
    // Bind first: the host waits for the readiness ping, and queue creation (network round
    // trips) must not delay it.
    let listener = bind(port).await?;
    let rooms = app.rooms.clone();
    tokio::spawn(async move {
        if let Err(e) = rooms.ensure_queues().await {
            tracing::warn!(error = %e, "could not create the queues at start; will retry on use");
        }
    });
    tracing::info!(port, "serving");
    app.serve(listener, shutdown_signal()).await
}

/// Bind 127.0.0.1:`port` (the host only calls loopback).
pub async fn bind(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Resolves on SIGTERM (what the Functions host and Azure send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
