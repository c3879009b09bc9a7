//! Queue conformance: one suite of queue behaviours the flows rely on, run against Azurite
//! (the Azure backend, Shared Key over real HTTP) and against the in-memory backend.
//!
//! Each behaviour is a plain async fn over a [`QueueService`]; the `conformance!` macro
//! makes one test per backend. Azurite tests share one emulator per test binary and use
//! their own queue names; each prints `queue-conformance: azurite ok <test>` past the
//! output capture so CI logs show how many ran against Azurite. In-memory tests run with
//! tokio's clock paused, so their waits take no time.
//!
//! Waiting is by polling until an outcome shows (with a generous upper bound that only
//! guards against hanging), never by asserting on how long something took.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use pexip_sdk::config::{Env, StorageSettings};
use pexip_sdk::queue::{
    DELETION_QUEUE, POOL_QUEUE, PoolMessage, PooledRoom, Queue, QueueError, QueueService,
    ReceivedMessage, poison_name,
};
use testkit::azurite::{Azurite, report};
use testkit::unique_queue_name;

/// How long a message under test stays hidden when the test checks it is hidden: long
/// enough that the very next request sees it hidden even on a busy machine.
const SHORT_HIDE: Duration = Duration::from_secs(3);
/// Hidden for the rest of the test.
const LONG_HIDE: Duration = Duration::from_secs(600);

fn azurite() -> &'static Azurite {
    Azurite::shared().expect("Azurite starts (npm and Node.js are needed)")
}

fn azurite_service() -> QueueService {
    QueueService::connect(&azurite().settings()).expect("settings build a client")
}

async fn fresh_queue(service: &QueueService, prefix: &str) -> Queue {
    let queue = service
        .queue(&unique_queue_name(prefix))
        .expect("valid queue name");
    queue.ensure_exists().await.expect("queue created");
    queue
}

/// Receive until something is visible; panics if nothing shows within a minute.
async fn receive_eventually(queue: &Queue, max: u8, hide: Duration) -> Vec<ReceivedMessage> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = queue.receive(max, hide).await.expect("receive");
        if !got.is_empty() {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "no message became visible within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn receive_one(queue: &Queue, hide: Duration) -> ReceivedMessage {
    let mut got = queue.receive(1, hide).await.expect("receive");
    assert_eq!(got.len(), 1, "expected exactly one visible message");
    got.remove(0)
}

async fn assert_nothing_visible(queue: &Queue) {
    let got = queue.receive(32, LONG_HIDE).await.expect("receive");
    assert!(
        got.is_empty(),
        "expected nothing visible, got {} message(s)",
        got.len()
    );
}

/// The behaviours, one fn each, backend-agnostic.
mod suite {
    use super::*;

