//! [`Backend`]: the HTTP echo server that reports who answered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::body::{ChannelBody, TestBody, full_body};
use crate::server::{Handler, HandlerFuture, ServerTask};

/// Behaviour knobs, shared with the request handler.
#[derive(Debug, Clone)]
struct Behaviour {
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
    delay: Duration,
    fail_status: StatusCode,
    fail_remaining: u64,
    slow_delay: Duration,
    slow_remaining: u64,
    hold: bool,
    grpc_fail_status: u32,
    grpc_fail_remaining: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: None,
            headers: Vec::new(),
            delay: Duration::ZERO,
            fail_status: StatusCode::SERVICE_UNAVAILABLE,
            fail_remaining: 0,
            slow_delay: Duration::ZERO,
            slow_remaining: 0,
            hold: false,
            grpc_fail_status: 14,
            grpc_fail_remaining: 0,
        }
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    version: String,
    port: u16,
    hits: AtomicU64,
    body_bytes: AtomicU64,
    last_authority: Mutex<Option<String>>,
    behaviour: Mutex<Behaviour>,
    stream_gate: Semaphore,
    request_gate: Semaphore,
}

/// What one request gets, decided when it arrives.
struct Decision {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    delay: Duration,
    hold: bool,
}

impl Shared {
    fn decide(&self) -> Decision {
        let mut b = self.behaviour.lock().expect("behaviour lock");
        let status = if b.fail_remaining > 0 {
            b.fail_remaining -= 1;
            b.fail_status
        } else {
            b.status.unwrap_or(StatusCode::OK)
        };
        let delay = if b.slow_remaining > 0 {
            b.slow_remaining -= 1;
            b.slow_delay
        } else {
            b.delay
        };
        let mut headers = b.headers.clone();
        if b.grpc_fail_remaining > 0 {
            b.grpc_fail_remaining -= 1;
            headers.push((HeaderName::from_static("grpc-status"), HeaderValue::from(b.grpc_fail_status)));
            headers.push((HeaderName::from_static("grpc-message"), HeaderValue::from_static("failed on command")));
        }
        Decision { status, headers, delay, hold: b.hold }
    }

    fn response(&self, decision: &Decision, content_type: &str, body: TestBody) -> Response<TestBody> {
        let mut resp = Response::new(body);
        *resp.status_mut() = decision.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).expect("content type"));
        h.insert("x-backend-name", HeaderValue::from_str(&self.name).expect("backend name is a valid header value"));
        h.insert(
            "x-backend-version",
            HeaderValue::from_str(&self.version).expect("backend version is a valid header value"),
        );
        for (k, v) in &decision.headers {
            h.append(k.clone(), v.clone());
        }
        resp
    }
}

/// Configures a [`Backend`] before it starts. Every knob can also be changed
/// on the running backend.
#[derive(Debug, Clone)]
pub struct BackendBuilder {
    name: String,
    version: String,
    behaviour: Behaviour,
}

impl BackendBuilder {
    /// Answer every request with this status (instead of 200).
    pub fn status(mut self, status: u16) -> Self {
        self.behaviour.status = Some(status_code(status));
        self
    }

    /// Add a response header to every response.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.behaviour.headers.push(header_pair(name, value));
        self
    }

    /// Wait this long (after reading the request body) before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.behaviour.delay = delay;
        self
    }

    /// Answer the first `count` requests with `status`.
    pub fn fail_next(mut self, status: u16, count: u64) -> Self {
        self.behaviour.fail_status = status_code(status);
        self.behaviour.fail_remaining = count;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> Backend {
        let mut state = None;
        let server = ServerTask::start(|addr| {
            let shared = Arc::new(Shared {
                name: self.name,
                version: self.version,
                port: addr.port(),
                hits: AtomicU64::new(0),
                body_bytes: AtomicU64::new(0),
                last_authority: Mutex::new(None),
                behaviour: Mutex::new(self.behaviour),
                stream_gate: Semaphore::new(0),
                request_gate: Semaphore::new(0),
            });
            state = Some(Arc::clone(&shared));
            let handler: Handler = Arc::new(move |req| -> HandlerFuture { Box::pin(handle(Arc::clone(&shared), req)) });
            handler
        })
        .await;
        let shared = state.expect("handler built");
        Backend { shared, server }
    }
}

