//! Logs and telemetry, set up once per process.
//!
//! - **Log lines** ([`console`]): compact text locally, JSON lines in Azure (`LOG_FORMAT`);
//!   TRACE–INFO on stdout, WARN and ERROR on stderr, so the Functions host files each line at
//!   its own level (docs/azure.md §1.7 How the host reads the handler's output).
//! - **Application Insights** ([`insights`]), only with `APPLICATIONINSIGHTS_CONNECTION_STRING`:
//!   through OpenTelemetry, a request per HTTP invocation ([`http`]), a dependency per
//!   Management API and storage attempt ([`dependency`]), a trace per log event, and the
//!   service's metrics ([`metrics`]). Without the setting nothing is installed: no exporter,
//!   no thread, no network, and the telemetry-only spans cost nothing (no layer wants them).
//!
//! Field names are stable and dotted (`room.name`, `pexip.status`, `duration_ms`) so that
//! queries in Log Analytics keep working. Never log PINs, tokens, keys, passwords, raw UUI
//! data or request bodies: the same events become Application Insights traces.

pub mod console;
pub mod dependency;
pub mod http;
mod insights;
pub mod metrics;

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogFormat, TelemetrySettings};

use self::console::{Console, Encoding};

/// Target of the spans that exist only for Application Insights (dependencies): the log
/// lines leave them out, since the events inside already say what happened.
pub const TELEMETRY_TARGET: &str = "pexip_sdk::otel";

/// Whether an Application Insights exporter is installed in this process.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether telemetry leaves the process (cheap; checked on the request path).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] installed. Keep it for the life of the process and call
/// [`Telemetry::shutdown`] at the end, so the last batch is sent.
#[must_use = "shut it down at exit, or the last telemetry is lost"]
pub struct Telemetry {
    insights: Option<insights::Providers>,
}

impl Telemetry {
    /// Send what is still buffered and stop the exporters, within `budget` (the host gives
    /// a stopping instance little time; an unreachable endpoint must not hold up the exit).
    /// Returns whether everything was flushed in time.
    pub fn shutdown(self, budget: Duration) -> bool {
        match self.insights {
            Some(providers) => providers.shutdown(budget),
            None => true,
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Install the global subscriber: the console, and Application Insights when configured.
/// A second call installs nothing (tests may call it repeatedly). Fails only when the
/// exporter refuses the connection string.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    let mut layers: Vec<BoxedLayer> = vec![console_layer(settings)];
    let insights = match &settings.app_insights {
        Some(ai) => {
            let providers = insights::Providers::start(ai)?;
            layers.extend(providers.layers(&settings.filter));
            Some(providers)
        }
        None => None,
    };
    if Registry::default().with(layers).try_init().is_err() {
        // Someone installed a subscriber first: ours would never see an event.
        if let Some(providers) = insights {
            providers.shutdown(Duration::from_secs(1));
        }
        return Ok(Telemetry { insights: None });
    }
    if let Some(providers) = &insights {
        providers.install_globals();
        EXPORTING.store(true, Ordering::Relaxed);
    }
    install_panic_hook();
    Ok(Telemetry { insights })
}

/// The log lines: `RUST_LOG` decides what is written, never the telemetry-only spans.
fn console_layer(settings: &TelemetrySettings) -> BoxedLayer {
    // Colours only for a person at a terminal; the host and log files get plain text.
    let ansi = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let layer = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let filter = env_filter(&settings.filter).and(not_telemetry_only());
    match settings.format {
        LogFormat::Text => layer
            .compact()
            .with_writer(Console::new(Encoding::Text))
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(Console::new(Encoding::Json))
            .with_filter(filter)
            .boxed(),
    }
}

/// `RUST_LOG`, or `info` when it does not parse.
fn env_filter(directives: &str) -> EnvFilter {
    EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

fn not_telemetry_only<S>() -> impl tracing_subscriber::layer::Filter<S> + Clone
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    filter_fn(|meta| meta.target() != TELEMETRY_TARGET)
}

/// A panic's message as one ERROR record (the default hook writes several lines to stderr,
/// which the host files one by one, and nothing reaches Application Insights).
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic.location = %location, panic.message = %message, "panic");
        // Backtraces (RUST_BACKTRACE) still come from the default hook.
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default(info);
        }
    }));
}
