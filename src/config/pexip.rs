//! Settings of the Pexip Management API client: where the Management Node is, how to
//! authenticate (OAuth2 client assertion or HTTP Basic), and how hard to push it.
//!
//! The private key (or password) is kept as a [`Secret`] handle, the only copy: a fixed value
//! from the environment, or Key Vault's live value (see [`crate::secrets::SecretStore::supply`]),
//! which the client reads at each use and so follows rotations. [`crate::pexip::PexipClient::new`]
//! parses the key, so its errors come from one place.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::secrets::{PEXIP_PASSWORD, PEXIP_PRIVATE_KEY};
use super::{ConfigError, Env};
use crate::secrets::Secret;

/// Default cap on concurrent requests to the Management Node (Pexip's own CLI uses 5).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 5;
/// Default per-request timeout, in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 30;
/// Default number of retries of a retryable failure.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// How the client authenticates to the Management API.
#[derive(Debug, Clone)]
pub enum PexipAuth {
    /// OAuth2 client credentials with an ES256 JWT client assertion (`PEXIP_CLIENT_ID`,
    /// `PEXIP_PRIVATE_KEY`). The key is PKCS#8 PEM, SEC1 PEM, or base64 of either.
    OAuth2 {
        /// The OAuth2 client id Pexip generated.
        client_id: String,
        /// The client's private key, as configured (parsed by the client).
        private_key: Secret,
    },
    /// HTTP Basic with a local or LDAP admin account (`PEXIP_USERNAME`, `PEXIP_PASSWORD`).
    Basic {
        /// The account name.
        username: String,
        /// The account password.
        password: Secret,
    },
}

/// Everything [`crate::pexip::PexipClient`] needs.
#[derive(Debug, Clone)]
pub struct PexipSettings {
    /// `PEXIP_BASE_URL`: the Management Node, `http(s)://host[:port][/prefix]`, stored without
    /// a trailing slash in its path.
    pub base_url: Url,
    /// OAuth2 or Basic credentials.
    pub auth: PexipAuth,
    /// `PEXIP_MAX_IN_FLIGHT`: at most this many requests to the Management Node at once, for
    /// the whole process.
    pub max_in_flight: usize,
    /// `PEXIP_REQUEST_TIMEOUT_SECONDS`: the limit for one HTTP exchange (connect to last byte).
    pub request_timeout: Duration,
    /// `PEXIP_MAX_RETRIES`: retries of a retryable failure (429, 502/503/504, network errors).
    pub max_retries: u32,
}

impl PexipSettings {
    /// Read `PEXIP_BASE_URL`, the credentials and the tuning variables.
    ///
    /// OAuth2 is chosen when `PEXIP_CLIENT_ID` is set, Basic when `PEXIP_USERNAME` is; setting
    /// both is refused so a forgotten variable cannot silently pick the wrong account.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let base_url = parse_base_url("PEXIP_BASE_URL", env.required("PEXIP_BASE_URL")?)?;
        let auth = match (env.get("PEXIP_CLIENT_ID"), env.get("PEXIP_USERNAME")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "PEXIP_USERNAME",
                    "set either PEXIP_CLIENT_ID (OAuth2) or PEXIP_USERNAME (Basic), not both",
                ));
            }
            (Some(client_id), None) => PexipAuth::OAuth2 {
                client_id: client_id.to_owned(),
                private_key: private_key(env)?,
            },
            (None, Some(username)) => PexipAuth::Basic {
                username: username.to_owned(),
                password: env.required_secret(PEXIP_PASSWORD)?,
            },
            (None, None) => return Err(ConfigError::missing("PEXIP_CLIENT_ID")),
        };
        // A Management Node slows down under parallel load (its own CLI uses 5); more than
        // 50 at once only queues there instead of here.
        let max_in_flight = env.bounded_or("PEXIP_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, 1..=50)?;
        let request_timeout = env.seconds_within(
            "PEXIP_REQUEST_TIMEOUT_SECONDS",
            DEFAULT_REQUEST_TIMEOUT_SECONDS,
            1..=300,
        )?;
        // Backoff doubles per retry: ten already spans minutes.
        let max_retries = env.bounded_or("PEXIP_MAX_RETRIES", DEFAULT_MAX_RETRIES, 0..=10)?;
        Ok(Self {
            base_url,
            auth,
            max_in_flight,
            request_timeout,
            max_retries,
        })
    }
}

