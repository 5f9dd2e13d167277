//! The upstream request, built in place from the downstream one as the plan says:
//! hop-by-hop headers out, Envoy's control headers out, `x-forwarded-*`, the route's
//! then the destination's header edits, path and authority rewrites, and the protocol
//! to speak (HTTP/1.1, HTTP/2, or a dedicated connection for a WebSocket upgrade).

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Uri, Version};
use weir_table::{Plan, UpstreamProtocol};

use crate::attempt::Mode;
use crate::body::ProxyBody;
use crate::headers::{self, TemplateCtx};

/// The request ready for the router.
pub(crate) struct Upstream {
    pub(crate) req: Request<ProxyBody>,
    pub(crate) mode: Mode,
    /// The `Upgrade` value of a WebSocket handshake.
    pub(crate) websocket: Option<HeaderValue>,
}

/// Builds the upstream request: `parts.headers` are moved into it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    plan: &Plan<'_>,
    protocol: UpstreamProtocol,
    parts: &mut Parts,
    body: ProxyBody,
    authority: &str,
    pq: &PathAndQuery,
    edge: bool,
    tctx: &TemplateCtx<'_>,
) -> Upstream {
    let f = plan.forward;
    let dest = plan.destination;
    let (path, query) = (pq.path(), pq.query());
    let downstream_version = parts.version;
    let mut h = std::mem::take(&mut parts.headers);
    // A WebSocket upgrade (HTTP/1.1) keeps its Connection/Upgrade pair and tunnels.
    let websocket = if downstream_version == Version::HTTP_11 { headers::websocket_upgrade(&h) } else { None };
    headers::strip_hop_by_hop(&mut h);
    if let Some(up) = &websocket {
        headers::restore_upgrade(&mut h, up.clone());
    }
    // Envoy answers `Expect: 100-continue` itself (hyper sends the 100 when the body is
    // first read) and does not pass the expectation on.
    h.remove(header::EXPECT);
    if edge {
        headers::strip_envoy_internal(&mut h);
    } else if plan.strip_control_headers {
        for name in weir_table::plan::CONTROL_HEADERS {
            h.remove(name);
        }
    }
    headers::forwarded(&mut h, tctx.peer, tctx.scheme, edge);
    headers::apply_request(&mut h, &f.headers, tctx);
    headers::apply_request(&mut h, &dest.headers, tctx);
    let new_authority = f.authority.as_ref().or(dest.authority.as_ref());
    let new_path = f.rewrite.as_ref().map(|rw| rw.apply(path));
    if new_path.is_some() {
        let original = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&original) {
            h.insert(headers::X_ENVOY_ORIGINAL_PATH.clone(), v);
        }
    }
    let use_h2 = websocket.is_none()
        && match protocol {
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::ClientProtocol => downstream_version == Version::HTTP_2,
        };
    let mode = match (use_h2, &websocket) {
        (true, _) => Mode::H2,
        (false, Some(_)) => Mode::Upgrade,
        (false, None) => Mode::H1,
    };
    let up_authority: &str = new_authority.and_then(|a| a.to_str().ok()).unwrap_or(authority);
    // The path as sent upstream: the original (a cheap clone) unless rewritten.
    let up_pq: PathAndQuery = match (&new_path, query) {
        (None, _) => pq.clone(),
        (Some(p), Some(q)) => format!("{p}?{q}").parse().unwrap_or_else(|_| pq.clone()),
        (Some(p), None) => p.parse().unwrap_or_else(|_| pq.clone()),
    };
    let uri: Uri = if use_h2 {
        let mut up = http::uri::Parts::default();
        up.scheme = Some(http::uri::Scheme::HTTP);
        // The client's own `:authority` when it is the one to send (a shared clone, no
        // copy), else the rewritten or `Host` one, parsed.
        up.authority = match (new_authority, parts.uri.authority()) {
            (None, Some(a)) if a.as_str() == up_authority => Some(a.clone()),
            _ => up_authority.parse().ok(),
        };
        up.path_and_query = Some(up_pq);
        Uri::from_parts(up).unwrap_or_else(|_| Uri::from_static("/"))
    } else {
        Uri::from(up_pq)
    };
    set_host(&mut h, use_h2, up_authority);
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = if use_h2 { Version::HTTP_2 } else { Version::HTTP_11 };
    *req.headers_mut() = h;
    Upstream { req, mode, websocket }
}

/// The upstream gets the authority the request was routed by (or its rewrite), never a
/// different Host the client also sent (h2 `host` beside `:authority`, or `Host` beside
/// an absolute-form URI).
fn set_host(h: &mut HeaderMap, use_h2: bool, up_authority: &str) {
    if use_h2 {
        h.remove(header::HOST);
        return;
    }
    let mut hosts = h.get_all(header::HOST).iter();
    let same = matches!((hosts.next(), hosts.next()), (Some(v), None) if v.as_bytes() == up_authority.as_bytes());
    if !same && let Ok(v) = HeaderValue::from_str(up_authority) {
        h.insert(header::HOST, v);
    }
}

/// The authority the upstream request carries, as the access log shows it.
pub(crate) fn authority_of(req: &Request<ProxyBody>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| req.headers().get(header::HOST).and_then(|v| v.to_str().ok()))
}
