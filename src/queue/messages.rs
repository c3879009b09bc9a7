//! The text formats of the two queues' messages.
//!
//! - Pool (`room-creation-queue`): `{"name":"<room>","id":<pexip id>,"guest_pin":"<pin>",
//!   "aliases":["<alias>",…],"created":"<naive UTC>"}` — everything a create's answer needs, so
//!   handing the room out costs Pexip one PATCH and no read. Earlier messages of this service
//!   (`{"name","id"}`) and the older Python service's bare room names are still accepted; their
//!   rooms are read from Pexip once when handed out.
//! - Deletion (`room-deletion-queue`): `{"name","reason","first_enqueued","tag"}` (RFC 3339),
//!   `reason` being `conference_ended` or `quarantine` (see [`QUARANTINE_REASON`]); a bare room
//!   name is accepted too.
//!
//! A message that is neither is [`GarbledMessage`]: callers move it to the poison queue with
//! a warning ([`super::Queue::move_to_poison`]) so it can never crash a run or loop forever.
//! Room names are checked to be URL-path-safe because they end up in Pexip API paths.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A queue message that is not in any format we know. Holds why, never the text itself
/// (it may be anything, including something that must not be logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("garbled queue message: {reason}")]
pub struct GarbledMessage {
    /// Why the text was refused.
    pub reason: String,
}

impl GarbledMessage {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A ready room in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMessage {
    /// The room (VMR) name, URL-path-safe.
    pub name: String,
    /// The Pexip conference id, when known (the older service's plain names have none).
    pub id: Option<u64>,
    /// What the answer needs besides id and name, written by the refill that created the
    /// room; `None` in messages written before it was (read the room from Pexip then).
    pub room: Option<PooledRoom>,
}

/// The parts of a pooled room's answer that only its creator knows without asking Pexip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledRoom {
    /// The guest PIN (what the citizen types).
    pub guest_pin: String,
    /// The alias dial strings, in the order they were created.
    pub aliases: Vec<String>,
    /// When the room was created (naive UTC, as Pexip writes times), by the creator's clock.
    pub created: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PoolWire<'a> {
    name: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guest_pin: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aliases: Option<Vec<std::borrow::Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<std::borrow::Cow<'a, str>>,
}

/// Longest alias Pexip stores.
const MAX_ALIAS: usize = 250;

impl PoolMessage {
    /// The message text: `{"name":…,"id":…}` plus, when known, `guest_pin`, `aliases` and
    /// `created` (`id` is `null` when unknown).
    pub fn to_text(&self) -> String {
        serde_json::to_string(&PoolWire {
            name: self.name.as_str().into(),
            id: self.id,
            guest_pin: self.room.as_ref().map(|r| r.guest_pin.as_str().into()),
            aliases: self
                .room
                .as_ref()
                .map(|r| r.aliases.iter().map(|a| a.as_str().into()).collect()),
            created: self
                .room
                .as_ref()
                .and_then(|r| r.created.as_deref())
                .map(Into::into),
        })
        .expect("strings and an integer always serialise")
    }

    /// Parse our JSON (either generation), or a plain room name written by the older service.
    /// A message with only part of the room (a PIN without aliases, say) is read as one
    /// without it: the room is then read from Pexip, never answered half-known.
    pub fn parse(text: &str) -> Result<Self, GarbledMessage> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let wire: PoolWire<'_> = serde_json::from_str(trimmed)
                .map_err(|e| GarbledMessage::new(format!("pool message is not valid JSON: {e}")))?;
            check_room_name(&wire.name)?;
            let room = match (wire.id, wire.guest_pin, wire.aliases) {
                (Some(_), Some(guest_pin), Some(aliases)) => {
                    check_pooled_room(&guest_pin, &aliases)?;
                    Some(PooledRoom {
                        guest_pin: guest_pin.into_owned(),
                        aliases: aliases.into_iter().map(|a| a.into_owned()).collect(),
                        created: wire.created.map(|c| c.into_owned()),
                    })
                }
                _ => None,
            };
            return Ok(Self {
                name: wire.name.into_owned(),
                id: wire.id,
                room,
            });
        }
        check_room_name(trimmed)?;
        Ok(Self {
            name: trimmed.to_owned(),
            id: None,
            room: None,
        })
    }
}

