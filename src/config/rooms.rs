//! Settings of the room flows: pool, deletion, names, PINs, UUI → tag, and the two callers
//! that authenticate in-app (the Pexip event sink and the Genesys agent widget).

use std::time::Duration;

use url::Url;

use super::{ConfigError, Env};
use crate::domain::{RoomNamePrefix, SourceNetworks, TagTemplate, UuiPolicy};
use crate::pexip::AutomaticParticipantRef;
use crate::secrets::Secret;

/// Most rooms bulk creates may ask for within an hour.
pub const BULK_CREATE_MAX_PER_HOUR: &str = "BULK_CREATE_MAX_PER_HOUR";
/// Most Genesys token checks in flight at once.
pub const GENESYS_MAX_IN_FLIGHT: &str = "GENESYS_MAX_IN_FLIGHT";
/// The automatic participants linked to every room this service creates.
pub const ROOM_AUTOMATIC_PARTICIPANTS: &str = "ROOM_AUTOMATIC_PARTICIPANTS";
/// How old an untagged, unpooled room of ours must be before the reconciler suspects it.
pub const LEAK_MIN_AGE_SECONDS: &str = "LEAK_MIN_AGE_SECONDS";
/// How long a room handed out may go without a conference before it is deleted.
pub const ROOM_MAX_UNUSED_HOURS: &str = "ROOM_MAX_UNUSED_HOURS";
/// What `LEAK_MIN_AGE_SECONDS` must exceed the ready delay by: a refill sends the pool
/// message after its create returns, and Pexip's clock (which sets `creation_time`) may be
/// a little ahead of ours.
pub const LEAK_AGE_MARGIN: Duration = Duration::from_secs(60);

/// How rooms are pooled, named, tagged and deleted.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// `ROOM_POOL_TARGET` (default 10): rooms the timers keep ready in the pool.
    pub pool_target: usize,
    /// `ROOM_READY_DELAY_SECONDS` (default 90): a new pool room stays invisible this long,
    /// because Pexip needs about 90 s to replicate a new VMR to its Conferencing Nodes.
    pub ready_delay: Duration,
    /// `ROOM_DELETE_GRACE_SECONDS` (default 600): a room is deleted this long after its
    /// conference ended, so a participant who drops and rejoins keeps the room.
    pub delete_grace: Duration,
    /// `PERSISTENT_ROOM_PREFIXES` (default `test_,vkiosk_`): rooms never deleted by this
    /// service. Compared ignoring ASCII case (`TEST_x` is persistent too).
    pub persistent_prefixes: Vec<String>,
    /// `ROOM_NAME_PREFIX` (default `vbv-`): marks rooms this service created.
    pub name_prefix: RoomNamePrefix,
    /// `HOST_PIN_LENGTH` (default 6) and `GUEST_PIN_LENGTH` (default 4), 4–20 each.
    pub host_pin_length: usize,
    pub guest_pin_length: usize,
    /// `UUI_ALLOWED_HOSTS` (default `id,idtest,iddev`) and `TAG_URL_TEMPLATE`.
    pub uui: UuiPolicy,
    /// `ROOM_ALIAS_DOMAIN` (optional): when set, each room gets a second alias
    /// `<name>@<domain>` besides the bare name.
    pub alias_domain: Option<String>,
    /// `GC_MAX_DEQUEUE` (default 5): a deletion message received this often goes to poison.
    pub gc_max_dequeue: u32,
    /// `GC_TIME_BUDGET_SECONDS` (default 480): the GC stops draining after this long, well
    /// inside the 10-minute timer period.
    pub gc_time_budget: Duration,
    /// `LEAK_MIN_AGE_SECONDS` (default 3600, at least `ROOM_READY_DELAY_SECONDS` + 60, at
    /// most 30 days; unset with a ready delay above 3540 s, the floor): the reconciler only
    /// suspects an untagged, unpooled room older than this.
    /// The floor: a pool room's message cannot be received during its ready delay, so a
    /// younger threshold would take every new pool room for a leak.
    pub leak_min_age: Duration,
    /// `ROOM_MAX_UNUSED_HOURS` (default 24, 1 to `ALLOCATION_RECORD_MAX_AGE_HOURS`): a room
    /// handed out this long ago whose conference is not live is deleted (the citizen gave
    /// up; see `rooms/unused.rs`).
    pub max_unused: Duration,
    /// `RECONCILE_DRY_RUN` (default false): report leaks without deleting them.
    pub reconcile_dry_run: bool,
    /// `BULK_CREATE_MAX` (default 1000, 1–10,000): the largest `count` of `POST /room/bulk`.
    pub bulk_create_max: usize,
    /// `BULK_CREATE_MAX_PER_HOUR` (default 2000, 1–100,000, at least `BULK_CREATE_MAX`): most
    /// rooms bulk creates may ask for within any hour, per process.
    pub bulk_create_per_hour: usize,
    /// `QUEUE_NAME_PREFIX` (default empty): put before every queue name and the allocation
    /// records' container name, so deployment slots (or tests) sharing one storage account
    /// keep separate pools.
    pub queue_prefix: String,
    /// `ROOM_AUTOMATIC_PARTICIPANTS` (default none): Pexip automatic participants (resource
    /// URIs or ids) linked to every room this service creates, in the create request itself,
    /// so Pexip dials them (the contact-centre agent) when a conference starts.
    pub automatic_participants: Vec<AutomaticParticipantRef>,
    /// `ALLOCATION_CLAIM_TIMEOUT_SECONDS` (default 10, 2–600): a create waiting for another
    /// instance's allocation of the same video call takes it over when the call's record has
    /// not changed for this long (its owner died, or lost its storage). A liveness bound only:
    /// an owner slower than this can never answer a room the taker-over does not.
    pub claim_timeout: Duration,
    /// `ALLOCATION_RECORD_MAX_AGE_HOURS` (default 168, 1–8760): the GC timer removes
    /// allocation records last written longer ago (records are removed with their rooms; this
    /// catches the ones whose room went another way).
    pub record_max_age: Duration,
}

