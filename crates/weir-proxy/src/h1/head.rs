//! Message heads: parsing with `httparse` into `http` types without copying header
//! values (they are slices of the received bytes), the body framing RFC 9112 §6.3
//! gives a message, and encoding heads into a buffer.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// Largest message head accepted (Envoy's default is 60 KiB).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Most header lines in one head.
pub(crate) const MAX_HEADERS: usize = 100;

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not HTTP/1.x syntax (bad start line, header syntax, bare CR, NUL, obs-fold...).
    Syntax,
    /// Larger than [`MAX_HEAD`], or more than [`MAX_HEADERS`] lines.
    TooLarge,
    /// The body framing is ambiguous or invalid: `Content-Length` beside
    /// `Transfer-Encoding`, differing or malformed lengths.
    Framing,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeadError::Syntax => "malformed HTTP/1.1 message head",
            HeadError::TooLarge => "HTTP/1.1 message head too large",
            HeadError::Framing => "invalid HTTP/1.1 body framing",
        })
    }
}

impl std::error::Error for HeadError {}

/// A response head read from an upstream.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The connection may carry another exchange after this one.
    pub(crate) keep_alive: bool,
}

/// Where each header line's name and value sit in the head's bytes.
type Spans = Vec<(usize, usize, usize, usize)>;

fn offset(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

/// Which of the headers that decide framing and persistence a head carries, noted
/// while its map is built so that the common head (none of them, or only a length)
/// costs no lookups.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    transfer_encoding: bool,
    content_length: bool,
    connection: bool,
    expect: bool,
}

/// The header lines of a parsed head as an `http` map whose values share `head`.
fn header_map(head: &Bytes, spans: &Spans) -> Result<(HeaderMap, Seen), HeadError> {
    // Room for the headers the proxy adds on the way (request id, forwarded proto,
    // attempt count, service time...) without growing and rehashing the map.
    let mut map = HeaderMap::with_capacity(spans.len() + 8);
    let mut seen = Seen::default();
    for &(ns, ne, vs, ve) in spans {
        let name = HeaderName::from_bytes(&head[ns..ne]).map_err(|_| HeadError::Syntax)?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs..ve)).map_err(|_| HeadError::Syntax)?;
        if name == header::TRANSFER_ENCODING {
            seen.transfer_encoding = true;
        } else if name == header::CONTENT_LENGTH {
            seen.content_length = true;
        } else if name == header::CONNECTION {
            seen.connection = true;
        } else if name == header::EXPECT {
            seen.expect = true;
        }
        map.append(name, value);
    }
    Ok((map, seen))
}

/// The length of a complete head from `httparse`'s verdict on `len` buffered bytes;
/// `None` while it is incomplete, an error when it is malformed or over [`MAX_HEAD`].
fn head_length(parsed: httparse::Result<usize>, len: usize) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) if len > MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Syntax),
    }
}

/// Where each parsed header line sits in `buf`.
fn spans(buf: &[u8], headers: &[httparse::Header<'_>]) -> Spans {
    headers
        .iter()
        .map(|h| {
            let ns = offset(buf, h.name.as_bytes());
            let vs = offset(buf, h.value);
            (ns, ns + h.name.len(), vs, vs + h.value.len())
        })
        .collect()
}

/// Parses a response head at the start of `buf`, removing it from `buf`. `Ok(None)`:
/// the head is not complete yet. `request` is the method of the request answered (a
/// response to HEAD has no body).
pub(crate) fn parse_response(buf: &mut BytesMut, request: &Method) -> Result<Option<ResponseHead>, HeadError> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut lines);
    let Some(n) = head_length(r.parse(buf), buf.len())? else { return Ok(None) };
    let status = r.code.and_then(|c| StatusCode::from_u16(c).ok()).ok_or(HeadError::Syntax)?;
    let version = if r.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let spans = spans(buf, r.headers);
    let head = buf.split_to(n).freeze();
    let (headers, seen) = header_map(&head, &spans)?;
    let framing = if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || request == Method::HEAD
    {
        Framing::Empty
    } else {
        match framing_of(&headers, seen)? {
            Some(f) => f,
            None => Framing::Close,
        }
    };
    let persistent = if seen.connection { keeps_alive(version, &headers) } else { version != Version::HTTP_10 };
    let keep_alive = framing != Framing::Close && persistent;
    Ok(Some(ResponseHead { status, version, headers, framing, keep_alive }))
}

/// A request head read from a client.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    pub(crate) uri: http::Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The client keeps the connection open after this exchange.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on a request with a body.
    pub(crate) expect_continue: bool,
}

