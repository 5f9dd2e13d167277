//! The timers of a forwarded request, started where Envoy's router starts them: the
//! route (global) timeout when the router has the whole request (after the client sent
//! it, and after any injected delay), covering every try, the back-offs and the
//! response body; a per-try timeout when the try has its connection (and the request
//! is whole), covering the wait for the response head.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::body::{Completion, Finished};

/// When the client finished sending the request, and how many body bytes it sent. A
/// request without a body (most of them) is complete when it arrives and costs no
/// allocation.
#[derive(Debug, Clone)]
pub(crate) enum RequestEnd {
    /// Complete at this instant, with no body.
    Complete(Instant),
    /// A body is still coming (or came).
    Streaming(Arc<EndState>),
}

#[derive(Debug, Default)]
pub(crate) struct EndState {
    at: OnceLock<Instant>,
    bytes: AtomicU64,
    ended: Notify,
}

impl RequestEnd {
    /// A request that is complete already (it has no body).
    pub(crate) fn complete(at: Instant) -> Self {
        RequestEnd::Complete(at)
    }

    /// A request whose body is still coming; [`RequestEnd::completion`] goes on the body.
    pub(crate) fn streaming() -> Self {
        RequestEnd::Streaming(Arc::new(EndState::default()))
    }

    /// What the request body runs when it ends (or is dropped).
    pub(crate) fn completion(&self) -> Box<dyn Completion> {
        Box::new(self.clone())
    }

    /// Body bytes received so far (final once the body ended).
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            RequestEnd::Complete(_) => 0,
            RequestEnd::Streaming(s) => s.bytes.load(Ordering::Relaxed),
        }
    }

    /// Waits until the request is complete; returns when it completed.
    pub(crate) async fn wait(&self) -> Instant {
        let s = match self {
            RequestEnd::Complete(at) => return *at,
            RequestEnd::Streaming(s) => s,
        };
        loop {
            let notified = s.ended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = s.at.get() {
                return *at;
            }
            notified.await;
        }
    }
}

impl Completion for RequestEnd {
    fn finish(self: Box<Self>, how: Finished) {
        if let RequestEnd::Streaming(s) = *self {
            s.bytes.store(how.bytes, Ordering::Relaxed);
            let _ = s.at.set(Instant::now());
            s.ended.notify_waiters();
        }
    }
}

/// Completes when the global timeout has run out: `timeout` after the request is
/// complete, counted from no earlier than `router_start`.
pub(crate) async fn global(end: RequestEnd, timeout: Duration, router_start: Instant) {
    let at = end.wait().await.max(router_start);
    tokio::time::sleep_until(at + timeout).await;
}

/// Completes when a try's timeout has run out: `timeout` after the later of now (the
/// try has its connection) and the request being complete.
pub(crate) async fn per_try(end: &RequestEnd, timeout: Duration) {
    let started = Instant::now();
    let at = end.wait().await.max(started);
    tokio::time::sleep_until(at + timeout).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_global_timer_starts_when_the_request_is_complete() {
        let end = RequestEnd::streaming();
        let t0 = Instant::now();
        let timer = tokio::spawn(global(end.clone(), Duration::from_secs(1), t0));
        // The client takes 5 s to send its body: the timer has not started yet.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!timer.is_finished());
        end.completion().finish(Finished { bytes: 10, complete: true, ..Finished::default() });
        timer.await.unwrap();
        assert!(t0.elapsed() >= Duration::from_secs(6));
        assert_eq!(end.bytes(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_timer_starts_no_earlier_than_the_router() {
        // A bodiless request, complete on arrival, then delayed 3 s by a fault.
        let end = RequestEnd::complete(Instant::now());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let router_start = Instant::now();
        global(end, Duration::from_secs(1), router_start).await;
        assert_eq!(router_start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_per_try_timer_starts_at_the_try_when_the_request_is_complete() {
        let end = RequestEnd::complete(Instant::now());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let t0 = Instant::now();
        per_try(&end, Duration::from_millis(500)).await;
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(1), "{took:?}");
    }
}
