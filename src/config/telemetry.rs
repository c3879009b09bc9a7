//! Logging and telemetry settings: `LOG_FORMAT`, `RUST_LOG`, and Application Insights
//! (`APPLICATIONINSIGHTS_CONNECTION_STRING`, the app setting the Functions platform and tools
//! use, with `WEBSITE_SITE_NAME` as the cloud role name).

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

/// The Application Insights connection string (docs/azure.md §9 Application Insights).
pub const APPLICATIONINSIGHTS_CONNECTION_STRING: &str = "APPLICATIONINSIGHTS_CONNECTION_STRING";
/// The Function App's name, set by the platform: the cloud role name.
pub const WEBSITE_SITE_NAME: &str = "WEBSITE_SITE_NAME";

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
    /// Export to Application Insights; `None` (nothing is sent anywhere) without
    /// `APPLICATIONINSIGHTS_CONNECTION_STRING`.
    pub app_insights: Option<AppInsightsSettings>,
}

/// Where and as whom telemetry goes.
#[derive(Debug, Clone)]
pub struct AppInsightsSettings {
    /// The whole connection string, as the exporter parses it. Treated as a secret: its
    /// instrumentation key lets anyone write into the resource.
    pub connection_string: SecretString,
    /// `IngestionEndpoint`, for start-up logs (no key in it).
    pub ingestion_endpoint: Option<Url>,
    /// `WEBSITE_SITE_NAME`: the cloud role name (`pexip-sdk` when unset, as on a workstation).
    pub role_name: String,
}

impl TelemetrySettings {
    /// Read `LOG_FORMAT`, `RUST_LOG`, `APPLICATIONINSIGHTS_CONNECTION_STRING` and
    /// `WEBSITE_SITE_NAME`.
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
        let app_insights = env
            .get(APPLICATIONINSIGHTS_CONNECTION_STRING)
            .map(|raw| AppInsightsSettings::parse(raw, env.get(WEBSITE_SITE_NAME)))
            .transpose()?;
        Ok(Self {
            format,
            filter,
            app_insights,
        })
    }
}

impl AppInsightsSettings {
    /// Check the parts of a connection string the exporter needs (`InstrumentationKey`, and
    /// `IngestionEndpoint` as a URL when given); errors never echo the value.
    fn parse(raw: &str, site_name: Option<&str>) -> Result<Self, ConfigError> {
        let invalid =
            |reason: &str| ConfigError::invalid(APPLICATIONINSIGHTS_CONNECTION_STRING, reason);
        let mut key = None;
        let mut endpoint = None;
        for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(invalid("expected Name=value pairs separated by ';'"));
            };
            if name.eq_ignore_ascii_case("InstrumentationKey") {
                key = Some(value);
            } else if name.eq_ignore_ascii_case("IngestionEndpoint") {
                let url =
                    Url::parse(value).map_err(|_| invalid("IngestionEndpoint is not a URL"))?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(invalid("IngestionEndpoint must be an http(s) URL"));
                }
                endpoint = Some(url);
            }
        }
        if key.is_none_or(str::is_empty) {
            return Err(invalid("it has no InstrumentationKey"));
        }
        Ok(Self {
            connection_string: SecretString::from(raw.to_owned()),
            ingestion_endpoint: endpoint,
            role_name: site_name
                .filter(|s| !s.is_empty())
                .unwrap_or("pexip-sdk")
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<TelemetrySettings, ConfigError> {
        TelemetrySettings::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn telemetry_is_off_without_a_connection_string() {
        let s = settings(&[("WEBSITE_SITE_NAME", "app")]).unwrap();
        assert!(s.app_insights.is_none());
    }

    #[test]
    fn a_connection_string_turns_it_on_with_the_site_as_role() {
        let s = settings(&[
            (
                APPLICATIONINSIGHTS_CONNECTION_STRING,
                "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/",
            ),
            (WEBSITE_SITE_NAME, "func-pexip-prod"),
        ])
        .unwrap();
        let ai = s.app_insights.unwrap();
        assert_eq!(ai.role_name, "func-pexip-prod");
        assert_eq!(
            ai.ingestion_endpoint.unwrap().host_str(),
            Some("westeurope-5.in.applicationinsights.azure.com")
        );
        let local = settings(&[(
            APPLICATIONINSIGHTS_CONNECTION_STRING,
            "InstrumentationKey=k",
        )])
        .unwrap()
        .app_insights
        .unwrap();
        assert_eq!(local.role_name, "pexip-sdk");
    }

    #[test]
    fn a_bad_connection_string_is_named_without_its_value() {
        for bad in [
            "IngestionEndpoint=https://x.example/",
            "InstrumentationKey=;IngestionEndpoint=https://x.example/",
            "secret-key-without-names",
            "InstrumentationKey=secret-key;IngestionEndpoint=not a url",
            "InstrumentationKey=secret-key;IngestionEndpoint=ftp://x.example/",
        ] {
            let e = settings(&[(APPLICATIONINSIGHTS_CONNECTION_STRING, bad)]).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(APPLICATIONINSIGHTS_CONNECTION_STRING),
                "{text}"
            );
            assert!(!text.contains("secret-key"), "{text}");
        }
    }
}
