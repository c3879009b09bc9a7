//! Timer invocations from the Functions host (`POST /gc_timer`, `POST /metrics_timer`) and its
//! readiness ping (`GET /`). The body is the host's `InvokeRequest`, parsed leniently; the
//! answer's `Logs` summarise the run and appear as the invocation's logs in Azure.

use axum::body::Bytes;
use axum::extract::State;

use super::AppState;
use crate::functions::{InvokeResponse, TimerInvocation};

/// The host polls this until it answers; any answer means "ready".
pub async fn readiness() -> &'static str {
    "ready"
}

/// Garbage collector, then reconciler (leaks) and pool top-up. Every 10 minutes.
pub async fn gc_timer(State(state): State<AppState>, body: Bytes) -> axum::Json<InvokeResponse> {
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
    logs.push(top_up(&state).await);
    axum::Json(InvokeResponse::with_logs(logs))
}

/// Metrics and pool top-up. Every 5 minutes.
pub async fn metrics_timer(
    State(state): State<AppState>,
    body: Bytes,
) -> axum::Json<InvokeResponse> {
    let _ = TimerInvocation::from_body(&body);
    let metrics = state.rooms.collect_metrics().await;
    let logs = vec![
        format!(
            "metrics: {}",
            serde_json::to_string(&metrics).unwrap_or_default()
        ),
        top_up(&state).await,
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

async fn top_up(state: &AppState) -> String {
    match state.rooms.top_up_pool().await {
        Ok(r) => format!("pool: {}", serde_json::to_string(&r).unwrap_or_default()),
        Err(e) => {
            tracing::warn!(error = %e, "pool top-up failed");
            format!("pool top-up failed: {e}")
        }
    }
}
