//! Turns per video call (tag URL) in this process: creates for the same call run one after the
//! other. Not a safety measure — the call's allocation record keeps one room per call across
//! every instance — but a load one: without turns, every concurrent create for a call polls
//! the record until the first one has its room. Measured with two instances, 50 calls and four
//! creates each at once, that polling slowed the owners' own storage requests past the claim
//! timeout and got six owners taken over. With turns, the second create in a process finds
//! the record allocated in one read.
//!
//! Entries live only while someone holds or awaits a turn.

use std::collections::HashMap;
use std::sync::Arc;

/// The turns of one process.
#[derive(Default)]
pub(super) struct TagTurns {
    turns: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// One allocation's turn; the next waiter for the same tag goes when it drops.
pub(super) struct Turn<'a> {
    turns: &'a TagTurns,
    tag: String,
    slot: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl TagTurns {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        // Every critical section is a map operation that cannot panic halfway.
        self.turns
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Wait for the turn of `tag`.
    pub(super) async fn take(&self, tag: &str) -> Turn<'_> {
        let slot = self.map().entry(tag.to_owned()).or_default().clone();
        let guard = slot.clone().lock_owned().await;
        Turn {
            turns: self,
            tag: tag.to_owned(),
            slot,
            guard: Some(guard),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.turns.map();
        // The map's Arc and ours are the only ones left: nobody waits, so forget the tag.
        // New waiters clone under the map lock, so this check cannot race with them.
        if Arc::strong_count(&self.slot) == 2 {
            map.remove(&self.tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn creates_for_one_call_take_turns_and_others_do_not_wait() {
        let turns = TagTurns::default();
        let first = turns.take("a").await;
        // Another call goes at once.
        let other = turns.take("b").await;
        drop(other);
        let second = tokio::time::timeout(std::time::Duration::from_secs(1), turns.take("a")).await;
        assert!(second.is_err(), "the same call waits for its turn");
        drop(first);
        let second = turns.take("a").await;
        drop(second);
        assert!(turns.map().is_empty(), "nothing is left behind");
    }
}
