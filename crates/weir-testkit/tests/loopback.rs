//! The testkit against itself, over real loopback sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, Version};
use weir_testkit::{
    Backend, ConfigDir, GrpcBackend, GrpcClient, HttpClient, Protocol, build_request, channel_body, empty_body,
    full_body, get, grpc_frame, grpc_unary, http1_client, http2_client, next_data, parse_grpc_frames, read_bytes,
    request, wait_for, wait_for_async,
};

const WAIT: Duration = Duration::from_secs(10);

fn client(protocol: Protocol) -> HttpClient {
    match protocol {
        Protocol::Http1 => http1_client(),
        Protocol::Http2 => http2_client(),
    }
}

async fn backend_describes_request(protocol: Protocol) {
    let backend = Backend::start("reviews", "v2").await;
    let client = client(protocol);
    let resp = get(
        &client,
        &backend.url("/some/path?x=1&y=2"),
        "reviews.default:9080",
        &[("x-user", "alice"), ("x-multi", "a"), ("x-multi", "b")],
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.backend(), Some("reviews"));
    assert_eq!(resp.backend_version(), Some("v2"));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let j = resp.json();
    assert_eq!(j["service"], "reviews");
    assert_eq!(j["version"], "v2");
    assert_eq!(j["port"], backend.port());
    assert_eq!(j["method"], "GET");
    assert_eq!(j["path"], "/some/path?x=1&y=2");
    assert_eq!(j["authority"], "reviews.default:9080");
    assert_eq!(j["headers"]["x-user"], "alice");
    assert_eq!(j["headers"]["x-multi"], "a,b");
    assert_eq!(j["body_len"], 0);
    match protocol {
        Protocol::Http1 => {
            assert_eq!(resp.version, Version::HTTP_11);
            assert_eq!(j["protocol"], "HTTP/1.1");
            assert_eq!(j["headers"]["host"], "reviews.default:9080");
        }
        Protocol::Http2 => {
            assert_eq!(resp.version, Version::HTTP_2);
            assert_eq!(j["protocol"], "HTTP/2");
            assert!(j["headers"].get("host").is_none(), "{j}");
        }
    }
    assert_eq!(backend.hits(), 1);

    // The whole request body is read and counted.
    let resp = request(&client, Method::POST, &backend.url("/upload"), "", &[], vec![7u8; 100_000]).await;
    let j = resp.json();
    assert_eq!(j["method"], "POST");
    assert_eq!(j["body_len"], 100_000);
    assert_eq!(j["authority"], backend.addr().to_string());
    assert_eq!(backend.hits(), 2);
    // Both requests went over one reused connection.
    assert_eq!(client.connections_opened(), 1);
    assert_eq!(backend.connections(), 1);
}

#[tokio::test]
async fn http1_backend_describes_request() {
    backend_describes_request(Protocol::Http1).await;
}

#[tokio::test]
async fn http2_backend_describes_request() {
    backend_describes_request(Protocol::Http2).await;
}

#[tokio::test]
async fn backend_behaviour_knobs() {
    let backend =
        Backend::builder("ratings", "v1").status(201).header("x-extra", "yes").fail_next(503, 2).start().await;
    let client = http1_client();
    let url = backend.url("/");
    assert_eq!(client.get(&url, "", &[]).await.status, 503);
    assert_eq!(client.get(&url, "", &[]).await.status, 503);
    let ok = client.get(&url, "", &[]).await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.header("x-extra"), Some("yes"));
    assert_eq!(ok.json()["service"], "ratings");
    assert_eq!(backend.hits(), 3);

    backend.set_status(None);
    backend.clear_headers();
    backend.set_header("x-other", "1");
    let resp = client.get(&url, "", &[]).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-extra"), None);
    assert_eq!(resp.header("x-other"), Some("1"));

    backend.fail_next(500, 1);
    assert_eq!(client.get(&url, "", &[]).await.status, 500);
    assert_eq!(client.get(&url, "", &[]).await.status, 200);

    // A delay is a lower bound on the response time.
    backend.set_delay(Duration::from_millis(50));
    let started = Instant::now();
    assert_eq!(client.get(&url, "", &[]).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(50));

    backend.reset_hits();
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn stopped_backend_refuses() {
    let backend = Backend::start("gone", "v1").await;
    let client = http1_client();
    assert_eq!(client.get(&backend.url("/"), "", &[]).await.status, 200);
    backend.stop().await;
    backend.stop().await;
    let req = build_request(Method::GET, &backend.url("/"), "", &[], empty_body());
    assert!(client.fetch(req).await.is_err());
}

