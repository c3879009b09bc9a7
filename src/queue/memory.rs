//! The in-memory queue backend: Azure Storage Queue semantics inside one process, for `dev`
//! and tests. `serve` refuses it (the pool must be shared by every Function instance).
//!
//! Same rules as the service, checked by the conformance suite against both backends: a
//! queue must be created before use; a received message is hidden for its visibility
//! timeout and gets a fresh pop receipt and a higher dequeue count; only the latest pop
//! receipt can delete or update a message; the count includes hidden messages; visibility
//! is in whole seconds. Not modelled: message expiry (we send with no expiry anyway) and the
//! 64 KiB size limit, which the facade checks for both backends.
//!
//! Time is `tokio::time::Instant`, so tests under `tokio::time::pause()` run timeouts
//! instantly and deterministically.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::{QueueError, Receipt, ReceivedMessage};

/// Every in-memory queue of one [`super::QueueService`], by name.
#[derive(Debug, Default)]
pub(super) struct MemoryQueues {
    queues: Mutex<HashMap<String, MemoryQueue>>,
}

#[derive(Debug, Default)]
struct MemoryQueue {
    messages: Vec<Message>,
    /// Insertion order, so ties in visibility keep FIFO order (as Azure roughly does).
    next_seq: u64,
}

#[derive(Debug)]
struct Message {
    id: String,
    text: String,
    seq: u64,
    visible_at: Instant,
    /// The only receipt that may delete or update the message; `None` until first received.
    pop_receipt: Option<String>,
    dequeue_count: u32,
    inserted_at: OffsetDateTime,
}

fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl MemoryQueues {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, MemoryQueue>> {
        // A panic while holding the lock cannot leave a queue half-updated (every update is
        // a single assignment or push), so a poisoned lock is still safe to use.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_queue<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut MemoryQueue) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut queues = self.lock();
        let queue = queues.get_mut(name).ok_or(QueueError::QueueNotFound)?;
        f(queue)
    }

    pub(super) fn ensure_exists(&self, name: &str) {
        self.lock().entry(name.to_owned()).or_default();
    }

    pub(super) fn send(&self, name: &str, text: &str, delay: Duration) -> Result<(), QueueError> {
        self.with_queue(name, |queue| {
            let seq = queue.next_seq;
            queue.next_seq += 1;
            queue.messages.push(Message {
                id: new_token(),
                text: text.to_owned(),
                seq,
                visible_at: Instant::now() + delay,
                pop_receipt: None,
                dequeue_count: 0,
                inserted_at: OffsetDateTime::now_utc(),
            });
            Ok(())
        })
    }

    pub(super) fn receive(
        &self,
        name: &str,
        max: usize,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.with_queue(name, |queue| {
            let now = Instant::now();
            let mut visible: Vec<usize> = (0..queue.messages.len())
                .filter(|&i| queue.messages[i].visible_at <= now)
                .collect();
            // Oldest-visible first; a message that reappeared goes behind those that never
            // left. Select the first `max` in linear time, then order just those.
            let order = |&i: &usize| (queue.messages[i].visible_at, queue.messages[i].seq);
            if max > 0 && visible.len() > max {
                visible.select_nth_unstable_by_key(max - 1, order);
                visible.truncate(max);
            }
            visible.sort_unstable_by_key(order);
            Ok(visible
                .into_iter()
                .take(max)
                .map(|i| {
                    let m = &mut queue.messages[i];
                    let pop_receipt = new_token();
                    m.pop_receipt = Some(pop_receipt.clone());
                    m.visible_at = now + visibility_timeout;
                    m.dequeue_count += 1;
                    ReceivedMessage {
                        receipt: Receipt {
                            message_id: m.id.clone(),
                            pop_receipt,
                        },
                        text: m.text.clone(),
                        dequeue_count: m.dequeue_count,
                        inserted_at: Some(m.inserted_at),
                    }
                })
                .collect())
        })
    }

    /// Find the message a receipt names, checking the receipt is still the latest.
    fn find(queue: &mut MemoryQueue, receipt: &Receipt) -> Result<usize, QueueError> {
        let index = queue
            .messages
            .iter()
            .position(|m| m.id == receipt.message_id)
            .ok_or(QueueError::MessageNotFound)?;
        if queue.messages[index].pop_receipt.as_deref() != Some(receipt.pop_receipt.as_str()) {
            return Err(QueueError::StaleReceipt);
        }
        Ok(index)
    }

    pub(super) fn delete(&self, name: &str, receipt: &Receipt) -> Result<(), QueueError> {
        self.with_queue(name, |queue| {
            let index = Self::find(queue, receipt)?;
            queue.messages.swap_remove(index);
            Ok(())
        })
    }

    pub(super) fn set_visibility(
        &self,
        name: &str,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<Receipt, QueueError> {
        self.with_queue(name, |queue| {
            let index = Self::find(queue, receipt)?;
            let message = &mut queue.messages[index];
            let pop_receipt = new_token();
            message.pop_receipt = Some(pop_receipt.clone());
            message.visible_at = Instant::now() + timeout;
            Ok(Receipt {
                message_id: message.id.clone(),
                pop_receipt,
            })
        })
    }

    pub(super) fn count(&self, name: &str) -> Result<u64, QueueError> {
        self.with_queue(name, |queue| Ok(queue.messages.len() as u64))
    }

    pub(super) fn clear(&self, name: &str) -> Result<(), QueueError> {
        self.with_queue(name, |queue| {
            queue.messages.clear();
            Ok(())
        })
    }
}
