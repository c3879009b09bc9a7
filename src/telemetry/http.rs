//! The request telemetry of an HTTP invocation: one span per request, which the log lines
//! carry (with the host's invocation id) and which becomes an Application Insights request.
//!
//! Its name is the method and the **route template** (`POST /room/create`,
//! `GET /room/{name}`), never the raw path or the query: paths carry room names and queries
//! carry uuiData. A request that matched no route is named by its method alone. A W3C
//! `traceparent` on the incoming request is continued (the caller's operation id), so API
//! Management's or the caller's own telemetry joins ours.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::functions::INVOCATION_ID_HEADER;

/// The route whose latency is also a metric (`room_create_duration_ms`).
const CREATE_ROUTE: &str = "/room/create";

/// The span of one request. Runs after routing (it is a router layer), so the matched route
/// template is known.
pub fn request_span(request: &Request) -> tracing::Span {
    let invocation = request
        .headers()
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    // Application Insights names the request from these two fields; the span's own name is
    // only a fallback.
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = request.method().as_str(),
        http.route = route,
        http.response.status_code = Empty,
        invocation_id = %invocation,
        auth.client = Empty,
    );
    if super::exporting() {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        // Without a valid traceparent the context is empty and the span starts a new trace.
        let _ = span.set_parent(parent);
    }
    span
}

/// A layer inside the request span: records the status on it (a 5xx marks the request
/// failed; 4xx are the caller's) and the create latency metric.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let is_create = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| m.as_str() == CREATE_ROUTE);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let span = tracing::Span::current();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    if is_create {
        super::metrics::record_create(started.elapsed(), status);
    }
    response
}

/// Reads W3C trace-context headers from an axum request.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