/// An HTTP/1.1 + h2c echo server on `127.0.0.1:<ephemeral>`.
///
/// Every plain response carries `x-backend-name` / `x-backend-version`
/// headers and a JSON body:
/// `{"service", "version", "port", "method", "path" (with query), "authority",
/// "protocol" ("HTTP/1.0" | "HTTP/1.1" | "HTTP/2"), "headers" {lower-case name:
/// values joined with ","}, "body_len"}`. The request body is read completely
/// before answering.
///
/// Special paths:
/// - `/stream?chunks=N&size=S` answers N data frames of S bytes each (chunk k
///   is S copies of `b'a' + k % 26`), handed to hyper one at a time. Add
///   `&gated=1` to send each chunk only after [`Backend::release_chunks`]
///   granted it (deterministic proof that a proxy streams), or
///   `&interval_ms=D` to pause between chunks.
/// - `/echo-body` streams the request body (and trailers) back as it arrives,
///   with `content-type: application/octet-stream`.
///
/// Stops on [`Backend::stop`] or when dropped.
#[derive(Debug)]
pub struct Backend {
    shared: Arc<Shared>,
    server: ServerTask,
}

impl Backend {
    /// Starts a backend with default behaviour (200, no delay).
    pub async fn start(name: &str, version: &str) -> Backend {
        Backend::builder(name, version).start().await
    }

    /// A builder for a backend with non-default behaviour.
    pub fn builder(name: &str, version: &str) -> BackendBuilder {
        BackendBuilder { name: name.to_owned(), version: version.to_owned(), behaviour: Behaviour::default() }
    }

    /// The bound address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The version given at start.
    pub fn version(&self) -> &str {
        &self.shared.version
    }

    /// Requests received so far (counted when a request arrives, before its
    /// response is sent).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Request body bytes received so far (bodies read to their end by the plain
    /// handler).
    pub fn body_bytes(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::SeqCst)
    }

    /// The authority (`:authority`, else `Host`) of the last request that arrived.
    pub fn last_authority(&self) -> Option<String> {
        self.shared.last_authority.lock().expect("authority lock").clone()
    }

    /// Sets the hit counter back to zero.
    pub fn reset_hits(&self) {
        self.shared.hits.store(0, Ordering::SeqCst);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.server.connections()
    }

    /// Fixed status for every response (`None`: 200).
    pub fn set_status(&self, status: Option<u16>) {
        self.behaviour().status = status.map(status_code);
    }

    /// Adds a response header to every later response.
    pub fn set_header(&self, name: &str, value: &str) {
        self.behaviour().headers.push(header_pair(name, value));
    }

    /// Removes every extra response header.
    pub fn clear_headers(&self) {
        self.behaviour().headers.clear();
    }

    /// Delay before answering (`Duration::ZERO`: none).
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour().delay = delay;
    }

    /// Answers the next `count` requests with `status`, then goes back to
    /// normal. Replaces any failure budget still left.
    pub fn fail_next(&self, status: u16, count: u64) {
        let mut b = self.behaviour();
        b.fail_status = status_code(status);
        b.fail_remaining = count;
    }

    /// Answers the next `count` requests as a gRPC server failing with `status` would:
    /// HTTP 200 with `grpc-status` (and `grpc-message`) in the response headers.
    pub fn fail_next_grpc(&self, status: u32, count: u64) {
        let mut b = self.behaviour();
        b.grpc_fail_status = status;
        b.grpc_fail_remaining = count;
    }

    /// Delays the next `count` requests by `delay` each (after reading their bodies),
    /// then goes back to the usual delay.
    pub fn delay_next(&self, delay: Duration, count: u64) {
        let mut b = self.behaviour();
        b.slow_delay = delay;
        b.slow_remaining = count;
    }

    /// Holds every later request (counted in [`Backend::hits`] when it arrives) until
    /// [`Backend::release`] lets it answer; `false` answers at once again (requests
    /// already held stay held until released).
    pub fn set_hold(&self, hold: bool) {
        self.behaviour().hold = hold;
    }

    /// Lets `n` held requests answer.
    pub fn release(&self, n: usize) {
        self.shared.request_gate.add_permits(n);
    }

    /// Lets `n` more chunks of gated `/stream?...&gated=1` responses go out.
    pub fn release_chunks(&self, n: usize) {
        self.shared.stream_gate.add_permits(n);
    }

    /// Closes the listener and every open connection; returns once closed.
    /// Idempotent. Dropping the backend also stops it (without waiting).
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    fn behaviour(&self) -> std::sync::MutexGuard<'_, Behaviour> {
        self.shared.behaviour.lock().expect("behaviour lock")
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"))
}

