//! The deep health check (`GET /public/health?deep=true`): can we reach Pexip and the queues?
//!
//! The route is public, so its cost must not grow with its callers. Each check costs two
//! Management API requests and a queue request; answering every call with a fresh check let a
//! flood of anonymous health checks fill the Pexip concurrency cap at caller priority, starving
//! room creates and the GC. So:
//! - a result is reused for [`CACHE_FOR`] (monitoring polls every minute or so; 15 s old is
//!   fresh enough to page someone);
//! - one check runs at a time (single flight): callers who arrive while it runs wait for it
//!   instead of starting their own;
//! - it runs in a task of its own, so a caller who hangs up does not cancel it for the others;
//! - its Pexip requests are background work ([`crate::pexip::PexipClient::background`]): they
//!   yield to callers waiting for a room;
//! - it is bounded by [`CHECK_TIMEOUT`]: a Pexip cap full of caller work for that long is
//!   itself a failed check;
//! - it says only ok or failed per dependency: the errors name internal URLs and upstream
//!   messages, which an anonymous caller has no business reading (they go to the log).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::RoomService;

/// How long a result is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(15);
/// The longest one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a deep check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthReport {
    /// The Management API answered the live-status counts.
    pub pexip: bool,
    /// The pool queue answered its message count.
    pub queues: bool,
}

impl HealthReport {
    /// Every dependency is reachable.
    pub fn healthy(&self) -> bool {
        self.pexip && self.queues
    }
}

type Check = Arc<dyn Fn() -> BoxFuture<'static, HealthReport> + Send + Sync>;
type Running = Shared<BoxFuture<'static, HealthReport>>;

/// The cached, single-flight deep check. Cheap to clone; one per process.
#[derive(Clone)]
pub struct DeepHealth {
    inner: Arc<Inner>,
}

struct Inner {
    check: Check,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last result and when it was taken.
    last: Option<(Instant, HealthReport)>,
    /// The check in progress, which late callers join.
    running: Option<Running>,
}

impl DeepHealth {
    /// Deep checks of `rooms`' Pexip client (at background priority) and pool queue.
    pub fn new(rooms: RoomService) -> Self {
        Self::with_check(Arc::new(move || {
            let rooms = rooms.clone();
            async move { check(&rooms).await }.boxed()
        }))
    }

    fn with_check(check: Check) -> Self {
        Self {
            inner: Arc::new(Inner {
                check,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The last result if it is fresh, else the result of the check in progress, else of a
    /// new one.
    pub async fn report(&self) -> HealthReport {
        let running = {
            let mut state = self.inner.lock();
            if let Some((at, report)) = state.last
                && at.elapsed() < CACHE_FOR
            {
                return report;
            }
            match &state.running {
                Some(running) => running.clone(),
                None => {
                    let running = self.start();
                    state.running = Some(running.clone());
                    running
                }
            }
        };
        running.await
    }

    /// Spawn a check that records its result whoever is still waiting for it.
    fn start(&self) -> Running {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let report = tokio::time::timeout(CHECK_TIMEOUT, (inner.check)())
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(
                        timeout_s = CHECK_TIMEOUT.as_secs(),
                        "deep health check timed out"
                    );
                    HealthReport {
                        pexip: false,
                        queues: false,
                    }
                });
            let mut state = inner.lock();
            state.last = Some((Instant::now(), report));
            state.running = None;
            report
        });
        async move {
            // The task only ends early if the runtime shuts down: nothing is healthy then.
            task.await.unwrap_or(HealthReport {
                pexip: false,
                queues: false,
            })
        }
        .boxed()
        .shared()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few assignments: a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One check: both dependencies at once; failures are logged here, with their cause, and
/// reduced to `false` for the caller.
async fn check(rooms: &RoomService) -> HealthReport {
    let background = rooms.pexip().background();
    let (pexip, queue) = tokio::join!(
        background.live_counts(),
        rooms.pool_queue().approximate_count()
    );
    if let Err(e) = &pexip {
        tracing::warn!(error = %e, "deep health: Pexip check failed");
    }
    if let Err(e) = &queue {
        tracing::warn!(error = %e, "deep health: queue check failed");
    }
    HealthReport {
        pexip: pexip.is_ok(),
        queues: queue.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A health whose check takes `takes`, counts its runs, and reports `pexip = runs is odd`.
    fn counting(takes: Duration) -> (DeepHealth, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let health = DeepHealth::with_check(Arc::new(move || {
            let runs = counted.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(takes).await;
                HealthReport {
                    pexip: n % 2 == 1,
                    queues: true,
                }
            }
            .boxed()
        }));
        (health, runs)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_check() {
        let (health, runs) = counting(Duration::from_secs(2));
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let health = health.clone();
                tokio::spawn(async move { health.report().await })
            })
            .collect();
        for caller in callers {
            assert!(caller.await.unwrap().pexip);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_result_is_reused_for_fifteen_seconds_then_checked_again() {
        let (health, runs) = counting(Duration::from_millis(100));
        assert!(health.report().await.pexip);
        tokio::time::advance(CACHE_FOR - Duration::from_secs(1)).await;
        assert!(health.report().await.pexip, "still the cached result");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            !health.report().await.pexip,
            "a fresh check (the second run)"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_who_hangs_up_does_not_cancel_the_check_for_the_others() {
        let (health, runs) = counting(Duration::from_secs(2));
        let impatient = tokio::time::timeout(Duration::from_secs(1), health.report()).await;
        assert!(impatient.is_err());
        // The check went on without its first caller; the next caller joins it.
        assert!(health.report().await.pexip);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_counts_as_failed_and_is_cached_like_any_result() {
        let (health, runs) = counting(Duration::from_secs(3600));
        let report = health.report().await;
        assert_eq!(
            report,
            HealthReport {
                pexip: false,
                queues: false
            }
        );
        assert_eq!(health.report().await, report);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
