//! Settings of in-app authentication of the private `/room*` routes: Microsoft Entra ID access
//! tokens, checked against the tenant's published signing keys (JWKS), its issuer, our
//! audience, and an allow-list of client applications or app roles.
//!
//! The check is off unless `AUTH_JWKS_URL` is set (the host's function keys and API
//! Management still apply). Setting any other `AUTH_*` variable without it is refused: a
//! half-configured check that silently lets everything through is worse than a start-up error.
//! `serve` refuses to start with the check off unless `AUTH_DISABLED=true` says so on purpose
//! (see [`auth_disabled`]).

use std::time::Duration;

use url::Url;

use super::{ConfigError, Env};

/// Enables the check: the JWKS document of the tenant.
pub const AUTH_JWKS_URL: &str = "AUTH_JWKS_URL";
/// Accepted `iss` values.
pub const AUTH_ISSUER: &str = "AUTH_ISSUER";
/// Accepted `aud` values.
pub const AUTH_AUDIENCE: &str = "AUTH_AUDIENCE";
/// Client applications allowed in (`azp` of v2 tokens, `appid` of v1 tokens).
pub const AUTH_ALLOWED_CLIENT_IDS: &str = "AUTH_ALLOWED_CLIENT_IDS";
/// App roles allowed in (`roles` claim).
pub const AUTH_ALLOWED_ROLES: &str = "AUTH_ALLOWED_ROLES";
/// Tolerance on `exp` and `nbf`.
pub const AUTH_CLOCK_SKEW_SECONDS: &str = "AUTH_CLOCK_SKEW_SECONDS";
/// How long fetched keys are used before they are fetched again.
pub const AUTH_JWKS_CACHE_SECONDS: &str = "AUTH_JWKS_CACHE_SECONDS";
/// Least time between two refreshes caused by an unknown `kid`.
pub const AUTH_JWKS_REFRESH_MIN_SECONDS: &str = "AUTH_JWKS_REFRESH_MIN_SECONDS";
/// How long past `AUTH_JWKS_CACHE_SECONDS` the last good keys are still used while every
/// refresh fails.
pub const AUTH_JWKS_MAX_STALE_SECONDS: &str = "AUTH_JWKS_MAX_STALE_SECONDS";
/// `true`: the in-app check is off on purpose (function keys and API Management are the gate).
pub const AUTH_DISABLED: &str = "AUTH_DISABLED";

/// How access tokens on `/room*` are checked.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `AUTH_JWKS_URL`: the tenant's signing keys, e.g.
    /// `https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys`. https, except on a
    /// loopback host (tests).
    pub jwks_url: Url,
    /// `AUTH_ISSUER` (required, comma list): accepted `iss` values. Entra's v2 tokens carry
    /// `https://login.microsoftonline.com/<tenant>/v2.0`, v1 tokens `https://sts.windows.net/<tenant>/`.
    pub issuers: Vec<String>,
    /// `AUTH_AUDIENCE` (required, comma list): accepted `aud` values; v1 tokens carry the
    /// App ID URI (`api://<client id>`), v2 tokens the application's client id.
    pub audiences: Vec<String>,
    /// `AUTH_ALLOWED_CLIENT_IDS` (comma list): when set, the token's client (`azp`, else
    /// `appid`) must be one of these.
    pub allowed_client_ids: Vec<String>,
    /// `AUTH_ALLOWED_ROLES` (comma list): when set, the token's `roles` must hold one of
    /// these. With both lists set a token must satisfy both.
    pub allowed_roles: Vec<String>,
    /// `AUTH_CLOCK_SKEW_SECONDS` (default 60): tolerance on `exp` and `nbf`.
    pub clock_skew: Duration,
    /// `AUTH_JWKS_CACHE_SECONDS` (default 3600): fetched keys are used this long, then
    /// fetched again on the next request (so a key Entra withdrew stops being trusted).
    pub jwks_cache: Duration,
    /// `AUTH_JWKS_REFRESH_MIN_SECONDS` (default 60): a token signed with a key we do not know
    /// refreshes the keys at once (Entra rolls keys), but no more often than this, so a flood
    /// of made-up `kid`s cannot hammer the JWKS endpoint. A failed refresh is retried after
    /// this long too (the last good keys are used meanwhile).
    pub jwks_refresh_min: Duration,
    /// `AUTH_JWKS_MAX_STALE_SECONDS` (default 86400): when refreshes keep failing, the last
    /// good keys are used this long past `jwks_cache`, then no longer (503 until a refresh
    /// succeeds): a key Entra withdrew must not stay trusted because its JWKS was unreachable.
    pub jwks_max_stale: Duration,
}

