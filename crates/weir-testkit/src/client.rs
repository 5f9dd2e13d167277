//! HTTP/1.1 and HTTP/2 (prior knowledge) test clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::body::{TestBody, empty_body, full_body};
use crate::{BoxError, TEST_TIMEOUT};

/// Which HTTP version a [`HttpClient`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.1 (`Host` header carries the virtual host).
    Http1,
    /// HTTP/2 with prior knowledge, h2c (`:authority` carries the virtual host).
    Http2,
}

/// A client that connects to the address in a request's URL while presenting
/// the request's `Host` header (if any) as the virtual host: as `Host` for
/// HTTP/1.1, as `:authority` (and no `Host` header) for HTTP/2.
///
/// Connections are reused per address unless built with
/// [`HttpClient::without_reuse`]: HTTP/1.1 connections return to the pool
/// once a buffered response is read, HTTP/2 requests share one multiplexed
/// connection. A request that could not be written on a reused connection is
/// retried once on a new one. Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    protocol: Protocol,
    reuse: bool,
    opened: AtomicU64,
    h1: Mutex<HashMap<SocketAddr, Vec<http1::SendRequest<TestBody>>>>,
    h2: Mutex<HashMap<SocketAddr, http2::SendRequest<TestBody>>>,
}

enum Conn {
    H1(http1::SendRequest<TestBody>),
    H2(http2::SendRequest<TestBody>),
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// HTTP version the response came back on.
    pub version: Version,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// Trailers, if the body ended with some.
    pub trailers: Option<HeaderMap>,
}

impl TestResponse {
    /// The body parsed as JSON; panics (showing the body) if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header as text (first value), if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-backend-name` header set by [`crate::Backend`].
    pub fn backend(&self) -> Option<&str> {
        self.header("x-backend-name")
    }

    /// The `x-backend-version` header set by [`crate::Backend`].
    pub fn backend_version(&self) -> Option<&str> {
        self.header("x-backend-version")
    }
}

/// An HTTP/1.1 client with connection reuse.
pub fn http1_client() -> HttpClient {
    HttpClient::new(Protocol::Http1)
}

/// An HTTP/2 prior-knowledge (h2c) client with connection reuse.
pub fn http2_client() -> HttpClient {
    HttpClient::new(Protocol::Http2)
}

impl HttpClient {
    /// A client for `protocol` that reuses connections.
    pub fn new(protocol: Protocol) -> HttpClient {
        HttpClient::build(protocol, true)
    }

    /// A client for `protocol` that opens a new connection for every request.
    pub fn without_reuse(protocol: Protocol) -> HttpClient {
        HttpClient::build(protocol, false)
    }

