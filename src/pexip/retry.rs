//! How long to wait before retrying a transient failure: exponential backoff with jitter,
//! or the server's `Retry-After` when it gave one.

use std::time::Duration;

use rand::Rng;

/// First backoff step.
pub const BASE_DELAY: Duration = Duration::from_millis(200);
/// Longest backoff step.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// A `Retry-After` longer than this is not waited out inside a request: the error goes back
/// to the caller (who may be a person waiting for a room) with the advised delay.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The delay before retry number `retry` (0-based): "equal jitter", i.e. a uniformly random
/// point in the upper half of `min(MAX_DELAY, BASE_DELAY * 2^retry)`, so concurrent clients
/// spread out but each still backs off at least half the step.
pub fn backoff(retry: u32) -> Duration {
    let step = BASE_DELAY
        .saturating_mul(2u32.saturating_pow(retry.min(16)))
        .min(MAX_DELAY);
    let half = step / 2;
    let jitter_ms = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter_ms)
}

/// The delay before retry number `retry` after a failure that may carry a `Retry-After`:
/// never shorter than the server asked for, nor than the backoff step.
pub fn delay_for(retry: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = backoff(retry);
    match retry_after {
        Some(advised) => advised.max(backoff),
        None => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_its_jitter_band_and_stops_at_the_cap() {
        for retry in 0..20 {
            let step = (BASE_DELAY * 2u32.pow(retry.min(16))).min(MAX_DELAY);
            for _ in 0..50 {
                let delay = backoff(retry);
                assert!(
                    delay >= step / 2 && delay <= step,
                    "retry {retry}: {delay:?}"
                );
            }
        }
        assert!(backoff(30) <= MAX_DELAY);
    }

    #[test]
    fn retry_after_is_a_floor_not_a_suggestion() {
        assert!(delay_for(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        assert!(delay_for(0, Some(Duration::from_secs(30))) <= Duration::from_secs(30));
        // A zero Retry-After still backs off a little.
        assert!(delay_for(2, Some(Duration::ZERO)) >= Duration::from_millis(400));
    }
}
