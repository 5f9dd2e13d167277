//! weir's own HTTP/1.1 client against scripted upstreams on loopback sockets: body
//! framings (chunked with extensions and trailers, read-to-close, lengths), interim
//! responses, an upstream answering before the upload ends, malformed bodies, and the
//! framing each kind of request body goes upstream with.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{Harness, service_at};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_testkit::{TEST_TIMEOUT, build_request, channel_body, full_body, http1_client, http2_client};

/// What a scripted upstream saw: every byte of every connection, in order.
type Seen = Arc<Mutex<Vec<u8>>>;

/// An upstream that reads a request head (and then `extra` more bytes, if it arrives in
/// time), records what it read, writes `response`, and closes.
async fn scripted(response: &'static [u8], read_body: bool) -> (u16, Seen) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65536];
                // The head, then (when asked) whatever body follows until a pause.
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if read_body {
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut buf)).await
                    {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                }
                record.lock().unwrap().extend_from_slice(&got);
                let _ = s.write_all(response).await;
            });
        }
    });
    (port, seen)
}

async fn proxy_to(port: u16) -> Harness {
    // No VirtualService: the service's default route.
    Harness::start(&service_at("up", "ns", "HTTP", port), Some("ns")).await
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_arrive_whole() {
    let (port, _) = scripted(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n",
        false,
    )
    .await;
    let h = proxy_to(port).await;
    let r = http1_client().get(&h.mesh_url("/"), "up", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "hello world"));
    // An HTTP/2 client gets the trailers as trailers.
    let r = http2_client().get(&h.mesh_url("/"), "up", &[]).await;
    assert_eq!(r.text(), "hello world");
    assert_eq!(r.trailers.as_ref().and_then(|t| t.get("x-checksum")).map(|v| v.as_bytes()), Some(&b"abc"[..]));
}

#[tokio::test]
async fn bodies_without_a_length_are_read_to_the_close() {
    let (port, _) =
        scripted(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, until the close", false).await;
    let h = proxy_to(port).await;
    for c in [http1_client(), http2_client()] {
        let r = c.get(&h.mesh_url("/"), "up", &[]).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "all of it, until the close"));
    }
}

#[tokio::test]
async fn interim_responses_are_not_passed_on() {
    let (port, _) =
        scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", false).await;
    let h = proxy_to(port).await;
    let r = http1_client().get(&h.mesh_url("/"), "up", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (201, "ok"));
}

/// An upstream refusing an upload before it ends: the client gets the answer, and the
/// proxy serves on.
#[tokio::test]
async fn an_early_answer_to_an_upload_reaches_the_client() {
    let (port, _) =
        scripted(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope", false).await;
    let h = proxy_to(port).await;
    let (tx, body) = channel_body();
    let req = build_request(Method::POST, &h.mesh_url("/upload"), "up", &[("content-length", "1000000")], body);
    let c = http1_client();
    let sending = tokio::spawn(async move {
        for _ in 0..10 {
            if tx.send_data(Bytes::from(vec![b'x'; 1000])).await.is_err() {
                break;
            }
        }
        // The rest never comes: the answer must not wait for it.
        tokio::time::sleep(TEST_TIMEOUT).await;
    });
    let resp = tokio::time::timeout(TEST_TIMEOUT, c.send(req)).await.expect("answered in time").expect("a response");
    assert_eq!(resp.status(), 413);
    sending.abort();
    let r = http1_client().get(&h.mesh_url("/"), "up", &[]).await;
    assert_eq!(r.status, 413, "the proxy still serves");
}

#[tokio::test]
async fn malformed_chunked_bodies_fail_the_client_stream() {
    let (port, _) = scripted(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", false).await;
    let h = proxy_to(port).await;
    let req = build_request(Method::GET, &h.mesh_url("/"), "up", &[], full_body(Bytes::new()));
    // The head may or may not have gone out before the bad chunk: either way, the
    // client must not see a clean end.
    if let Ok(resp) = http1_client().send(req).await {
        let body = http_body_util::BodyExt::collect(resp.into_body()).await;
        assert!(body.is_err(), "a clean end after a malformed chunk");
    }
}

/// Request bodies go upstream with the framing they arrived with: a length stays a
/// length, chunked stays chunked (with its trailers), and an HTTP/2 body of unknown
/// length becomes chunked.
#[tokio::test]
async fn request_bodies_keep_their_framing_upstream() {
    let (port, seen) = scripted(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", true).await;
    let h = proxy_to(port).await;
    let text = |seen: &Seen| String::from_utf8_lossy(&std::mem::take(&mut *seen.lock().unwrap())).into_owned();

    let r = http1_client().request(Method::POST, &h.mesh_url("/a"), "up", &[], "12345").await;
    assert_eq!(r.status, 200);
    let got = text(&seen);
    assert!(got.contains("content-length: 5\r\n") && got.ends_with("\r\n\r\n12345"), "{got:?}");

    let mut s = tokio::net::TcpStream::connect(h.mesh()).await.unwrap();
    s.write_all(b"POST /b HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(TEST_TIMEOUT, s.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let got = text(&seen);
    assert!(got.contains("transfer-encoding: chunked\r\n"), "{got:?}");
    assert!(got.ends_with("\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n"), "{got:?}");

    let (tx, body) = channel_body();
    let req = build_request(Method::PUT, &h.mesh_url("/c"), "up", &[], body);
    let c = http2_client();
    let fut = c.send(req);
    let feed = async move {
        tx.send_data(Bytes::from_static(b"part1")).await.unwrap();
        tx.send_data(Bytes::from_static(b"part2")).await.unwrap();
    };
    let (resp, ()) = tokio::join!(fut, feed);
    assert_eq!(resp.unwrap().status(), 200);
    let got = text(&seen);
    assert!(got.contains("transfer-encoding: chunked\r\n") && got.ends_with("0\r\n\r\n"), "{got:?}");
    assert!(got.contains("part1") && got.contains("part2"), "{got:?}");
}
