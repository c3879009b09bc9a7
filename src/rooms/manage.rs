//! Reading, updating, listing and deleting rooms on request, and the bulk jobs.
//!
//! These act only on managed rooms (see [`RoomService`]'s safety rules): a VMR of another team
//! on the same Management Node is "not found" here, so a leaked key cannot read, re-PIN or
//! delete it, and the answer does not even confirm it exists. An update writes only what the
//! service itself would write: a tag URL of our template (or none), PINs of the configured
//! lengths that differ from each other.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::stats::Counters;
use super::{RoomService, RoomsError};
use crate::config::RoomSettings;
use crate::domain::{Pin, PinError, RoomName};
use crate::pexip::{Conference, Deleted, PexipError};

/// Longest `tag` or `description` Pexip stores.
const MAX_TEXT_FIELD: usize = 250;

/// A partial update of a room: only the fields present are changed. Unknown fields are
/// refused rather than silently dropped.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomPatch {
    /// The service tag: empty (back to no call) or a tag URL of this service's template
    /// with an allowed host.
    pub tag: Option<String>,
    /// Host PIN: `HOST_PIN_LENGTH` digits (default 6), optionally ending in `#`; never empty;
    /// must differ from the guest PIN.
    pub pin: Option<String>,
    /// Guest PIN: `GUEST_PIN_LENGTH` digits (default 4), optionally ending in `#`; never
    /// empty; must differ from the host PIN.
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
    #[error("tag must be empty or a tag URL this service issues")]
    Tag,
}

/// The message for two PINs that must differ.
const SAME_PINS: &str = "host PIN and guest PIN must differ";

/// Distinguishes `"participant_limit": null` (clear it) from an absent field (keep it).
fn explicit_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

