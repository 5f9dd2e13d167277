//! Upstream connections per endpoint (per worker): idle HTTP/1.1 connections in a
//! lock-free queue, one multiplexed HTTP/2 connection, created on demand.
//!
//! An HTTP/1.1 connection is not given a task of its own: the request that uses it
//! drives it (while waiting for the response head, then from the response body as the
//! downstream reads it), so an exchange costs no cross-task wake-ups. It goes back to
//! the queue only after its response body has been read to the end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use crossbeam_queue::SegQueue;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use weir_table::Address;

use crate::body::ProxyBody;

/// Idle HTTP/1.1 connections kept per endpoint.
const MAX_IDLE: usize = 256;

/// Why an upstream exchange failed.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// The connection could not be made (response flag `UF`); the request was not sent
    /// and is given back for a retry.
    Connect(std::io::Error, Request<ProxyBody>),
    /// The connection failed before response headers (flag `UC`/`UR`). `request` is set
    /// when hyper reports it was never sent.
    Reset(hyper::Error, Option<Request<ProxyBody>>),
}

/// An HTTP/1.1 connection: the handle to send on and the connection state machine,
/// which whoever uses the connection must poll ([`H1Conn::drive`]).
pub(crate) struct H1Conn {
    sender: http1::SendRequest<ProxyBody>,
    conn: http1::Connection<TokioIo<TcpStream>, ProxyBody>,
    uses: u32,
    /// False once the connection finished (closed or failed).
    open: bool,
    _counted: Counted,
}

impl H1Conn {
    /// Makes progress on the connection's I/O; returns false once it has closed.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if self.open && Pin::new(&mut self.conn).poll(cx).is_ready() {
            self.open = false;
        }
        self.open
    }
}

/// Waits for `fut` while driving `conn`.
async fn driving<F: Future + Unpin>(conn: &mut H1Conn, mut fut: F) -> F::Output {
    std::future::poll_fn(|cx| {
        conn.drive(cx);
        Pin::new(&mut fut).poll(cx)
    })
    .await
}

/// Connections to one endpoint from one worker.
pub(crate) struct Pool {
    /// Idle HTTP/1.1 connections (a lock-free queue that allocates only when used).
    /// Boxed: a connection is large (its buffers and state machine) and moves between
    /// the queue, the request and the response body on every exchange.
    idle: SegQueue<Box<H1Conn>>,
    idle_len: std::sync::atomic::AtomicUsize,
    h2: ArcSwapOption<http2::SendRequest<ProxyBody>>,
    h2_connecting: tokio::sync::Mutex<()>,
    /// Open connections (both protocols).
    pub(crate) connections: Arc<AtomicU32>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("idle", &self.idle()).finish()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            idle: SegQueue::new(),
            idle_len: std::sync::atomic::AtomicUsize::new(0),
            h2: ArcSwapOption::empty(),
            h2_connecting: tokio::sync::Mutex::new(()),
            connections: Arc::new(AtomicU32::new(0)),
        }
    }
}

