//! The HTTP/1.1 server loop: what `axum::serve` does, plus a timeout on reading request heads.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never runs and a client
//! that sends half a request head and then nothing holds its connection (and a task) for as
//! long as it likes. This loop is the same accept → hyper connection → router hand-off with
//! hyper's `http1::Builder` configured with a Tokio timer and [`HEADER_READ_TIMEOUT`], and the
//! same graceful shutdown (stop accepting, let the connections finish their requests).
//!
//! Only HTTP/1.1 is served, as `axum::serve` did with this crate's axum features: the Functions
//! host forwards HTTP/1.1 to its handler.
//!
//! hyper starts the timeout whenever the connection waits for a request head, idle keep-alive
//! included, so an idle connection is also closed after [`HEADER_READ_TIMEOUT`]; clients (the
//! host's pooled `HttpClient` among them) open a new one on their next request.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// A client has this long to send a whole request head (and an idle keep-alive connection
/// this long to start its next one). hyper's own default, which `axum::serve` never turns on.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `router` on `listener` until `shutdown` completes, then wait for the connections
/// to finish the requests they are serving.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that went away or timed out: nothing anyone must act on.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// What `axum::serve` does after a failed accept: errors about one connection are that
/// connection's; anything else (out of file descriptors, say) is worth a warning and a pause,
/// or the loop would spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
