//! Outlier detection (spec §3.7) with Envoy's semantics: consecutive errors counted per
//! host eject it at once, if the cluster's `maxEjectionPercent` allows; an ejected host
//! gets no traffic until the interval sweep finds its ejection time (base × times
//! ejected, capped at `max(300s, base)`) has passed; hosts that stay healthy for an
//! interval after returning earn the multiplier back, one step per interval.
//!
//! The state machine ([`HostState`], [`may_eject`]) is pure and takes the time as an
//! argument, so it is tested without sleeping. Per-host state lives with the endpoint,
//! which a reload keeps when the endpoint stays: ejections survive reloads.

use std::time::{Duration, Instant};

use weir_table::OutlierPolicy;

/// What one try told about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The upstream answered with this status (for gRPC, `grpc-status` mapped to HTTP).
    Status(u16),
    /// A connection was made (resets the local-origin count when errors are split).
    Connected,
    /// The connection could not be made, or broke before a response (Envoy reports both
    /// as `LocalOriginConnectFailed`: a 503 when errors are not split).
    ConnectFailed,
    /// The try timed out (`LocalOriginTimeout`: a 504 when errors are not split).
    Timeout,
}

/// Why a host is ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ejection {
    /// `consecutive5xxErrors`.
    Consecutive5xx,
    /// `consecutiveGatewayErrors`.
    ConsecutiveGateway,
    /// `consecutiveLocalOriginFailures`.
    ConsecutiveLocalOrigin,
}

/// Envoy's cap on the ejection time multiplier: at most `max(300s, base)`.
const MAX_EJECTION: Duration = Duration::from_secs(300);

/// One host's outlier state.
#[derive(Debug, Default, Clone)]
pub(crate) struct HostState {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    consecutive_local: u32,
    /// When the current ejection began (`None`: not ejected).
    pub(crate) ejected_at: Option<Instant>,
    /// Multiplier of the base ejection time for the next ejection.
    pub(crate) multiplier: u32,
    last_unejected: Option<Instant>,
    /// Ejections so far.
    pub(crate) times_ejected: u64,
}

fn max_ejection(policy: &OutlierPolicy) -> Duration {
    MAX_EJECTION.max(policy.base_ejection_time)
}

impl HostState {
    /// Counts a result; returns the ejection it triggers, if any. A threshold fires
    /// when the count reaches it exactly, as Envoy's `==` does.
    pub(crate) fn record(&mut self, policy: &OutlierPolicy, outcome: Outcome) -> Option<Ejection> {
        if self.ejected_at.is_some() {
            // Results from tries that were in flight when the host was ejected.
            return None;
        }
        let code = match (outcome, policy.split_local_origin) {
            (Outcome::Status(c), _) => c,
            (Outcome::Connected, true) => {
                self.consecutive_local = 0;
                return None;
            }
            (Outcome::Connected, false) => return None,
            (Outcome::ConnectFailed | Outcome::Timeout, true) => {
                self.consecutive_local += 1;
                let fire = policy.consecutive_local_origin_failures == Some(self.consecutive_local);
                return fire.then(|| {
                    self.consecutive_local = 0;
                    Ejection::ConsecutiveLocalOrigin
                });
            }
            (Outcome::ConnectFailed, false) => 503,
            (Outcome::Timeout, false) => 504,
        };
        let error = if policy.error_codes.is_empty() {
            (500..=599).contains(&code)
        } else {
            policy.error_codes.contains(&code)
        };
        if !error {
            self.consecutive_5xx = 0;
            self.consecutive_gateway = 0;
            return None;
        }
        let mut fired = None;
        if (502..=504).contains(&code) {
            self.consecutive_gateway += 1;
            if policy.consecutive_gateway_errors == Some(self.consecutive_gateway) {
                self.consecutive_gateway = 0;
                fired = Some(Ejection::ConsecutiveGateway);
            }
        } else {
            self.consecutive_gateway = 0;
        }
        self.consecutive_5xx += 1;
        if policy.consecutive_5xx == Some(self.consecutive_5xx) {
            self.consecutive_5xx = 0;
            fired = fired.or(Some(Ejection::Consecutive5xx));
        }
        fired
    }

