//! The client side of HTTP/1.1 on the wire, with raw sockets: keep-alive and
//! pipelining, HTTP/1.0, `Expect: 100-continue`, the heads RFC 9112 says to refuse
//! (refused before routing, the connection closed, nothing smuggled upstream), and a
//! client that leaves mid-request (recorded `DC`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Harness, registry_only, service, svc_routes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_testkit::{Backend, TEST_TIMEOUT, wait_for, wait_for_async};

async fn start(b: &Backend) -> Harness {
    let yaml = format!(
        "{}{}{}",
        registry_only("ns"),
        service("svc", "ns", "HTTP", &[b]),
        svc_routes("  - route: [{destination: {host: svc}}]\n")
    );
    Harness::start(&yaml, Some("ns")).await
}

/// One response read off a kept-alive connection: its head (lower-cased names) and body.
struct Resp {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// Reads exactly one response (content-length or chunked framed, or to the close).
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Resp> {
    tokio::time::timeout(TEST_TIMEOUT, read_response_inner(s, buf)).await.expect("a response in time")
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

async fn read_response_inner(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Resp> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(s, buf).await {
            return None;
        }
    };
    let head = String::from_utf8(buf[..end].to_vec()).expect("a UTF-8 head");
    buf.drain(..end);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut r = Resp { status_line, headers, body: Vec::new() };
    let informational = r.status_line.split(' ').nth(1).is_some_and(|c| c.starts_with('1'));
    if informational || r.status_line.contains(" 204 ") || r.status_line.contains(" 304 ") {
        return Some(r);
    }
    if let Some(n) = r.one("content-length").map(|v| v.parse::<usize>().expect("a length")) {
        while buf.len() < n {
            assert!(fill(s, buf).await, "the connection closed inside a body");
        }
        r.body = buf.drain(..n).collect();
    } else if r.one("transfer-encoding") == Some("chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                assert!(fill(s, buf).await, "the connection closed inside a chunk");
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap().trim(), 16).unwrap();
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                assert!(fill(s, buf).await, "the connection closed inside a chunk");
            }
            r.body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                break;
            }
        }
    } else {
        while fill(s, buf).await {}
        r.body = std::mem::take(buf);
    }
    Some(r)
}

/// True when the peer closes the connection (reads nothing more) within the bound.
async fn closes(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match tokio::time::timeout(TEST_TIMEOUT, s.read_to_end(&mut rest)).await {
        Ok(Ok(_)) | Ok(Err(_)) => rest.is_empty(),
        Err(_) => false,
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect to the proxy")
}

#[tokio::test]
async fn keep_alive_and_pipelined_requests_are_answered_in_order_with_one_date() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&b).await;
    let mut s = connect(h.mesh()).await;
    let mut buf = Vec::new();
    // Three requests in one write: answered in order on the same connection.
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /2 HTTP/1.1\r\nHost: svc\r\n\r\nPOST /3 HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    for path in ["/1", "/2", "/3"] {
        let r = read_response(&mut s, &mut buf).await.expect("a response");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(j["path"], path);
        assert_eq!(r.all("date").len(), 1, "the upstream's Date passes through, no second one: {:?}", r.headers);
        assert!(r.one("connection").is_none(), "HTTP/1.1 keep-alive is implicit");
    }
    assert_eq!(b.connections(), 1, "one upstream connection carried all three");
    // A local reply (a host outside the registry) gets the proxy's own Date, once.
    s.write_all(b"GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n").await.unwrap();
    let r = read_response(&mut s, &mut buf).await.expect("a response");
    assert_eq!(r.status_line, "HTTP/1.1 502 Bad Gateway");
    assert_eq!(r.all("date").len(), 1, "{:?}", r.headers);
    // `Connection: close` is honoured after the response.
    s.write_all(b"GET /4 HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n").await.unwrap();
    let r = read_response(&mut s, &mut buf).await.expect("a response");
    assert_eq!(r.one("connection"), Some("close"));
    assert!(closes(&mut s).await, "the proxy closed after Connection: close");
}

#[tokio::test]
async fn http_1_0_closes_unless_keep_alive_is_asked_for() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&b).await;
    let mut buf = Vec::new();
    let mut s = connect(h.mesh()).await;
    s.write_all(b"GET /a HTTP/1.0\r\nHost: svc\r\n\r\n").await.unwrap();
    let r = read_response(&mut s, &mut buf).await.expect("a response");
    assert!(r.status_line.starts_with("HTTP/1.0 200"), "{}", r.status_line);
    assert_eq!(r.one("connection"), Some("close"));
    assert!(closes(&mut s).await);

    let mut s = connect(h.mesh()).await;
    for _ in 0..2 {
        s.write_all(b"GET /b HTTP/1.0\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
        let r = read_response(&mut s, &mut buf).await.expect("a response on the kept connection");
        assert!(r.status_line.starts_with("HTTP/1.0 200"), "{}", r.status_line);
        assert_eq!(r.one("connection"), Some("keep-alive"));
        assert!(r.one("content-length").is_some(), "a 1.0 keep-alive body is length-framed");
    }
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&b).await;
    let mut s = connect(h.mesh()).await;
    let mut buf = Vec::new();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n").await.unwrap();
    // The client waits for the interim response before sending its body.
    let r = read_response(&mut s, &mut buf).await.expect("an interim response");
    assert_eq!(r.status_line, "HTTP/1.1 100 Continue");
    s.write_all(b"data").await.unwrap();
    let r = read_response(&mut s, &mut buf).await.expect("the final response");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(j["body_len"], 4, "{j}");
    assert!(j["headers"].get("expect").is_none(), "Expect is the proxy's to answer: {j}");
}

