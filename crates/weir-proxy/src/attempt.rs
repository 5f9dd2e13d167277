//! One try, in Envoy's order: circuit-breaker admission (`maxRequests`), the endpoint
//! pick among hosts not ejected (preferring hosts not tried yet), a connection or stream
//! from the pool (which applies the connection and pending limits), then the exchange
//! up to the response head under the per-try timeout. What the try tells about its host
//! goes to outlier detection as soon as it is known.

use std::sync::Arc;
use std::time::Duration;

use hyper::{Request, Response};
use weir_table::LbPolicy;

use crate::body::ProxyBody;
use crate::breaker::Permit;
use crate::failure::Failure;
use crate::h1::client::SendError;
use crate::h1::head::Framing;
use crate::limit::limited;
use crate::outlier::{Outcome, grpc_to_http};
use crate::pool::{Acquired, H1Conn, H2Stream, PoolError};
use crate::stats::ClusterStats;
use crate::timeout::{self, RequestEnd};
use crate::upstream::{ClusterState, EndpointState, InFlight};

/// How a request travels upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A pooled HTTP/1.1 connection.
    H1,
    /// A stream of one of the endpoint's HTTP/2 connections.
    H2,
    /// A dedicated HTTP/1.1 connection that may switch protocols (WebSocket).
    Upgrade,
}

/// What a response holds until its body ends.
pub(crate) struct Lease {
    pub(crate) cluster: Arc<ClusterState>,
    pub(crate) endpoint: Arc<EndpointState>,
    /// The HTTP/1.1 connection, given back to its pool when the body ends.
    pub(crate) conn: Option<Box<H1Conn>>,
    _stream: Option<H2Stream>,
    _in_flight: InFlight,
    _request: Option<Permit>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("endpoint", &self.endpoint.host).finish_non_exhaustive()
    }
}

impl Lease {
    /// The body ended: the HTTP/1.1 connection goes back to its pool.
    pub(crate) fn finish(mut self, complete: bool) {
        if complete && let Some(c) = self.conn.take() {
            self.endpoint.pool().give_back(c, &self.cluster.spec.limits, &self.cluster.stats);
        }
    }
}

/// A try that got a response head.
pub(crate) struct Sent {
    pub(crate) resp: Response<Upstream>,
    pub(crate) lease: Lease,
}

/// How a response body arrives: an HTTP/2 stream, or the framing of an HTTP/1.1 body
/// that the lease's connection carries.
pub(crate) enum Upstream {
    H2(crate::h2_client::RecvBody),
    H1(Framing),
}

impl Sent {
    /// The response, its body set to stream from the upstream.
    pub(crate) fn into_response(self) -> (Response<ProxyBody>, Lease) {
        let Sent { resp, mut lease } = self;
        let (parts, b) = resp.into_parts();
        if parts.status == http::StatusCode::SWITCHING_PROTOCOLS {
            // The connection stays with the lease, for the tunnel.
            return (Response::from_parts(parts, ProxyBody::empty()), lease);
        }
        let body = match (b, lease.conn.take()) {
            (Upstream::H2(b), _) => ProxyBody::h2(b),
            (Upstream::H1(framing), Some(c)) => ProxyBody::h1(c, framing),
            (Upstream::H1(_), None) => ProxyBody::empty(),
        };
        (Response::from_parts(parts, body), lease)
    }
}

/// A try that did not.
pub(crate) struct Failed {
    pub(crate) failure: Failure,
    /// The request, when it was never written (it can go again as it is). Boxed: a
    /// failure is rare, and a small result is cheap to move on the common path.
    pub(crate) request: Option<Box<Request<ProxyBody>>>,
    /// The host tried, if one was picked.
    pub(crate) endpoint: Option<Arc<EndpointState>>,
}

/// What a try needs to know.
pub(crate) struct Try<'a> {
    pub(crate) cluster: &'a Arc<ClusterState>,
    pub(crate) mode: Mode,
    /// Consistent-hash value of the request.
    pub(crate) hash: Option<u64>,
    /// Hosts tried already, and how many picks may be spent avoiding them.
    pub(crate) avoid: &'a [Arc<EndpointState>],
    pub(crate) host_selection_attempts: u32,
    /// The host a passthrough cluster sends to (the request's authority).
    pub(crate) passthrough_host: &'a str,
    pub(crate) per_try: Option<Duration>,
    pub(crate) end: &'a RequestEnd,
    pub(crate) grpc: bool,
    /// Where the try publishes the host it picked.
    pub(crate) current: &'a std::sync::Mutex<Option<Arc<EndpointState>>>,
    /// Fail at once instead of waiting for a connection (mirrors are dropped, not
    /// queued, when their cluster is at its limits).
    pub(crate) no_wait: bool,
}

