//! The control API under `/_sim/` (never under `/api/admin`, no auth): list rooms, start and
//! end conferences, inject faults, read counters and the journal, move the clock, change the
//! replication delay, add event sinks and register clients. Each route calls the same `SimState`
//! operation as the matching [`super::SimHandle`] method.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::state::Shared;
use super::{EventSinkTarget, Fault, SimError};

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Parse a JSON body, or answer 400.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("invalid body: {e}"))))
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = match self {
            SimError::UnknownRoom(_) => StatusCode::NOT_FOUND,
            SimError::NotDialable | SimError::AlreadyLive(_) | SimError::NotLive(_) => {
                StatusCode::CONFLICT
            }
            SimError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        error(status, self.to_string())
    }
}

/// `GET /_sim/rooms`.
pub(crate) async fn rooms(State(state): State<Shared>) -> Response {
    Json(state.rooms()).into_response()
}

#[derive(Deserialize)]
struct StartRequest {
    room: String,
    #[serde(default = "one")]
    participants: usize,
    #[serde(default = "one")]
    nodes: usize,
}

fn one() -> usize {
    1
}

/// `POST /_sim/conferences` `{"room", "participants", "nodes"}` → 201 `{"id"}`.
pub(crate) async fn start_conference(State(state): State<Shared>, bytes: Bytes) -> Response {
    let request: StartRequest = match body(&bytes) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match state
        .start_conference(&request.room, request.participants, request.nodes)
        .await
    {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /_sim/conferences/{room}/end`: 204 once the end events were delivered (or one
/// delivery failed).
pub(crate) async fn end_conference(
    State(state): State<Shared>,
    Path(room): Path<String>,
) -> Response {
    match state.end_conference(&room).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /_sim/faults`: the registered faults with their ids and remaining counts.
pub(crate) async fn list_faults(State(state): State<Shared>) -> Response {
    Json(state.faults.lock().expect("faults lock").list()).into_response()
}

/// `POST /_sim/faults` with a [`Fault`] → 201 `{"id"}`.
pub(crate) async fn add_fault(State(state): State<Shared>, bytes: Bytes) -> Response {
    let fault: Fault = match body(&bytes) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    if let Some(problem) = fault.problem() {
        return error(StatusCode::BAD_REQUEST, problem);
    }
    let id = state.faults.lock().expect("faults lock").add(fault);
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

/// `DELETE /_sim/faults`: remove every fault.
pub(crate) async fn clear_faults(State(state): State<Shared>) -> Response {
    state.faults.lock().expect("faults lock").clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /_sim/faults/{id}`.
pub(crate) async fn remove_fault(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    if state.faults.lock().expect("faults lock").remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no fault {id}"))
    }
}

/// `GET /_sim/counters`.
pub(crate) async fn counters(State(state): State<Shared>) -> Response {
    Json(state.counters.snapshot()).into_response()
}

/// `GET /_sim/journal`: every write to a room and every conference start and end, in order.
pub(crate) async fn journal(State(state): State<Shared>) -> Response {
    Json(state.journal()).into_response()
}

/// `POST /_sim/counters/reset`.
pub(crate) async fn reset_counters(State(state): State<Shared>) -> Response {
    state.counters.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ClockRequest {
    advance_seconds: f64,
}

/// `POST /_sim/clock` `{"advance_seconds": n}`.
pub(crate) async fn advance_clock(State(state): State<Shared>, bytes: Bytes) -> Response {
    let request: ClockRequest = match body(&bytes) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match Duration::try_from_secs_f64(request.advance_seconds) {
        Ok(by) => {
            state.clock.advance(by);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "advance_seconds must be a non-negative number",
        ),
    }
}

#[derive(Deserialize)]
struct DelayRequest {
    seconds: u64,
}

/// `PUT /_sim/replication_delay` `{"seconds": n}`.
pub(crate) async fn set_replication_delay(State(state): State<Shared>, bytes: Bytes) -> Response {
    let request: DelayRequest = match body(&bytes) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    *state.replication_delay.lock().expect("delay lock") = Duration::from_secs(request.seconds);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/event_sinks` with an [`EventSinkTarget`].
pub(crate) async fn add_event_sink(State(state): State<Shared>, bytes: Bytes) -> Response {
    let target: EventSinkTarget = match body(&bytes) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    if reqwest::Url::parse(&target.url).is_err() {
        return error(StatusCode::BAD_REQUEST, "url must be an absolute URL");
    }
    state.events.add_sink(target);
    StatusCode::CREATED.into_response()
}

#[derive(Deserialize)]
struct ClientRequest {
    client_id: String,
    public_key_pem: String,
}

/// `POST /_sim/clients` `{"client_id", "public_key_pem"}`: register another OAuth2 client.
pub(crate) async fn register_client(State(state): State<Shared>, bytes: Bytes) -> Response {
    let request: ClientRequest = match body(&bytes) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match state
        .clients
        .register(&request.client_id, &request.public_key_pem)
    {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}
