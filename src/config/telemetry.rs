//! Logging settings: `LOG_FORMAT` and `RUST_LOG`.

use super::{ConfigError, Env};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for Azure (Application Insights / Log Analytics).
    Json,
}

/// Settings for [`crate::telemetry::init`].
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub format: LogFormat,
    /// `RUST_LOG`: a tracing filter directive, default `info`.
    pub filter: String,
}

impl TelemetrySettings {
    /// Read `LOG_FORMAT` and `RUST_LOG`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let format = match env
            .get("LOG_FORMAT")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "LOG_FORMAT",
                    format!("expected text or json (got {other:?})"),
                ));
            }
        };
        let filter = env.get("RUST_LOG").unwrap_or("info").to_owned();
        Ok(Self { format, filter })
    }
}
