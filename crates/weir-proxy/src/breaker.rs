//! Circuit breaking (spec §3.6): a cluster's resource counters, shared by every worker
//! of this weir instance, as Envoy's resource manager keeps them. A permit holds one
//! unit of a resource until it is dropped; when a resource is full the request fails
//! at once with 503 `UO` (`x-envoy-overloaded: true`), and is never retried.
//!
//! Where each limit is checked, as in Envoy:
//! - `max_requests`: when an attempt starts ([`Breakers::request`]).
//! - `max_pending_requests`: when an attempt finds no idle connection or free HTTP/2
//!   stream and has to wait for one, also while its new connection is being made.
//! - `max_connections`: before a pool opens a connection.
//! - `max_retries` (or the retry budget): when a retry is scheduled; the permit is held
//!   through the back-off and the retried try.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;
use weir_table::ConnectionLimits;

/// The counters of one cluster.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    /// Open upstream connections.
    pub(crate) connections: AtomicU32,
    /// Requests waiting for a connection or a stream.
    pub(crate) pending: AtomicU32,
    /// Requests in flight (maintained only when a limit or a retry budget needs it).
    pub(crate) requests: AtomicU32,
    /// Retries in flight.
    pub(crate) retries: AtomicU32,
    /// Woken when a connection of the cluster closes: capacity for a waiting request.
    pub(crate) capacity: Notify,
}

/// One unit of a resource, given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    breakers: Arc<Breakers>,
    which: Resource,
}

#[derive(Debug, Clone, Copy)]
enum Resource {
    Pending,
    Request,
    Retry,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let b = &self.breakers;
        match self.which {
            Resource::Pending => b.pending.fetch_sub(1, Ordering::AcqRel),
            Resource::Request => b.requests.fetch_sub(1, Ordering::AcqRel),
            Resource::Retry => b.retries.fetch_sub(1, Ordering::AcqRel),
        };
    }
}

/// Takes one unit of `counter` if it stays within `max` (`u32::MAX`: no limit).
pub(crate) fn try_take(counter: &AtomicU32, max: u32) -> bool {
    if max == u32::MAX {
        counter.fetch_add(1, Ordering::AcqRel);
        return true;
    }
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then(|| n + 1)).is_ok()
}

impl Breakers {
    fn permit(self: &Arc<Self>, which: Resource) -> Permit {
        Permit { breakers: self.clone(), which }
    }

    /// Admission of an attempt (`max_requests`). `None` inside: the request is not
    /// counted because nothing reads the count (no limit, no retry budget).
    pub(crate) fn request(self: &Arc<Self>, limits: &ConnectionLimits) -> Result<Option<Permit>, Overflow> {
        if limits.max_requests == u32::MAX && limits.retry_budget.is_none() {
            return Ok(None);
        }
        if try_take(&self.requests, limits.max_requests) {
            Ok(Some(self.permit(Resource::Request)))
        } else {
            Err(Overflow::Requests)
        }
    }

    /// A place in the queue of requests waiting for a connection.
    pub(crate) fn pending(self: &Arc<Self>, limits: &ConnectionLimits) -> Result<Permit, Overflow> {
        if try_take(&self.pending, limits.max_pending_requests) {
            Ok(self.permit(Resource::Pending))
        } else {
            Err(Overflow::Pending)
        }
    }

    /// Room for a retry: `max_retries`, or with a retry budget
    /// `max(min_concurrency, percent × (requests + pending))`.
    pub(crate) fn retry(self: &Arc<Self>, limits: &ConnectionLimits) -> Result<Permit, Overflow> {
        let max = match &limits.retry_budget {
            None => limits.max_retries,
            Some(b) => {
                let active = self.requests.load(Ordering::Acquire) + self.pending.load(Ordering::Acquire);
                ((f64::from(active) * b.percent / 100.0) as u32).max(b.min_concurrency)
            }
        };
        if try_take(&self.retries, max) { Ok(self.permit(Resource::Retry)) } else { Err(Overflow::Retries) }
    }

    /// Reserves a connection slot (`max_connections`); given back with
    /// [`Breakers::release_connection`] when that connection closes.
    pub(crate) fn reserve_connection(&self, limits: &ConnectionLimits) -> bool {
        try_take(&self.connections, limits.max_connections)
    }

    /// A slot taken past the limit (a pool that has no connection at all always opens
    /// one, as Envoy's pools do, so a request never waits for a connection that only
    /// another endpoint could give back).
    pub(crate) fn force_connection(&self) {
        self.connections.fetch_add(1, Ordering::AcqRel);
    }

    /// A connection closed.
    pub(crate) fn release_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
        self.capacity.notify_waiters();
    }
}

/// Which limit was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// `http2MaxRequests`.
    Requests,
    /// `http1MaxPendingRequests`.
    Pending,
    /// `maxRetries` or the retry budget.
    Retries,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut ConnectionLimits)) -> ConnectionLimits {
        let mut l = ConnectionLimits::default();
        f(&mut l);
        l
    }

    #[test]
    fn permits_count_until_dropped() {
        let b = Arc::new(Breakers::default());
        let l = limits(|l| l.max_pending_requests = 1);
        let p = b.pending(&l).unwrap();
        assert_eq!(b.pending(&l).unwrap_err(), Overflow::Pending);
        drop(p);
        assert!(b.pending(&l).is_ok());
        assert_eq!(b.pending.load(Ordering::Relaxed), 0, "the permit above was dropped at once");
    }

    #[test]
    fn requests_are_not_counted_without_a_reason() {
        let b = Arc::new(Breakers::default());
        assert!(b.request(&ConnectionLimits::default()).unwrap().is_none());
        assert_eq!(b.requests.load(Ordering::Relaxed), 0);
        let l = limits(|l| l.max_requests = 2);
        let (a, c) = (b.request(&l).unwrap(), b.request(&l).unwrap());
        assert!(a.is_some() && c.is_some());
        assert_eq!(b.request(&l).unwrap_err(), Overflow::Requests);
    }

    #[test]
    fn retry_budget_scales_with_requests_in_flight() {
        let b = Arc::new(Breakers::default());
        let l = limits(|l| l.retry_budget = Some(weir_table::RetryBudget { percent: 50.0, min_concurrency: 1 }));
        let held: Vec<_> = (0..6).map(|_| b.request(&l).unwrap()).collect();
        // 50% of 6 in flight: three retries at once.
        let r: Vec<_> = (0..3).map(|_| b.retry(&l).unwrap()).collect();
        assert_eq!(b.retry(&l).unwrap_err(), Overflow::Retries);
        drop((held, r));
        // Nothing in flight: the minimum still allows one.
        let one = b.retry(&l).unwrap();
        assert!(b.retry(&l).is_err());
        drop(one);
    }

    #[test]
    fn connections_stop_at_the_limit() {
        let b = Breakers::default();
        let l = limits(|l| l.max_connections = 1);
        assert!(b.reserve_connection(&l));
        assert!(!b.reserve_connection(&l));
        b.force_connection();
        assert_eq!(b.connections.load(Ordering::Relaxed), 2);
        b.release_connection();
        b.release_connection();
        assert!(b.reserve_connection(&l));
    }
}
