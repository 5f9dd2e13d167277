//! A future raced against an optional limit (a timeout), without an extra copy of the
//! future in the caller's state: `tokio::select!` over a future passed in by value
//! keeps it twice (the argument and the select's own slot), and these futures are the
//! largest of the request path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// `main`, unless `limit` completes first.
    pub(crate) struct Limited<M, L> {
        #[pin]
        main: M,
        #[pin]
        limit: Option<L>,
    }
}

/// The limit completed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired;

/// Races `main` against `limit` (none: `main` alone); `main` is polled first.
pub(crate) fn limited<M: Future, L: Future<Output = ()>>(main: M, limit: Option<L>) -> Limited<M, L> {
    Limited { main, limit }
}

impl<M: Future, L: Future<Output = ()>> Future for Limited<M, L> {
    type Output = Result<M::Output, Expired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.main.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.limit.as_pin_mut().map(|l| l.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Expired)),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_first_to_finish_wins() {
        let fast = limited(async { 1 }, Some(tokio::time::sleep(Duration::from_secs(1))));
        assert_eq!(fast.await, Ok(1));
        let slow =
            limited(tokio::time::sleep(Duration::from_secs(5)), Some(tokio::time::sleep(Duration::from_secs(1))));
        assert_eq!(slow.await, Err(Expired));
        let unlimited = limited(tokio::time::sleep(Duration::from_secs(5)), None::<std::future::Ready<()>>);
        assert_eq!(unlimited.await, Ok(()));
    }
}
