//! The one body type the proxy moves: an upstream or downstream `Incoming` stream, or
//! a small in-memory body for local replies. Streams are passed frame by frame (never
//! buffered whole), trailers included, so gRPC works end to end.
//!
//! A response body can carry a [`Completion`]: code run exactly once when the stream
//! ends or is dropped (returning the upstream connection to its pool, writing the
//! access log and metrics), with the byte count seen.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::pool::H1Conn;

/// An error from either side of the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a body ended.
#[derive(Default)]
pub(crate) struct Finished {
    /// Data bytes that went through.
    pub bytes: u64,
    /// True at end-of-stream; false when dropped or failed before the end.
    pub complete: bool,
    /// True when the stream itself failed (as opposed to being dropped unfinished).
    pub failed: bool,
    /// `grpc-status` seen in trailers, if any.
    pub grpc_status: Option<u16>,
    /// The upstream HTTP/1.1 connection the body came on, to go back to its pool.
    pub conn: Option<Box<H1Conn>>,
}

/// Called once when a body finishes.
pub(crate) trait Completion: Send + 'static {
    /// Runs once.
    fn finish(self: Box<Self>, how: Finished);
}

enum Inner {
    Incoming(Incoming),
    /// A response body from an HTTP/1.1 upstream, with the connection it arrives on:
    /// reading the body drives the connection.
    Upstream(Incoming, Option<Box<H1Conn>>),
    Full(Option<Bytes>),
}

/// A body flowing through the proxy.
pub struct ProxyBody {
    inner: Inner,
    bytes: u64,
    grpc_status: Option<u16>,
    done: Option<Box<dyn Completion>>,
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody").field("bytes", &self.bytes).finish()
    }
}

impl ProxyBody {
    /// A streamed body.
    pub fn incoming(b: Incoming) -> Self {
        ProxyBody { inner: Inner::Incoming(b), bytes: 0, grpc_status: None, done: None }
    }

    /// A body held in memory.
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        ProxyBody { inner: Inner::Full((!b.is_empty()).then_some(b)), bytes: 0, grpc_status: None, done: None }
    }

    /// No body.
    pub fn empty() -> Self {
        ProxyBody { inner: Inner::Full(None), bytes: 0, grpc_status: None, done: None }
    }

    /// A response body arriving on `conn`.
    pub(crate) fn upstream(b: Incoming, conn: Box<H1Conn>) -> Self {
        ProxyBody { inner: Inner::Upstream(b, Some(conn)), bytes: 0, grpc_status: None, done: None }
    }

    /// Attaches code to run when the body ends.
    pub(crate) fn set_on_finish(&mut self, c: Box<dyn Completion>) {
        self.done = Some(c);
    }

    fn finish(&mut self, complete: bool, failed: bool) {
        if let Some(c) = self.done.take() {
            let conn = match &mut self.inner {
                Inner::Upstream(_, conn) => conn.take(),
                _ => None,
            };
            c.finish(Finished { bytes: self.bytes, complete, failed, grpc_status: self.grpc_status, conn });
        }
    }

    /// Reads the whole body (for tests and small admin bodies).
    pub async fn collect_bytes(self) -> Result<Bytes, BoxError> {
        Ok(self.collect().await?.to_bytes())
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Incoming(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map(|f| f.map_err(BoxError::from)),
            },
            Inner::Upstream(b, conn) => {
                if let Some(c) = conn.as_mut() {
                    c.drive(cx);
                }
                match Pin::new(b).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => {
                        // Let the connection settle (idle, ready for the next request)
                        // before it goes back to the pool.
                        if let (Some(c), None) = (conn.as_mut(), &r) {
                            c.drive(cx);
                        }
                        r.map(|f| f.map_err(BoxError::from))
                    }
                }
            }
            Inner::Full(b) => b.take().map(|d| Ok(Frame::data(d))),
        };
        match &polled {
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                } else if let Some(t) = frame.trailers_ref() {
                    this.grpc_status = t.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok());
                }
            }
            Some(Err(_)) => this.finish(false, true),
            None => this.finish(true, false),
        }
        // A body whose last data frame arrived may never be polled again: finish
        // when the inner stream says it is done.
        if this.done.is_some() && polled.as_ref().is_some_and(|r| r.is_ok()) && this.is_end_stream_inner() {
            this.finish(true, false);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.is_end_stream_inner()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Incoming(b) | Inner::Upstream(b, _) => b.size_hint(),
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
        }
    }
}

impl ProxyBody {
    fn is_end_stream_inner(&self) -> bool {
        match &self.inner {
            Inner::Incoming(b) | Inner::Upstream(b, _) => b.is_end_stream(),
            Inner::Full(b) => b.is_none(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // An in-memory body dropped unread is a HEAD response (or a client gone before a
        // local reply): not an interrupted stream.
        let complete = self.is_end_stream_inner() || matches!(self.inner, Inner::Full(_));
        self.finish(complete, false);
    }
}