    pub async fn a_hidden_message_reappears_after_its_visibility_timeout(service: QueueService) {
        let queue = fresh_queue(&service, "reappear").await;
        queue.send("room-a", Duration::ZERO).await.unwrap();

        let first = receive_one(&queue, SHORT_HIDE).await;
        assert_eq!(first.text, "room-a");
        assert_eq!(first.dequeue_count, 1);
        assert_nothing_visible(&queue).await;

        let again = receive_eventually(&queue, 1, LONG_HIDE).await;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receipt.message_id, first.receipt.message_id);
        assert_eq!(again[0].text, "room-a");
        assert_eq!(again[0].dequeue_count, 2);
        // Whoever received it first lost it: their receipt is stale.
        assert!(matches!(
            queue.delete(&first.receipt).await,
            Err(QueueError::StaleReceipt)
        ));
        queue.delete(&again[0].receipt).await.unwrap();
        assert_eq!(queue.approximate_count().await.unwrap(), 0);
    }

    pub async fn an_initial_delay_hides_a_new_message(service: QueueService) {
        let queue = fresh_queue(&service, "delay").await;
        queue.send("later", LONG_HIDE).await.unwrap();
        assert_nothing_visible(&queue).await;
        assert_eq!(queue.approximate_count().await.unwrap(), 1);

        queue.send("soon", Duration::from_secs(1)).await.unwrap();
        let got = receive_eventually(&queue, 32, LONG_HIDE).await;
        let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["soon"]);
        assert_eq!(got[0].dequeue_count, 1);
        assert_nothing_visible(&queue).await;
        assert_eq!(queue.approximate_count().await.unwrap(), 2);
    }

    pub async fn dequeue_counts_rise_with_each_receive(service: QueueService) {
        let queue = fresh_queue(&service, "dequeue").await;
        queue.send("room-b", Duration::ZERO).await.unwrap();
        for expected in 1..=3 {
            let message = receive_eventually(&queue, 1, LONG_HIDE).await.remove(0);
            assert_eq!(message.dequeue_count, expected);
            // Visible again at once, as a failed attempt that gives the message back would.
            queue
                .set_visibility(&message.receipt, Duration::ZERO)
                .await
                .unwrap();
        }
    }

    pub async fn a_stale_pop_receipt_cannot_delete_or_update(service: QueueService) {
        let queue = fresh_queue(&service, "stale").await;
        queue.send("room-c", Duration::ZERO).await.unwrap();
        let message = receive_one(&queue, LONG_HIDE).await;
        let renewed = queue
            .set_visibility(&message.receipt, LONG_HIDE)
            .await
            .unwrap();
        assert_eq!(renewed.message_id, message.receipt.message_id);
        assert_ne!(renewed.pop_receipt, message.receipt.pop_receipt);

        assert!(matches!(
            queue.delete(&message.receipt).await,
            Err(QueueError::StaleReceipt)
        ));
        assert!(matches!(
            queue.set_visibility(&message.receipt, LONG_HIDE).await,
            Err(QueueError::StaleReceipt)
        ));
        queue.delete(&renewed).await.unwrap();
        assert!(matches!(
            queue.delete(&renewed).await,
            Err(QueueError::MessageNotFound)
        ));
    }

    pub async fn a_thousand_messages_shared_by_two_hundred_receivers_are_each_received_once(
        service: QueueService,
    ) {
        const MESSAGES: usize = 1000;
        const RECEIVERS: usize = 200;
        let queue = fresh_queue(&service, "shared").await;
        futures::stream::iter(0..MESSAGES)
            .map(|i| {
                let queue = queue.clone();
                async move { queue.send(&format!("m-{i}"), Duration::ZERO).await }
            })
            .buffer_unordered(32)
            .for_each(|sent| async move { sent.expect("send") })
            .await;
        assert_eq!(queue.approximate_count().await.unwrap(), MESSAGES as u64);

        // Every receiver takes small batches until the queue shows nothing: with a long
        // visibility timeout nothing can reappear, so each message must be seen once. The
        // shared tally stops a broken backend that keeps handing out messages (the
        // assertions below then fail) instead of letting the receivers spin forever.
        let tally = Arc::new(AtomicUsize::new(0));
        let receivers: Vec<_> = (0..RECEIVERS)
            .map(|r| {
                let queue = queue.clone();
                let tally = tally.clone();
                tokio::spawn(async move {
                    let batch = u8::try_from(r % 4 + 1).expect("small");
                    let mut mine = Vec::new();
                    while tally.load(Ordering::Relaxed) <= MESSAGES {
                        let got = queue.receive(batch, LONG_HIDE).await.expect("receive");
                        if got.is_empty() {
                            break;
                        }
                        tally.fetch_add(got.len(), Ordering::Relaxed);
                        mine.extend(got);
                    }
                    mine
                })
            })
            .collect();
        let mut received = Vec::with_capacity(MESSAGES);
        for receiver in receivers {
            received.extend(receiver.await.expect("receiver task"));
        }

        let ids: HashSet<&str> = received
            .iter()
            .map(|m| m.receipt.message_id.as_str())
            .collect();
        let texts: HashSet<&str> = received.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            received.len(),
            MESSAGES,
            "some message was received twice or never"
        );
        assert_eq!(ids.len(), MESSAGES);
        let expected: HashSet<String> = (0..MESSAGES).map(|i| format!("m-{i}")).collect();
        assert_eq!(texts, expected.iter().map(String::as_str).collect());
        assert!(received.iter().all(|m| m.dequeue_count == 1));

        // Hidden messages still count; deleting them empties the queue.
        assert_eq!(queue.approximate_count().await.unwrap(), MESSAGES as u64);
        futures::stream::iter(received)
            .map(|m| {
                let queue = queue.clone();
                async move { queue.delete(&m.receipt).await }
            })
            .buffer_unordered(32)
            .for_each(|deleted| async move { deleted.expect("delete") })
            .await;
        assert_eq!(queue.approximate_count().await.unwrap(), 0);
    }

    pub async fn counts_include_hidden_messages_and_drop_on_delete(service: QueueService) {
        let queue = fresh_queue(&service, "count").await;
        assert_eq!(queue.approximate_count().await.unwrap(), 0);
        queue.send("a", Duration::ZERO).await.unwrap();
        queue.send("b", Duration::ZERO).await.unwrap();
        queue.send("c", LONG_HIDE).await.unwrap();
        assert_eq!(queue.approximate_count().await.unwrap(), 3);
        let message = receive_one(&queue, LONG_HIDE).await;
        assert_eq!(queue.approximate_count().await.unwrap(), 3);
        queue.delete(&message.receipt).await.unwrap();
        assert_eq!(queue.approximate_count().await.unwrap(), 2);
    }

    pub async fn clear_removes_visible_and_hidden_messages(service: QueueService) {
        let queue = fresh_queue(&service, "clear").await;
        queue.send("a", Duration::ZERO).await.unwrap();
        queue.send("b", Duration::ZERO).await.unwrap();
        queue.send("c", LONG_HIDE).await.unwrap();
        let _hidden = receive_one(&queue, LONG_HIDE).await;
        queue.clear().await.unwrap();
        assert_eq!(queue.approximate_count().await.unwrap(), 0);
        assert_nothing_visible(&queue).await;
    }

    pub async fn a_garbled_message_moves_to_the_poison_queue(service: QueueService) {
        let queue = fresh_queue(&service, "poison").await;
        let garbled = "not a room name / <&>";
        queue.send(garbled, Duration::ZERO).await.unwrap();
        let message = receive_one(&queue, LONG_HIDE).await;
        assert!(PoolMessage::parse(&message.text).is_err());

        queue.move_to_poison(&message, "garbled").await.unwrap();

        assert_eq!(queue.approximate_count().await.unwrap(), 0);
        let poison = queue.poison_queue().unwrap();
        assert_eq!(poison.name(), poison_name(queue.name()));
        assert_eq!(poison.approximate_count().await.unwrap(), 1);
        let moved = receive_one(&poison, LONG_HIDE).await;
        assert_eq!(moved.text, garbled);
        assert_eq!(moved.dequeue_count, 1);
    }

    pub async fn set_visibility_defers_a_message(service: QueueService) {
        let queue = fresh_queue(&service, "defer").await;
        queue.send("deferred", Duration::ZERO).await.unwrap();
        queue.send("control", Duration::ZERO).await.unwrap();
        let both = queue.receive(2, Duration::from_secs(1)).await.unwrap();
        assert_eq!(both.len(), 2);
        let deferred = both.iter().find(|m| m.text == "deferred").unwrap();
        let renewed = queue
            .set_visibility(&deferred.receipt, LONG_HIDE)
            .await
            .unwrap();

        // The control message had the same 1 s timeout; once it is back, the deferred one
        // would be too had the deferral not worked.
        let back = receive_eventually(&queue, 32, LONG_HIDE).await;
        let texts: Vec<&str> = back.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["control"]);
        assert_nothing_visible(&queue).await;
        assert_eq!(queue.approximate_count().await.unwrap(), 2);
        queue.delete(&renewed).await.unwrap();
    }

    pub async fn a_queue_must_exist_before_use(service: QueueService) {
        let queue = service.queue(&unique_queue_name("missing")).unwrap();
        assert!(matches!(
            queue.send("x", Duration::ZERO).await,
            Err(QueueError::QueueNotFound)
        ));
        queue.ensure_exists().await.unwrap();
        queue.ensure_exists().await.unwrap();
        queue.send("x", Duration::ZERO).await.unwrap();
        assert_eq!(queue.approximate_count().await.unwrap(), 1);
    }

    pub async fn message_text_survives_the_round_trip_unchanged(service: QueueService) {
        let queue = fresh_queue(&service, "text").await;
        let pool = PoolMessage {
            name: "vmr-x.1_2".to_owned(),
            id: Some(u64::MAX),
            room: Some(PooledRoom {
                guest_pin: "0123".to_owned(),
                aliases: vec!["vmr-x.1_2@vc.example.com".to_owned()],
                created: Some("2026-01-02T03:04:05.678901".to_owned()),
            }),
        }
        .to_text();
        let texts = [
            pool.as_str(),
            "<xml & \"quotes\" 'too'>",
            "ünïcødé ✓",
            "  padded  ",
        ];
        for text in texts {
            queue.send(text, Duration::ZERO).await.unwrap();
        }
        let got = queue.receive(32, LONG_HIDE).await.unwrap();
        let mut received: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
        let mut expected = texts.to_vec();
        received.sort_unstable();
        expected.sort_unstable();
        assert_eq!(received, expected);
        assert!(got.iter().all(|m| m.inserted_at.is_some()));
    }

    pub async fn the_services_queue_names_are_accepted(service: QueueService) {
        for name in [POOL_QUEUE, DELETION_QUEUE] {
            for name in [name.to_owned(), poison_name(name)] {
                let queue = service.queue(&name).unwrap();
                queue.ensure_exists().await.unwrap();
                queue.approximate_count().await.unwrap();
            }
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod azurite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::suite::$name(super::azurite_service()).await;
                    super::report(concat!("queue-conformance: azurite ok ", stringify!($name)));
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    super::suite::$name(super::QueueService::in_memory()).await;
                }
            )*
        }
    };
}

