//! One upstream HTTP/1.1 connection, driven by the request that uses it: the request
//! head and body are written (the head and the first body bytes in one vectored
//! write), the response head is read, then the response body is read as the client
//! takes it. No task, no channel: an exchange costs the socket calls and nothing more.
//!
//! A response may arrive before the request body has been sent (an upstream refusing
//! an upload): the rest of the body is sent while the response body is read, and the
//! connection is reused only if both ended cleanly.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, Request};
use hyper::body::{Body as _, Frame};

use super::body::BodyState;
use super::head::{self, Framing, HeadError, ResponseHead};
use super::out::{Framer, Out};
use crate::body::{BoxError, ProxyBody};
use crate::upstream_io::UpstreamIo;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection turned out closed before any of the request was written: the
    /// request comes back, untouched, to go on another connection.
    Stale(Box<Request<ProxyBody>>),
    /// The upstream's response head was malformed (502 `UPE`).
    Protocol(HeadError),
    /// The connection failed or closed during the exchange; `written` when some of
    /// the request had gone out.
    Io { error: std::io::Error, written: bool },
    /// The request body failed (the client went away mid-upload).
    DownstreamBody(BoxError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Stale(_) => f.write_str("connection closed before the request was written"),
            SendError::Protocol(e) => write!(f, "{e}"),
            SendError::Io { error, .. } => write!(f, "upstream connection: {error}"),
            SendError::DownstreamBody(e) => write!(f, "request body: {e}"),
        }
    }
}

/// The request body on its way out.
struct Writer {
    body: ProxyBody,
    framer: Framer,
}

/// An HTTP/1.1 connection to an upstream (plaintext or originated TLS).
pub(crate) struct Connection {
    io: UpstreamIo,
    rbuf: BytesMut,
    out: Out,
    writer: Option<Writer>,
    /// The head of the request being sent, until some of it is written (a request
    /// never written can go elsewhere).
    unsent: Option<http::request::Parts>,
    /// The method of the request in flight (a response to HEAD has no body).
    method: Method,
    /// False once the connection must not carry another exchange.
    reusable: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("reusable", &self.reusable).finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(io: UpstreamIo) -> Self {
        Connection {
            io,
            rbuf: BytesMut::new(),
            out: Out::default(),
            writer: None,
            unsent: None,
            method: Method::GET,
            reusable: true,
        }
    }

    /// The connection will not carry another exchange (it may switch protocols).
    pub(crate) fn forbid_reuse(&mut self) {
        self.reusable = false;
    }

    /// True when the connection may carry another exchange.
    pub(crate) fn reusable(&self) -> bool {
        self.reusable && self.writer.is_none()
    }

    /// Checks an idle connection without blocking: a peer that closed it (or sent
    /// bytes nobody asked for) makes it unusable (see [`UpstreamIo::probe_idle`]).
    pub(crate) fn check_idle(&mut self) -> bool {
        if !self.reusable || !self.rbuf.is_empty() {
            return false;
        }
        if !self.io.probe_idle() {
            self.reusable = false;
        }
        self.reusable
    }

    /// The socket and any bytes read past the last response head (a switched
    /// protocol's first bytes), for a tunnel.
    pub(crate) fn into_io(self) -> (UpstreamIo, Bytes) {
        (self.io, self.rbuf.freeze())
    }

    /// Sends `req` and reads the response head; the response body is read afterwards
    /// with [`Connection::poll_body`]. `reused`: the connection carried requests before
    /// (and may have been closed meanwhile).
    pub(crate) async fn send(&mut self, req: Request<ProxyBody>, reused: bool) -> Result<ResponseHead, SendError> {
        if reused && !self.check_idle() {
            return Err(SendError::Stale(Box::new(req)));
        }
        self.start(req);
        // The other connections this turn woke go first: the writes leave together.
        crate::batch::to_back().await;
        // The first write: on a reused connection a failure before any byte went out
        // means it was closed, and the request can go elsewhere. (The state lives in
        // the connection, not in this future: a try's future stays small.)
        std::future::poll_fn(|cx| self.poll_first_write(cx)).await.map_err(|e| self.first_write_failed(e, reused))?;
        std::future::poll_fn(|cx| self.poll_exchange(cx)).await
    }

    /// Queues the request head (and readies the body to follow).
    fn start(&mut self, req: Request<ProxyBody>) {
        let (parts, body) = req.into_parts();
        let (framing, add) = request_framing(&parts.headers, &body);
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        self.out.clear();
        self.out.reset_wrote();
        head::encode_request(&mut self.out.pre, &parts.method, target, &parts.headers, framing, add);
        self.writer = Some(Writer { body, framer: Framer::new(framing) });
        self.unsent = Some(parts);
    }