/// The endpoint for a try: the balancer's pick among hosts not ejected, picked again
/// (up to `attempts` times) while it is a host tried already, as Envoy's
/// `previous_hosts` predicate does. Consistent-hash balancers keep their pick.
pub(crate) fn pick(
    cluster: &ClusterState,
    hash: Option<u64>,
    avoid: &[Arc<EndpointState>],
    attempts: u32,
) -> Option<Arc<EndpointState>> {
    let set = cluster.lb();
    // Envoy's `host_selection_retry_max_attempts` counts the picks after the first.
    let tries = if avoid.is_empty() || set.balancer.is_hashing() { 1 } else { attempts + 1 };
    let mut last = None;
    for _ in 0..tries {
        let ep = &set.endpoints[set.balancer.pick(&set.endpoints, hash)?];
        if !avoid.iter().any(|a| Arc::ptr_eq(a, ep)) {
            return Some(ep.clone());
        }
        last = Some(ep.clone());
    }
    last
}

/// Classifies an exchange that failed after the request was handed to the connection.
fn classify(err: &Exchange) -> Failure {
    match err {
        Exchange::H1(SendError::Protocol(_)) => Failure::ProtocolError,
        Exchange::H1(SendError::DownstreamBody(_)) => Failure::DownstreamBody,
        Exchange::H1(SendError::Io { written, .. }) => Failure::ConnectionTerminated { before_request: !written },
        Exchange::H1(SendError::Stale(_)) => Failure::ConnectionTerminated { before_request: true },
        Exchange::H2(err) => classify_h2(err),
    }
}

fn classify_h2(err: &h2::Error) -> Failure {
    if err.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return Failure::RemoteReset { refused: true };
    }
    if err.is_reset() && err.is_remote() {
        return Failure::RemoteReset { refused: false };
    }
    Failure::ConnectionTerminated { before_request: false }
}

/// How an exchange failed.
enum Exchange {
    H1(SendError),
    H2(h2::Error),
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exchange::H1(e) => e.fmt(f),
            Exchange::H2(e) => e.fmt(f),
        }
    }
}

/// A failed send: the request when it was never written, else why it failed.
enum SendFailed {
    Unsent(Box<Request<ProxyBody>>),
    Failed(Exchange),
}

/// Runs one try of `req`.
pub(crate) async fn run(t: &Try<'_>, mut req: Request<ProxyBody>) -> Result<Sent, Failed> {
    let cluster = t.cluster;
    let limits = &cluster.spec.limits;
    let admitted = match cluster.breakers.request(limits) {
        Ok(p) => p,
        Err(o) => {
            ClusterStats::inc(&cluster.stats.upstream_rq_pending_overflow);
            return Err(Failed { failure: Failure::Overflow(o), request: Some(Box::new(req)), endpoint: None });
        }
    };
    let ep = match pick(cluster, t.hash, t.avoid, t.host_selection_attempts) {
        Some(ep) => ep,
        None if cluster.spec.lb == LbPolicy::Passthrough => {
            // `PassthroughCluster` has no port of its own: the request names it.
            let port = match cluster.spec.port {
                0 => weir_table::hosts::port_of(t.passthrough_host).unwrap_or(80),
                p => p,
            };
            cluster.passthrough_endpoint(weir_table::hosts::strip_port(t.passthrough_host), port)
        }
        None => {
            return Err(Failed { failure: Failure::NoHealthyUpstream, request: Some(Box::new(req)), endpoint: None });
        }
    };
    *t.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(ep.clone());
    let in_flight = InFlight::new(&ep);
    let lease = |conn, stream| Lease {
        cluster: cluster.clone(),
        endpoint: ep.clone(),
        conn,
        _stream: stream,
        _in_flight: in_flight,
        _request: admitted,
    };
    let failed = |failure, request: Option<Request<ProxyBody>>| Failed {
        failure,
        request: request.map(Box::new),
        endpoint: Some(ep.clone()),
    };
    let pool = ep.pool();
    let pcx = cluster.pool_ctx(&ep, t.no_wait);
    let pool_failure = |e: PoolError| -> Failure {
        match e {
            PoolError::Overflow(o) => Failure::Overflow(o),
            PoolError::Connect { timeout, error } => {
                tracing::debug!(upstream = %ep.host, %error, "upstream connect failed");
                cluster.report(&ep, Outcome::ConnectFailed);
                Failure::ConnectFailed { timeout }
            }
            PoolError::Handshake(error) => {
                tracing::debug!(upstream = %ep.host, %error, "upstream handshake failed");
                cluster.report(&ep, Outcome::ConnectFailed);
                Failure::ConnectionTerminated { before_request: true }
            }
        }
    };
    // A reused connection can turn out closed when written to; the request then comes
    // back untouched and takes another connection (a few times at most).
    let mut stale_left = 3;
    loop {
        let mut conn = match Conn::acquire(t.mode, pool, &pcx).await {
            Ok(c) => c,
            Err(e) => return Err(failed(pool_failure(e), Some(req))),
        };
        cluster.report(&ep, Outcome::Connected);
        if stale_left == 3 {
            // Envoy counts a request upstream once it has its connection.
            cluster.rq_total.inc();
        }
        let per_try = t.per_try.map(|d| timeout::per_try(t.end, d));
        let sent = limited(conn.send(req), per_try).await.ok();
        let reused = conn.reused;
        match sent {
            Some(Ok(resp)) => {
                // As Envoy's router: a gRPC status in the response head (trailers-only)
                // is the outcome, else the HTTP status.
                let grpc_status = if t.grpc {
                    resp.headers().get("grpc-status").and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok())
                } else {
                    None
                };
                let code = grpc_status.map_or(resp.status().as_u16(), grpc_to_http);
                cluster.report(&ep, Outcome::Status(code));
                let (h1, h2) = conn.into_parts();
                return Ok(Sent { resp, lease: lease(h1, h2) });
            }
            None => {
                ClusterStats::inc(&cluster.stats.upstream_rq_per_try_timeout);
                cluster.report(&ep, Outcome::Timeout);
                return Err(failed(Failure::PerTryTimeout, None));
            }
            Some(Err(SendFailed::Unsent(r))) if reused && stale_left > 0 => {
                stale_left -= 1;
                req = *r;
            }
            Some(Err(SendFailed::Unsent(r))) => {
                cluster.report(&ep, Outcome::ConnectFailed);
                return Err(failed(Failure::ConnectionTerminated { before_request: true }, Some(*r)));
            }
            Some(Err(SendFailed::Failed(error))) => {
                let f = classify(&error);
                tracing::debug!(upstream = %ep.host, %error, failure = ?f, "upstream exchange failed");
                if f != Failure::DownstreamBody {
                    ClusterStats::inc(&cluster.stats.upstream_rq_rx_reset);
                    cluster.report(&ep, Outcome::ConnectFailed);
                }
                return Err(failed(f, None));
            }
        }
    }
}

