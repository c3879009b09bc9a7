//! The private `/room*` routes (IDIM Video API, behind API Management and function keys, and
//! the in-app Entra ID check of `super::auth` when configured).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::dto::{Accepted, ConstrainedConference};
use super::error::{ApiError, ErrorBody, ValidationErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, FromQuery, QueryReader};
use crate::domain::{RoomName, VideoCall};
use crate::rooms::RoomPatch;

/// Parse a room name from the path: 400 before anything reaches a Pexip URL.
pub(super) fn room_name(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(raw).map_err(|e| ApiError::InvalidRoomName(e.to_string()))
}

#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// Hex of `<host>&<video call id>`, optionally followed by `;encoding=hex`.
    #[param(
        rename = "uuiData",
        example = "6964264d54497a4e4455324c4463324e54517a4d67;encoding=hex"
    )]
    uui_data: String,
}

impl FromQuery for CreateQuery {
    fn from_query(q: &mut QueryReader) -> Self {
        Self {
            uui_data: q.required_str("uuiData"),
        }
    }
}

/// Hand out a ready room for a video call.
///
/// Pops a pre-provisioned room from the pool and tags it with the caller's session URL. The
/// same `uuiData` again returns the room the call already has. When the pool is empty a room
/// is created on the spot (slower, still succeeds). The host PIN is never returned here.
#[utoipa::path(post, path = "/room/create", tag = "rooms", params(CreateQuery),
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 200, description = "The room for this video call", body = ConstrainedConference),
        (status = 400, description = "Bad uuiData", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 422, description = "uuiData missing", body = ValidationErrorBody),
        (status = 502, description = "Pexip error", body = ErrorBody),
        (status = 503, description = "Pool empty and Pexip unavailable", body = ErrorBody),
    ))]
pub async fn create_room(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CreateQuery>,
) -> Result<axum::Json<ConstrainedConference>, ApiError> {
    let call = VideoCall::parse(&query.uui_data, &state.rooms.settings().uui)
        .map_err(|e| ApiError::InvalidUuiData(e.to_string()))?;
    let allocation = state.rooms.allocate(&call).await?;
    Ok(axum::Json(ConstrainedConference::without_pin(
        &allocation.conference,
    )))
}

#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewQuery {
    /// `true` (default): the constrained view; `false`: Pexip's full conference object
    /// (with its `automatic_participants`). Read as Pydantic reads booleans: `true/false`,
    /// `1/0`, `yes/no`, `on/off`, `t/f`, `y/n`, any case.
    #[param(default = true)]
    constrained_attributes: bool,
}

impl FromQuery for ViewQuery {
    fn from_query(q: &mut QueryReader) -> Self {
        Self {
            constrained_attributes: q.bool_or("constrained_attributes", true),
        }
    }
}

/// Read a room.
///
/// Only rooms this service manages (its own, those the replaced service handed out, the
/// persistent ones) are found; any other room on the Management Node is 404.
#[utoipa::path(get, path = "/room/{name}", tag = "rooms",
    params(("name" = String, Path, description = "Room name"), ViewQuery),
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 200, description = "The room with its host PIN (constrained), or Pexip's full object", body = ConstrainedConference),
        (status = 400, description = "Invalid room name", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 422, description = "constrained_attributes is not a boolean", body = ValidationErrorBody),
        (status = 502, description = "Pexip error", body = ErrorBody),
        (status = 503, description = "Pexip unavailable", body = ErrorBody),
    ))]
pub async fn get_room(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(view): ApiQuery<ViewQuery>,
) -> Result<Response, ApiError> {
    let name = room_name(&name)?;
    let room = state.rooms.get_room(&name).await?;
    Ok(if view.constrained_attributes {
        axum::Json(ConstrainedConference::with_pin(&room)).into_response()
    } else {
        axum::Json(room).into_response()
    })
}

/// Update a room (partial).
///
/// Only the fields present change, on managed rooms only (others are 404). A tag must be
/// empty or a tag URL of this service; PINs must have the configured number of digits
/// (optional trailing `#`), are never empty, and must differ from each other and from the
/// room's current other PIN. The body is JSON (a missing `Content-Type` is read as JSON).
/// Pexip applies changes to Conferencing Nodes within about 90 seconds.
#[utoipa::path(patch, path = "/room/{name}", tag = "rooms",
    params(("name" = String, Path, description = "Room name")),
    request_body = RoomPatch,
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 202, description = "The room has been updated on the Pexip management node"),
        (status = 400, description = "Invalid update (tag, PIN, or nothing to change)", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "The body is not the JSON object this route takes", body = ValidationErrorBody),
        (status = 502, description = "Pexip error", body = ErrorBody),
    ))]
