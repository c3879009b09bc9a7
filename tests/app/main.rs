//! The Function App over real HTTP: the service wired to the Pexip simulator and to in-memory
//! queues or Azurite, exactly as `serve` and `dev` wire it (one test binary, one module per area).

mod agent_leg;
mod create;
mod entra;
mod event_sink;
mod gc;
mod idp;
mod layout;
mod limits;
mod managed;
mod openapi;
mod public;
mod rooms_api;
mod support;
mod wire;
