//! The request path, in the order Istio applies it: listener -> virtual host -> route
//! (one lookup in the table) -> redirect / direct response / forward. Forwarding picks
//! a weighted destination, then a cluster endpoint by the cluster's balancer, and
//! streams the exchange through the endpoint's pool. Later stages (fault, mirror,
//! retries) plug in around [`send_upstream`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use weir_table::{Action, Forward, LbPolicy, ListenerRole, NoRoute, RequestView, UpstreamProtocol};

use crate::body::{Completion, Finished, ProxyBody};
use crate::headers::{self, TemplateCtx};
use crate::pool::{H1Conn, UpstreamError};
use crate::respond::{Local, text};
use crate::telemetry::{AccessLog, DestLabels, Entry, Flags, Metrics, Observation};
use crate::upstream::{EndpointState, InFlight, Snapshot};
use crate::{affinity, cors, redirect};

/// State shared by every connection of a proxy.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) metrics: Metrics,
    pub(crate) access_log: AccessLog,
    pub(crate) hostname: String,
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
}

impl ConnCtx {
    fn server_header(&self) -> HeaderValue {
        // Gateways write `istio-envoy`; a sidecar's outbound side keeps Envoy's default.
        match self.role {
            ListenerRole::Gateway => HeaderValue::from_static("istio-envoy"),
            ListenerRole::Mesh => HeaderValue::from_static("envoy"),
        }
    }
}

/// Everything telemetry needs, filled in as the request goes.
struct Record {
    started: Instant,
    start: SystemTime,
    grpc: bool,
    code: u16,
    flags: Flags,
    details: &'static str,
    dest: Option<Arc<DestLabels>>,
    upstream_host: Option<Arc<str>>,
    upstream_service_time: Option<u64>,
    /// gRPC status from response headers (trailers-only responses).
    grpc_status: Option<u16>,
    /// Request body bytes, counted as the body streams upstream; `None` for a request
    /// without a body (most of them), which then costs no shared counter.
    request_bytes: Option<Arc<AtomicU64>>,
    /// Access-log fields (only when the access log is on).
    log: Option<LogFields>,
}

struct LogFields {
    method: String,
    path: String,
    protocol: &'static str,
    authority: String,
    xff: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    route_name: Option<String>,
    upstream_cluster: Option<String>,
}

/// Finishes a request's telemetry (and gives its upstream connection back) when the
/// response body ends.
struct Done {
    conn: Arc<ConnCtx>,
    rec: Record,
    /// Where an HTTP/1.1 connection carried by the body goes back, and its use limit.
    pooled: Option<(Arc<EndpointState>, u32)>,
    _in_flight: Option<InFlight>,
}

impl Completion for Done {
    fn finish(self: Box<Self>, mut how: Finished) {
        let Done { conn, mut rec, pooled, _in_flight } = *self;
        if how.complete
            && let (Some((ep, max)), Some(c)) = (pooled, how.conn.take())
        {
            ep.pool().give_back(c, max);
        }
        if !how.complete {
            // The response did not reach its end: the upstream body failed (UC), or the
            // client went away and the body was dropped (DC).
            rec.flags.insert(if how.failed {
                Flags::UPSTREAM_CONNECTION_TERMINATION
            } else {
                Flags::DOWNSTREAM_CONNECTION_TERMINATION
            });
        }
        emit(&conn, rec, &how);
    }
}

/// A request whose response was never produced because the client went away while it
/// waited (hyper drops the handler): recorded with response code 0 and `DC`, as Envoy
/// logs it.
struct Abandoned {
    conn: Arc<ConnCtx>,
    rec: Option<Record>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(mut rec) = self.rec.take() {
            rec.code = 0;
            rec.flags.insert(Flags::DOWNSTREAM_CONNECTION_TERMINATION);
            rec.details = "downstream_remote_disconnect";
            emit(&self.conn, rec, &Finished::default());
        }
    }
}

