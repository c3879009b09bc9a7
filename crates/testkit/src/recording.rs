//! A request-recording HTTP stub: it answers every request with what a closure returns and
//! keeps each request and the status it got, so a test can assert on what was sent over the
//! wire. The fakes of this crate ([`crate::identity`]) and of single tests (a Key Vault, a
//! queue service that is always busy) are built on it, so a fake is its answers and nothing
//! else.
//!
//! A scoped stub, not a general mock server: routing is whatever the closure matches on.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path and query, as sent (`/secrets/x/?api-version=7.5`).
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }
}

/// A request and the status the stub answered it with.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub status: StatusCode,
}

type Respond = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

#[derive(Clone)]
struct Shared {
    respond: Respond,
    log: Arc<Mutex<Vec<Exchange>>>,
}

/// A serving stub. Cheap to clone; it serves until the runtime that started it ends.
#[derive(Clone)]
pub struct Stub {
    url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Stub {
    /// Serve plain http on a port of its own on 127.0.0.1.
    pub async fn start(respond: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        Self::serve(listener, url, respond)
    }

    /// Serve on `listener` (a TLS one, say), reachable at `url`.
    pub fn serve<L>(
        listener: L,
        url: String,
        respond: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            respond: Arc::new(respond),
            log: log.clone(),
        };
        let app = axum::Router::new().fallback(record).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, log }
    }

    /// `http://127.0.0.1:PORT` (or what was passed to [`Stub::serve`]), no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request so far with its answer's status, in arrival order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().expect("stub log").clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.exchanges().into_iter().map(|e| e.request).collect()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.log.lock().expect("stub log").len()
    }

    /// Forget the requests so far.
    pub fn clear(&self) {
        self.log.lock().expect("stub log").clear();
    }
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        uri,
        headers,
        body,
    };
    let response = (shared.respond)(&request);
    let status = response.status();
    shared
        .log
        .lock()
        .expect("stub log")
        .push(Exchange { request, status });
    response
}
