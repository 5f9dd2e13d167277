//! A client's HTTP/1.1 connection: heads parsed as they arrive, each request handed to
//! [`crate::entry::handle`] with a body that reads from the connection, the response
//! written back (head and first body bytes in one vectored write), keep-alive and
//! pipelining by RFC 9112 §9. A connection that opens with the HTTP/2 preface goes to
//! hyper's HTTP/2 server instead.
//!
//! While a request is handled the connection is watched: a client that closes it
//! abandons the request (recorded `DC`), as Envoy's codec does. An idle connection
//! keeps no buffer, and the state of a request lives in a boxed future that exists
//! only while the request does: idle keep-alive connections cost little memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body as _, Frame};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::body::{BodyState, poll_framed, poll_read};
use super::head::{self, Framing, HeadError, RequestHead};
use super::out::{Framer, Out};
use crate::body::{BoxError, ProxyBody};
use crate::downstream::Downstream;
use crate::entry::ConnCtx;
use crate::prefixed::Prefixed;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a closing connection reads (and drops) what the client still sends, so
/// that closing with unread bytes does not reset the response away.
const LINGER: Duration = Duration::from_secs(1);

/// The connection's socket and read buffer, shared with the request body.
struct Io {
    /// `None` once the socket went to a tunnel.
    stream: Option<Downstream>,
    rbuf: BytesMut,
    /// A request body is reading from the connection.
    body_active: bool,
    /// A request body was dropped before its end: its rest is unread.
    body_abandoned: bool,
}

type Shared = Arc<Mutex<Io>>;

fn lock(io: &Shared) -> MutexGuard<'_, Io> {
    io.lock().unwrap_or_else(|e| e.into_inner())
}

/// The HTTP/2 server a connection goes to when it opens with the preface.
pub(crate) type H2Server = hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor>;

/// Serves a client connection to its end.
pub(crate) async fn serve(stream: Downstream, ctx: Arc<ConnCtx>, drain: CancellationToken, h2: Arc<H2Server>) {
    // ALPN `h2` over TLS: HTTP/2 without looking for the preface.
    let negotiated_h2 = stream.alpn() == Some(b"h2");
    let io: Shared = Arc::new(Mutex::new(Io {
        stream: Some(stream),
        rbuf: BytesMut::new(),
        body_active: false,
        body_abandoned: false,
    }));
    if negotiated_h2 {
        return Box::pin(serve_h2(&io, ctx, drain, &h2)).await;
    }
    match sniff(&io, &drain).await {
        // Boxed: every HTTP/1.1 connection's future would otherwise be as large as an
        // HTTP/2 connection's (2 KB instead of under 600 bytes).
        Sniff::H2 => return Box::pin(serve_h2(&io, ctx, drain, &h2)).await,
        Sniff::Closed => return,
        Sniff::H1 => {}
    }
    // One registration with the drain token for the connection's life: making a new
    // `cancelled()` future for each idle wait locked the token and queued a waiter per
    // request.
    let mut drained = std::pin::pin!(drain.clone().cancelled_owned());
    loop {
        let head = match next_head(&io, drained.as_mut()).await {
            Ok(Some(h)) => h,
            Ok(None) => return end(&io, None).await,
            Err(e) => return end(&io, Some(e)).await,
        };
        // The request's state lives in the box, only while the request does. Written
        // into a box allocated first: `Box::pin(exchange(..))` built the 7.8 KB future on
        // the stack and copied it into the box, once per request.
        let exchanging = Box::write(Box::new_uninit(), exchange(&io, &ctx, head, &drain));
        match Box::into_pin(exchanging).await {
            Next::KeepAlive => {}
            Next::Close => return end(&io, None).await,
            Next::Gone => return,
        }
    }
}

enum Sniff {
    H1,
    H2,
    Closed,
}

/// Reads until the first bytes tell HTTP/1.1 from the HTTP/2 preface.
async fn sniff(io: &Shared, drain: &CancellationToken) -> Sniff {
    loop {
        {
            let g = lock(io);
            let n = g.rbuf.len().min(PREFACE.len());
            if g.rbuf[..n] != PREFACE[..n] {
                return Sniff::H1;
            }
            if n == PREFACE.len() {
                return Sniff::H2;
            }
        }
        tokio::select! {
            r = read_more(io) => if !matches!(r, Ok(n) if n > 0) { return Sniff::Closed },
            () = drain.cancelled() => return Sniff::Closed,
        }
    }
}

