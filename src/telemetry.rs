//! Tracing setup, done once per process: compact text locally, JSON lines in Azure.
//!
//! Field names are stable and dotted (`room.name`, `pexip.status`, `duration_ms`) so that
//! queries in Log Analytics keep working. Never log PINs, tokens, keys, passwords, raw UUI
//! data or request bodies.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetrySettings};

/// Install the global subscriber. A second call is a no-op (tests may call it repeatedly).
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Text => builder.compact().try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
