//! HTTP/2 to upstreams on the `h2` crate directly. A request opens its stream from its
//! own task (`SendRequest::send_request` only queues the HEADERS frame for the
//! connection task to write) and awaits the response there: no channel to a dispatch
//! task and no task per request, which hyper's client connection costs (callgrind:
//! its per-request `Send` task and channel were about 5% of the h2 path). A request
//! body, when there is one, is pumped by a task of its own so that a response can
//! stream back while the request still streams up (gRPC bidirectional calls).
//!
//! Settings are hyper's client defaults (windows 5 MB / 2 MB, 16 KB frames), so the
//! peer sees what it saw before.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, Request, Response};
use hyper::body::{Body as _, Frame, SizeHint};

use crate::body::{BoxError, ProxyBody};

const CONN_WINDOW: u32 = 5 * 1024 * 1024;
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const MAX_FRAME: u32 = 16 * 1024;
const MAX_SEND_BUF: usize = 1024 * 1024;
const MAX_HEADER_LIST: u32 = 16 * 1024;

/// HTTP/2 keep-alive pings (a DestinationRule's `http2.http2KeepAlive`... as compiled
/// into the cluster's limits).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeepAlive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// A handshaken connection: its request handle, and a flag set when it has closed.
pub(crate) struct Handshaken {
    pub(crate) sender: SendRequest<Bytes>,
    pub(crate) closed: Arc<AtomicBool>,
}

/// Opens HTTP/2 on `stream` and spawns the task that drives the connection (and pings
/// it when `keepalive` says so: no answer within the timeout closes it). `guard` lives
/// as long as the connection.
pub(crate) async fn handshake<G: Send + 'static>(
    stream: crate::upstream_io::UpstreamIo,
    keepalive: Option<KeepAlive>,
    guard: G,
) -> Result<Handshaken, h2::Error> {
    let (sender, mut conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_send_buffer_size(MAX_SEND_BUF)
        .max_header_list_size(MAX_HEADER_LIST)
        .enable_push(false)
        .handshake::<_, Bytes>(stream)
        .await?;
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let pings = keepalive.and_then(|k| conn.ping_pong().map(|p| (k, p)));
    tokio::spawn(async move {
        let _guard = guard;
        match pings {
            None => {
                let _ = conn.await;
            }
            Some((k, mut pp)) => {
                let pinger = async move {
                    loop {
                        tokio::time::sleep(k.interval).await;
                        match tokio::time::timeout(k.timeout, pp.ping(h2::Ping::opaque())).await {
                            Ok(Ok(_)) => {}
                            _ => return,
                        }
                    }
                };
                tokio::select! {
                    _ = &mut conn => {}
                    () = pinger => {}
                }
            }
        }
        flag.store(true, Ordering::Release);
    });
    Ok(Handshaken { sender, closed })
}

/// Why a request got no response head.
pub(crate) enum SendError {
    /// The connection takes no more streams; the request was not sent.
    Unsent(Request<ProxyBody>),
    Failed(h2::Error),
}

/// Sends `req` on `sender`'s connection and waits for the response head.
pub(crate) async fn send(
    sender: &mut SendRequest<Bytes>,
    req: Request<ProxyBody>,
) -> Result<Response<RecvBody>, SendError> {
    if std::future::poll_fn(|cx| sender.poll_ready(cx)).await.is_err() {
        return Err(SendError::Unsent(req));
    }
    let (mut parts, body) = req.into_parts();
    // As hyper's client did: a known length is declared when the request has none.
    if let Some(n) = body.size_hint().exact()
        && !parts.headers.contains_key(http::header::CONTENT_LENGTH)
        && (n != 0
            || !matches!(
                parts.method,
                http::Method::GET | http::Method::HEAD | http::Method::DELETE | http::Method::CONNECT
            ))
    {
        parts.headers.insert(http::header::CONTENT_LENGTH, n.into());
    }
    let eos = body.is_end_stream();
    let (response, stream) = sender.send_request(Request::from_parts(parts, ()), eos).map_err(SendError::Failed)?;
    if !eos {
        tokio::spawn(pipe(body, stream));
    }
    let resp = response.await.map_err(SendError::Failed)?;
    let length = content_length(resp.headers());
    Ok(resp.map(|recv| RecvBody { recv, length, data_done: false }))
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    let mut all = h.get_all(http::header::CONTENT_LENGTH).iter();
    let v = all.next()?;
    if all.next().is_some() {
        return None;
    }
    v.to_str().ok()?.trim().parse().ok()
}

/// Sends a request body on its stream. A frame is read from the body first (so no
/// window is claimed for a body that has nothing yet, hyper#4003), then one byte of
/// capacity is claimed and waited for before the frame is sent (h2 raises the claim to
/// the buffered length): a slow upstream slows the client instead of filling memory.
/// A body that fails resets the stream; a stream the peer resets stops the pump.
async fn pipe(mut body: ProxyBody, mut tx: SendStream<Bytes>) {
    loop {
        let frame = std::future::poll_fn(|cx| {
            if tx.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Pin::new(&mut body).poll_frame(cx).map(Some)
        })
        .await;
        let Some(frame) = frame else { return };
        match frame {
            None => {
                let _ = tx.send_data(Bytes::new(), true);
                return;
            }
            Some(Err(_)) => {
                tx.send_reset(Reason::CANCEL);
                return;
            }
            Some(Ok(f)) => match f.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    if !data.is_empty() {
                        tx.reserve_capacity(1);
                        let room = std::future::poll_fn(|cx| {
                            while tx.capacity() == 0 {
                                match ready!(tx.poll_capacity(cx)) {
                                    Some(Ok(_)) => {}
                                    _ => return Poll::Ready(false),
                                }
                            }
                            Poll::Ready(true)
                        })
                        .await;
                        if !room {
                            return;
                        }
                    }
                    if tx.send_data(data, end).is_err() || end {
                        return;
                    }
                }
                Err(f) => {
                    if let Ok(t) = f.into_trailers() {
                        let _ = tx.send_trailers(t);
                    }
                    return;
                }
            },
        }
    }
}

/// A response body from an HTTP/2 upstream: data (its flow-control window released as
/// it is read), then trailers.
pub(crate) struct RecvBody {
    recv: RecvStream,
    length: Option<u64>,
    data_done: bool,
}

impl std::fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBody").field("length", &self.length).finish_non_exhaustive()
    }
}

impl RecvBody {
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    if let Some(n) = self.length.as_mut() {
                        *n = n.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(Box::new(e)))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(t)) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