/// Heads RFC 9112 tells a proxy to refuse: answered 400 (431 when too large) before
/// routing, the connection closed, and what follows never reaches the upstream as a
/// request of its own.
#[tokio::test]
async fn ambiguous_or_hostile_heads_are_refused_and_nothing_is_smuggled() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&b).await;
    let big = format!("GET / HTTP/1.1\r\nHost: svc\r\nx-big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "CL.TE",
            b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "two lengths",
            b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: svc\r\nx-a: 1\r\n  folded\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: svc\r\nContent-Length : 3\r\n\r\nabc".to_vec(), "HTTP/1.1 400"),
        ("bare LF in a value", b"GET / HTTP/1.1\r\nHost: svc\r\nx-a: 1\rx\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        ("head too large", big.into_bytes(), "HTTP/1.1 431"),
    ];
    for (name, req, want) in cases {
        let mut s = connect(h.mesh()).await;
        let _ = s.write_all(&req).await;
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf).await.unwrap_or_else(|| panic!("{name}: no response"));
        assert!(r.status_line.starts_with(want), "{name}: {}", r.status_line);
        assert_eq!(r.one("connection"), Some("close"), "{name}");
        assert!(closes(&mut s).await, "{name}: the connection closes after a refused head");
    }
    assert_eq!(b.hits(), 0, "no refused head and nothing after one reached the upstream");
}

/// A chunked body that breaks its framing mid-way ends the exchange and the
/// connection; the bytes after it are never read as a request.
#[tokio::test]
async fn a_malformed_chunk_ends_the_connection_without_a_smuggled_request() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&b).await;
    let mut s = connect(h.mesh()).await;
    s.write_all(
        b"POST /echo-body HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nGET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(TEST_TIMEOUT, s.read_to_end(&mut out)).await.expect("the proxy closed in time");
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("/smuggled"), "{text}");
    assert!(text.matches("HTTP/1.1 ").count() <= 1, "at most one response: {text}");
    assert!(text.is_empty() || text.contains("connection: close"), "a response says the connection closes: {text}");
    assert!(b.hits() <= 1, "the upstream saw at most the one request");
}

/// A client that closes while its request waits on the upstream abandons it: the
/// request is recorded with flag DC (Envoy's downstream-connection termination) and
/// the response code 0, as Envoy logs it.
#[tokio::test]
async fn a_client_leaving_mid_request_is_recorded_dc() {
    let b = Backend::builder("svc", "v1").delay(Duration::from_secs(30)).start().await;
    let h = start(&b).await;
    let mut s = connect(h.mesh()).await;
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: svc\r\n\r\n").await.unwrap();
    wait_for(|| b.hits() == 1, TEST_TIMEOUT).await;
    drop(s);
    wait_for_async(|| async { h.requests_with(0, "DC").await == 1 }, TEST_TIMEOUT).await;
}

/// A keep-alive connection idle between requests is closed when the proxy shuts down
/// (it does not hold the drain up), and a connection with a request in flight gets its
/// response with `Connection: close`.
#[tokio::test]
async fn shutdown_closes_idle_connections_and_ends_busy_ones_after_their_response() {
    let b = Backend::builder("svc", "v1").start().await;
    let h = start(&b).await;
    let mut idle = connect(h.mesh()).await;
    let mut buf = Vec::new();
    idle.write_all(b"GET /idle HTTP/1.1\r\nHost: svc\r\n\r\n").await.unwrap();
    assert!(read_response(&mut idle, &mut buf).await.expect("a response").status_line.contains("200"));
    b.set_hold(true);
    let mut busy = connect(h.mesh()).await;
    busy.write_all(b"GET /busy HTTP/1.1\r\nHost: svc\r\n\r\n").await.unwrap();
    wait_for(|| b.hits() == 2, TEST_TIMEOUT).await;
    let proxy = h.proxy.clone();
    let shutdown = tokio::spawn(async move { proxy.shutdown(TEST_TIMEOUT).await });
    assert!(closes(&mut idle).await, "the idle connection was closed by the drain");
    b.release(1);
    let mut buf = Vec::new();
    let r = read_response(&mut busy, &mut buf).await.expect("the request in flight is answered");
    assert!(r.status_line.contains("200"), "{}", r.status_line);
    assert_eq!(r.one("connection"), Some("close"));
    assert!(closes(&mut busy).await);
    tokio::time::timeout(TEST_TIMEOUT, shutdown).await.expect("the drain ended").unwrap();
}
