//! The command line: one binary, `pexip-sdk`, with a subcommand per composition root.
//!
//! Errors reach the operator as one line (`error: <what>`), never as a panic or a stack of
//! wrapped errors; the process exits with status 2 for bad configuration (including a secret
//! Key Vault cannot give at start) and 1 otherwise.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Env, TelemetrySettings};

pub mod app;
mod dev;
mod serve;

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
    Serve(serve::ServeArgs),
    /// Run everything locally: simulator, in-memory queues, timers, and the routes.
    Dev(dev::DevArgs),
    /// Run the Pexip simulator alone (a test peer for `func start` setups and scripts).
    Sim(pexip_sim::SimArgs),
}

/// Parse the command line, run the chosen subcommand, and turn its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    match TelemetrySettings::from_env(&env) {
        Ok(settings) => crate::telemetry::init(&settings),
        Err(e) => return fail(&e.to_string(), 2),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), 1),
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args, &env).await,
            Command::Dev(args) => dev::run(args, &env).await,
            Command::Sim(args) => pexip_sim::run(args, app::shutdown_signal()).await,
        }
    });
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

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
