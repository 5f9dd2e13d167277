//! Local replies: the one place a failure becomes a status code, a response flag and a
//! body. gRPC requests get a trailers-only gRPC response instead (HTTP 200 with
//! `grpc-status`), as Envoy sends them.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::ProxyBody;
use crate::telemetry::Flags;

/// A reply made by the proxy itself.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub(crate) status: StatusCode,
    pub(crate) flags: Flags,
    /// `%RESPONSE_CODE_DETAILS%`.
    details: Cow<'static, str>,
    body: Cow<'static, str>,
    /// The gRPC status a gRPC client gets (else the mapping of `status`).
    grpc: Option<u16>,
}

impl Local {
    const fn fixed(status: StatusCode, flags: Flags, details: &'static str, body: &'static str) -> Local {
        Local { status, flags, details: Cow::Borrowed(details), body: Cow::Borrowed(body), grpc: None }
    }

    /// A reply whose details and body are made per request.
    pub(crate) fn dynamic(status: StatusCode, flags: Flags, details: String, body: String) -> Local {
        Local { status, flags, details: Cow::Owned(details), body: Cow::Owned(body), grpc: None }
    }

    /// Envoy's fault filter abort: `status`, or for a gRPC status HTTP 200 carrying it.
    pub(crate) fn fault_abort(abort: weir_table::AbortStatus) -> Local {
        let (status, grpc) = match abort {
            weir_table::AbortStatus::Http(code) => {
                (StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE), None)
            }
            weir_table::AbortStatus::Grpc(code) => (StatusCode::OK, Some(code)),
        };
        Local {
            status,
            flags: Flags::FAULT_INJECTED,
            details: Cow::Borrowed("fault_filter_abort"),
            body: Cow::Borrowed("fault filter abort"),
            grpc,
        }
    }

    /// The gRPC status a gRPC client gets.
    pub(crate) fn grpc_code(&self) -> u16 {
        self.grpc.unwrap_or_else(|| grpc_status(self.status))
    }

    /// `%RESPONSE_CODE_DETAILS%`.
    #[cfg(test)]
    pub(crate) fn details(&self) -> &str {
        &self.details
    }

    /// The body text.
    #[cfg(test)]
    pub(crate) fn body(&self) -> &str {
        &self.body
    }

    /// The details, to be kept in the request's record.
    pub(crate) fn take_details(&self) -> Cow<'static, str> {
        self.details.clone()
    }

    pub(crate) const NO_ROUTE: Local = Local::fixed(StatusCode::NOT_FOUND, Flags::NO_ROUTE, "route_not_found", "");
    pub(crate) const NO_CLUSTER: Local =
        Local::fixed(StatusCode::SERVICE_UNAVAILABLE, Flags::NO_CLUSTER, "cluster_not_found", "");
    pub(crate) const NO_HEALTHY_UPSTREAM: Local = Local::fixed(
        StatusCode::SERVICE_UNAVAILABLE,
        Flags::NO_HEALTHY_UPSTREAM,
        "no_healthy_upstream",
        "no healthy upstream",
    );
    /// The route timeout ran out.
    pub(crate) const TIMEOUT: Local = Local::fixed(
        StatusCode::GATEWAY_TIMEOUT,
        Flags::UPSTREAM_REQUEST_TIMEOUT,
        "response_timeout",
        "upstream request timeout",
    );
    /// The last try's timeout ran out and no retry was left.
    pub(crate) const PER_TRY_TIMEOUT: Local = Local::fixed(
        StatusCode::GATEWAY_TIMEOUT,
        Flags::UPSTREAM_REQUEST_TIMEOUT,
        "upstream_per_try_timeout",
        "upstream request timeout",
    );
    /// A path normalization could not make valid (Envoy's `path_normalization_failed`).
    pub(crate) const BAD_PATH: Local = Local::fixed(
        StatusCode::BAD_REQUEST,
        Flags::DOWNSTREAM_PROTOCOL_ERROR,
        "path_normalization_failed",
        "Bad Request",
    );
    /// More than one `Host` line (RFC 9112 §3.2: a server must answer 400).
    pub(crate) const DUPLICATE_HOST: Local =
        Local::fixed(StatusCode::BAD_REQUEST, Flags::DOWNSTREAM_PROTOCOL_ERROR, "http1.codec_error", "Bad Request");
    /// A transfer coding other than `chunked`.
    pub(crate) const UNSUPPORTED_TRANSFER_ENCODING: Local = Local::fixed(
        StatusCode::NOT_IMPLEMENTED,
        Flags::DOWNSTREAM_PROTOCOL_ERROR,
        "http1.invalid_transfer_encoding",
        "Not Implemented",
    );
    /// The request body failed while it was being sent upstream (client reset or a
    /// malformed chunk): the fault is downstream.
    pub(crate) const DOWNSTREAM_BODY_ERROR: Local = Local::fixed(
        StatusCode::BAD_REQUEST,
        Flags::DOWNSTREAM_PROTOCOL_ERROR,
        "downstream_request_body_error",
        "Bad Request",
    );
    pub(crate) const BAD_REQUEST: Local = Local::fixed(
        StatusCode::BAD_REQUEST,
        Flags::DOWNSTREAM_PROTOCOL_ERROR,
        "missing_host_header",
        "missing host header",
    );

    /// The response for a plain or a gRPC client.
    pub(crate) fn response(&self, grpc: bool) -> Response<ProxyBody> {
        if grpc {
            let mut r = Response::new(ProxyBody::empty());
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(self.grpc_code()));
            let msg = if self.body.is_empty() { self.status.canonical_reason().unwrap_or("") } else { &self.body };
            if let Ok(v) = HeaderValue::from_str(msg) {
                h.insert("grpc-message", v);
            }
            return r;
        }
        let body = match &self.body {
            Cow::Borrowed(b) => Bytes::from_static(b.as_bytes()),
            Cow::Owned(b) => Bytes::from(b.clone()),
        };
        text(self.status, body)
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
