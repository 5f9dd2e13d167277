//! The policies a forwarding route carries for later stages: retries (with Istio's
//! defaults), fault injection and CORS.

use std::time::Duration;

use http::HeaderValue;
use weir_model::types::{CorsPolicy, HttpRoute, UnmatchedPreflights};
use weir_table::{FaultAbort, FaultPolicy, RetryPolicy};

use crate::routes::str_match;

/// Istio's default `retryOn` (1.24+: 503 is no longer retried by default).
const DEFAULT_RETRY_ON: [&str; 5] =
    ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"];

/// Istio's built-in policy for a route without `retries` (and for default routes):
/// 2 retries, the default conditions, no status codes, 25ms back-off, other hosts.
pub(crate) fn default_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        per_try_timeout: None,
        retry_on: DEFAULT_RETRY_ON.iter().map(|s| (*s).into()).collect(),
        retriable_status_codes: Box::new([]),
        backoff: Duration::from_millis(25),
        retry_other_hosts: true,
    }
}

/// The retry policy in effect (spec §2.9): absent = Istio's default (2 retries on
/// connect-failure, refused-stream, unavailable, cancelled, retriable-status-codes);
/// `attempts <= 0` = none.
pub(crate) fn retry_policy(route: &HttpRoute) -> Option<RetryPolicy> {
    const DEFAULT_ON: [&str; 5] =
        ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"];
    let Some(r) = &route.retries else {
        return Some(RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: DEFAULT_ON.iter().map(|s| (*s).into()).collect(),
            retriable_status_codes: Box::new([]),
            backoff: Duration::from_millis(25),
            retry_other_hosts: true,
        });
    };
    if r.attempts <= 0 {
        return None;
    }
    let (mut on, mut codes): (Vec<Box<str>>, Vec<u16>) = (Vec::new(), Vec::new());
    if r.retry_on.is_empty() {
        on = DEFAULT_RETRY_ON.iter().map(|s| (*s).into()).collect();
    } else {
        for tok in r.retry_on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match tok.parse::<u16>() {
                Ok(code) => codes.push(code),
                Err(_) => on.push(tok.into()),
            }
        }
        if !codes.is_empty() && !on.iter().any(|t| &**t == "retriable-status-codes") {
            on.push("retriable-status-codes".into());
        }
    }
    Some(RetryPolicy {
        attempts: r.attempts as u32,
        per_try_timeout: r.per_try_timeout.map(|d| d.to_std()),
        retry_on: on.into(),
        retriable_status_codes: codes.into(),
        backoff: r.backoff.map(|d| d.to_std()).unwrap_or(Duration::from_millis(25)),
        retry_other_hosts: r.retry_ignore_previous_hosts.unwrap_or(true),
    })
}

pub(crate) fn fault(route: &HttpRoute) -> Option<FaultPolicy> {
    let f = route.fault.as_ref()?;
    let delay = f.delay.as_ref().and_then(|d| Some((d.fixed_delay?.to_std(), d.effective_percentage())));
    let abort = f.abort.as_ref().and_then(|a| {
        let kind = if let Some(s) = a.http_status {
            FaultAbort::Http(s as u16)
        } else {
            FaultAbort::Grpc(grpc_code(a.grpc_status.as_deref()?)?)
        };
        Some((kind, a.effective_percentage()))
    });
    Some(FaultPolicy { delay, abort })
}

fn grpc_code(name: &str) -> Option<u32> {
    weir_model::validate::GRPC_STATUSES.iter().position(|n| *n == name).map(|i| i as u32)
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
