//! The simulator's own clock, which tests can move forward.
//!
//! It runs on `tokio::time::Instant`, so a test that pauses tokio time moves it too, plus an
//! offset that `advance` adds. Issued-token expiry, replication delay and every timestamp the
//! simulator shows (`creation_time`, `start_time`, event `time`) read it. Client assertions
//! are the exception: a client signs them with its wall clock, so `oauth.rs` checks them
//! against [`wall_unix_now`], not against this clock.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;
use tokio::time::Instant;

/// A monotonic clock that starts at the wall time of `new` and can be advanced.
#[derive(Debug)]
pub(crate) struct SimClock {
    origin: Instant,
    wall_origin: f64,
    offset: Mutex<Duration>,
}

impl SimClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            wall_origin: wall_unix_now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Time since the simulator started, including every `advance`.
    pub(crate) fn elapsed(&self) -> Duration {
        self.origin.elapsed() + *self.offset.lock().expect("clock lock")
    }

    /// Move the clock forward (never backward).
    pub(crate) fn advance(&self, by: Duration) {
        *self.offset.lock().expect("clock lock") += by;
    }

    /// The simulated current time as Unix seconds (what events carry in `time`).
    pub(crate) fn unix_now(&self) -> f64 {
        self.wall_origin + self.elapsed().as_secs_f64()
    }

    /// The simulated current time as Pexip writes datetimes: naive UTC with microseconds.
    pub(crate) fn naive_now(&self) -> String {
        naive_utc(self.unix_now())
    }
}

/// Real wall-clock Unix seconds.
pub(crate) fn wall_unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Format Unix seconds the way Pexip does: `2017-05-11T22:02:05.855877` (naive, UTC).
pub(crate) fn naive_utc(unix: f64) -> String {
    // Round to whole microseconds first: f64 seconds cannot hold every nanosecond.
    let nanos = (unix * 1e6).round() as i128 * 1000;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_utc_has_microseconds_and_no_offset() {
        assert_eq!(
            naive_utc(1_494_540_125.855_877),
            "2017-05-11T22:02:05.855877"
        );
    }

    #[test]
    fn advance_moves_elapsed_forward() {
        let clock = SimClock::new();
        let before = clock.elapsed();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.elapsed() >= before + Duration::from_secs(3600));
    }
}