impl RoomSettings {
    /// Read the room settings; every variable is optional.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let pin_len = |name: &str, default: usize| -> Result<usize, ConfigError> {
            let n = env.parse_or(name, default)?;
            if (4..=20).contains(&n) {
                Ok(n)
            } else {
                Err(ConfigError::invalid(
                    name,
                    "must be between 4 and 20 (Pexip's PIN limits)",
                ))
            }
        };
        let host_pin_length = pin_len("HOST_PIN_LENGTH", 6)?;
        let guest_pin_length = pin_len("GUEST_PIN_LENGTH", 4)?;
        let name_prefix = RoomNamePrefix::parse(env.get("ROOM_NAME_PREFIX").unwrap_or("vbv-"))
            .map_err(|e| ConfigError::invalid("ROOM_NAME_PREFIX", e))?;
        let template = match env.get("TAG_URL_TEMPLATE") {
            None => TagTemplate::default(),
            Some(raw) => {
                TagTemplate::parse(raw).map_err(|e| ConfigError::invalid("TAG_URL_TEMPLATE", e))?
            }
        };
        let allowed_hosts = env.list_or("UUI_ALLOWED_HOSTS", &["id", "idtest", "iddev"]);
        if let Some(bad) = allowed_hosts
            .iter()
            .find(|h| !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(ConfigError::invalid(
                "UUI_ALLOWED_HOSTS",
                format!("{bad:?} is not a DNS label (letters, digits, '-')"),
            ));
        }
        let persistent_prefixes = env.list_or("PERSISTENT_ROOM_PREFIXES", &["test_", "vkiosk_"]);
        if persistent_prefixes.iter().any(|p| {
            name_prefix
                .as_str()
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        }) {
            return Err(ConfigError::invalid(
                "ROOM_NAME_PREFIX",
                "must not start with a persistent prefix (those rooms are never deleted)",
            ));
        }
        let gc_max_dequeue = env.bounded_or("GC_MAX_DEQUEUE", 5u32, 1..=100)?;
        let bulk_create_max = env.bounded_or("BULK_CREATE_MAX", 1000, 1..=10_000)?;
        let bulk_create_per_hour = env.bounded_or(BULK_CREATE_MAX_PER_HOUR, 2000, 1..=100_000)?;
        if bulk_create_per_hour < bulk_create_max {
            // A job of the largest allowed count would always be refused.
            return Err(ConfigError::invalid(
                BULK_CREATE_MAX_PER_HOUR,
                format!("must be at least BULK_CREATE_MAX ({bulk_create_max})"),
            ));
        }
        let queue_prefix = env.get("QUEUE_NAME_PREFIX").unwrap_or("").to_owned();
        // Azure queue names: lowercase letters, digits and single hyphens, 3-63 characters;
        // the longest of ours adds 26 characters to the prefix.
        if queue_prefix.len() > 30
            || !queue_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || queue_prefix.starts_with('-')
            || queue_prefix.contains("--")
        {
            return Err(ConfigError::invalid(
                "QUEUE_NAME_PREFIX",
                "use up to 30 lowercase letters, digits and single hyphens, not starting with a hyphen",
            ));
        }
        // Pexip replicates in about 90 s; an hour means something else is wrong.
        let ready_delay = env.seconds_within("ROOM_READY_DELAY_SECONDS", 90, 0..=3600)?;
        let leak_floor = ready_delay + LEAK_AGE_MARGIN;
        // An hour, or the floor when a long ready delay puts it higher.
        let leak_default = leak_floor.as_secs().max(3600);
        let leak_min_age =
            env.seconds_within(LEAK_MIN_AGE_SECONDS, leak_default, 0..=30 * 86_400)?;
        if leak_min_age < leak_floor {
            return Err(ConfigError::invalid(
                LEAK_MIN_AGE_SECONDS,
                format!(
                    "must be at least ROOM_READY_DELAY_SECONDS + {} ({} s): a younger pool \
                     room cannot be seen in the pool yet and would be taken for a leak",
                    LEAK_AGE_MARGIN.as_secs(),
                    leak_floor.as_secs()
                ),
            ));
        }
        let record_max_hours =
            env.bounded_or("ALLOCATION_RECORD_MAX_AGE_HOURS", 168u64, 1..=8760)?;
        let max_unused_hours = env.bounded_or(ROOM_MAX_UNUSED_HOURS, 24u64, 1..=8760)?;
        if max_unused_hours > record_max_hours {
            // The record's last write is when the room was handed out: swept first, the
            // room could never be judged.
            return Err(ConfigError::invalid(
                ROOM_MAX_UNUSED_HOURS,
                format!(
                    "must be at most ALLOCATION_RECORD_MAX_AGE_HOURS ({record_max_hours}): \
                     the allocation record tells when a room was handed out"
                ),
            ));
        }
        let automatic_participants = env
            .list_or(ROOM_AUTOMATIC_PARTICIPANTS, &[])
            .iter()
            .map(|raw| {
                AutomaticParticipantRef::parse(raw).ok_or_else(|| {
                    ConfigError::invalid(
                        ROOM_AUTOMATIC_PARTICIPANTS,
                        format!(
                            "{raw:?} is neither an id nor a resource URI \
                             /api/admin/configuration/v1/automatic_participant/<id>/"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            automatic_participants,
            queue_prefix,
            // A liveness bound (see the field): long enough for a slow allocation, short
            // enough that a caller whose first create died with its instance gets an answer.
            claim_timeout: env.seconds_within("ALLOCATION_CLAIM_TIMEOUT_SECONDS", 10, 2..=600)?,
            record_max_age: Duration::from_secs(record_max_hours * 3600),
            max_unused: Duration::from_secs(max_unused_hours * 3600),
            pool_target: env.bounded_or("ROOM_POOL_TARGET", 10, 0..=10_000)?,
            ready_delay,
            // Azure Storage caps a message's visibility delay at 7 days; a day is plenty
            // for a participant to come back.
            delete_grace: env.seconds_within("ROOM_DELETE_GRACE_SECONDS", 600, 0..=86_400)?,
            persistent_prefixes,
            name_prefix,
            host_pin_length,
            guest_pin_length,
            uui: UuiPolicy {
                allowed_hosts,
                template,
            },
            alias_domain: env.get("ROOM_ALIAS_DOMAIN").map(str::to_owned),
            gc_max_dequeue,
            // Inside the 10-minute timer period and host.json's functionTimeout (10 min).
            gc_time_budget: env.seconds_within("GC_TIME_BUDGET_SECONDS", 480, 10..=570)?,
            leak_min_age,
            reconcile_dry_run: env.bool_or("RECONCILE_DRY_RUN", false)?,
            bulk_create_max,
            bulk_create_per_hour,
        })
    }
}

/// HTTP Basic credentials the Pexip event sink must present, and where it may call from.
#[derive(Debug, Clone)]
pub struct EventSinkSettings {
    /// `EVENT_SINK_USERNAME`.
    pub username: String,
    /// `EVENT_SINK_PASSWORD`: the only copy, read on every request, so a password rotated in
    /// Key Vault applies without a restart.
    pub password: Secret,
    /// `EVENT_SINK_MAX_BODY_BYTES` (default 1 MiB, 1 KiB–16 MiB): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `EVENT_SINK_ALLOWED_NETWORKS` (optional CIDR list) and `EVENT_SINK_TRUSTED_PROXY_HOPS`
    /// (default 1): when set, only callers whose `X-Forwarded-For` address (see
    /// [`SourceNetworks`]) is in these networks reach the event sink.
    pub allowed_sources: Option<SourceNetworks>,
}

impl EventSinkSettings {
    /// Both credentials are required: an event sink without authentication would let anyone
    /// queue deletions.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            username: env.required("EVENT_SINK_USERNAME")?.to_owned(),
            password: env.required_secret(super::EVENT_SINK_PASSWORD)?,
            // Pexip's bulk envelopes are tens of KiB; 16 MiB is far above any honest body.
            max_body_bytes: env.bounded_or(
                "EVENT_SINK_MAX_BODY_BYTES",
                1024 * 1024,
                1024..=16 * 1024 * 1024,
            )?,
            allowed_sources: allowed_sources(env)?,
        })
    }
}

