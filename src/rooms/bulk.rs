//! Bulk creates (`POST /room/bulk?count=N`): pool rooms made in the background, one job at a
//! time per process, and at most `BULK_CREATE_MAX_PER_HOUR` rooms asked for in any hour.
//!
//! Each job is up to `BULK_CREATE_MAX` rooms on Pexip, made at background priority. Without a
//! limit, a caller who repeats the request (a retry loop, a script gone wrong, a leaked
//! function key) starts job after job: they pile up behind each other in the Pexip cap and
//! fill the Management Node with rooms, each a VMR the reconciler must later trim. A second
//! request while a job runs gets 409; a request that would take the last hour's total past
//! the cap gets 429 with `Retry-After`. The hour counts rooms *asked for* when the job
//! starts, so failed creates still count: the limit is on what callers can make us try.
//!
//! Per process, like every limit of this service that needs no shared storage: with N
//! instances the bound is N times the setting.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{RoomService, RoomsError};

/// The window of `BULK_CREATE_MAX_PER_HOUR`.
const WINDOW: Duration = Duration::from_secs(3600);

/// The bookkeeping of bulk jobs: whether one runs, and what the last hour asked for.
#[derive(Debug, Default)]
pub(super) struct BulkJobs {
    running: AtomicBool,
    /// (when a job started, rooms it asked for), oldest first, within [`WINDOW`].
    recent: Mutex<VecDeque<(Instant, usize)>>,
}

/// Ends the bulk job when dropped (also when its task is cancelled at shutdown).
struct JobDone(RoomService);

impl Drop for JobDone {
    fn drop(&mut self) {
        self.0.inner.bulk.running.store(false, Ordering::Release);
    }
}

impl BulkJobs {
    /// Start a job of `count` rooms if none runs and the last hour leaves room for it under
    /// `per_hour`; the job runs until [`Self::finish`].
    fn start(&self, count: usize, per_hour: usize) -> Result<(), RoomsError> {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(RoomsError::Busy(
                "a bulk create is already running; try again when it has finished".into(),
            ));
        }
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent.front().is_some_and(|(at, _)| now - *at >= WINDOW) {
            recent.pop_front();
        }
        let used: usize = recent.iter().map(|(_, n)| n).sum();
        if used + count > per_hour {
            self.finish();
            return Err(RoomsError::QuotaExceeded {
                detail: format!(
                    "bulk creates asked for {used} rooms in the last hour; {count} more would pass \
                     BULK_CREATE_MAX_PER_HOUR ({per_hour})"
                ),
                retry_after: retry_after(&recent, used + count - per_hour, now),
            });
        }
        recent.push_back((now, count));
        Ok(())
    }

    /// The running job has ended.
    fn finish(&self) {
        self.running.store(false, Ordering::Release);
    }
}

/// How long until jobs in `recent` worth at least `excess` rooms leave the window.
fn retry_after(recent: &VecDeque<(Instant, usize)>, excess: usize, now: Instant) -> Duration {
    let mut freed = 0;
    for (at, n) in recent {
        freed += n;
        if freed >= excess {
            return (*at + WINDOW).saturating_duration_since(now);
        }
    }
    // `count` alone is over the cap: configuration forbids that (the cap is at least
    // BULK_CREATE_MAX), so this is only reached if it changes.
    WINDOW
}

impl RoomService {
    /// Start creating `count` pool rooms in the background: 400 outside 1..=`BULK_CREATE_MAX`,
    /// 409 while another bulk create runs, 429 past `BULK_CREATE_MAX_PER_HOUR`.
    pub fn bulk_create(&self, count: usize) -> Result<(), RoomsError> {
        let settings = &self.inner.settings;
        let max = settings.bulk_create_max;
        if count == 0 || count > max {
            return Err(RoomsError::Invalid(format!(
                "count must be between 1 and {max}"
            )));
        }
        self.inner
            .bulk
            .start(count, settings.bulk_create_per_hour)?;
        let done = JobDone(self.clone());
        tracing::info!(count, "bulk create started");
        self.inner.tasks.spawn(async move {
            let created = done.0.create_pool_rooms(count).await;
            tracing::info!(count, created, "bulk create finished");
            drop(done);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_job_at_a_time() {
        let jobs = BulkJobs::default();
        jobs.start(5, 100).unwrap();
        assert!(matches!(jobs.start(1, 100), Err(RoomsError::Busy(_))));
        jobs.finish();
        assert!(jobs.start(1, 100).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_hourly_cap_counts_rooms_asked_for_in_the_last_hour() {
        let jobs = BulkJobs::default();
        let run = |count| {
            let started = jobs.start(count, 10);
            jobs.finish();
            started
        };
        run(6).unwrap();
        tokio::time::advance(Duration::from_secs(600)).await;
        run(3).unwrap();
        let Err(RoomsError::QuotaExceeded { retry_after, .. }) = run(2) else {
            panic!("expected the hourly cap");
        };
        // The first job's 6 rooms leave the window 50 minutes from now.
        assert_eq!(retry_after, Duration::from_secs(3000));
        // A refusal leaves no job running and asks for nothing.
        jobs.start(1, 10).unwrap();
        assert!(matches!(jobs.start(1, 100), Err(RoomsError::Busy(_))));
        jobs.finish();
        tokio::time::advance(retry_after).await;
        run(6).unwrap();
    }
}
