//! `pexip-sdk serve`: what the Azure Functions host runs (host.json `arguments: ["serve"]`).

use anyhow::Context as _;

use super::app::{App, AppSettings, bind, shutdown_signal};
use crate::config::{ConfigError, Env, StorageSettings};
use crate::queue::QueueService;
use crate::secrets::VaultOptions;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (default: `FUNCTIONS_CUSTOMHANDLER_PORT`, set by the host).
    #[arg(long)]
    pub port: Option<u16>,
}

/// Read settings (failing fast with the variable's name) and the secrets (from Key Vault when
/// `KEY_VAULT_URL` is set, failing fast with the vault's and the secret's names), then serve
/// until SIGTERM.
pub async fn run(args: ServeArgs, env: &Env) -> anyhow::Result<()> {
    let port = match args.port {
        Some(p) => p,
        None => env
            .required("FUNCTIONS_CUSTOMHANDLER_PORT")?
            .parse()
            .map_err(|e| ConfigError::invalid("FUNCTIONS_CUSTOMHANDLER_PORT", e))?,
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
        // Not fatal: API Management and the host's function keys still gate /room*, as with
        // the old service. But this layer then does not hold by itself.
        tracing::warn!(
            "in-app authentication of /room* is off (AUTH_JWKS_URL is unset): only the host's \
             function keys and API Management protect it"
        );
    }
    let queues = QueueService::connect(&settings.storage).context("queues")?;
    let app = App::build(settings, queues)?;
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