    fn build(protocol: Protocol, reuse: bool) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                protocol,
                reuse,
                opened: AtomicU64::new(0),
                h1: Mutex::new(HashMap::new()),
                h2: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// TCP connections this client (and its clones) opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.inner.opened.load(Ordering::SeqCst)
    }

    /// GET `url` (`http://ip:port/path?query`) with virtual host `host` (`""`:
    /// the URL's authority) and extra headers; panics on transport errors or
    /// after [`TEST_TIMEOUT`].
    pub async fn get(&self, url: &str, host: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.request(Method::GET, url, host, headers, Bytes::new()).await
    }

    /// Any method with a whole body; panics like [`HttpClient::get`].
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let body = body.into();
        let body = if body.is_empty() && (method == Method::GET || method == Method::HEAD) {
            empty_body()
        } else {
            full_body(body)
        };
        let req = build_request(method.clone(), url, host, headers, body);
        match self.fetch(req).await {
            Ok(resp) => resp,
            Err(e) => panic!("{method} {url} (host {host:?}) failed: {e}"),
        }
    }

    /// Sends `req` and reads the whole response (body and trailers). Errors
    /// instead of panicking, so tests can assert on resets and refusals.
    pub async fn fetch(&self, req: Request<TestBody>) -> Result<TestResponse, BoxError> {
        let work = async {
            let (resp, conn, addr) = self.dispatch(req).await?;
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await?;
            if let Some(conn @ Conn::H1(_)) = conn {
                self.checkin(addr, conn);
            }
            Ok(TestResponse {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                trailers: collected.trailers().cloned(),
                body: collected.to_bytes(),
            })
        };
        match tokio::time::timeout(TEST_TIMEOUT, work).await {
            Ok(result) => result,
            Err(_) => Err(format!("no complete response within {TEST_TIMEOUT:?}").into()),
        }
    }

    /// Sends `req` and returns as soon as the response head arrives, with the
    /// body still streaming (read it with [`next_data`] / [`read_bytes`] or
    /// `http_body_util::BodyExt`). HTTP/1.1 connections used this way are not
    /// reused.
    pub async fn send(&self, req: Request<TestBody>) -> Result<Response<Incoming>, BoxError> {
        match tokio::time::timeout(TEST_TIMEOUT, self.dispatch(req)).await {
            Ok(result) => result.map(|(resp, _, _)| resp),
            Err(_) => Err(format!("no response head within {TEST_TIMEOUT:?}").into()),
        }
    }

    /// An HTTP/2 request sender for `addr` (shared connection when reusing).
    pub(crate) async fn h2_sender(&self, addr: SocketAddr) -> Result<http2::SendRequest<TestBody>, BoxError> {
        assert_eq!(self.inner.protocol, Protocol::Http2, "h2_sender needs an HTTP/2 client");
        match self.checkout(addr).await? {
            (Conn::H2(mut sender), _) => {
                sender.ready().await?;
                Ok(sender)
            }
            (Conn::H1(_), _) => unreachable!("HTTP/2 client produced an HTTP/1 connection"),
        }
    }

    async fn dispatch(
        &self,
        req: Request<TestBody>,
    ) -> Result<(Response<Incoming>, Option<Conn>, SocketAddr), BoxError> {
        let (addr, mut req) = prepare(req, self.inner.protocol).await?;
        loop {
            let (conn, reused) = self.checkout(addr).await?;
            match conn {
                Conn::H1(mut sender) => {
                    if let Err(e) = sender.ready().await {
                        if reused {
                            continue;
                        }
                        return Err(e.into());
                    }
                    match sender.try_send_request(req).await {
                        Ok(resp) => return Ok((resp, Some(Conn::H1(sender)), addr)),
                        Err(mut e) => match e.take_message() {
                            Some(back) if reused => req = back,
                            _ => return Err(e.into_error().into()),
                        },
                    }
                }
                Conn::H2(mut sender) => {
                    if let Err(e) = sender.ready().await {
                        if reused {
                            self.forget_h2(addr);
                            continue;
                        }
                        return Err(e.into());
                    }
                    match sender.try_send_request(req).await {
                        Ok(resp) => return Ok((resp, None, addr)),
                        Err(mut e) => match e.take_message() {
                            Some(back) if reused => {
                                self.forget_h2(addr);
                                req = back;
                            }
                            _ => return Err(e.into_error().into()),
                        },
                    }
                }
            }
        }
    }

    /// A connection to `addr` and whether it was reused.
    async fn checkout(&self, addr: SocketAddr) -> Result<(Conn, bool), BoxError> {
        if self.inner.reuse {
            match self.inner.protocol {
                Protocol::Http1 => {
                    let mut pool = self.inner.h1.lock().expect("pool lock");
                    if let Some(idle) = pool.get_mut(&addr) {
                        while let Some(sender) = idle.pop() {
                            if !sender.is_closed() {
                                return Ok((Conn::H1(sender), true));
                            }
                        }
                    }
                }
                Protocol::Http2 => {
                    let pool = self.inner.h2.lock().expect("pool lock");
                    if let Some(sender) = pool.get(&addr)
                        && !sender.is_closed()
                    {
                        return Ok((Conn::H2(sender.clone()), true));
                    }
                }
            }
        }
        let conn = self.connect(addr).await?;
        if let (true, Conn::H2(sender)) = (self.inner.reuse, &conn) {
            self.inner.h2.lock().expect("pool lock").insert(addr, sender.clone());
        }
        Ok((conn, false))
    }

    fn checkin(&self, addr: SocketAddr, conn: Conn) {
        if let (true, Conn::H1(sender)) = (self.inner.reuse, conn)
            && !sender.is_closed()
        {
            self.inner.h1.lock().expect("pool lock").entry(addr).or_default().push(sender);
        }
    }

    fn forget_h2(&self, addr: SocketAddr) {
        self.inner.h2.lock().expect("pool lock").remove(&addr);
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Conn, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        self.inner.opened.fetch_add(1, Ordering::SeqCst);
        let io = TokioIo::new(stream);
        match self.inner.protocol {
            Protocol::Http1 => {
                let (sender, conn) = http1::handshake(io).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Conn::H1(sender))
            }
            Protocol::Http2 => {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Conn::H2(sender))
            }
        }
    }
}

