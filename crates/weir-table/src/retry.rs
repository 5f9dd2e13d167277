//! The retry policy a route carries (spec §2.9), compiled: `retryOn` is a bit set and a
//! list of status codes, so deciding a retry never compares strings.

use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeSeq;

/// Envoy's retry conditions (`retryOn` / `x-envoy-retry-on` tokens) as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RetryOn(u32);

macro_rules! conditions {
    ($($name:ident = $bit:expr, $token:expr;)*) => {
        impl RetryOn {
            $(
                #[doc = concat!("`", $token, "`")]
                pub const $name: RetryOn = RetryOn(1 << $bit);
            )*
            /// Every condition with its token, in Envoy's documentation order.
            pub const TOKENS: &'static [(RetryOn, &'static str)] = &[$((RetryOn::$name, $token)),*];
        }
    };
}

conditions! {
    FIVE_XX = 0, "5xx";
    GATEWAY_ERROR = 1, "gateway-error";
    RESET = 2, "reset";
    RESET_BEFORE_REQUEST = 3, "reset-before-request";
    CONNECT_FAILURE = 4, "connect-failure";
    ENVOY_RATELIMITED = 5, "envoy-ratelimited";
    RETRIABLE_4XX = 6, "retriable-4xx";
    REFUSED_STREAM = 7, "refused-stream";
    RETRIABLE_STATUS_CODES = 8, "retriable-status-codes";
    RETRIABLE_HEADERS = 9, "retriable-headers";
    HTTP3_POST_CONNECT_FAILURE = 10, "http3-post-connect-failure";
    GRPC_CANCELLED = 11, "cancelled";
    GRPC_DEADLINE_EXCEEDED = 12, "deadline-exceeded";
    GRPC_INTERNAL = 13, "internal";
    GRPC_RESOURCE_EXHAUSTED = 14, "resource-exhausted";
    GRPC_UNAVAILABLE = 15, "unavailable";
}

impl RetryOn {
    /// No condition.
    pub const NONE: RetryOn = RetryOn(0);
    /// The conditions read from a response's status line and headers.
    pub const RESPONSE: RetryOn = RetryOn(
        RetryOn::FIVE_XX.0
            | RetryOn::GATEWAY_ERROR.0
            | RetryOn::ENVOY_RATELIMITED.0
            | RetryOn::RETRIABLE_4XX.0
            | RetryOn::RETRIABLE_STATUS_CODES.0
            | RetryOn::RETRIABLE_HEADERS.0,
    );
    /// The gRPC conditions (read from `grpc-status` in response headers).
    pub const GRPC: RetryOn = RetryOn(
        RetryOn::GRPC_CANCELLED.0
            | RetryOn::GRPC_DEADLINE_EXCEEDED.0
            | RetryOn::GRPC_INTERNAL.0
            | RetryOn::GRPC_RESOURCE_EXHAUSTED.0
            | RetryOn::GRPC_UNAVAILABLE.0,
    );

    /// The condition a token names (`retryOn` is validated before it gets here; an
    /// unknown token names nothing).
    pub fn from_token(token: &str) -> Option<RetryOn> {
        RetryOn::TOKENS.iter().find(|(_, t)| *t == token).map(|(c, _)| *c)
    }

    /// The conditions of a comma-separated list, ignoring unknown tokens (the
    /// `x-envoy-retry-on` request header, which Envoy also reads leniently).
    pub fn parse_list(list: &str) -> RetryOn {
        list.split(',').filter_map(|t| RetryOn::from_token(t.trim())).fold(RetryOn::NONE, |a, c| a | c)
    }

    /// True when any of `other` is set.
    pub fn any(self, other: RetryOn) -> bool {
        self.0 & other.0 != 0
    }

