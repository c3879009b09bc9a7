//! Self-healing: bring the pool to its target (top up; on the GC timer also trim a surplus
//! left by several instances topping up at once), and find rooms this service leaked.
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
use crate::locks::SweepReport;
use crate::pexip::{Conference, Deleted, PexipError};
use crate::queue::{MAX_RECEIVE, PoolMessage, ReceivedMessage};

/// How long pool messages are hidden while the reconciler lists the pool. Allocations in that
/// window fall back to creating a room, so keep it short.
const ENUMERATE_VISIBILITY: Duration = Duration::from_secs(2);
/// Upper bound on receives while listing the pool (32 messages each).
const MAX_ENUMERATE_ROUNDS: usize = 500;
/// How long a surplus pool message stays hidden while its room is checked and deleted.
const TRIM_VISIBILITY: Duration = Duration::from_secs(30);
/// Upper bound on receives while trimming (32 messages each).
const MAX_TRIM_ROUNDS: usize = 100;
/// Surplus rooms checked and deleted at once; the Pexip client's cap bounds the real load.
const TRIM_CONCURRENCY: usize = 5;

/// What a pool top-up (or rebalance) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopUpReport {
    /// Approximate pool depth before (ready and not-yet-dialable rooms).
    pub depth_before: u64,
    /// Pool rooms this process was still creating (counted as in the pool).
    pub in_flight: usize,
    /// The configured target.
    pub target: usize,
    /// Rooms created and enqueued.
    pub created: usize,
    /// Surplus rooms taken out of the pool and deleted (only [`RoomService::rebalance_pool`]).
    pub trimmed: usize,
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
    /// Create rooms until the pool holds its target, counting rooms still replicating and
    /// rooms this process is still creating. Never removes any: see
    /// [`Self::rebalance_pool`].
    pub async fn top_up_pool(&self) -> Result<TopUpReport, RoomsError> {
        self.level_pool(false).await
    }

    /// Bring the pool to its target: top it up, or take the surplus out and delete it.
    ///
    /// Instances top the pool up independently (after a pool-empty allocation, on the
    /// metrics timer), and none sees the rooms the others are still creating, so with
    /// several instances the pool can overshoot. Only one timer (`gc_timer`) trims: the host
    /// runs a timer function on one instance at a time, so two trims never race and cut
    /// the pool twice.
    pub async fn rebalance_pool(&self) -> Result<TopUpReport, RoomsError> {
        self.level_pool(true).await
    }

    async fn level_pool(&self, trim: bool) -> Result<TopUpReport, RoomsError> {
        let target = self.inner.settings.pool_target;
        let depth_before = self.inner.pool.approximate_count().await?;
        let in_flight = self.inner.pool_creating.load(Ordering::Acquire);
        let level = usize::try_from(depth_before)
            .unwrap_or(usize::MAX)
            .saturating_add(in_flight);
        let missing = target.saturating_sub(level);
        let created = if missing > 0 {
            self.create_pool_rooms(missing).await
        } else {
            0
        };
        let surplus = level.saturating_sub(target);
        let trimmed = if trim && surplus > 0 {
            self.trim_pool(surplus).await?
        } else {
            0
        };
        if created > 0 || trimmed > 0 {
            tracing::info!(
                pool.depth = depth_before,
                pool.in_flight = in_flight,
                pool.target = target,
                created,
                trimmed,
                "pool levelled"
            );
        }
        Ok(TopUpReport {
            depth_before,
            in_flight,
            target,
            created,
            trimmed,
        })
    }

    /// Take up to `surplus` ready rooms out of the pool and delete them. Each is claimed
    /// exactly as an allocation claims one (delete the message first), so a room being
    /// trimmed can never also be handed out; one that turns out tagged or live is left alone.
    async fn trim_pool(&self, surplus: usize) -> Result<usize, RoomsError> {
        use futures::StreamExt as _;
        let mut trimmed = 0;
        for _ in 0..MAX_TRIM_ROUNDS {
            if trimmed >= surplus {
                break;
            }
            let want = u8::try_from((surplus - trimmed).min(usize::from(MAX_RECEIVE)))
                .unwrap_or(MAX_RECEIVE);
            let batch = self.inner.pool.receive(want, TRIM_VISIBILITY).await?;
            if batch.is_empty() {
                break;
            }
            trimmed += futures::stream::iter(batch)
                .map(|message| self.trim_one(message))
                .buffer_unordered(TRIM_CONCURRENCY)
                .filter(|done| std::future::ready(*done))
                .count()
                .await;
        }
        Counters::add(&self.inner.stats.rooms_trimmed, trimmed as u64);
        Ok(trimmed)
    }

    /// Remove one surplus pool room; true when it left the pool for good.
    async fn trim_one(&self, message: ReceivedMessage) -> bool {
        let pool = &self.inner.pool;
        let Ok(entry) = PoolMessage::parse(&message.text) else {
            // Not ours to judge here: the allocation path moves it to the poison queue.
            let _ = pool.set_visibility(&message.receipt, Duration::ZERO).await;
            return false;
        };
        if pool.delete(&message.receipt).await.is_err() {
            // Stale receipt: someone else holds the message now.
            return false;
        }
        let background = self.inner.pexip.background();
        let found = match entry.id {
            Some(id) => match background.get_conference(id).await {
                Ok(room) => Ok(Some(room)),
                Err(PexipError::NotFound) => Ok(None),
                Err(e) => Err(e),
            },
            None => background.find_conference(&entry.name).await,
        };
        let room = match found {
            Ok(room) => room.filter(|c| c.name == entry.name),
            Err(e) => {
                tracing::warn!(room.name = %entry.name, error = %e, "could not check a surplus pool room; returned to the pool");
                self.requeue(&entry).await;
                return false;
            }
        };
        let Some(room) = room else {
            // Its room is gone: the message was surplus anyway.
            return true;
        };
        if !room.tag.is_empty() {
            tracing::warn!(room.name = %room.name, "pooled room already tagged; left alone");
            return false;
        }
        match background.is_live(&room.name).await {
            Ok(false) => {}
            Ok(true) | Err(_) => {
                self.requeue(&entry).await;
                return false;
            }
        }
        match background.delete_conference(room.id).await {
            Ok(_) => {
                tracing::info!(room.name = %room.name, "surplus pool room deleted");
                true
            }
            Err(e) => {
                tracing::warn!(room.name = %room.name, error = %e, "could not delete a surplus pool room; returned to the pool");
                self.requeue(&entry).await;
                false
            }
        }
    }

    /// After a pool-empty allocation: top the pool up in the background, unless this
    /// process is already creating pool rooms (a top-up, or the replacements of earlier
    /// allocations). An empty pool with refills in flight only means they have not landed
    /// yet; topping up then counts the deficit twice, and with several instances each doing
    /// so the pool ends far above its target. The top-up is for a pool that is not being
    /// refilled at all (a cold start, refills lost to a crash).
    pub(super) fn spawn_top_up(&self) {
        if self.inner.pool_creating.load(Ordering::Acquire) > 0 {
            return;
        }
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

    /// Remove allocation records older than `ALLOCATION_RECORD_MAX_AGE_HOURS`. Records go
    /// with their rooms; this catches the ones whose room went another way (deleted on Pexip
    /// directly, or a removal that failed).
    pub async fn sweep_allocation_records(&self) -> Result<SweepReport, RoomsError> {
        let report = self
            .inner
            .locks
            .sweep(self.inner.settings.record_max_age)
            .await?;
        if report.removed > 0 {
            tracing::info!(
                records = report.records,
                removed = report.removed,
                "old allocation records removed"
            );
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