/// Metrics and the access log line for a finished (or abandoned) request.
fn emit(conn: &ConnCtx, rec: Record, how: &Finished) {
    let duration = rec.started.elapsed();
    let shared = &conn.shared;
    let dest = rec.dest.clone().unwrap_or_else(|| Arc::new(DestLabels::unknown("")));
    let request_bytes = rec.request_bytes.as_ref().map_or(0, |b| b.load(Ordering::Relaxed));
    shared.metrics.record(&Observation {
        dest,
        code: rec.code,
        flags: rec.flags,
        grpc: rec.grpc,
        grpc_status: how.grpc_status.or(rec.grpc_status),
        duration_ms: duration.as_secs_f64() * 1000.0,
        request_bytes,
        response_bytes: how.bytes,
    });
    if let Some(l) = rec.log {
        shared.access_log.log(&Entry {
            start: Some(rec.start),
            method: l.method,
            path: l.path,
            protocol: l.protocol,
            code: rec.code,
            flags: rec.flags.render(),
            details: rec.details,
            bytes_received: request_bytes,
            bytes_sent: how.bytes,
            duration_ms: duration.as_millis() as u64,
            upstream_service_time: rec.upstream_service_time,
            xff: l.xff,
            user_agent: l.user_agent,
            request_id: l.request_id,
            authority: l.authority,
            upstream_host: rec.upstream_host.map(|h| h.to_string()),
            upstream_cluster: l.upstream_cluster,
            downstream_local: conn.local.to_string(),
            downstream_remote: conn.peer.to_string(),
            route_name: l.route_name,
        });
    }
}

/// Counts request body bytes.
struct CountInto(Arc<AtomicU64>);

impl Completion for CountInto {
    fn finish(self: Box<Self>, how: Finished) {
        self.0.store(how.bytes, Ordering::Relaxed);
    }
}

fn protocol_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

fn header_string(h: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The hyper service: never fails; every problem is a response.
pub(crate) async fn handle(req: Request<Incoming>, conn: Arc<ConnCtx>) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let start = SystemTime::now();
    let snapshot = conn.shared.snapshot.load_full();
    let (mut parts, body) = req.into_parts();
    let mut body = ProxyBody::incoming(body);
    let request_bytes = (!hyper::body::Body::is_end_stream(&body)).then(|| {
        let count = Arc::new(AtomicU64::new(0));
        body.set_on_finish(Box::new(CountInto(count.clone())));
        count
    });

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
        flags: Flags::NONE,
        details: "via_upstream",
        dest: None,
        upstream_host: None,
        upstream_service_time: None,
        grpc_status: None,
        request_bytes,
        log,
    };
    let mut guard = Abandoned { conn: conn.clone(), rec: Some(rec) };
    let rec = guard.rec.as_mut().expect("set above");
    let outcome = match (authority, request_defect(&parts)) {
        (_, Some(l)) => Outcome::Local(l),
        (None, None) => Outcome::Local(Local::BAD_REQUEST),
        (Some(authority), None) => route_and_forward(&conn, &snapshot, parts, body, authority.as_str(), rec).await,
    };
    let (mut resp, pooled, in_flight) = match outcome {
        Outcome::Local(l) => (local_reply(l, rec), None, None),
        Outcome::Response { resp, pooled, in_flight } => (resp, pooled, in_flight),
    };
    resp.headers_mut().insert(header::SERVER, conn.server_header());
    rec.code = resp.status().as_u16();
    let rec = guard.rec.take().expect("set above");
    let done = Done { conn, rec, pooled, _in_flight: in_flight };
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
fn local_reply(l: Local, rec: &mut Record) -> Response<ProxyBody> {
    rec.flags.insert(l.flags);
    rec.details = l.details;
    if rec.grpc {
        rec.grpc_status = Some(crate::respond::grpc_status(l.status));
    }
    l.response(rec.grpc)
}