impl RoomPatch {
    /// Validate against `settings` (tag template, PIN lengths) and turn into the JSON body
    /// Pexip expects. What needs the room itself is [`Self::check_against`].
    pub fn to_pexip(&self, settings: &RoomSettings) -> Result<Value, RoomPatchError> {
        let mut body = Map::new();
        for (field, value) in [("tag", &self.tag), ("description", &self.description)] {
            if let Some(v) = value {
                if v.chars().count() > MAX_TEXT_FIELD {
                    return Err(RoomPatchError::TooLong(field));
                }
                body.insert(field.into(), Value::String(v.clone()));
            }
        }
        if let Some(tag) = &self.tag
            && !tag.is_empty()
            && !settings.uui.is_our_tag(tag)
        {
            return Err(RoomPatchError::Tag);
        }
        let host = pin(&self.pin, "pin", settings.host_pin_length)?;
        let guest = pin(&self.guest_pin, "guest_pin", settings.guest_pin_length)?;
        if let (Some(host), Some(guest)) = (&host, &guest)
            && host.digits() == guest.digits()
        {
            return Err(RoomPatchError::Pin {
                field: "guest_pin",
                reason: SAME_PINS.into(),
            });
        }
        for (field, value) in [("pin", host), ("guest_pin", guest)] {
            if let Some(pin) = value {
                body.insert(field.into(), Value::String(pin.expose().to_owned()));
            }
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

    /// The checks that need the room: a new PIN must also differ from the room's current
    /// other PIN (a guest PIN equal to the host PIN would let the citizen in as host).
    pub fn check_against(&self, room: &Conference) -> Result<(), RoomPatchError> {
        let same = |a: &str, b: &str| {
            !b.is_empty() && a.strip_suffix('#').unwrap_or(a) == b.strip_suffix('#').unwrap_or(b)
        };
        match (&self.pin, &self.guest_pin) {
            (Some(host), None) if same(host, &room.guest_pin) => Err(RoomPatchError::Pin {
                field: "pin",
                reason: "the host PIN must differ from the room's guest PIN".into(),
            }),
            (None, Some(guest)) if same(guest, &room.pin) => Err(RoomPatchError::Pin {
                field: "guest_pin",
                reason: "the guest PIN must differ from the room's host PIN".into(),
            }),
            _ => Ok(()),
        }
    }
}

/// A PIN of an update, if given: never empty, Pexip's format, exactly `digits` digits.
fn pin(
    value: &Option<String>,
    field: &'static str,
    digits: usize,
) -> Result<Option<Pin>, RoomPatchError> {
    value
        .as_deref()
        .map(|raw| Pin::parse_exact(raw, digits))
        .transpose()
        .map_err(|e: PinError| RoomPatchError::Pin {
            field,
            reason: e.to_string(),
        })
}

impl RoomService {
    /// The managed room called `name`; any other VMR is [`RoomsError::NotFound`].
    pub async fn get_room(&self, name: &RoomName) -> Result<Conference, RoomsError> {
        self.inner
            .pexip
            .find_conference(name.as_str())
            .await?
            .filter(|room| self.is_managed(room))
            .ok_or(RoomsError::NotFound)
    }

    /// Apply a partial update to the managed room called `name`. What the update says is
    /// checked before Pexip is asked anything; what needs the room, once it is read.
    pub async fn update_room(&self, name: &RoomName, patch: &RoomPatch) -> Result<(), RoomsError> {
        let body = patch.to_pexip(&self.inner.settings)?;
        let room = self.get_room(name).await?;
        patch.check_against(&room)?;
        match self.inner.pexip.patch_conference(room.id, &body).await {
            Err(PexipError::NotFound) => Err(RoomsError::NotFound),
            other => Ok(other?),
        }
    }

    /// Delete the managed room called `name` now. Persistent rooms are refused (whatever
    /// the case of their prefix), before Pexip is asked anything.
    pub async fn delete_room(&self, name: &RoomName) -> Result<(), RoomsError> {
        if self.is_persistent(name.as_str()) {
            return Err(RoomsError::Persistent);
        }
        let room = self.get_room(name).await?;
        match self.inner.pexip.delete_conference(room.id).await? {
            Deleted::Now => {
                Counters::add(&self.inner.stats.rooms_deleted, 1);
                tracing::info!(room.name = %name, "room deleted on request");
                if !room.tag.is_empty() {
                    self.forget_record(&room).await;
                }
                Ok(())
            }
            Deleted::AlreadyGone => Err(RoomsError::NotFound),
        }
    }

    /// Every managed room, in Pexip id order: ours by name prefix, the persistent ones (any
    /// case), and those carrying our tag without our prefix (handed out by the replaced
    /// service). One filtered list per prefix, in parallel, each followed to its last page.
    pub async fn list_rooms(&self) -> Result<Vec<Conference>, RoomsError> {
        let s = &self.inner.settings;
        let tag_prefixes = s.uui.tag_prefixes();
        let filters = std::iter::once(("name__startswith", s.name_prefix.as_str()))
            .chain(
                s.persistent_prefixes
                    .iter()
                    .map(|p| ("name__istartswith", p.as_str())),
            )
            .chain(tag_prefixes.iter().map(|p| ("tag__startswith", p.as_str())));
        let lists = futures::future::try_join_all(
            filters.map(|filter| async move { self.inner.pexip.list_conferences(&[filter]).await }),
        )
        .await?;
        let mut rooms: Vec<Conference> = lists
            .into_iter()
            .flatten()
            .filter(|room| self.is_managed(room))
            .collect();
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
        let total = rooms.len();
        let targets: Vec<Conference> = rooms
            .into_iter()
            .filter(|c| !self.is_persistent(&c.name) && !live.contains(&c.name))
            .collect();
        let skipped_live = total - targets.len();
        let deleted = futures::stream::iter(targets)
            .map(|room| {
                let (background, service) = (background.clone(), self.clone());
                async move {
                    let deleted = matches!(
                        background.delete_conference(room.id).await,
                        Ok(Deleted::Now)
                    );
                    if deleted && !room.tag.is_empty() {
                        // Its call's record would answer a room that is gone.
                        service.forget_record(&room).await;
                    }
                    deleted
                }
            })
            .buffer_unordered(5)
            .filter(|deleted| std::future::ready(*deleted))
            .count()
            .await;
        Counters::add(&self.inner.stats.rooms_deleted, deleted as u64);
        Ok((deleted, skipped_live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn settings() -> RoomSettings {
        RoomSettings::from_env(&Env::from_pairs([
            ("HOST_PIN_LENGTH", "6"),
            ("GUEST_PIN_LENGTH", "4"),
        ]))
        .unwrap()
    }

    fn patch(json: &str) -> Result<Value, RoomPatchError> {
        serde_json::from_str::<RoomPatch>(json)
            .unwrap()
            .to_pexip(&settings())
    }

    fn pin_error(field: &'static str, reason: &str) -> RoomPatchError {
        RoomPatchError::Pin {
            field,
            reason: reason.into(),
        }
    }

    #[test]
    fn only_present_fields_are_sent() {
        assert_eq!(
            patch(r#"{"description":"d"}"#).unwrap(),
            serde_json::json!({"description":"d"})
        );
        assert_eq!(
            patch(r#"{"pin":"123456","guest_pin":"5678#","participant_limit":null}"#).unwrap(),
            serde_json::json!({"pin":"123456","guest_pin":"5678#","participant_limit":null})
        );
        let tag = "https://idtest.gov.bc.ca/idcheck/protected/video/MTIz";
        assert_eq!(
            patch(&format!(r#"{{"tag":"{tag}"}}"#)).unwrap(),
            serde_json::json!({ "tag": tag })
        );
        assert_eq!(
            patch(r#"{"tag":""}"#).unwrap(),
            serde_json::json!({"tag": ""})
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
                r#"{"tag":"https://evil.example/?id=1"}"#.to_owned(),
                RoomPatchError::Tag,
            ),
            (r#"{"tag":"CASEFLOW"}"#.to_owned(), RoomPatchError::Tag),
            (
                r#"{"pin":"12"}"#.to_owned(),
                pin_error("pin", "PIN must be 6 digits, optionally ending in '#'"),
            ),
            (
                r#"{"pin":"1234"}"#.to_owned(),
                pin_error("pin", "PIN must be 6 digits, optionally ending in '#'"),
            ),
            (
                r#"{"pin":""}"#.to_owned(),
                pin_error("pin", "PIN must be 6 digits, optionally ending in '#'"),
            ),
            (
                r#"{"guest_pin":""}"#.to_owned(),
                pin_error(
                    "guest_pin",
                    "PIN must be 4 digits, optionally ending in '#'",
                ),
            ),
            (
                r#"{"guest_pin":"123456"}"#.to_owned(),
                pin_error(
                    "guest_pin",
                    "PIN must be 4 digits, optionally ending in '#'",
                ),
            ),
            (
                r#"{"guest_pin":"12a4"}"#.to_owned(),
                pin_error("guest_pin", "PIN must be digits, optionally ending in '#'"),
            ),
            (
                r#"{"pin":"123456","guest_pin":"123456"}"#.to_owned(),
                pin_error(
                    "guest_pin",
                    "PIN must be 4 digits, optionally ending in '#'",
                ),
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
    fn equal_pins_are_refused_even_when_one_ends_in_a_hash() {
        let equal = RoomSettings {
            guest_pin_length: 6,
            ..settings()
        };
        for json in [
            r#"{"pin":"123456","guest_pin":"123456"}"#,
            r#"{"pin":"123456#","guest_pin":"123456"}"#,
        ] {
            let got = serde_json::from_str::<RoomPatch>(json)
                .unwrap()
                .to_pexip(&equal);
            assert_eq!(got, Err(pin_error("guest_pin", SAME_PINS)), "{json}");
        }
    }

    #[test]
    fn a_new_pin_must_differ_from_the_rooms_other_pin() {
        let room = Conference {
            pin: "482913".into(),
            guest_pin: "4829".into(),
            ..Conference::default()
        };
        let check = |json: &str| {
            serde_json::from_str::<RoomPatch>(json)
                .unwrap()
                .check_against(&room)
        };
        assert!(matches!(
            check(r#"{"guest_pin":"482913"}"#),
            Err(RoomPatchError::Pin {
                field: "guest_pin",
                ..
            })
        ));
        assert!(matches!(
            check(r#"{"pin":"4829#"}"#),
            Err(RoomPatchError::Pin { field: "pin", .. })
        ));
        assert_eq!(check(r#"{"pin":"111111"}"#), Ok(()));
        assert_eq!(check(r#"{"guest_pin":"1111"}"#), Ok(()));
        // Both given: they were compared with each other already; the room's old ones go.
        assert_eq!(check(r#"{"pin":"4829","guest_pin":"482913"}"#), Ok(()));
    }

    #[test]
    fn pin_errors_never_echo_the_pin() {
        let err = patch(r#"{"pin":"98765a"}"#).unwrap_err();
        assert!(!err.to_string().contains("98765"));
    }
}
