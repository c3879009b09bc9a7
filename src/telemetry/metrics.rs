//! The service's metrics as Application Insights custom metrics (names as in the metrics log
//! line, so a chart and a log query use the same words):
//!
//! - **gauges**, recorded by each `metrics_timer` run ([`record_report`]): `pool_depth`,
//!   `deletion_backlog`, `poison_count`, `live_conferences`, `live_participants`,
//!   `managed_rooms`. Each needs a queue or Pexip round trip, so only the timer reads them
//!   (on one instance: the host runs a timer on one instance at a time).
//! - **counters**, observed from every instance's own counters at each export
//!   ([`observe_service`]): `allocations`, `pool_empty_fallbacks`, `rooms_replenished`,
//!   `rooms_deleted`, and `pexip_errors` by `class`. Observed rather than taken from the timer's
//!   report, whose "since last run" counts only the instance that ran it: scaled out, the others'
//!   allocations would be missing.
//! - a **histogram** of create latency, `room_create_duration_ms`, per request
//!   ([`record_create`]).
//!
//! Without an exporter the global meter is OpenTelemetry's no-op: recording costs a call.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Gauge, Histogram, Meter, ObservableCounter};

use super::insights::SCOPE;
use crate::rooms::{MetricsReport, RoomService};

/// The gauges' names, in the order of [`record_report`]: what alerts (deploy/main.bicep)
/// and queries refer to.
pub const GAUGES: [&str; 6] = [
    "pool_depth",
    "deletion_backlog",
    "poison_count",
    "live_conferences",
    "live_participants",
    "managed_rooms",
];

struct Instruments {
    pool_depth: Gauge<u64>,
    deletion_backlog: Gauge<u64>,
    poison_count: Gauge<u64>,
    live_conferences: Gauge<u64>,
    live_participants: Gauge<u64>,
    managed_rooms: Gauge<u64>,
    create_duration: Histogram<f64>,
}

fn meter() -> Meter {
    opentelemetry::global::meter(SCOPE)
}

/// Built on first use, after [`super::init`] installed the meter provider.
static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = meter();
    let gauge = |name: &'static str, description: &'static str| {
        meter.u64_gauge(name).with_description(description).build()
    };
    let [pool, backlog, poison, conferences, participants, managed] = GAUGES;
    Instruments {
        pool_depth: gauge(pool, "Rooms in the pool, ready or replicating"),
        deletion_backlog: gauge(backlog, "Deletion messages waiting, grace period included"),
        poison_count: gauge(poison, "Messages in both poison queues"),
        live_conferences: gauge(conferences, "Live conferences on Pexip"),
        live_participants: gauge(participants, "Participants in live conferences"),
        managed_rooms: gauge(managed, "Rooms with our name prefix on Pexip"),
        create_duration: meter
            .f64_histogram("room_create_duration_ms")
            .with_unit("ms")
            .with_description("Latency of POST /room/create")
            .build(),
    }
});

/// Record the gauges of one metrics run; a source that could not be read records nothing.
pub fn record_report(report: &MetricsReport) {
    let i = &*INSTRUMENTS;
    let gauges = [
        (&i.pool_depth, report.pool_depth),
        (&i.deletion_backlog, report.deletion_backlog),
        (&i.poison_count, report.poison_count),
        (&i.live_conferences, report.live_conferences),
        (&i.live_participants, report.live_participants),
        (&i.managed_rooms, report.managed_rooms),
    ];
    for (gauge, value) in gauges {
        if let Some(value) = value {
            gauge.record(value, &[]);
        }
    }
}

/// Record one create's latency and status.
pub fn record_create(latency: Duration, status: u16) {
    INSTRUMENTS.create_duration.record(
        latency.as_secs_f64() * 1000.0,
        &[KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        )],
    );
}

/// The observable counters, kept alive for the life of the process.
static OBSERVED: Mutex<Vec<ObservableCounter<u64>>> = Mutex::new(Vec::new());

/// Report `rooms`'s counters (and its Pexip client's errors by class) at every export.
/// Called once per process, by the composition root.
pub fn observe_service(rooms: &RoomService) {
    if !super::exporting() {
        return;
    }
    let meter = meter();
    type Read = fn(&RoomService) -> u64;
    let service: [(&'static str, &'static str, Read); 4] = [
        ("allocations", "Rooms handed to callers", |r| {
            r.stats().allocations
        }),
        (
            "pool_empty_fallbacks",
            "Allocations that found the pool empty",
            |r| r.stats().pool_empty_fallbacks,
        ),
        ("rooms_replenished", "Rooms created into the pool", |r| {
            r.stats().rooms_replenished
        }),
        ("rooms_deleted", "Rooms deleted on Pexip", |r| {
            r.stats().rooms_deleted
        }),
    ];
    let mut observed = OBSERVED.lock().unwrap_or_else(|e| e.into_inner());
    for (name, description, read) in service {
        let rooms = rooms.clone();
        observed.push(
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(move |observer| observer.observe(read(&rooms), &[]))
                .build(),
        );
    }
    let pexip = rooms.pexip().clone();
    observed.push(
        meter
            .u64_observable_counter("pexip_errors")
            .with_description("Failed Management API attempts, by class")
            .with_callback(move |observer| {
                let e = pexip.stats().errors;
                for (class, count) in [
                    ("not_found", e.not_found),
                    ("validation", e.validation),
                    ("unauthorized", e.unauthorized),
                    ("rate_limited", e.rate_limited),
                    ("unavailable", e.unavailable),
                    ("other", e.other),
                ] {
                    observer.observe(count, &[KeyValue::new("class", class)]);
                }
            })
            .build(),
    );
}
