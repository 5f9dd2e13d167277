//! Polling helpers that replace sleeps as synchronisation.

use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

/// Poll interval: short, so a condition that becomes true is noticed fast.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `cond()` returns true, polling every few milliseconds; panics
/// (naming the caller's location) if it is still false after `timeout`.
///
/// Use a generous `timeout` (seconds): it is only the failure bound.
#[track_caller]
pub fn wait_for<F>(mut cond: F, timeout: Duration) -> impl Future<Output = ()>
where
    F: FnMut() -> bool,
{
    let caller = Location::caller();
    async move {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return;
            }
            if Instant::now() >= deadline {
                panic!("wait_for at {caller}: condition still false after {timeout:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Like [`wait_for`], for conditions that need to await (for example sending
/// a request through the proxy and checking which backend answered).
#[track_caller]
pub fn wait_for_async<F, Fut>(mut cond: F, timeout: Duration) -> impl Future<Output = ()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let caller = Location::caller();
    async move {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Ok(true) = tokio::time::timeout(remaining, cond()).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!("wait_for_async at {caller}: condition still false after {timeout:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