conformance!(
    a_hidden_message_reappears_after_its_visibility_timeout,
    an_initial_delay_hides_a_new_message,
    dequeue_counts_rise_with_each_receive,
    a_stale_pop_receipt_cannot_delete_or_update,
    a_thousand_messages_shared_by_two_hundred_receivers_are_each_received_once,
    counts_include_hidden_messages_and_drop_on_delete,
    clear_removes_visible_and_hidden_messages,
    a_garbled_message_moves_to_the_poison_queue,
    set_visibility_defers_a_message,
    a_queue_must_exist_before_use,
    message_text_survives_the_round_trip_unchanged,
    the_services_queue_names_are_accepted,
);

/// Authentication and configuration end to end, Azurite only (the in-memory backend has
/// no credentials).
mod azurite_auth {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    use testkit::recording::Stub;

    #[tokio::test]
    async fn a_connection_string_from_the_environment_signs_requests_azurite_accepts() {
        // A trailing slash on QueueEndpoint is the classic mistake: config strips it.
        let raw = format!("{}/;", azurite().connection_string().trim_end_matches(';'));
        let settings = StorageSettings::from_env(&Env::from_pairs([("AzureWebJobsStorage", raw)]))
            .unwrap()
            .unwrap();
        let service = QueueService::connect(&settings).unwrap();
        let queue = fresh_queue(&service, "connstr").await;
        queue.send("signed", Duration::ZERO).await.unwrap();
        assert_eq!(receive_one(&queue, LONG_HIDE).await.text, "signed");
        report(
            "queue-conformance: azurite ok a_connection_string_from_the_environment_signs_requests_azurite_accepts",
        );
    }

