//! The allocation record protocol: who owns a video call's allocation, and which room it got.
//!
//! One record per call, keyed by the SHA-256 of its tag URL, moving through three states:
//!
//! - `claiming` — written create-only (`If-None-Match: *`): whoever creates it owns the call.
//!   Everyone else waits (polling) for the outcome.
//! - `tagging` — the owner records the room it is tagging, in parallel with the PATCH. Readers
//!   keep waiting: the PATCH may still fail, and then the owner moves on to another room.
//! - `allocated` — the room is the call's, for good. Readers answer it without asking Pexip.
//!
//! Every write after the first is conditional on the ETag the writer last saw, so two owners
//! can never both succeed. Ownership is the `owner` field: a takeover writes a new one.
//!
//! **When may the owner answer?** Only while no one can have taken its claim over. A waiter
//! takes over after it has seen the *same* version for `claim_timeout` by its own clock; its
//! first sight of a version comes after that version was written, which is after the owner
//! sent it. So an owner that answers within half the timeout of *sending* its `tagging` write
//! answers before any takeover is possible (the half is margin for clock-rate differences),
//! and confirms `allocated` in the background. A slower owner confirms first and answers only
//! if that conditional write succeeds. Rejected alternative: confirming before every answer —
//! one more storage round trip on the path a citizen waits on, for no additional safety.
//!
//! What a taker-over finds in a stale record is the caller's to judge ([`Stale::room`]): a
//! `tagging` room that Pexip shows tagged for the call may have been answered, so it is
//! adopted; one that is not cannot have been (the owner answers only after its PATCH
//! succeeded), so it is set aside. That judgement needs Pexip, which this module does not know.
//!
//! Writes are retried by the SDK; a retry of a write that had been applied finds the record
//! changed. Every write carries a fresh `write` id, so the writer recognises its own write on
//! reading back, and an owner recognises its own earlier write by `owner`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::{Etag, LockError, LockStore};

/// First wait between two reads of a record another instance owns.
const FIRST_POLL: Duration = Duration::from_millis(20);
/// Longest wait between two reads.
const MAX_POLL: Duration = Duration::from_millis(200);

/// One video call's record, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationRecord {
    /// The call's tag URL (the record's key is its SHA-256).
    pub tag: String,
    /// Who holds the claim: one id per allocation attempt; a takeover writes a new one.
    pub owner: String,
    /// One id per write, so a writer whose answer was lost recognises its write.
    pub write: String,
    /// Where the allocation stands.
    #[serde(flatten)]
    pub state: RecordState,
    /// When the writer wrote it (for people reading the blob; the sweep uses the service's
    /// own last-modified time).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Where an allocation stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordState {
    /// The owner is finding a room.
    Claiming,
    /// The owner is tagging this room; it may still give it up.
    Tagging { room: HeldRoom },
    /// The call's room.
    Allocated { room: HeldRoom },
}

impl RecordState {
    /// The room the record names, tagging or allocated.
    pub fn room(&self) -> Option<&HeldRoom> {
        match self {
            RecordState::Claiming => None,
            RecordState::Tagging { room } | RecordState::Allocated { room } => Some(room),
        }
    }
}

/// A room as the record keeps it: what a repeated create answers, without the host PIN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldRoom {
    /// Pexip's id of the room.
    pub id: u64,
    /// The room's name.
    pub name: String,
    /// The answer's view of the room (opaque here).
    pub view: serde_json::Value,
}

/// The right to allocate a room for one call, held by one allocation attempt. A clone is
/// the same right (for a confirmation written in the background after answering).
#[derive(Debug, Clone)]
pub struct Claim {
    key: String,
    tag: String,
    owner: String,
    etag: Etag,
    /// When the latest successful write was sent (the start of its lease).
    written: Instant,
}

impl Claim {
    /// The call's tag URL.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// What waiting for another owner ended with.
#[derive(Debug)]
pub enum Waited {
    /// The record disappeared (its owner gave up) and this attempt claimed the call.
    Owned(Claim),
    /// The call has its room.
    Allocated(HeldRoom),
    /// The owner made no progress for the claim timeout: the caller may take over.
    Stale(Stale),
}

/// A record whose owner stopped making progress.
#[derive(Debug)]
pub struct Stale {
    key: String,
    tag: String,
    etag: Etag,
    /// The room the stale owner was tagging, if it had got that far.
    pub room: Option<HeldRoom>,
}

/// What the sweep of old records did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Records in the container.
    pub records: usize,
    /// Records older than the bound, removed.
    pub removed: usize,
}

/// The allocation records of one container. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AllocationLocks {
    store: LockStore,
    claim_timeout: Duration,
}

/// The key of a call's record: the hex SHA-256 of its tag URL (fixed length, URL-safe, and no
/// tag text in blob names or storage logs).
pub fn record_key(tag: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tag.as_bytes()).as_ref())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn parse(body: &[u8]) -> Option<AllocationRecord> {
    serde_json::from_slice(body).ok()
}