    /// Ejects the host at `now`.
    pub(crate) fn eject(&mut self, policy: &OutlierPolicy, now: Instant) {
        self.ejected_at = Some(now);
        self.times_ejected += 1;
        let base = policy.base_ejection_time;
        if base.saturating_mul(self.multiplier) < max_ejection(policy) + base {
            self.multiplier += 1;
        }
    }

    /// When the current ejection ends (not before the sweep that notices).
    pub(crate) fn ejected_until(&self, policy: &OutlierPolicy) -> Option<Instant> {
        let at = self.ejected_at?;
        Some(at + policy.base_ejection_time.saturating_mul(self.multiplier.max(1)).min(max_ejection(policy)))
    }

    /// The interval sweep: returns true when the host comes back now. A host that is
    /// healthy, and came back at least an interval ago, earns one step of its
    /// multiplier back.
    pub(crate) fn sweep(&mut self, policy: &OutlierPolicy, now: Instant) -> bool {
        match self.ejected_until(policy) {
            Some(until) if until <= now => {
                self.ejected_at = None;
                self.last_unejected = Some(now);
                self.consecutive_5xx = 0;
                self.consecutive_gateway = 0;
                self.consecutive_local = 0;
                true
            }
            Some(_) => false,
            None => {
                if self.last_unejected.is_some_and(|t| now.saturating_duration_since(t) >= policy.interval) {
                    self.multiplier = self.multiplier.saturating_sub(1);
                }
                false
            }
        }
    }
}

/// Envoy's `ejectHost` check: one more ejection may bring the ejected share up to
/// `max_percent` of the cluster's hosts, not past it.
pub(crate) fn may_eject(ejected: usize, hosts: usize, max_percent: u32) -> bool {
    hosts > 0 && 100.0 * (ejected + 1) as f64 / hosts as f64 <= f64::from(max_percent)
}

/// The share of hosts below which the balancer ignores ejections (panic mode).
pub(crate) fn in_panic(healthy: usize, hosts: usize, min_health_percent: u32) -> bool {
    min_health_percent > 0 && hosts > 0 && (100.0 * healthy as f64 / hosts as f64) < f64::from(min_health_percent)
}

