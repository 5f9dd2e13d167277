//! Upstream connections of one endpoint: idle HTTP/1.1 connections in a lock-free queue
//! and HTTP/2 connections with a stream count each, created on demand within the
//! cluster's circuit-breaker limits (spec §3.6).
//!
//! An HTTP/1.1 connection is not given a task of its own: the request that uses it
//! drives it (while waiting for the response head, then from the response body as the
//! downstream reads it), so an exchange costs no cross-task wake-ups. It goes back to
//! the queue only after its response body has been read to the end.
//!
//! A request that finds no idle connection (or free stream) is pending: it opens a
//! connection if the cluster's `maxConnections` allows, else waits until one is given
//! back, closes, or the cluster has room again. A pool that has no connection at all
//! always opens one, as Envoy's pools do, so a request never waits for a connection
//! that only another endpoint could give back.
//!
//! By default each worker has its own pool per endpoint (no sharing, no locks). A
//! cluster with a connection limit shares one pool per endpoint between workers, so the
//! limit holds for the whole weir instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_queue::SegQueue;
use hyper::Request;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use weir_table::{Address, ConnectionLimits, TcpKeepalive};

use crate::body::ProxyBody;
use crate::breaker::{Breakers, Overflow, Permit};
use crate::stats::ClusterStats;
use crate::tls::Alpn;
use crate::upstream_io::UpstreamIo;

mod http2;
pub(crate) use http2::{H2Conn, H2Stream};

/// Idle HTTP/1.1 connections kept per endpoint.
const MAX_IDLE: usize = 256;

/// What a pool needs to know about its cluster.
#[derive(Clone, Copy)]
pub(crate) struct PoolCtx<'a> {
    pub(crate) address: &'a Address,
    pub(crate) limits: &'a ConnectionLimits,
    pub(crate) breakers: &'a Arc<Breakers>,
    pub(crate) stats: &'a ClusterStats,
    /// The cluster's TLS origination, if it has one.
    pub(crate) tls: Option<&'a crate::tls::Origin>,
    /// No room now: overflow instead of waiting.
    pub(crate) no_wait: bool,
}

/// Why no connection was had.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// `maxPendingRequests` was reached (503 `UO`).
    Overflow(Overflow),
    /// The TCP connection or its TLS handshake failed (503 `UF`); `timeout` when the
    /// connect timeout fired.
    Connect { error: std::io::Error, timeout: bool },
    /// The HTTP/2 handshake failed.
    Handshake(h2::Error),
}

/// Counts of one pool, shared with its connections.
#[derive(Debug, Default)]
pub(crate) struct PoolCounts {
    /// Open (and opening) connections.
    pub(crate) connections: AtomicU32,
    /// The same by protocol: a pool with none of a protocol may always open one.
    h1: AtomicU32,
    h2: AtomicU32,
    /// Requests waiting for a connection of this pool.
    waiting: AtomicU32,
    wake: Notify,
    /// The cluster limits connections: requests may wait here.
    limited: bool,
}

impl PoolCounts {
    /// Wakes every waiting request to look again (a connection was given back, a
    /// stream ended, a connection closed). Only pools of clusters with a connection
    /// limit ever have waiters.
    fn wake(&self) {
        if !self.limited {
            return;
        }
        // Pairs with the waiter's registration (a SeqCst increment before it looks):
        // either it sees what was just given back, or this sees it waiting.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake.notify_waiters();
        }
    }

    fn of(&self, proto: Proto) -> &AtomicU32 {
        match proto {
            Proto::H1 => &self.h1,
            Proto::H2 => &self.h2,
        }
    }
}

/// Which kind of connection a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

/// Holds a connection's place in the pool's and the cluster's counts until dropped.
struct Counted {
    pool: Arc<PoolCounts>,
    breakers: Arc<Breakers>,
    proto: Proto,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.pool.connections.fetch_sub(1, Ordering::AcqRel);
        self.pool.of(self.proto).fetch_sub(1, Ordering::AcqRel);
        self.breakers.release_connection();
        self.pool.wake();
    }
}

/// The place of an upgraded connection in the counts, held by its tunnel: the socket
/// stays open (and counted against `maxConnections`) as long as the tunnel does.
pub(crate) struct UpgradeSlot(#[allow(dead_code)] Counted);

impl std::fmt::Debug for UpgradeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpgradeSlot")
    }
}

/// Connects to one of the addresses `host` resolves to (cached, see [`crate::dns`]),
/// trying each in turn; when none answers, the answer is forgotten so the next connect
/// resolves again.
async fn connect_by_name(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in crate::dns::resolve(host, port).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    crate::dns::forget(host, port);
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} has no address"))))
}

