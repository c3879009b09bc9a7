//! Every setting of the service, read from the environment once at start and validated into
//! types. Errors name the variable so an operator knows what to fix. No other module reads
//! the process environment: tests build an [`Env`] from pairs and never touch `std::env`.

mod auth;
mod env;
mod pexip;
mod rooms;
mod secrets;
mod storage;
mod telemetry;

pub use auth::{
    AUTH_ALLOWED_CLIENT_IDS, AUTH_ALLOWED_ROLES, AUTH_AUDIENCE, AUTH_CLOCK_SKEW_SECONDS,
    AUTH_DISABLED, AUTH_ISSUER, AUTH_JWKS_CACHE_SECONDS, AUTH_JWKS_MAX_STALE_SECONDS,
    AUTH_JWKS_REFRESH_MIN_SECONDS, AUTH_JWKS_URL, AuthSettings, auth_disabled,
};
pub use env::{ConfigError, Env, https_unless_loopback, is_loopback};
pub use pexip::{PexipAuth, PexipSettings, parse_base_url};
pub use rooms::{
    BULK_CREATE_MAX_PER_HOUR, EventSinkSettings, GENESYS_MAX_IN_FLIGHT, GenesysSettings,
    ROOM_AUTOMATIC_PARTICIPANTS, RoomSettings,
};
pub use secrets::{
    DEFAULT_REFRESH_SECONDS, EVENT_SINK_PASSWORD, KEY_VAULT_CLIENT_ID, KEY_VAULT_REFRESH_SECONDS,
    KEY_VAULT_URL, KV_SECRET_EVENT_SINK_PASSWORD, KV_SECRET_PEXIP_PASSWORD,
    KV_SECRET_PEXIP_PRIVATE_KEY, KeyVaultSettings, PEXIP_PASSWORD, PEXIP_PRIVATE_KEY, VaultSecret,
};
pub use storage::{
    DEV_ACCOUNT, DEV_ACCOUNT_KEY, DEV_BLOB_ENDPOINT, DEV_QUEUE_ENDPOINT, STORAGE_ACCOUNT_NAME,
    STORAGE_BLOB_SERVICE_URI, STORAGE_CLIENT_ID, STORAGE_CONNECTION, STORAGE_QUEUE_SERVICE_URI,
    StorageSettings,
};
pub use telemetry::{
    APPLICATIONINSIGHTS_CONNECTION_STRING, AppInsightsSettings, LogFormat, TelemetrySettings,
    WEBSITE_SITE_NAME,
};
