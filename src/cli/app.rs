//! Composition shared by `serve` and `dev`: settings (with secrets from Key Vault or the
//! environment) → clients → service → router, and the HTTP server with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{
    AuthSettings, ConfigError, EVENT_SINK_PASSWORD, Env, EventSinkSettings, GenesysSettings,
    KeyVaultSettings, PEXIP_PASSWORD, PEXIP_PRIVATE_KEY, PexipAuth, PexipSettings, RoomSettings,
    StorageSettings,
};
use crate::entra::EntraAuth;
use crate::genesys::AgentAuth;
use crate::locks::LockService;
use crate::pexip::PexipClient;
use crate::queue::QueueService;
use crate::rooms::RoomService;
use crate::routes::{AppState, build_router};
use crate::secrets::{Secret, SecretStore, VaultOptions};

/// How long background work may run after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Every setting the service needs, validated before anything starts.
pub struct AppSettings {
    pub pexip: PexipSettings,
    pub storage: StorageSettings,
    pub rooms: RoomSettings,
    pub event_sink: EventSinkSettings,
    pub genesys: GenesysSettings,
    /// In-app Entra ID check of `/room*`; `None` when `AUTH_JWKS_URL` is unset.
    pub auth: Option<AuthSettings>,
    /// The live Key Vault secrets when `KEY_VAULT_URL` is set (see [`AppSettings::load`]).
    /// `None`: the secrets inside the settings above are the environment's and never change.
    pub key_vault: Option<SecretStore>,
}

impl AppSettings {
    /// Read all settings, secrets from the environment (`KEY_VAULT_URL` is not consulted:
    /// `dev` and tests use this). `storage` is the fallback when `AzureWebJobsStorage*` is
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
            key_vault: None,
        })
    }

    /// What `serve` runs: [`Self::from_env`], except that with `KEY_VAULT_URL` set the secrets
    /// are first read from Key Vault (a failure is an error naming the vault and the secret)
    /// and stand in for their settings, then stay current in [`Self::key_vault`]. `vault`
    /// is [`VaultOptions::default`] in production.
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
        let mut settings = Self::from_env(&store.overlay(env), storage_fallback)?;
        settings.key_vault = Some(store);
        Ok(settings)
    }

    /// The Pexip key (OAuth2) or password (Basic) and the event sink's password: live handles
    /// from Key Vault, or the settings' own values, fixed.
    fn secrets(&self) -> (Secret, Secret) {
        let live_or_fixed = |setting: &str, value: &secrecy::SecretString| {
            self.key_vault
                .as_ref()
                .and_then(|store| store.secret(setting))
                .unwrap_or_else(|| Secret::fixed(setting, value.clone()))
        };
        let pexip = match &self.pexip.auth {
            PexipAuth::OAuth2 { private_key, .. } => live_or_fixed(PEXIP_PRIVATE_KEY, private_key),
            PexipAuth::Basic { password, .. } => live_or_fixed(PEXIP_PASSWORD, password),
        };
        let event_sink = live_or_fixed(EVENT_SINK_PASSWORD, &self.event_sink.password);
        (pexip, event_sink)
    }
}

/// The wired application: the router's state and the service (for timers and shutdown).
pub struct App {
    pub state: AppState,
    pub rooms: RoomService,
}

impl App {
    /// Build clients and the service. No network I/O beyond what the constructors need.
    pub fn build(settings: AppSettings, queues: QueueService) -> anyhow::Result<Self> {
        let (pexip_secret, event_sink_password) = settings.secrets();
        let pexip =
            PexipClient::with_secret(&settings.pexip, pexip_secret).context("Pexip client")?;
        // The allocation records live in the queues' storage account (in memory with them).
        let records = LockService::connect(&settings.storage).context("allocation records")?;
        let rooms =
            RoomService::new(pexip, &queues, &records, settings.rooms).context("room service")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("HTTP client")?;
        let state = AppState {
            rooms: rooms.clone(),
            event_sink: Arc::new(settings.event_sink),
            entra: settings.auth.map(|auth| EntraAuth::new(auth, http.clone())),
            event_sink_password,
            agents: AgentAuth::new(settings.genesys, http),
        };
        Ok(Self { state, rooms })
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
        let router = build_router(self.state);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server")?;
        self.rooms.shutdown(SHUTDOWN_GRACE).await;
        Ok(())
    }
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
