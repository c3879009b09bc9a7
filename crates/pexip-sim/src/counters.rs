//! Request and event counters, so tests can assert what a client did on the wire
//! (how many token requests, retries per route, the peak concurrency it caused).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters; the JSON of `GET /_sim/counters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests by `"<METHOD> <route pattern>"`, e.g.
    /// `"DELETE /api/admin/configuration/v1/conference/{id}/"` or `"POST /oauth/token/"`.
    /// Requests that matched no route count under `"<METHOD> (unmatched)"`.
    pub requests: BTreeMap<String, u64>,
    /// `/api/admin/**` requests being served now.
    pub in_flight: u64,
    /// The most `/api/admin/**` requests served at once (a request counts for its whole
    /// duration, injected latency included).
    pub max_in_flight: u64,
    /// Access tokens issued by `POST /oauth/token/`.
    pub tokens_issued: u64,
    /// `DELETE` requests on a collection URL (which deletes every object).
    pub collection_deletes: u64,
    /// Events delivered to a sink with a 2xx answer (each event inside a bulk counts).
    pub events_sent: u64,
    /// Events given up on after the retries ran out.
    pub event_failures: u64,
}

impl Counters {
    /// Requests counted for one route key, e.g. `"POST /oauth/token/"`; 0 if none.
    pub fn requests_for(&self, route: &str) -> u64 {
        self.requests.get(route).copied().unwrap_or(0)
    }
}

/// The live counters behind a lock (cheap: a few increments per request).
#[derive(Debug, Default)]
pub(crate) struct CounterCell(Mutex<Counters>);

impl CounterCell {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.0.lock().expect("counters lock"));
    }

    pub(crate) fn request(&self, route: String) {
        self.with(|c| *c.requests.entry(route).or_default() += 1);
    }

    /// Count an `/api/admin` request as in flight until the guard is dropped (also when the
    /// request is cancelled, e.g. by a dropped connection).
    pub(crate) fn enter_admin(self: &Arc<Self>) -> InFlight {
        self.with(|c| {
            c.in_flight += 1;
            c.max_in_flight = c.max_in_flight.max(c.in_flight);
        });
        InFlight(Arc::clone(self))
    }

    pub(crate) fn token_issued(&self) {
        self.with(|c| c.tokens_issued += 1);
    }

    pub(crate) fn collection_delete(&self) {
        self.with(|c| c.collection_deletes += 1);
    }

    pub(crate) fn events_sent(&self, n: u64) {
        self.with(|c| c.events_sent += n);
    }

    pub(crate) fn event_failures(&self, n: u64) {
        self.with(|c| c.event_failures += n);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        self.0.lock().expect("counters lock").clone()
    }

    /// Zero everything except what is in flight now (those requests are still running).
    pub(crate) fn reset(&self) {
        self.with(|c| {
            *c = Counters {
                in_flight: c.in_flight,
                max_in_flight: c.in_flight,
                ..Counters::default()
            }
        });
    }
}

/// Marks one `/api/admin` request in flight.
pub(crate) struct InFlight(Arc<CounterCell>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|c| c.in_flight = c.in_flight.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_in_flight_keeps_the_peak_and_reset_keeps_running_requests() {
        let cell = Arc::new(CounterCell::default());
        let a = cell.enter_admin();
        let b = cell.enter_admin();
        drop(a);
        let snap = cell.snapshot();
        assert_eq!((snap.in_flight, snap.max_in_flight), (1, 2));
        cell.reset();
        let snap = cell.snapshot();
        assert_eq!((snap.in_flight, snap.max_in_flight), (1, 1));
        drop(b);
        assert_eq!(cell.snapshot().in_flight, 0);
    }
}
