//! Validated domain types: UUI data and the tag URL it yields, room names, PINs, event-sink
//! bodies, and source-network allow-lists.
//!
//! Parse, don't validate: a handler turns raw input into one of these types at the edge and
//! never holds an unvalidated string afterwards. Nothing here does I/O.

mod event;
mod network;
mod pin;
mod room_name;
mod uui;

pub use event::{EventBodyError, SinkEvent, parse_event_sink_body};
pub use network::{
    NetworkListError, SourceError, SourceNetworks, forwarded_client, parse_forwarded_entry,
};
pub use pin::{Pin, PinError, PinPair};
pub use room_name::{RoomName, RoomNameError, RoomNamePrefix};
pub use uui::{TagTemplate, UuiError, UuiPolicy, VideoCall};
