//! Fault injection for `/api/admin/**` and `/oauth/token/`: added latency, an injected status
//! (429 with `Retry-After`, 5xx), "500 after create" (Pexip can create a room and still answer
//! 500, caseflow #13892), a dropped connection, and a *late* write: the request is answered
//! with an error (or its connection dropped) at once and carried out `ms` later anyway, as
//! when a gateway in front of the Management Node times out while the node goes on.
//!
//! A fault applies with a probability (`rate`) or to the next `count` matching requests, and
//! can be narrowed by `method` and `path_prefix`. Latency faults add up; of the status, drop
//! and late faults the oldest matching one wins; `after_create` is decided after the handler
//! ran, and only for a `POST` answered 201.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::net::ConnSwitch;
use super::state::Shared;

/// One injected fault; the JSON of `POST /_sim/faults`, e.g.
/// `{"kind": "status", "status": 429, "retry_after": 2, "count": 1, "method": "GET"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability (0..=1) that a matching request is hit; `None` means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Hit only the next `count` matching requests, then disappear; `None` means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Only requests with this method (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Only requests whose path starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

/// The kinds of fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Delay the request by `ms` before it is handled (it stays in flight meanwhile).
    Latency { ms: u64 },
    /// Answer `status` (empty body) instead of handling the request, with an optional
    /// `Retry-After: <seconds>`.
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Handle a `POST` create, and when it succeeded (201) answer 500 instead.
    AfterCreate,
    /// Close the connection without answering.
    Drop,
    /// Answer `status` (empty body) at once — or, without a status, close the connection —
    /// and handle the request `ms` later anyway: the write lands after its caller saw it fail.
    Late {
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
}

impl Fault {
    /// A fault of `kind` that hits every matching request.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            rate: None,
            count: None,
            method: None,
            path_prefix: None,
        }
    }

    /// Added latency.
    pub fn latency(ms: u64) -> Self {
        Self::new(FaultKind::Latency { ms })
    }

    /// An injected status without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status {
            status,
            retry_after: None,
        })
    }

    /// An injected status with `Retry-After: <seconds>`.
    pub fn status_with_retry_after(status: u16, seconds: u64) -> Self {
        Self::new(FaultKind::Status {
            status,
            retry_after: Some(seconds),
        })
    }

    /// "500 after create".
    pub fn after_create() -> Self {
        Self::new(FaultKind::AfterCreate)
    }

    /// A dropped connection.
    pub fn drop_connection() -> Self {
        Self::new(FaultKind::Drop)
    }

    /// A late write: answer `status` now (or drop the connection when `None`), handle the
    /// request `ms` later.
    pub fn late(ms: u64, status: Option<u16>) -> Self {
        Self::new(FaultKind::Late { ms, status })
    }

    /// Apply to the next `n` matching requests only.
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    /// Apply with probability `rate` (0..=1).
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Only requests with this method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Only requests whose path starts with `prefix`.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Why this fault cannot be used, if it cannot (checked by `POST /_sim/faults`).
    pub(crate) fn problem(&self) -> Option<String> {
        if let Some(rate) = self.rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Some(format!("rate must be between 0 and 1 (got {rate})"));
        }
        let status = match self.kind {
            FaultKind::Status { status, .. }
            | FaultKind::Late {
                status: Some(status),
                ..
            } => Some(status),
            _ => None,
        };
        if let Some(status) = status
            && !(400..=599).contains(&status)
        {
            return Some(format!("status must be 400..=599 (got {status})"));
        }
        None
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }

    fn rolls_a_hit(&self) -> bool {
        self.rate.is_none_or(|rate| rand::random::<f64>() < rate)
    }
}

/// A registered fault and what is left of its count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FaultEntry {
    pub(crate) id: u64,
    #[serde(flatten)]
    pub(crate) fault: Fault,
    /// Hits left (from `count`); absent when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) remaining: Option<u64>,
}

/// What to do to a request before it is handled.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) delay: Duration,
    pub(crate) action: Option<Action>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Drop,
    Late {
        delay: Duration,
        status: Option<u16>,
    },
}

/// The registered faults, oldest first.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    next_id: u64,
    entries: Vec<FaultEntry>,
}

impl FaultTable {
    pub(crate) fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        let remaining = fault.count;
        self.entries.push(FaultEntry {
            id: self.next_id,
            fault,
            remaining,
        });
        self.next_id
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        self.entries.len() != before
    }

    pub(crate) fn list(&self) -> Vec<FaultEntry> {
        self.entries.clone()
    }

    /// Decide latency and an early answer for a request, consuming counts of what applies.
    pub(crate) fn before(&mut self, method: &Method, path: &str) -> Plan {
        let mut plan = Plan::default();
        for entry in &mut self.entries {
            let applies = match entry.fault.kind {
                FaultKind::AfterCreate => false,
                FaultKind::Latency { .. } => true,
                FaultKind::Status { .. } | FaultKind::Drop | FaultKind::Late { .. } => {
                    plan.action.is_none()
                }
            };
            if !applies || !entry.fault.matches(method, path) || !entry.fault.rolls_a_hit() {
                continue;
            }
            match entry.fault.kind {
                FaultKind::Latency { ms } => plan.delay += Duration::from_millis(ms),
                FaultKind::Status {
                    status,
                    retry_after,
                } => {
                    plan.action = Some(Action::Status {
                        status,
                        retry_after,
                    })
                }
                FaultKind::Drop => plan.action = Some(Action::Drop),
                FaultKind::Late { ms, status } => {
                    plan.action = Some(Action::Late {
                        delay: Duration::from_millis(ms),
                        status,
                    })
                }
                FaultKind::AfterCreate => {}
            }
            consume(entry);
        }
        self.entries.retain(|e| e.remaining != Some(0));
        plan
    }

    /// Whether a successful create should be answered 500 instead.
    pub(crate) fn after_create(&mut self, method: &Method, path: &str) -> bool {
        let hit = self.entries.iter_mut().find(|e| {
            e.fault.kind == FaultKind::AfterCreate
                && e.fault.matches(method, path)
                && e.fault.rolls_a_hit()
        });
        let Some(entry) = hit else { return false };
        consume(entry);
        self.entries.retain(|e| e.remaining != Some(0));
        true
    }
}

