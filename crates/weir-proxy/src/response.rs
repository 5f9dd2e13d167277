//! The response stage: the upstream's response head made the client's (its HTTP
//! version, hop-by-hop headers out, the route's and the destination's response edits,
//! CORS headers, `x-envoy-upstream-service-time`, a generated affinity cookie), and its
//! body set to stream back, driving the upstream connection as it is read.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Version};
use weir_table::Plan;

use crate::attempt::{Lease, Sent};
use crate::body::ProxyBody;
use crate::headers::{self, TemplateCtx};
use crate::{cors, tunnel};

/// What the response stage needs besides the response.
pub(crate) struct Context<'a> {
    pub(crate) plan: &'a Plan<'a>,
    pub(crate) tctx: &'a TemplateCtx<'a>,
    pub(crate) downstream_version: Version,
    pub(crate) origin: Option<&'a HeaderValue>,
    /// Milliseconds the upstream took to the response head.
    pub(crate) service_time: u64,
    /// The client's side of a WebSocket upgrade, to be tunnelled on `101`.
    pub(crate) upgrade: Option<crate::h1::server::OnUpgrade>,
    pub(crate) grpc: bool,
}

/// The client's response, and what its body holds until it ends.
pub(crate) fn respond(sent: Sent, cx: Context<'_>) -> (Response<ProxyBody>, Lease, Option<u16>) {
    let (mut resp, mut lease) = sent.into_response();
    // The client gets the version it spoke, whatever the upstream spoke (an HTTP/1.0
    // upstream must not turn a keep-alive client into a closing one).
    *resp.version_mut() = cx.downstream_version;
    let status = resp.status();
    if status == StatusCode::SWITCHING_PROTOCOLS
        && let Some(down) = cx.upgrade
        && let Some(up) = lease.conn.take()
    {
        *resp.body_mut() = ProxyBody::empty();
        tokio::spawn(tunnel::run(down, up));
    }
    let switched =
        (status == StatusCode::SWITCHING_PROTOCOLS).then(|| resp.headers().get(header::UPGRADE).cloned()).flatten();
    let f = cx.plan.forward;
    let rh = resp.headers_mut();
    headers::strip_hop_by_hop(rh);
    if let Some(up) = switched {
        headers::restore_upgrade(rh, up);
    }
    headers::apply_response(rh, status, &f.headers, cx.tctx);
    headers::apply_response(rh, status, &cx.plan.destination.headers, cx.tctx);
    let grpc_status = if cx.grpc { rh.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok()) } else { None };
    rh.insert(headers::X_ENVOY_UPSTREAM_SERVICE_TIME.clone(), HeaderValue::from(cx.service_time));
    if let (Some(cors), Some(o)) = (&f.cors, cx.origin) {
        cors::response_headers(cors, o, rh);
    }
    if let Some(c) = &cx.plan.affinity.new_cookie {
        rh.append(header::SET_COOKIE, c.clone());
    }
    (resp, lease, grpc_status)
}