async fn serve_h2(io: &Shared, ctx: Arc<ConnCtx>, drain: CancellationToken, h2: &H2Server) {
    let (stream, rest) = {
        let mut g = lock(io);
        let rest = g.rbuf.split().freeze();
        match g.stream.take() {
            Some(s) => (s, rest),
            None => return,
        }
    };
    // Boxed: hyper spawns each stream as a task holding this future, and tokio moves a
    // task's future several times on the way in and out (callgrind: six copies of the
    // 6 KB request future per stream, 20% of the h2 path's instructions, unboxed).
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        Box::pin(crate::entry::handle(req.map(ProxyBody::incoming), ctx.clone()))
    });
    let conn = h2.serve_connection(hyper_util::rt::TokioIo::new(Prefixed { rest, io: stream }), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = drain.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Reads what the socket has into the buffer; 0 at the end of the stream.
async fn read_more(io: &Shared) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut g = lock(io);
        let Io { stream, rbuf, .. } = &mut *g;
        let Some(s) = stream.as_mut() else { return Poll::Ready(Ok(0)) };
        if rbuf.is_empty() {
            // Idle: hold no buffer while waiting for the next request.
            ready!(s.poll_read_ready(cx))?;
        }
        poll_read(s, rbuf, cx)
    })
    .await
}

/// The next request head; `None` when the client closed (or the proxy drains) between
/// requests.
async fn next_head(
    io: &Shared,
    mut drained: Pin<&mut WaitForCancellationFutureOwned>,
) -> Result<Option<RequestHead>, HeadError> {
    loop {
        {
            let mut g = lock(io);
            if let Some(h) = head::parse_request(&mut g.rbuf)? {
                return Ok(Some(h));
            }
            if g.rbuf.is_empty() && g.rbuf.capacity() > 0 {
                g.rbuf = BytesMut::new();
            }
        }
        tokio::select! {
            r = read_more(io) => if !matches!(r, Ok(n) if n > 0) { return Ok(None) },
            () = drained.as_mut() => return Ok(None),
        }
    }
}

/// What the connection does after an exchange.
enum Next {
    KeepAlive,
    Close,
    /// The client went away, or the socket went to a tunnel.
    Gone,
}

/// One request: handled, answered.
async fn exchange(io: &Shared, ctx: &Arc<ConnCtx>, head: RequestHead, drain: &CancellationToken) -> Next {
    let RequestHead { method, uri, version, headers, framing, keep_alive, expect_continue } = head;
    let body = match framing {
        Framing::Empty => ProxyBody::empty(),
        f => {
            lock(io).body_active = true;
            ProxyBody::client(RequestBody { io: io.clone(), state: BodyState::new(f), expect_continue })
        }
    };
    let head_request = method == Method::HEAD;
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    // A handshake that may switch protocols gets a handle for the tunnel.
    let upgrade = crate::headers::websocket_upgrade(req.headers()).is_some().then(|| {
        let (tx, rx) = oneshot::channel();
        req.extensions_mut().insert(OnUpgrade(Arc::new(Mutex::new(Some(rx)))));
        tx
    });
    // Pinned here, once: handing the future on by value would copy it (and rustc keeps
    // a slot for each copy in this future's state).
    let handler = std::pin::pin!(crate::entry::handle(req, ctx.clone()));
    let Some(resp) = watch(io, handler).await else { return Next::Gone };
    let keep = keep_alive && !drain.is_cancelled();
    respond(io, resp, version, head_request, keep, upgrade).await
}

