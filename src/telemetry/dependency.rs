//! Dependency telemetry: one span per HTTP attempt to the Management API or to Azure
//! Storage, which Application Insights shows as a dependency (target host, method and route
//! template, status, duration). A retry is its own attempt, so its own dependency.
//!
//! Names and data are **templates**: numeric ids, queue names and message ids are replaced by
//! `{id}`, `{queue}`, `{messageid}`, and no query string is ever kept (Pexip filter values,
//! storage pop receipts and SAS signatures live there).
//!
//! The spans use [`super::TELEMETRY_TARGET`]: the log lines leave them out, and without an
//! exporter no layer wants them, so they are never built (the macros skip even the field
//! values).
//!
//! Storage calls are hooked with `StoragePolicy`, an Azure SDK per-try pipeline policy that
//! every `azure_storage_*` client takes through `storage::Access` (queues and the allocation
//! records' blobs alike).

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use tracing::Instrument as _;
use tracing::field::Empty;

use super::TELEMETRY_TARGET;
use crate::storage::Service;

/// The span of one HTTP attempt to the host of `base` (only its scheme, host and port are
/// used) with `method` on `template` (a whole path as a template, no query). `operation` names what a storage request does when its path
/// does not say (`metadata`, `container`).
pub fn http_span(
    method: &str,
    base: &url::Url,
    template: &str,
    operation: Option<&str>,
) -> tracing::Span {
    tracing::info_span!(
        target: TELEMETRY_TARGET,
        "dependency",
        otel.name = %format_args!("{method} {template}"),
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method,
        storage.operation = operation,
        server.address = base.host_str().unwrap_or(""),
        server.port = base.port_or_known_default(),
        url.full = %format_args!("{}{template}", base.origin().ascii_serialization()),
        http.response.status_code = Empty,
    )
}

/// Record an attempt's outcome: its status, if an answer came, and whether it failed.
pub fn record_outcome(span: &tracing::Span, status: Option<u16>, failed: bool) {
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    span.record("otel.status_code", if failed { "error" } else { "ok" });
}

/// The span of one Management API attempt: `path` (query included, as sent) below the
/// node's `base` URL. A disabled span when nothing is exported.
pub fn pexip_span(method: &str, base: &url::Url, path: &str) -> tracing::Span {
    if !super::exporting() {
        return tracing::Span::none();
    }
    let template = format!(
        "{}{}",
        base.path().trim_end_matches('/'),
        pexip_template(path)
    );
    http_span(method, base, &template, None)
}

/// The span of one token request to `token_url` (`POST /oauth/token/`, no query).
pub fn token_span(token_url: &str) -> tracing::Span {
    if !super::exporting() {
        return tracing::Span::none();
    }
    match url::Url::parse(token_url) {
        Ok(url) => http_span("POST", &url, url.path(), None),
        Err(_) => tracing::Span::none(),
    }
}

