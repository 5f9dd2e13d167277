//! Per-cluster statistics under Envoy's names (`cluster.<name>.upstream_rq_retry`...),
//! served by `/stats` as Envoy's text and by `/stats/prometheus` as
//! `envoy_cluster_<stat>{cluster_name="..."}`, the form Istio's bootstrap gives them.
//!
//! Counters touched by every request are sharded per worker (one cache line each), so
//! two workers never contend for one; the rest change only on rare events (a new
//! connection, an overflow, a retry, an ejection).

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with one cache-line-sized slot per worker.
#[derive(Debug)]
pub(crate) struct Sharded(Box<[Slot]>);

#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

impl Sharded {
    pub(crate) fn new(workers: usize) -> Self {
        Sharded((0..workers.max(1)).map(|_| Slot::default()).collect())
    }

    pub(crate) fn inc(&self) {
        self.0[crate::workers::current() % self.0.len()].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Counters of one cluster (rare events), named as Envoy names them.
        #[derive(Debug, Default)]
        pub(crate) struct ClusterStats {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl ClusterStats {
            /// Every counter with its Envoy name.
            pub(crate) fn each(&self, mut f: impl FnMut(&'static str, u64)) {
                $(f(stringify!($name), self.$name.load(Ordering::Relaxed));)*
            }
        }
    };
}

counters! {
    upstream_cx_total,
    upstream_cx_connect_fail,
    upstream_cx_connect_timeout,
    upstream_cx_overflow,
    upstream_cx_idle_timeout,
    upstream_cx_max_requests,
    upstream_cx_max_duration_reached,
    upstream_rq_pending_total,
    upstream_rq_pending_overflow,
    upstream_rq_timeout,
    upstream_rq_per_try_timeout,
    upstream_rq_retry,
    upstream_rq_retry_success,
    upstream_rq_retry_overflow,
    upstream_rq_retry_limit_exceeded,
    upstream_rq_retry_backoff_exponential,
    upstream_rq_rx_reset,
    outlier_detection_ejections_total,
    outlier_detection_ejections_enforced_total,
    outlier_detection_ejections_overflow,
    outlier_detection_ejections_detected_consecutive_5xx,
    outlier_detection_ejections_enforced_consecutive_5xx,
    outlier_detection_ejections_detected_consecutive_gateway_failure,
    outlier_detection_ejections_enforced_consecutive_gateway_failure,
    outlier_detection_ejections_detected_consecutive_local_origin_failure,
    outlier_detection_ejections_enforced_consecutive_local_origin_failure,
}

impl ClusterStats {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The Envoy text name of a stat field (`outlier_detection_x` is `outlier_detection.x`).
pub(crate) fn envoy_name(field: &str) -> String {
    match field.strip_prefix("outlier_detection_") {
        Some(rest) => format!("outlier_detection.{rest}"),
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_counters_sum_over_workers() {
        let s = Sharded::new(3);
        for _ in 0..5 {
            s.inc();
        }
        let t = std::thread::spawn(move || {
            s.inc();
            s
        });
        assert_eq!(t.join().unwrap().get(), 6);
    }

    #[test]
    fn names_follow_envoy() {
        let st = ClusterStats::default();
        ClusterStats::inc(&st.upstream_rq_retry);
        let mut seen = Vec::new();
        st.each(|n, v| seen.push((envoy_name(n), v)));
        assert!(seen.contains(&("upstream_rq_retry".to_string(), 1)));
        assert!(seen.iter().any(|(n, _)| n == "outlier_detection.ejections_enforced_consecutive_5xx"));
    }
}
