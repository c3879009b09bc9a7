//! The simulator's router, built in one place from the shared state so tests serve exactly
//! what `pexip-sdk sim` serves.
//!
//! Layers, outermost first, on `/api/admin/**` and `/oauth/token/`: request counting (and
//! in-flight tracking for `/api/admin`), then fault injection, then (for `/api/admin` only)
//! the credential gate. The `/_sim/` control routes have none of them.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

use super::state::Shared;
use super::{auth, config_api, control, faults, oauth, status_api};

/// Build the router over `state`.
pub(crate) fn router(state: Shared) -> Router {
    let admin = Router::new()
        .route(
            "/api/admin/configuration/v1/conference/",
            get(config_api::list_conferences)
                .post(config_api::create_conference)
                .delete(config_api::delete_all_conferences),
        )
        .route(
            "/api/admin/configuration/v1/conference/schema/",
            get(config_api::conference_schema),
        )
        .route(
            "/api/admin/configuration/v1/conference/{id}/",
            get(config_api::get_conference)
                .patch(config_api::patch_conference)
                .put(config_api::put_conference)
                .delete(config_api::delete_conference),
        )
        .route(
            "/api/admin/configuration/v1/conference_alias/",
            get(config_api::list_aliases)
                .post(config_api::create_alias)
                .delete(config_api::delete_all_aliases),
        )
        .route(
            "/api/admin/configuration/v1/conference_alias/{id}/",
            get(config_api::get_alias)
                .patch(config_api::patch_alias)
                .delete(config_api::delete_alias),
        )
        .route(
            "/api/admin/configuration/v1/automatic_participant/",
            get(config_api::list_auto_participants).post(config_api::create_auto_participant),
        )
        .route(
            "/api/admin/configuration/v1/automatic_participant/{id}/",
            get(config_api::get_auto_participant)
                .patch(config_api::patch_auto_participant)
                .delete(config_api::delete_auto_participant),
        )
        .route(
            "/api/admin/status/v1/conference/",
            get(status_api::list_conferences),
        )
        .route(
            "/api/admin/status/v1/conference/{id}/",
            get(status_api::get_conference),
        )
        .route(
            "/api/admin/status/v1/participant/",
            get(status_api::list_participants),
        )
        .route(
            "/api/admin/status/v1/participant/{id}/",
            get(status_api::get_participant),
        )
        .route(
            "/api/admin/command/v1/conference/disconnect/",
            post(status_api::disconnect_conference),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_credentials,
        ));

    let pexip = admin
        .route("/oauth/token/", post(oauth::token))
        .layer(middleware::from_fn_with_state(state.clone(), faults::apply))
        .layer(middleware::from_fn_with_state(state.clone(), count));

    let control = Router::new()
        .route("/_sim/rooms", get(control::rooms))
        .route("/_sim/conferences", post(control::start_conference))
        .route(
            "/_sim/conferences/{room}/end",
            post(control::end_conference),
        )
        .route(
            "/_sim/faults",
            get(control::list_faults)
                .post(control::add_fault)
                .delete(control::clear_faults),
        )
        .route("/_sim/faults/{id}", delete(control::remove_fault))
        .route("/_sim/counters", get(control::counters))
        .route("/_sim/counters/reset", post(control::reset_counters))
        .route("/_sim/journal", get(control::journal))
        .route("/_sim/clock", post(control::advance_clock))
        .route(
            "/_sim/replication_delay",
            put(control::set_replication_delay),
        )
        .route("/_sim/event_sinks", post(control::add_event_sink))
        .route("/_sim/clients", post(control::register_client));

    pexip.merge(control).fallback(unmatched).with_state(state)
}

/// Count a request by method and route pattern; keep `/api/admin` requests in flight for
/// their whole duration (injected latency included, since faults run inside this layer).
async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    state
        .counters
        .request(format!("{} {route}", request.method()));
    let _in_flight = request
        .uri()
        .path()
        .starts_with("/api/admin/")
        .then(|| state.counters.enter_admin());
    next.run(request).await
}

/// 404 with an empty body, as Tastypie answers unknown URLs; counted when it looks like a
/// Management API request, so a client's wrong URL shows up in the counters.
async fn unmatched(State(state): State<Shared>, request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path.starts_with("/oauth/") {
        state
            .counters
            .request(format!("{} (unmatched)", request.method()));
    }
    StatusCode::NOT_FOUND.into_response()
}
