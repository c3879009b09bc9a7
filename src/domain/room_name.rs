//! Room names: what goes into `/room/{name}` and into Pexip URLs and filters.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// Longest name we accept. Pexip allows 250; our generated names are ~30 characters and older
/// rooms (persistent ones) are short too, so 100 leaves room without inviting abuse.
pub const MAX_ROOM_NAME_LEN: usize = 100;

/// A room name that is safe in a URL path segment and in a query value: ASCII letters, digits,
/// `-`, `_` and `.`, not `.` or `..`, 1 to [`MAX_ROOM_NAME_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

/// Why a string is not a [`RoomName`]. The message never echoes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    #[error("room name is empty")]
    Empty,
    #[error("room name is longer than {MAX_ROOM_NAME_LEN} characters")]
    TooLong,
    #[error("room name may only contain letters, digits, '-', '_' and '.'")]
    BadCharacter,
    #[error("room name may not be '.' or '..'")]
    DotSegment,
}

impl RoomName {
    /// Validate a name received from a caller, a queue message or Pexip.
    pub fn parse(raw: &str) -> Result<Self, RoomNameError> {
        if raw.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if raw.len() > MAX_ROOM_NAME_LEN {
            return Err(RoomNameError::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(RoomNameError::BadCharacter);
        }
        if raw == "." || raw == ".." {
            return Err(RoomNameError::DotSegment);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh, unguessable name: `prefix` followed by 128 random bits from a CSPRNG (rand's thread RNG, seeded by the OS) in
    /// unpadded base64url (22 characters). The prefix marks rooms this service created, which
    /// is what lets the reconciler find leaks without touching anyone else's rooms.
    pub fn generate(prefix: &RoomNamePrefix) -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{}{}", prefix.0, URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the name starts with any of `prefixes` (persistent rooms such as `test_`).
    pub fn has_any_prefix(&self, prefixes: &[String]) -> bool {
        prefixes.iter().any(|p| self.0.starts_with(p.as_str()))
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The prefix of every room this service creates (e.g. `vbv-`). It must itself be made of
/// room-name characters and leave room for the random part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomNamePrefix(String);

impl RoomNamePrefix {
    /// Validate a configured prefix: 1 to 40 room-name characters.
    pub fn parse(raw: &str) -> Result<Self, RoomNameError> {
        if raw.len() > 40 {
            return Err(RoomNameError::TooLong);
        }
        RoomName::parse(raw).map(|n| Self(n.0))
    }

    /// The prefix as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn invalid_names_are_refused_with_a_reason() {
        let cases = [
            ("", RoomNameError::Empty),
            ("a/b", RoomNameError::BadCharacter),
            ("..", RoomNameError::DotSegment),
            (".", RoomNameError::DotSegment),
            ("a b", RoomNameError::BadCharacter),
            ("caf\u{e9}", RoomNameError::BadCharacter),
            ("a%2Fb", RoomNameError::BadCharacter),
            ("a\nb", RoomNameError::BadCharacter),
            ("a?b=c", RoomNameError::BadCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(RoomName::parse(raw), Err(want), "{raw:?}");
        }
        assert_eq!(
            RoomName::parse(&"a".repeat(101)),
            Err(RoomNameError::TooLong)
        );
    }

    #[test]
    fn generated_names_carry_the_prefix_and_differ() {
        let prefix = RoomNamePrefix::parse("vbv-").unwrap();
        let a = RoomName::generate(&prefix);
        let b = RoomName::generate(&prefix);
        assert!(a.as_str().starts_with("vbv-"));
        assert_eq!(a.as_str().len(), 4 + 22);
        assert_ne!(a, b);
        assert_eq!(RoomName::parse(a.as_str()), Ok(a));
    }

    #[test]
    fn persistent_prefixes_are_recognised() {
        let prefixes = vec!["test_".to_owned(), "vkiosk_".to_owned()];
        assert!(
            RoomName::parse("test_room")
                .unwrap()
                .has_any_prefix(&prefixes)
        );
        assert!(!RoomName::parse("vbv-x").unwrap().has_any_prefix(&prefixes));
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_the_safe_alphabet(raw in "\\PC{0,120}") {
            let ok = !raw.is_empty()
                && raw.len() <= MAX_ROOM_NAME_LEN
                && raw != "." && raw != ".."
                && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            prop_assert_eq!(RoomName::parse(&raw).is_ok(), ok);
        }

        #[test]
        fn every_generated_name_parses(prefix in "[a-z]{1,8}-") {
            let prefix = RoomNamePrefix::parse(&prefix).unwrap();
            let name = RoomName::generate(&prefix);
            prop_assert!(RoomName::parse(name.as_str()).is_ok());
        }
    }
}