    #[tokio::test]
    async fn a_wrong_account_key_is_unauthorized() {
        let endpoint = azurite().queue_endpoint().clone();
        let settings = StorageSettings::ConnectionString {
            account: "devstoreaccount1".to_owned(),
            key: "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=".into(),
            queue_endpoint: endpoint,
            blob_endpoint: azurite().blob_endpoint().clone(),
        };
        let service = QueueService::connect(&settings).unwrap();
        let queue = service.queue(&unique_queue_name("badkey")).unwrap();
        assert!(matches!(
            queue.ensure_exists().await,
            Err(QueueError::Unauthorized)
        ));
        report("queue-conformance: azurite ok a_wrong_account_key_is_unauthorized");
    }

    #[tokio::test]
    async fn send_once_makes_one_attempt_where_send_retries() {
        // A queue service that answers every request 503.
        let busy = Stub::start(|_| StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
        let endpoint: url::Url = format!("{}/devstoreaccount1", busy.url()).parse().unwrap();
        let queue =
            QueueService::connect(&StorageSettings::development(endpoint.clone(), endpoint))
                .unwrap()
                .queue("pool-once")
                .unwrap();
        assert!(matches!(
            queue.send_once("room", Duration::ZERO).await,
            Err(QueueError::Unavailable(_))
        ));
        assert_eq!(busy.count(), 1, "one attempt, never a retry");
        busy.clear();
        assert!(queue.send("room", Duration::ZERO).await.is_err());
        assert!(busy.count() > 1, "send retries");
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unavailable() {
        // A port that was free a moment ago: connection refused, not a hang.
        let port = testkit::free_port();
        let nowhere: url::Url = format!("http://127.0.0.1:{port}/devstoreaccount1")
            .parse()
            .unwrap();
        let settings = StorageSettings::development(nowhere.clone(), nowhere);
        let queue = QueueService::connect(&settings)
            .unwrap()
            .queue("nobody-home")
            .unwrap();
        assert!(matches!(
            queue.approximate_count().await,
            Err(QueueError::Unavailable(_))
        ));
    }
}

/// The launcher itself: a dropped guard, also one dropped by a panic, stops the server.
mod launcher {
    use super::*;

    fn refuses_connections(port: u16) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    }

    #[test]
    fn dropping_the_guard_stops_azurite() {
        let azurite = Azurite::start().unwrap();
        let port = azurite.port();
        assert!(!refuses_connections(port), "Azurite should be listening");
        drop(azurite);
        assert!(
            refuses_connections(port),
            "Azurite still listens after drop"
        );
    }

    #[tokio::test]
    async fn an_on_disk_azurite_keeps_its_messages_across_a_stop_and_restart() {
        let mut azurite = Azurite::start_on_disk().unwrap();
        let queues = QueueService::connect(&azurite.settings()).unwrap();
        let queue = queues.queue("restart-survivor").unwrap();
        queue.ensure_exists().await.unwrap();
        queue.send("kept", Duration::ZERO).await.unwrap();
        let port = azurite.port();

        azurite.stop();
        assert!(refuses_connections(port), "stopped");
        assert!(matches!(
            queue.approximate_count().await,
            Err(QueueError::Unavailable(_))
        ));

        azurite.restart().unwrap();
        assert_eq!(azurite.port(), port, "same endpoint");
        let received = queue.receive(1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].text, "kept");
    }

    #[test]
    fn a_panicking_test_still_stops_azurite() {
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = std::thread::spawn(move || {
            let azurite = Azurite::start().unwrap();
            tx.send(azurite.port()).unwrap();
            panic!("a test failing while Azurite runs");
        })
        .join();
        assert!(outcome.is_err(), "the thread panicked");
        let port = rx.recv().unwrap();
        assert!(
            refuses_connections(port),
            "Azurite outlived the panicking test"
        );
    }
}
