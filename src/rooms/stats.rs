//! Cumulative counters of the room flows, read by the metrics timer.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters since process start (atomics: updated from many tasks, read rarely).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub allocations: AtomicU64,
    pub allocations_existing: AtomicU64,
    pub pool_empty_fallbacks: AtomicU64,
    pub rooms_replenished: AtomicU64,
    pub replenish_failures: AtomicU64,
    pub rooms_trimmed: AtomicU64,
    pub rooms_quarantined: AtomicU64,
    pub rooms_deleted: AtomicU64,
    pub deletions_queued: AtomicU64,
    pub leaks_found: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ServiceStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServiceStats {
            allocations: get(&self.allocations),
            allocations_existing: get(&self.allocations_existing),
            pool_empty_fallbacks: get(&self.pool_empty_fallbacks),
            rooms_replenished: get(&self.rooms_replenished),
            replenish_failures: get(&self.replenish_failures),
            rooms_trimmed: get(&self.rooms_trimmed),
            rooms_quarantined: get(&self.rooms_quarantined),
            rooms_deleted: get(&self.rooms_deleted),
            deletions_queued: get(&self.deletions_queued),
            leaks_found: get(&self.leaks_found),
        }
    }
}

/// A snapshot of the service's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    /// Rooms handed to callers (new allocations, not idempotent repeats).
    pub allocations: u64,
    /// Creates answered with the room the video call already had.
    pub allocations_existing: u64,
    /// Allocations that found the pool empty and created a room synchronously.
    pub pool_empty_fallbacks: u64,
    /// Rooms created and enqueued into the pool.
    pub rooms_replenished: u64,
    /// Pool refills that failed.
    pub replenish_failures: u64,
    /// Surplus pool rooms removed (and deleted) to bring the pool down to its target.
    pub rooms_trimmed: u64,
    /// Rooms set aside for deletion because a tagging PATCH may have reached them without
    /// their being handed out (they never go back to the pool).
    pub rooms_quarantined: u64,
    /// Rooms deleted on Pexip by this process.
    pub rooms_deleted: u64,
    /// `conference_ended` events turned into deletion messages.
    pub deletions_queued: u64,
    /// Leaked rooms found by the reconciler.
    pub leaks_found: u64,
}

impl ServiceStats {
    /// Counts accumulated since `earlier`.
    pub fn since(&self, earlier: &ServiceStats) -> ServiceStats {
        ServiceStats {
            allocations: self.allocations - earlier.allocations,
            allocations_existing: self.allocations_existing - earlier.allocations_existing,
            pool_empty_fallbacks: self.pool_empty_fallbacks - earlier.pool_empty_fallbacks,
            rooms_replenished: self.rooms_replenished - earlier.rooms_replenished,
            replenish_failures: self.replenish_failures - earlier.replenish_failures,
            rooms_trimmed: self.rooms_trimmed - earlier.rooms_trimmed,
            rooms_quarantined: self.rooms_quarantined - earlier.rooms_quarantined,
            rooms_deleted: self.rooms_deleted - earlier.rooms_deleted,
            deletions_queued: self.deletions_queued - earlier.deletions_queued,
            leaks_found: self.leaks_found - earlier.leaks_found,
        }
    }
}
