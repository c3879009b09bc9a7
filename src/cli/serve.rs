//! `pexip-sdk serve`: what the Azure Functions host runs (host.json `arguments: ["serve"]`).

use anyhow::Context as _;

use super::app::{App, AppSettings, bind, shutdown_signal};
use crate::config::{ConfigError, Env, StorageSettings};
use crate::queue::QueueService;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (default: `FUNCTIONS_CUSTOMHANDLER_PORT`, set by the host).
    #[arg(long)]
    pub port: Option<u16>,
}

/// Read settings (failing fast with the variable's name), then serve until SIGTERM.
pub async fn run(args: ServeArgs, env: &Env) -> anyhow::Result<()> {
    let port = match args.port {
        Some(p) => p,
        None => env
            .required("FUNCTIONS_CUSTOMHANDLER_PORT")?
            .parse()
            .map_err(|e| ConfigError::invalid("FUNCTIONS_CUSTOMHANDLER_PORT", e))?,
    };
    let settings = AppSettings::from_env(env, None)?;
    if matches!(settings.storage, StorageSettings::InMemory) {
        return Err(ConfigError::invalid(
            "AzureWebJobsStorage",
            "serve needs real queues shared by every instance; the in-memory backend is for dev only",
        )
        .into());
    }
    let queues = QueueService::connect(&settings.storage).context("queues")?;
    let app = App::build(settings, queues)?;
    app.prepare_queues().await;
    let listener = bind(port).await?;
    tracing::info!(port, "serving");
    app.serve(listener, shutdown_signal()).await
}
