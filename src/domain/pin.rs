//! PINs: Pexip's format (4–20 digits, optional trailing `#`) and generation of host/guest pairs.

use std::fmt;

use rand::Rng as _;

/// Shortest and longest PIN Pexip accepts, counting a trailing `#`.
pub const PIN_LENGTHS: std::ops::RangeInclusive<usize> = 4..=20;

/// A PIN in Pexip's format. `Debug` is redacted so a PIN never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

/// Why a string is not a [`Pin`]. Never echoes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("PIN must be 4 to 20 characters long")]
    Length,
    #[error("PIN must be digits, optionally ending in '#'")]
    Format,
    #[error("host PIN and guest PIN must differ")]
    SameAsHost,
    #[error("PIN length must be between 4 and 20")]
    ConfiguredLength,
    #[error("PIN must be {0} digits, optionally ending in '#'")]
    NotConfiguredLength(usize),
}

impl Pin {
    /// Validate a PIN given by a caller.
    pub fn parse(raw: &str) -> Result<Self, PinError> {
        if !PIN_LENGTHS.contains(&raw.len()) {
            return Err(PinError::Length);
        }
        let digits = raw.strip_suffix('#').unwrap_or(raw);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinError::Format);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Validate a PIN given by a caller for a room of this service: Pexip's format with
    /// exactly `digits` digits (the configured length, which a shorter PIN would weaken).
    pub fn parse_exact(raw: &str, digits: usize) -> Result<Self, PinError> {
        let pin = Self::parse(raw).map_err(|e| match e {
            PinError::Length => PinError::NotConfiguredLength(digits),
            other => other,
        })?;
        if pin.digits().len() == digits {
            Ok(pin)
        } else {
            Err(PinError::NotConfiguredLength(digits))
        }
    }

    /// The digits without a trailing `#` (which only ends the entry): two PINs with the
    /// same digits are the same PIN to a caller.
    pub fn digits(&self) -> &str {
        self.0.strip_suffix('#').unwrap_or(&self.0)
    }

    /// `len` random digits from a CSPRNG (rand's thread RNG, seeded by the OS).
    pub fn generate(len: usize) -> Result<Self, PinError> {
        if !PIN_LENGTHS.contains(&len) {
            return Err(PinError::ConfiguredLength);
        }
        let mut rng = rand::rng();
        let digits: String = (0..len)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        Ok(Self(digits))
    }

    /// The PIN itself, for the request to Pexip. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

/// A host PIN and a guest PIN that differ, as Pexip requires.
#[derive(Debug, Clone)]
pub struct PinPair {
    pub host: Pin,
    pub guest: Pin,
}

impl PinPair {
    /// Generate a pair with the configured lengths; redraws the guest PIN until it differs.
    pub fn generate(host_len: usize, guest_len: usize) -> Result<Self, PinError> {
        let host = Pin::generate(host_len)?;
        loop {
            let guest = Pin::generate(guest_len)?;
            if guest != host {
                return Ok(Self { host, guest });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pexip_format_is_enforced() {
        for ok in [
            "1234",
            "1234#",
            "12345678901234567890",
            "1234567890123456789#",
        ] {
            assert!(Pin::parse(ok).is_ok(), "{ok}");
        }
        let bad = [
            ("123", PinError::Length),
            ("123456789012345678901", PinError::Length),
            ("12a4", PinError::Format),
            ("12#4", PinError::Format),
            ("####", PinError::Format),
            (" 1234", PinError::Format),
        ];
        for (raw, want) in bad {
            assert_eq!(Pin::parse(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn exact_lengths_are_enforced_with_an_optional_hash() {
        assert_eq!(Pin::parse_exact("123456", 6).unwrap().digits(), "123456");
        assert_eq!(Pin::parse_exact("123456#", 6).unwrap().digits(), "123456");
        for (raw, want) in [
            ("1234", PinError::NotConfiguredLength(6)),
            ("1234567", PinError::NotConfiguredLength(6)),
            ("12345#", PinError::NotConfiguredLength(6)),
            ("", PinError::NotConfiguredLength(6)),
            ("12a456", PinError::Format),
        ] {
            assert_eq!(Pin::parse_exact(raw, 6), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_digits() {
        let pin = Pin::parse("482913").unwrap();
        assert!(!format!("{pin:?}").contains("482913"));
        let pair = PinPair::generate(6, 4).unwrap();
        assert!(!format!("{pair:?}").contains(pair.host.expose()));
    }

    #[test]
    fn configured_lengths_outside_pexip_limits_are_refused() {
        assert_eq!(Pin::generate(3).unwrap_err(), PinError::ConfiguredLength);
        assert_eq!(Pin::generate(21).unwrap_err(), PinError::ConfiguredLength);
    }

    proptest! {
        #[test]
        fn generated_pairs_are_valid_and_differ(host_len in 4usize..=20, guest_len in 4usize..=20) {
            let pair = PinPair::generate(host_len, guest_len).unwrap();
            prop_assert_eq!(pair.host.expose().len(), host_len);
            prop_assert_eq!(pair.guest.expose().len(), guest_len);
            prop_assert!(pair.host != pair.guest);
            prop_assert!(Pin::parse(pair.host.expose()).is_ok());
            prop_assert!(Pin::parse(pair.guest.expose()).is_ok());
        }

        #[test]
        fn parse_matches_the_format_rule(raw in "[0-9#a]{0,22}") {
            let digits = raw.strip_suffix('#').unwrap_or(&raw);
            let ok = (4..=20).contains(&raw.len())
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(Pin::parse(&raw).is_ok(), ok);
        }
    }
}
