//! Allocation-record conformance: one suite of the behaviours the allocation relies on, run
//! against Azurite's blob service (the Azure backend, Shared Key over real HTTP) and against
//! the in-memory backend.
//!
//! Two layers: the conditional blob operations ([`LockStore`]: create only if absent,
//! replace and delete only if unchanged), and the record protocol on top ([`AllocationLocks`]:
//! claim, wait, take over, release, forget, sweep). Each behaviour is a plain async fn over a
//! [`LockService`]; the `conformance!` macro makes one test per backend. Azurite tests share
//! one emulator per test binary and use containers of their own; each prints
//! `lock-conformance: azurite ok <test>` past the output capture so CI logs show how many ran
//! against Azurite. In-memory tests run with tokio's clock paused, so their waits take no time.

use std::collections::HashSet;
use std::time::Duration;

use pexip_sdk::locks::{
    AllocationLocks, Claimed, HeldRoom, LockError, LockService, LockStore, RecordState, Waited,
};
use testkit::azurite::{Azurite, report};
use testkit::unique_queue_name;

/// Claim timeout of the protocol tests: short, so a stale owner is found quickly on Azurite.
const TIMEOUT: Duration = Duration::from_millis(800);
const TAG: &str = "https://id.gov.bc.ca/idcheck/protected/video/CONFORMANCE";

fn azurite() -> &'static Azurite {
    Azurite::shared().expect("Azurite starts (npm and Node.js are needed)")
}

fn azurite_service() -> LockService {
    LockService::connect(&azurite().settings()).expect("settings build a client")
}

async fn fresh_store(service: &LockService) -> LockStore {
    let store = service
        .store(&unique_queue_name("locks"))
        .expect("valid container name");
    store.ensure_exists().await.expect("container created");
    store
}

async fn fresh_locks(service: &LockService) -> AllocationLocks {
    AllocationLocks::new(fresh_store(service).await, TIMEOUT)
}

fn room(id: u64) -> HeldRoom {
    HeldRoom {
        id,
        name: format!("vbv-room{id}"),
        view: serde_json::json!({"id": id, "name": format!("vbv-room{id}"), "tag": TAG}),
    }
}

async fn owned(locks: &AllocationLocks, tag: &str) -> pexip_sdk::locks::Claim {
    match locks.claim(tag).await.expect("claim") {
        Claimed::Owned(claim) => claim,
        other => panic!("expected to own the call, got {other:?}"),
    }
}

async fn busy(locks: &AllocationLocks, tag: &str) -> pexip_sdk::locks::Sighting {
    match locks.claim(tag).await.expect("claim") {
        Claimed::Busy(sighting) => sighting,
        other => panic!("expected someone else to own the call, got {other:?}"),
    }
}

/// The behaviours, one fn each, backend-agnostic.
mod suite {
    use super::*;

    pub async fn a_record_is_created_only_once(service: LockService) {
        let store = fresh_store(&service).await;
        let etag = store.create("k", b"first").await.unwrap();
        assert!(matches!(
            store.create("k", b"second").await,
            Err(LockError::Exists)
        ));
        let read = store.read("k").await.unwrap().unwrap();
        assert_eq!(read.body, b"first");
        assert_eq!(read.etag, etag);
        assert!(store.read("other").await.unwrap().is_none());
    }

    pub async fn a_replace_needs_the_current_version(service: LockService) {
        let store = fresh_store(&service).await;
        let first = store.create("k", b"one").await.unwrap();
        let second = store.replace("k", b"two", &first).await.unwrap();
        assert_ne!(first, second, "every write gives a new version");
        assert!(matches!(
            store.replace("k", b"stale", &first).await,
            Err(LockError::Changed)
        ));
        assert_eq!(store.read("k").await.unwrap().unwrap().body, b"two");
        assert!(matches!(
            store.replace("missing", b"x", &second).await,
            Err(LockError::Changed)
        ));
        assert!(store.read("missing").await.unwrap().is_none());
    }

    pub async fn a_delete_with_a_version_needs_the_current_one(service: LockService) {
        let store = fresh_store(&service).await;
        let first = store.create("k", b"one").await.unwrap();
        let second = store.replace("k", b"two", &first).await.unwrap();
        assert!(matches!(
            store.delete("k", Some(&first)).await,
            Err(LockError::Changed)
        ));

        assert!(store.delete("k", Some(&second)).await.unwrap());
        assert!(
            matches!(
                store.delete("k", Some(&second)).await,
                Err(LockError::Changed)
            ),
            "a condition on a record that is gone is not met"
        );
        store.create("k", b"again").await.unwrap();
        assert!(store.delete("k", None).await.unwrap(), "unconditional");
        assert!(!store.delete("k", None).await.unwrap(), "nothing left");
        assert!(store.read("k").await.unwrap().is_none());
    }

