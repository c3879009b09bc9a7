//! A snapshot of environment variables and typed accessors whose errors name the variable.

use std::collections::HashMap;
use std::fmt::Display;
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

    /// A whole number of seconds, or `default` when unset.
    pub fn seconds_or(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        self.parse_or::<u64>(name, default).map(Duration::from_secs)
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
