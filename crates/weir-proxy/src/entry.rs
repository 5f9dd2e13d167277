//! Where every request starts (the hyper service): refuse what Envoy refuses before
//! routing, normalize the path, **decide** (`weir_table::decide`, pure: route,
//! destination, cluster, timeouts, retries, affinity), then answer locally or run the
//! forwarding chain ([`crate::forward`]), and attach the completion that records the
//! outcome once the response body ends.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode};
use weir_table::{Decision, Facts, ListenerRole, RequestView};

use crate::attempt::Lease;
use crate::body::ProxyBody;
use crate::dice::ThreadDice;
use crate::headers::{self, TemplateCtx};
use crate::record::{Abandoned, Done, LogFields, Record, protocol_name};
use crate::redirect;
use crate::respond::{Local, text};
use crate::telemetry::{AccessLog, DestLabels, Metrics};
use crate::timeout::RequestEnd;
use crate::upstream::Snapshot;

/// State shared by every connection of a proxy.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// The TLS servers' configurations (certificates loaded), swapped with each table
    /// and when a certificate file changes.
    pub(crate) tls: ArcSwap<crate::tls::TlsConfigs>,
    /// Where `credentialName`s are read (`DIR/<name>/tls.crt`...).
    pub(crate) credentials: Option<std::path::PathBuf>,
    pub(crate) metrics: Metrics,
    pub(crate) access_log: AccessLog,
    pub(crate) hostname: String,
    /// Mirrors get Envoy's `-shadow` host suffix (Istio before 1.28).
    pub(crate) shadow_host_suffix: bool,
}

/// What a request knows about the connection it came on.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    pub(crate) shared: Arc<Shared>,
    /// Name of the table listener this socket serves.
    pub(crate) listener: Arc<str>,
    pub(crate) role: ListenerRole,
    /// Gateway server port (what `port` matches see); 0 on the mesh listener.
    pub(crate) port: u16,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// The client's connection is TLS terminated here.
    pub(crate) secure: bool,
}

impl ConnCtx {
    fn server_header(&self) -> HeaderValue {
        // Gateways write `istio-envoy`; a sidecar's outbound side keeps Envoy's default.
        match self.role {
            ListenerRole::Gateway => HeaderValue::from_static("istio-envoy"),
            ListenerRole::Mesh => HeaderValue::from_static("envoy"),
        }
    }

    /// `https` on a TLS connection, else `http`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }

    /// Requests from a gateway's clients are external (Envoy's `use_remote_address`).
    pub(crate) fn edge(&self) -> bool {
        self.role == ListenerRole::Gateway
    }
}

fn header_string(h: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// What a stage gives back: a local reply, or a response (with what its body holds).
pub(crate) enum Outcome {
    Local(Local),
    Response { resp: Response<ProxyBody>, lease: Option<Lease> },
}

impl Outcome {
    pub(crate) fn plain(resp: Response<ProxyBody>) -> Self {
        Outcome::Response { resp, lease: None }
    }
}

/// The hyper service: never fails; every problem is a response.
pub(crate) async fn handle(req: Request<ProxyBody>, conn: Arc<ConnCtx>) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let start = SystemTime::now();
    let snapshot = conn.shared.snapshot.load_full();
    let (mut parts, mut body) = req.into_parts();
    // When the request is complete, and how many body bytes it had: most requests have
    // no body and are complete now, at no cost.
    let end = if hyper::body::Body::is_end_stream(&body) {
        RequestEnd::complete(tokio::time::Instant::now())
    } else {
        let end = RequestEnd::streaming();
        body.set_on_finish(end.completion());
        end
    };

    // x-request-id is generated before anything else so every reply carries it in logs.
    if !parts.headers.contains_key(&headers::X_REQUEST_ID) {
        parts.headers.insert(headers::X_REQUEST_ID.clone(), headers::request_id());
    }
    let grpc = parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    // The authority as sent: `:authority` on HTTP/2, the host of an absolute-form URI
    // on HTTP/1.1 (it takes precedence over `Host`, RFC 9112 §3.2.2), else `Host`. Kept
    // as a cheap reference-counted clone rather than a new string.
    let authority = match (parts.uri.authority(), parts.headers.get(header::HOST)) {
        (Some(a), _) => Some(AuthoritySource::Uri(a.clone())),
        (None, Some(h)) if h.to_str().is_ok() => Some(AuthoritySource::Header(h.clone())),
        _ => None,
    };
    let log = conn.shared.access_log.enabled().then(|| LogFields {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
        protocol: protocol_name(parts.version),
        authority: authority.as_ref().map(|a| a.as_str().to_string()).unwrap_or_default(),
        xff: header_string(&parts.headers, &headers::X_FORWARDED_FOR),
        user_agent: header_string(&parts.headers, &header::USER_AGENT),
        request_id: header_string(&parts.headers, &headers::X_REQUEST_ID),
        route_name: None,
        upstream_cluster: None,
    });
    let rec = Record {
        started,
        start,
        grpc,
        code: 0,
        flags: crate::telemetry::Flags::NONE,
        details: Cow::Borrowed("via_upstream"),
        dest: None,
        upstream_host: None,
        upstream_service_time: None,
        grpc_status: None,
        end,
        log,
    };
    let mut guard = Abandoned { conn: conn.clone(), rec: Some(rec) };
    let rec = guard.rec.as_mut().expect("set above");
    let step = match (&authority, request_defect(&parts)) {
        (_, Some(l)) => Step::Done(Outcome::Local(l)),
        (None, None) => Step::Done(Outcome::Local(Local::BAD_REQUEST)),
        (Some(authority), None) => decide(&conn, &snapshot, &parts, authority.as_str(), rec),
    };
    let outcome = match step {
        Step::Done(o) => o,
        Step::Forward { plan, pq } => {
            let authority = authority.as_ref().map_or("", AuthoritySource::as_str);
            crate::forward::forward(&conn, &snapshot, &plan, &mut parts, body, authority, &pq, rec).await
        }
    };
    let (mut resp, lease) = match outcome {
        Outcome::Local(l) => (local_reply(l, rec), None),
        Outcome::Response { resp, lease } => (resp, lease),
    };
    resp.headers_mut().insert(header::SERVER, conn.server_header());
    rec.code = resp.status().as_u16();
    let rec = guard.rec.take().expect("set above");
    let done = Done { conn, rec, lease };
    resp.body_mut().set_on_finish(Box::new(done));
    Ok(resp)
}