/// Envoy's gRPC-to-HTTP status mapping, for outlier detection of gRPC responses.
pub(crate) fn grpc_to_http(status: u16) -> u16 {
    match status {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_5xx: Some(3),
            consecutive_gateway_errors: None,
            split_local_origin: false,
            consecutive_local_origin_failures: None,
            error_codes: Box::new([]),
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 100,
            min_health_percent: 0,
        }
    }

    #[test]
    fn consecutive_errors_eject_and_successes_reset_the_count() {
        let p = policy();
        let mut h = HostState::default();
        assert_eq!(h.record(&p, Outcome::Status(500)), None);
        assert_eq!(h.record(&p, Outcome::Status(503)), None);
        assert_eq!(h.record(&p, Outcome::Status(200)), None, "a success resets");
        assert_eq!(h.record(&p, Outcome::Status(500)), None);
        assert_eq!(h.record(&p, Outcome::Status(404)), None, "4xx is not an error");
        assert_eq!(h.record(&p, Outcome::Status(500)), None);
        assert_eq!(h.record(&p, Outcome::ConnectFailed), None, "a connect failure is a 503");
        assert_eq!(h.record(&p, Outcome::Timeout), Some(Ejection::Consecutive5xx), "a timeout is a 504");
    }

    #[test]
    fn gateway_errors_have_their_own_threshold() {
        let p = OutlierPolicy { consecutive_5xx: None, consecutive_gateway_errors: Some(2), ..policy() };
        let mut h = HostState::default();
        assert_eq!(h.record(&p, Outcome::Status(502)), None);
        assert_eq!(h.record(&p, Outcome::Status(500)), None, "a 500 breaks the gateway run");
        assert_eq!(h.record(&p, Outcome::Status(503)), None);
        assert_eq!(h.record(&p, Outcome::Status(504)), Some(Ejection::ConsecutiveGateway));
    }

    #[test]
    fn split_local_origin_failures_count_apart() {
        let p = OutlierPolicy { split_local_origin: true, consecutive_local_origin_failures: Some(2), ..policy() };
        let mut h = HostState::default();
        assert_eq!(h.record(&p, Outcome::ConnectFailed), None);
        assert_eq!(h.record(&p, Outcome::Connected), None, "a connection resets the local count");
        assert_eq!(h.record(&p, Outcome::Timeout), None);
        assert_eq!(h.record(&p, Outcome::Status(500)), None, "responses count on their own");
        assert_eq!(h.record(&p, Outcome::ConnectFailed), Some(Ejection::ConsecutiveLocalOrigin));
    }

    #[test]
    fn custom_error_codes_replace_5xx() {
        let p = OutlierPolicy { consecutive_5xx: Some(2), error_codes: vec![429].into(), ..policy() };
        let mut h = HostState::default();
        assert_eq!(h.record(&p, Outcome::Status(500)), None);
        assert_eq!(h.record(&p, Outcome::Status(429)), None);
        assert_eq!(h.record(&p, Outcome::Status(429)), Some(Ejection::Consecutive5xx));
    }

    #[test]
    fn ejection_time_grows_with_each_ejection_and_decays_when_healthy() {
        let p = policy();
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut h = HostState::default();
        h.eject(&p, t0);
        assert_eq!(h.ejected_until(&p), Some(s(30)));
        assert!(!h.sweep(&p, s(20)));
        assert!(h.sweep(&p, s(30)), "back once the base time has passed");
        assert_eq!(h.ejected_until(&p), None);
        // Ejected again soon: twice the base.
        h.eject(&p, s(35));
        assert_eq!(h.ejected_until(&p), Some(s(95)));
        assert!(h.sweep(&p, s(95)));
        // Healthy for an interval after returning: the multiplier steps down.
        assert!(!h.sweep(&p, s(100)));
        assert_eq!(h.multiplier, 2);
        assert!(!h.sweep(&p, s(105)));
        assert_eq!(h.multiplier, 1);
        h.eject(&p, s(200));
        assert_eq!(h.ejected_until(&p), Some(s(260)), "multiplier 1 + this ejection = 2 x base");
        assert_eq!(h.times_ejected, 3);
    }

    #[test]
    fn ejection_time_is_capped() {
        let p = policy();
        let t0 = Instant::now();
        let mut h = HostState::default();
        for i in 0..20 {
            h.eject(&p, t0);
            h.ejected_at = None;
            assert!(h.multiplier <= 11, "round {i}: {}", h.multiplier);
        }
        h.eject(&p, t0);
        assert_eq!(h.ejected_until(&p), Some(t0 + Duration::from_secs(300)));
    }

    #[test]
    fn a_host_already_ejected_counts_nothing() {
        let p = policy();
        let mut h = HostState::default();
        h.eject(&p, Instant::now());
        for _ in 0..5 {
            assert_eq!(h.record(&p, Outcome::Status(500)), None);
        }
    }

    #[test]
    fn max_ejection_percent_as_envoy_computes_it() {
        // Two hosts, Envoy's default 10%: even the first ejection would make 50%.
        assert!(!may_eject(0, 2, 10));
        assert!(may_eject(0, 2, 50));
        assert!(!may_eject(1, 2, 50));
        assert!(may_eject(1, 2, 100));
        assert!(may_eject(0, 3, 34));
        assert!(!may_eject(1, 3, 34));
        assert!(!may_eject(0, 0, 100));
    }

    #[test]
    fn panic_mode_only_with_a_threshold() {
        assert!(!in_panic(0, 4, 0), "Istio's default: never");
        assert!(in_panic(1, 4, 30));
        assert!(!in_panic(2, 4, 30));
    }
}
