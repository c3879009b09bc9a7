//! The Application Insights pipeline: one exporter (`opentelemetry-application-insights`, which
//! posts gzipped JSON envelopes to `{IngestionEndpoint}/v2/track`; docs/azure.md §9
//! Application Insights) behind the OpenTelemetry SDK's three providers.
//!
//! - Spans → requests and dependencies, through `tracing-opentelemetry`, which turns the
//!   tracing spans that declare `otel.kind` into OpenTelemetry spans (and makes each one the
//!   current OpenTelemetry context while it is entered, so logs and child spans share its
//!   operation id).
//! - Events → traces, through the log bridge, with the event's level as severity.
//! - Metrics → custom metrics, read every [`METRICS_INTERVAL`].
//!
//! Export runs on the SDK's own threads, in batches, never on the request path. Each queue
//! is bounded ([`QUEUE_SIZE`] spans, as many log records): when the endpoint is down, what
//! does not fit is dropped, so memory stays flat however long the outage lasts. The
//! exporter's HTTP client is a blocking one because those threads run no async runtime.
//!
//! Why this exporter: it is the one maintained Rust exporter that speaks the ingestion API
//! directly (Microsoft's own Rust crate for Azure Monitor is an OpenTelemetry bridge for the
//! Azure SDK's spans, in beta, with no exporter), and the alternative — an OpenTelemetry
//! Collector beside a Functions app — has nowhere to run on Flex Consumption.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_application_insights::Exporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use secrecy::ExposeSecret as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};

use super::{BoxedLayer, env_filter};
use crate::config::AppInsightsSettings;

/// Spans (and, separately, log records) waiting for export at most. About 1 KiB each.
const QUEUE_SIZE: usize = 2048;
/// Items per upload.
const BATCH_SIZE: usize = 512;
/// How long items wait for a batch to fill before they are sent anyway.
const BATCH_DELAY: Duration = Duration::from_secs(5);
/// How often metrics are read and sent.
pub(super) const METRICS_INTERVAL: Duration = Duration::from_secs(60);
/// One upload attempt at most (the exporter retries within its own limit).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Instrumentation scope of our spans, logs and metrics.
pub(super) const SCOPE: &str = "pexip-sdk";

/// The three providers sharing one exporter.
pub(super) struct Providers {
    traces: SdkTracerProvider,
    logs: SdkLoggerProvider,
    metrics: SdkMeterProvider,
}

impl Providers {
    /// Build the exporter and the providers (their threads start here; nothing is sent until
    /// there is something to send).
    pub(super) fn start(settings: &AppInsightsSettings) -> anyhow::Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(UPLOAD_TIMEOUT)
            .connect_timeout(UPLOAD_TIMEOUT / 2)
            .build()
            .context("Application Insights: HTTP client")?;
        let exporter =
            Exporter::new_from_connection_string(settings.connection_string.expose_secret(), http)
                // The exporter's message could quote the string, which holds the key.
                .map_err(|_| {
                    anyhow::anyhow!(
                        "{} is invalid: the exporter does not accept it",
                        crate::config::APPLICATIONINSIGHTS_CONNECTION_STRING
                    )
                })?;
        let resource = Resource::builder_empty()
            .with_attributes([
                // service.name → the cloud role name (ai.cloud.role).
                KeyValue::new("service.name", settings.role_name.clone()),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build();
        let traces = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_span_processor(
                BatchSpanProcessor::builder(exporter.clone())
                    .with_batch_config(
                        opentelemetry_sdk::trace::BatchConfigBuilder::default()
                            .with_max_queue_size(QUEUE_SIZE)
                            .with_max_export_batch_size(BATCH_SIZE)
                            .with_scheduled_delay(BATCH_DELAY)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let logs = SdkLoggerProvider::builder()
            .with_resource(resource.clone())
            .with_log_processor(
                BatchLogProcessor::builder(exporter.clone())
                    .with_batch_config(
                        opentelemetry_sdk::logs::BatchConfigBuilder::default()
                            .with_max_queue_size(QUEUE_SIZE)
                            .with_max_export_batch_size(BATCH_SIZE)
                            .with_scheduled_delay(BATCH_DELAY)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let metrics = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(METRICS_INTERVAL)
                    .build(),
            )
            .build();
        Ok(Self {
            traces,
            logs,
            metrics,
        })
    }

    /// The tracing layers feeding the providers:
    /// - spans that declare `otel.kind` become OpenTelemetry spans (and only spans: an event
    ///   is a trace through the log bridge, not a span event as well);
    /// - events that `RUST_LOG` lets through become log records, except those of the HTTP
    ///   stack the exporter itself uses (an upload would log, and the log would be uploaded).
    pub(super) fn layers(&self, directives: &str) -> Vec<BoxedLayer> {
        let spans = tracing_opentelemetry::layer()
            .with_tracer(self.traces.tracer(SCOPE))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(filter_fn(|meta| {
                meta.is_span() && meta.fields().field("otel.kind").is_some()
            }));
        let logs =
            OpenTelemetryTracingBridge::new(&self.logs).with_filter(env_filter(directives).and(
                filter_fn(|meta| meta.is_event() && !is_transport_target(meta.target())),
            ));
        vec![Box::new(spans), Box::new(logs)]
    }

    /// Make these providers the process's: the meter that [`super::metrics`] records on, the
    /// W3C `traceparent` propagation that [`super::http`] continues.
    pub(super) fn install_globals(&self) {
        opentelemetry::global::set_meter_provider(self.metrics.clone());
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }

    /// Flush and stop all three in parallel, waiting `budget` at most.
    pub(super) fn shutdown(self, budget: Duration) -> bool {
        let (done, finished) = mpsc::channel();
        let Self {
            traces,
            logs,
            metrics,
        } = self;
        let jobs: Vec<Box<dyn FnOnce() + Send>> = vec![
            Box::new(move || drop(metrics.shutdown())),
            Box::new(move || drop(traces.shutdown())),
            Box::new(move || drop(logs.shutdown())),
        ];
        let count = jobs.len();
        for job in jobs {
            let done = done.clone();
            // Plain threads: the blocking exporter must not run on an async runtime's worker,
            // and a stuck upload must not keep the process from exiting (they are detached).
            std::thread::spawn(move || {
                job();
                let _ = done.send(());
            });
        }
        let deadline = std::time::Instant::now() + budget;
        (0..count).all(|_| {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            finished.recv_timeout(left).is_ok()
        })
    }
}

/// Crates whose events the exporter's own uploads produce.
fn is_transport_target(target: &str) -> bool {
    ["hyper", "h2", "reqwest", "rustls", "opentelemetry"]
        .iter()
        .any(|prefix| target.starts_with(prefix))
}
