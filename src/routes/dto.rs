//! Response shapes, wire-compatible with the service we replace.

use serde::{Deserialize, Serialize};

use crate::pexip::{Alias, Conference};

/// A room as callers see it (the replaced service's `ConstrainedConference`). `pin` (the host
/// PIN) is on every read; only `POST /room/create` leaves it out, as the replaced service did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": 90, "name": "vbv-3q2Kx0wYbqkS4o5cZl7n8A", "service_type": "conference",
    "allow_guests": true, "pin": "482913", "guest_pin": "1231",
    "tag": "https://id.gov.bc.ca/idcheck/protected/video/MTIzNDU2LDc2NTQzMg",
    "aliases": [{"id": 85, "alias": "vbv-3q2Kx0wYbqkS4o5cZl7n8A",
        "conference": "/api/admin/configuration/v1/conference/90/",
        "creation_time": "2024-03-05T14:31:06.145782", "description": ""}]
}))]
pub struct ConstrainedConference {
    /// Pexip conference id.
    pub id: u64,
    /// Room name (URL-path-safe).
    pub name: String,
    /// Always `conference` (a Virtual Meeting Room).
    pub service_type: String,
    /// Always true: the citizen joins as a guest.
    pub allow_guests: bool,
    /// Host PIN; on every read, never in the answer of `POST /room/create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The citizen's PIN.
    pub guest_pin: String,
    /// The caller's session URL, or empty while the room is in the pool.
    pub tag: String,
    /// Dial strings of the room.
    pub aliases: Vec<AliasDto>,
}

/// One alias of a room.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AliasDto {
    pub id: u64,
    pub alias: String,
    /// URI of the owning conference.
    pub conference: String,
    /// Naive UTC ISO-8601, as Pexip reports it.
    pub creation_time: Option<String>,
    pub description: String,
}

impl From<&Alias> for AliasDto {
    fn from(a: &Alias) -> Self {
        Self {
            id: a.id,
            alias: a.alias.clone(),
            conference: a.conference.clone(),
            creation_time: a.creation_time.clone(),
            description: a.description.clone(),
        }
    }
}

impl ConstrainedConference {
    /// The constrained view without the host PIN.
    pub fn without_pin(c: &Conference) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            service_type: c.service_type.clone(),
            allow_guests: c.allow_guests,
            pin: None,
            guest_pin: c.guest_pin.clone(),
            tag: c.tag.clone(),
            aliases: c.aliases.iter().map(AliasDto::from).collect(),
        }
    }

    /// The constrained view including the host PIN (every read but create's answer).
    pub fn with_pin(c: &Conference) -> Self {
        Self {
            pin: Some(c.pin.clone()),
            ..Self::without_pin(c)
        }
    }
}

/// `GET /public/health`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "alive", "timestamp": "2024-03-05T14:31:06.145782"}))]
pub struct Health {
    /// `alive`, or `degraded` when a deep check failed.
    pub status: String,
    /// Naive UTC ISO-8601 with microseconds, like the old service.
    pub timestamp: String,
    /// Deep checks (`?deep=true` only): dependency (`pexip`, `queues`) → `ok` or `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<std::collections::BTreeMap<String, String>>,
}

/// Answer of the event sink.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"detail": "Event acknowledged and processed.", "events": 3, "queued": 1}))]
pub struct EventAck {
    pub detail: String,
    /// Events in the request (bulk unpacked).
    pub events: usize,
    /// Rooms queued for deletion.
    pub queued: usize,
}

/// Answer of the background jobs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"detail": "Rooms are created asynchronously in the background", "count": 10}))]
pub struct Accepted {
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}
