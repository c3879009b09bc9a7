//! Event-sink delivery (docs/pexip.md §8 Event sinks): one publisher per (sink, node), which
//! POSTs events strictly in order, one request at a time, with HTTP Basic when the sink has a
//! user. A publisher starts with `eventsink_started` and numbers its events with `seq` from 1.
//! Bulk sinks get every event collected during a 100 ms window in one `eventsink_bulk`
//! envelope.
//!
//! On a non-2xx answer or a transport error the publisher keeps the head event and retries it
//! with exponential backoff, holding back later events (Pexip's "retry in order"); after
//! [`MAX_ATTEMPTS`] it gives the event up, counts it in `event_failures`, and moves on, so a
//! dead receiver cannot stall the simulator forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::EventSinkTarget;
use super::counters::CounterCell;

/// Delivery attempts per event (or bulk) before it is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 5;
/// First retry delay; doubles on each further attempt (100, 200, 400, 800 ms).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Pexip's default "bulk message timeout interval".
const BULK_WINDOW: Duration = Duration::from_millis(100);
/// Per-request timeout towards a receiver.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Reports, to whoever published a group of events, that the group is done: every event was
/// delivered (all clones dropped), or one delivery attempt failed (a message is sent).
#[derive(Clone)]
pub(crate) struct Tracker(mpsc::UnboundedSender<()>);

/// Waits for the events of one [`EventHub::publish`] call (see [`Tracker`]).
pub(crate) struct Completion(mpsc::UnboundedReceiver<()>);

impl Completion {
    /// Return once every event was delivered, or as soon as one delivery attempt failed
    /// (retries then go on in the background).
    pub(crate) async fn wait(mut self) {
        let _ = self.0.recv().await;
    }
}

/// One event as the publisher sends it: the single-event envelope and its tracker.
struct Queued {
    envelope: Value,
    tracker: Option<Tracker>,
}

struct Publisher {
    seq: u64,
    tx: mpsc::UnboundedSender<Queued>,
    task: JoinHandle<()>,
}

struct Sink {
    target: EventSinkTarget,
    publishers: HashMap<String, Publisher>,
}

/// All sinks and their publishers.
pub(crate) struct EventHub {
    http: reqwest::Client,
    counters: Arc<CounterCell>,
    sinks: Mutex<Vec<Sink>>,
}

impl EventHub {
    pub(crate) fn new(
        targets: Vec<EventSinkTarget>,
        counters: Arc<CounterCell>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // Receivers are local test servers; a proxy from the environment must not apply.
            .no_proxy()
            .build()?;
        let hub = Self {
            http,
            counters,
            sinks: Mutex::new(Vec::new()),
        };
        for target in targets {
            hub.add_sink(target);
        }
        Ok(hub)
    }

    pub(crate) fn add_sink(&self, target: EventSinkTarget) {
        self.sinks.lock().expect("sinks lock").push(Sink {
            target,
            publishers: HashMap::new(),
        });
    }

    /// Queue events from `node` for every sink, in order. `events` builds the list for a
    /// sink protocol version (v1 and v2 differ in media-stream events). Must be called from
    /// within the tokio runtime (publishers are spawned lazily).
    pub(crate) fn publish(
        &self,
        node: &str,
        time: f64,
        events: &dyn Fn(u8) -> Vec<(&'static str, Value)>,
    ) -> Completion {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let tracker = Tracker(done_tx);
        let mut sinks = self.sinks.lock().expect("sinks lock");
        for sink in sinks.iter_mut() {
            let version = sink.target.version;
            let publisher = sink
                .publishers
                .entry(node.to_owned())
                .or_insert_with(|| self.spawn_publisher(&sink.target, node, time));
            for (event, data) in events(version) {
                publisher.seq += 1;
                let envelope = json!({
                    "node": node,
                    "seq": publisher.seq,
                    "version": version,
                    "time": time,
                    "event": event,
                    "data": data,
                });
                let _ = publisher.tx.send(Queued {
                    envelope,
                    tracker: Some(tracker.clone()),
                });
            }
        }
        Completion(done_rx)
    }

    /// A new publisher for (sink, node), whose first event is `eventsink_started` (seq 1).
    fn spawn_publisher(&self, target: &EventSinkTarget, node: &str, time: f64) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        let started = json!({
            "node": node, "seq": 1, "version": target.version, "time": time,
            "event": "eventsink_started", "data": {},
        });
        let _ = tx.send(Queued {
            envelope: started,
            tracker: None,
        });
        let task = tokio::spawn(run_publisher(
            self.http.clone(),
            target.clone(),
            node.to_owned(),
            rx,
            Arc::clone(&self.counters),
        ));
        Publisher { seq: 1, tx, task }
    }

    /// Stop every publisher (undelivered events are dropped).
    pub(crate) fn shutdown(&self) {
        for sink in self.sinks.lock().expect("sinks lock").iter_mut() {
            for (_, publisher) in sink.publishers.drain() {
                publisher.task.abort();
            }
        }
    }
}

async fn run_publisher(
    http: reqwest::Client,
    target: EventSinkTarget,
    node: String,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    counters: Arc<CounterCell>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        if target.bulk {
            tokio::time::sleep(BULK_WINDOW).await;
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
        }
        let body = if target.bulk {
            json!({
                "event": "eventsink_bulk",
                "node": node,
                "seq": 0,
                "version": target.version,
                "time": batch.last().map(|q| q.envelope["time"].clone()).unwrap_or_default(),
                "data": batch.iter().map(|q| q.envelope.clone()).collect::<Vec<_>>(),
            })
        } else {
            batch[0].envelope.clone()
        };
        let delivered = deliver(&http, &target, &body, &batch).await;
        let n = batch.len() as u64;
        if delivered {
            counters.events_sent(n);
        } else {
            counters.event_failures(n);
            tracing::warn!(sim.sink.url = %target.url, sim.node = %node, sim.events = n, "event sink unreachable; events given up");
        }
        // Dropping the batch drops its trackers: waiters learn the events are done.
    }
}

/// POST `body` until a 2xx, at most [`MAX_ATTEMPTS`] times. On the first failure the
/// batch's trackers are told, so a waiting `end_conference` returns without the retries.
async fn deliver(
    http: &reqwest::Client,
    target: &EventSinkTarget,
    body: &Value,
    batch: &[Queued],
) -> bool {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        let mut request = http.post(&target.url).json(body);
        if let Some(user) = &target.username {
            request = request.basic_auth(user, target.password.as_deref());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => {
                tracing::debug!(sim.sink.url = %target.url, http.status = response.status().as_u16(), attempt, "event sink refused an event");
            }
            Err(error) => {
                tracing::debug!(sim.sink.url = %target.url, %error, attempt, "event sink unreachable");
            }
        }
        if attempt == 1 {
            for queued in batch {
                if let Some(tracker) = &queued.tracker {
                    let _ = tracker.0.send(());
                }
            }
        }
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    false
}
