//! CORS (Envoy's CORS filter as Istio configures it, spec §2.12).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use weir_table::CorsPolicy;

use crate::body::ProxyBody;
use crate::respond::text;

/// Answers a CORS preflight for an allowed origin (Envoy's CORS filter). A preflight
/// from an origin not allowed is forwarded (Istio's default) or answered bare.
pub(crate) fn preflight(cors: &CorsPolicy, parts: &Parts, origin: Option<&HeaderValue>) -> Option<Response<ProxyBody>> {
    let origin = origin?;
    if parts.method != Method::OPTIONS || !parts.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    if !allowed {
        return (!cors.forward_unmatched_preflights).then(|| text(StatusCode::OK, Bytes::new()));
    }
    let mut r = text(StatusCode::OK, Bytes::new());
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if let Some(v) = &cors.allow_methods {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
    }
    if let Some(v) = &cors.allow_headers {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
    if let Some(v) = &cors.max_age {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
    }
    if cors.allow_credentials == Some(true) {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    Some(r)
}

/// CORS headers on an actual (non-preflight) response for an allowed origin.
pub(crate) fn response_headers(cors: &CorsPolicy, origin: &HeaderValue, h: &mut HeaderMap) {
    if !origin.to_str().is_ok_and(|o| cors.allows(o)) {
        return;
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if cors.allow_credentials == Some(true) {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    if let Some(v) = &cors.expose_headers {
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
    }
}
