//! gRPC without protobuf: length-prefixed framing, a test server and clients.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};

use crate::body::{BodySender, ChannelBody, TestBody, channel_body, empty_body, full_body};
use crate::client::{HttpClient, Protocol};
use crate::server::{Handler, HandlerFuture, ServerTask};
use crate::{BoxError, TEST_TIMEOUT};

/// `grpc-status` OK.
const OK: u32 = 0;

/// One gRPC message frame: flag byte 0 (uncompressed), u32 big-endian length,
/// payload.
pub fn grpc_frame(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(0);
    buf.put_u32(u32::try_from(payload.len()).expect("gRPC message under 4 GiB"));
    buf.put_slice(payload);
    buf.freeze()
}

/// Splits a byte sequence of whole gRPC frames into message payloads; panics
/// on a truncated frame.
pub fn parse_grpc_frames(data: &[u8]) -> Vec<Bytes> {
    let mut decoder = GrpcDecoder::new();
    decoder.push(data);
    let messages: Vec<Bytes> = std::iter::from_fn(|| decoder.next_message()).collect();
    assert!(decoder.pending() == 0, "truncated gRPC frame: {} trailing bytes", decoder.pending());
    messages
}

/// Incremental gRPC frame decoder: push bytes as they arrive, pop messages
/// as they complete.
#[derive(Debug, Default)]
pub struct GrpcDecoder {
    buf: BytesMut,
}

impl GrpcDecoder {
    /// An empty decoder.
    pub fn new() -> GrpcDecoder {
        GrpcDecoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message payload, if one is buffered.
    pub fn next_message(&mut self) -> Option<Bytes> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        self.buf.advance(5);
        Some(self.buf.split_to(len).freeze())
    }

    /// Bytes buffered that do not form a complete frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn grpc_trailers(status: u32, message: Option<&str>) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(status));
    if let Some(message) = message {
        t.insert("grpc-message", HeaderValue::from_str(message).expect("grpc-message is a valid header value"));
    }
    t
}

/// A minimal gRPC server over h2c (prior knowledge) on `127.0.0.1:<ephemeral>`,
/// framing only (payloads are opaque bytes). Methods:
///
/// - `/test.Echo/Unary`: replies the first request message, then trailers
///   `grpc-status: 0`.
/// - `/test.Echo/ServerStream`: N = first byte of the request message (0 if
///   empty); replies N messages, message i (0-based) being the request payload
///   followed by the byte `i`, each sent as its own DATA frame; then trailers.
/// - `/test.Echo/BidiStream`: echoes each request message as soon as it is
///   complete (true streaming), trailers when the request stream ends.
/// - `/test.Echo/Fail`: trailers-only response, `grpc-status: 14`,
///   `grpc-message: unavailable`.
/// - anything else: trailers-only `grpc-status: 12` (unimplemented).
///
/// Responses are HTTP 200 with `content-type: application/grpc` and
/// `x-backend-name: <name>`. Stops on [`GrpcBackend::stop`] or drop.
#[derive(Debug)]
pub struct GrpcBackend {
    name: String,
    hits: Arc<AtomicU64>,
    server: ServerTask,
}

impl GrpcBackend {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(name: &str) -> GrpcBackend {
        let hits = Arc::new(AtomicU64::new(0));
        let name_value = HeaderValue::from_str(name).expect("backend name is a valid header value");
        let handler_hits = Arc::clone(&hits);
        let server = ServerTask::start(move |_addr| {
            let handler: Handler = Arc::new(move |req| -> HandlerFuture {
                handler_hits.fetch_add(1, Ordering::SeqCst);
                let name = name_value.clone();
                Box::pin(async move {
                    let mut resp = handle(req).await;
                    resp.headers_mut().insert("x-backend-name", name);
                    resp
                })
            });
            handler
        })
        .await;
        GrpcBackend { name: name.to_owned(), hits, server }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.server.connections()
    }

    /// Closes the listener and every connection; returns once closed.
    pub async fn stop(&self) {
        self.server.stop().await;
    }
}

fn grpc_response(body: TestBody, trailers_only: Option<HeaderMap>) -> Response<TestBody> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    if let Some(status) = trailers_only {
        resp.headers_mut().extend(status);
    }
    resp
}

async fn read_messages(body: Incoming) -> Vec<Bytes> {
    match body.collect().await {
        Ok(collected) => {
            let mut decoder = GrpcDecoder::new();
            decoder.push(&collected.to_bytes());
            std::iter::from_fn(|| decoder.next_message()).collect()
        }
        Err(_) => Vec::new(),
    }
}

