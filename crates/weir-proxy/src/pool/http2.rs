//! The HTTP/2 side of an endpoint's pool: connections with a stream count each, a
//! stream taken where there is room, a connection opened (one at a time) when none has
//! room and the cluster allows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use hyper::{Request, Response};
use weir_table::ConnectionLimits;

use super::{Counted, Pool, PoolCounts, PoolCtx, PoolError, Proto, epoch_ms};
use crate::body::ProxyBody;
use crate::stats::ClusterStats;

/// An HTTP/2 connection and its streams in flight.
pub(crate) struct H2Conn {
    /// The pool's handle; dropped when the connection drains, which closes the
    /// connection once its last stream ends (the streams hold handles of their own).
    pub(super) sender: arc_swap::ArcSwapOption<SendRequest<Bytes>>,
    /// Set by the connection's task when the connection has ended.
    pub(super) ended: Arc<AtomicBool>,
    pub(super) active: AtomicU32,
    pub(super) started: AtomicU32,
    pub(super) created: Instant,
    /// Milliseconds since [`epoch`] when the last stream ended.
    pub(super) idle_since: AtomicU64,
    pub(super) draining: AtomicBool,
    pub(super) pool: Arc<PoolCounts>,
}

impl H2Conn {
    /// Takes a stream if the connection has room (`maxConcurrentStreams`) and may take
    /// more (`maxRequestsPerConnection`, `maxConnectionDuration`).
    pub(super) fn try_stream(self: &Arc<Self>, limits: &ConnectionLimits, stats: &ClusterStats) -> Option<H2Stream> {
        if self.draining.load(Ordering::Acquire) {
            return None;
        }
        if self.ended.load(Ordering::Acquire) {
            return None;
        }
        let sender = self.sender.load_full()?;
        if let Some(d) = limits.max_connection_duration
            && self.created.elapsed() >= d
        {
            if !self.draining.swap(true, Ordering::AcqRel) {
                ClusterStats::inc(&stats.upstream_cx_max_duration_reached);
            }
            return None;
        }
        let max = limits.max_concurrent_streams.max(1);
        self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then(|| n + 1)).ok()?;
        let started = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        if limits.max_requests_per_connection != 0 && started >= limits.max_requests_per_connection {
            // This is its last stream.
            self.draining.store(true, Ordering::Release);
            ClusterStats::inc(&stats.upstream_cx_max_requests);
        }
        Some(H2Stream { conn: self.clone(), sender: (*sender).clone() })
    }

    /// True when the connection takes no more streams.
    pub(super) fn closed(&self) -> bool {
        self.ended.load(Ordering::Acquire) || self.sender.load().is_none()
    }

    pub(super) fn idle_for(&self, now_ms: u64) -> Option<Duration> {
        (self.active.load(Ordering::Acquire) == 0)
            .then(|| Duration::from_millis(now_ms.saturating_sub(self.idle_since.load(Ordering::Acquire))))
    }
}

/// One stream of an HTTP/2 connection, held until its response ends.
pub(crate) struct H2Stream {
    conn: Arc<H2Conn>,
    sender: SendRequest<Bytes>,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream").finish_non_exhaustive()
    }
}

impl H2Stream {
    /// Sends `req` on the stream's connection. An error with the request in it means the
    /// connection was found closed before the request was written.
    pub(crate) async fn send(
        &mut self,
        req: Request<ProxyBody>,
    ) -> Result<Response<crate::h2_client::RecvBody>, crate::h2_client::SendError> {
        // Boxed: inline, it would grow every try's future (HTTP/1.1 ones too).
        let r = Box::pin(crate::h2_client::send(&mut self.sender, req)).await;
        if let Err(crate::h2_client::SendError::Unsent(_)) = &r {
            self.conn.draining.store(true, Ordering::Release);
        }
        r
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        if self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn.idle_since.store(epoch_ms(), Ordering::Release);
            if self.conn.draining.load(Ordering::Acquire) {
                // The last stream of a draining connection: let it close now, freeing
                // its slot for whoever waits, not at the next sweep.
                self.conn.sender.store(None);
            }
        }
        self.conn.pool.wake();
    }
}

