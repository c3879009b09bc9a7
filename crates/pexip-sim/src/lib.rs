//! The Pexip simulator: a faithful stand-in for a Pexip Infinity Management Node and its
//! Conferencing Nodes' event sinks, used as the test peer of the `pexip` client and as the
//! embedded default of `dev` mode.
//!
//! It is a separate composition root: it talks JSON over HTTP exactly like a Management Node
//! (docs/pexip.md; its departures in §10) and never imports the client. Production never calls it.
//!
//! # Layout
//!
//! - [`start`] / [`SimHandle`] (`handle.rs`): start serving, and the in-process mirrors of the
//!   control API that tests use.
//! - `server.rs`: the router, built once from the shared state, so tests run what the CLI runs.
//! - `state.rs`: the shared state and the operations both the `/_sim/` routes and the handle
//!   call (one code path each).
//! - `oauth.rs`, `auth.rs`: `POST /oauth/token/` (ES256 client assertions) and the
//!   Bearer/Basic gate in front of `/api/admin/**`.
//! - `store.rs`, `validation.rs`, `config_api.rs`: the `conference`, `conference_alias` and
//!   `automatic_participant` configuration resources with Pexip's status codes, bodies and
//!   validation messages.
//! - `filters.rs`: Tastypie-style list queries (filters, lookups, ordering, pagination).
//! - `live.rs`, `status_api.rs`: simulated live conferences and the status/command API.
//! - `events.rs`: per-(sink, node) event-sink publishers.
//! - `faults.rs`, `counters.rs`, `net.rs`: fault injection (including writes that land after
//!   an error answer), request counters, and the listener that lets a fault drop a connection
//!   without answering.
//! - `journal.rs`: every write to a room and every conference start and end, in order.
//! - `control.rs`: the `/_sim/` control API (never under `/api/admin`, no auth).
//! - `cli.rs`: `pexip-sdk sim`.

mod auth;
mod cli;
mod clock;
mod config_api;
mod control;
mod counters;
mod events;
mod faults;
mod filters;
mod handle;
mod journal;
mod keys;
mod live;
mod net;
mod oauth;
mod server;
mod state;
mod status_api;
mod store;
mod validation;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cli::{SimArgs, run};
pub use counters::Counters;
pub use faults::{Fault, FaultKind};
pub use handle::{KeyForm, SimHandle, SimRoom, start};
pub use journal::{JournalEntry, JournalKind};

/// How a simulator behaves. `Default` gives Pexip's defaults (90 s replication, 1 h tokens).
#[derive(Clone)]
pub struct SimConfig {
    /// How long a new room takes to become dialable (Pexip: "within around 90 seconds").
    /// Default 90 s; zero makes rooms dialable at once.
    pub replication_delay: Duration,
    /// Lifetime of issued access tokens (`api_oauth2_expiration`, default 3600 s).
    pub token_lifetime: Duration,
    /// The OAuth2 client id registered at start with the generated key; `None` picks one.
    pub client_id: Option<String>,
    /// Accepted HTTP Basic user and password; `None` refuses Basic (OAuth2 only).
    pub basic_auth: Option<(String, String)>,
    /// Event-sink URLs that receive conference and participant events.
    pub event_sinks: Vec<EventSinkTarget>,
    /// Answer `Location` with an absolute URL instead of a path (both occur in the wild).
    pub absolute_location: bool,
    /// Cap for `limit=0` and for larger limits (Tastypie's `max_limit`), default 1000.
    pub max_list_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            replication_delay: Duration::from_secs(90),
            token_lifetime: Duration::from_secs(3600),
            client_id: None,
            basic_auth: None,
            event_sinks: Vec::new(),
            absolute_location: false,
            max_list_limit: 1000,
        }
    }
}

// Hand-written so a password never reaches a log line through `{:?}`.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("replication_delay", &self.replication_delay)
            .field("token_lifetime", &self.token_lifetime)
            .field("client_id", &self.client_id)
            .field(
                "basic_auth",
                &self
                    .basic_auth
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("event_sinks", &self.event_sinks)
            .field("absolute_location", &self.absolute_location)
            .field("max_list_limit", &self.max_list_limit)
            .finish()
    }
}

/// One event-sink receiver (Pexip's `event_sink` resource, reduced to what delivery needs).
/// Its JSON form is the body of `POST /_sim/event_sinks`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSinkTarget {
    /// Where events are POSTed.
    pub url: String,
    /// HTTP Basic user; `None` sends no `Authorization` header.
    #[serde(default)]
    pub username: Option<String>,
    /// HTTP Basic password (used only with `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// Wrap events in `eventsink_bulk` envelopes (Pexip's `bulk_support`).
    #[serde(default)]
    pub bulk: bool,
    /// Event-sink protocol version (Pexip v40 default 2). Version 1 puts media streams in
    /// `participant_disconnected` instead of a separate `participant_media_streams_destroyed`.
    #[serde(default = "default_sink_version")]
    pub version: u8,
}

fn default_sink_version() -> u8 {
    2
}

impl EventSinkTarget {
    /// A version-2, single-event sink without credentials.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            username: None,
            password: None,
            bulk: false,
            version: 2,
        }
    }
}

impl fmt::Debug for EventSinkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSinkTarget")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("bulk", &self.bulk)
            .field("version", &self.version)
            .finish()
    }
}

/// Why a control operation (start or end a conference) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No room has this name or alias.
    #[error("no room is named or aliased {0:?}")]
    UnknownRoom(String),
    /// The room is younger than the replication delay (by the simulator's clock).
    #[error("not dialable yet")]
    NotDialable,
    /// The room already has a live conference.
    #[error("room {0:?} already has a live conference")]
    AlreadyLive(String),
    /// The room has no live conference to end.
    #[error("room {0:?} has no live conference")]
    NotLive(String),
    /// The request itself is unusable (zero nodes, too many participants, ...).
    #[error("{0}")]
    Invalid(String),
}