impl AllocationLocks {
    /// The protocol over `store`; a waiter takes over an owner that made no progress for
    /// `claim_timeout`.
    pub fn new(store: LockStore, claim_timeout: Duration) -> Self {
        Self {
            store,
            claim_timeout,
        }
    }

    /// The container.
    pub fn store(&self) -> &LockStore {
        &self.store
    }

    /// Create the container if it does not exist (idempotent).
    pub async fn ensure_exists(&self) -> Result<(), LockError> {
        self.store.ensure_exists().await
    }

    fn body(&self, tag: &str, owner: &str, write: &str, state: RecordState) -> Vec<u8> {
        let record = AllocationRecord {
            tag: tag.to_owned(),
            owner: owner.to_owned(),
            write: write.to_owned(),
            state,
            updated_at: OffsetDateTime::now_utc(),
        };
        serde_json::to_vec(&record).expect("a record always serialises")
    }

    /// Claim the call of `tag` if nobody has. Otherwise say how it stands: allocated, or
    /// owned by someone else (then [`Self::wait`] with the returned sighting).
    pub async fn claim(&self, tag: &str) -> Result<Claimed, LockError> {
        let key = record_key(tag);
        let owner = new_id();
        let write = new_id();
        let body = self.body(tag, &owner, &write, RecordState::Claiming);
        let written = Instant::now();
        match self.store.create(&key, &body).await {
            Ok(etag) => Ok(Claimed::Owned(Claim {
                key,
                tag: tag.to_owned(),
                owner,
                etag,
                written,
            })),
            Err(LockError::Exists) => {
                let Some(stored) = self.store.read(&key).await? else {
                    // Deleted between the two requests: the owner gave up. Look again.
                    return Ok(Claimed::Busy(Sighting::none(key)));
                };
                let record = parse(&stored.body);
                if record.as_ref().is_some_and(|r| r.write == write) {
                    // An SDK retry of our own create, whose first answer was lost.
                    return Ok(Claimed::Owned(Claim {
                        key,
                        tag: tag.to_owned(),
                        owner,
                        etag: stored.etag,
                        written,
                    }));
                }
                if let Some(RecordState::Allocated { room }) = record.map(|r| r.state) {
                    return Ok(Claimed::Allocated(room));
                }
                Ok(Claimed::Busy(Sighting {
                    key,
                    etag: Some(stored.etag),
                    at: Instant::now(),
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Wait for the owner of `tag`'s call: until the call is allocated, the record goes away
    /// (and this attempt claims the call), or the same version has been seen for the claim
    /// timeout (stale: the caller may take over).
    pub async fn wait(&self, tag: &str, sighting: Sighting) -> Result<Waited, LockError> {
        let mut seen = sighting;
        let mut poll = FIRST_POLL;
        loop {
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(MAX_POLL);
            let Some(stored) = self.store.read(&seen.key).await? else {
                match self.claim(tag).await? {
                    Claimed::Owned(claim) => return Ok(Waited::Owned(claim)),
                    Claimed::Allocated(room) => return Ok(Waited::Allocated(room)),
                    Claimed::Busy(sighting) => {
                        seen = sighting;
                        continue;
                    }
                }
            };
            let record = parse(&stored.body);
            if let Some(RecordState::Allocated { room }) = record.as_ref().map(|r| &r.state) {
                return Ok(Waited::Allocated(room.clone()));
            }
            if seen.etag.as_ref() != Some(&stored.etag) {
                seen = Sighting {
                    key: seen.key,
                    etag: Some(stored.etag),
                    at: Instant::now(),
                };
                continue;
            }
            if seen.at.elapsed() >= self.claim_timeout {
                return Ok(Waited::Stale(Stale {
                    key: seen.key,
                    tag: tag.to_owned(),
                    etag: stored.etag,
                    // A garbled record names no room: taking it over just overwrites it.
                    room: record.and_then(|r| r.state.room().cloned()),
                }));
            }
        }
    }

    /// Take a stale record over, writing `state` as its new owner. `None` when someone else
    /// wrote it first (wait again).
    pub async fn take_over(
        &self,
        stale: Stale,
        state: RecordState,
    ) -> Result<Option<Claim>, LockError> {
        let owner = new_id();
        let mut claim = Claim {
            key: stale.key,
            tag: stale.tag,
            owner,
            etag: stale.etag,
            written: Instant::now(),
        };
        match self.record(&mut claim, state).await {
            Ok(()) => Ok(Some(claim)),
            Err(LockError::Changed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write `state` for the holder of `claim`, on condition that nobody else has written
    /// since. [`LockError::Changed`] means the claim was taken over: the call is no longer
    /// this attempt's to allocate.
    pub async fn record(&self, claim: &mut Claim, state: RecordState) -> Result<(), LockError> {
        let write = new_id();
        let body = self.body(&claim.tag, &claim.owner, &write, state);
        // Two rounds at most: the second after finding an earlier write of ours (whose
        // answer was lost) in place.
        for _ in 0..2 {
            let sent = Instant::now();
            match self.store.replace(&claim.key, &body, &claim.etag).await {
                Ok(etag) => {
                    claim.etag = etag;
                    claim.written = sent;
                    return Ok(());
                }
                Err(LockError::Changed) => {
                    let Some(stored) = self.store.read(&claim.key).await? else {
                        return Err(LockError::Changed);
                    };
                    match parse(&stored.body) {
                        Some(r) if r.write == write => {
                            // A retry of this very write found it applied.
                            claim.etag = stored.etag;
                            claim.written = sent;
                            return Ok(());
                        }
                        Some(r) if r.owner == claim.owner => claim.etag = stored.etag,
                        _ => return Err(LockError::Changed),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(LockError::Changed)
    }

    /// Whether the owner of `claim` may still answer without confirming first: its latest
    /// write was sent less than half the claim timeout ago (see the module docs).
    pub fn is_fresh(&self, claim: &Claim) -> bool {
        claim.written.elapsed() < self.claim_timeout / 2
    }

    /// Give the claim up (the attempt failed before any room could be the call's), so the
    /// next create for the call need not wait for the timeout.
    pub async fn release(&self, claim: Claim) -> Result<(), LockError> {
        match self.store.delete(&claim.key, Some(&claim.etag)).await {
            Ok(_) => Ok(()),
            // Taken over meanwhile: no longer ours to remove.
            Err(LockError::Changed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The record of `tag`'s call, if any (unreadable records read as none).
    pub async fn read(&self, tag: &str) -> Result<Option<AllocationRecord>, LockError> {
        Ok(self
            .store
            .read(&record_key(tag))
            .await?
            .and_then(|stored| parse(&stored.body)))
    }

    /// Whether `tag`'s record names room `room_id` (tagging or allocated).
    pub async fn names_room(&self, tag: &str, room_id: u64) -> Result<bool, LockError> {
        Ok(self
            .read(tag)
            .await?
            .is_some_and(|r| r.state.room().is_some_and(|room| room.id == room_id)))
    }

    /// Remove `tag`'s record if it names room `room_id` (its room was deleted). `false` when
    /// it names another room, none, or changed meanwhile.
    pub async fn forget_room(&self, tag: &str, room_id: u64) -> Result<bool, LockError> {
        let key = record_key(tag);
        let Some(stored) = self.store.read(&key).await? else {
            return Ok(false);
        };
        let names_it = parse(&stored.body)
            .is_some_and(|r| r.state.room().is_some_and(|room| room.id == room_id));
        if !names_it {
            return Ok(false);
        }
        match self.store.delete(&key, Some(&stored.etag)).await {
            Ok(deleted) => Ok(deleted),
            Err(LockError::Changed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove every record last written more than `max_age` ago (by the service's clock).
    pub async fn sweep(&self, max_age: Duration) -> Result<SweepReport, LockError> {
        self.sweep_before(OffsetDateTime::now_utc() - max_age).await
    }

    /// Remove every record last written before `cutoff`.
    pub async fn sweep_before(&self, cutoff: OffsetDateTime) -> Result<SweepReport, LockError> {
        let listed = self.store.list().await?;
        let mut report = SweepReport {
            records: listed.len(),
            removed: 0,
        };
        for old in listed.iter().filter(|l| l.last_modified < cutoff) {
            // Conditional: a record written since the listing is not old any more.
            match self.store.delete(&old.key, Some(&old.etag)).await {
                Ok(true) => report.removed += 1,
                Ok(false) | Err(LockError::Changed) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}

/// How [`AllocationLocks::claim`] ended.
#[derive(Debug)]
pub enum Claimed {
    /// This attempt owns the call.
    Owned(Claim),
    /// The call has its room.
    Allocated(HeldRoom),
    /// Someone else owns the call; wait with this sighting.
    Busy(Sighting),
}

/// The version of a record last seen, and since when (what a takeover is timed from).
#[derive(Debug)]
pub struct Sighting {
    key: String,
    etag: Option<Etag>,
    at: Instant,
}

impl Sighting {
    fn none(key: String) -> Self {
        Self {
            key,
            etag: None,
            at: Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_flat_json_with_the_state_as_a_tag() {
        let record = AllocationRecord {
            tag: "https://id.gov.bc.ca/idcheck/protected/video/A".into(),
            owner: "o".into(),
            write: "w".into(),
            state: RecordState::Tagging {
                room: HeldRoom {
                    id: 7,
                    name: "vbv-x".into(),
                    view: serde_json::json!({"id": 7}),
                },
            },
            updated_at: time::macros::datetime!(2026-01-01 0:00 UTC),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["state"], "tagging");
        assert_eq!(json["room"]["name"], "vbv-x");
        assert_eq!(
            serde_json::from_value::<AllocationRecord>(json).unwrap(),
            record
        );
    }

    #[test]
    fn keys_are_the_hex_sha256_of_the_tag() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            record_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