/// `PEXIP_PRIVATE_KEY` (the key itself, or Key Vault's live handle on it), or
/// `PEXIP_PRIVATE_KEY_FILE` (a file holding it, as `pexip-sdk sim --key-out FILE` writes). The
/// key is only read here, never parsed: the client parses it, so its errors come from one place.
fn private_key(env: &Env) -> Result<Secret, ConfigError> {
    const FILE: &str = "PEXIP_PRIVATE_KEY_FILE";
    match (env.get(PEXIP_PRIVATE_KEY), env.get(FILE)) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            FILE,
            "set either PEXIP_PRIVATE_KEY or PEXIP_PRIVATE_KEY_FILE, not both",
        )),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|key| Secret::fixed(FILE, SecretString::from(key)))
            .map_err(|e| {
                ConfigError::invalid(
                    "PEXIP_PRIVATE_KEY_FILE",
                    format!("cannot read {path:?}: {e}"),
                )
            }),
        (_, None) => env.required_secret(PEXIP_PRIVATE_KEY),
    }
}

/// Parse a Management Node URL: http or https, a host, no query or fragment; a trailing slash
/// in the path is dropped so paths can be appended verbatim.
pub fn parse_base_url(name: &str, raw: &str) -> Result<Url, ConfigError> {
    let mut url = Url::parse(raw).map_err(|e| ConfigError::invalid(name, e))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            name,
            format!(
                "expected an http or https URL (got scheme {:?})",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(name, "the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            name,
            "the URL must not have a query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials belong in their own (secret) variables, never in a URL that gets logged.
        return Err(ConfigError::invalid(
            name,
            "the URL must not carry credentials",
        ));
    }
    // The client sends a bearer token or a password on every request.
    super::https_unless_loopback(name, &url)?;
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn oauth_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PEXIP_BASE_URL", "https://mgr.example.com/"),
            ("PEXIP_CLIENT_ID", "client-1"),
            (
                "PEXIP_PRIVATE_KEY",
                "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----",
            ),
        ]
    }

    #[test]
    fn oauth2_settings_take_defaults_for_tuning() {
        let settings = PexipSettings::from_env(&Env::from_pairs(oauth_env())).unwrap();
        assert_eq!(settings.base_url.as_str(), "https://mgr.example.com/");
        assert_eq!(settings.max_in_flight, 5);
        assert_eq!(settings.request_timeout, Duration::from_secs(30));
        assert_eq!(settings.max_retries, 3);
        match settings.auth {
            PexipAuth::OAuth2 {
                client_id,
                private_key,
            } => {
                assert_eq!(client_id, "client-1");
                assert!(
                    private_key
                        .current()
                        .expose_secret()
                        .contains("BEGIN PRIVATE KEY")
                );
            }
            PexipAuth::Basic { .. } => panic!("expected OAuth2"),
        }
    }

    #[test]
    fn basic_settings_need_a_password() {
        let env = Env::from_pairs([
            ("PEXIP_BASE_URL", "http://127.0.0.1:7072"),
            ("PEXIP_USERNAME", "admin"),
        ]);
        assert_eq!(
            PexipSettings::from_env(&env).unwrap_err(),
            ConfigError::missing("PEXIP_PASSWORD")
        );
        let env = Env::from_pairs([
            ("PEXIP_BASE_URL", "http://127.0.0.1:7072"),
            ("PEXIP_USERNAME", "admin"),
            ("PEXIP_PASSWORD", "pw"),
            ("PEXIP_MAX_IN_FLIGHT", "2"),
            ("PEXIP_REQUEST_TIMEOUT_SECONDS", "7"),
            ("PEXIP_MAX_RETRIES", "0"),
        ]);
        let settings = PexipSettings::from_env(&env).unwrap();
        assert!(
            matches!(settings.auth, PexipAuth::Basic { ref username, .. } if username == "admin")
        );
        assert_eq!(settings.max_in_flight, 2);
        assert_eq!(settings.request_timeout, Duration::from_secs(7));
        assert_eq!(settings.max_retries, 0);
    }

    #[test]
    fn missing_credentials_name_the_client_id() {
        let env = Env::from_pairs([("PEXIP_BASE_URL", "https://mgr")]);
        assert_eq!(
            PexipSettings::from_env(&env).unwrap_err(),
            ConfigError::missing("PEXIP_CLIENT_ID")
        );
        let env = Env::from_pairs([("PEXIP_BASE_URL", "https://mgr"), ("PEXIP_CLIENT_ID", "c")]);
        assert_eq!(
            PexipSettings::from_env(&env).unwrap_err(),
            ConfigError::missing("PEXIP_PRIVATE_KEY")
        );
    }

    #[test]
    fn the_private_key_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("pexip-key-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let path_text = path.to_str().unwrap().to_owned();
        let mut pairs: Vec<(&str, &str)> = oauth_env();
        pairs.retain(|(k, _)| *k != "PEXIP_PRIVATE_KEY");
        pairs.push(("PEXIP_PRIVATE_KEY_FILE", &path_text));
        let settings = PexipSettings::from_env(&Env::from_pairs(pairs.clone())).unwrap();
        std::fs::remove_file(&path).unwrap();
        let PexipAuth::OAuth2 { private_key, .. } = settings.auth else {
            panic!("expected OAuth2");
        };
        assert!(
            private_key
                .current()
                .expose_secret()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );

        // Gone file: the error names the variable.
        let err = PexipSettings::from_env(&Env::from_pairs(pairs.clone())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PEXIP_PRIVATE_KEY_FILE is invalid"),
            "{err}"
        );
        // Both at once: refused.
        pairs.push(("PEXIP_PRIVATE_KEY", "x"));
        let err = PexipSettings::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PEXIP_PRIVATE_KEY_FILE is invalid"),
            "{err}"
        );
    }

    #[test]
    fn both_credential_kinds_at_once_are_refused() {
        let mut pairs = oauth_env();
        pairs.push(("PEXIP_USERNAME", "admin"));
        pairs.push(("PEXIP_PASSWORD", "pw"));
        let err = PexipSettings::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(
            err.to_string().starts_with("PEXIP_USERNAME is invalid"),
            "{err}"
        );
    }

    #[test]
    fn plain_http_is_accepted_on_loopback_only() {
        for raw in [
            "http://127.0.0.1:7072",
            "http://localhost:7072/",
            "http://[::1]:7072",
        ] {
            assert!(parse_base_url("PEXIP_BASE_URL", raw).is_ok(), "{raw}");
        }
        let err = parse_base_url("PEXIP_BASE_URL", "http://pexip.example").unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[test]
    fn base_url_keeps_a_prefix_without_its_trailing_slash() {
        let url = parse_base_url("X", "https://mgr.example.com/pexip/").unwrap();
        assert_eq!(url.as_str(), "https://mgr.example.com/pexip");
    }

    #[test]
    fn bad_base_urls_and_tuning_values_name_the_variable() {
        let cases = [
            ("PEXIP_BASE_URL", "mgr.example.com"),
            ("PEXIP_BASE_URL", "ftp://mgr.example.com"),
            ("PEXIP_BASE_URL", "https://mgr.example.com/?x=1"),
            ("PEXIP_BASE_URL", "https://admin:pw@mgr.example.com"),
            ("PEXIP_MAX_IN_FLIGHT", "0"),
            ("PEXIP_MAX_IN_FLIGHT", "many"),
            ("PEXIP_REQUEST_TIMEOUT_SECONDS", "0"),
            ("PEXIP_MAX_RETRIES", "-1"),
            ("PEXIP_BASE_URL", "http://mgr.example.com"),
            ("PEXIP_BASE_URL", "http://10.0.0.5"),
            ("PEXIP_MAX_IN_FLIGHT", "51"),
            ("PEXIP_REQUEST_TIMEOUT_SECONDS", "301"),
            ("PEXIP_MAX_RETRIES", "11"),
        ];
        for (name, value) in cases {
            let mut pairs = oauth_env();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = PexipSettings::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{name} is invalid")),
                "{name}={value}: {err}"
            );
        }
    }
}
