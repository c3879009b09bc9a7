//! The Azure Functions custom-handler protocol (host ↔ this binary), and nothing else.
//!
//! - HTTP functions are *forwarded*: the host sends the original request (method, path, query,
//!   headers, body) and passes our response back untouched, so the router serves them as-is.
//! - Timer functions are *invoked*: `POST /{function name}` with a JSON `InvokeRequest`; we must
//!   answer 2xx with `{"Outputs":{},"Logs":[…],"ReturnValue":null}` or the run counts as failed.
//! - Readiness: the host polls `GET /` until any HTTP response arrives.
//!
//! See docs/azure.md §1 Functions custom handlers, and `DefaultHttpWorkerService.cs` in
//! Azure/azure-functions-host.

mod layout;
mod schedule;

pub use layout::{AppLayout, FunctionDef, HttpFunction, LayoutError, TimerFunction};
pub use schedule::{Schedule, ScheduleError};

use serde::{Deserialize, Serialize};

/// Header the host adds to every call; we put it on the request span.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// What we use of a timer invocation. Every field is optional on the wire: `ScheduleStatus` is
/// null without the monitor, older hosts send `"Schedule":{}`, and before the first run `Last`
/// is `0001-01-01T00:00:00+00:00`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerInvocation {
    /// The host fired this run late (e.g. after downtime).
    pub is_past_due: bool,
    /// When the previous run happened, as the host reported it.
    pub last: Option<String>,
    /// When the host plans the next run.
    pub next: Option<String>,
}

impl TimerInvocation {
    /// Parse the host's `InvokeRequest` body leniently: a missing or malformed body yields the
    /// defaults, because refusing would fail the run and timers are not retried.
    pub fn from_body(body: &[u8]) -> Self {
        let Ok(request) = serde_json::from_slice::<InvokeRequest>(body) else {
            return Self::default();
        };
        // The trigger binding's name is ours to choose in function.json; take the first value
        // that looks like a timer rather than hard-coding "timer".
        let timer = request
            .data
            .into_values()
            .find_map(|v| serde_json::from_value::<TimerInfo>(v).ok())
            .unwrap_or_default();
        let status = timer.schedule_status.unwrap_or_default();
        Self {
            is_past_due: timer.is_past_due.unwrap_or(false),
            last: status.last,
            next: status.next,
        }
    }
}

/// The `InvokeRequest` body the host POSTs to `/{name}` to fire a timer: `last` is the
/// previous run as the host writes it (`0001-01-01T00:00:00+00:00` before the first), `next`
/// the planned next run, `now` this one. `dev` fires its timers with it, so it takes the path
/// Azure takes.
pub fn timer_invoke_request(
    name: &str,
    last: &str,
    next: time::OffsetDateTime,
    now: time::OffsetDateTime,
) -> serde_json::Value {
    serde_json::json!({
        "Data": {"timer": {
            "Schedule": {"AdjustForDST": true},
            "ScheduleStatus": {"Last": last, "Next": next.to_string(), "LastUpdated": now.to_string()},
            "IsPastDue": false,
        }},
        "Metadata": {"sys": {"MethodName": name, "UtcNow": now.to_string(), "RandGuid": uuid::Uuid::new_v4().to_string()}},
    })
}

#[derive(Debug, Deserialize, Default)]
struct InvokeRequest {
    #[serde(rename = "Data", default)]
    data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, Default)]
struct TimerInfo {
    #[serde(rename = "IsPastDue", default)]
    is_past_due: Option<bool>,
    #[serde(rename = "ScheduleStatus", default)]
    schedule_status: Option<ScheduleStatus>,
}

#[derive(Debug, Deserialize, Default)]
struct ScheduleStatus {
    #[serde(rename = "Last", default)]
    last: Option<String>,
    #[serde(rename = "Next", default)]
    next: Option<String>,
}

/// The answer to a non-forwarded invocation. Timers have no outputs; `Logs` are shown by the
/// host as Information logs of the invocation, so they carry the run's summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvokeResponse {
    #[serde(rename = "Outputs")]
    pub outputs: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Option<serde_json::Value>,
}

impl InvokeResponse {
    /// A timer's answer: no outputs, the given log lines, a null return value.
    pub fn with_logs(logs: Vec<String>) -> Self {
        Self {
            outputs: serde_json::Map::new(),
            logs,
            return_value: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documented_timer_payload_is_understood() {
        let body = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},
          "ScheduleStatus":{"Last":"2026-09-24T13:08:00.0096035+00:00","Next":"2026-09-24T13:09:00+00:00","LastUpdated":"2026-09-24T13:08:00.0096035+00:00"},
          "IsPastDue":true}},
          "Metadata":{"sys":{"MethodName":"gc_timer","UtcNow":"2026-09-24T13:08:00Z","RandGuid":"x"}}}"#;
        let t = TimerInvocation::from_body(body);
        assert!(t.is_past_due);
        assert_eq!(t.next.as_deref(), Some("2026-09-24T13:09:00+00:00"));
    }

    #[test]
    fn lenient_parse_accepts_every_variant_the_host_sends() {
        let bodies: [&[u8]; 6] = [
            br#"{"Data":{"myTimer":{"Schedule":{},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}"#,
            br#"{"Data":{"timer":{"ScheduleStatus":{"Last":"0001-01-01T00:00:00+00:00"}}}}"#,
            br#"{"Data":{}}"#,
            b"",
            b"not json",
            br#"{"input":""}"#,
        ];
        for body in bodies {
            let t = TimerInvocation::from_body(body);
            assert!(!t.is_past_due, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_timer_request_we_build_is_the_one_we_parse() {
        let now = time::macros::datetime!(2026-09-24 13:08:00 UTC);
        let body = timer_invoke_request(
            "gc_timer",
            "0001-01-01T00:00:00+00:00",
            now + time::Duration::minutes(10),
            now,
        );
        let t = TimerInvocation::from_body(body.to_string().as_bytes());
        assert_eq!(t.last.as_deref(), Some("0001-01-01T00:00:00+00:00"));
        assert_eq!(
            t.next,
            Some((now + time::Duration::minutes(10)).to_string())
        );
        assert_eq!(body["Metadata"]["sys"]["MethodName"], "gc_timer");
    }

    #[test]
    fn the_response_has_the_exact_shape_the_host_expects() {
        let r = InvokeResponse::with_logs(vec!["gc: deleted 2".into()]);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"Outputs":{},"Logs":["gc: deleted 2"],"ReturnValue":null}"#
        );
    }
}