/// A local reply on a matched route: the route's (and the chosen destination's)
/// response header edits apply to it, as Envoy's router applies them to its replies.
fn route_reply(l: Local, rec: &mut Record, edits: &[&weir_table::HeaderOps], tctx: &TemplateCtx<'_>) -> Outcome {
    let mut resp = local_reply(l, rec);
    let status = resp.status();
    for ops in edits {
        headers::apply_response(resp.headers_mut(), status, ops, tctx);
    }
    Outcome::plain(resp)
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

enum Outcome {
    Local(Local),
    Response { resp: Response<ProxyBody>, pooled: Option<(Arc<EndpointState>, u32)>, in_flight: Option<InFlight> },
}

impl Outcome {
    fn plain(resp: Response<ProxyBody>) -> Self {
        Outcome::Response { resp, pooled: None, in_flight: None }
    }
}

async fn route_and_forward(
    conn: &Arc<ConnCtx>,
    snapshot: &Arc<Snapshot>,
    mut parts: Parts,
    body: ProxyBody,
    authority: &str,
    rec: &mut Record,
) -> Outcome {
    let listener = match conn.role {
        ListenerRole::Mesh => snapshot.mesh(),
        ListenerRole::Gateway => snapshot.listener(&conn.listener),
    };
    let Some(listener) = listener else { return Outcome::Local(Local::NO_ROUTE) };
    let scheme = "http";
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
            Err(_) => return Outcome::Local(Local::BAD_PATH),
        };
        if let Some(l) = rec.log.as_mut() {
            l.path = pq.as_str().to_string();
        }
    }
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
    let routed = match listener.route(&view) {
        Ok(r) => r,
        Err(NoRoute::UnknownHost | NoRoute::NoMatch) => {
            rec.dest = Some(Arc::new(DestLabels::unknown(weir_table::hosts::strip_port(authority))));
            return Outcome::Local(Local::NO_ROUTE);
        }
    };
    if let Some(l) = rec.log.as_mut() {
        l.route_name = (!routed.route.name.is_empty()).then(|| routed.route.name.to_string());
    }
    let route_port = routed.view.port;
    if routed.vhost.require_tls {
        // Envoy's TLS redirect keeps the Host as sent, port included.
        let location = format!("https://{authority}{}", pq.as_str());
        return Outcome::plain(redirect::redirect_response(StatusCode::MOVED_PERMANENTLY, &location));
    }
    // The action is shared (`Arc`); hold it so the request can be taken apart.
    let action = routed.route.action.clone();
    let tctx = TemplateCtx {
        peer: conn.peer,
        local: conn.local,
        protocol: protocol_name(parts.version),
        hostname: &conn.shared.hostname,
        start: rec.start,
        request: Some(&parts.headers),
        route_name: &routed.route.name,
        cluster: "",
    };
    match &*action {
        Action::Direct(d) => {
            rec.details = "direct_response";
            let mut r = text(d.status, d.body.clone());
            if d.body.is_empty() {
                r.headers_mut().remove(header::CONTENT_TYPE);
            }
            headers::apply_response(r.headers_mut(), d.status, &d.headers, &tctx);
            Outcome::plain(r)
        }
        Action::Redirect(rd) => {
            rec.details = "direct_response";
            let location =
                redirect::redirect_location(rd, scheme, authority, path, query, route_port, conn.local.port());
            let mut r = redirect::redirect_response(rd.status, &location);
            headers::apply_response(r.headers_mut(), rd.status, &rd.headers, &tctx);
            Outcome::plain(r)
        }
        Action::Forward(f) => {
            let origin = parts.headers.get(header::ORIGIN).cloned();
            if let Some(cors) = &f.cors
                && let Some(pre) = cors::preflight(cors, &parts, origin.as_ref())
            {
                rec.details = "cors_response";
                return Outcome::plain(pre);
            }
            let route_name = &routed.route.name;
            forward(conn, snapshot, &mut parts, body, authority, &pq, route_port, route_name, f, origin, rec).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    conn: &Arc<ConnCtx>,
    snapshot: &Arc<Snapshot>,
    parts: &mut Parts,
    body: ProxyBody,
    authority: &str,
    pq: &PathAndQuery,
    route_port: u16,
    route_name: &str,
    f: &Forward,
    origin: Option<HeaderValue>,
    rec: &mut Record,
) -> Outcome {
    let (path, query) = (pq.path(), pq.query());
    let dest = f.pick(rand::random::<u32>());
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
        hostname: &conn.shared.hostname,
        start: rec.start,
        request: original.as_ref(),
        route_name,
        cluster: &dest.name,
    };
    let edits = [&f.headers, &dest.headers];
    let Some(cluster_id) = dest.cluster.resolve(route_port) else {
        rec.dest = Some(Arc::new(DestLabels::unknown(weir_table::hosts::strip_port(authority))));
        return route_reply(Local::NO_CLUSTER, rec, &edits, &tctx);
    };
    let cluster = snapshot.clusters[cluster_id.0].clone();
    rec.dest = Some(cluster.labels.clone());
    let (hash, set_cookie) = match affinity::hash_key_of(&cluster) {
        Some(k) => affinity::hash_input(k, parts, conn.peer, query),
        None => (None, None),
    };

    // --- the upstream request, built in place from the downstream one ---------------
    let mut h = std::mem::take(&mut parts.headers);
    let edge = conn.role == ListenerRole::Gateway;
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
    }
    headers::forwarded(&mut h, conn.peer, "http", edge);
    headers::apply_request(&mut h, &f.headers, &tctx);
    headers::apply_request(&mut h, &dest.headers, &tctx);
    let new_authority = f.authority.clone().or_else(|| dest.authority.clone());
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
    if let Some(t) = f.timeout {
        h.insert(headers::X_ENVOY_EXPECTED_RQ_TIMEOUT_MS.clone(), HeaderValue::from(t.as_millis() as u64));
    }
    let use_h2 = websocket.is_none()
        && match cluster.spec.protocol {
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::ClientProtocol => downstream_version == Version::HTTP_2,
        };
    let mode = match (use_h2, &websocket) {
        (true, _) => Mode::H2,
        (false, Some(_)) => Mode::Upgrade,
        (false, None) => Mode::H1,
    };
    let up_authority: &str = new_authority.as_ref().and_then(|a| a.to_str().ok()).unwrap_or(authority);
    // Envoy's access log reads the request headers after the router edited them: the
    // authority as rewritten, X-Forwarded-For with the peer appended.
    if let Some(l) = rec.log.as_mut() {
        l.authority = up_authority.to_string();
        l.xff = header_string(&h, &headers::X_FORWARDED_FOR);
    }
    // The path as sent upstream: the original (a cheap clone) unless rewritten.
    let up_pq: PathAndQuery = match (&new_path, query) {
        (None, _) => pq.clone(),
        (Some(p), Some(q)) => format!("{p}?{q}").parse().unwrap_or_else(|_| pq.clone()),
        (Some(p), None) => p.parse().unwrap_or_else(|_| pq.clone()),
    };
    let uri: Uri = if use_h2 {
        let mut up = http::uri::Parts::default();
        up.scheme = Some(http::uri::Scheme::HTTP);
        up.authority = up_authority.parse().ok();
        up.path_and_query = Some(up_pq);
        Uri::from_parts(up).unwrap_or_else(|_| Uri::from_static("/"))
    } else {
        Uri::from(up_pq)
    };
    // The upstream gets the authority the request was routed by (or its rewrite), never
    // a different Host the client also sent (h2 `host` beside `:authority`, or `Host`
    // beside an absolute-form URI).
    if use_h2 {
        h.remove(header::HOST);
    } else {
        let mut hosts = h.get_all(header::HOST).iter();
        let same = matches!((hosts.next(), hosts.next()), (Some(v), None) if v.as_bytes() == up_authority.as_bytes());
        if !same && let Ok(v) = HeaderValue::from_str(up_authority) {
            h.insert(header::HOST, v);
        }
    }
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = if use_h2 { Version::HTTP_2 } else { Version::HTTP_11 };
    *req.headers_mut() = h;

    // --- send, retrying connection failures on other hosts (Istio's default policy
    // retries connect-failure and refused-stream) ------------------------------------
    let retries = f.retry.as_ref().map_or(0, |r| {
        let on = |c: &str| {
            r.retry_on.iter().any(|t| &**t == c || &**t == "5xx" || &**t == "gateway-error" || &**t == "reset")
        };
        if on("connect-failure") || on("refused-stream") { r.attempts } else { 0 }
    });
    let mut last_failed: Option<usize> = None;
    let mut attempt = 0u32;
    let upstream_started = Instant::now();
    loop {
        attempt += 1;
        let (ep, idx) = match cluster.balancer.pick(&cluster.endpoints, hash, last_failed) {
            Some(i) => (cluster.endpoints[i].clone(), Some(i)),
            None if cluster.spec.lb == LbPolicy::Passthrough => {
                let host = weir_table::hosts::strip_port(authority);
                (cluster.passthrough_endpoint(host, cluster.spec.port), None)
            }
            None => return route_reply(Local::NO_HEALTHY_UPSTREAM, rec, &edits, &tctx),
        };
        rec.upstream_host = Some(ep.host.clone());
        rec.dest = Some(ep.labels.clone());
        req.headers_mut().insert(headers::X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(attempt));
        let in_flight = InFlight::new(&ep);
        let limits = &cluster.spec.limits;
        let sent = send_upstream(
            &ep,
            mode,
            limits.connect_timeout,
            req,
            f.timeout.map(|t| t.saturating_sub(upstream_started.elapsed())),
        );
        match sent.await {
            // Envoy refuses a response with both Content-Length and Transfer-Encoding.
            Ok((resp, _))
                if resp.headers().contains_key(header::TRANSFER_ENCODING)
                    && resp.headers().contains_key(header::CONTENT_LENGTH) =>
            {
                return route_reply(Local::UPSTREAM_PROTOCOL_ERROR, rec, &edits, &tctx);
            }
            Ok((mut resp, pooled)) => {
                rec.upstream_service_time = Some(upstream_started.elapsed().as_millis() as u64);
                // The client gets the version it spoke, whatever the upstream spoke (an
                // HTTP/1.0 upstream must not turn a keep-alive client into a closing one).
                *resp.version_mut() = downstream_version;
                let status = resp.status();
                if status == StatusCode::SWITCHING_PROTOCOLS
                    && websocket.is_some()
                    && let Some(down) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
                {
                    tokio::spawn(tunnel(down, hyper::upgrade::on(&mut resp)));
                }
                let switched = (status == StatusCode::SWITCHING_PROTOCOLS)
                    .then(|| resp.headers().get(header::UPGRADE).cloned())
                    .flatten();
                let rh = resp.headers_mut();
                headers::strip_hop_by_hop(rh);
                if let Some(up) = switched {
                    headers::restore_upgrade(rh, up);
                }
                headers::apply_response(rh, status, &f.headers, &tctx);
                headers::apply_response(rh, status, &dest.headers, &tctx);
                if rec.grpc {
                    rec.grpc_status = rh.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok());
                }
                if let Some(ms) = rec.upstream_service_time {
                    rh.insert(headers::X_ENVOY_UPSTREAM_SERVICE_TIME.clone(), HeaderValue::from(ms));
                }
                if let (Some(cors), Some(o)) = (&f.cors, &origin) {
                    cors::response_headers(cors, o, rh);
                }
                if let Some(c) = &set_cookie {
                    rh.append(header::SET_COOKIE, c.clone());
                }
                let (p, b) = resp.into_parts();
                let (body, pooled) = match pooled {
                    Some(c) => (ProxyBody::upstream(b, c), Some((ep.clone(), limits.max_requests_per_connection))),
                    None => (ProxyBody::incoming(b), None),
                };
                return Outcome::Response { resp: Response::from_parts(p, body), pooled, in_flight: Some(in_flight) };
            }
            Err(Failure::Timeout) => return route_reply(Local::TIMEOUT, rec, &edits, &tctx),
            Err(Failure::Upstream(e)) => {
                let reason = match &e {
                    UpstreamError::Connect(io, _) => io.to_string(),
                    UpstreamError::Reset(err, _) => err.to_string(),
                };
                tracing::debug!(upstream = %ep.host, %reason, "upstream exchange failed");
                let (local, back) = match e {
                    UpstreamError::Connect(_, r) => (Local::CONNECT_FAILURE, Some(r)),
                    UpstreamError::Reset(err, r) => (reset_reply(&err), r),
                };
                match back {
                    Some(r) if attempt <= retries => {
                        last_failed = idx;
                        req = r;
                        let backoff = f.retry.as_ref().map_or(Duration::from_millis(25), |r| r.backoff);
                        tokio::time::sleep(jittered(backoff, attempt)).await;
                    }
                    _ => {
                        if attempt > 1 {
                            rec.flags.insert(Flags::UPSTREAM_RETRY_LIMIT);
                        }
                        return route_reply(local, rec, &edits, &tctx);
                    }
                }
            }
        }
    }
}

