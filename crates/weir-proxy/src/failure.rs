//! Why a forwarded request got no upstream response, typed: which stage failed, whether
//! the request reached the upstream, and (in [`Failure::reply`]) the one table that
//! turns a failure into Envoy's status, response flag, details and body.

use http::StatusCode;

use crate::breaker::Overflow;
use crate::respond::Local;
use crate::telemetry::Flags;

/// A failed try (or request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The balancer had no host: every host ejected, or none at all (503 `UH`).
    NoHealthyUpstream,
    /// A circuit breaker was full (503 `UO`, `x-envoy-overloaded`); never retried.
    Overflow(Overflow),
    /// The TCP connection could not be made (503 `UF`).
    ConnectFailed {
        /// The connect timeout fired.
        timeout: bool,
    },
    /// The connection closed before the response head (503 `UC`).
    ConnectionTerminated {
        /// No byte of the request was written (`reset-before-request`).
        before_request: bool,
    },
    /// The upstream reset the HTTP/2 stream (503 `UR`).
    RemoteReset {
        /// With `REFUSED_STREAM` (`refused-stream`).
        refused: bool,
    },
    /// The upstream's response was not valid HTTP (502 `UPE`).
    ProtocolError,
    /// The client's request body failed while it was being sent (400 `DPE`).
    DownstreamBody,
    /// A try's timeout ran out (504 `UT`).
    PerTryTimeout,
    /// The route timeout ran out (504 `UT`).
    Timeout,
}

/// Envoy's wording of a reset reason (`resetReasonToString`).
fn reason(f: Failure) -> &'static str {
    match f {
        Failure::Overflow(_) => "overflow",
        Failure::ConnectFailed { timeout: true } => "connection timeout",
        Failure::ConnectFailed { timeout: false } => "remote connection failure",
        Failure::ConnectionTerminated { .. } => "connection termination",
        Failure::RemoteReset { refused: true } => "remote refused stream reset",
        Failure::RemoteReset { refused: false } => "remote reset",
        Failure::ProtocolError => "protocol error",
        _ => "",
    }
}

impl Failure {
    /// The local reply: status, flag, `%RESPONSE_CODE_DETAILS%` and body, as Envoy's
    /// router sends them (`retried`: the body says so, as Envoy's does).
    pub(crate) fn reply(self, retried: bool) -> Local {
        let reset = |status: StatusCode, flags: Flags| {
            let r = reason(self);
            Local::dynamic(
                status,
                flags,
                format!("upstream_reset_before_response_started{{{}}}", r.replace(' ', "_")),
                format!(
                    "upstream connect error or disconnect/reset before headers. {}reset reason: {r}",
                    if retried { "retried and the latest " } else { "" }
                ),
            )
        };
        match self {
            Failure::NoHealthyUpstream => Local::NO_HEALTHY_UPSTREAM,
            Failure::Overflow(_) => reset(StatusCode::SERVICE_UNAVAILABLE, Flags::UPSTREAM_OVERFLOW),
            Failure::ConnectFailed { .. } => reset(StatusCode::SERVICE_UNAVAILABLE, Flags::UPSTREAM_CONNECTION_FAILURE),
            Failure::ConnectionTerminated { .. } => {
                reset(StatusCode::SERVICE_UNAVAILABLE, Flags::UPSTREAM_CONNECTION_TERMINATION)
            }
            Failure::RemoteReset { .. } => reset(StatusCode::SERVICE_UNAVAILABLE, Flags::UPSTREAM_REMOTE_RESET),
            Failure::ProtocolError => reset(StatusCode::BAD_GATEWAY, Flags::UPSTREAM_PROTOCOL_ERROR),
            Failure::DownstreamBody => Local::DOWNSTREAM_BODY_ERROR,
            Failure::PerTryTimeout => Local::PER_TRY_TIMEOUT,
            Failure::Timeout => Local::TIMEOUT,
        }
    }

    /// True for the overflow of a circuit breaker (the reply says
    /// `x-envoy-overloaded: true`).
    pub(crate) fn is_overflow(self) -> bool {
        matches!(self, Failure::Overflow(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_like_envoys() {
        let uo = Failure::Overflow(Overflow::Pending).reply(false);
        assert_eq!((uo.status, uo.flags.render()), (StatusCode::SERVICE_UNAVAILABLE, "UO".to_string()));
        assert_eq!(uo.details(), "upstream_reset_before_response_started{overflow}");
        assert_eq!(uo.body(), "upstream connect error or disconnect/reset before headers. reset reason: overflow");
        let uf = Failure::ConnectFailed { timeout: false }.reply(true);
        assert_eq!(uf.flags.render(), "UF");
        assert_eq!(
            uf.body(),
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure"
        );
        assert_eq!(uf.details(), "upstream_reset_before_response_started{remote_connection_failure}");
        let ur = Failure::RemoteReset { refused: true }.reply(false);
        assert_eq!(
            (ur.flags.render(), ur.details()),
            ("UR".into(), "upstream_reset_before_response_started{remote_refused_stream_reset}")
        );
        let ut = Failure::Timeout.reply(true);
        assert_eq!(
            (ut.status, ut.flags.render(), ut.details(), ut.body()),
            (StatusCode::GATEWAY_TIMEOUT, "UT".into(), "response_timeout", "upstream request timeout")
        );
        assert_eq!(Failure::PerTryTimeout.reply(false).details(), "upstream_per_try_timeout");
        assert_eq!(Failure::ProtocolError.reply(false).status, StatusCode::BAD_GATEWAY);
        let uh = Failure::NoHealthyUpstream.reply(false);
        assert_eq!((uh.flags.render(), uh.body()), ("UH".into(), "no healthy upstream"));
    }
}
