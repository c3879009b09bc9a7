//! [`PexipError`]: what went wrong talking to the Management Node, classified so a caller can
//! act on it (retry later, fix the input, fix the credentials, give up), and the mapping from
//! HTTP outcomes to those classes.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// A failed Management API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PexipError {
    /// 404: the object does not exist (for deletes the client turns this into
    /// [`super::Deleted::AlreadyGone`]).
    #[error("Pexip: not found")]
    NotFound,
    /// 400: Pexip refused the input. `fields` holds Pexip's per-field messages
    /// (`{"conference": {"name": ["..."]}}` flattens to `name -> ["..."]`); `message` is a
    /// one-line summary (or Pexip's `{"error": ".."}` text for bad filters).
    #[error("Pexip refused the request: {message}")]
    Validation {
        /// Field name to Pexip's messages for it.
        fields: BTreeMap<String, Vec<String>>,
        /// A one-line summary.
        message: String,
    },
    /// 401/403, or the token endpoint refused our assertion: the credentials are wrong, expired
    /// beyond one renewal, or lack a permission.
    #[error("Pexip refused our credentials")]
    Unauthorized,
    /// 429: too many requests; `retry_after` is Pexip's `Retry-After` when it sent one.
    #[error("Pexip is rate limiting us")]
    RateLimited {
        /// How long Pexip asked us to wait.
        retry_after: Option<Duration>,
    },
    /// 502/503/504, a connection failure or a timeout: the node is down or overloaded.
    #[error("Pexip is unavailable: {reason}")]
    Unavailable {
        /// What happened, without secrets or bodies.
        reason: String,
    },
    /// Anything else: a 500, an unexpected status, a body we cannot read.
    #[error("Pexip error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Other {
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The client cannot be built or used as configured (bad key, bad URL).
    #[error("Pexip client configuration: {0}")]
    Config(String),
}

impl PexipError {
    /// The class of this error, for counters and logs.
    pub fn class(&self) -> ErrorClass {
        match self {
            PexipError::NotFound => ErrorClass::NotFound,
            PexipError::Validation { .. } => ErrorClass::Validation,
            PexipError::Unauthorized => ErrorClass::Unauthorized,
            PexipError::RateLimited { .. } => ErrorClass::RateLimited,
            PexipError::Unavailable { .. } => ErrorClass::Unavailable,
            PexipError::Other { .. } | PexipError::Config(_) => ErrorClass::Other,
        }
    }

    /// A transient failure worth retrying for an idempotent request (GET, PATCH with the
    /// same body, DELETE): 429, 500, 502/503/504, connection errors and timeouts. A 500 is
    /// retried as Pexip's own Go SDK retries it (docs/pexip.md §1.6): resending the same
    /// request cannot do more than the first attempt did. A create is never resent blindly
    /// on any of these: it is looked up first (handled separately).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PexipError::RateLimited { .. }
                | PexipError::Unavailable { .. }
                | PexipError::Other {
                    status: Some(500),
                    ..
                }
        )
    }

    /// Whether the request may have been applied although it failed: a create that got this
    /// must be looked up before it is sent again. Rate limiting is included because a proxy
    /// in front of Pexip could answer 429 late; the lookup is cheap.
    pub fn may_have_applied(&self) -> bool {
        match self {
            PexipError::RateLimited { .. } | PexipError::Unavailable { .. } => true,
            PexipError::Other { status, .. } => status.is_none_or(|s| s >= 500),
            _ => false,
        }
    }

    /// Map a non-success response to an error. `body` is only parsed for Pexip's error shapes
    /// and never copied whole into a message (it could echo a PIN back).
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        match status.as_u16() {
            404 => PexipError::NotFound,
            400 => validation_from_body(body),
            401 | 403 => PexipError::Unauthorized,
            429 => PexipError::RateLimited {
                retry_after: retry_after(headers),
            },
            502..=504 => PexipError::Unavailable {
                reason: format!("HTTP {}", status.as_u16()),
            },
            code => PexipError::Other {
                status: Some(code),
                message: error_text(body)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
            },
        }
    }

    /// Map a transport failure (no usable response) to an error.
    pub(crate) fn from_transport(err: &reqwest::Error) -> Self {
        // reqwest's Display may include the URL; ours carry no secrets (query values of
        // filters are never secret in this client), but keep the reason short anyway.
        let reason = if err.is_timeout() {
            "timed out".to_owned()
        } else if err.is_connect() {
            "cannot connect".to_owned()
        } else if err.is_body() || err.is_request() {
            "connection failed before a complete response".to_owned()
        } else if err.is_decode() {
            return PexipError::Other {
                status: err.status().map(|s| s.as_u16()),
                message: "cannot read the response body".to_owned(),
            };
        } else {
            "transport error".to_owned()
        };
        PexipError::Unavailable { reason }
    }
}