/// Resolves the target address and rewrites the request for the wire.
async fn prepare(mut req: Request<TestBody>, protocol: Protocol) -> Result<(SocketAddr, Request<TestBody>), BoxError> {
    let uri = req.uri().clone();
    let authority = uri.authority().ok_or_else(|| format!("request URL {uri} has no host:port to connect to"))?;
    let addr = resolve(authority.as_str()).await?;
    let virtual_host = match req.headers().get(HOST) {
        Some(h) => h.to_str()?.to_owned(),
        None => authority.as_str().to_owned(),
    };
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    match protocol {
        Protocol::Http1 => {
            *req.uri_mut() = path.parse()?;
            req.headers_mut().insert(HOST, HeaderValue::from_str(&virtual_host)?);
            *req.version_mut() = Version::HTTP_11;
        }
        Protocol::Http2 => {
            *req.uri_mut() =
                Uri::builder().scheme("http").authority(virtual_host.as_str()).path_and_query(path.as_str()).build()?;
            req.headers_mut().remove(HOST);
            *req.version_mut() = Version::HTTP_2;
        }
    }
    Ok((addr, req))
}

async fn resolve(authority: &str) -> Result<SocketAddr, BoxError> {
    if let Ok(addr) = authority.parse() {
        return Ok(addr);
    }
    tokio::net::lookup_host(authority).await?.next().ok_or_else(|| format!("{authority} resolves to nothing").into())
}

/// Builds a request for [`HttpClient::fetch`] / [`HttpClient::send`]: `url`
/// is where to connect (`http://127.0.0.1:port/path?query`), `host` the
/// virtual host (`""`: none, the URL's authority is used).
pub fn build_request(
    method: Method,
    url: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: TestBody,
) -> Request<TestBody> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = url.parse().unwrap_or_else(|e| panic!("invalid URL {url:?}: {e}"));
    let h = req.headers_mut();
    if !host.is_empty() {
        h.insert(HOST, HeaderValue::from_str(host).unwrap_or_else(|_| panic!("invalid host {host:?}")));
    }
    for (name, value) in headers {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| panic!("invalid header name {name:?}")),
            HeaderValue::from_str(value).unwrap_or_else(|_| panic!("invalid header value {value:?}")),
        );
    }
    req
}

/// GET through `client`; see [`HttpClient::get`].
pub async fn get(client: &HttpClient, url: &str, host: &str, headers: &[(&str, &str)]) -> TestResponse {
    client.get(url, host, headers).await
}

/// Any method with a whole body through `client`; see [`HttpClient::request`].
pub async fn request(
    client: &HttpClient,
    method: Method,
    url: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> TestResponse {
    client.request(method, url, host, headers, body).await
}

/// The next non-empty data frame of a streaming body, or `None` once the body
/// ended (trailers are skipped). Panics on a body error or after
/// [`TEST_TIMEOUT`].
pub async fn next_data<B>(body: &mut B) -> Option<Bytes>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    loop {
        let frame = match tokio::time::timeout(TEST_TIMEOUT, body.frame()).await {
            Ok(frame) => frame?,
            Err(_) => panic!("no body frame within {TEST_TIMEOUT:?}"),
        };
        let frame = frame.unwrap_or_else(|e| panic!("body error: {e}"));
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            return Some(data);
        }
    }
}

/// Reads a streaming body until at least `n` bytes arrived (more if the last
/// frame overshoots). Panics if the body ends first, on error, or when a frame
/// takes longer than [`TEST_TIMEOUT`].
pub async fn read_bytes<B>(body: &mut B, n: usize) -> Bytes
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    while buf.len() < n {
        match next_data(body).await {
            Some(data) => buf.extend_from_slice(&data),
            None => panic!("body ended after {} of {n} bytes", buf.len()),
        }
    }
    buf.freeze()
}