impl AuthSettings {
    /// Read the settings; `None` when `AUTH_JWKS_URL` is unset (in-app check off).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(raw_url) = env.get(AUTH_JWKS_URL) else {
            let others = [
                AUTH_ISSUER,
                AUTH_AUDIENCE,
                AUTH_ALLOWED_CLIENT_IDS,
                AUTH_ALLOWED_ROLES,
                AUTH_CLOCK_SKEW_SECONDS,
                AUTH_JWKS_CACHE_SECONDS,
                AUTH_JWKS_REFRESH_MIN_SECONDS,
                AUTH_JWKS_MAX_STALE_SECONDS,
            ];
            if let Some(other) = others.iter().find(|name| env.get(name).is_some()) {
                return Err(ConfigError::invalid(
                    AUTH_JWKS_URL,
                    format!("must be set when {other} is (without it no token is checked)"),
                ));
            }
            return Ok(None);
        };
        let jwks_url = parse_jwks_url(raw_url)?;
        // Refuses AUTH_DISABLED=true beside a JWKS URL.
        auth_disabled(env)?;
        let issuers = required_list(env, AUTH_ISSUER)?;
        let audiences = required_list(env, AUTH_AUDIENCE)?;
        let allowed_client_ids = env.list_or(AUTH_ALLOWED_CLIENT_IDS, &[]);
        let allowed_roles = env.list_or(AUTH_ALLOWED_ROLES, &[]);
        // Any application in a tenant can get a token for our audience unless the app
        // registration requires assignment; an allow-list here keeps that safe by itself.
        if allowed_client_ids.is_empty() && allowed_roles.is_empty() {
            return Err(ConfigError::invalid(
                AUTH_ALLOWED_CLIENT_IDS,
                format!("set it or {AUTH_ALLOWED_ROLES}: a valid token alone is not enough"),
            ));
        }
        Ok(Some(Self {
            jwks_url,
            issuers,
            audiences,
            allowed_client_ids,
            allowed_roles,
            // Entra's clocks are good; minutes of skew would stretch every token's life.
            clock_skew: env.seconds_within(AUTH_CLOCK_SKEW_SECONDS, 60, 0..=300)?,
            jwks_cache: env.seconds_within(AUTH_JWKS_CACHE_SECONDS, 3600, 0..=86_400)?,
            jwks_refresh_min: env.seconds_within(AUTH_JWKS_REFRESH_MIN_SECONDS, 60, 1..=3600)?,
            jwks_max_stale: env.seconds_within(AUTH_JWKS_MAX_STALE_SECONDS, 86_400, 0..=604_800)?,
        }))
    }
}

/// `AUTH_DISABLED` (default false): `true` says the in-app check of `/room*` is off on purpose,
/// so `serve` starts without `AUTH_JWKS_URL`. Both at once is refused: which one holds?
pub fn auth_disabled(env: &Env) -> Result<bool, ConfigError> {
    let disabled = env.bool_or(AUTH_DISABLED, false)?;
    if disabled && env.get(AUTH_JWKS_URL).is_some() {
        return Err(ConfigError::invalid(
            AUTH_DISABLED,
            format!("must not be true while {AUTH_JWKS_URL} is set"),
        ));
    }
    Ok(disabled)
}

fn required_list(env: &Env, name: &str) -> Result<Vec<String>, ConfigError> {
    let list = env.list_or(name, &[]);
    if list.is_empty() {
        Err(ConfigError::missing(name))
    } else {
        Ok(list)
    }
}