/// The error classes counted by [`super::ClientStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// [`PexipError::NotFound`].
    NotFound,
    /// [`PexipError::Validation`].
    Validation,
    /// [`PexipError::Unauthorized`].
    Unauthorized,
    /// [`PexipError::RateLimited`].
    RateLimited,
    /// [`PexipError::Unavailable`].
    Unavailable,
    /// [`PexipError::Other`] and [`PexipError::Config`].
    Other,
}

/// `Retry-After` as delay-seconds. The HTTP-date form is not used by Pexip (or any proxy we
/// know in front of it) and is ignored rather than guessed.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Pexip's 400 shapes: `{"<resource>": {"<field>": ["msg", ..]}}` for validation and
/// `{"error": "msg"}` for bad filters or JSON.
fn validation_from_body(body: &[u8]) -> PexipError {
    let mut fields = BTreeMap::new();
    let mut message = None;
    if let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(body) {
        for (key, value) in &top {
            match value {
                Value::String(text) if key == "error" => message = Some(text.clone()),
                Value::Object(per_field) => {
                    for (field, msgs) in per_field {
                        fields.insert(field.clone(), messages(msgs));
                    }
                }
                // `{"field": ["msg"]}` without the resource key, seen from some proxies.
                Value::Array(_) | Value::String(_) => {
                    fields.insert(key.clone(), messages(value));
                }
                _ => {}
            }
        }
    }
    let message = message.unwrap_or_else(|| {
        if fields.is_empty() {
            "bad request".to_owned()
        } else {
            fields
                .iter()
                .map(|(field, msgs)| format!("{field}: {}", msgs.join(" ")))
                .collect::<Vec<_>>()
                .join("; ")
        }
    });
    PexipError::Validation { fields, message }
}

fn messages(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    }
}

/// The `error` string of a JSON error body, if there is one.
fn error_text(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(map) => map.get("error")?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn classify(status: u16, body: &str) -> PexipError {
        PexipError::from_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn statuses_map_to_the_classes_a_caller_acts_on() {
        let cases = [
            (404, ErrorClass::NotFound),
            (400, ErrorClass::Validation),
            (401, ErrorClass::Unauthorized),
            (403, ErrorClass::Unauthorized),
            (429, ErrorClass::RateLimited),
            (502, ErrorClass::Unavailable),
            (503, ErrorClass::Unavailable),
            (504, ErrorClass::Unavailable),
            (500, ErrorClass::Other),
            (405, ErrorClass::Other),
        ];
        for (status, class) in cases {
            assert_eq!(classify(status, "").class(), class, "status {status}");
        }
    }

    #[test]
    fn pexip_field_messages_are_kept_per_field() {
        let err = classify(
            400,
            r#"{"conference": {"name": ["Virtual Meeting Room with this Name already exists."], "pin": ["bad", "worse"]}}"#,
        );
        let PexipError::Validation { fields, message } = err else {
            panic!("expected validation");
        };
        assert_eq!(
            fields["name"],
            ["Virtual Meeting Room with this Name already exists."]
        );
        assert_eq!(fields["pin"], ["bad", "worse"]);
        assert!(message.contains("name: Virtual Meeting Room"), "{message}");
    }

    #[test]
    fn a_filter_error_keeps_pexips_message() {
        let err = classify(
            400,
            r#"{"error": "The 'nope' field does not allow filtering."}"#,
        );
        let PexipError::Validation { fields, message } = err else {
            panic!("expected validation");
        };
        assert!(fields.is_empty());
        assert_eq!(message, "The 'nope' field does not allow filtering.");
    }

    #[test]
    fn retry_after_seconds_are_read_and_dates_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let err = PexipError::from_response(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
        assert!(matches!(
            err,
            PexipError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
        ));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let err = PexipError::from_response(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
        assert!(matches!(err, PexipError::RateLimited { retry_after: None }));
    }

    #[test]
    fn rate_limits_500_and_unavailability_are_transient() {
        assert!(classify(429, "").is_transient());
        assert!(classify(503, "").is_transient());
        assert!(classify(500, "").is_transient());
        assert!(!classify(501, "").is_transient());
        assert!(!classify(400, "{}").is_transient());
        assert!(!classify(404, "").is_transient());
    }

    #[test]
    fn a_500_may_have_applied_but_a_400_did_not() {
        assert!(classify(500, "").may_have_applied());
        assert!(classify(504, "").may_have_applied());
        assert!(!classify(400, "{}").may_have_applied());
        assert!(!classify(401, "").may_have_applied());
    }
}