/// What Envoy refuses before routing: two Host lines, a transfer coding other than
/// chunked; and CONNECT, which no route matches (Istio configures no CONNECT matcher:
/// 404 NR). The HTTP parser has already settled Content-Length beside chunked.
fn request_defect(parts: &Parts) -> Option<Local> {
    if parts.method == http::Method::CONNECT {
        return Some(Local::NO_ROUTE);
    }
    if parts.headers.get_all(header::HOST).iter().nth(1).is_some() {
        return Some(Local::DUPLICATE_HOST);
    }
    let te = parts.headers.get(header::TRANSFER_ENCODING)?;
    (!te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked")).then_some(Local::UNSUPPORTED_TRANSFER_ENCODING)
}

/// A local reply for `l`, with its flag and details recorded.
pub(crate) fn local_reply(l: Local, rec: &mut Record) -> Response<ProxyBody> {
    rec.flags.insert(l.flags);
    rec.details = l.take_details();
    if rec.grpc {
        rec.grpc_status = Some(l.grpc_code());
    }
    l.response(rec.grpc)
}

/// A local reply on a matched route: the route's (and the chosen destination's)
/// response header edits apply to it, as Envoy's router applies them to its replies.
pub(crate) fn route_reply(
    l: Local,
    rec: &mut Record,
    edits: &[&weir_table::HeaderOps],
    tctx: &TemplateCtx<'_>,
) -> Response<ProxyBody> {
    let mut resp = local_reply(l, rec);
    let status = resp.status();
    for ops in edits {
        headers::apply_response(resp.headers_mut(), status, ops, tctx);
    }
    resp
}

/// Where the request's authority text lives.
enum AuthoritySource {
    Uri(http::uri::Authority),
    Header(HeaderValue),
}

impl AuthoritySource {
    fn as_str(&self) -> &str {
        match self {
            AuthoritySource::Uri(a) => a.as_str(),
            // Checked with `to_str` when built.
            AuthoritySource::Header(h) => h.to_str().unwrap_or(""),
        }
    }
}

/// What happens next: a reply made here, or the forwarding chain with its plan.
enum Step<'t> {
    Done(Outcome),
    Forward { plan: weir_table::Plan<'t>, pq: PathAndQuery },
}

/// Normalizes the path and decides; answers what needs no upstream (no route,
/// redirects, direct responses).
fn decide<'t>(conn: &ConnCtx, snapshot: &'t Snapshot, parts: &Parts, authority: &str, rec: &mut Record) -> Step<'t> {
    let done = |o: Outcome| Step::Done(o);
    let listener = snapshot.listener(&conn.listener);
    let Some(listener) = listener else { return done(Outcome::Local(Local::NO_ROUTE)) };
    let mut pq = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    // Istio's default path normalization, before routing; the normalized path is also
    // what goes upstream and into the access log.
    if let Some(normal) = weir_table::normalize::normalize_path(pq.path()) {
        let text = match pq.query() {
            Some(q) => format!("{normal}?{q}"),
            None => normal,
        };
        pq = match PathAndQuery::try_from(text) {
            Ok(p) => p,
            Err(_) => return done(Outcome::Local(Local::BAD_PATH)),
        };
        if let Some(l) = rec.log.as_mut() {
            l.path = pq.as_str().to_string();
        }
    }
    let scheme = conn.scheme();
    let (path, query) = (pq.path(), pq.query());
    let view = RequestView {
        method: &parts.method,
        scheme,
        authority,
        path,
        path_and_query: pq.as_str(),
        query,
        headers: &parts.headers,
        port: conn.port,
    };
    let facts = Facts { peer: conn.peer, edge: conn.edge(), grpc: rec.grpc };
    let decision = weir_table::decide(&snapshot.table, listener, &view, &facts, &mut ThreadDice);
    let route = match &decision {
        Decision::NoRoute(_) => {
            rec.dest = Some(DestLabels::unknown_shared(weir_table::hosts::strip_port(authority)));
            return done(Outcome::Local(Local::NO_ROUTE));
        }
        Decision::RequireTls => {
            // Envoy's TLS redirect keeps the Host as sent, port included.
            let location = format!("https://{authority}{}", pq.as_str());
            return done(Outcome::plain(redirect::redirect_response(StatusCode::MOVED_PERMANENTLY, &location)));
        }
        Decision::Redirect { route, .. } | Decision::Direct { route, .. } => *route,
        Decision::Forward(plan) => plan.route,
    };
    if let Some(l) = rec.log.as_mut() {
        l.route_name = (!route.name.is_empty()).then(|| route.name.to_string());
    }
    let tctx = TemplateCtx {
        peer: conn.peer,
        local: conn.local,
        protocol: protocol_name(parts.version),
        scheme: conn.scheme(),
        hostname: &conn.shared.hostname,
        start: rec.start,
        request: Some(&parts.headers),
        route_name: &route.name,
        cluster: "",
    };
    match decision {
        Decision::NoRoute(_) | Decision::RequireTls => done(Outcome::Local(Local::NO_ROUTE)),
        Decision::Direct { response: d, .. } => {
            rec.details = Cow::Borrowed("direct_response");
            // REGISTRY_ONLY's `block_all`: Istio reports the destination as BlackHoleCluster.
            if listener.virtual_host(authority).and_then(|v| v.service.as_deref())
                == Some(weir_table::cluster::BLACKHOLE_CLUSTER)
            {
                rec.dest = Some(DestLabels::unknown_shared(weir_table::cluster::BLACKHOLE_CLUSTER));
            }
            // As Envoy's router sends a direct response (a local reply): a gRPC request
            // gets it as a gRPC status.
            if rec.grpc {
                let body = String::from_utf8_lossy(&d.body).into_owned();
                let l = Local::dynamic(d.status, crate::telemetry::Flags::NONE, "direct_response".into(), body);
                return done(Outcome::plain(route_reply(l, rec, &[&d.headers], &tctx)));
            }
            let mut r = text(d.status, d.body.clone());
            if d.body.is_empty() {
                r.headers_mut().remove(header::CONTENT_TYPE);
            }
            headers::apply_response(r.headers_mut(), d.status, &d.headers, &tctx);
            done(Outcome::plain(r))
        }
        Decision::Redirect { redirect: rd, port, .. } => {
            rec.details = Cow::Borrowed("direct_response");
            let location = redirect::redirect_location(rd, scheme, authority, path, query, port, conn.local.port());
            let mut r = redirect::redirect_response(rd.status, &location);
            headers::apply_response(r.headers_mut(), rd.status, &rd.headers, &tctx);
            done(Outcome::plain(r))
        }
        Decision::Forward(plan) => Step::Forward { plan, pq: pq.clone() },
    }
}

#[cfg(test)]
mod tests {
    /// The size of a future type, from a closure that is never called.
    fn future_size<F>(_: impl FnOnce() -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every HTTP/2 stream is a task holding the whole request future, copied into the
    /// task when the stream opens: keeping it small is measured per-request cost
    /// (rarely used states, like opening a connection, are boxed out of line).
    #[test]
    #[allow(unreachable_code, clippy::diverging_sub_expression)]
    fn request_futures_stay_small() {
        let handle = future_size(|| super::handle(unreachable!(), unreachable!()));
        let attempt = future_size(|| crate::attempt::run(unreachable!(), unreachable!()));
        assert!(handle <= 8 * 1024, "the request future grew to {handle} bytes");
        // Every open connection holds its future, idle or not (bench/memory.sh counts
        // KB per idle keep-alive connection): rare states (TCP proxying, closing) are
        // boxed out of it.
        let connection = future_size(|| {
            crate::transport::serve(unreachable!(), unreachable!(), unreachable!(), unreachable!(), unreachable!())
        });
        assert!(connection <= 1024, "a connection's future grew to {connection} bytes");
        assert!(attempt <= 2 * 1024, "a try's future grew to {attempt} bytes");
    }
}
