//! The tests' Genesys Cloud: the service's own stand-in (`pexip_sdk::genesys::stand_in`, the
//! one `dev` runs) with the tokens the tests use.

use pexip_sdk::genesys::stand_in::{RunningStandIn, StandIn};

/// An agent of [`ALLOWED_DIVISION`].
pub const AGENT_TOKEN: &str = "agent-token-allowed";
/// An agent of a division that may not read rooms.
pub const OTHER_DIVISION_TOKEN: &str = "agent-token-other-division";
/// The division [`crate::env::AppEnv::genesys`] allows.
pub const ALLOWED_DIVISION: &str = "div-sbc";

/// Serve the stand-in with [`AGENT_TOKEN`] and [`OTHER_DIVISION_TOKEN`]; any other token
/// gets 401.
pub async fn start() -> RunningStandIn {
    StandIn::new()
        .agent(AGENT_TOKEN, "u1", ALLOWED_DIVISION)
        .agent(OTHER_DIVISION_TOKEN, "u2", "div-other")
        .start()
        .await
        .expect("the Genesys stand-in serves")
}
