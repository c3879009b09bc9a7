//! pexip-sdk: a Pexip Infinity room broker that runs as an Azure Functions custom handler.
//!
//! # Layout
//!
//! The crate is one library and a thin binary (`main.rs`) that calls [`cli::main`].
//! Each module owns one thing and talks to the others through plain types:
//!
//! - [`cli`]: the command line (`serve`, `dev`, `sim`); it only parses arguments.
//! - [`app`]: the one composition root (settings → clients → service → router → serve), used
//!   by `serve`, `dev` and the tests alike.
//! - [`server`]: the HTTP/1.1 server loop (hyper with a header read timeout) `App::serve` runs.
//! - [`dev`]: `dev` mode, the embedded simulator and timers around the same [`app::App`].
//! - [`config`]: every setting, read from the environment once at start and validated into
//!   types; errors name the variable. No other module reads the environment.
//! - [`telemetry`]: log lines the Functions host files at their own level (compact text
//!   locally, JSON lines in Azure), and Application Insights through OpenTelemetry when
//!   configured.
//! - [`pexip`]: the Pexip Infinity Management API client (OAuth2 ES256, token cache, retries,
//!   pagination, a prioritised concurrency cap, typed errors).
//! - [`queue`]: the pool and deletion queues, on Azure Storage Queues (official SDK; Shared
//!   Key or managed identity) or in memory with the same semantics.
//! - [`locks`]: the per-video-call allocation records in Blob Storage (official SDK, same
//!   account), created only if absent and updated only if unchanged: one room per call across
//!   instances. In memory with the same semantics for `dev` and tests.
//! - `storage`: what the queues and the records share about the storage account (endpoints,
//!   Shared Key signing, managed identity, retries, error classes).
//! - `azure_sdk`: what the clients built on the Azure SDK share (error descriptions).
//! - [`secrets`]: the Pexip key and passwords, from Key Vault through the managed identity
//!   (read at start, refreshed on an interval) or from the environment; never logged.
//! - [`domain`]: validated types (UUI data → tag URL, room names, PINs, event-sink bodies).
//! - [`rooms`]: the service layer — allocation, replenishment, deletion (GC), reconciliation
//!   and metrics — as plain async functions over the Pexip client and the queues.
//! - [`routes`]: HTTP handlers, DTOs, the error envelope and the OpenAPI document; thin.
//! - [`functions`]: the Azure Functions custom-handler protocol (timer payloads, host.json
//!   and function.json, NCRONTAB schedules).
//! - [`genesys`]: checks contact-centre agents' Genesys Cloud tokens.
//! - [`entra`]: checks Microsoft Entra ID access tokens on the private `/room*` routes
//!   (signing keys from the tenant's JWKS, cached).
//!
//! Two more crates live in the workspace: `crates/pexip-sim`, the Pexip simulator that
//! `sim` and `dev` start (it depends on nothing here), and `crates/testkit`, what the tests
//! and benchmarks share (a dev-dependency only).

pub mod app;
mod azure_sdk;
pub mod cli;
pub mod config;
pub mod dev;
pub mod domain;
pub mod entra;
pub mod functions;
pub mod genesys;
pub mod locks;
pub mod pexip;
pub mod queue;
pub mod rooms;
pub mod routes;
pub mod secrets;
pub mod server;
mod storage;
pub mod telemetry;