    pub async fn a_missing_container_reads_empty_and_is_made_by_the_first_create(
        service: LockService,
    ) {
        let store = service.store(&unique_queue_name("nocontainer")).unwrap();
        assert!(store.read("k").await.unwrap().is_none());
        assert!(store.list().await.unwrap().is_empty());
        assert!(!store.delete("k", None).await.unwrap());
        store.create("k", b"x").await.unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1);
    }

    pub async fn a_listing_names_every_record_with_its_version(service: LockService) {
        let store = fresh_store(&service).await;
        let mut written = HashSet::new();
        for i in 0..5 {
            let key = format!("key-{i}");
            let etag = store.create(&key, b"{}").await.unwrap();
            written.insert((key, etag));
        }
        let listed: HashSet<_> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.key, l.etag))
            .collect();
        assert_eq!(listed, written);
    }

    pub async fn one_of_many_concurrent_claims_owns_the_call(service: LockService) {
        let locks = fresh_locks(&service).await;
        let claims = (0..10).map(|_| locks.claim(TAG));
        let outcomes = futures::future::join_all(claims).await;
        let owners = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Claimed::Owned(_))))
            .count();
        let busy = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Claimed::Busy(_))))
            .count();
        assert_eq!((owners, busy), (1, 9), "{outcomes:?}");
    }

    pub async fn waiters_get_the_room_once_it_is_confirmed_and_not_while_it_is_tagged(
        service: LockService,
    ) {
        let locks = fresh_locks(&service).await;
        let mut claim = owned(&locks, TAG).await;
        locks
            .record(&mut claim, RecordState::Tagging { room: room(7) })
            .await
            .unwrap();
        let sighting = busy(&locks, TAG).await;
        let owner = {
            let locks = locks.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TIMEOUT / 4).await;
                locks
                    .record(&mut claim, RecordState::Allocated { room: room(7) })
                    .await
            })
        };
        match locks.wait(TAG, sighting).await.unwrap() {
            Waited::Allocated(got) => assert_eq!(got, room(7)),
            other => panic!("expected the allocated room, got {other:?}"),
        }
        owner.await.unwrap().unwrap();
        match locks.claim(TAG).await.unwrap() {
            Claimed::Allocated(got) => assert_eq!(got, room(7)),
            other => panic!("a later claim reads the room: {other:?}"),
        }
    }

    pub async fn a_stalled_owner_is_taken_over_and_loses_the_call(service: LockService) {
        let locks = fresh_locks(&service).await;
        let mut dead = owned(&locks, TAG).await;
        locks
            .record(&mut dead, RecordState::Tagging { room: room(3) })
            .await
            .unwrap();
        let sighting = busy(&locks, TAG).await;
        let Waited::Stale(stale) = locks.wait(TAG, sighting).await.unwrap() else {
            panic!("the owner made no progress: the record is stale");
        };
        assert_eq!(stale.room, Some(room(3)), "the room it was tagging");
        let mut taker = locks
            .take_over(stale, RecordState::Claiming)
            .await
            .unwrap()
            .expect("nobody else took it");
        // The stalled owner comes back: every write of its fails from now on.
        assert!(matches!(
            locks
                .record(&mut dead, RecordState::Allocated { room: room(3) })
                .await,
            Err(LockError::Changed)
        ));
        locks
            .record(&mut taker, RecordState::Allocated { room: room(4) })
            .await
            .unwrap();
        let record = locks.read(TAG).await.unwrap().unwrap();
        assert_eq!(record.state, RecordState::Allocated { room: room(4) });
    }

    pub async fn of_two_takeovers_of_one_stale_record_one_wins(service: LockService) {
        let locks = fresh_locks(&service).await;
        let _dead = owned(&locks, TAG).await;
        let (a, b) = (busy(&locks, TAG).await, busy(&locks, TAG).await);
        let (a, b) = tokio::join!(locks.wait(TAG, a), locks.wait(TAG, b));
        let (Waited::Stale(a), Waited::Stale(b)) = (a.unwrap(), b.unwrap()) else {
            panic!("both see the record stale");
        };
        let (a, b) = tokio::join!(
            locks.take_over(a, RecordState::Claiming),
            locks.take_over(b, RecordState::Claiming)
        );
        let winners = [a.unwrap(), b.unwrap()]
            .into_iter()
            .filter(Option::is_some)
            .count();
        assert_eq!(winners, 1);
    }

    pub async fn a_released_claim_lets_a_waiter_own_the_call(service: LockService) {
        let locks = fresh_locks(&service).await;
        let claim = owned(&locks, TAG).await;
        let sighting = busy(&locks, TAG).await;
        let owner = {
            let locks = locks.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TIMEOUT / 4).await;
                locks.release(claim).await
            })
        };
        let waited = locks.wait(TAG, sighting).await.unwrap();
        owner.await.unwrap().unwrap();
        assert!(matches!(waited, Waited::Owned(_)), "{waited:?}");
    }

    pub async fn an_owner_is_fresh_for_half_the_claim_timeout_after_its_write(
        service: LockService,
    ) {
        let locks = fresh_locks(&service).await;
        let mut claim = owned(&locks, TAG).await;
        locks
            .record(&mut claim, RecordState::Tagging { room: room(1) })
            .await
            .unwrap();
        assert!(locks.is_fresh(&claim));
        tokio::time::sleep(TIMEOUT / 2).await;
        assert!(!locks.is_fresh(&claim), "it must confirm before answering");
        // A confirmation renews it.
        locks
            .record(&mut claim, RecordState::Allocated { room: room(1) })
            .await
            .unwrap();
        assert!(locks.is_fresh(&claim));
    }

    pub async fn a_record_is_forgotten_only_with_the_room_it_names(service: LockService) {
        let locks = fresh_locks(&service).await;
        let mut claim = owned(&locks, TAG).await;
        locks
            .record(&mut claim, RecordState::Allocated { room: room(9) })
            .await
            .unwrap();
        assert!(locks.names_room(TAG, 9).await.unwrap());
        assert!(!locks.names_room(TAG, 8).await.unwrap());
        assert!(!locks.forget_room(TAG, 8).await.unwrap(), "another room");
        assert!(locks.read(TAG).await.unwrap().is_some());
        assert!(locks.forget_room(TAG, 9).await.unwrap());
        assert!(locks.read(TAG).await.unwrap().is_none());
        assert!(!locks.names_room(TAG, 9).await.unwrap());
        let _fresh = owned(&locks, TAG).await;
    }

    pub async fn the_sweep_removes_only_records_older_than_its_bound(service: LockService) {
        let locks = fresh_locks(&service).await;
        for call in ["A", "B", "C"] {
            owned(&locks, &format!("{TAG}{call}")).await;
        }
        let kept = locks.sweep(Duration::from_secs(3600)).await.unwrap();
        assert_eq!((kept.records, kept.removed), (3, 0));
        let cutoff = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
        let swept = locks.sweep_before(cutoff).await.unwrap();
        assert_eq!((swept.records, swept.removed), (3, 3));
        assert!(locks.store().list().await.unwrap().is_empty());
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod azurite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::suite::$name(super::azurite_service()).await;
                    super::report(concat!("lock-conformance: azurite ok ", stringify!($name)));
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    super::suite::$name(super::LockService::in_memory()).await;
                }
            )*
        }
    };
}

