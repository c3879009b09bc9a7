//! Metrics (`metrics_timer`): a snapshot of the pool, the queues, Pexip's live state and the
//! counters since the previous run, emitted as one structured log line.

use serde::Serialize;

use super::RoomService;
use super::stats::ServiceStats;
use crate::pexip::ClientStats;

/// Counters at the previous run, to report deltas.
#[derive(Debug, Clone)]
pub(super) struct Baseline {
    service: ServiceStats,
    pexip: ClientStats,
}

/// One metrics run. A gauge is `None` when its source could not be read (the rest still
/// reports; a metrics run never fails because one source is down).
#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    /// Rooms in the pool (ready and still replicating).
    pub pool_depth: Option<u64>,
    /// Deletion messages waiting (including those in their grace period).
    pub deletion_backlog: Option<u64>,
    /// Messages in both poison queues.
    pub poison_count: Option<u64>,
    /// Live conferences on Pexip (status API `total_count`).
    pub live_conferences: Option<u64>,
    /// Participants in live conferences.
    pub live_participants: Option<u64>,
    /// Rooms with our name prefix on Pexip.
    pub managed_rooms: Option<u64>,
    /// Service counters since the previous run (since start on the first run).
    pub since_last: ServiceStats,
    /// Pexip client counters since the previous run: errors by class, retries, token renewals.
    pub pexip_since_last: ClientStats,
}

impl RoomService {
    /// Gather the metrics and log them as one line with stable field names.
    pub async fn collect_metrics(&self) -> MetricsReport {
        let i = &self.inner;
        let background = i.pexip.background();
        // Listed, not counted with `limit=1`: a count cannot be checked against the filter,
        // and a node that ignores the filter would count every room of the node.
        let (pool, deletion, pool_poison, deletion_poison, live, managed) = tokio::join!(
            i.pool.approximate_count(),
            i.deletion.approximate_count(),
            i.pool_poison.approximate_count(),
            i.deletion_poison.approximate_count(),
            background.live_counts(),
            self.our_rooms(&background),
        );
        let live = live.ok();
        let now = Baseline {
            service: i.stats.snapshot(),
            pexip: i.pexip.stats(),
        };
        let previous = {
            let mut last = i.last_metrics.lock().unwrap_or_else(|e| e.into_inner());
            last.replace(now.clone())
        };
        let (since_last, pexip_since_last) = match previous {
            Some(p) => (
                now.service.since(&p.service),
                pexip_delta(&now.pexip, &p.pexip),
            ),
            None => (now.service, now.pexip),
        };
        let report = MetricsReport {
            pool_depth: pool.ok(),
            deletion_backlog: deletion.ok(),
            poison_count: pool_poison
                .ok()
                .zip(deletion_poison.ok())
                .map(|(a, b)| a + b),
            live_conferences: live.as_ref().map(|l| l.conferences),
            live_participants: live.as_ref().map(|l| l.participants),
            managed_rooms: managed.ok().map(|rooms| rooms.len() as u64),
            since_last,
            pexip_since_last,
        };
        let json = serde_json::to_string(&report).unwrap_or_default();
        tracing::info!(
            metrics.pool_depth = report.pool_depth,
            metrics.deletion_backlog = report.deletion_backlog,
            metrics.poison_count = report.poison_count,
            metrics.live_conferences = report.live_conferences,
            metrics.live_participants = report.live_participants,
            metrics.managed_rooms = report.managed_rooms,
            metrics.allocations = report.since_last.allocations,
            metrics.pool_empty_fallbacks = report.since_last.pool_empty_fallbacks,
            metrics = %json,
            "metrics"
        );
        report
    }
}

/// Pexip client counters accumulated since `before`.
fn pexip_delta(now: &ClientStats, before: &ClientStats) -> ClientStats {
    let e = &now.errors;
    let b = &before.errors;
    ClientStats {
        token_renewals: now.token_renewals - before.token_renewals,
        retries: now.retries - before.retries,
        errors: crate::pexip::ErrorCounts {
            not_found: e.not_found - b.not_found,
            validation: e.validation - b.validation,
            unauthorized: e.unauthorized - b.unauthorized,
            rate_limited: e.rate_limited - b.rate_limited,
            unavailable: e.unavailable - b.unavailable,
            other: e.other - b.other,
        },
    }
}