/// Parses a request head at the start of `buf`, removing it from `buf`. `Ok(None)`:
/// not complete yet. Refuses what RFC 9112 tells a server to refuse: malformed lines
/// (bare CR, NUL, obs-fold, bad tokens; `httparse` is strict about these), heads over
/// [`MAX_HEAD`], a `Transfer-Encoding` whose last coding is not chunked, a length
/// beside it, lengths that disagree.
pub(crate) fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, HeadError> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut lines);
    let Some(n) = head_length(r.parse(buf), buf.len())? else { return Ok(None) };
    let method = Method::from_bytes(r.method.unwrap_or_default().as_bytes()).map_err(|_| HeadError::Syntax)?;
    let version = if r.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let path = r.path.unwrap_or_default();
    let target = {
        let s = offset(buf, path.as_bytes());
        (s, s + path.len())
    };
    let spans = spans(buf, r.headers);
    let head = buf.split_to(n).freeze();
    let uri = http::Uri::from_maybe_shared(head.slice(target.0..target.1)).map_err(|_| HeadError::Syntax)?;
    let (headers, seen) = header_map(&head, &spans)?;
    let framing = match framing_of(&headers, seen)? {
        // A request body that only the close would end cannot be framed (RFC 9112 §6.3).
        Some(Framing::Close) => return Err(HeadError::Framing),
        Some(f) => f,
        None => Framing::Empty,
    };
    let keep_alive = if seen.connection { keeps_alive(version, &headers) } else { version != Version::HTTP_10 };
    let expect_continue = seen.expect
        && framing != Framing::Empty
        && version == Version::HTTP_11
        && headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(RequestHead { method, uri, version, headers, framing, keep_alive, expect_continue }))
}

/// Writes a response head: the status line in `version`, the headers, and the framing
/// and connection headers the exchange needs.
pub(crate) fn encode_response(
    dst: &mut BytesMut,
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    add_framing: Option<Framing>,
    connection: Option<&'static [u8]>,
    date: &[u8],
) {
    dst.reserve(96 + headers.len() * 40);
    dst.put_slice(if version == Version::HTTP_10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    dst.put_slice(status.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    dst.put_slice(b"\r\n");
    for (name, value) in headers {
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    match add_framing {
        Some(Framing::Chunked) => dst.put_slice(b"transfer-encoding: chunked\r\n"),
        Some(Framing::Length(n)) => {
            dst.put_slice(b"content-length: ");
            dst.put_slice(itoa(n, &mut [0; 20]));
            dst.put_slice(b"\r\n");
        }
        Some(Framing::Empty) => dst.put_slice(b"content-length: 0\r\n"),
        Some(Framing::Close) | None => {}
    }
    if !date.is_empty() {
        dst.put_slice(b"date: ");
        dst.put_slice(date);
        dst.put_slice(b"\r\n");
    }
    if let Some(c) = connection {
        dst.put_slice(b"connection: ");
        dst.put_slice(c);
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"\r\n");
}

/// The framing the headers declare: chunked, a length, or none (`Ok(None)`). Refuses
/// what RFC 9112 §6.3 calls unrecoverable and Envoy rejects: `Content-Length` beside
/// `Transfer-Encoding`, a transfer coding other than a final `chunked` (requests; for
/// responses the caller reads to close), several differing lengths, a length that is
/// not a decimal number.
///
/// Only the headers `seen` says are there are looked up.
fn framing_of(headers: &HeaderMap, seen: Seen) -> Result<Option<Framing>, HeadError> {
    if !seen.transfer_encoding && !seen.content_length {
        return Ok(None);
    }
    if seen.transfer_encoding {
        if seen.content_length {
            return Err(HeadError::Framing);
        }
        let last =
            headers.get_all(header::TRANSFER_ENCODING).iter().next_back().map(|v| v.as_bytes()).unwrap_or_default();
        let last_coding = last.rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii();
        return Ok(Some(if last_coding.eq_ignore_ascii_case(b"chunked") { Framing::Chunked } else { Framing::Close }));
    }
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let n = parse_length(part.trim_ascii()).ok_or(HeadError::Framing)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Framing);
            }
            length = Some(n);
        }
    }
    Ok(length.map(|n| if n == 0 { Framing::Empty } else { Framing::Length(n) }))
}

/// The framing a single `Content-Length` value declares; `None` if it is not a length.
pub(crate) fn content_length(v: &[u8]) -> Option<Framing> {
    parse_length(v.trim_ascii()).map(|n| if n == 0 { Framing::Empty } else { Framing::Length(n) })
}

/// A `Content-Length` value: decimal digits only, no sign, no overflow.
fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// Whether a message leaves its connection open: HTTP/1.1 unless `Connection: close`,
/// HTTP/1.0 only with `Connection: keep-alive`.
pub(crate) fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &[u8]| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token)))
    };
    if version == Version::HTTP_10 { has(b"keep-alive") } else { !has(b"close") }
}