/// The keys decide what we trust, so they come over https; plain http only on loopback,
/// where the tests serve their own JWKS.
fn parse_jwks_url(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::invalid(AUTH_JWKS_URL, e))?;
    let loopback = super::is_loopback(&url);
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError::invalid(
            AUTH_JWKS_URL,
            "must be an https URL (http only on a loopback host)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 4] = [
        (
            AUTH_JWKS_URL,
            "https://login.microsoftonline.com/tenant/discovery/v2.0/keys",
        ),
        (
            AUTH_ISSUER,
            "https://login.microsoftonline.com/tenant/v2.0, https://sts.windows.net/tenant/",
        ),
        (AUTH_AUDIENCE, "api://broker"),
        (AUTH_ALLOWED_CLIENT_IDS, "client-a,client-b"),
    ];

    fn read(extra: &[(&'static str, &'static str)]) -> Result<Option<AuthSettings>, ConfigError> {
        let mut pairs: Vec<(&str, &str)> = BASE.to_vec();
        for (name, value) in extra {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name, value));
        }
        AuthSettings::from_env(&Env::from_pairs(pairs))
    }

    #[test]
    fn no_jwks_url_means_the_check_is_off() {
        assert!(AuthSettings::from_env(&Env::default()).unwrap().is_none());
        assert_eq!(auth_disabled(&Env::default()), Ok(false));
        let on_purpose = Env::from_pairs([(AUTH_DISABLED, "true")]);
        assert!(AuthSettings::from_env(&on_purpose).unwrap().is_none());
        assert_eq!(auth_disabled(&on_purpose), Ok(true));
    }

    #[test]
    fn lists_and_defaults_are_read() {
        let s = read(&[]).unwrap().unwrap();
        assert_eq!(s.issuers.len(), 2);
        assert_eq!(s.audiences, ["api://broker"]);
        assert_eq!(s.allowed_client_ids, ["client-a", "client-b"]);
        assert!(s.allowed_roles.is_empty());
        assert_eq!(s.clock_skew, Duration::from_secs(60));
        assert_eq!(s.jwks_cache, Duration::from_secs(3600));
        assert_eq!(s.jwks_refresh_min, Duration::from_secs(60));
        assert_eq!(s.jwks_max_stale, Duration::from_secs(86_400));
    }

    #[test]
    fn roles_alone_are_an_allow_list() {
        let s = read(&[
            (AUTH_ALLOWED_CLIENT_IDS, ""),
            (AUTH_ALLOWED_ROLES, "Rooms.Manage"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.allowed_roles, ["Rooms.Manage"]);
    }

    #[test]
    fn http_is_accepted_on_loopback_only() {
        for url in [
            "http://127.0.0.1:9/keys",
            "http://localhost/keys",
            "http://[::1]/k",
        ] {
            assert!(read(&[(AUTH_JWKS_URL, url)]).is_ok(), "{url}");
        }
    }

    #[test]
    fn bad_or_partial_settings_name_their_variable() {
        let cases: [(&[(&str, &str)], &str); 12] = [
            (
                &[(AUTH_JWKS_URL, "http://login.example/keys")],
                AUTH_JWKS_URL,
            ),
            (&[(AUTH_JWKS_URL, "not a url")], AUTH_JWKS_URL),
            (&[(AUTH_ISSUER, "")], AUTH_ISSUER),
            (&[(AUTH_AUDIENCE, " , ")], AUTH_AUDIENCE),
            (&[(AUTH_ALLOWED_CLIENT_IDS, "")], AUTH_ALLOWED_CLIENT_IDS),
            (&[(AUTH_CLOCK_SKEW_SECONDS, "-5")], AUTH_CLOCK_SKEW_SECONDS),
            (
                &[(AUTH_CLOCK_SKEW_SECONDS, "3600")],
                AUTH_CLOCK_SKEW_SECONDS,
            ),
            (
                &[(AUTH_JWKS_CACHE_SECONDS, "604800")],
                AUTH_JWKS_CACHE_SECONDS,
            ),
            (
                &[(AUTH_JWKS_REFRESH_MIN_SECONDS, "0")],
                AUTH_JWKS_REFRESH_MIN_SECONDS,
            ),
            (
                &[(AUTH_JWKS_MAX_STALE_SECONDS, "2592000")],
                AUTH_JWKS_MAX_STALE_SECONDS,
            ),
            (&[(AUTH_DISABLED, "true")], AUTH_DISABLED),
            (
                &[(AUTH_JWKS_REFRESH_MIN_SECONDS, "soon")],
                AUTH_JWKS_REFRESH_MIN_SECONDS,
            ),
        ];
        for (extra, name) in cases {
            let err = read(extra).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}: {err}");
        }
    }

    #[test]
    fn other_auth_settings_without_a_jwks_url_are_refused() {
        let env = Env::from_pairs([(AUTH_AUDIENCE, "api://broker")]);
        let err = AuthSettings::from_env(&env).unwrap_err();
        assert!(err.to_string().starts_with(AUTH_JWKS_URL), "{err}");
        assert!(err.to_string().contains(AUTH_AUDIENCE), "{err}");
    }
}