pub async fn update_room(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<RoomPatch>,
) -> Result<StatusCode, ApiError> {
    let name = room_name(&name)?;
    state.rooms.update_room(&name, &patch).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Delete a room now.
///
/// Managed rooms only (others are 404). Persistent rooms (`test_`, `vkiosk_`, configurable,
/// any case) are refused with 409.
#[utoipa::path(delete, path = "/room/{name}", tag = "rooms",
    params(("name" = String, Path, description = "Room name")),
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid room name", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Persistent room", body = ErrorBody),
        (status = 502, description = "Pexip error", body = ErrorBody),
    ))]
pub async fn delete_room(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = room_name(&name)?;
    state.rooms.delete_room(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List the rooms this service manages (its own, those the replaced service handed out, and
/// the persistent ones), with their host PINs.
#[utoipa::path(get, path = "/room", tag = "rooms", params(ViewQuery),
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 200, description = "Every managed room, all pages", body = [ConstrainedConference]),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 422, description = "constrained_attributes is not a boolean", body = ValidationErrorBody),
        (status = 502, description = "Pexip error", body = ErrorBody),
        (status = 503, description = "Pexip unavailable", body = ErrorBody),
    ))]
pub async fn list_rooms(
    State(state): State<AppState>,
    ApiQuery(view): ApiQuery<ViewQuery>,
) -> Result<Response, ApiError> {
    let rooms = state.rooms.list_rooms().await?;
    Ok(if view.constrained_attributes {
        let list: Vec<ConstrainedConference> =
            rooms.iter().map(ConstrainedConference::with_pin).collect();
        axum::Json(list).into_response()
    } else {
        axum::Json(rooms).into_response()
    })
}

#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BulkCreateQuery {
    /// How many pool rooms to create (1 to `BULK_CREATE_MAX`, default 1000; outside that
    /// range 400).
    #[param(example = 10)]
    count: i64,
}

impl FromQuery for BulkCreateQuery {
    fn from_query(q: &mut QueryReader) -> Self {
        Self {
            count: q.required_int("count"),
        }
    }
}

/// Create pool rooms in the background.
///
/// One bulk create runs at a time (409 meanwhile), and bulk creates ask for at most
/// `BULK_CREATE_MAX_PER_HOUR` rooms in any hour (429 with `Retry-After` beyond).
#[utoipa::path(post, path = "/room/bulk", tag = "rooms", params(BulkCreateQuery),
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 202, description = "Rooms are created asynchronously in the background", body = Accepted),
        (status = 400, description = "count out of range", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 422, description = "count missing or not an integer", body = ValidationErrorBody),
        (status = 409, description = "A bulk create is already running", body = ErrorBody),
        (status = 429, description = "BULK_CREATE_MAX_PER_HOUR reached; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until enough of the last hour's budget frees up"))),
    ))]
pub async fn bulk_create(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<BulkCreateQuery>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    // A negative count is out of range like zero; `bulk_create` says what the range is.
    let count = usize::try_from(query.count).unwrap_or(0);
    state.rooms.bulk_create(count)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            detail: "Rooms are created asynchronously in the background".into(),
            count: Some(count),
        }),
    ))
}

#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BulkDeleteQuery {
    /// Must be true: this deletes every non-persistent room of this service. A boolean as
    /// Pydantic reads it.
    #[param(default = false)]
    confirm: bool,
}

impl FromQuery for BulkDeleteQuery {
    fn from_query(q: &mut QueryReader) -> Self {
        Self {
            confirm: q.bool_or("confirm", false),
        }
    }
}

/// Delete every non-persistent room of this service and clear the pool, in the background.
///
/// Rooms with a live conference are kept; the garbage collector deletes them after they end.
#[utoipa::path(delete, path = "/room/bulk", tag = "rooms", params(BulkDeleteQuery),
    security(("function_key" = [], "entra_bearer" = [])),
    responses(
        (status = 202, description = "Deletion started", body = Accepted),
        (status = 400, description = "confirm=true missing", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token (in-app auth)", body = ErrorBody),
        (status = 403, description = "Client application or role not allowed (in-app auth)", body = ErrorBody),
        (status = 422, description = "confirm is not a boolean", body = ValidationErrorBody),
    ))]
pub async fn bulk_delete(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<BulkDeleteQuery>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    if !query.confirm {
        return Err(ApiError::ConfirmationRequired);
    }
    state.rooms.bulk_delete();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            detail: "All matching rooms are being deleted and the pool cleared".into(),
            count: None,
        }),
    ))
}