/// A guest PIN as Pexip stores one (empty, or 4–20 digits with an optional final `#`) and
/// aliases of printable text within Pexip's length.
fn check_pooled_room(
    guest_pin: &str,
    aliases: &[std::borrow::Cow<'_, str>],
) -> Result<(), GarbledMessage> {
    let digits = guest_pin.strip_suffix('#').unwrap_or(guest_pin);
    let pin_ok = guest_pin.is_empty()
        || ((4..=20).contains(&guest_pin.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
    if !pin_ok {
        // Never echo the PIN.
        return Err(GarbledMessage::new(
            "the pool message's guest PIN is malformed",
        ));
    }
    let alias_ok =
        |a: &str| (1..=MAX_ALIAS).contains(&a.chars().count()) && !a.chars().any(char::is_control);
    if !aliases.iter().all(|a| alias_ok(a)) {
        return Err(GarbledMessage::new(
            "the pool message has a malformed alias",
        ));
    }
    Ok(())
}

/// A room waiting to be deleted after its conference ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionMessage {
    /// The room (VMR) name, URL-path-safe.
    pub name: String,
    /// Why it is queued (e.g. `conference_ended`).
    pub reason: String,
    /// When the first message for this deletion was enqueued; kept when a message is
    /// re-enqueued (deferred) so the backlog's age stays visible.
    pub first_enqueued: OffsetDateTime,
    /// The room's tag when its conference ended, as the event reported it. The garbage
    /// collector refuses to delete a room whose tag has changed since: it was handed out again.
    pub tag: Option<String>,
}

/// The reason given to a plain room name from the older service.
pub const LEGACY_DELETION_REASON: &str = "legacy";

/// The reason of a room set aside after a tagging PATCH that failed in a way that may still
/// apply: it can never go back to the pool, and the garbage collector deletes it unless the
/// call's allocation record names it (its `tag` is the tag that was attempted).
pub const QUARANTINE_REASON: &str = "quarantine";

#[derive(Serialize, Deserialize)]
struct DeletionWire<'a> {
    name: std::borrow::Cow<'a, str>,
    #[serde(default)]
    reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    first_enqueued: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<std::borrow::Cow<'a, str>>,
}

impl DeletionMessage {
    /// The message text: `{"name":…,"reason":…,"first_enqueued":"<RFC 3339>"}`.
    pub fn to_text(&self) -> String {
        serde_json::to_string(&DeletionWire {
            name: self.name.as_str().into(),
            reason: Some(self.reason.as_str().into()),
            first_enqueued: Some(self.first_enqueued),
            tag: self.tag.as_deref().map(Into::into),
        })
        .expect("strings and an in-range date always serialise")
    }

    /// Parse our JSON, or a plain room name written by the older service. A plain name (or
    /// JSON without a time) gets `first_enqueued` = now: the time is unknown, and "now" never
    /// makes a message look older than it is. Callers that have the queue's insertion time
    /// may prefer it.
    pub fn parse(text: &str) -> Result<Self, GarbledMessage> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let wire: DeletionWire<'_> = serde_json::from_str(trimmed).map_err(|e| {
                GarbledMessage::new(format!("deletion message is not valid JSON: {e}"))
            })?;
            check_room_name(&wire.name)?;
            return Ok(Self {
                name: wire.name.into_owned(),
                reason: wire
                    .reason
                    .map_or_else(|| LEGACY_DELETION_REASON.to_owned(), |r| r.into_owned()),
                first_enqueued: wire.first_enqueued.unwrap_or_else(OffsetDateTime::now_utc),
                tag: wire.tag.map(|t| t.into_owned()),
            });
        }
        check_room_name(trimmed)?;
        Ok(Self {
            name: trimmed.to_owned(),
            reason: LEGACY_DELETION_REASON.to_owned(),
            first_enqueued: OffsetDateTime::now_utc(),
            tag: None,
        })
    }
}

