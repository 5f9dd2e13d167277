//! Retry decisions with Envoy's semantics (spec §2.9), apart from the I/O: which
//! responses and failures are retriable under the conditions in force
//! ([`retriable_response`], [`retriable_failure`]), and the per-request state that
//! spends the retry count, takes the cluster's retry circuit breaker and draws the
//! jittered exponential back-off ([`RetryState::decide`]).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use weir_table::{ConnectionLimits, RetryOn, RetryPlan};

use crate::breaker::{Breakers, Permit};
use crate::dice;
use crate::failure::Failure;
use crate::stats::ClusterStats;

static X_ENVOY_RATELIMITED: http::HeaderName = http::HeaderName::from_static("x-envoy-ratelimited");
static X_ENVOY_OVERLOADED: http::HeaderName = http::HeaderName::from_static("x-envoy-overloaded");

/// Envoy's `wouldRetryFromHeaders`: the first matching condition decides. A response
/// an upstream proxy shed (`x-envoy-overloaded`) is never retried (spec §2.9).
pub(crate) fn retriable_response(plan: &RetryPlan<'_>, status: StatusCode, headers: &HeaderMap, grpc: bool) -> bool {
    let on = plan.retry_on;
    // No condition reads responses (Istio's default for a plain request): nothing to
    // look at.
    let reads_responses = on.any(RetryOn::RESPONSE) || (grpc && on.any(RetryOn::GRPC));
    if !reads_responses {
        return false;
    }
    if headers.contains_key(&X_ENVOY_OVERLOADED) {
        return false;
    }
    if headers.contains_key(&X_ENVOY_RATELIMITED) {
        return on.any(RetryOn::ENVOY_RATELIMITED);
    }
    let code = status.as_u16();
    if on.any(RetryOn::FIVE_XX) && (500..=599).contains(&code) {
        return true;
    }
    if on.any(RetryOn::GATEWAY_ERROR) && (502..=504).contains(&code) {
        return true;
    }
    if on.any(RetryOn::RETRIABLE_4XX) && code == 409 {
        return true;
    }
    if on.any(RetryOn::RETRIABLE_STATUS_CODES) && plan.retriable_code(code) {
        return true;
    }
    if on.any(RetryOn::RETRIABLE_HEADERS) && plan.header_names.iter().any(|n| headers.contains_key(n)) {
        return true;
    }
    if grpc && on.any(RetryOn::GRPC) {
        // Only a trailers-only response carries `grpc-status` in its headers.
        let status = headers.get("grpc-status").and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok());
        if let Some(s) = status
            && on.any(RetryOn::for_grpc_status(s))
        {
            return true;
        }
    }
    false
}

/// Envoy's `wouldRetryFromReset` (a per-try timeout is a local reset: retried under
/// `reset`, `5xx` and `gateway-error` only). Overflows are never retried.
pub(crate) fn retriable_failure(plan: &RetryPlan<'_>, failure: Failure) -> bool {
    let on = plan.retry_on;
    match failure {
        Failure::Overflow(_) | Failure::DownstreamBody | Failure::NoHealthyUpstream | Failure::Timeout => false,
        Failure::ConnectFailed { .. } if on.any(RetryOn::CONNECT_FAILURE) => true,
        // Nothing reached the upstream: a connect failure too.
        Failure::ConnectFailed { .. } | Failure::ConnectionTerminated { before_request: true }
            if on.any(RetryOn::RESET_BEFORE_REQUEST) =>
        {
            true
        }
        _ if on.any(RetryOn::RESET | RetryOn::FIVE_XX | RetryOn::GATEWAY_ERROR) => true,
        Failure::RemoteReset { refused: true } => on.any(RetryOn::REFUSED_STREAM),
        _ => false,
    }
}

/// Envoy's `JitteredExponentialBackOffStrategy`: the n-th back-off is uniform in
/// `[0, base × 2ⁿ⁻¹)`, the range doubling up to `max` and staying there.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Backoff { next: base.max(Duration::from_millis(1)), max: max.max(base) }
    }

    /// The next interval, drawn from `draw` (a uniform `u64`).
    pub(crate) fn next(&mut self, draw: u64) -> Duration {
        let range = self.next;
        self.next = if self.next < self.max / 2 { self.next * 2 } else { self.max };
        let ms = range.as_millis().max(1) as u64;
        Duration::from_millis(draw % ms)
    }
}

/// What happens after a try.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Retry after this back-off.
    Retry(Duration),
    /// Not retriable: the outcome stands.
    Final,
    /// Retriable, but no retry was left: the outcome stands with flag `URX`.
    LimitExceeded,
    /// Retriable, but the cluster's retry circuit breaker is full: flag `UO`.
    Overflow,
}