/// Opens a TCP connection with a timeout; names are resolved here (resolution DNS).
pub(crate) async fn connect(
    addr: &Address,
    timeout: Duration,
    keepalive: Option<&TcpKeepalive>,
) -> Result<TcpStream, (std::io::Error, bool)> {
    let fut = async {
        let stream = match addr {
            Address::Socket(sa) => TcpStream::connect(sa).await?,
            Address::Dns(host, port) => connect_by_name(host, *port).await?,
        };
        stream.set_nodelay(true)?;
        if let Some(k) = keepalive {
            let mut ka = socket2::TcpKeepalive::new();
            if let Some(t) = k.time {
                ka = ka.with_time(t);
            }
            if let Some(i) = k.interval {
                ka = ka.with_interval(i);
            }
            if let Some(p) = k.probes {
                ka = ka.with_retries(p);
            }
            socket2::SockRef::from(&stream).set_tcp_keepalive(&ka)?;
        }
        Ok(stream)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(|e| (e, false)),
        Err(_) => Err((std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"), true)),
    }
}

// === HTTP/1.1 ===

/// An HTTP/1.1 connection of the pool, with what the pool tracks of it. Whoever uses
/// it drives it ([`crate::h1::client::Connection`]): the request, then the response
/// body.
pub(crate) struct H1Conn {
    pub(crate) io: crate::h1::client::Connection,
    uses: u32,
    created: Instant,
    idle_since: Instant,
    _counted: Counted,
}

impl H1Conn {
    /// Sends `req` and reads the response head.
    pub(crate) async fn send(
        &mut self,
        req: Request<ProxyBody>,
        reused: bool,
    ) -> Result<crate::h1::head::ResponseHead, crate::h1::client::SendError> {
        self.uses += 1;
        self.io.send(req, reused).await
    }

    /// The socket (and bytes read past the response head) of a connection that
    /// switched protocols, with its place in the counts, which the tunnel holds.
    pub(crate) fn into_upgraded(self: Box<Self>) -> (UpstreamIo, bytes::Bytes, UpgradeSlot) {
        let H1Conn { io, _counted, .. } = *self;
        let (stream, rest) = io.into_io();
        (stream, rest, UpgradeSlot(_counted))
    }

    fn expired(&self, limits: &ConnectionLimits, now: Instant) -> Option<Expiry> {
        if limits.max_connection_duration.is_some_and(|d| now.saturating_duration_since(self.created) >= d) {
            return Some(Expiry::Duration);
        }
        if limits.idle_timeout.is_some_and(|d| now.saturating_duration_since(self.idle_since) >= d) {
            return Some(Expiry::Idle);
        }
        None
    }
}

enum Expiry {
    Duration,
    Idle,
}

/// A connection had from the pool, and whether it was used before (a reused
/// connection may turn out closed when written to; the request then comes back).
pub(crate) struct Acquired<C> {
    pub(crate) conn: C,
    pub(crate) reused: bool,
}

/// A process-wide time origin for atomically stored instants.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn epoch_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

// === the pool ===

/// Connections to one endpoint (from one worker, or from all when shared).
pub(crate) struct Pool {
    /// Idle HTTP/1.1 connections (a lock-free queue that allocates only when used).
    /// Boxed: a connection is large (its buffers and state machine) and moves between
    /// the queue, the request and the response body on every exchange.
    idle: SegQueue<Box<H1Conn>>,
    idle_len: AtomicUsize,
    h2: ArcSwap<Vec<Arc<H2Conn>>>,
    h2_connecting: tokio::sync::Mutex<()>,
    /// HTTP/2 connects that failed: requests that waited for one fail with it.
    h2_connect_failures: AtomicU64,
    pub(crate) counts: Arc<PoolCounts>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("idle", &self.idle()).finish()
    }
}

impl Pool {
    /// A pool; `limited` when its cluster limits connections (requests may wait).
    pub(crate) fn new(limited: bool) -> Self {
        Pool {
            idle: SegQueue::new(),
            idle_len: AtomicUsize::new(0),
            h2: ArcSwap::from_pointee(Vec::new()),
            h2_connecting: tokio::sync::Mutex::new(()),
            h2_connect_failures: AtomicU64::new(0),
            counts: Arc::new(PoolCounts { limited, ..PoolCounts::default() }),
        }
    }
}

/// A request's place in the wait for a connection, counted while it waits.
struct Waiting<'a>(&'a PoolCounts);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    /// An idle connection that is still usable; closed and expired ones are dropped.
    fn pop_idle(&self, cx: &PoolCtx<'_>) -> Option<Box<H1Conn>> {
        let mut now = None;
        while let Some(mut conn) = self.idle.pop() {
            self.idle_len.fetch_sub(1, Ordering::Relaxed);
            // A peer may have closed the idle connection: its readiness tells.
            if !conn.io.check_idle() {
                continue;
            }
            let now = *now.get_or_insert_with(Instant::now);
            match conn.expired(cx.limits, now) {
                Some(Expiry::Duration) => ClusterStats::inc(&cx.stats.upstream_cx_max_duration_reached),
                Some(Expiry::Idle) => ClusterStats::inc(&cx.stats.upstream_cx_idle_timeout),
                None => return Some(conn),
            }
        }
        None
    }

    /// Room for one more connection: always for a pool with none, else within
    /// `maxConnections`. The slot is counted from now on.
    fn reserve(&self, cx: &PoolCtx<'_>, proto: Proto) -> Option<Counted> {
        let first = self.counts.of(proto).fetch_add(1, Ordering::AcqRel) == 0;
        let ok = if first {
            cx.breakers.force_connection();
            true
        } else {
            cx.breakers.reserve_connection(cx.limits)
        };
        if !ok {
            self.counts.of(proto).fetch_sub(1, Ordering::AcqRel);
            ClusterStats::inc(&cx.stats.upstream_cx_overflow);
            return None;
        }
        self.counts.connections.fetch_add(1, Ordering::AcqRel);
        Some(Counted { pool: self.counts.clone(), breakers: cx.breakers.clone(), proto })
    }

    /// A new connection (TLS when the cluster originates it, offering `alpn`).
    async fn open(&self, cx: &PoolCtx<'_>, alpn: Alpn) -> Result<UpstreamIo, PoolError> {
        match crate::upstream_io::open(cx.address, cx.limits, cx.tls.map(|t| (t, alpn))).await {
            Ok(s) => {
                ClusterStats::inc(&cx.stats.upstream_cx_total);
                Ok(s)
            }
            Err((error, timeout)) => {
                ClusterStats::inc(&cx.stats.upstream_cx_connect_fail);
                if timeout {
                    ClusterStats::inc(&cx.stats.upstream_cx_connect_timeout);
                }
                Err(PoolError::Connect { error, timeout })
            }
        }
    }

    async fn open_h1(&self, cx: &PoolCtx<'_>, counted: Counted) -> Result<Box<H1Conn>, PoolError> {
        let stream = self.open(cx, Alpn::Http1).await?;
        let now = Instant::now();
        Ok(Box::new(H1Conn {
            io: crate::h1::client::Connection::new(stream),
            uses: 0,
            created: now,
            idle_since: now,
            _counted: counted,
        }))
    }

    /// Registers the caller as waiting, then waits to be woken (a connection given
    /// back or closed, or room in the cluster); `check` runs once registered, so a
    /// wake-up between the check and the wait is not lost.
    async fn wait<T>(&self, cx: &PoolCtx<'_>, mut check: impl FnMut() -> Option<T>) -> Result<Option<T>, PoolError> {
        if cx.no_wait {
            ClusterStats::inc(&cx.stats.upstream_rq_pending_overflow);
            return Err(PoolError::Overflow(Overflow::Pending));
        }
        Ok(self.wait_registered(cx, &mut check).await)
    }

    async fn wait_registered<T>(&self, cx: &PoolCtx<'_>, check: &mut impl FnMut() -> Option<T>) -> Option<T> {
        let mine = self.counts.wake.notified();
        let room = cx.breakers.capacity.notified();
        tokio::pin!(mine, room);
        mine.as_mut().enable();
        room.as_mut().enable();
        self.counts.waiting.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let _w = Waiting(&self.counts);
        if let Some(t) = check() {
            return Some(t);
        }
        tokio::select! {
            () = mine => {}
            () = room => {}
        }
        None
    }

    /// An HTTP/1.1 connection: an idle one, else a new one, else the first given back.
    pub(crate) async fn h1(&self, cx: &PoolCtx<'_>) -> Result<Acquired<Box<H1Conn>>, PoolError> {
        if let Some(conn) = self.pop_idle(cx) {
            return Ok(Acquired { conn, reused: true });
        }
        // The slow path (a new connection, or a wait for one) is boxed: it is rare, and
        // keeping its state out of line keeps every request's future small.
        Box::pin(self.h1_slow(cx)).await
    }

    async fn h1_slow(&self, cx: &PoolCtx<'_>) -> Result<Acquired<Box<H1Conn>>, PoolError> {
        let _pending = self.pending(cx)?;
        loop {
            if let Some(c) = self.reserve(cx, Proto::H1) {
                return Ok(Acquired { conn: self.open_h1(cx, c).await?, reused: false });
            }
            let got =
                self.wait(cx, || self.pop_idle(cx).map(Ok).or_else(|| self.reserve(cx, Proto::H1).map(Err))).await?;
            match got {
                Some(Ok(conn)) => return Ok(Acquired { conn, reused: true }),
                Some(Err(c)) => return Ok(Acquired { conn: self.open_h1(cx, c).await?, reused: false }),
                None => {}
            }
        }
    }

    fn pending(&self, cx: &PoolCtx<'_>) -> Result<Permit, PoolError> {
        match cx.breakers.pending(cx.limits) {
            Ok(p) => {
                ClusterStats::inc(&cx.stats.upstream_rq_pending_total);
                Ok(p)
            }
            Err(o) => {
                ClusterStats::inc(&cx.stats.upstream_rq_pending_overflow);
                Err(PoolError::Overflow(o))
            }
        }
    }

    /// Returns a connection whose exchange completed; it is closed instead when it has
    /// served `maxRequestsPerConnection`, is too old, or the queue is full.
    pub(crate) fn give_back(&self, mut conn: Box<H1Conn>, limits: &ConnectionLimits, stats: &ClusterStats) {
        if !conn.io.reusable() {
            return;
        }
        if limits.max_requests_per_connection != 0 && conn.uses >= limits.max_requests_per_connection {
            ClusterStats::inc(&stats.upstream_cx_max_requests);
            return;
        }
        let now = Instant::now();
        if let Some(Expiry::Duration) = conn.expired(limits, now) {
            ClusterStats::inc(&stats.upstream_cx_max_duration_reached);
            return;
        }
        if self.idle_len.fetch_add(1, Ordering::Relaxed) >= MAX_IDLE {
            self.idle_len.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        conn.idle_since = now;
        self.idle.push(conn);
        self.counts.wake();
    }

    /// Drops idle connections the peer has closed, that idled past the idle timeout or
    /// outlived `maxConnectionDuration`: each HTTP/1.1 one is polled once, so a close is
    /// read and the socket released instead of waiting in CLOSE_WAIT until the
    /// connection's next use. HTTP/2 connections leave the pool when closed, draining
    /// with no streams, or idle too long (dropping the last handle closes them).
    pub(crate) fn sweep(&self, limits: &ConnectionLimits, stats: &ClusterStats) {
        let n = self.idle_len.load(Ordering::Relaxed);
        if n > 0 {
            let now = Instant::now();
            for _ in 0..n {
                let Some(mut conn) = self.idle.pop() else { break };
                let alive = conn.io.check_idle();
                match (alive, conn.expired(limits, now)) {
                    (true, None) => {
                        self.idle.push(conn);
                        continue;
                    }
                    (true, Some(Expiry::Idle)) => ClusterStats::inc(&stats.upstream_cx_idle_timeout),
                    (true, Some(Expiry::Duration)) => ClusterStats::inc(&stats.upstream_cx_max_duration_reached),
                    (false, _) => {}
                }
                self.idle_len.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let list = self.h2.load();
        if list.is_empty() {
            return;
        }
        let now_ms = epoch_ms();
        let idle_out = |c: &H2Conn| match (limits.idle_timeout, c.idle_for(now_ms)) {
            (Some(t), Some(idle)) => idle >= t,
            _ => false,
        };
        let gone = |c: &H2Conn| {
            c.closed()
                || (c.draining.load(Ordering::Acquire) && c.active.load(Ordering::Acquire) == 0)
                || limits.max_connection_duration.is_some_and(|d| c.created.elapsed() >= d)
                || idle_out(c)
        };
        if list.iter().any(|c| gone(c)) {
            for _ in list.iter().filter(|c| !c.closed() && idle_out(c)) {
                ClusterStats::inc(&stats.upstream_cx_idle_timeout);
            }
            self.h2.rcu(|l| l.iter().filter(|c| !gone(c)).cloned().collect::<Vec<_>>());
        }
    }

    /// Idle HTTP/1.1 connections (for `/clusters`).
    pub(crate) fn idle(&self) -> usize {
        self.idle_len.load(Ordering::Relaxed)
    }

    /// Requests waiting for a connection of this pool.
    pub(crate) fn waiting(&self) -> u32 {
        self.counts.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keepalive_is_set_on_upstream_sockets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = Address::Socket(listener.local_addr().unwrap());
        let ka = TcpKeepalive {
            time: Some(Duration::from_secs(30)),
            interval: Some(Duration::from_secs(5)),
            probes: Some(4),
        };
        let s = connect(&addr, Duration::from_secs(5), Some(&ka)).await.unwrap();
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), Duration::from_secs(5));
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 4);
        let plain = connect(&addr, Duration::from_secs(5), None).await.unwrap();
        assert!(!socket2::SockRef::from(&plain).keepalive().unwrap());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Address::Socket(listener.local_addr().unwrap());
        drop(listener);
        let (e, timeout) = connect(&addr, Duration::from_secs(5), None).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(!timeout);
    }
}
