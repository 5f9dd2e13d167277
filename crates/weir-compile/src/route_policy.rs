//! The policies a forwarding route carries: retries (with Istio's defaults, spec §2.9),
//! fault injection (§2.10) and CORS.

use http::{HeaderValue, StatusCode};
use weir_model::types::{CorsPolicy, HttpRoute, UnmatchedPreflights};
use weir_table::{AbortStatus, FaultAbort, FaultDelay, FaultPolicy, RetryOn, RetryPolicy, Share};

use crate::routes::str_match;

/// Istio's default conditions (1.24+: 503 is no longer retried by default).
fn default_on() -> RetryOn {
    RetryOn::CONNECT_FAILURE
        | RetryOn::REFUSED_STREAM
        | RetryOn::GRPC_UNAVAILABLE
        | RetryOn::GRPC_CANCELLED
        | RetryOn::RETRIABLE_STATUS_CODES
}

/// Istio's built-in policy for a route without `retries` (and for default routes):
/// 2 retries, the default conditions, no status codes, 25ms back-off, other hosts.
pub(crate) fn default_retry() -> RetryPolicy {
    RetryPolicy::with_defaults(2, default_on())
}

/// The retry policy in effect (Istio's `ConvertPolicy`): absent = the default;
/// `attempts <= 0` = none; otherwise the default with `attempts` retries, where a
/// non-empty `retryOn` replaces the conditions: integers that are HTTP status codes
/// become retriable status codes (adding `retriable-status-codes`), other tokens
/// conditions.
pub(crate) fn retry_policy(route: &HttpRoute) -> Option<RetryPolicy> {
    let Some(r) = &route.retries else { return Some(default_retry()) };
    if r.attempts <= 0 {
        return None;
    }
    let mut p = RetryPolicy::with_defaults(r.attempts as u32, default_on());
    if !r.retry_on.trim().is_empty() {
        let (mut on, mut codes) = (RetryOn::NONE, Vec::new());
        for tok in r.retry_on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let status = tok
                .parse::<u16>()
                .ok()
                .filter(|c| StatusCode::from_u16(*c).ok().and_then(|s| s.canonical_reason()).is_some());
            match status {
                Some(code) => codes.push(code),
                None => on |= RetryOn::from_token(tok).unwrap_or(RetryOn::NONE),
            }
        }
        if !codes.is_empty() {
            on |= RetryOn::RETRIABLE_STATUS_CODES;
        }
        codes.sort_unstable();
        codes.dedup();
        p.retry_on = on;
        p.retriable_status_codes = codes.into();
    }
    p.per_try_timeout = r.per_try_timeout.map(|d| d.to_std()).filter(|d| !d.is_zero());
    if let Some(b) = r.backoff.map(|d| d.to_std()).filter(|d| !d.is_zero()) {
        p.backoff_base = b;
        p.backoff_max = b.saturating_mul(10);
    }
    p.previous_hosts = r.retry_ignore_previous_hosts.unwrap_or(true);
    Some(p)
}

/// Istio's `translateFault`: a fixed delay on its share (`percentage`, else the
/// deprecated integer `percent`, else none), an abort with an HTTP status or a gRPC
/// status by name on its share (absent = none). No delay and no abort: no fault.
pub(crate) fn fault(route: &HttpRoute) -> Option<FaultPolicy> {
    let f = route.fault.as_ref()?;
    let delay = f.delay.as_ref().and_then(|d| {
        Some(FaultDelay { duration: d.fixed_delay?.to_std(), share: Share::percent(d.effective_percentage()) })
    });
    let abort = f.abort.as_ref().and_then(|a| {
        let status = match (a.http_status, a.grpc_status.as_deref()) {
            (Some(code), _) => AbortStatus::Http(u16::try_from(code).ok()?),
            (None, Some(name)) => AbortStatus::Grpc(grpc_code(name)?),
            (None, None) => return None,
        };
        Some(FaultAbort { status, share: Share::percent(a.effective_percentage()) })
    });
    (delay.is_some() || abort.is_some()).then_some(FaultPolicy { delay, abort })
}

/// A gRPC status name (`UNAVAILABLE`) as its code.
fn grpc_code(name: &str) -> Option<u16> {
    weir_model::validate::GRPC_STATUSES.iter().position(|n| *n == name).map(|i| i as u16)
}

pub(crate) fn cors(c: &CorsPolicy) -> weir_table::CorsPolicy {
    let join = |l: &[String]| (!l.is_empty()).then(|| HeaderValue::from_str(&l.join(",")).ok()).flatten();
    weir_table::CorsPolicy {
        allow_origins: c.effective_origins().iter().filter_map(|o| str_match(o).ok()).collect(),
        allow_methods: join(&c.allow_methods),
        allow_headers: join(&c.allow_headers),
        expose_headers: join(&c.expose_headers),
        max_age: c.max_age.map(|d| HeaderValue::from(d.to_std().as_secs())),
        allow_credentials: c.allow_credentials,
        forward_unmatched_preflights: c.unmatched_preflights != Some(UnmatchedPreflights::Ignore),
    }
}
