//! Status and command API (docs/pexip.md §7 Status API): live conferences and participants while a
//! simulated conference runs, and `command/v1/conference/disconnect/`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::config_api::{bad_request, list_spec};
use super::filters::{self, FilterKind};
use super::live::{STATUS_CONFERENCE_PATH, STATUS_PARTICIPANT_PATH};
use super::state::Shared;

const CONFERENCE_FILTERS: &[(&str, FilterKind)] = &[
    ("id", FilterKind::Text),
    ("name", FilterKind::Text),
    ("tag", FilterKind::Text),
    ("service_type", FilterKind::Text),
    ("start_time", FilterKind::DateTime),
    ("is_started", FilterKind::Bool),
    ("is_locked", FilterKind::Bool),
    ("guests_muted", FilterKind::Bool),
];

// Every participant field is filterable in Pexip (v40 schema); these are the ones we model.
const PARTICIPANT_FILTERS: &[(&str, FilterKind)] = &[
    ("id", FilterKind::Text),
    ("conference", FilterKind::Text),
    ("service_tag", FilterKind::Text),
    ("service_type", FilterKind::Text),
    ("role", FilterKind::Text),
    ("protocol", FilterKind::Text),
    ("display_name", FilterKind::Text),
    ("source_alias", FilterKind::Text),
    ("destination_alias", FilterKind::Text),
    ("participant_alias", FilterKind::Text),
    ("call_direction", FilterKind::Text),
    ("call_uuid", FilterKind::Text),
    ("conversation_id", FilterKind::Text),
    ("media_node", FilterKind::Text),
    ("signalling_node", FilterKind::Text),
    ("system_location", FilterKind::Text),
    ("connect_time", FilterKind::DateTime),
    ("has_media", FilterKind::Bool),
    ("is_muted", FilterKind::Bool),
    ("is_presenting", FilterKind::Bool),
    ("license_type", FilterKind::Text),
    ("encryption", FilterKind::Text),
];

/// `GET status/v1/conference/`.
pub(crate) async fn list_conferences(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let spec = list_spec(&state, STATUS_CONFERENCE_PATH, CONFERENCE_FILTERS);
    let query = match filters::parse(query.as_deref(), &spec) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let objects: Vec<Value> = state
        .store()
        .live
        .values()
        .map(|c| c.status_json())
        .collect();
    Json(filters::envelope(objects, &query, &spec)).into_response()
}

/// `GET status/v1/conference/{id}/`.
pub(crate) async fn get_conference(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    match state.store().live.get(&id) {
        Some(conference) => Json(conference.status_json()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET status/v1/participant/`.
pub(crate) async fn list_participants(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let spec = list_spec(&state, STATUS_PARTICIPANT_PATH, PARTICIPANT_FILTERS);
    let query = match filters::parse(query.as_deref(), &spec) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let objects: Vec<Value> = state
        .store()
        .live
        .values()
        .flat_map(|c| c.participants.iter().map(move |p| p.status_json(c)))
        .collect();
    Json(filters::envelope(objects, &query, &spec)).into_response()
}

/// `GET status/v1/participant/{id}/`.
pub(crate) async fn get_participant(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    let store = state.store();
    let found = store.live.values().find_map(|c| {
        c.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.status_json(c))
    });
    match found {
        Some(participant) => Json(participant).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `POST command/v1/conference/disconnect/` `{"conference_id": uuid}`: ends the conference
/// (events follow in the background); 202 `{"status": "success", "data": null}`.
pub(crate) async fn disconnect_conference(State(state): State<Shared>, body: Bytes) -> Response {
    let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("conference_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(id) = id else {
        return bad_request("conference_id is required.");
    };
    if state.disconnect(&id) {
        (
            StatusCode::ACCEPTED,
            Json(json!({"status": "success", "data": null})),
        )
            .into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