/// Opens a TCP connection with a timeout; names are resolved here (resolution DNS).
pub(crate) async fn connect(addr: &Address, timeout: Duration) -> std::io::Result<TcpStream> {
    let fut = async {
        let stream = match addr {
            Address::Socket(sa) => TcpStream::connect(sa).await?,
            Address::Dns(host, port) => TcpStream::connect((&**host, *port)).await?,
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout")),
    }
}

/// Decrements the connection count when a connection task ends.
struct Counted(Arc<AtomicU32>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    /// Sends `req` over HTTP/1.1, reusing an idle connection when one is ready. Returns
    /// the response and the connection, to be given back with [`Pool::give_back`] once
    /// the response body is done.
    pub(crate) async fn send_h1(
        &self,
        addr: &Address,
        connect_timeout: Duration,
        mut req: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Box<H1Conn>), UpstreamError> {
        // Idle connections may have been closed by the peer meanwhile: hyper hands the
        // request back when it was not sent, and we try the next one.
        while let Some(mut conn) = self.idle.pop() {
            self.idle_len.fetch_sub(1, Ordering::Relaxed);
            // A peer may have closed the idle connection: one poll notices.
            let alive = std::future::poll_fn(|cx| Poll::Ready(conn.drive(cx))).await;
            if !alive || conn.sender.is_closed() {
                continue;
            }
            let fut = std::pin::pin!(conn.sender.try_send_request(req));
            match driving(&mut conn, fut).await {
                Ok(resp) => {
                    conn.uses += 1;
                    return Ok((resp, conn));
                }
                Err(mut e) => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(UpstreamError::Reset(e.into_error(), None)),
                },
            }
        }
        let stream = match connect(addr, connect_timeout).await {
            Ok(s) => s,
            Err(e) => return Err(UpstreamError::Connect(e, req)),
        };
        let (sender, conn) = match http1::Builder::new().handshake(TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return Err(UpstreamError::Reset(e, Some(req))),
        };
        self.connections.fetch_add(1, Ordering::Relaxed);
        let mut c = Box::new(H1Conn { sender, conn, uses: 1, open: true, _counted: Counted(self.connections.clone()) });
        let fut = std::pin::pin!(c.sender.try_send_request(req));
        match driving(&mut c, fut).await {
            Ok(resp) => Ok((resp, c)),
            Err(mut e) => {
                let r = e.take_message();
                Err(UpstreamError::Reset(e.into_error(), r))
            }
        }
    }

    /// Sends a request that asks to switch protocols (a WebSocket upgrade) on a
    /// dedicated HTTP/1.1 connection: it is never pooled, and a task of its own drives it
    /// until a `101` hands the socket over to the tunnel.
    pub(crate) async fn send_upgrade(
        &self,
        addr: &Address,
        connect_timeout: Duration,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let stream = match connect(addr, connect_timeout).await {
            Ok(s) => s,
            Err(e) => return Err(UpstreamError::Connect(e, req)),
        };
        let (mut sender, conn) = match http1::Builder::new().handshake(TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return Err(UpstreamError::Reset(e, Some(req))),
        };
        self.connections.fetch_add(1, Ordering::Relaxed);
        let counted = Counted(self.connections.clone());
        tokio::spawn(async move {
            let _counted = counted;
            let _ = conn.with_upgrades().await;
        });
        sender.try_send_request(req).await.map_err(|mut e| {
            let r = e.take_message();
            UpstreamError::Reset(e.into_error(), r)
        })
    }

    /// Returns a connection whose exchange completed; it is dropped (closed) when it
    /// has served `max_uses` requests (0 = unlimited) or the queue is full.
    pub(crate) fn give_back(&self, conn: Box<H1Conn>, max_uses: u32) {
        if !conn.open || conn.sender.is_closed() || (max_uses != 0 && conn.uses >= max_uses) {
            return;
        }
        if self.idle_len.fetch_add(1, Ordering::Relaxed) >= MAX_IDLE {
            self.idle_len.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.idle.push(conn);
    }

    async fn h2_sender(
        &self,
        addr: &Address,
        connect_timeout: Duration,
    ) -> Result<http2::SendRequest<ProxyBody>, std::io::Result<hyper::Error>> {
        if let Some(s) = self.h2.load().as_deref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        let _guard = self.h2_connecting.lock().await;
        if let Some(s) = self.h2.load().as_deref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        let stream = connect(addr, connect_timeout).await.map_err(Err)?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(Ok)?;
        self.connections.fetch_add(1, Ordering::Relaxed);
        let counted = Counted(self.connections.clone());
        tokio::spawn(async move {
            let _counted = counted;
            let _ = conn.await;
        });
        self.h2.store(Some(Arc::new(sender.clone())));
        Ok(sender)
    }

    /// Sends `req` over the endpoint's HTTP/2 connection (prior knowledge).
    pub(crate) async fn send_h2(
        &self,
        addr: &Address,
        connect_timeout: Duration,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut sender = match self.h2_sender(addr, connect_timeout).await {
            Ok(s) => s,
            Err(Err(io)) => return Err(UpstreamError::Connect(io, req)),
            Err(Ok(e)) => return Err(UpstreamError::Reset(e, Some(req))),
        };
        if let Err(e) = sender.ready().await {
            self.h2.store(None);
            return Err(UpstreamError::Reset(e, Some(req)));
        }
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(resp),
            Err(mut e) => {
                let r = e.take_message();
                Err(UpstreamError::Reset(e.into_error(), r))
            }
        }
    }

    /// Drops idle connections the peer has closed (or that failed): each is polled once,
    /// so a close is read and the socket released instead of waiting in CLOSE_WAIT
    /// until the connection's next use. Runs on this pool's worker.
    pub(crate) fn sweep(&self) {
        let n = self.idle_len.load(Ordering::Relaxed);
        if n == 0 {
            return;
        }
        // Nothing waits on these connections: the next request that takes one polls it
        // with its own waker.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..n {
            let Some(mut conn) = self.idle.pop() else { break };
            if conn.drive(&mut cx) && !conn.sender.is_closed() {
                self.idle.push(conn);
            } else {
                self.idle_len.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Idle HTTP/1.1 connections (for `/clusters`).
    pub(crate) fn idle(&self) -> usize {
        self.idle_len.load(Ordering::Relaxed)
    }
}
