//! Timer invocations from the Functions host (`POST /gc_timer`, `POST /metrics_timer`) and its
//! readiness ping (`GET /`). The body is the host's `InvokeRequest`, parsed leniently; the
//! answer's `Logs` summarise the run and appear as the invocation's logs in Azure.
//!
//! One run of each timer at a time per process ([`TimerTurns`]). Two GC runs at once would
//! each drain the deletion queue and level the pool while the other's reconciler has the pool
//! messages hidden (it lists them by receiving them), and take that for rooms to create or
//! leaks to delete. The host runs a timer on one instance at a time, but a past-due run, a
//! manual invocation (`POST /admin/functions/...`), `dev`'s in-process timers or a plain
//! `POST /gc_timer` can still overlap one. A second invocation while one runs answers **200**
//! at once with a log line saying it was skipped: the run in progress does the work, and a
//! non-2xx would make the host count a failed run and, for a timer, nothing would retry it
//! sooner than the next tick anyway.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use tokio::sync::Mutex;

use super::AppState;
use crate::functions::{InvokeResponse, TimerInvocation};
use crate::rooms::{RoomsError, TopUpReport};

/// The host polls this until it answers; any answer means "ready".
pub async fn readiness() -> &'static str {
    "ready"
}

/// One turn per timer: held for the whole of a run, so a second invocation meanwhile is
/// skipped. Cheap to clone; one per process (in [`AppState`]).
#[derive(Clone, Default)]
pub struct TimerTurns {
    gc: Arc<Mutex<()>>,
    metrics: Arc<Mutex<()>>,
}

/// The answer to an invocation that arrived while the same timer was running.
fn skipped(timer: &str) -> axum::Json<InvokeResponse> {
    tracing::info!(timer, "timer run skipped: the previous run is still going");
    axum::Json(InvokeResponse::with_logs(vec![format!(
        "{timer}: skipped, the previous run is still going"
    )]))
}

/// Garbage collector, then the pool brought to its target (top-up or trim), then the
/// reconciler (suspected leaks), then rooms handed out and never used, then the sweep of old
/// allocation records. Every 10 minutes.
pub async fn gc_timer(State(state): State<AppState>, body: Bytes) -> axum::Json<InvokeResponse> {
    let Ok(_turn) = state.timers.gc.try_lock() else {
        return skipped("gc_timer");
    };
    let invocation = TimerInvocation::from_body(&body);
    let mut logs = Vec::new();
    if invocation.is_past_due {
        logs.push("gc_timer: run is past due".to_owned());
    }
    ensure_queues(&state, &mut logs).await;
    let gc = state.rooms.collect_garbage().await;
    logs.push(format!(
        "gc: {}",
        serde_json::to_string(&gc).unwrap_or_default()
    ));
    // Level the pool before the leak search: the search hides pool messages for a moment
    // while it lists them, and a trim that ran then would find nothing to take.
    logs.push(pool_report(state.rooms.rebalance_pool().await));
    match state.rooms.reconcile().await {
        Ok(r) => logs.push(format!(
            "reconcile: {}",
            serde_json::to_string(&r).unwrap_or_default()
        )),
        Err(e) => {
            tracing::warn!(error = %e, "reconcile failed");
            logs.push(format!("reconcile failed: {e}"));
        }
    }
    // Before the sweep: the records tell when the rooms were handed out.
    match state.rooms.delete_unused_rooms().await {
        Ok(r) => logs.push(format!(
            "unused: {}",
            serde_json::to_string(&r).unwrap_or_default()
        )),
        Err(e) => {
            tracing::warn!(error = %e, "search for unused rooms failed");
            logs.push(format!("unused rooms search failed: {e}"));
        }
    }
    match state.rooms.sweep_allocation_records().await {
        Ok(r) => logs.push(format!(
            "records: {}",
            serde_json::to_string(&r).unwrap_or_default()
        )),
        Err(e) => {
            tracing::warn!(error = %e, "sweep of allocation records failed");
            logs.push(format!("records sweep failed: {e}"));
        }
    }
    axum::Json(InvokeResponse::with_logs(logs))
}

/// Metrics and pool top-up. Every 5 minutes.
pub async fn metrics_timer(
    State(state): State<AppState>,
    body: Bytes,
) -> axum::Json<InvokeResponse> {
    let Ok(_turn) = state.timers.metrics.try_lock() else {
        return skipped("metrics_timer");
    };
    let _ = TimerInvocation::from_body(&body);
    let metrics = state.rooms.collect_metrics().await;
    crate::telemetry::metrics::record_report(&metrics);
    let logs = vec![
        format!(
            "metrics: {}",
            serde_json::to_string(&metrics).unwrap_or_default()
        ),
        pool_report(state.rooms.top_up_pool().await),
    ];
    axum::Json(InvokeResponse::with_logs(logs))
}

/// Create the queues if an earlier attempt failed (a no-op once they exist).
async fn ensure_queues(state: &AppState, logs: &mut Vec<String>) {
    if let Err(e) = state.rooms.ensure_queues().await {
        tracing::warn!(error = %e, "queues unavailable");
        logs.push(format!("queues unavailable: {e}"));
    }
}

/// The log line of a pool top-up or rebalance.
fn pool_report(result: Result<TopUpReport, RoomsError>) -> String {
    match result {
        Ok(r) => format!("pool: {}", serde_json::to_string(&r).unwrap_or_default()),
        Err(e) => {
            tracing::warn!(error = %e, "pool top-up failed");
            format!("pool top-up failed: {e}")
        }
    }
}