/// A Management API path as a template: the query dropped, numeric segments as `{id}`.
/// `/api/admin/configuration/v1/conference/12/?x=1` → `/api/admin/configuration/v1/conference/{id}/`.
pub fn pexip_template(path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path.split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// An Azure SDK per-try policy that makes each storage attempt a dependency. First in
/// `per_try_policies` (`storage::Access::client_options` puts it there for the queue and the
/// blob clients alike), so it times the signing and the exchange, and sees every retry.
///
/// The service decides how a path becomes a template: queues as `/{queue}`,
/// `/{queue}/messages`, `/{queue}/messages/{messageid}`; blobs as `/{container}`,
/// `/{container}/{blob}`.
#[derive(Debug)]
pub(crate) struct StoragePolicy {
    service: Service,
    /// The service endpoint's path (`/devstoreaccount1` on Azurite, empty on Azure): kept as
    /// is, the rest of a request path is templated.
    base_path: String,
}

impl StoragePolicy {
    /// A policy for the client of `service` at `endpoint`.
    pub(crate) fn new(service: Service, endpoint: &url::Url) -> Arc<Self> {
        Arc::new(Self {
            service,
            base_path: endpoint.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The path of `url` as a template (no query).
    pub(crate) fn template(&self, url: &url::Url) -> String {
        let path = url.path();
        let rest = path.strip_prefix(self.base_path.as_str()).unwrap_or(path);
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let templated: Vec<&str> = match (self.service, segments.as_slice()) {
            (_, []) => vec![],
            (Service::Queue, [_]) => vec!["{queue}"],
            (Service::Queue, [_, "messages"]) => vec!["{queue}", "messages"],
            (Service::Queue, [_, "messages", _]) => {
                vec!["{queue}", "messages", "{messageid}"]
            }
            (Service::Blob, [_]) => vec!["{container}"],
            (Service::Blob, [_, ..]) => vec!["{container}", "{blob}"],
            // Anything else the SDK may send one day: its shape, not its names.
            (_, other) => other.iter().map(|_| "{segment}").collect(),
        };
        let mut template = self.base_path.clone();
        for segment in templated {
            template.push('/');
            template.push_str(segment);
        }
        if template.is_empty() {
            template.push('/');
        }
        template
    }
}

#[async_trait]
impl Policy for StoragePolicy {
    // The trait declares `&Context` with an elided lifetime; see `queue::shared_key`.
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        if !super::exporting() {
            return next[0].send(ctx, request, &next[1..]).await;
        }
        // `comp=metadata`, `restype=container`: what a GET or PUT on that path was. The value
        // is a fixed word of the REST API, never data.
        let operation = request
            .url()
            .query_pairs()
            .find(|(name, _)| name == "comp" || name == "restype")
            .map(|(_, value)| value.into_owned());
        let span = http_span(
            request.method().as_str(),
            request.url(),
            &self.template(request.url()),
            operation.as_deref(),
        );
        let result = next[0]
            .send(ctx, request, &next[1..])
            .instrument(span.clone())
            .await;
        match &result {
            Ok(response) => {
                let status = u16::from(response.status());
                record_outcome(&span, Some(status), status >= 400);
            }
            Err(e) => record_outcome(&span, e.http_status().map(u16::from), true),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pexip_paths_become_templates_without_queries() {
        assert_eq!(
            pexip_template("/api/admin/configuration/v1/conference/12/?pin=1234"),
            "/api/admin/configuration/v1/conference/{id}/"
        );
        assert_eq!(
            pexip_template("/api/admin/status/v1/conference/?name=vbv-abc&limit=500"),
            "/api/admin/status/v1/conference/"
        );
        assert_eq!(pexip_template("/oauth/token/"), "/oauth/token/");
    }

    #[test]
    fn storage_paths_become_templates_on_azurite_and_azure() {
        let azurite = url::Url::parse("http://127.0.0.1:10001/devstoreaccount1").unwrap();
        let policy = StoragePolicy::new(Service::Queue, &azurite);
        let cases = [
            (
                "http://127.0.0.1:10001/devstoreaccount1/room-creation-queue/messages/5e1f?popreceipt=AgAAAA%3D%3D",
                "/devstoreaccount1/{queue}/messages/{messageid}",
            ),
            (
                "http://127.0.0.1:10001/devstoreaccount1/room-creation-queue/messages?numofmessages=1",
                "/devstoreaccount1/{queue}/messages",
            ),
            (
                "http://127.0.0.1:10001/devstoreaccount1/room-deletion-queue?comp=metadata",
                "/devstoreaccount1/{queue}",
            ),
        ];
        for (url, template) in cases {
            assert_eq!(policy.template(&url::Url::parse(url).unwrap()), template);
        }
        let azure = url::Url::parse("https://acct.queue.core.windows.net").unwrap();
        let policy = StoragePolicy::new(Service::Queue, &azure);
        assert_eq!(
            policy.template(
                &url::Url::parse("https://acct.queue.core.windows.net/q1/messages").unwrap()
            ),
            "/{queue}/messages"
        );
        let blobs = StoragePolicy::new(
            Service::Blob,
            &url::Url::parse("https://acct.blob.core.windows.net/").unwrap(),
        );
        assert_eq!(
            blobs.template(
                &url::Url::parse("https://acct.blob.core.windows.net/locks/calls/abc.json?sig=x")
                    .unwrap()
            ),
            "/{container}/{blob}"
        );
    }
}