fn header_pair(name: &str, value: &str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| panic!("invalid header name {name:?}")),
        HeaderValue::from_str(value).unwrap_or_else(|_| panic!("invalid header value {value:?}")),
    )
}

pub(crate) fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "unknown",
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<TestBody> {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| req.headers().get(HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()));
    *shared.last_authority.lock().expect("authority lock") = authority;
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let decision = shared.decide();
    if decision.hold
        && let Ok(permit) = shared.request_gate.acquire().await
    {
        permit.forget();
    }
    match req.uri().path() {
        "/stream" => stream(shared, decision, req).await,
        "/echo-body" => echo_body(shared, decision, req).await,
        _ => describe(shared, decision, req).await,
    }
}

async fn describe(shared: Arc<Shared>, decision: Decision, req: Request<Incoming>) -> Response<TestBody> {
    let (parts, mut body) = req.into_parts();
    let mut body_len: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_len += data.len() as u64;
                }
            }
            // The client went away mid-body; nobody is left to answer.
            Err(_) => break,
        }
    }
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let joined = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        headers.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| parts.headers.get(HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()))
        .unwrap_or_default();
    shared.body_bytes.fetch_add(body_len, Ordering::SeqCst);
    let path = parts.uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| "/".to_owned());
    let doc = json!({
        "service": shared.name,
        "version": shared.version,
        "port": shared.port,
        "method": parts.method.as_str(),
        "path": path,
        "authority": authority,
        "protocol": protocol_name(parts.version),
        "headers": Value::Object(headers),
        "body_len": body_len,
    });
    let text = serde_json::to_vec(&doc).expect("serialize JSON");
    shared.response(&decision, "application/json", full_body(text))
}

async fn stream(shared: Arc<Shared>, decision: Decision, req: Request<Incoming>) -> Response<TestBody> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let chunks: usize = query_param(&query, "chunks").and_then(|v| v.parse().ok()).unwrap_or(1);
    let size: usize = query_param(&query, "size").and_then(|v| v.parse().ok()).unwrap_or(1024);
    let gated = matches!(query_param(&query, "gated"), Some("1" | "true"));
    let interval = query_param(&query, "interval_ms")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::ZERO);
    // Drain the request body first, as for every other endpoint.
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let (tx, rx) = ChannelBody::new(1);
    let producer = Arc::clone(&shared);
    tokio::spawn(async move {
        for k in 0..chunks {
            if gated {
                match producer.stream_gate.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                }
            } else if k > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            let fill = b'a' + (k % 26) as u8;
            if tx.send_data(Bytes::from(vec![fill; size])).await.is_err() {
                return;
            }
        }
    });
    shared.response(&decision, "application/octet-stream", BodyExt::boxed(rx))
}

async fn echo_body(shared: Arc<Shared>, decision: Decision, req: Request<Incoming>) -> Response<TestBody> {
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut body = req.into_body();
    let (tx, rx) = ChannelBody::new(1);
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let frame: Frame<Bytes> = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    tx.abort(&format!("request body failed: {e}")).await;
                    return;
                }
            };
            let sent = match frame.into_data() {
                Ok(data) => tx.send_data(data).await,
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => tx.send_trailers(trailers).await,
                    Err(_) => Ok(()),
                },
            };
            if sent.is_err() {
                return;
            }
        }
    });
    shared.response(&decision, "application/octet-stream", BodyExt::boxed(rx))
}
