//! Every setting of the service, read from the environment once at start and validated into
//! types. Errors name the variable so an operator knows what to fix. No other module reads
//! the process environment: tests build an [`Env`] from pairs and never touch `std::env`.

mod env;

pub use env::{ConfigError, Env};
mod pexip;
mod telemetry;

pub use pexip::{PexipAuth, PexipSettings, parse_base_url};
pub use telemetry::{LogFormat, TelemetrySettings};
mod rooms;

pub use rooms::{EventSinkSettings, GenesysSettings, RoomSettings};