async fn handle(req: Request<Incoming>) -> Response<TestBody> {
    let path = req.uri().path().to_owned();
    let body = req.into_body();
    match path.as_str() {
        "/test.Echo/Unary" => {
            let messages = read_messages(body).await;
            let Some(first) = messages.into_iter().next() else {
                return grpc_response(empty_body(), Some(grpc_trailers(13, Some("expected one request message"))));
            };
            let (tx, rx) = ChannelBody::new(2);
            tokio::spawn(async move {
                if tx.send_data(grpc_frame(&first)).await.is_ok() {
                    let _ = tx.send_trailers(grpc_trailers(OK, None)).await;
                }
            });
            grpc_response(rx.boxed(), None)
        }
        "/test.Echo/ServerStream" => {
            let messages = read_messages(body).await;
            let request = messages.into_iter().next().unwrap_or_default();
            let count = request.first().copied().unwrap_or(0);
            let (tx, rx) = ChannelBody::new(1);
            tokio::spawn(async move {
                for i in 0..count {
                    let mut msg = request.to_vec();
                    msg.push(i);
                    if tx.send_data(grpc_frame(&msg)).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send_trailers(grpc_trailers(OK, None)).await;
            });
            grpc_response(rx.boxed(), None)
        }
        "/test.Echo/BidiStream" => {
            let (tx, rx) = ChannelBody::new(1);
            tokio::spawn(bidi_echo(body, tx));
            grpc_response(rx.boxed(), None)
        }
        "/test.Echo/Fail" => {
            let _ = read_messages(body).await;
            grpc_response(empty_body(), Some(grpc_trailers(14, Some("unavailable"))))
        }
        _ => grpc_response(empty_body(), Some(grpc_trailers(12, Some("unknown method")))),
    }
}

async fn bidi_echo(mut body: Incoming, tx: BodySender) {
    let mut decoder = GrpcDecoder::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            tx.abort("request stream failed").await;
            return;
        };
        if let Ok(data) = frame.into_data() {
            decoder.push(&data);
            while let Some(msg) = decoder.next_message() {
                if tx.send_data(grpc_frame(&msg)).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send_trailers(grpc_trailers(OK, None)).await;
}

/// The outcome of a gRPC call.
#[derive(Debug, Clone)]
pub struct GrpcReply {
    /// HTTP status of the response.
    pub http_status: StatusCode,
    /// `grpc-status` from the trailers, or from the headers for a
    /// trailers-only response; `None` if absent or unparsable.
    pub status: Option<u32>,
    /// `grpc-message`, from wherever `grpc-status` came from.
    pub message: Option<String>,
    /// The response message payloads.
    pub messages: Vec<Bytes>,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response trailers, if any.
    pub trailers: Option<HeaderMap>,
}

fn grpc_status(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> (Option<u32>, Option<String>) {
    let source = match trailers {
        Some(t) if t.contains_key("grpc-status") => t,
        _ => headers,
    };
    let status = source.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let message = source.get("grpc-message").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, message)
}

fn grpc_request(authority: &str, path: &str, body: TestBody) -> Result<Request<TestBody>, BoxError> {
    let uri = Uri::builder().scheme("http").authority(authority).path_and_query(path).build()?;
    let mut req = Request::new(body);
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    let h = req.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("te", HeaderValue::from_static("trailers"));
    Ok(req)
}

/// A gRPC client over one h2c (prior knowledge) connection to `addr`, opened
/// on first use; `authority` per call is the virtual host (`:authority`).
#[derive(Debug, Clone)]
pub struct GrpcClient {
    addr: SocketAddr,
    http: HttpClient,
}

impl GrpcClient {
    /// A client for `addr`; the connection is opened by the first call.
    pub fn new(addr: SocketAddr) -> GrpcClient {
        GrpcClient { addr, http: HttpClient::new(Protocol::Http2) }
    }

    /// Sends `messages`, half-closes, and reads the whole reply; errors
    /// (instead of panicking) on transport failures or after [`TEST_TIMEOUT`].
    pub async fn try_call(&self, authority: &str, path: &str, messages: &[&[u8]]) -> Result<GrpcReply, BoxError> {
        let mut body = BytesMut::new();
        for m in messages {
            body.extend_from_slice(&grpc_frame(m));
        }
        let req = grpc_request(authority, path, full_body(body.freeze()))?;
        let work = async {
            let mut sender = self.http.h2_sender(self.addr).await?;
            let resp = sender.send_request(req).await?;
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await?;
            let trailers = collected.trailers().cloned();
            let data = collected.to_bytes();
            let (status, message) = grpc_status(&parts.headers, trailers.as_ref());
            Ok(GrpcReply {
                http_status: parts.status,
                status,
                message,
                messages: parse_grpc_frames(&data),
                headers: parts.headers,
                trailers,
            })
        };
        match tokio::time::timeout(TEST_TIMEOUT, work).await {
            Ok(result) => result,
            Err(_) => Err(format!("gRPC call {path} did not finish within {TEST_TIMEOUT:?}").into()),
        }
    }

    /// [`GrpcClient::try_call`], panicking on transport errors.
    pub async fn call(&self, authority: &str, path: &str, messages: &[&[u8]]) -> GrpcReply {
        self.try_call(authority, path, messages)
            .await
            .unwrap_or_else(|e| panic!("gRPC call {path} via {} failed: {e}", self.addr))
    }

    /// One request message; panics on transport errors.
    pub async fn unary(&self, authority: &str, path: &str, payload: &[u8]) -> GrpcReply {
        self.call(authority, path, &[payload]).await
    }

    /// Opens a bidirectional stream: the request headers go out at once, the
    /// request body stays open until [`GrpcBidi::close_send`].
    pub async fn bidi(&self, authority: &str, path: &str) -> GrpcBidi {
        let (tx, body) = channel_body();
        let req = grpc_request(authority, path, body)
            .unwrap_or_else(|e| panic!("invalid gRPC request {authority}{path}: {e}"));
        let mut sender =
            self.http.h2_sender(self.addr).await.unwrap_or_else(|e| panic!("connect to {} failed: {e}", self.addr));
        // `send_request` hands the request to the connection immediately; the
        // returned future only waits for the response head.
        let pending = sender.send_request(req);
        GrpcBidi {
            tx: Some(tx),
            state: BidiState::Pending(Box::pin(async move { pending.await.map_err(BoxError::from) })),
            decoder: GrpcDecoder::new(),
            headers: None,
            trailers: None,
            http_status: None,
        }
    }
}

/// One unary call on a fresh h2c connection to `addr`, with `:authority`
/// `authority`; panics on transport errors.
pub async fn grpc_unary(addr: SocketAddr, authority: &str, path: &str, payload: &[u8]) -> GrpcReply {
    GrpcClient::new(addr).unary(authority, path, payload).await
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send>>;

enum BidiState {
    Pending(ResponseFuture),
    Open(Incoming),
    Done,
}

impl std::fmt::Debug for BidiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BidiState::Pending(_) => "Pending",
            BidiState::Open(_) => "Open",
            BidiState::Done => "Done",
        })
    }
}