    fn poll_first_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Result<std::io::Error, SendError>>> {
        // Coalesce the first body bytes with the head when they are ready.
        if let Some(w) = self.writer.as_mut()
            && self.out.data.is_empty()
            && !w.framer.ended
            && let Poll::Ready(Err(e)) = poll_next_frame(w, &mut self.out, cx)
        {
            return Poll::Ready(Err(Err(e)));
        }
        match self.out.poll_flush(&mut self.io, cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Ok(e))),
            Poll::Pending if self.out.wrote => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn first_write_failed(&mut self, e: Result<std::io::Error, SendError>, reused: bool) -> SendError {
        self.reusable = false;
        let parts = self.unsent.take();
        let writer = self.writer.take();
        let error = match e {
            Err(body_error) => return body_error,
            Ok(io) => io,
        };
        match (reused && !self.out.wrote, parts, writer) {
            // Nothing of the body was taken yet: the request goes back whole.
            (true, Some(p), Some(w))
                if self.out.data.is_empty()
                    && w.framer.sent == 0
                    && (!w.framer.ended || w.framer.framing == Framing::Empty) =>
            {
                SendError::Stale(Box::new(Request::from_parts(p, w.body)))
            }
            _ => SendError::Io { error, written: self.out.wrote },
        }
    }

    /// Writes what is queued, then the body as it comes, while reading the response
    /// head; ready with the head (the body may still be going out).
    fn poll_exchange(&mut self, cx: &mut Context<'_>) -> Poll<Result<ResponseHead, SendError>> {
        // The head is out: the request's method is all that is kept of its head.
        if let Some(p) = self.unsent.take() {
            self.method = p.method;
        }
        if let Err(e) = self.poll_write_body(cx, true) {
            self.reusable = false;
            return Poll::Ready(Err(e));
        }
        loop {
            match head::parse_response(&mut self.rbuf, &self.method) {
                Ok(Some(h)) if h.status.is_informational() && h.status != http::StatusCode::SWITCHING_PROTOCOLS => {
                    // `100 Continue` and other interim responses are not passed on.
                    continue;
                }
                Ok(Some(h)) => {
                    if !h.keep_alive {
                        self.reusable = false;
                    }
                    return Poll::Ready(Ok(h));
                }
                Ok(None) => {}
                Err(e) => {
                    self.reusable = false;
                    return Poll::Ready(Err(SendError::Protocol(e)));
                }
            }
            match ready!(self.poll_read(cx)) {
                Ok(0) => {
                    self.reusable = false;
                    let error = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a response");
                    return Poll::Ready(Err(SendError::Io { error, written: true }));
                }
                Ok(_) => {}
                Err(error) => {
                    self.reusable = false;
                    return Poll::Ready(Err(SendError::Io { error, written: true }));
                }
            }
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        super::body::poll_read(&mut self.io, &mut self.rbuf, cx)
    }

    /// Sends the request body as far as it goes now. Errors of the request body are
    /// the client's; errors of the socket end the exchange (`fail_io`), or after the
    /// response head only stop the sending (the connection is not reused).
    fn poll_write_body(&mut self, cx: &mut Context<'_>, fail_io: bool) -> Result<(), SendError> {
        loop {
            match self.out.poll_flush(&mut self.io, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    self.reusable = false;
                    self.writer = None;
                    return if fail_io { Err(SendError::Io { error, written: true }) } else { Ok(()) };
                }
                Poll::Pending => return Ok(()),
            }
            let Some(w) = self.writer.as_mut() else { return Ok(()) };
            if w.framer.ended {
                self.writer = None;
                return Ok(());
            }
            match poll_next_frame(w, &mut self.out, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.reusable = false;
                    self.writer = None;
                    return Err(e);
                }
                Poll::Pending => return Ok(()),
            }
        }
    }

    /// The next frame of a response body framed as `state`; also keeps sending a
    /// request body still going out.
    pub(crate) fn poll_body(
        &mut self,
        state: &mut BodyState,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.writer.is_some() {
            // The client's errors no longer matter to this exchange once the response
            // is on its way: stop sending, do not reuse.
            if self.poll_write_body(cx, false).is_err() {
                self.reusable = false;
            }
        }
        let r = ready!(super::body::poll_framed(state, &mut self.rbuf, &mut self.io, cx));
        if matches!(r, Some(Err(_))) {
            self.reusable = false;
        }
        Poll::Ready(r)
    }
}

/// Polls the request body once and queues the next frame in its framing.
fn poll_next_frame(w: &mut Writer, out: &mut Out, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
    let framed = match ready!(Pin::new(&mut w.body).poll_frame(cx)) {
        Some(Ok(frame)) => {
            let end = w.body.is_end_stream();
            w.framer.frame(frame, end, out)
        }
        Some(Err(e)) => return Poll::Ready(Err(SendError::DownstreamBody(e))),
        None => w.framer.end(out),
    };
    Poll::Ready(framed.map_err(|e| SendError::DownstreamBody(Box::new(e))))
}

/// How a request body goes upstream, and whether the head must say so: the client's
/// `Content-Length` as it is; else nothing for no body, a length when the body knows
/// its size, chunked otherwise.
fn request_framing(headers: &HeaderMap, body: &ProxyBody) -> (Framing, bool) {
    if let Some(n) =
        headers.get(header::CONTENT_LENGTH).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok())
    {
        return (if n == 0 { Framing::Empty } else { Framing::Length(n) }, false);
    }
    if body.is_end_stream() {
        return (Framing::Empty, false);
    }
    match body.size_hint().exact() {
        Some(0) => (Framing::Empty, false),
        Some(n) => (Framing::Length(n), true),
        None => (Framing::Chunked, true),
    }
}
