//! A snapshot of environment variables and typed accessors whose errors name the variable.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::secrets::Secret;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{name} is not set")]
    Missing { name: String },
    /// A variable is set but its value cannot be used.
    #[error("{name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
    /// A variable is unset that this way of running needs, and why.
    #[error("{name} is not set: {reason}")]
    Needed { name: String, reason: String },
}

impl ConfigError {
    /// An invalid value of `name`, with a reason that must not contain the value if secret.
    pub fn invalid(name: &str, reason: impl Display) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// A missing required variable.
    pub fn missing(name: &str) -> Self {
        ConfigError::Missing {
            name: name.to_owned(),
        }
    }

    /// A variable that is optional elsewhere but needed here, with the reason.
    pub fn needed(name: &str, reason: impl Display) -> Self {
        ConfigError::Needed {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address. Plain http is
/// accepted only there (the simulator, Azurite, test fakes): anything else would send
/// credentials or trust decisions over the network in clear text.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Refuse an `http` URL unless it is on loopback (see [`is_loopback`]); other schemes are
/// left to the caller.
pub fn https_unless_loopback(name: &str, url: &url::Url) -> Result<(), ConfigError> {
    if url.scheme() == "http" && !is_loopback(url) {
        return Err(ConfigError::invalid(
            name,
            "must be an https URL (plain http only on a loopback host)",
        ));
    }
    Ok(())
}

/// A snapshot of environment variables. Built once from the process in `main`, or from pairs
/// in tests, so no test ever mutates the process environment.
///
/// It also carries the live handles of secrets that another source supplies (Key Vault: see
/// [`crate::secrets::SecretStore::supply`]), so the settings take a secret from one place,
/// [`Env::required_secret`], whatever its source, and hold only the handle.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    /// Secrets supplied by a store, by the name of the setting they stand for.
    supplied: HashMap<String, Secret>,
}

impl Env {
    /// Snapshot the process environment (non-UTF-8 values are skipped).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
            supplied: HashMap::new(),
        }
    }

    /// Build from explicit pairs (tests, `dev` mode defaults).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            supplied: HashMap::new(),
        }
    }

    /// Set a variable unless it is already set (used by `dev` mode to supply defaults).
    pub fn set_default(&mut self, name: &str, value: impl Into<String>) {
        if self.get(name).is_none() {
            self.vars.insert(name.to_owned(), value.into());
        }
    }

    /// Set (or replace) a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// The trimmed value of `name`; unset and blank both read as `None`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or an error naming it.
    pub fn required(&self, name: &str) -> Result<&str, ConfigError> {
        self.get(name).ok_or_else(|| ConfigError::missing(name))
    }

    /// Let a secret store supply the setting `name`: [`Self::required_secret`] then returns
    /// this live handle instead of a fixed value from the environment.
    pub fn supply_secret(&mut self, name: &str, secret: Secret) {
        self.supplied.insert(name.to_owned(), secret);
    }

    /// The secret setting `name`: the live handle a store supplied, else the environment's
    /// value as a fixed secret, else an error naming it.
    pub fn required_secret(&self, name: &str) -> Result<Secret, ConfigError> {
        if let Some(secret) = self.supplied.get(name) {
            return Ok(secret.clone());
        }
        let value = self.required(name)?;
        Ok(Secret::fixed(name, SecretString::from(value.to_owned())))
    }

    /// Parse `name` with [`FromStr`], or use `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| ConfigError::invalid(name, format!("{e} (got {raw:?})"))),
        }
    }

    /// Parse `name` like [`Self::parse_or`] and require it to lie in `bounds` (inclusive).
    /// Every number an operator sets goes through this: a value far outside what the service
    /// was built for (a zero cap, a week-long timeout) is refused at start, not discovered
    /// in production.
    pub fn bounded_or<T>(
        &self,
        name: &str,
        default: T,
        bounds: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display,
        T::Err: Display,
    {
        let value = self.parse_or(name, default)?;
        if bounds.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::invalid(
                name,
                format!(
                    "must be between {} and {} (got {value})",
                    bounds.start(),
                    bounds.end()
                ),
            ))
        }
    }

    /// A whole number of seconds in `bounds`, or `default` when unset.
    pub fn seconds_within(
        &self,
        name: &str,
        default: u64,
        bounds: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.bounded_or(name, default, bounds)
            .map(Duration::from_secs)
    }

    /// A boolean (`true`/`false`/`1`/`0`/`yes`/`no`), or `default` when unset.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ConfigError::invalid(
                name,
                format!("expected true or false (got {other:?})"),
            )),
        }
    }

    /// A comma-separated list (blank items dropped), or `default` when unset.
    pub fn list_or(&self, name: &str, default: &[&str]) -> Vec<String> {
        match self.get(name) {
            None => default.iter().map(|s| (*s).to_owned()).collect(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_read_as_unset() {
        let env = Env::from_pairs([("A", "  ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.required("A"), Err(ConfigError::missing("A")));
    }

    #[test]
    fn parse_errors_name_the_variable() {
        let env = Env::from_pairs([("ROOM_POOL_TARGET", "lots")]);
        let err = env.parse_or::<u32>("ROOM_POOL_TARGET", 5).unwrap_err();
        assert!(
            err.to_string().starts_with("ROOM_POOL_TARGET is invalid"),
            "{err}"
        );
    }

    #[test]
    fn bounded_numbers_name_the_variable_and_the_bounds() {
        let env = Env::from_pairs([("A", "0"), ("B", "7"), ("C", "301")]);
        let err = env.bounded_or("A", 5u32, 1..=10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "A is invalid: must be between 1 and 10 (got 0)"
        );
        assert_eq!(env.bounded_or("B", 5u32, 1..=10), Ok(7));
        assert_eq!(env.bounded_or("D", 5u32, 1..=10), Ok(5));
        let err = env.seconds_within("C", 30, 1..=300).unwrap_err();
        assert!(err.to_string().starts_with("C is invalid"), "{err}");
    }

    #[test]
    fn lists_split_on_commas_and_drop_blanks() {
        let env = Env::from_pairs([("L", "id, idtest,,iddev ")]);
        assert_eq!(env.list_or("L", &[]), ["id", "idtest", "iddev"]);
        assert_eq!(env.list_or("M", &["x"]), ["x"]);
    }

    #[test]
    fn booleans_accept_common_spellings() {
        let env = Env::from_pairs([("A", "TRUE"), ("B", "0"), ("C", "maybe")]);
        assert_eq!(env.bool_or("A", false), Ok(true));
        assert_eq!(env.bool_or("B", true), Ok(false));
        assert!(env.bool_or("C", true).is_err());
        assert_eq!(env.bool_or("D", true), Ok(true));
    }
}
