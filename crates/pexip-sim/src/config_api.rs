//! Configuration API handlers for `conference`, `conference_alias` and
//! `automatic_participant` (docs/pexip.md §1.2, §3, §4, §9): Tastypie status codes (201 +
//! `Location`, 202, 204, 404 with empty bodies), validation errors as
//! `{"<resource>": {"<field>": ["..."]}}`, other 4xx as `{"error"}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::filters::{self, FilterKind, ListSpec};
use super::journal::{Happened, JournalKind};
use super::state::Shared;
use super::store::{ALIAS_PATH, AUTO_PARTICIPANT_PATH, CONFERENCE_PATH, Store};
use super::validation::{self, FieldErrors, Mode};

/// `conference` fields that can be filtered and ordered on (the v40 schema's `filtering`,
/// minus the relations `aliases` and `scheduled_conferences`).
pub(crate) const CONFERENCE_FILTERS: &[(&str, FilterKind)] = &[
    ("id", FilterKind::Int),
    ("name", FilterKind::Text),
    ("tag", FilterKind::Text),
    ("service_type", FilterKind::Text),
    ("description", FilterKind::Text),
    ("primary_owner_email_address", FilterKind::Text),
    ("pin", FilterKind::Text),
    ("guest_pin", FilterKind::Text),
    ("allow_guests", FilterKind::Bool),
    ("creation_time", FilterKind::DateTime),
    ("direct_media", FilterKind::Text),
    ("enable_chat", FilterKind::Text),
    ("enable_overlay_text", FilterKind::Bool),
    ("two_stage_dial_type", FilterKind::Text),
    ("participant_limit", FilterKind::Int),
    ("max_callrate_in", FilterKind::Int),
    ("max_callrate_out", FilterKind::Int),
    ("scheduled_conferences_count", FilterKind::Int),
    (
        "ivr_theme",
        FilterKind::Related("/api/admin/configuration/v1/ivr_theme/"),
    ),
    (
        "system_location",
        FilterKind::Related("/api/admin/configuration/v1/system_location/"),
    ),
    (
        "gms_access_token",
        FilterKind::Related("/api/admin/configuration/v1/gms_access_token/"),
    ),
    (
        "media_playlist",
        FilterKind::Related("/api/admin/configuration/v1/media_playlist/"),
    ),
    (
        "mssip_proxy",
        FilterKind::Related("/api/admin/configuration/v1/mssip_proxy/"),
    ),
];

/// `conference_alias` fields that can be filtered and ordered on.
pub(crate) const ALIAS_FILTERS: &[(&str, FilterKind)] = &[
    ("id", FilterKind::Int),
    ("alias", FilterKind::Text),
    ("conference", FilterKind::Related(CONFERENCE_PATH)),
    ("description", FilterKind::Text),
    ("creation_time", FilterKind::DateTime),
    ("view_order", FilterKind::Int),
];

/// `automatic_participant` fields that can be filtered and ordered on.
pub(crate) const AUTO_PARTICIPANT_FILTERS: &[(&str, FilterKind)] = &[
    ("id", FilterKind::Int),
    ("alias", FilterKind::Text),
    ("description", FilterKind::Text),
    ("protocol", FilterKind::Text),
    ("call_type", FilterKind::Text),
    ("role", FilterKind::Text),
    ("routing", FilterKind::Text),
    ("keep_conference_alive", FilterKind::Text),
    ("streaming", FilterKind::Bool),
    ("creation_time", FilterKind::DateTime),
];

/// Tastypie's default page size.
pub(crate) const DEFAULT_LIMIT: usize = 20;

/// 400 `{"error": message}`.
pub(crate) fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn invalid(resource: &str, errors: FieldErrors) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ resource: errors }))).into_response()
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The answer to a detail DELETE: 204, or 404 when there was nothing to delete.
fn deleted(found: bool) -> Response {
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found()
    }
}

/// The JSON object of a write body, or the message of the 400 to answer.
fn object_body(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("The request body must be a JSON object.".to_owned()),
        Err(e) => Err(format!("Invalid JSON in the request body: {e}")),
    }
}

/// Ids in URLs are integers; anything else is simply not found.
fn parse_id(raw: &str) -> Option<u64> {
    raw.parse().ok()
}