/// Whether `name` is a URL-path-safe room name: 1–100 of ASCII letters, digits, `-`, `_`,
/// `.`, and not `.` or `..` (which would walk the API path).
pub fn is_room_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_room_name(name: &str) -> Result<(), GarbledMessage> {
    if is_room_name(name) {
        Ok(())
    } else if name.is_empty() {
        Err(GarbledMessage::new("empty room name"))
    } else {
        // Say what is wrong without echoing the text.
        Err(GarbledMessage::new(format!(
            "not a URL-path-safe room name ({} bytes)",
            name.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    fn pooled(guest_pin: &str, aliases: &[&str]) -> PooledRoom {
        PooledRoom {
            guest_pin: guest_pin.to_owned(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            created: Some("2026-01-02T03:04:05.678901".to_owned()),
        }
    }

    #[test]
    fn pool_messages_carry_what_the_answer_needs() {
        let message = PoolMessage {
            name: "vmr-a1b2".to_owned(),
            id: Some(42),
            room: Some(pooled("1234", &["vmr-a1b2", "vmr-a1b2@vc.example.com"])),
        };
        assert_eq!(
            message.to_text(),
            r#"{"name":"vmr-a1b2","id":42,"guest_pin":"1234","aliases":["vmr-a1b2","vmr-a1b2@vc.example.com"],"created":"2026-01-02T03:04:05.678901"}"#
        );
        assert_eq!(PoolMessage::parse(&message.to_text()).unwrap(), message);
    }

    #[test]
    fn pool_messages_of_the_earlier_generations_still_parse_without_the_room() {
        let earlier = PoolMessage::parse(r#"{"name":"vmr-a1b2","id":42}"#).unwrap();
        assert_eq!(
            earlier,
            PoolMessage {
                name: "vmr-a1b2".to_owned(),
                id: Some(42),
                room: None
            }
        );
        assert_eq!(earlier.to_text(), r#"{"name":"vmr-a1b2","id":42}"#);
        let unknown = PoolMessage {
            name: "vmr-a1b2".to_owned(),
            id: None,
            room: None,
        };
        assert_eq!(unknown.to_text(), r#"{"name":"vmr-a1b2","id":null}"#);
        // Half a room is no room: it is read from Pexip rather than answered half-known.
        let half = PoolMessage::parse(r#"{"name":"r1","id":3,"guest_pin":"1234"}"#).unwrap();
        assert_eq!(half.room, None);
        let no_id = PoolMessage::parse(r#"{"name":"r1","guest_pin":"1234","aliases":["r1"]}"#);
        assert_eq!(no_id.unwrap().room, None);
    }

    #[test]
    fn pool_messages_accept_the_older_services_plain_names() {
        assert_eq!(
            PoolMessage::parse("idim_room.42-x").unwrap(),
            PoolMessage {
                name: "idim_room.42-x".to_owned(),
                id: None,
                room: None
            }
        );
        assert_eq!(PoolMessage::parse(r#"{"name":"r1"}"#).unwrap().id, None);
    }

    #[test]
    fn garbled_pool_messages_are_refused() {
        let cases = [
            "",
            "   ",
            ".",
            "..",
            "room/../admin",
            "room name",
            "room?x=1",
            "räum",
            &"a".repeat(101),
            "{",
            r#"{"id":3}"#,
            r#"{"name":"a/b","id":1}"#,
            r#"{"name":"ok","id":-1}"#,
            r#"{"name":"ok","id":"x"}"#,
            r#"["ok"]"#,
            r#"{"name":"ok","id":1,"guest_pin":"12","aliases":["ok"]}"#,
            r#"{"name":"ok","id":1,"guest_pin":"12ab","aliases":["ok"]}"#,
            r#"{"name":"ok","id":1,"guest_pin":"1234","aliases":[""]}"#,
            r#"{"name":"ok","id":1,"guest_pin":"1234","aliases":["a\u0000b"]}"#,
        ];
        for text in cases {
            assert!(PoolMessage::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn garbled_reasons_never_echo_the_text() {
        let err = PoolMessage::parse("secret-ish text with spaces").unwrap_err();
        assert!(!err.to_string().contains("secret-ish"), "{err}");
        let err = PoolMessage::parse(r#"{"name":"ok","id":1,"guest_pin":"98765x","aliases":[]}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("98765"), "{err}");
    }

    #[test]
    fn deletion_messages_round_trip_with_reason_and_first_enqueued_time() {
        let message = DeletionMessage {
            name: "vmr-a1b2".to_owned(),
            reason: "conference_ended".to_owned(),
            first_enqueued: datetime!(2026-09-24 13:08:00 UTC),
            tag: None,
        };
        assert_eq!(
            message.to_text(),
            r#"{"name":"vmr-a1b2","reason":"conference_ended","first_enqueued":"2026-09-24T13:08:00Z"}"#
        );
        assert_eq!(DeletionMessage::parse(&message.to_text()).unwrap(), message);
    }

    #[test]
    fn deletion_messages_accept_plain_names_as_legacy() {
        let before = OffsetDateTime::now_utc();
        let message = DeletionMessage::parse("vmr-a1b2").unwrap();
        assert_eq!(message.name, "vmr-a1b2");
        assert_eq!(message.reason, LEGACY_DELETION_REASON);
        assert!(message.first_enqueued >= before);
    }

    #[test]
    fn garbled_deletion_messages_are_refused() {
        for text in [
            "",
            "a b",
            r#"{"reason":"x"}"#,
            r#"{"name":"..","reason":"x"}"#,
            r#"{"name":"ok","first_enqueued":"yesterday"}"#,
        ] {
            assert!(
                DeletionMessage::parse(text).is_err(),
                "{text:?} was accepted"
            );
        }
    }

    proptest! {
        #[test]
        fn any_valid_room_name_round_trips_through_both_formats(
            name in "[A-Za-z0-9_.-]{1,100}",
            id in proptest::option::of(any::<u64>()),
            guest_pin in "[0-9]{4,20}",
        ) {
            prop_assume!(name != "." && name != "..");
            let room = id.map(|_| PooledRoom {
                guest_pin,
                aliases: vec![name.clone(), format!("{name}@vc.example.com")],
                created: None,
            });
            let pool = PoolMessage { name: name.clone(), id, room };
            prop_assert_eq!(PoolMessage::parse(&pool.to_text()).unwrap(), pool);
            prop_assert_eq!(PoolMessage::parse(&name).unwrap().name, name.clone());
            let deletion = DeletionMessage {
                name: name.clone(),
                reason: "conference_ended".to_owned(),
                first_enqueued: datetime!(2026-01-01 0:00 UTC),
                tag: Some(format!("https://id.gov.bc.ca/idcheck/protected/video/{name}")),
            };
            prop_assert_eq!(DeletionMessage::parse(&deletion.to_text()).unwrap(), deletion);
        }

        #[test]
        fn any_text_either_parses_to_a_safe_name_or_is_garbled(text in any::<String>()) {
            if let Ok(message) = PoolMessage::parse(&text) {
                prop_assert!(is_room_name(&message.name));
            }
            if let Ok(message) = DeletionMessage::parse(&text) {
                prop_assert!(is_room_name(&message.name));
            }
        }
    }
}