    /// These conditions without `other`.
    pub fn without(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 & !other.0)
    }

    /// True when nothing is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The gRPC condition for a `grpc-status` code, if there is one.
    pub fn for_grpc_status(code: u16) -> RetryOn {
        match code {
            1 => RetryOn::GRPC_CANCELLED,
            4 => RetryOn::GRPC_DEADLINE_EXCEEDED,
            8 => RetryOn::GRPC_RESOURCE_EXHAUSTED,
            13 => RetryOn::GRPC_INTERNAL,
            14 => RetryOn::GRPC_UNAVAILABLE,
            _ => RetryOn::NONE,
        }
    }

    /// True when some condition can fire after the request reached the upstream (a
    /// response, a reset, a per-try timeout), so the request has to be kept to be sent
    /// again. Connection failures and resets before the request was written hand the
    /// request back untouched and need no copy. Call it on the conditions in effect:
    /// `retriable-status-codes` without codes and `retriable-headers` without names
    /// never fire (see [`crate::plan::RetryPlan`]).
    pub fn needs_replay(self, grpc: bool, h2_upstream: bool) -> bool {
        self.any(RetryOn::RESPONSE | RetryOn::RESET | RetryOn::FIVE_XX | RetryOn::GATEWAY_ERROR)
            || (grpc && self.any(RetryOn::GRPC))
            || (h2_upstream && self.any(RetryOn::REFUSED_STREAM))
    }

    /// The tokens set, in Envoy's order.
    pub fn tokens(self) -> impl Iterator<Item = &'static str> {
        RetryOn::TOKENS.iter().filter(move |(c, _)| self.any(*c)).map(|(_, t)| *t)
    }
}

impl std::ops::BitOr for RetryOn {
    type Output = RetryOn;
    fn bitor(self, rhs: RetryOn) -> RetryOn {
        RetryOn(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for RetryOn {
    fn bitor_assign(&mut self, rhs: RetryOn) {
        self.0 |= rhs.0;
    }
}

impl Serialize for RetryOn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for t in self.tokens() {
            seq.serialize_element(t)?;
        }
        seq.end()
    }
}

/// A route's retry policy, as Istio gives it to Envoy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first try (tries = 1 + this).
    pub attempts: u32,
    /// Timeout of each try, the first included.
    #[serde(serialize_with = "crate::ser::opt_duration")]
    pub per_try_timeout: Option<Duration>,
    /// Conditions.
    pub retry_on: RetryOn,
    /// Status codes for `retriable-status-codes`.
    pub retriable_status_codes: Box<[u16]>,
    /// Base of the jittered exponential back-off.
    #[serde(serialize_with = "crate::ser::duration")]
    pub backoff_base: Duration,
    /// Its cap (Envoy: ten times the base).
    #[serde(serialize_with = "crate::ser::duration")]
    pub backoff_max: Duration,
    /// Prefer hosts not tried yet (Envoy's `previous_hosts` predicate; Istio's
    /// `retryIgnorePreviousHosts`, on by default). Consistent-hash balancers ignore it,
    /// as Istio leaves the predicate out for them.
    pub previous_hosts: bool,
    /// How many picks a retry makes to find a host not tried yet.
    pub host_selection_attempts: u32,
}

impl RetryPolicy {
    /// Istio's defaults for `attempts` retries: the base back-off 25ms, capped at 250ms,
    /// five host picks avoiding hosts already tried.
    pub fn with_defaults(attempts: u32, retry_on: RetryOn) -> RetryPolicy {
        RetryPolicy {
            attempts,
            per_try_timeout: None,
            retry_on,
            retriable_status_codes: Box::new([]),
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            previous_hosts: true,
            host_selection_attempts: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (c, t) in RetryOn::TOKENS {
            assert_eq!(RetryOn::from_token(t), Some(*c));
        }
        assert_eq!(RetryOn::from_token("503"), None);
        let on = RetryOn::parse_list("5xx, reset ,bogus,unavailable");
        assert_eq!(on.tokens().collect::<Vec<_>>(), ["5xx", "reset", "unavailable"]);
    }

    #[test]
    fn replay_is_needed_only_for_conditions_after_the_request_was_sent() {
        let default = RetryOn::CONNECT_FAILURE
            | RetryOn::REFUSED_STREAM
            | RetryOn::GRPC_UNAVAILABLE
            | RetryOn::GRPC_CANCELLED
            | RetryOn::RETRIABLE_STATUS_CODES;
        // retriable-status-codes is a response condition.
        assert!(default.needs_replay(false, false));
        let no_codes = RetryOn::CONNECT_FAILURE | RetryOn::GRPC_UNAVAILABLE;
        assert!(!no_codes.needs_replay(false, false));
        let pre_send = RetryOn::CONNECT_FAILURE | RetryOn::RESET_BEFORE_REQUEST;
        assert!(!pre_send.needs_replay(true, true));
        let grpc = RetryOn::CONNECT_FAILURE | RetryOn::GRPC_UNAVAILABLE;
        assert!(!grpc.needs_replay(false, false));
        assert!(grpc.needs_replay(true, false));
        let refused = RetryOn::REFUSED_STREAM;
        assert!(!refused.needs_replay(false, false));
        assert!(refused.needs_replay(false, true));
    }
}
