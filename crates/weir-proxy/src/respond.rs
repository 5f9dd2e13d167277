//! Local replies: the one place a failure becomes a status code, a response flag and a
//! body. gRPC requests get a trailers-only gRPC response instead (HTTP 200 with
//! `grpc-status`), as Envoy sends them.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::ProxyBody;
use crate::telemetry::Flags;

/// A reply made by the proxy itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    pub(crate) status: StatusCode,
    pub(crate) flags: Flags,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub(crate) details: &'static str,
    pub(crate) body: &'static str,
}

impl Local {
    pub(crate) const NO_ROUTE: Local =
        Local { status: StatusCode::NOT_FOUND, flags: Flags::NO_ROUTE, details: "route_not_found", body: "" };
    pub(crate) const NO_CLUSTER: Local = Local {
        status: StatusCode::SERVICE_UNAVAILABLE,
        flags: Flags::NO_CLUSTER,
        details: "cluster_not_found",
        body: "",
    };
    pub(crate) const NO_HEALTHY_UPSTREAM: Local = Local {
        status: StatusCode::SERVICE_UNAVAILABLE,
        flags: Flags::NO_HEALTHY_UPSTREAM,
        details: "no_healthy_upstream",
        body: "no healthy upstream",
    };
    pub(crate) const CONNECT_FAILURE: Local = Local {
        status: StatusCode::SERVICE_UNAVAILABLE,
        flags: Flags::UPSTREAM_CONNECTION_FAILURE,
        details: "upstream_reset_before_response_started{connection_failure}",
        body: "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    };
    pub(crate) const UPSTREAM_RESET: Local = Local {
        status: StatusCode::SERVICE_UNAVAILABLE,
        flags: Flags::UPSTREAM_CONNECTION_TERMINATION,
        details: "upstream_reset_before_response_started{connection_termination}",
        body: "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
    };
    pub(crate) const TIMEOUT: Local = Local {
        status: StatusCode::GATEWAY_TIMEOUT,
        flags: Flags::UPSTREAM_REQUEST_TIMEOUT,
        details: "upstream_response_timeout",
        body: "upstream request timeout",
    };
    /// A path normalization could not make valid (Envoy's `path_normalization_failed`).
    pub(crate) const BAD_PATH: Local = Local {
        status: StatusCode::BAD_REQUEST,
        flags: Flags::DOWNSTREAM_PROTOCOL_ERROR,
        details: "path_normalization_failed",
        body: "Bad Request",
    };
    /// More than one `Host` line (RFC 9112 §3.2: a server must answer 400).
    pub(crate) const DUPLICATE_HOST: Local = Local {
        status: StatusCode::BAD_REQUEST,
        flags: Flags::DOWNSTREAM_PROTOCOL_ERROR,
        details: "http1.codec_error",
        body: "Bad Request",
    };
    /// A transfer coding other than `chunked`.
    pub(crate) const UNSUPPORTED_TRANSFER_ENCODING: Local = Local {
        status: StatusCode::NOT_IMPLEMENTED,
        flags: Flags::DOWNSTREAM_PROTOCOL_ERROR,
        details: "http1.invalid_transfer_encoding",
        body: "Not Implemented",
    };
    /// The request body failed while it was being sent upstream (client reset or a
    /// malformed chunk): the fault is downstream.
    pub(crate) const DOWNSTREAM_BODY_ERROR: Local = Local {
        status: StatusCode::BAD_REQUEST,
        flags: Flags::DOWNSTREAM_PROTOCOL_ERROR,
        details: "downstream_request_body_error",
        body: "Bad Request",
    };
    /// The upstream answered with something that is not valid HTTP.
    pub(crate) const UPSTREAM_PROTOCOL_ERROR: Local = Local {
        status: StatusCode::BAD_GATEWAY,
        flags: Flags::UPSTREAM_PROTOCOL_ERROR,
        details: "upstream_reset_before_response_started{protocol_error}",
        body: "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
    };
    pub(crate) const BAD_REQUEST: Local = Local {
        status: StatusCode::BAD_REQUEST,
        flags: Flags::DOWNSTREAM_PROTOCOL_ERROR,
        details: "missing_host_header",
        body: "missing host header",
    };

    /// The response for a plain or a gRPC client.
    pub(crate) fn response(&self, grpc: bool) -> Response<ProxyBody> {
        if grpc {
            let mut r = Response::new(ProxyBody::empty());
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(grpc_status(self.status)));
            let msg = if self.body.is_empty() { self.status.canonical_reason().unwrap_or("") } else { self.body };
            if let Ok(v) = HeaderValue::from_str(msg) {
                h.insert("grpc-message", v);
            }
            return r;
        }
        text(self.status, Bytes::from_static(self.body.as_bytes()))
    }
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: Bytes) -> Response<ProxyBody> {
    let len = body.len();
    let mut r = Response::new(ProxyBody::full(body));
    *r.status_mut() = status;
    if len > 0 {
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Envoy's HTTP-to-gRPC status mapping for local replies.
pub(crate) fn grpc_status(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}
