//! The command line: one binary, `pexip-sdk`, with a subcommand per way of running. It only
//! parses arguments; [`crate::app`] (serve), [`crate::dev`] and the simulator crate do the work.
//!
//! Errors reach the operator as one line (`error: <what>`), never as a panic or a stack of
//! wrapped errors; the process exits with status 2 for bad configuration (including a secret
//! Key Vault cannot give at start) and 1 otherwise.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{Env, TelemetrySettings};
use crate::dev::DevOptions;

/// Pexip Infinity room broker (Azure Functions custom handler).
#[derive(Debug, Parser)]
#[command(name = "pexip-sdk", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Function App's routes (what the Azure Functions host runs).
    Serve(ServeArgs),
    /// Run everything locally: simulator, in-memory queues, timers, and the routes.
    Dev(DevArgs),
    /// Run the Pexip simulator alone (a test peer for `func start` setups and scripts).
    Sim(pexip_sim::SimArgs),
}

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Port on 127.0.0.1 (default: `FUNCTIONS_CUSTOMHANDLER_PORT`, set by the host).
    #[arg(long)]
    port: Option<u16>,
}

/// Arguments of `dev`.
#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Port of the service on 127.0.0.1.
    #[arg(long, default_value_t = 7071)]
    port: u16,
    /// Port of the embedded Pexip simulator on 127.0.0.1.
    #[arg(long, default_value_t = 7072)]
    sim_port: u16,
    /// Seconds before a new room is dialable on the simulator (real Pexip: about 90). Dev
    /// defaults to 0 so a room can be used at once; `ROOM_READY_DELAY_SECONDS` follows it
    /// unless set.
    #[arg(long, default_value_t = 0)]
    replication_delay_seconds: u64,
    /// Use `AzureWebJobsStorage` even when it is not in memory or Azurite on this machine
    /// (refused otherwise); the queue names then get the `dev-` prefix.
    #[arg(long)]
    allow_remote_storage: bool,
}

/// Parse the command line, run the chosen subcommand, and turn its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    let telemetry = match TelemetrySettings::from_env(&env)
        .map_err(anyhow::Error::from)
        .and_then(|settings| crate::telemetry::init(&settings))
    {
        Ok(telemetry) => telemetry,
        Err(e) => return fail(&format!("{e:#}"), 2),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), 1),
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => crate::app::serve(&env, args.port).await,
            Command::Dev(args) => {
                let options = DevOptions {
                    port: args.port,
                    sim_port: args.sim_port,
                    replication_delay_seconds: args.replication_delay_seconds,
                    allow_remote_storage: args.allow_remote_storage,
                };
                crate::dev::run(options, &env).await
            }
            Command::Sim(args) => pexip_sim::run(args, crate::app::shutdown_signal()).await,
        }
    });
    // After the server stopped (SIGTERM included): the last requests' telemetry goes out.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if !telemetry.shutdown(TELEMETRY_FLUSH) {
        tracing::warn!("telemetry not fully sent before exit");
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A secret the vault cannot give at start is, to the operator, configuration too:
            // the process cannot start until someone fixes the vault, the identity or a name.
            let code = if e.downcast_ref::<crate::config::ConfigError>().is_some()
                || e.downcast_ref::<crate::secrets::SecretsError>().is_some()
            {
                2
            } else {
                1
            };
            fail(&format!("{e:#}"), code)
        }
    }
}

/// How long the last telemetry may take to leave at exit. The host allows a stopping handler
/// a few seconds; `serve` already spent up to its own grace on background work.
const TELEMETRY_FLUSH: Duration = Duration::from_secs(5);

fn fail(message: &str, code: u8) -> ExitCode {
    // One line, filed by the host as an Error whatever the message says.
    eprintln!(
        "{}",
        crate::telemetry::console::error_line(&format!("error: {message}"))
    );
    ExitCode::from(code)
}