async fn gated_stream_arrives_chunk_by_chunk(protocol: Protocol) {
    let backend = Backend::start("streamer", "v1").await;
    let client = client(protocol);
    let req = build_request(Method::GET, &backend.url("/stream?chunks=3&size=1000&gated=1"), "", &[], empty_body());
    let resp = client.send(req).await.expect("response head");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-backend-name"], "streamer");
    let mut body = resp.into_body();
    for k in 0..3u8 {
        // Chunk k is only produced after this release, so receiving it proves
        // it travelled alone.
        backend.release_chunks(1);
        let chunk = read_bytes(&mut body, 1000).await;
        assert_eq!(chunk.len(), 1000);
        assert!(chunk.iter().all(|&b| b == b'a' + k));
    }
    assert_eq!(next_data(&mut body).await, None);

    // Ungated: everything arrives.
    let resp = client.get(&backend.url("/stream?chunks=5&size=300"), "", &[]).await;
    assert_eq!(resp.body.len(), 1500);
    assert_eq!(&resp.body[1200..], &[b'e'; 300][..]);
}

#[tokio::test]
async fn http1_gated_stream() {
    gated_stream_arrives_chunk_by_chunk(Protocol::Http1).await;
}

#[tokio::test]
async fn http2_gated_stream() {
    gated_stream_arrives_chunk_by_chunk(Protocol::Http2).await;
}

async fn echo_body_round_trips(protocol: Protocol) {
    let backend = Backend::start("echo", "v1").await;
    let client = client(protocol);
    let payload: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let resp = request(&client, Method::POST, &backend.url("/echo-body"), "echo.local", &[], payload.clone()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.backend(), Some("echo"));
    assert_eq!(resp.body.len(), payload.len());
    assert!(resp.body == payload);

    // Streamed back as it arrives: each piece is echoed before the next is
    // sent.
    let (tx, body) = channel_body();
    let req = build_request(Method::POST, &backend.url("/echo-body"), "", &[], body);
    let sender = tx.clone();
    let send_first = tokio::spawn(async move { sender.send_data("hello").await });
    let resp = client.send(req).await.expect("response head");
    send_first.await.expect("join").expect("send");
    let mut body = resp.into_body();
    assert_eq!(read_bytes(&mut body, 5).await, Bytes::from_static(b"hello"));
    tx.send_data("world").await.expect("send");
    assert_eq!(read_bytes(&mut body, 5).await, Bytes::from_static(b"world"));
    drop(tx);
    assert_eq!(next_data(&mut body).await, None);
}

#[tokio::test]
async fn http1_echo_body() {
    echo_body_round_trips(Protocol::Http1).await;
}

#[tokio::test]
async fn http2_echo_body() {
    echo_body_round_trips(Protocol::Http2).await;
}

#[test]
fn grpc_framing() {
    let a = grpc_frame(b"abc");
    assert_eq!(&a[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    let mut both = a.to_vec();
    both.extend_from_slice(&grpc_frame(b""));
    both.extend_from_slice(&grpc_frame(&[9; 300]));
    let msgs = parse_grpc_frames(&both);
    assert_eq!(msgs.len(), 3);
    assert_eq!(&msgs[0][..], b"abc");
    assert!(msgs[1].is_empty());
    assert_eq!(&msgs[2][..], &[9; 300][..]);

    let mut decoder = weir_testkit::GrpcDecoder::new();
    for byte in &both {
        decoder.push(&[*byte]);
    }
    let mut n = 0;
    while decoder.next_message().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(decoder.pending(), 0);
}

#[test]
#[should_panic(expected = "truncated gRPC frame")]
fn grpc_framing_rejects_truncation() {
    let frame = grpc_frame(b"abcdef");
    parse_grpc_frames(&frame[..7]);
}

#[tokio::test]
async fn grpc_unary_and_failures() {
    let backend = GrpcBackend::start("grpc-a").await;
    let reply = grpc_unary(backend.addr(), "echo.grpc:50051", "/test.Echo/Unary", b"ping").await;
    assert_eq!(reply.http_status, 200);
    assert_eq!(reply.status, Some(0));
    assert_eq!(reply.messages, vec![Bytes::from_static(b"ping")]);
    assert!(reply.trailers.as_ref().is_some_and(|t| t["grpc-status"] == "0"));
    assert_eq!(reply.headers["content-type"], "application/grpc");
    assert_eq!(reply.headers["x-backend-name"], "grpc-a");

    let client = GrpcClient::new(backend.addr());
    let fail = client.unary("echo.grpc", "/test.Echo/Fail", b"x").await;
    assert_eq!(fail.http_status, 200);
    assert_eq!(fail.status, Some(14));
    assert_eq!(fail.message.as_deref(), Some("unavailable"));
    assert!(fail.trailers.is_none(), "trailers-only response");
    assert!(fail.messages.is_empty());

    let unknown = client.unary("echo.grpc", "/test.Echo/Nope", b"x").await;
    assert_eq!(unknown.status, Some(12));

    // One connection for both calls of `client`, one for `grpc_unary`.
    assert_eq!(backend.connections(), 2);
    assert_eq!(backend.hits(), 3);
}

#[tokio::test]
async fn grpc_server_stream() {
    let backend = GrpcBackend::start("grpc-b").await;
    let client = GrpcClient::new(backend.addr());
    let reply = client.unary("echo.grpc", "/test.Echo/ServerStream", &[3, b'x']).await;
    assert_eq!(reply.status, Some(0));
    let expected: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![3, b'x', i])).collect();
    assert_eq!(reply.messages, expected);
}