/// A connection (or stream) had from the pool for one exchange.
struct Conn {
    kind: ConnKind,
    /// Used before: it may turn out closed when written to.
    reused: bool,
}

enum ConnKind {
    H1(Box<H1Conn>),
    H2(H2Stream),
    /// A connection for a request that may switch protocols: never pooled again.
    Upgrade(Box<H1Conn>),
}

type SendResult = Result<Response<Upstream>, SendFailed>;

impl Conn {
    async fn acquire(mode: Mode, pool: &crate::pool::Pool, pcx: &crate::pool::PoolCtx<'_>) -> Result<Conn, PoolError> {
        Ok(match mode {
            Mode::H1 => {
                let Acquired { conn, reused } = pool.h1(pcx).await?;
                Conn { kind: ConnKind::H1(conn), reused }
            }
            Mode::H2 => Conn { kind: ConnKind::H2(pool.h2(pcx).await?), reused: true },
            Mode::Upgrade => {
                // From the HTTP/1.1 pool (idle or new), never to go back to it.
                let Acquired { conn, reused } = pool.h1(pcx).await?;
                Conn { kind: ConnKind::Upgrade(conn), reused }
            }
        })
    }

    /// One exchange up to the response head. (One future type for every protocol keeps
    /// a try's state small.)
    async fn send(&mut self, req: Request<ProxyBody>) -> SendResult {
        let reused = self.reused;
        let upgrade = matches!(self.kind, ConnKind::Upgrade(_));
        match &mut self.kind {
            ConnKind::H1(c) | ConnKind::Upgrade(c) => match c.send(req, reused).await {
                Ok(head) => {
                    if upgrade {
                        c.io.forbid_reuse();
                    }
                    let mut resp = Response::new(Upstream::H1(head.framing));
                    *resp.status_mut() = head.status;
                    *resp.version_mut() = head.version;
                    *resp.headers_mut() = head.headers;
                    Ok(resp)
                }
                Err(SendError::Stale(r)) => Err(SendFailed::Unsent(r)),
                Err(e) => Err(SendFailed::Failed(Exchange::H1(e))),
            },
            ConnKind::H2(s) => match s.send(req).await {
                Ok(resp) => Ok(resp.map(Upstream::H2)),
                Err(crate::h2_client::SendError::Unsent(r)) => Err(SendFailed::Unsent(Box::new(r))),
                Err(crate::h2_client::SendError::Failed(e)) => Err(SendFailed::Failed(Exchange::H2(e))),
            },
        }
    }

    /// What the response keeps: the HTTP/1.1 connection or the HTTP/2 stream.
    fn into_parts(self) -> (Option<Box<H1Conn>>, Option<H2Stream>) {
        match self.kind {
            ConnKind::H1(c) | ConnKind::Upgrade(c) => (Some(c), None),
            ConnKind::H2(s) => (None, Some(s)),
        }
    }
}
