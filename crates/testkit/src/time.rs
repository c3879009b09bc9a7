//! Paused tokio time in tests that also talk over real sockets.

use std::time::Duration;

/// Keep paused time moving in 1 ms steps. Paused tokio time jumps to the next timer whenever
/// the runtime is idle, even while a request is on a real socket, and that timer would then
/// be the request's own timeout; with a 1 ms ticker every jump is 1 ms, so only the sleeps a
/// test cares about (backoff, `Retry-After`, refresh intervals) move time noticeably. Keep
/// the handle for the test's length: `let _tick = testkit::time::tick();`.
pub fn tick() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}