/// A client-side bidirectional gRPC stream (see [`GrpcClient::bidi`]).
/// Every await is bounded by [`TEST_TIMEOUT`] and panics past it.
#[derive(Debug)]
pub struct GrpcBidi {
    tx: Option<BodySender>,
    state: BidiState,
    decoder: GrpcDecoder,
    headers: Option<HeaderMap>,
    trailers: Option<HeaderMap>,
    http_status: Option<StatusCode>,
}

impl GrpcBidi {
    /// Sends one request message (as its own DATA frame). Panics if the
    /// request side is closed or the peer went away.
    pub async fn send(&mut self, payload: &[u8]) {
        let tx = self.tx.as_ref().expect("send after close_send");
        match tokio::time::timeout(TEST_TIMEOUT, tx.send_data(grpc_frame(payload))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("gRPC bidi send failed: {e}"),
            Err(_) => panic!("gRPC bidi send blocked for {TEST_TIMEOUT:?}"),
        }
    }

    /// Ends the request stream (END_STREAM).
    pub fn close_send(&mut self) {
        self.tx = None;
    }

    /// The next response message, or `None` once the response ended (then
    /// [`GrpcBidi::status`] is known). Panics on stream errors and timeouts.
    pub async fn recv(&mut self) -> Option<Bytes> {
        match tokio::time::timeout(TEST_TIMEOUT, self.recv_inner()).await {
            Ok(result) => result.unwrap_or_else(|e| panic!("gRPC bidi receive failed: {e}")),
            Err(_) => panic!("no gRPC bidi message within {TEST_TIMEOUT:?}"),
        }
    }

    async fn recv_inner(&mut self) -> Result<Option<Bytes>, BoxError> {
        loop {
            if let Some(msg) = self.decoder.next_message() {
                return Ok(Some(msg));
            }
            match &mut self.state {
                BidiState::Done => return Ok(None),
                BidiState::Pending(fut) => {
                    let resp = fut.await?;
                    let (parts, body) = resp.into_parts();
                    self.http_status = Some(parts.status);
                    self.headers = Some(parts.headers);
                    self.state = BidiState::Open(body);
                }
                BidiState::Open(body) => match body.frame().await {
                    None => self.state = BidiState::Done,
                    Some(frame) => {
                        let frame: Frame<Bytes> = frame?;
                        match frame.into_data() {
                            Ok(data) => self.decoder.push(&data),
                            Err(frame) => {
                                if let Ok(t) = frame.into_trailers() {
                                    self.trailers = Some(t);
                                }
                            }
                        }
                    }
                },
            }
        }
    }

    /// Closes the request side, reads the rest of the response and returns
    /// it all (messages not yet received through [`GrpcBidi::recv`]).
    pub async fn finish(mut self) -> GrpcReply {
        self.close_send();
        let mut messages = Vec::new();
        while let Some(msg) = self.recv().await {
            messages.push(msg);
        }
        let headers = self.headers.unwrap_or_default();
        let (status, message) = grpc_status(&headers, self.trailers.as_ref());
        GrpcReply {
            http_status: self.http_status.unwrap_or_default(),
            status,
            message,
            messages,
            headers,
            trailers: self.trailers,
        }
    }

    /// The `grpc-status` once known (trailers, or trailers-only headers).
    pub fn status(&self) -> Option<u32> {
        let headers = self.headers.as_ref()?;
        grpc_status(headers, self.trailers.as_ref()).0
    }

    /// Response headers, once received.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }
}