/// Runs the handler while watching the client: `None` when it closed the connection
/// (the handler is dropped, which records the request as abandoned).
async fn watch<F>(io: &Shared, mut handler: Pin<&mut F>) -> Option<Response<ProxyBody>>
where
    F: Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>>,
{
    std::future::poll_fn(|cx| {
        if let Poll::Ready(Ok(resp)) = handler.as_mut().poll(cx) {
            return Poll::Ready(Some(resp));
        }
        let mut g = lock(io);
        let Io { stream, rbuf, body_active, .. } = &mut *g;
        // While the body is read, its reads see the close; after, this does (bytes of
        // a pipelined request are kept, up to the head limit).
        if !*body_active && rbuf.len() < head::MAX_HEAD {
            let Some(s) = stream.as_mut() else { return Poll::Ready(None) };
            loop {
                match poll_read(s, rbuf, cx) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Ready(Ok(_)) if rbuf.len() < head::MAX_HEAD => {}
                    Poll::Ready(Ok(_)) | Poll::Pending => break,
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// Writes the response, head then body; what the connection does next.
async fn respond(
    io: &Shared,
    resp: Response<ProxyBody>,
    version: Version,
    head_request: bool,
    mut keep: bool,
    upgrade: Option<oneshot::Sender<Upgraded>>,
) -> Next {
    let (parts, mut body) = resp.into_parts();
    // Tell the client when its request's body left the connection unusable.
    keep &= !lock(io).body_abandoned;
    let status = parts.status;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some();
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // Responses reach here with hop-by-hop headers (Transfer-Encoding among them)
    // stripped, or built by the proxy: a declared length is the only framing header.
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| head::content_length(v.as_bytes()));
    let (framing, add) = if bodiless {
        (Framing::Empty, None)
    } else if let Some(f @ (Framing::Length(_) | Framing::Empty)) = declared {
        (f, None)
    } else if body.is_end_stream() {
        (Framing::Empty, Some(Framing::Empty))
    } else if let Some(n) = body.size_hint().exact() {
        let f = if n == 0 { Framing::Empty } else { Framing::Length(n) };
        (f, Some(f))
    } else if version == Version::HTTP_11 {
        (Framing::Chunked, Some(Framing::Chunked))
    } else {
        // An HTTP/1.0 client learns the end of a body of unknown length by the close.
        keep = false;
        (Framing::Close, None)
    };
    let headers = parts.headers;
    let connection: Option<&'static [u8]> = if switching {
        None
    } else if !keep {
        Some(b"close")
    } else if version == Version::HTTP_10 {
        Some(b"keep-alive")
    } else {
        None
    };
    let mut out = Out::default();
    if headers.contains_key(header::DATE) {
        // The upstream's own `Date` passes through, as Envoy keeps it.
        head::encode_response(&mut out.pre, version, status, &headers, add, connection, b"");
    } else {
        date::with(|d| head::encode_response(&mut out.pre, version, status, &headers, add, connection, d));
    }
    drop(headers);
    let mut framer = Framer::new(framing);
    // The other connections this turn woke go first: the writes leave together.
    crate::batch::to_back().await;
    let written = std::future::poll_fn(|cx| poll_body_out(io, &mut body, &mut framer, &mut out, bodiless, cx)).await;
    drop(body);
    if written.is_err() {
        return Next::Gone;
    }
    if switching && let Some(tx) = upgrade {
        let mut g = lock(io);
        let rest = g.rbuf.split().freeze();
        if let Some(stream) = g.stream.take() {
            let _ = tx.send(Upgraded { stream, rest });
        }
        return Next::Gone;
    }
    let g = lock(io);
    // A request body not read to its end leaves its rest on the connection.
    if !keep || g.body_active || g.body_abandoned || framing == Framing::Close {
        return Next::Close;
    }
    Next::KeepAlive
}

/// Writes the queued head and then the body frames, as the body yields them.
fn poll_body_out(
    io: &Shared,
    body: &mut ProxyBody,
    framer: &mut Framer,
    out: &mut Out,
    bodiless: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), BoxError>> {
    if bodiless {
        framer.ended = true;
    }
    loop {
        let mut body_pending = false;
        if out.data.is_empty() && !framer.ended {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => framer.frame(frame, body.is_end_stream(), out)?,
                // A body that fails mid-way must not look complete: no last chunk, the
                // connection closes.
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => framer.end(out)?,
                Poll::Pending => body_pending = true,
            }
        }
        let mut g = lock(io);
        let Some(s) = g.stream.as_mut() else { return Poll::Ready(Err("the connection is gone".into())) };
        match out.poll_flush(s, cx) {
            Poll::Ready(Ok(())) if framer.ended => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(())) if body_pending => return Poll::Pending,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(Box::new(e))),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Answers a request that could not be parsed, then the connection closes.
async fn refuse(io: &Shared, e: HeadError) {
    let status = match e {
        HeadError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        HeadError::Syntax | HeadError::Framing => StatusCode::BAD_REQUEST,
    };
    let mut out = Out::default();
    date::with(|d| {
        head::encode_response(
            &mut out.pre,
            Version::HTTP_11,
            status,
            &http::HeaderMap::new(),
            Some(Framing::Empty),
            Some(b"close"),
            d,
        )
    });
    let _ = std::future::poll_fn(|cx| {
        let mut g = lock(io);
        match g.stream.as_mut() {
            Some(s) => out.poll_flush(s, cx),
            None => Poll::Ready(Ok(())),
        }
    })
    .await;
}

/// The end of a connection: the answer to a head that was refused, if any, then
/// [`close`]. Boxed: a connection ends once, and inline this state (the linger timer)
/// made every idle connection's future larger.
fn end(io: &Shared, refused: Option<HeadError>) -> Pin<Box<impl Future<Output = ()> + '_>> {
    Box::pin(async move {
        if let Some(e) = refused {
            refuse(io, e).await;
        }
        close(io).await
    })
}

/// Closes the connection: a FIN after the last response, then what the client still
/// sends is read and dropped for a moment, so that it reads the response before the
/// socket goes (closing with unread bytes would reset it).
async fn close(io: &Shared) {
    let (stream, unread) = {
        let mut g = lock(io);
        let unread = g.body_abandoned || g.body_active || !g.rbuf.is_empty();
        g.rbuf = BytesMut::new();
        (g.stream.take(), unread)
    };
    let Some(mut stream) = stream else { return };
    let _ = stream.shutdown().await;
    if unread {
        let linger = async {
            // On the heap: a buffer here would sit in every connection's future.
            let mut sink = vec![0u8; 4096];
            loop {
                match tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, linger).await;
    }
}

/// A request body, read from the client's connection as the request is sent on.
pub(crate) struct RequestBody {
    io: Shared,
    state: BodyState,
    /// `100 Continue` is owed before the body is read.
    expect_continue: bool,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").field("state", &self.state).finish_non_exhaustive()
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl RequestBody {
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut g = lock(&self.io);
        let Io { stream, rbuf, body_active, .. } = &mut *g;
        let Some(s) = stream.as_mut() else { return Poll::Ready(Some(Err("the connection is gone".into()))) };
        if self.expect_continue {
            // Sent when the body is first wanted, as Envoy and hyper do; a client that
            // sent the body anyway has it read all the same.
            let mut out = Out::default();
            out.post = CONTINUE;
            if let Err(e) = ready!(out.poll_flush(s, cx)) {
                return Poll::Ready(Some(Err(Box::new(e))));
            }
            self.expect_continue = false;
        }
        let r = ready!(poll_framed(&mut self.state, rbuf, s, cx));
        if self.state.is_done() {
            *body_active = false;
        }
        if let Some(Err(_)) = &r {
            // A body whose framing broke leaves the connection where no request starts.
            g.body_abandoned = true;
        }
        Poll::Ready(r)
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.state.is_done()
    }

    pub(crate) fn remaining(&self) -> Option<u64> {
        self.state.remaining()
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if self.state.is_done() {
            return;
        }
        let mut g = lock(&self.io);
        g.body_active = false;
        // A rest that has already arrived whole is skipped, and the connection lives.
        if let BodyState::Length(left) = self.state
            && g.rbuf.len() as u64 >= left
        {
            let _ = g.rbuf.split_to(left as usize);
            return;
        }
        g.body_abandoned = true;
    }
}

/// The client's side of a switched protocol: its socket, and bytes it sent after the
/// handshake.
pub(crate) struct Upgraded {
    pub(crate) stream: Downstream,
    pub(crate) rest: Bytes,
}

/// Where a tunnel gets the client's socket once the `101` is written.
#[derive(Clone)]
pub(crate) struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    /// The client's socket, once the switch is written; `None` if it never is.
    pub(crate) async fn upgraded(self) -> Option<Upgraded> {
        let rx = self.0.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        rx.await.ok()
    }
}

/// The `Date` header value, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    pub(super) fn with<R>(f: impl FnOnce(&[u8]) -> R) -> R {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != secs || c.1.is_empty() {
                *c = (secs, httpdate::fmt_http_date(now));
            }
            f(c.1.as_bytes())
        })
    }
}