fn created(state: &Shared, path: String) -> Response {
    let location = if state.absolute_location {
        format!("{}{path}", state.base_url)
    } else {
        path
    };
    (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
}

/// The list envelope's rules for one collection: Pexip's default page and this simulator's cap.
pub(crate) fn list_spec(
    state: &Shared,
    path: &'static str,
    fields: &'static [(&'static str, FilterKind)],
) -> ListSpec<'static> {
    ListSpec {
        path,
        fields,
        default_limit: DEFAULT_LIMIT,
        max_limit: state.max_list_limit,
    }
}

// ---- conference ----------------------------------------------------------------------

/// `GET conference/`.
pub(crate) async fn list_conferences(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let spec = list_spec(&state, CONFERENCE_PATH, CONFERENCE_FILTERS);
    let query = match filters::parse(query.as_deref(), &spec) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let body = {
        let store = state.store();
        let candidates = match (query.exact_texts("name"), query.exact_texts("tag")) {
            (Some(names), _) => Some(store.ids_named(names)),
            (None, Some(tags)) => Some(store.ids_tagged(tags)),
            (None, None) => None,
        };
        let matching = store.conferences_matching(candidates, |c| {
            query.matches_by(|field| c.field_value(field))
        });
        if query.is_ordered() {
            let objects = matching.iter().map(|c| store.conference_json(c)).collect();
            filters::envelope(objects, &query, &spec)
        } else {
            // Id order already: build the JSON of the page asked for, not of every match.
            let (offset, limit) = query.window();
            let page = matching
                .iter()
                .skip(offset)
                .take(limit)
                .map(|c| store.conference_json(c))
                .collect();
            filters::envelope_page(page, matching.len(), &query, &spec)
        }
    };
    Json(body).into_response()
}

