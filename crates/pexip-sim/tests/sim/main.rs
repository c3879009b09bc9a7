//! The Pexip simulator's own tests, over real HTTP (one test binary, one module per area).

mod automatic_participants;
mod config_api;
mod control;
mod events;
mod faults;
mod helpers;
mod journal;
mod oauth;
mod status_api;