conformance!(
    a_record_is_created_only_once,
    a_replace_needs_the_current_version,
    a_delete_with_a_version_needs_the_current_one,
    a_missing_container_reads_empty_and_is_made_by_the_first_create,
    a_listing_names_every_record_with_its_version,
    one_of_many_concurrent_claims_owns_the_call,
    waiters_get_the_room_once_it_is_confirmed_and_not_while_it_is_tagged,
    a_stalled_owner_is_taken_over_and_loses_the_call,
    of_two_takeovers_of_one_stale_record_one_wins,
    a_released_claim_lets_a_waiter_own_the_call,
    an_owner_is_fresh_for_half_the_claim_timeout_after_its_write,
    a_record_is_forgotten_only_with_the_room_it_names,
    the_sweep_removes_only_records_older_than_its_bound,
);

/// Configuration end to end, Azurite only.
mod azurite_auth {
    use super::*;
    use pexip_sdk::config::StorageSettings;

    #[tokio::test]
    async fn a_wrong_account_key_is_unauthorized() {
        let settings = StorageSettings::ConnectionString {
            account: "devstoreaccount1".to_owned(),
            key: "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=".into(),
            queue_endpoint: azurite().queue_endpoint().clone(),
            blob_endpoint: azurite().blob_endpoint().clone(),
        };
        let store = LockService::connect(&settings)
            .unwrap()
            .store(&unique_queue_name("badkey"))
            .unwrap();
        assert!(matches!(
            store.ensure_exists().await,
            Err(LockError::Unauthorized)
        ));
        report("lock-conformance: azurite ok a_wrong_account_key_is_unauthorized");
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nowhere: url::Url = format!("http://127.0.0.1:{port}/devstoreaccount1")
            .parse()
            .unwrap();
        let store = LockService::connect(&StorageSettings::development(nowhere.clone(), nowhere))
            .unwrap()
            .store("nobody-home")
            .unwrap();
        assert!(matches!(
            store.create("k", b"x").await,
            Err(LockError::Unavailable(_))
        ));
    }
}
