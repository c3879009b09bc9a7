//! The text formats of the two queues' messages.
//!
//! - Pool (`room-creation-queue`): `{"name":"<room>","id":<pexip id or null>}`. The older
//!   Python service wrote the bare room name, which is still accepted.
//! - Deletion (`room-deletion-queue`): `{"name","reason","first_enqueued"}` (RFC 3339); a bare
//!   room name is accepted too.
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
}

#[derive(Serialize, Deserialize)]
struct PoolWire<'a> {
    name: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Option<u64>,
}

impl PoolMessage {
    /// The message text: `{"name":…,"id":…}` (`id` is `null` when unknown).
    pub fn to_text(&self) -> String {
        serde_json::to_string(&PoolWire {
            name: self.name.as_str().into(),
            id: self.id,
        })
        .expect("a string and an integer always serialise")
    }

    /// Parse our JSON, or a plain room name written by the older service.
    pub fn parse(text: &str) -> Result<Self, GarbledMessage> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let wire: PoolWire<'_> = serde_json::from_str(trimmed)
                .map_err(|e| GarbledMessage::new(format!("pool message is not valid JSON: {e}")))?;
            check_room_name(&wire.name)?;
            return Ok(Self {
                name: wire.name.into_owned(),
                id: wire.id,
            });
        }
        check_room_name(trimmed)?;
        Ok(Self {
            name: trimmed.to_owned(),
            id: None,
        })
    }
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

    #[test]
    fn pool_messages_are_json_with_name_and_id() {
        let message = PoolMessage {
            name: "vmr-a1b2".to_owned(),
            id: Some(42),
        };
        assert_eq!(message.to_text(), r#"{"name":"vmr-a1b2","id":42}"#);
        assert_eq!(PoolMessage::parse(&message.to_text()).unwrap(), message);
        let unknown = PoolMessage {
            name: "vmr-a1b2".to_owned(),
            id: None,
        };
        assert_eq!(unknown.to_text(), r#"{"name":"vmr-a1b2","id":null}"#);
    }

    #[test]
    fn pool_messages_accept_the_older_services_plain_names() {
        assert_eq!(
            PoolMessage::parse("idim_room.42-x").unwrap(),
            PoolMessage {
                name: "idim_room.42-x".to_owned(),
                id: None
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
        ];
        for text in cases {
            assert!(PoolMessage::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn garbled_reasons_never_echo_the_text() {
        let err = PoolMessage::parse("secret-ish text with spaces").unwrap_err();
        assert!(!err.to_string().contains("secret-ish"), "{err}");
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
        ) {
            prop_assume!(name != "." && name != "..");
            let pool = PoolMessage { name: name.clone(), id };
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