#[tokio::test]
async fn grpc_bidi_interleaves() {
    let backend = GrpcBackend::start("grpc-c").await;
    let client = GrpcClient::new(backend.addr());
    let mut stream = client.bidi("echo.grpc", "/test.Echo/BidiStream").await;
    for i in 0..5u8 {
        let msg = vec![i; 10 + usize::from(i)];
        stream.send(&msg).await;
        // The reply to message i arrives while the request stream is still
        // open and before message i + 1 exists.
        assert_eq!(stream.recv().await, Some(Bytes::from(msg)));
    }
    assert_eq!(stream.status(), None, "stream still open");
    stream.send(b"last").await;
    let reply = stream.finish().await;
    assert_eq!(reply.status, Some(0));
    assert_eq!(reply.messages, vec![Bytes::from_static(b"last")]);
}

#[test]
fn config_dir_writes_atomically() {
    let dir = ConfigDir::new();
    let root = dir.path().to_path_buf();
    assert!(root.is_dir());
    let path = dir.write("vs.yaml", "a: 1\n");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "a: 1\n");
    dir.write("nested/dr.yaml", "b: 2\n");
    assert_eq!(std::fs::read_to_string(dir.file("nested/dr.yaml")).expect("read"), "b: 2\n");

    // A concurrent reader only ever sees a whole version of the file.
    let small = "a".repeat(100_000);
    let large = "b".repeat(300_000);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let path = path.clone();
        let stop = Arc::clone(&stop);
        let reads = Arc::clone(&reads);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let text = std::fs::read_to_string(&path).expect("file always exists");
                reads.fetch_add(1, Ordering::SeqCst);
                let whole = text == "a: 1\n"
                    || (text.len() == 100_000 && text.bytes().all(|b| b == b'a'))
                    || (text.len() == 300_000 && text.bytes().all(|b| b == b'b'));
                assert!(whole, "torn read of {} bytes", text.len());
            }
        })
    };
    let mut i = 0;
    // Keep rewriting until the reader has looked many times (bounded).
    while (reads.load(Ordering::SeqCst) < 50 || i < 20) && i < 100_000 {
        dir.write("vs.yaml", if i % 2 == 0 { &small } else { &large });
        i += 1;
    }
    stop.store(true, Ordering::SeqCst);
    reader.join().expect("reader saw only whole files");

    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    dir.remove("vs.yaml");
    assert!(!path.exists());
    let other = ConfigDir::new();
    assert_ne!(other.path(), dir.path());
    drop(dir);
    assert!(!root.exists());
}

#[tokio::test]
async fn wait_for_sees_condition() {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = Arc::clone(&flag);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = rx.await;
        setter.store(true, Ordering::SeqCst);
    });
    let _ = tx.send(());
    wait_for(|| flag.load(Ordering::SeqCst), WAIT).await;

    let backend = Backend::start("w", "v1").await;
    let client = http2_client();
    let url = backend.url("/");
    backend.fail_next(503, 3);
    wait_for_async(|| async { client.get(&url, "", &[]).await.status == 200 }, WAIT).await;
    assert_eq!(backend.hits(), 4);
}

#[tokio::test]
#[should_panic(expected = "condition still false")]
async fn wait_for_panics_when_never_true() {
    wait_for(|| false, Duration::from_millis(20)).await;
}

#[tokio::test]
async fn full_body_helper_posts() {
    let backend = Backend::start("p", "v1").await;
    let client = HttpClient::without_reuse(Protocol::Http1);
    for _ in 0..2 {
        let req = build_request(Method::PUT, &backend.url("/x"), "p.local", &[], full_body("12345"));
        let resp = client.fetch(req).await.expect("response");
        assert_eq!(resp.json()["body_len"], 5);
        assert_eq!(resp.json()["method"], "PUT");
    }
    assert_eq!(client.connections_opened(), 2);
    wait_for(|| backend.connections() == 2, WAIT).await;
}