/// The reply for an exchange that failed after the request was handed to the
/// connection: an invalid response is the upstream's protocol error (502 UPE), a
/// request body that failed is the downstream's fault, anything else a reset (503 UC).
fn reset_reply(err: &hyper::Error) -> Local {
    if err.is_parse() || err.is_parse_status() {
        Local::UPSTREAM_PROTOCOL_ERROR
    } else if err.is_user() {
        Local::DOWNSTREAM_BODY_ERROR
    } else {
        Local::UPSTREAM_RESET
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

/// Fully jittered exponential back-off, capped at 10x the base (spec §2.9).
fn jittered(base: Duration, attempt: u32) -> Duration {
    let cap = base.saturating_mul(10);
    let exp = base.saturating_mul(1u32 << attempt.min(10)).min(cap);
    let ms = exp.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(0..ms))
}

enum Failure {
    Upstream(UpstreamError),
    Timeout,
}

/// How a request travels upstream.
#[derive(Clone, Copy)]
enum Mode {
    /// A pooled HTTP/1.1 connection.
    H1,
    /// The endpoint's HTTP/2 connection.
    H2,
    /// A dedicated HTTP/1.1 connection that may switch protocols (WebSocket).
    Upgrade,
}

/// Copies bytes both ways between the client and the upstream once both sides have
/// switched protocols; ends when either side closes.
async fn tunnel(down: hyper::upgrade::OnUpgrade, up: hyper::upgrade::OnUpgrade) {
    let (Ok(down), Ok(up)) = tokio::join!(down, up) else { return };
    let (mut down, mut up) = (hyper_util::rt::TokioIo::new(down), hyper_util::rt::TokioIo::new(up));
    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
}

/// One exchange with one endpoint, bounded by what is left of the route timeout.
async fn send_upstream(
    ep: &Arc<EndpointState>,
    mode: Mode,
    connect_timeout: Duration,
    req: Request<ProxyBody>,
    timeout: Option<Duration>,
) -> Result<(Response<Incoming>, Option<Box<H1Conn>>), Failure> {
    let fut = async {
        match mode {
            Mode::H2 => ep.pool().send_h2(&ep.address, connect_timeout, req).await.map(|r| (r, None)),
            Mode::H1 => ep.pool().send_h1(&ep.address, connect_timeout, req).await.map(|(r, c)| (r, Some(c))),
            Mode::Upgrade => ep.pool().send_upgrade(&ep.address, connect_timeout, req).await.map(|r| (r, None)),
        }
    };
    match timeout {
        None => fut.await.map_err(Failure::Upstream),
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r.map_err(Failure::Upstream),
            Err(_) => Err(Failure::Timeout),
        },
    }
}