/// `EVENT_SINK_ALLOWED_NETWORKS` with `EVENT_SINK_TRUSTED_PROXY_HOPS`; `None` when unset.
fn allowed_sources(env: &Env) -> Result<Option<SourceNetworks>, ConfigError> {
    const NETWORKS: &str = "EVENT_SINK_ALLOWED_NETWORKS";
    const HOPS: &str = "EVENT_SINK_TRUSTED_PROXY_HOPS";
    let hops = env.bounded_or(HOPS, 1usize, 1..=10)?;
    if env.get(NETWORKS).is_none() {
        return Ok(None);
    }
    SourceNetworks::parse(&env.list_or(NETWORKS, &[]), hops)
        .map(Some)
        .map_err(|e| ConfigError::invalid(NETWORKS, e))
}

/// How `GET /public/room/{name}` checks the agent's Genesys Cloud token.
#[derive(Debug, Clone)]
pub struct GenesysSettings {
    /// `GENESYS_API_BASE` (default `https://api.cac1.pure.cloud`).
    pub api_base: Url,
    /// `GENESYS_ALLOWED_DIVISIONS`: division ids whose users may read rooms. Empty refuses all.
    pub allowed_divisions: Vec<String>,
    /// `GENESYS_TOKEN_CACHE_SECONDS` (default 60, 0–900): how long a checked token is trusted.
    pub cache_ttl: Duration,
    /// `GENESYS_MAX_IN_FLIGHT` (default 10, 1–100): most token checks sent to Genesys at
    /// once; further agents wait their turn (briefly) or get 503.
    pub max_in_flight: usize,
}

