//! The one body type the proxy moves: an upstream or downstream `Incoming` stream, a
//! request body being replayed for a retry, or a small in-memory body for local
//! replies. Streams are passed frame by frame (never buffered whole), trailers
//! included, so gRPC works end to end.
//!
//! A body can carry a [`Completion`]: code run exactly once when the stream ends or is
//! dropped (returning the upstream connection to its pool, writing the access log and
//! metrics), with the byte count seen. A response body can also carry the route
//! timeout: if it runs out before the body ends, the stream fails (the client sees a
//! reset, the access log `UT`), as Envoy's route timeout covers the whole response.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::h1::body::BodyState;
use crate::h1::head::Framing;
use crate::h1::server::RequestBody;
use crate::pool::H1Conn;
use crate::replay::{MirrorBody, ReplayBody};

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
    /// The route timeout ran out before the end.
    pub timed_out: bool,
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
    /// A response body from an HTTP/2 upstream.
    H2(crate::h2_client::RecvBody),
    /// A request body from an HTTP/1.1 client, read from its connection.
    Client(RequestBody),
    /// A response body from an HTTP/1.1 upstream, read from the connection it arrives
    /// on (which goes back to its pool when the body has ended).
    H1(Option<Box<H1Conn>>, BodyState),
    /// One try's copy of a request body kept for retries.
    Replay(ReplayBody),
    /// A mirror's copy of a request body.
    Mirror(MirrorBody),
    Full(Option<Bytes>),
    /// Frames held in memory (tests).
    #[cfg(test)]
    Chunks(std::collections::VecDeque<Frame<Bytes>>),
}

/// What ends a body early: the route timeout.
type Deadline = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A body flowing through the proxy.
pub struct ProxyBody {
    inner: Inner,
    bytes: u64,
    grpc_status: Option<u16>,
    done: Option<Box<dyn Completion>>,
    deadline: Option<Deadline>,
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody").field("bytes", &self.bytes).finish()
    }
}

impl ProxyBody {
    fn of(inner: Inner) -> Self {
        ProxyBody { inner, bytes: 0, grpc_status: None, done: None, deadline: None }
    }

    /// A streamed body.
    pub fn incoming(b: Incoming) -> Self {
        ProxyBody::of(Inner::Incoming(b))
    }

    /// A response body from an HTTP/2 upstream.
    pub(crate) fn h2(b: crate::h2_client::RecvBody) -> Self {
        ProxyBody::of(Inner::H2(b))
    }

    /// A request body read from an HTTP/1.1 client's connection.
    pub(crate) fn client(b: RequestBody) -> Self {
        ProxyBody::of(Inner::Client(b))
    }

    /// A body held in memory.
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        ProxyBody::of(Inner::Full((!b.is_empty()).then_some(b)))
    }

    /// No body.
    pub fn empty() -> Self {
        ProxyBody::of(Inner::Full(None))
    }

    /// A response body arriving on `conn`, framed as `framing`.
    pub(crate) fn h1(conn: Box<H1Conn>, framing: Framing) -> Self {
        ProxyBody::of(Inner::H1(Some(conn), BodyState::new(framing)))
    }

    /// One try's copy of a replayable request body.
    pub(crate) fn replay(b: ReplayBody) -> Self {
        ProxyBody::of(Inner::Replay(b))
    }

    /// A mirror's copy of a request body.
    pub(crate) fn mirror(b: MirrorBody) -> Self {
        ProxyBody::of(Inner::Mirror(b))
    }

    /// Data frames, then trailers, from memory.
    #[cfg(test)]
    pub(crate) fn chunks(data: Vec<Bytes>, trailers: Option<http::HeaderMap>) -> Self {
        let mut frames: std::collections::VecDeque<Frame<Bytes>> = data.into_iter().map(Frame::data).collect();
        frames.extend(trailers.map(Frame::trailers));
        ProxyBody::of(Inner::Chunks(frames))
    }

    /// Attaches code to run when the body ends.
    pub(crate) fn set_on_finish(&mut self, c: Box<dyn Completion>) {
        self.done = Some(c);
    }

    /// Fails the body if `deadline` completes before it ends.
    pub(crate) fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = Some(deadline);
    }

    fn finish(&mut self, complete: bool, failed: bool, timed_out: bool) {
        if let Some(c) = self.done.take() {
            let conn = match &mut self.inner {
                // Only a connection whose body was read to its end can carry more.
                Inner::H1(conn, state) if state.is_done() => conn.take(),
                _ => None,
            };
            c.finish(Finished { bytes: self.bytes, complete, failed, grpc_status: self.grpc_status, conn, timed_out });
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
        if let Some(d) = this.deadline.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            this.deadline = None;
            this.finish(false, true, true);
            return Poll::Ready(Some(Err("upstream request timeout".into())));
        }
        let polled = match &mut this.inner {
            Inner::Incoming(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map(|f| f.map_err(BoxError::from)),
            },
            Inner::Client(b) => match b.poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            },
            Inner::H2(b) => match b.poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            },
            Inner::H1(conn, state) => match conn.as_mut() {
                Some(c) => match c.io.poll_body(state, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                },
                None => None,
            },
            Inner::Replay(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            },
            Inner::Mirror(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            },
            Inner::Full(b) => b.take().map(|d| Ok(Frame::data(d))),
            #[cfg(test)]
            Inner::Chunks(f) => f.pop_front().map(Ok),
        };
        match &polled {
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                } else if let Some(t) = frame.trailers_ref() {
                    this.grpc_status = t.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok());
                }
            }
            Some(Err(_)) => this.finish(false, true, false),
            None => this.finish(true, false, false),
        }
        // A body whose last data frame arrived may never be polled again: finish
        // when the inner stream says it is done.
        if this.done.is_some() && polled.as_ref().is_some_and(|r| r.is_ok()) && this.is_end_stream_inner() {
            this.finish(true, false, false);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.is_end_stream_inner()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Incoming(b) => b.size_hint(),
            Inner::H2(b) => b.size_hint(),
            Inner::Client(b) => match b.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
            Inner::H1(_, state) => match state.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
            Inner::Replay(b) => b.size_hint(),
            Inner::Mirror(b) => b.size_hint(),
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            #[cfg(test)]
            Inner::Chunks(f) => {
                SizeHint::with_exact(f.iter().filter_map(|f| f.data_ref()).map(|d| d.len() as u64).sum())
            }
        }
    }
}

impl ProxyBody {
    fn is_end_stream_inner(&self) -> bool {
        match &self.inner {
            Inner::Incoming(b) => b.is_end_stream(),
            Inner::H2(b) => b.is_end_stream(),
            Inner::Client(b) => b.is_end_stream(),
            Inner::H1(_, state) => state.is_done(),
            Inner::Replay(b) => b.is_end_stream(),
            Inner::Mirror(b) => b.is_end_stream(),
            Inner::Full(b) => b.is_none(),
            #[cfg(test)]
            Inner::Chunks(f) => f.is_empty(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // An in-memory body dropped unread is a HEAD response (or a client gone before a
        // local reply): not an interrupted stream.
        let complete = self.is_end_stream_inner() || matches!(self.inner, Inner::Full(_));
        self.finish(complete, false, false);
    }
}
