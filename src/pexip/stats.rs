//! Cumulative counters of one client (shared by its clones), read by metrics and tests.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ErrorClass;

/// A snapshot of [`super::PexipClient`]'s counters since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    /// Access tokens obtained from `/oauth/token/` (the first one included).
    pub token_renewals: u64,
    /// Requests sent again after a transient failure (not counting the 401 renewal retry).
    pub retries: u64,
    /// Failed attempts by class, as Pexip (or the network) reported them, including those
    /// that were then retried or turned into a result (a 404 on delete).
    pub errors: ErrorCounts,
}

/// Failed attempts per [`ErrorClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCounts {
    /// 404.
    pub not_found: u64,
    /// 400.
    pub validation: u64,
    /// 401/403 and refused token requests.
    pub unauthorized: u64,
    /// 429.
    pub rate_limited: u64,
    /// 502/503/504, connection failures, timeouts.
    pub unavailable: u64,
    /// Everything else.
    pub other: u64,
}

impl ErrorCounts {
    /// All failed attempts.
    pub fn total(&self) -> u64 {
        self.not_found
            + self.validation
            + self.unauthorized
            + self.rate_limited
            + self.unavailable
            + self.other
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    token_renewals: AtomicU64,
    retries: AtomicU64,
    errors: [AtomicU64; 6],
}

impl Counters {
    pub fn token_renewed(&self) {
        self.token_renewals.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, class: ErrorClass) {
        self.errors[Self::slot(class)].fetch_add(1, Ordering::Relaxed);
    }

    fn slot(class: ErrorClass) -> usize {
        match class {
            ErrorClass::NotFound => 0,
            ErrorClass::Validation => 1,
            ErrorClass::Unauthorized => 2,
            ErrorClass::RateLimited => 3,
            ErrorClass::Unavailable => 4,
            ErrorClass::Other => 5,
        }
    }

    pub fn snapshot(&self) -> ClientStats {
        let error = |class| self.errors[Self::slot(class)].load(Ordering::Relaxed);
        ClientStats {
            token_renewals: self.token_renewals.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: ErrorCounts {
                not_found: error(ErrorClass::NotFound),
                validation: error(ErrorClass::Validation),
                unauthorized: error(ErrorClass::Unauthorized),
                rate_limited: error(ErrorClass::RateLimited),
                unavailable: error(ErrorClass::Unavailable),
                other: error(ErrorClass::Other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_lands_in_its_own_counter() {
        let counters = Counters::default();
        let classes = [
            ErrorClass::NotFound,
            ErrorClass::Validation,
            ErrorClass::Unauthorized,
            ErrorClass::RateLimited,
            ErrorClass::Unavailable,
            ErrorClass::Other,
        ];
        for (i, class) in classes.iter().enumerate() {
            for _ in 0..=i {
                counters.failed(*class);
            }
        }
        counters.token_renewed();
        counters.retried();
        counters.retried();
        let stats = counters.snapshot();
        assert_eq!(
            stats.errors,
            ErrorCounts {
                not_found: 1,
                validation: 2,
                unauthorized: 3,
                rate_limited: 4,
                unavailable: 5,
                other: 6
            }
        );
        assert_eq!(stats.errors.total(), 21);
        assert_eq!(stats.token_renewals, 1);
        assert_eq!(stats.retries, 2);
    }
}