impl Pool {
    fn h2_stream(&self, cx: &PoolCtx<'_>) -> Option<H2Stream> {
        self.h2.load().iter().find_map(|c| c.try_stream(cx.limits, cx.stats))
    }

    /// A stream on an HTTP/2 connection with room, opening a connection when none has
    /// room and the cluster allows one more.
    pub(crate) async fn h2(&self, cx: &PoolCtx<'_>) -> Result<H2Stream, PoolError> {
        if let Some(s) = self.h2_stream(cx) {
            return Ok(s);
        }
        Box::pin(self.h2_slow(cx)).await
    }

    async fn h2_slow(&self, cx: &PoolCtx<'_>) -> Result<H2Stream, PoolError> {
        let _pending = self.pending(cx)?;
        let mut slot = None;
        loop {
            let counted = {
                // One connect at a time; those who waited for a connect that failed fail
                // with it rather than each trying in turn.
                let failures = self.h2_connect_failures.load(Ordering::Acquire);
                let _connecting = self.h2_connecting.lock().await;
                if let Some(s) = self.h2_stream(cx) {
                    return Ok(s);
                }
                if self.h2_connect_failures.load(Ordering::Acquire) != failures {
                    return Err(PoolError::Connect {
                        error: std::io::Error::new(
                            std::io::ErrorKind::ConnectionRefused,
                            "the connection being made failed",
                        ),
                        timeout: false,
                    });
                }
                match slot.take().or_else(|| self.reserve(cx, Proto::H2)) {
                    Some(counted) => Some(self.connect_h2(cx, counted).await?),
                    None => None,
                }
            };
            if let Some(stream) = counted {
                return Ok(stream);
            }
            match self.wait(cx, || self.h2_stream(cx).map(Ok).or_else(|| self.reserve(cx, Proto::H2).map(Err))).await? {
                Some(Ok(s)) => return Ok(s),
                Some(Err(c)) => slot = Some(c),
                None => {}
            }
        }
    }

    /// Opens an HTTP/2 connection into the pool and takes a stream on it.
    async fn connect_h2(&self, cx: &PoolCtx<'_>, counted: Counted) -> Result<H2Stream, PoolError> {
        let conn = match self.open_h2(cx, counted).await {
            Ok(c) => c,
            Err(e) => {
                self.h2_connect_failures.fetch_add(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        let stream = conn.try_stream(cx.limits, cx.stats);
        self.h2.rcu(|list| {
            let mut l: Vec<Arc<H2Conn>> = list.iter().filter(|c| !c.closed()).cloned().collect();
            l.push(conn.clone());
            l
        });
        // A connection that takes no stream at all (a limit of 0) is of no use.
        stream.ok_or_else(|| PoolError::Connect {
            error: std::io::Error::other("the new connection takes no stream"),
            timeout: false,
        })
    }

    async fn open_h2(&self, cx: &PoolCtx<'_>, counted: Counted) -> Result<Arc<H2Conn>, PoolError> {
        let stream = self.open(cx, crate::tls::Alpn::Http2).await?;
        let keepalive = cx
            .limits
            .http2_keepalive
            .as_ref()
            .map(|k| crate::h2_client::KeepAlive { interval: k.interval, timeout: k.timeout });
        let crate::h2_client::Handshaken { sender, closed } =
            crate::h2_client::handshake(stream, keepalive, counted).await.map_err(PoolError::Handshake)?;
        Ok(Arc::new(H2Conn {
            sender: arc_swap::ArcSwapOption::from_pointee(sender),
            ended: closed,
            active: AtomicU32::new(0),
            started: AtomicU32::new(0),
            created: Instant::now(),
            idle_since: AtomicU64::new(epoch_ms()),
            draining: AtomicBool::new(false),
            pool: self.counts.clone(),
        }))
    }
}