/// The retries of one request.
#[derive(Debug)]
pub(crate) struct RetryState<'p> {
    plan: Option<&'p RetryPlan<'p>>,
    remaining: u32,
    backoff: Backoff,
    /// The cluster's retry resource, held from a retry's scheduling until its outcome.
    permit: Option<Permit>,
    retried: bool,
}

impl<'p> RetryState<'p> {
    pub(crate) fn new(plan: Option<&'p RetryPlan<'p>>) -> Self {
        let (remaining, backoff) = match plan {
            Some(p) => (p.attempts, Backoff::new(p.backoff.0, p.backoff.1)),
            None => (0, Backoff::new(Duration::from_millis(25), Duration::from_millis(250))),
        };
        RetryState { plan, remaining, backoff, permit: None, retried: false }
    }

    /// The plan in force, if any.
    pub(crate) fn plan(&self) -> Option<&'p RetryPlan<'p>> {
        self.plan
    }

    /// True once some try was a retry.
    pub(crate) fn retried(&self) -> bool {
        self.retried
    }

    /// Envoy's `shouldRetry`, given whether the outcome would be retried: spends one
    /// retry, then takes the retry circuit breaker. `resendable`: the request can be
    /// sent again (its body did not outgrow the buffer).
    pub(crate) fn decide(
        &mut self,
        would_retry: bool,
        resendable: bool,
        breakers: &Arc<Breakers>,
        limits: &ConnectionLimits,
        stats: &ClusterStats,
    ) -> Verdict {
        let had_permit = self.permit.take().is_some();
        if !would_retry || !resendable {
            if had_permit {
                ClusterStats::inc(&stats.upstream_rq_retry_success);
            }
            return Verdict::Final;
        }
        if self.remaining == 0 {
            ClusterStats::inc(&stats.upstream_rq_retry_limit_exceeded);
            return Verdict::LimitExceeded;
        }
        self.remaining -= 1;
        match breakers.retry(limits) {
            Ok(p) => self.permit = Some(p),
            Err(_) => {
                ClusterStats::inc(&stats.upstream_rq_retry_overflow);
                return Verdict::Overflow;
            }
        }
        ClusterStats::inc(&stats.upstream_rq_retry);
        ClusterStats::inc(&stats.upstream_rq_retry_backoff_exponential);
        self.retried = true;
        Verdict::Retry(self.backoff.next(dice::roll()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn plan(on: RetryOn, codes: &'static [u16]) -> RetryPlan<'static> {
        RetryPlan {
            attempts: 2,
            retry_on: on,
            status_codes: codes,
            extra_status_codes: Vec::new(),
            header_names: Vec::new(),
            backoff: (Duration::from_millis(25), Duration::from_millis(250)),
            previous_hosts: true,
            host_selection_attempts: 5,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    fn status(c: u16) -> StatusCode {
        StatusCode::from_u16(c).unwrap()
    }

    #[test]
    fn response_conditions() {
        let none = HeaderMap::new();
        let p = plan(RetryOn::FIVE_XX, &[]);
        assert!(retriable_response(&p, status(500), &none, false));
        assert!(retriable_response(&p, status(503), &none, false));
        assert!(!retriable_response(&p, status(404), &none, false));
        let p = plan(RetryOn::GATEWAY_ERROR, &[]);
        assert!(!retriable_response(&p, status(500), &none, false));
        assert!(retriable_response(&p, status(504), &none, false));
        let p = plan(RetryOn::RETRIABLE_4XX, &[]);
        assert!(retriable_response(&p, status(409), &none, false));
        assert!(!retriable_response(&p, status(429), &none, false));
        let p = plan(RetryOn::RETRIABLE_STATUS_CODES, &[418]);
        assert!(retriable_response(&p, status(418), &none, false));
        assert!(!retriable_response(&p, status(503), &none, false));
        let mut p = plan(RetryOn::RETRIABLE_HEADERS, &[]);
        p.header_names.push(http::HeaderName::from_static("x-try-again"));
        assert!(retriable_response(&p, status(200), &headers(&[("x-try-again", "1")]), false));
        assert!(!retriable_response(&p, status(200), &none, false));
    }

    #[test]
    fn overloaded_responses_are_never_retried() {
        let shed = headers(&[("x-envoy-overloaded", "true")]);
        assert!(!retriable_response(&plan(RetryOn::FIVE_XX, &[]), status(503), &shed, false));
    }

    #[test]
    fn rate_limited_responses_retry_only_when_asked() {
        let limited = headers(&[("x-envoy-ratelimited", "true")]);
        assert!(!retriable_response(&plan(RetryOn::FIVE_XX, &[]), status(503), &limited, false));
        assert!(retriable_response(&plan(RetryOn::ENVOY_RATELIMITED, &[]), status(429), &limited, false));
    }

    #[test]
    fn grpc_conditions_read_trailers_only_responses() {
        let p = plan(RetryOn::GRPC_UNAVAILABLE | RetryOn::GRPC_CANCELLED, &[]);
        let unavailable = headers(&[("grpc-status", "14")]);
        assert!(retriable_response(&p, status(200), &unavailable, true));
        assert!(!retriable_response(&p, status(200), &unavailable, false), "not a gRPC request");
        assert!(!retriable_response(&p, status(200), &headers(&[("grpc-status", "13")]), true));
        assert!(!retriable_response(&p, status(200), &HeaderMap::new(), true), "status in trailers: too late");
    }

    #[test]
    fn failure_conditions() {
        let cf = plan(RetryOn::CONNECT_FAILURE | RetryOn::REFUSED_STREAM, &[]);
        assert!(retriable_failure(&cf, Failure::ConnectFailed { timeout: true }));
        assert!(retriable_failure(&cf, Failure::RemoteReset { refused: true }));
        assert!(!retriable_failure(&cf, Failure::RemoteReset { refused: false }));
        assert!(!retriable_failure(&cf, Failure::PerTryTimeout), "a per-try timeout is a local reset");
        assert!(!retriable_failure(&cf, Failure::ConnectionTerminated { before_request: true }));
        let rbr = plan(RetryOn::RESET_BEFORE_REQUEST, &[]);
        assert!(retriable_failure(&rbr, Failure::ConnectionTerminated { before_request: true }));
        assert!(retriable_failure(&rbr, Failure::ConnectFailed { timeout: false }), "nothing was sent");
        assert!(!retriable_failure(&rbr, Failure::ConnectionTerminated { before_request: false }));
        for on in [RetryOn::RESET, RetryOn::FIVE_XX, RetryOn::GATEWAY_ERROR] {
            let p = plan(on, &[]);
            assert!(retriable_failure(&p, Failure::PerTryTimeout));
            assert!(retriable_failure(&p, Failure::ConnectionTerminated { before_request: false }));
            assert!(retriable_failure(&p, Failure::ConnectFailed { timeout: false }));
            assert!(retriable_failure(&p, Failure::ProtocolError));
            assert!(!retriable_failure(&p, Failure::Overflow(crate::breaker::Overflow::Pending)), "never");
            assert!(!retriable_failure(&p, Failure::Timeout), "the route timeout ends the request");
        }
    }

    #[test]
    fn backoff_ranges_double_up_to_the_cap() {
        // Envoy: [0,25), [0,50), [0,100), [0,200), then [0,250) for a 25ms base.
        let mut b = Backoff::new(Duration::from_millis(25), Duration::from_millis(250));
        for range in [25u64, 50, 100, 200, 250, 250] {
            assert_eq!(b.clone().next(range - 1), Duration::from_millis(range - 1), "range {range}");
            assert_eq!(b.clone().next(range), Duration::ZERO, "range {range}");
            b.next(0);
        }
    }

    #[test]
    fn decisions_spend_retries_then_report_the_limit() {
        let b = Arc::new(Breakers::default());
        let stats = ClusterStats::default();
        let limits = ConnectionLimits::default();
        let p = plan(RetryOn::FIVE_XX, &[]);
        let mut st = RetryState::new(Some(&p));
        assert!(
            matches!(st.decide(true, true, &b, &limits, &stats), Verdict::Retry(d) if d < Duration::from_millis(25))
        );
        assert!(
            matches!(st.decide(true, true, &b, &limits, &stats), Verdict::Retry(d) if d < Duration::from_millis(50))
        );
        assert!(matches!(st.decide(true, true, &b, &limits, &stats), Verdict::LimitExceeded));
        assert!(matches!(st.decide(false, true, &b, &limits, &stats), Verdict::Final));
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((load(&stats.upstream_rq_retry), load(&stats.upstream_rq_retry_limit_exceeded)), (2, 1));
        // A body that outgrew the buffer ends the retries.
        let mut st = RetryState::new(Some(&p));
        assert!(matches!(st.decide(true, false, &b, &limits, &stats), Verdict::Final));
    }

    #[test]
    fn the_retry_breaker_overflows_and_is_held_until_the_outcome() {
        let b = Arc::new(Breakers::default());
        let stats = ClusterStats::default();
        let limits = ConnectionLimits { max_retries: 1, ..ConnectionLimits::default() };
        let p = plan(RetryOn::FIVE_XX, &[]);
        let (mut one, mut two) = (RetryState::new(Some(&p)), RetryState::new(Some(&p)));
        assert!(matches!(one.decide(true, true, &b, &limits, &stats), Verdict::Retry(_)));
        assert!(matches!(two.decide(true, true, &b, &limits, &stats), Verdict::Overflow));
        // The first retry succeeded: its permit is given back.
        assert!(matches!(one.decide(false, true, &b, &limits, &stats), Verdict::Final));
        assert_eq!(stats.upstream_rq_retry_success.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(matches!(two.decide(true, true, &b, &limits, &stats), Verdict::Retry(_)));
    }
}
