//! The process-wide concurrency cap to the Management Node, with two priorities.
//!
//! Pexip's Management Node gets slow under parallel load (its own CLI caps itself at 5), so
//! every request of every clone of the client takes a [`Permit`] from one [`Gate`]. When the
//! cap is full, waiting [`Priority::Caller`] requests get the next free slot before waiting
//! [`Priority::Background`] ones (FIFO within a priority), so a caller who is waiting for a room
//! is not stuck behind a replenish or GC batch.
//!
//! `tokio::sync::Semaphore` is fair but has one queue, so it cannot let a later caller overtake
//! earlier background work; this is a small hand-off queue instead: a released slot is handed
//! straight to the next waiter (caller queue first), or returned to the pool when nobody waits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Who a request serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// A request a caller is waiting for (allocate, explicit delete). Goes first.
    #[default]
    Caller,
    /// Background work (replenish, GC, metrics). Yields to callers when the cap is full.
    Background,
}

/// A prioritised counting semaphore. Cheap to share (`Arc` inside).
#[derive(Clone, Debug)]
pub struct Gate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    available: usize,
    callers: VecDeque<oneshot::Sender<Permit>>,
    background: VecDeque<oneshot::Sender<Permit>>,
}

/// One slot of the gate, released on drop (handed to the next waiter, if any).
#[derive(Debug)]
pub struct Permit {
    // `None` only while the permit is being handed over or dropped.
    inner: Option<Arc<Inner>>,
}

impl Gate {
    /// A gate with `capacity` slots (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Inner {
                capacity,
                state: Mutex::new(State {
                    available: capacity,
                    callers: VecDeque::new(),
                    background: VecDeque::new(),
                }),
            }),
        }
    }

    /// The configured number of slots.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Slots not held by anyone right now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.inner.lock().available
    }

    /// Wait for a slot. Cancel-safe: a waiter dropped before it got its slot gives the slot
    /// on to the next waiter.
    pub async fn acquire(&self, priority: Priority) -> Permit {
        let receiver = {
            let mut state = self.inner.lock();
            // A caller only queues behind other callers; background work also queues behind
            // callers, so a free slot is never taken past someone with a better claim.
            let queue_empty = match priority {
                Priority::Caller => state.callers.is_empty(),
                Priority::Background => state.callers.is_empty() && state.background.is_empty(),
            };
            if state.available > 0 && queue_empty {
                state.available -= 1;
                return Permit {
                    inner: Some(self.inner.clone()),
                };
            }
            let (sender, receiver) = oneshot::channel();
            match priority {
                Priority::Caller => state.callers.push_back(sender),
                Priority::Background => state.background.push_back(sender),
            }
            receiver
        };
        match receiver.await {
            Ok(permit) => permit,
            // The sender is only dropped after a hand-off (which we would have received) or
            // when the gate itself is gone, which cannot happen while `self` holds it.
            Err(_) => unreachable!("a gate never drops a waiter without handing it a permit"),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent (every
        // critical section is a few non-panicking statements), so poisoning is ignored.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut state = inner.lock();
        let mut permit = Permit {
            inner: Some(inner.clone()),
        };
        loop {
            let next = state
                .callers
                .pop_front()
                .or_else(|| state.background.pop_front());
            let Some(waiter) = next else {
                break;
            };
            match waiter.send(permit) {
                Ok(()) => return,
                // That waiter was cancelled; try the next one with the same slot.
                Err(returned) => permit = returned,
            }
        }
        state.available += 1;
        // Disarm: this slot went back to the pool, it must not be released twice.
        permit.inner = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_cap_is_never_exceeded() {
        let gate = Gate::new(2);
        let a = gate.acquire(Priority::Caller).await;
        let _b = gate.acquire(Priority::Background).await;
        assert_eq!(gate.available(), 0);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.acquire(Priority::Caller).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let _c = waiting.await.unwrap();
        assert_eq!(gate.available(), 0);
    }

    #[tokio::test]
    async fn waiting_callers_get_slots_before_waiting_background_work() {
        let gate = Gate::new(1);
        let held = gate.acquire(Priority::Background).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Background work queues first, then callers arrive.
        for (label, priority) in [
            ("bg1", Priority::Background),
            ("bg2", Priority::Background),
            ("caller1", Priority::Caller),
            ("caller2", Priority::Caller),
        ] {
            let gate = gate.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire(priority).await;
                order.lock().unwrap().push(label);
                tokio::task::yield_now().await;
            }));
            // Let each task reach the queue in this order.
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["caller1", "caller2", "bg1", "bg2"]);
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test]
    async fn a_released_slot_is_handed_to_a_waiter_not_left_free_for_a_newcomer() {
        let gate = Gate::new(1);
        let held = gate.acquire(Priority::Caller).await;
        let caller = tokio::spawn({
            let gate = gate.clone();
            async move { gate.acquire(Priority::Caller).await }
        });
        tokio::task::yield_now().await;
        // The slot is handed to the waiting caller on release, never left free for a newcomer.
        drop(held);
        assert_eq!(gate.available(), 0);
        let permit = caller.await.unwrap();
        drop(permit);
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_does_not_leak_its_slot() {
        let gate = Gate::new(1);
        let held = gate.acquire(Priority::Caller).await;
        let timed_out =
            tokio::time::timeout(Duration::from_secs(1), gate.acquire(Priority::Caller)).await;
        assert!(timed_out.is_err());
        let background = tokio::spawn({
            let gate = gate.clone();
            async move { gate.acquire(Priority::Background).await }
        });
        tokio::task::yield_now().await;
        drop(held);
        // The slot skipped the cancelled caller and went to the background waiter.
        let permit = background.await.unwrap();
        assert_eq!(gate.available(), 0);
        drop(permit);
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test]
    async fn many_concurrent_holders_never_exceed_the_capacity() {
        let gate = Gate::new(3);
        let current = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..60 {
            let gate = gate.clone();
            let current = current.clone();
            let peak = peak.clone();
            let priority = if i % 3 == 0 {
                Priority::Caller
            } else {
                Priority::Background
            };
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire(priority).await;
                let now = current.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
                current.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(gate.available(), 3);
    }
}
