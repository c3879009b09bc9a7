//! Reading, updating, listing and deleting rooms on request, and the bulk jobs.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::stats::Counters;
use super::{RoomService, RoomsError};
use crate::domain::{Pin, RoomName};
use crate::pexip::{Conference, Deleted, PexipError};

/// Longest `tag` or `description` Pexip stores.
const MAX_TEXT_FIELD: usize = 250;

/// A partial update of a room: only the fields present are changed. Unknown fields are
/// refused rather than silently dropped.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomPatch {
    /// The service tag (the caller's session URL).
    pub tag: Option<String>,
    /// Host PIN: 4–20 digits, optional trailing `#`, or empty for none.
    pub pin: Option<String>,
    /// Guest PIN, same format; must differ from the host PIN.
    pub guest_pin: Option<String>,
    /// Free text shown in Pexip's directory.
    pub description: Option<String>,
    /// Whether guests may join (needs a host PIN).
    pub allow_guests: Option<bool>,
    /// Maximum participants (0–1000000) or null for no limit.
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<u32>)]
    pub participant_limit: Option<Option<u32>>,
}

/// Why a [`RoomPatch`] was refused. Never echoes a PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomPatchError {
    #[error("the update changes nothing")]
    Empty,
    #[error("{0} must be at most 250 characters")]
    TooLong(&'static str),
    #[error("{field}: {reason}")]
    Pin { field: &'static str, reason: String },
    #[error("participant_limit must be between 0 and 1000000")]
    ParticipantLimit,
}

/// Distinguishes `"participant_limit": null` (clear it) from an absent field (keep it).
fn explicit_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

impl RoomPatch {
    /// Validate and turn into the JSON body Pexip expects.
    pub fn to_pexip(&self) -> Result<Value, RoomPatchError> {
        let mut body = Map::new();
        for (field, value) in [("tag", &self.tag), ("description", &self.description)] {
            if let Some(v) = value {
                if v.chars().count() > MAX_TEXT_FIELD {
                    return Err(RoomPatchError::TooLong(field));
                }
                body.insert(field.into(), Value::String(v.clone()));
            }
        }
        for (field, value) in [("pin", &self.pin), ("guest_pin", &self.guest_pin)] {
            if let Some(v) = value {
                if !v.is_empty() {
                    Pin::parse(v).map_err(|e| RoomPatchError::Pin {
                        field,
                        reason: e.to_string(),
                    })?;
                }
                body.insert(field.into(), Value::String(v.clone()));
            }
        }
        if let (Some(host), Some(guest)) = (&self.pin, &self.guest_pin)
            && !host.is_empty()
            && host == guest
        {
            return Err(RoomPatchError::Pin {
                field: "guest_pin",
                reason: "host PIN and guest PIN must differ".into(),
            });
        }
        if let Some(allow) = self.allow_guests {
            body.insert("allow_guests".into(), Value::Bool(allow));
        }
        if let Some(limit) = self.participant_limit {
            if limit.is_some_and(|n| n > 1_000_000) {
                return Err(RoomPatchError::ParticipantLimit);
            }
            body.insert(
                "participant_limit".into(),
                limit.map_or(Value::Null, Value::from),
            );
        }
        if body.is_empty() {
            return Err(RoomPatchError::Empty);
        }
        Ok(Value::Object(body))
    }
}

impl RoomService {
    /// The room called `name`.
    pub async fn get_room(&self, name: &RoomName) -> Result<Conference, RoomsError> {
        self.inner
            .pexip
            .find_conference(name.as_str())
            .await?
            .ok_or(RoomsError::NotFound)
    }

    /// Apply a partial update to the room called `name`.
    pub async fn update_room(&self, name: &RoomName, patch: &RoomPatch) -> Result<(), RoomsError> {
        let body = patch
            .to_pexip()
            .map_err(|e| RoomsError::Invalid(e.to_string()))?;
        let room = self.get_room(name).await?;
        match self.inner.pexip.patch_conference(room.id, &body).await {
            Err(PexipError::NotFound) => Err(RoomsError::NotFound),
            other => Ok(other?),
        }
    }

    /// Delete the room called `name` now. Persistent rooms are refused.
    pub async fn delete_room(&self, name: &RoomName) -> Result<(), RoomsError> {
        if self.is_persistent(name.as_str()) {
            return Err(RoomsError::Persistent);
        }
        let room = self.get_room(name).await?;
        match self.inner.pexip.delete_conference(room.id).await? {
            Deleted::Now => {
                Counters::add(&self.inner.stats.rooms_deleted, 1);
                tracing::info!(room.name = %name, "room deleted on request");
                Ok(())
            }
            Deleted::AlreadyGone => Err(RoomsError::NotFound),
        }
    }

    /// Every room this service manages: its own (name prefix) and the persistent ones, in
    /// Pexip id order. Follows Pexip's pagination to the end.
    pub async fn list_rooms(&self) -> Result<Vec<Conference>, RoomsError> {
        let s = &self.inner.settings;
        let prefixes = std::iter::once(s.name_prefix.as_str())
            .chain(s.persistent_prefixes.iter().map(String::as_str));
        let lists = futures::future::try_join_all(prefixes.map(|p| async move {
            self.inner
                .pexip
                .list_conferences(&[("name__startswith", p)])
                .await
        }))
        .await?;
        let mut rooms: Vec<Conference> = lists.into_iter().flatten().collect();
        rooms.sort_by_key(|c| c.id);
        rooms.dedup_by_key(|c| c.id);
        Ok(rooms)
    }

    /// Start deleting every non-persistent room this service created, and clear the pool, in
    /// the background. Rooms with a live conference are left alone: their `conference_ended`
    /// brings them to the garbage collector later.
    pub fn bulk_delete(&self) {
        let service = self.clone();
        self.inner.tasks.spawn(async move {
            match service.delete_all().await {
                Ok((deleted, live)) => {
                    tracing::info!(deleted, skipped_live = live, "bulk delete finished")
                }
                Err(e) => tracing::error!(error = %e, "bulk delete failed"),
            }
        });
    }

    async fn delete_all(&self) -> Result<(usize, usize), RoomsError> {
        use futures::StreamExt as _;
        // Clear first, so no caller is handed a room we are about to delete.
        self.inner.pool.clear().await?;
        let background = self.inner.pexip.background();
        let prefix = self.inner.settings.name_prefix.as_str();
        let rooms = background
            .list_conferences(&[("name__startswith", prefix)])
            .await?;
        let live: std::collections::HashSet<String> = background
            .live_conferences(&[])
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let targets: Vec<u64> = rooms
            .iter()
            .filter(|c| !self.is_persistent(&c.name) && !live.contains(&c.name))
            .map(|c| c.id)
            .collect();
        let skipped_live = rooms.len() - targets.len();
        let deleted = futures::stream::iter(targets)
            .map(|id| {
                let background = background.clone();
                async move { background.delete_conference(id).await }
            })
            .buffer_unordered(5)
            .filter(|r| std::future::ready(matches!(r, Ok(Deleted::Now))))
            .count()
            .await;
        Counters::add(&self.inner.stats.rooms_deleted, deleted as u64);
        Ok((deleted, skipped_live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> Result<Value, RoomPatchError> {
        serde_json::from_str::<RoomPatch>(json).unwrap().to_pexip()
    }

    #[test]
    fn only_present_fields_are_sent() {
        assert_eq!(
            patch(r#"{"tag":"t"}"#).unwrap(),
            serde_json::json!({"tag":"t"})
        );
        assert_eq!(
            patch(r#"{"pin":"1234","guest_pin":"5678","participant_limit":null}"#).unwrap(),
            serde_json::json!({"pin":"1234","guest_pin":"5678","participant_limit":null})
        );
    }

    #[test]
    fn invalid_updates_are_refused() {
        let long = "x".repeat(251);
        let cases = [
            ("{}".to_owned(), RoomPatchError::Empty),
            (
                format!(r#"{{"tag":"{long}"}}"#),
                RoomPatchError::TooLong("tag"),
            ),
            (
                r#"{"pin":"12"}"#.to_owned(),
                RoomPatchError::Pin {
                    field: "pin",
                    reason: "PIN must be 4 to 20 characters long".into(),
                },
            ),
            (
                r#"{"pin":"1234","guest_pin":"1234"}"#.to_owned(),
                RoomPatchError::Pin {
                    field: "guest_pin",
                    reason: "host PIN and guest PIN must differ".into(),
                },
            ),
            (
                r#"{"participant_limit":2000000}"#.to_owned(),
                RoomPatchError::ParticipantLimit,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(patch(&json), Err(want), "{json}");
        }
        assert!(serde_json::from_str::<RoomPatch>(r#"{"name":"x"}"#).is_err());
    }

    #[test]
    fn pin_errors_never_echo_the_pin() {
        let err = patch(r#"{"pin":"98765a"}"#).unwrap_err();
        assert!(!err.to_string().contains("98765"));
    }
}
