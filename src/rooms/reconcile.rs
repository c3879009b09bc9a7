//! Self-healing: top the pool up to its target, and find rooms this service leaked.
//!
//! A leak is a room with our name prefix that is neither in the pool, nor tagged, nor live,
//! and older than `LEAK_MIN_AGE_SECONDS` — the trace of a crash between "pool message
//! deleted" and "room tagged", or of a refill that created a room but could not enqueue it.
//! Rooms without our prefix are never touched.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::stats::Counters;
use super::{RoomService, RoomsError};
use crate::pexip::{Conference, Deleted};
use crate::queue::PoolMessage;

/// How long pool messages are hidden while the reconciler lists the pool. Allocations in that
/// window fall back to creating a room, so keep it short.
const ENUMERATE_VISIBILITY: Duration = Duration::from_secs(2);
/// Upper bound on receives while listing the pool (32 messages each).
const MAX_ENUMERATE_ROUNDS: usize = 500;

/// What a pool top-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopUpReport {
    /// Approximate pool depth before (ready and not-yet-dialable rooms).
    pub depth_before: u64,
    /// The configured target.
    pub target: usize,
    /// Rooms created and enqueued.
    pub created: usize,
}

/// What the leak search did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Rooms with our prefix on Pexip.
    pub our_rooms: usize,
    /// Rooms found in the pool.
    pub pooled: usize,
    /// Leaks found.
    pub leaks: usize,
    /// Leaks deleted (0 in dry-run mode).
    pub deleted: usize,
    /// Whether leaks were only reported.
    pub dry_run: bool,
}

impl RoomService {
    /// Create rooms until the pool holds its target (counting rooms still replicating).
    pub async fn top_up_pool(&self) -> Result<TopUpReport, RoomsError> {
        let target = self.inner.settings.pool_target;
        let depth_before = self.inner.pool.approximate_count().await?;
        let missing = target.saturating_sub(usize::try_from(depth_before).unwrap_or(usize::MAX));
        let created = if missing > 0 {
            self.create_pool_rooms(missing).await
        } else {
            0
        };
        if created > 0 {
            tracing::info!(
                pool.depth = depth_before,
                pool.target = target,
                created,
                "pool topped up"
            );
        }
        Ok(TopUpReport {
            depth_before,
            target,
            created,
        })
    }

    /// Top the pool up in the background unless a top-up is already running here.
    pub(super) fn spawn_top_up(&self) {
        if self.inner.top_up_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let service = self.clone();
        self.inner.tasks.spawn(async move {
            if let Err(e) = service.top_up_pool().await {
                tracing::warn!(error = %e, "background pool top-up failed");
            }
            service.inner.top_up_running.store(false, Ordering::Release);
        });
    }

    /// Find (and unless in dry-run mode, delete) leaked rooms.
    pub async fn reconcile(&self) -> Result<ReconcileReport, RoomsError> {
        let settings = &self.inner.settings;
        let background = self.inner.pexip.background();
        let mut report = ReconcileReport {
            dry_run: settings.reconcile_dry_run,
            ..ReconcileReport::default()
        };
        let ours = background
            .list_conferences(&[("name__startswith", settings.name_prefix.as_str())])
            .await?;
        report.our_rooms = ours.len();
        let now = OffsetDateTime::now_utc();
        let candidates: Vec<&Conference> = ours
            .iter()
            .filter(|c| c.tag.is_empty() && !self.is_persistent(&c.name))
            .filter(|c| age(c, now).is_some_and(|a| a >= settings.leak_min_age))
            .collect();
        if candidates.is_empty() {
            return Ok(report);
        }
        let pooled = self.pooled_names().await?;
        report.pooled = pooled.len();
        let live: HashSet<String> = background
            .live_conferences(&[])
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        for room in candidates {
            if pooled.contains(&room.name) || live.contains(&room.name) {
                continue;
            }
            // Read it again right before acting: an allocation may have tagged it since.
            let Ok(fresh) = background.get_conference(room.id).await else {
                continue;
            };
            if !fresh.tag.is_empty() {
                continue;
            }
            report.leaks += 1;
            Counters::add(&self.inner.stats.leaks_found, 1);
            if settings.reconcile_dry_run {
                tracing::warn!(room.name = %room.name, "leaked room found (dry run: kept)");
                continue;
            }
            match background.delete_conference(room.id).await {
                Ok(Deleted::Now) => {
                    report.deleted += 1;
                    tracing::warn!(room.name = %room.name, "leaked room deleted");
                }
                Ok(Deleted::AlreadyGone) => {}
                Err(e) => {
                    tracing::warn!(room.name = %room.name, error = %e, "could not delete a leaked room")
                }
            }
        }
        Ok(report)
    }

    /// Names of the rooms in the pool, ready or not. Receiving is the only way to read a queue
    /// beyond its first 32 visible messages; the short visibility returns them at once.
    /// Messages still in their replication delay cannot be received, but their rooms are
    /// younger than any sane leak threshold.
    async fn pooled_names(&self) -> Result<HashSet<String>, RoomsError> {
        let mut names = HashSet::new();
        let mut seen_ids = HashSet::new();
        for _ in 0..MAX_ENUMERATE_ROUNDS {
            let batch = self.inner.pool.receive(32, ENUMERATE_VISIBILITY).await?;
            let fresh: Vec<_> = batch
                .iter()
                .filter(|m| seen_ids.insert(m.receipt.message_id.clone()))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for message in fresh {
                if let Ok(entry) = PoolMessage::parse(&message.text) {
                    names.insert(entry.name);
                }
            }
        }
        Ok(names)
    }
}

/// How old a room is by Pexip's `creation_time` (naive UTC ISO-8601).
fn age(room: &Conference, now: OffsetDateTime) -> Option<Duration> {
    let created = parse_pexip_time(room.creation_time.as_deref()?)?;
    Duration::try_from(now - created).ok()
}

/// Parse Pexip's naive UTC timestamps, with or without microseconds.
pub(crate) fn parse_pexip_time(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Iso8601;
    let with_zone = if s.ends_with('Z') || s.contains('+') {
        s.to_owned()
    } else {
        format!("{s}Z")
    };
    OffsetDateTime::parse(&with_zone, &Iso8601::DEFAULT).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pexip_timestamps_parse_with_and_without_fractions() {
        assert_eq!(
            parse_pexip_time("2017-05-11T22:02:05.855877").unwrap(),
            time::macros::datetime!(2017-05-11 22:02:05.855877 UTC)
        );
        assert_eq!(
            parse_pexip_time("2021-03-12T14:47:45").unwrap(),
            time::macros::datetime!(2021-03-12 14:47:45 UTC)
        );
        assert!(parse_pexip_time("yesterday").is_none());
    }
}