/// `POST conference/`.
pub(crate) async fn create_conference(State(state): State<Shared>, body: Bytes) -> Response {
    let input = match object_body(&body) {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let id = {
        let mut store = state.store();
        let write = match validation::conference(&store, &input, None, Mode::Create) {
            Ok(write) => write,
            Err(errors) => return invalid("conference", errors),
        };
        let now = state.clock.naive_now();
        let id = store.create_conference(
            write.fields,
            write.aliases.unwrap_or_default(),
            &now,
            state.clock.elapsed(),
        );
        if let Some(participants) = write.automatic_participants {
            store.link_conference(id, &participants);
        }
        let (name, tag) = store
            .conference(id)
            .map(|c| (c.text("name").to_owned(), c.text("tag").to_owned()))
            .unwrap_or_default();
        store.journal.record(
            state.clock.unix_now(),
            Happened {
                kind: JournalKind::Created,
                method: Some("POST"),
                room_id: id,
                room: &name,
                tag_before: None,
                tag_after: Some(&tag),
            },
        );
        id
    };
    tracing::debug!(sim.conference.id = id, "conference created");
    created(&state, format!("{CONFERENCE_PATH}{id}/"))
}

/// `DELETE conference/`: deletes every room. Real Pexip does this too; a client must never
/// send it, and tests assert that through `collection_deletes`.
pub(crate) async fn delete_all_conferences(State(state): State<Shared>) -> Response {
    state.counters.collection_delete();
    let mut store = state.store();
    let gone: Vec<(u64, String, String)> = store
        .conferences()
        .map(|c| (c.id, c.text("name").to_owned(), c.text("tag").to_owned()))
        .collect();
    store.delete_all_conferences();
    for (id, name, tag) in &gone {
        journal_deletion(&state, &mut store, *id, name, tag);
    }
    drop(store);
    tracing::warn!("DELETE on the conference collection: every room was deleted");
    StatusCode::NO_CONTENT.into_response()
}

/// `GET conference/{id}/`.
pub(crate) async fn get_conference(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    let store = state.store();
    match parse_id(&id).and_then(|id| store.conference(id)) {
        Some(record) => Json(store.conference_json(record)).into_response(),
        None => not_found(),
    }
}

/// `PATCH conference/{id}/` (202) and `PUT conference/{id}/` (204).
fn write_conference(state: &Shared, id: &str, body: &[u8], mode: Mode) -> Response {
    let input = match object_body(body) {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let mut store = state.store();
    let Some(current) = parse_id(id).and_then(|id| store.conference(id)).cloned() else {
        return not_found();
    };
    if mode == Mode::Patch && input.contains_key("aliases") {
        // Pexip's behaviour here is unconfirmed (docs/pexip.md §11, item 12); we replace the set.
        tracing::warn!(
            sim.conference.id = current.id,
            "PATCH with aliases replaces the alias set"
        );
    }
    let write = match validation::conference(&store, &input, Some(&current), mode) {
        Ok(write) => write,
        Err(errors) => return invalid("conference", errors),
    };
    let now = state.clock.naive_now();
    store.update_conference(current.id, write.fields, write.aliases, &now);
    if let Some(participants) = write.automatic_participants {
        store.link_conference(current.id, &participants);
    }
    let (name, tag) = store
        .conference(current.id)
        .map(|c| (c.text("name").to_owned(), c.text("tag").to_owned()))
        .unwrap_or_default();
    store.journal.record(
        state.clock.unix_now(),
        Happened {
            kind: JournalKind::Updated,
            method: Some(if mode == Mode::Replace {
                "PUT"
            } else {
                "PATCH"
            }),
            room_id: current.id,
            room: &name,
            tag_before: Some(current.text("tag")),
            tag_after: Some(&tag),
        },
    );
    match mode {
        Mode::Replace => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

/// `PATCH conference/{id}/`.
pub(crate) async fn patch_conference(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    write_conference(&state, &id, &body, Mode::Patch)
}

/// `PUT conference/{id}/`.
pub(crate) async fn put_conference(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    write_conference(&state, &id, &body, Mode::Replace)
}

/// `DELETE conference/{id}/`: 204, cascading to its aliases; 404 if unknown.
pub(crate) async fn delete_conference(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    let mut store = state.store();
    let room = parse_id(&id)
        .and_then(|id| store.conference(id))
        .map(|c| (c.id, c.text("name").to_owned(), c.text("tag").to_owned()));
    let deleted = room.as_ref().is_some_and(|(id, name, tag)| {
        let deleted = store.delete_conference(*id);
        if deleted {
            journal_deletion(&state, &mut store, *id, name, tag);
        }
        deleted
    });
    drop(store);
    self::deleted(deleted)
}

/// Journal the deletion of room `id`.
fn journal_deletion(state: &Shared, store: &mut Store, id: u64, name: &str, tag: &str) {
    store.journal.record(
        state.clock.unix_now(),
        Happened {
            kind: JournalKind::Deleted,
            method: Some("DELETE"),
            room_id: id,
            room: name,
            tag_before: Some(tag),
            tag_after: None,
        },
    );
}

/// `GET conference/schema/`: a Tastypie-shaped schema of what the simulator implements.
pub(crate) async fn conference_schema(State(state): State<Shared>) -> Response {
    let mut fields = Map::new();
    for spec in validation::conference_fields() {
        use validation::FieldKind as K;
        let (kind, nullable, choices): (&str, bool, Option<&[&str]>) = match spec.kind {
            K::Text { .. } | K::Pin => ("string", false, None),
            K::Choice { choices } => ("string", false, Some(choices)),
            K::NullableChoice { choices } => ("string", true, Some(choices)),
            K::Bool => ("boolean", false, None),
            K::Int { .. } => ("integer", false, None),
            K::NullableInt { .. } => ("integer", true, None),
            K::NullableUri => ("related", true, None),
        };
        fields.insert(
            spec.name.to_owned(),
            json!({
                "type": kind, "nullable": nullable, "blank": spec.name != "name",
                "readonly": false, "unique": spec.name == "name",
                "default": spec.default.value(), "help_text": "",
                "valid_choices": choices,
            }),
        );
    }
    for (name, kind) in [
        ("id", "integer"),
        ("resource_uri", "string"),
        ("creation_time", "datetime"),
        ("aliases", "related"),
        ("automatic_participants", "related"),
        ("scheduled_conferences", "related"),
        ("scheduled_conferences_count", "integer"),
    ] {
        fields.insert(
            name.to_owned(),
            json!({"type": kind, "nullable": false, "blank": true,
                   "readonly": !matches!(name, "aliases" | "automatic_participants"),
                   "unique": name == "id", "default": Value::Null, "help_text": "", "valid_choices": Value::Null}),
        );
    }
    let filtering: Map<String, Value> = CONFERENCE_FILTERS
        .iter()
        .map(|(name, _)| ((*name).to_owned(), json!(1)))
        .collect();
    let ordering: Vec<&str> = CONFERENCE_FILTERS.iter().map(|(name, _)| *name).collect();
    Json(json!({
        "allowed_list_http_methods": ["get", "post", "delete"],
        "allowed_detail_http_methods": ["get", "put", "patch", "delete"],
        "default_format": "application/json",
        "default_limit": DEFAULT_LIMIT,
        "max_limit": state.max_list_limit,
        "fields": fields,
        "filtering": filtering,
        "ordering": ordering,
    }))
    .into_response()
}

// ---- conference_alias ----------------------------------------------------------------

/// `GET conference_alias/`.
pub(crate) async fn list_aliases(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let spec = list_spec(&state, ALIAS_PATH, ALIAS_FILTERS);
    let query = match filters::parse(query.as_deref(), &spec) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let objects: Vec<Value> = state.store().aliases().map(|a| a.json()).collect();
    Json(filters::envelope(objects, &query, &spec)).into_response()
}

/// `POST conference_alias/`.
pub(crate) async fn create_alias(State(state): State<Shared>, body: Bytes) -> Response {
    let input = match object_body(&body) {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let id = {
        let mut store = state.store();
        let write = match validation::alias(&store, &input, None) {
            Ok(write) => write,
            Err(errors) => return invalid("conference_alias", errors),
        };
        let now = state.clock.naive_now();
        store.create_alias(write, &now)
    };
    created(&state, format!("{ALIAS_PATH}{id}/"))
}

/// `DELETE conference_alias/`: deletes every alias (counted like the conference one).
pub(crate) async fn delete_all_aliases(State(state): State<Shared>) -> Response {
    state.counters.collection_delete();
    state.store().delete_all_aliases();
    tracing::warn!("DELETE on the conference_alias collection: every alias was deleted");
    StatusCode::NO_CONTENT.into_response()
}

/// `GET conference_alias/{id}/`.
pub(crate) async fn get_alias(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let store = state.store();
    match parse_id(&id).and_then(|id| store.alias(id)) {
        Some(alias) => Json(alias.json()).into_response(),
        None => not_found(),
    }
}

/// `PATCH conference_alias/{id}/`.
pub(crate) async fn patch_alias(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input = match object_body(&body) {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let mut store = state.store();
    let Some(current) = parse_id(&id).and_then(|id| store.alias(id)).cloned() else {
        return not_found();
    };
    match validation::alias(&store, &input, Some((current.id, current.as_write()))) {
        Ok(write) => {
            store.update_alias(current.id, write);
            StatusCode::ACCEPTED.into_response()
        }
        Err(errors) => invalid("conference_alias", errors),
    }
}

/// `DELETE conference_alias/{id}/`.
pub(crate) async fn delete_alias(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    deleted(parse_id(&id).is_some_and(|id| state.store().delete_alias(id)))
}

// ---- automatic_participant -----------------------------------------------------------

/// `GET automatic_participant/`.
pub(crate) async fn list_auto_participants(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let spec = list_spec(&state, AUTO_PARTICIPANT_PATH, AUTO_PARTICIPANT_FILTERS);
    let query = match filters::parse(query.as_deref(), &spec) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let objects: Vec<Value> = {
        let store = state.store();
        store
            .auto_participants()
            .map(|p| store.auto_participant_json(p))
            .collect()
    };
    Json(filters::envelope(objects, &query, &spec)).into_response()
}

/// `POST automatic_participant/`.
pub(crate) async fn create_auto_participant(State(state): State<Shared>, body: Bytes) -> Response {
    let input = match object_body(&body) {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let created_id = state.create_auto_participant(&input);
    match created_id {
        Ok(id) => created(&state, format!("{AUTO_PARTICIPANT_PATH}{id}/")),
        Err(errors) => invalid("automatic_participant", errors),
    }
}

/// `GET automatic_participant/{id}/`.
pub(crate) async fn get_auto_participant(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    let store = state.store();
    match parse_id(&id).and_then(|id| store.auto_participant(id)) {
        Some(record) => Json(store.auto_participant_json(record)).into_response(),
        None => not_found(),
    }
}

/// `PATCH automatic_participant/{id}/`: 202; `conference`, when given, replaces its rooms.
pub(crate) async fn patch_auto_participant(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input = match object_body(&body) {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let mut store = state.store();
    let Some(current) = parse_id(&id)
        .and_then(|id| store.auto_participant(id))
        .cloned()
    else {
        return not_found();
    };
    match validation::automatic_participant(&store, &input, Some(&current)) {
        Ok(write) => {
            store.update_auto_participant(current.id, write.fields, write.conferences.as_deref());
            StatusCode::ACCEPTED.into_response()
        }
        Err(errors) => invalid("automatic_participant", errors),
    }
}

/// `DELETE automatic_participant/{id}/`: 204, unlinking it from every room; 404 if unknown.
pub(crate) async fn delete_auto_participant(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    deleted(parse_id(&id).is_some_and(|id| state.store().delete_auto_participant(id)))
}
