//! The forwarding chain: the stages a forwarded request goes through once the plan is
//! made, in Envoy's filter order under Istio. Each stage is a module with a small
//! interface; a new one is a module and a line here.
//!
//! ```text
//! cors preflight ─> fault (delay, abort) ─> cluster (503 NC) ─> upstream request
//!   ─> mirror copies (own tasks) ─> router ─> response
//!                                     │ route timeout
//!                                     │ retry loop
//!                                     └ try: admission ─> pick ─> pool ─> send
//! ```

use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use weir_table::Plan;

use crate::body::ProxyBody;
use crate::entry::{ConnCtx, Outcome, route_reply};
use crate::headers::{self, TemplateCtx};
use crate::record::{Record, protocol_name};
use crate::respond::Local;
use crate::router::{self, Job};
use crate::telemetry::DestLabels;
use crate::upstream::Snapshot;
use crate::{cors, response, upstream_request};

static X_ENVOY_OVERLOADED: http::HeaderName = http::HeaderName::from_static("x-envoy-overloaded");

/// Carries a forwarded request by its plan.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    conn: &Arc<ConnCtx>,
    snapshot: &Arc<Snapshot>,
    plan: &Plan<'_>,
    parts: &mut Parts,
    body: ProxyBody,
    authority: &str,
    pq: &PathAndQuery,
    rec: &mut Record,
) -> Outcome {
    let f = plan.forward;
    let dest = plan.destination;
    // 1. CORS: a preflight from an allowed origin is answered here.
    let origin = parts.headers.get(header::ORIGIN).cloned();
    if let Some(cors) = &f.cors
        && let Some(pre) = cors::preflight(cors, parts, origin.as_ref())
    {
        rec.details = "cors_response".into();
        return Outcome::plain(pre);
    }
    if let Some(l) = rec.log.as_mut() {
        l.upstream_cluster = Some(dest.name.to_string());
    }
    let downstream_version = parts.version;
    // `%REQ(x)%` values read the request as it arrived: keep a copy only if needed.
    let original = (needs_request(&f.headers) || needs_request(&dest.headers)).then(|| parts.headers.clone());
    let tctx = TemplateCtx {
        peer: conn.peer,
        local: conn.local,
        protocol: protocol_name(downstream_version),
        scheme: conn.scheme(),
        hostname: &conn.shared.hostname,
        start: rec.start,
        request: original.as_ref(),
        route_name: &plan.route.name,
        cluster: &dest.name,
    };
    let edits = [&f.headers, &dest.headers];
    // 2. Faults: a delay holds the request here, an abort answers it.
    if (plan.fault.delay.is_some() || plan.fault.abort.is_some())
        && let Some(abort) = crate::fault::inject(&plan.fault, rec).await
    {
        return Outcome::plain(route_reply(abort, rec, &edits, &tctx));
    }
    // 3. The cluster (none for this port, service or subset: 503 NC).
    let Some(cluster_id) = plan.cluster else {
        rec.dest = Some(DestLabels::unknown_shared(weir_table::hosts::strip_port(authority)));
        return Outcome::plain(route_reply(Local::NO_CLUSTER, rec, &edits, &tctx));
    };
    let cluster = snapshot.clusters[cluster_id.0].clone();
    rec.dest = Some(cluster.labels.clone());
    // 4. The upstream request.
    let up = upstream_request::build(plan, cluster.spec.protocol, parts, body, authority, pq, conn.edge(), &tctx);
    // Envoy's access log reads the request headers after the router edited them: the
    // authority as rewritten, X-Forwarded-For with the peer appended.
    if let Some(l) = rec.log.as_mut() {
        if let Some(a) = upstream_request::authority_of(&up.req) {
            l.authority = a.to_string();
        }
        l.xff = up.req.headers().get(&headers::X_FORWARDED_FOR).and_then(|v| v.to_str().ok()).map(str::to_string);
    }
    let upgrade = up.websocket.is_some().then(|| parts.extensions.remove::<crate::h1::server::OnUpgrade>()).flatten();
    // 5. Mirrors, then the router: route timeout, retries, tries.
    let router_start = tokio::time::Instant::now();
    let job =
        Job { cluster: &cluster, plan, mode: up.mode, end: &rec.end, grpc: rec.grpc, authority, started: router_start };
    let upstream_started = Instant::now();
    let outgoing = router::Outgoing::new(&job, up.req);
    crate::mirror::start(conn, snapshot, &job, &outgoing, rec, downstream_version == http::Version::HTTP_2);
    let routed = router::route(&job, outgoing).await;
    rec.flags.insert(routed.flags);
    if let Some(ep) = &routed.host {
        rec.upstream_host = Some(ep.host.clone());
        rec.dest = Some(ep.labels.clone());
    }
    // 6. The response, or the reply for why there is none.
    match routed.result {
        // Envoy refuses a response with both Content-Length and Transfer-Encoding.
        Ok(sent)
            if sent.resp.headers().contains_key(header::TRANSFER_ENCODING)
                && sent.resp.headers().contains_key(header::CONTENT_LENGTH) =>
        {
            let l = crate::failure::Failure::ProtocolError.reply(routed.retried);
            Outcome::plain(route_reply(l, rec, &edits, &tctx))
        }
        Ok(sent) => {
            let service_time = upstream_started.elapsed().as_millis() as u64;
            rec.upstream_service_time = Some(service_time);
            let cx = response::Context {
                plan,
                tctx: &tctx,
                downstream_version,
                origin: origin.as_ref(),
                service_time,
                upgrade,
                grpc: rec.grpc,
            };
            let (mut resp, lease, grpc_status) = response::respond(sent, cx);
            if rec.grpc {
                rec.grpc_status = grpc_status;
            }
            if let Some(g) = plan.timeouts.global {
                // The route timeout also covers the response body.
                resp.body_mut().set_deadline(Box::pin(crate::timeout::global(rec.end.clone(), g, router_start)));
            }
            Outcome::Response { resp, lease: Some(lease) }
        }
        Err(failure) => {
            let mut resp = route_reply(failure.reply(routed.retried), rec, &edits, &tctx);
            if failure.is_overflow() {
                resp.headers_mut().insert(X_ENVOY_OVERLOADED.clone(), HeaderValue::from_static("true"));
            }
            Outcome::plain(resp)
        }
    }
}

/// True when some value reads a request header (`%REQ(x)%`).
fn needs_request(ops: &weir_table::HeaderOps) -> bool {
    let reads = |l: &[(header::HeaderName, weir_table::HeaderTemplate)]| {
        l.iter().any(|(_, t)| match t {
            weir_table::HeaderTemplate::Parts(p) => p.iter().any(|x| matches!(x, weir_table::TemplatePart::Req(_))),
            weir_table::HeaderTemplate::Literal(_) => false,
        })
    };
    reads(&ops.request_set) || reads(&ops.request_add) || reads(&ops.response_set) || reads(&ops.response_add)
}