/// Writes a request head: the request line (`target` is origin-form, or what the
/// request carried), the headers as they are (names lowercase, as Envoy sends them),
/// and the framing header the body needs when the headers do not declare it.
pub(crate) fn encode_request(
    dst: &mut BytesMut,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: Framing,
    add_framing: bool,
) {
    dst.reserve(64 + target.len() + headers.len() * 32);
    dst.put_slice(method.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(target.as_bytes());
    dst.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    if add_framing {
        match framing {
            Framing::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
            Framing::Length(n) => {
                dst.put_slice(b"content-length: ");
                dst.put_slice(itoa(n, &mut [0; 20]));
                dst.put_slice(b"\r\n");
            }
            Framing::Empty | Framing::Close => {}
        }
    }
    dst.put_slice(b"\r\n");
}

/// `n` in decimal, into `buf`.
pub(crate) fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(text: &str) -> Result<Option<ResponseHead>, HeadError> {
        parse_response(&mut BytesMut::from(text), &Method::GET)
    }

    #[test]
    fn a_response_head_with_its_framing() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let h = parse_response(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(
            (h.status, h.version, h.framing, h.keep_alive),
            (StatusCode::OK, Version::HTTP_11, Framing::Length(5), true)
        );
        assert_eq!(h.headers["x-a"], "b");
        assert_eq!(&buf[..], b"hello", "the body stays in the buffer");
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(response("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let f = |t: &str| response(t).map(|h| h.map(|h| (h.framing, h.keep_alive)));
        assert_eq!(f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), Ok(Some((Framing::Chunked, true))));
        assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n"), Ok(Some((Framing::Close, false))));
        assert_eq!(f("HTTP/1.1 204 No Content\r\n\r\n"), Ok(Some((Framing::Empty, true))));
        assert_eq!(f("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"), Ok(Some((Framing::Empty, true))));
        assert_eq!(f("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), Ok(Some((Framing::Empty, true))));
        assert_eq!(f("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n"), Ok(Some((Framing::Length(3), true))));
        assert_eq!(f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), Ok(Some((Framing::Close, false))));
        assert_eq!(f("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), Ok(Some((Framing::Length(1), false))));
        assert_eq!(
            f("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n"),
            Ok(Some((Framing::Length(1), true)))
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"),
            Ok(Some((Framing::Length(1), false)))
        );
        let head = parse_response(&mut BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), &Method::HEAD);
        assert_eq!(head.unwrap().unwrap().framing, Framing::Empty, "a HEAD response has no body");
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for t in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert_eq!(response(t).unwrap_err(), HeadError::Framing, "{t:?}");
        }
    }

    #[test]
    fn malformed_heads_are_refused() {
        for t in [
            "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        ] {
            assert_eq!(response(t).unwrap_err(), HeadError::Syntax, "{t:?}");
        }
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(response(&big).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: a\r\n")).collect();
        assert_eq!(response(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn request_heads_carry_the_framing_they_need() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("svc"));
        let mut out = BytesMut::new();
        encode_request(&mut out, &Method::POST, "/a?b", &h, Framing::Chunked, true);
        assert_eq!(&out[..], b"POST /a?b HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n");
        out.clear();
        encode_request(&mut out, &Method::PUT, "/", &h, Framing::Length(1234), true);
        assert_eq!(&out[..], b"PUT / HTTP/1.1\r\nhost: svc\r\ncontent-length: 1234\r\n\r\n");
        out.clear();
        encode_request(&mut out, &Method::GET, "/", &h, Framing::Empty, true);
        assert_eq!(&out[..], b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n");
    }

    fn request(text: &str) -> Result<Option<RequestHead>, HeadError> {
        parse_request(&mut BytesMut::from(text))
    }

    #[test]
    fn a_request_head_with_its_framing() {
        let mut buf = BytesMut::from("POST /a?b=1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 2\r\n\r\nhiGET");
        let h = parse_request(&mut buf).unwrap().unwrap();
        assert_eq!(
            (&h.method, h.uri.path(), h.uri.query(), h.version),
            (&Method::POST, "/a", Some("b=1"), Version::HTTP_11)
        );
        assert_eq!((h.framing, h.keep_alive, h.expect_continue), (Framing::Length(2), true, false));
        assert_eq!(h.headers["host"], "svc");
        assert_eq!(&buf[..], b"hiGET", "the body and what follows stay in the buffer");
        let h = request("GET http://svc.ns/x HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.uri.authority().map(|a| a.as_str()), h.keep_alive), (Some("svc.ns"), false));
        let h = request("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
        let h = h.unwrap().unwrap();
        assert_eq!((h.framing, h.expect_continue), (Framing::Chunked, true));
        assert!(request("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn requests_rfc_9112_refuses_are_refused() {
        for (t, want) in [
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::Framing,
            ),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HeadError::Framing),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HeadError::Framing),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", HeadError::Framing),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", HeadError::Syntax),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", HeadError::Syntax),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", HeadError::Syntax),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HeadError::Syntax),
            ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", HeadError::Syntax),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HeadError::Syntax),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", HeadError::Syntax),
            ("\x00\x01garbage\r\n\r\n", HeadError::Syntax),
        ] {
            assert_eq!(request(t).unwrap_err(), want, "{t:?}");
        }
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(request(&big).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn response_heads_carry_framing_and_connection() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut out = BytesMut::new();
        encode_response(&mut out, Version::HTTP_11, StatusCode::OK, &h, Some(Framing::Length(5)), None, b"D");
        assert_eq!(&out[..], b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\ndate: D\r\n\r\n");
        out.clear();
        encode_response(&mut out, Version::HTTP_10, StatusCode::from_u16(599).unwrap(), &h, None, Some(b"close"), b"");
        assert_eq!(&out[..], b"HTTP/1.0 599 \r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n");
    }

    #[test]
    fn itoa_writes_decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