impl GenesysSettings {
    /// Read the Genesys settings; without allowed divisions every agent request is refused.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw = env
            .get("GENESYS_API_BASE")
            .unwrap_or("https://api.cac1.pure.cloud");
        let api_base = Url::parse(raw.trim_end_matches('/'))
            .map_err(|e| ConfigError::invalid("GENESYS_API_BASE", e))?;
        if !matches!(api_base.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "GENESYS_API_BASE",
                "must be an http(s) URL",
            ));
        }
        // Agents' tokens travel to it.
        super::https_unless_loopback("GENESYS_API_BASE", &api_base)?;
        Ok(Self {
            api_base,
            allowed_divisions: env.list_or("GENESYS_ALLOWED_DIVISIONS", &[]),
            // A cached "allowed" outlives a token Genesys revoked: keep it short.
            cache_ttl: env.seconds_within("GENESYS_TOKEN_CACHE_SECONDS", 60, 0..=900)?,
            max_in_flight: env.bounded_or(GENESYS_MAX_IN_FLIGHT, 10, 1..=100)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let s = RoomSettings::from_env(&Env::default()).unwrap();
        assert_eq!(s.ready_delay, Duration::from_secs(90));
        assert_eq!(s.delete_grace, Duration::from_secs(600));
        assert_eq!(s.persistent_prefixes, ["test_", "vkiosk_"]);
        assert_eq!(s.uui.allowed_hosts, ["id", "idtest", "iddev"]);
        assert_eq!(s.claim_timeout, Duration::from_secs(10));
        assert_eq!(s.record_max_age, Duration::from_secs(168 * 3600));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("HOST_PIN_LENGTH", "3"),
            ("GUEST_PIN_LENGTH", "21"),
            ("ROOM_NAME_PREFIX", "a/b"),
            ("TAG_URL_TEMPLATE", "https://x/{host}"),
            ("UUI_ALLOWED_HOSTS", "id,evil.com/?"),
            ("ROOM_POOL_TARGET", "-1"),
            ("GC_MAX_DEQUEUE", "0"),
            ("QUEUE_NAME_PREFIX", "Bad_Prefix"),
            ("ROOM_POOL_TARGET", "10001"),
            ("ROOM_READY_DELAY_SECONDS", "86400"),
            ("ROOM_DELETE_GRACE_SECONDS", "604800"),
            ("GC_MAX_DEQUEUE", "1000"),
            ("GC_TIME_BUDGET_SECONDS", "3600"),
            ("LEAK_MIN_AGE_SECONDS", "99999999"),
            // Below the default ready delay (90 s) plus the margin.
            (LEAK_MIN_AGE_SECONDS, "149"),
            (ROOM_MAX_UNUSED_HOURS, "0"),
            // Above the default ALLOCATION_RECORD_MAX_AGE_HOURS (168).
            (ROOM_MAX_UNUSED_HOURS, "169"),
            ("BULK_CREATE_MAX", "0"),
            ("BULK_CREATE_MAX", "1000000"),
            (BULK_CREATE_MAX_PER_HOUR, "0"),
            // Below the default BULK_CREATE_MAX (1000).
            (BULK_CREATE_MAX_PER_HOUR, "999"),
            (ROOM_AUTOMATIC_PARTICIPANTS, "7,agent"),
            ("ALLOCATION_CLAIM_TIMEOUT_SECONDS", "1"),
            ("ALLOCATION_CLAIM_TIMEOUT_SECONDS", "601"),
            ("ALLOCATION_RECORD_MAX_AGE_HOURS", "0"),
            ("ALLOCATION_RECORD_MAX_AGE_HOURS", "a week"),
        ];
        for (name, value) in cases {
            let err = RoomSettings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}: {err}");
        }
        for prefix in ["test_x", "TEST_x"] {
            let err = RoomSettings::from_env(&Env::from_pairs([("ROOM_NAME_PREFIX", prefix)]))
                .unwrap_err();
            assert!(err.to_string().starts_with("ROOM_NAME_PREFIX"), "{err}");
        }
    }

    #[test]
    fn the_leak_threshold_stays_above_the_ready_delay_and_unused_rooms_below_the_sweep() {
        let read = |pairs: &[(&'static str, &'static str)]| {
            RoomSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
        };
        let s = read(&[]).unwrap();
        assert_eq!(s.leak_min_age, Duration::from_secs(3600));
        assert_eq!(s.max_unused, Duration::from_secs(24 * 3600));
        let s = read(&[
            ("ROOM_READY_DELAY_SECONDS", "0"),
            (LEAK_MIN_AGE_SECONDS, "60"),
        ])
        .unwrap();
        assert_eq!(s.leak_min_age, Duration::from_secs(60));
        let err = read(&[
            ("ROOM_READY_DELAY_SECONDS", "600"),
            (LEAK_MIN_AGE_SECONDS, "600"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("660 s"), "{err}");
        let s = read(&[("ROOM_READY_DELAY_SECONDS", "3600")]).unwrap();
        assert_eq!(
            s.leak_min_age,
            Duration::from_secs(3660),
            "unset: the floor"
        );
        let s = read(&[
            ("ALLOCATION_RECORD_MAX_AGE_HOURS", "48"),
            (ROOM_MAX_UNUSED_HOURS, "48"),
        ])
        .unwrap();
        assert_eq!(s.max_unused, Duration::from_secs(48 * 3600));
        let err = read(&[("ALLOCATION_RECORD_MAX_AGE_HOURS", "12")]).unwrap_err();
        assert!(err.to_string().starts_with(ROOM_MAX_UNUSED_HOURS), "{err}");
    }

    #[test]
    fn automatic_participants_are_uris_or_ids() {
        let s = RoomSettings::from_env(&Env::default()).unwrap();
        assert!(s.automatic_participants.is_empty());
        let s = RoomSettings::from_env(&Env::from_pairs([(
            ROOM_AUTOMATIC_PARTICIPANTS,
            "/api/admin/configuration/v1/automatic_participant/3/, 9",
        )]))
        .unwrap();
        let uris: Vec<String> = s.automatic_participants.iter().map(|p| p.uri()).collect();
        assert_eq!(
            uris,
            [
                "/api/admin/configuration/v1/automatic_participant/3/",
                "/api/admin/configuration/v1/automatic_participant/9/"
            ]
        );
    }

    #[test]
    fn genesys_settings_are_bounded_and_need_https_off_loopback() {
        let read = |pairs: &[(&'static str, &'static str)]| {
            GenesysSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
        };
        let s = read(&[]).unwrap();
        assert_eq!(s.cache_ttl, Duration::from_secs(60));
        assert_eq!(s.max_in_flight, 10);
        assert!(read(&[("GENESYS_API_BASE", "http://127.0.0.1:9")]).is_ok());
        for (name, value) in [
            ("GENESYS_API_BASE", "http://api.cac1.pure.cloud"),
            ("GENESYS_TOKEN_CACHE_SECONDS", "86400"),
            (GENESYS_MAX_IN_FLIGHT, "0"),
            (GENESYS_MAX_IN_FLIGHT, "101"),
        ] {
            let err = read(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn the_event_sink_needs_both_credentials() {
        let err = EventSinkSettings::from_env(&Env::from_pairs([("EVENT_SINK_USERNAME", "pexip")]))
            .unwrap_err();
        assert_eq!(err.to_string(), "EVENT_SINK_PASSWORD is not set");
    }

    #[test]
    fn the_event_sink_network_allow_list_is_optional_and_validated() {
        let creds = [
            ("EVENT_SINK_USERNAME", "pexip"),
            ("EVENT_SINK_PASSWORD", "pw"),
        ];
        let read = |extra: &[(&'static str, &'static str)]| {
            EventSinkSettings::from_env(&Env::from_pairs(creds.iter().chain(extra).copied()))
        };
        assert!(read(&[]).unwrap().allowed_sources.is_none());
        let sources = read(&[
            ("EVENT_SINK_ALLOWED_NETWORKS", "10.0.0.0/8, 2001:db8::/32"),
            ("EVENT_SINK_TRUSTED_PROXY_HOPS", "2"),
        ])
        .unwrap()
        .allowed_sources
        .unwrap();
        assert_eq!(sources.networks().len(), 2);
        assert_eq!(sources.trusted_hops(), 2);
        for (extra, name) in [
            (
                [("EVENT_SINK_ALLOWED_NETWORKS", "10.0.0.0/8,nope")],
                "EVENT_SINK_ALLOWED_NETWORKS",
            ),
            (
                [("EVENT_SINK_TRUSTED_PROXY_HOPS", "0")],
                "EVENT_SINK_TRUSTED_PROXY_HOPS",
            ),
            (
                [("EVENT_SINK_TRUSTED_PROXY_HOPS", "11")],
                "EVENT_SINK_TRUSTED_PROXY_HOPS",
            ),
            (
                [("EVENT_SINK_MAX_BODY_BYTES", "1023")],
                "EVENT_SINK_MAX_BODY_BYTES",
            ),
            (
                [("EVENT_SINK_MAX_BODY_BYTES", "1099511627776")],
                "EVENT_SINK_MAX_BODY_BYTES",
            ),
        ] {
            let err = read(&extra).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
