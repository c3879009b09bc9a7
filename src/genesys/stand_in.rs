//! A stand-in for Genesys Cloud's `GET /api/v2/users/me` on 127.0.0.1: `dev` runs one so the
//! agent route works without a contact centre, and the tests run one in place of Genesys.
//! It lives here, not in the test support, because `dev` is part of the binary; it is the
//! only copy.
//!
//! It answers from a table of bearer tokens: an agent of a division, or a status (an outage,
//! for the tests that check outages are not cached). Any other token gets 401, as Genesys
//! answers an unknown or expired token. Calls are counted, and the most at once, so a test can
//! see the cache and the cap on checks in flight work.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the stand-in answers for one token.
#[derive(Debug, Clone)]
enum Answer {
    /// 200 with a user in `division`.
    Agent { id: String, division: String },
    /// This status and no user.
    Status(StatusCode),
}

/// The table of tokens, before it serves.
#[derive(Debug, Clone, Default)]
pub struct StandIn {
    answers: HashMap<String, Answer>,
    /// How long each answer takes (a slow Genesys).
    latency: Duration,
}

impl StandIn {
    /// A stand-in that knows no token yet (every call gets 401).
    pub fn new() -> Self {
        Self::default()
    }

    /// `token` belongs to the user `id` of the division `division`.
    pub fn agent(mut self, token: &str, id: &str, division: &str) -> Self {
        let answer = Answer::Agent {
            id: id.to_owned(),
            division: division.to_owned(),
        };
        self.answers.insert(token.to_owned(), answer);
        self
    }

    /// A call with `token` gets `status` (e.g. 503: Genesys is down).
    pub fn answering(mut self, token: &str, status: StatusCode) -> Self {
        self.answers
            .insert(token.to_owned(), Answer::Status(status));
        self
    }

    /// Every answer takes `latency` (a slow Genesys, so checks overlap).
    pub fn answer_after(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Serve on a port of its own on 127.0.0.1 until the process ends.
    pub async fn start(self) -> std::io::Result<RunningStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Seen::default());
        let answers = Arc::new(self.answers);
        let latency = self.latency;
        let counted = seen.clone();
        let app = axum::Router::new().route(
            "/api/v2/users/me",
            axum::routing::get(move |headers: HeaderMap| {
                let seen = counted.clone();
                let answer = answer(&answers, &headers);
                async move {
                    seen.calls.fetch_add(1, Ordering::SeqCst);
                    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(latency).await;
                    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                    answer
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RunningStandIn { url, seen })
    }
}

/// What the stand-in has seen: calls, and calls in flight now and at most.
#[derive(Debug, Default)]
struct Seen {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

fn answer(answers: &HashMap<String, Answer>, headers: &HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| answers.get(t)) {
        Some(Answer::Agent { id, division }) => {
            axum::Json(serde_json::json!({"id": id, "division": {"id": division}})).into_response()
        }
        Some(Answer::Status(status)) => status.into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// A serving stand-in.
#[derive(Debug, Clone)]
pub struct RunningStandIn {
    url: String,
    seen: Arc<Seen>,
}

impl RunningStandIn {
    /// `http://127.0.0.1:PORT`: the value of `GENESYS_API_BASE`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls to `users/me` so far.
    pub fn calls(&self) -> usize {
        self.seen.calls.load(Ordering::SeqCst)
    }

    /// The most calls that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.seen.peak.load(Ordering::SeqCst)
    }
}