fn consume(entry: &mut FaultEntry) {
    if let Some(n) = entry.remaining.as_mut() {
        *n = n.saturating_sub(1);
    }
}

/// Largest body a late write keeps (configuration writes are a few hundred bytes).
const LATE_BODY_LIMIT: usize = 1 << 20;

/// Middleware applying the fault table to one request.
pub(crate) async fn apply(
    State(state): State<Shared>,
    ConnectInfo(switch): ConnectInfo<ConnSwitch>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let plan = state
        .faults
        .lock()
        .expect("faults lock")
        .before(&method, &path);
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    match plan.action {
        Some(Action::Status {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = status.into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
        }
        Some(Action::Drop) => {
            // The answer below is never written: the cut stream fails hyper's first write.
            switch.cut();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Action::Late { delay, status }) => {
            // Read the body now: the connection may be gone by the time the write lands.
            let (parts, body) = request.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, LATE_BODY_LIMIT).await else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let later = Request::from_parts(parts, Body::from(bytes));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // Through the credential gate and the handler, exactly as if on time.
                let _ = next.run(later).await;
            });
            return match status {
                Some(status) => StatusCode::from_u16(status)
                    .unwrap_or(StatusCode::GATEWAY_TIMEOUT)
                    .into_response(),
                None => {
                    switch.cut();
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            };
        }
        None => {}
    }
    let response = next.run(request).await;
    if method == Method::POST
        && response.status() == StatusCode::CREATED
        && state
            .faults
            .lock()
            .expect("faults lock")
            .after_create(&method, &path)
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_json_is_flat_with_a_kind_tag() {
        let fault = Fault::status_with_retry_after(429, 2)
            .count(1)
            .method("GET");
        let json = serde_json::to_value(&fault).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "status", "status": 429, "retry_after": 2, "count": 1, "method": "GET"})
        );
        let back: Fault = serde_json::from_value(json).unwrap();
        assert_eq!(back, fault);
        let drop: Fault = serde_json::from_str(r#"{"kind":"drop","rate":0.5}"#).unwrap();
        assert_eq!(drop, Fault::drop_connection().rate(0.5));
        let late: Fault = serde_json::from_str(r#"{"kind":"late","ms":300,"status":504}"#).unwrap();
        assert_eq!(late, Fault::late(300, Some(504)));
        let cut: Fault = serde_json::from_str(r#"{"kind":"late","ms":5}"#).unwrap();
        assert_eq!(cut, Fault::late(5, None));
        assert_eq!(
            serde_json::to_value(&cut).unwrap(),
            serde_json::json!({"kind": "late", "ms": 5})
        );
    }

    #[test]
    fn a_counted_fault_hits_exactly_count_matching_requests() {
        let mut table = FaultTable::default();
        table.add(
            Fault::status(503)
                .count(2)
                .method("get")
                .path_prefix("/api/admin/"),
        );
        let get = Method::GET;
        assert_eq!(table.before(&Method::POST, "/api/admin/x/").action, None);
        assert_eq!(table.before(&get, "/oauth/token/").action, None);
        for _ in 0..2 {
            assert_eq!(
                table.before(&get, "/api/admin/x/").action,
                Some(Action::Status {
                    status: 503,
                    retry_after: None
                })
            );
        }
        assert_eq!(table.before(&get, "/api/admin/x/").action, None);
        assert!(table.list().is_empty());
    }

    #[test]
    fn latencies_add_up_and_the_oldest_status_wins() {
        let mut table = FaultTable::default();
        table.add(Fault::latency(10));
        table.add(Fault::drop_connection().count(1));
        table.add(Fault::latency(5));
        table.add(Fault::status(500).count(1));
        let plan = table.before(&Method::GET, "/");
        assert_eq!(plan.delay, Duration::from_millis(15));
        assert_eq!(plan.action, Some(Action::Drop));
        // The status fault was not consumed by the request the drop fault took.
        assert_eq!(
            table.before(&Method::GET, "/").action,
            Some(Action::Status {
                status: 500,
                retry_after: None
            })
        );
    }

    #[test]
    fn a_zero_rate_never_hits_and_validation_catches_nonsense() {
        let mut table = FaultTable::default();
        table.add(Fault::status(500).rate(0.0));
        assert_eq!(table.before(&Method::GET, "/").action, None);
        assert!(Fault::status(200).problem().is_some());
        assert!(Fault::latency(1).rate(1.5).problem().is_some());
        assert!(Fault::after_create().problem().is_none());
        assert!(Fault::late(1, Some(200)).problem().is_some());
        assert!(Fault::late(1, None).problem().is_none());
    }

    #[test]
    fn a_late_fault_is_an_early_answer_that_competes_with_status_and_drop() {
        let mut table = FaultTable::default();
        table.add(Fault::late(250, Some(504)).count(1).method("PATCH"));
        table.add(Fault::status(503).count(1));
        assert_eq!(
            table.before(&Method::PATCH, "/x/").action,
            Some(Action::Late {
                delay: Duration::from_millis(250),
                status: Some(504)
            })
        );
        assert_eq!(
            table.before(&Method::PATCH, "/x/").action,
            Some(Action::Status {
                status: 503,
                retry_after: None
            })
        );
    }
}
