//! The Pexip simulator as the tests' Pexip: started on a loopback port of its own, and a
//! client configured for it the way production configures one (from settings).

use std::time::Duration;

use pexip_sdk::config::{Env, PexipSettings};
use pexip_sdk::pexip::{NewConference, PexipClient};
use pexip_sim::{SimConfig, SimHandle};

/// A simulator whose new rooms are dialable at once (the replication delay has tests of its
/// own; elsewhere it only slows tests down).
pub async fn start() -> SimHandle {
    start_with(SimConfig {
        replication_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
}

/// A simulator with `config`.
pub async fn start_with(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    pexip_sim::start(config, listener)
        .await
        .expect("the simulator starts")
}

/// Settings of a client of `sim` (OAuth2 with its key), read by config from
/// [`SimHandle::client_env`] plus `extra` pairs (`PEXIP_MAX_IN_FLIGHT`, say); the rest are
/// the defaults.
pub fn pexip_settings(sim: &SimHandle, extra: &[(&str, &str)]) -> PexipSettings {
    let mut env = Env::from_pairs(sim.client_env());
    for (name, value) in extra {
        env.set(name, *value);
    }
    PexipSettings::from_env(&env).expect("settings for the simulator")
}

/// A Pexip client of `sim` with the default settings and `extra` ones.
pub fn pexip_client(sim: &SimHandle, extra: &[(&str, &str)]) -> PexipClient {
    PexipClient::new(&pexip_settings(sim, extra)).expect("a client for the simulator")
}

/// A plain conference named `name` (its own alias, PINs 123456 and 4321, guests allowed), as
/// an operator or another instance would make it on Pexip.
pub fn conference(name: &str) -> NewConference {
    NewConference {
        name: name.to_owned(),
        service_type: "conference".into(),
        pin: "123456".into(),
        guest_pin: "4321".into(),
        allow_guests: true,
        aliases: vec![name.to_owned()],
        ..NewConference::default()
    }
}

/// Every secret `sim` handed out, by kind, for tests proving none reaches a log or the
/// telemetry: each room's host and guest PIN, each access token it issued (panics if none:
/// the client was expected to use OAuth2), and each line of its client's private key.
pub fn secrets(sim: &SimHandle) -> Vec<(String, String)> {
    let mut secrets = Vec::new();
    for room in sim.rooms() {
        secrets.push((format!("host PIN of {}", room.name), room.pin.clone()));
        secrets.push((
            format!("guest PIN of {}", room.name),
            room.guest_pin.clone(),
        ));
    }
    let tokens = sim.issued_tokens();
    assert!(!tokens.is_empty(), "the client used OAuth2");
    secrets.extend(tokens.into_iter().map(|t| ("access token".to_owned(), t)));
    secrets.extend(
        sim.private_key_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(|l| ("private key".to_owned(), l.to_owned())),
    );
    secrets
}
