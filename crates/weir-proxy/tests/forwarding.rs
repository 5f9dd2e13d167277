//! Forwarding: HTTP/1.1 and HTTP/2 on both sides, the headers Envoy adds under Istio,
//! streamed bodies, gRPC with trailers, local replies and their response flags,
//! connection-failure retries, keep-alive pools, reloads, and the admin endpoints.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{GATEWAY, Harness, service};
use weir_testkit::{
    Backend, GrpcBackend, GrpcClient, TEST_TIMEOUT, build_request, channel_body, full_body, http1_client, http2_client,
    next_data, wait_for,
};

fn route_all(host: &str, ns: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {host}, namespace: {ns}}}
spec:
  hosts: [{host}]
  http:
  - route: [{{destination: {{host: {host}}}}}]
---
"
    )
}

#[tokio::test]
async fn http1_and_http2_downstream_to_http1_upstream_with_istio_headers() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    for (c, proto) in [(http1_client(), "HTTP/1.1"), (http2_client(), "HTTP/2")] {
        let r = c.get(&h.mesh_url("/hello?a=b"), "svc", &[("user-agent", "weir-test")]).await;
        assert_eq!(r.status, 200);
        let j = r.json();
        assert_eq!(j["protocol"], "HTTP/1.1", "HTTP upstream port: HTTP/1.1 upstream (downstream {proto})");
        assert_eq!(j["path"], "/hello?a=b");
        assert_eq!(j["authority"], "svc");
        let hd = &j["headers"];
        assert_eq!(hd["x-forwarded-proto"], "http");
        assert!(hd.get("x-forwarded-for").is_none(), "the mesh side does not append the peer");
        assert_eq!(hd["x-request-id"].as_str().unwrap().len(), 36);
        assert_eq!(hd["x-envoy-attempt-count"], "1");
        assert_eq!(hd["user-agent"], "weir-test");
        assert_eq!(r.header("server"), Some("envoy"));
        assert!(r.header("x-envoy-upstream-service-time").unwrap().parse::<u64>().is_ok());
    }
    // A request id sent by the client is kept.
    let j = http1_client().get(&h.mesh_url("/"), "svc", &[("x-request-id", "my-id")]).await.json();
    assert_eq!(j["headers"]["x-request-id"], "my-id");
}

#[tokio::test]
async fn gateways_append_x_forwarded_for_and_strip_envoy_control_headers() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!(
        "{}{GATEWAY}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs, namespace: ns}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - route: [{{destination: {{host: svc.ns.svc.cluster.local}}}}]
",
        service("svc", "ns", "HTTP", &[&b])
    );
    let h = Harness::start(&yaml, None).await;
    let r = http1_client()
        .get(
            &h.gw_url(8080, "/"),
            "a.com",
            &[("x-forwarded-for", "10.9.9.9"), ("x-forwarded-proto", "https"), ("x-envoy-max-retries", "9")],
        )
        .await;
    let j = r.json();
    assert_eq!(j["headers"]["x-forwarded-for"], "10.9.9.9,127.0.0.1");
    assert_eq!(j["headers"]["x-forwarded-proto"], "http");
    assert!(j["headers"].get("x-envoy-max-retries").is_none());
    assert_eq!(r.header("server"), Some("istio-envoy"));
}

#[tokio::test]
async fn upstream_protocol_follows_port_protocol_and_h2_upgrade_policy() {
    let b = Backend::start("svc", "v1").await;
    let h2port = Backend::start("h2svc", "v1").await;
    let up = Backend::start("upsvc", "v1").await;
    let cp = Backend::start("cpsvc", "v1").await;
    let yaml = format!(
        "{}{}{}{}{}",
        service("svc", "ns", "HTTP", &[&b]),
        service("h2svc", "ns", "HTTP2", &[&h2port]),
        service("upsvc", "ns", "HTTP", &[&up]),
        service("cpsvc", "ns", "HTTP", &[&cp]),
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: up, namespace: ns}
spec:
  host: upsvc
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cp, namespace: ns}
spec:
  host: cpsvc
  trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let (c1, c2) = (http1_client(), http2_client());
    let proto = |r: weir_testkit::TestResponse| r.json()["protocol"].as_str().unwrap().to_string();
    assert_eq!(proto(c2.get(&h.mesh_url("/"), "svc", &[]).await), "HTTP/1.1");
    assert_eq!(proto(c1.get(&h.mesh_url("/"), "h2svc", &[]).await), "HTTP/2");
    assert_eq!(proto(c1.get(&h.mesh_url("/"), "upsvc", &[]).await), "HTTP/2");
    assert_eq!(proto(c1.get(&h.mesh_url("/"), "cpsvc", &[]).await), "HTTP/1.1");
    assert_eq!(proto(c2.get(&h.mesh_url("/"), "cpsvc", &[]).await), "HTTP/2");
}

#[tokio::test]
async fn bodies_stream_both_ways_without_buffering() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    for c in [http1_client(), http2_client()] {
        // Response: a gated stream; chunk k arrives before chunk k+1 is released.
        let req =
            build_request(http::Method::GET, &h.mesh_url("/stream?chunks=3&size=5&gated=1"), "svc", &[], full_body(""));
        let resp = c.send(req).await.expect("response head");
        let mut body = resp.into_body();
        for k in 0..3u8 {
            b.release_chunks(1);
            let chunk = tokio::time::timeout(TEST_TIMEOUT, next_data(&mut body)).await.unwrap().unwrap();
            assert_eq!(chunk, Bytes::from(vec![b'a' + k; 5]));
        }
        assert!(next_data(&mut body).await.is_none());
        // Request: an echo of a body sent piece by piece; each piece comes back before
        // the next is sent.
        echo_piece_by_piece(&c, &h).await;
    }
    // A large body survives intact.
    let big = vec![7u8; 3 * 1024 * 1024 + 17];
    let r = http2_client().request(http::Method::POST, &h.mesh_url("/echo-body"), "svc", &[], big.clone()).await;
    assert_eq!(r.body.len(), big.len());
    assert_eq!(r.body, Bytes::from(big));
}

/// POSTs to `/echo-body` a body sent in two pieces, the second only once the first has
/// come back: the request body and the response body both stream through the proxy.
async fn echo_piece_by_piece(c: &weir_testkit::HttpClient, h: &Harness) {
    let (tx, req_body) = channel_body();
    let req = build_request(http::Method::POST, &h.mesh_url("/echo-body"), "svc", &[], req_body);
    let send = tokio::spawn({
        let c = c.clone();
        async move { c.send(req).await }
    });
    tx.send_data("first").await.unwrap();
    let resp = send.await.unwrap().expect("response head");
    let mut body = resp.into_body();
    assert_eq!(tokio::time::timeout(TEST_TIMEOUT, next_data(&mut body)).await.unwrap().unwrap(), "first");
    tx.send_data("second").await.unwrap();
    assert_eq!(tokio::time::timeout(TEST_TIMEOUT, next_data(&mut body)).await.unwrap().unwrap(), "second");
    drop(tx);
    assert!(next_data(&mut body).await.is_none());
}

/// The same over an HTTP/2 upstream (weir's own h2 client): a request body streams up
/// piece by piece while the response streams back (each echoed piece arrives before
/// the next is sent), and bodies larger than the stream (2 MB) and connection (5 MB)
/// windows go both ways intact, for clients of either protocol.
#[tokio::test]
async fn h2_upstream_streams_bodies_both_ways_within_flow_control() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP2", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    for c in [http1_client(), http2_client()] {
        echo_piece_by_piece(&c, &h).await;
        let big: Vec<u8> = (0..6 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
        let r = c.request(http::Method::POST, &h.mesh_url("/echo-body"), "svc", &[], big.clone()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), big.len());
        assert!(r.body[..] == big[..], "the body came back as sent");
    }
    let j = http1_client().get(&h.mesh_url("/"), "svc", &[]).await.json();
    assert_eq!(j["protocol"], "HTTP/2");
}

#[tokio::test]
async fn grpc_unary_and_streaming_with_trailers() {
    let g = GrpcBackend::start("greeter").await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: ns}}
spec:
  hosts: [greeter.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {}}}}}]
---
{}",
        g.port(),
        route_all("greeter", "ns")
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let client = GrpcClient::new(h.mesh());
    let reply = client.unary("greeter:50051", "/test.Echo/Unary", b"ping").await;
    assert_eq!(reply.status, Some(0));
    assert_eq!(reply.messages, vec![Bytes::from_static(b"ping")]);
    assert!(reply.trailers.is_some(), "trailers pass through the proxy");

    let reply = client.unary("greeter:50051", "/test.Echo/ServerStream", &[3, b'x']).await;
    assert_eq!(reply.status, Some(0));
    assert_eq!(reply.messages.len(), 3);
    assert_eq!(reply.messages[2], Bytes::from_static(&[3, b'x', 2]));

    let mut bidi = client.bidi("greeter:50051", "/test.Echo/BidiStream").await;
    for i in 0..3u8 {
        bidi.send(&[i; 4]).await;
        assert_eq!(bidi.recv().await.unwrap(), Bytes::from(vec![i; 4]), "reply {i} before the next message");
    }
    let done = bidi.finish().await;
    assert_eq!(done.status, Some(0));

    let fail = client.unary("greeter:50051", "/test.Echo/Fail", b"x").await;
    assert_eq!(fail.status, Some(14));
    assert_eq!(fail.message.as_deref(), Some("unavailable"));

    // A gRPC call with no route gets a gRPC error, not an HTML page: a host outside
    // the registry, blocked (REGISTRY_ONLY), is UNAVAILABLE.
    h.reload(&format!("{yaml}{}", common::registry_only("ns")));
    let none = client.unary("nowhere:50051", "/test.Echo/Unary", b"x").await;
    assert_eq!(none.http_status, 200);
    assert_eq!(none.status, Some(14));
}

#[tokio::test]
async fn failures_become_local_replies_with_response_flags() {
    let alive = Backend::start("svc", "v1").await;
    let dead = Backend::start("dead", "v1").await;
    dead.stop().await;
    let yaml = format!(
        "{}{}{}",
        service("svc", "ns", "HTTP", &[&alive]),
        service("dead", "ns", "HTTP", &[&dead]),
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: ns}
spec:
  host: svc
  subsets: [{name: none, labels: {version: v9}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {prefix: /empty-subset}}]
    route: [{destination: {host: svc, subset: none}}]
  - match: [{uri: {prefix: /missing-subset}}]
    route: [{destination: {host: svc, subset: nope}}]
  - match: [{uri: {prefix: /dead}}]
    route: [{destination: {host: dead}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 50ms
    route: [{destination: {host: svc}}]
  - route: [{destination: {host: svc}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/empty-subset"), "svc", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "no healthy upstream"));
    let r = c.get(&h.mesh_url("/missing-subset"), "svc", &[]).await;
    assert_eq!(r.status, 503);
    let r = c.get(&h.mesh_url("/dead"), "svc", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("connection failure"), "{}", r.text());
    alive.set_delay(Duration::from_secs(5));
    let r = c.get(&h.mesh_url("/slow"), "svc", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (504, "upstream request timeout"));
    alive.set_delay(Duration::ZERO);

    let metrics = c.get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
    for (code, flags) in [("503", "UH"), ("503", "NC"), ("503", "UF,URX"), ("504", "UT")] {
        assert!(
            metrics.lines().any(|l| l.starts_with("istio_requests_total{")
                && l.contains(&format!("response_code=\"{code}\""))
                && l.contains(&format!("response_flags=\"{flags}\""))),
            "no series with {code} {flags}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_endpoint() {
    let alive = Backend::start("svc", "v1").await;
    let dead = Backend::start("svc", "v2").await;
    dead.stop().await;
    let yaml = format!(
        "{}{}",
        service("svc", "ns", "HTTP", &[&alive, &dead]),
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: ns}
spec:
  host: svc
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    for _ in 0..20 {
        let r = c.get(&h.mesh_url("/"), "svc", &[]).await;
        assert_eq!(r.status, 200, "Istio's default policy retries connect-failure: {}", r.text());
    }
    assert_eq!(alive.hits(), 20);
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    for _ in 0..50 {
        assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.status, 200);
    }
    assert_eq!(b.connections(), 1, "sequential requests share one upstream connection");
}

#[tokio::test]
async fn reload_swaps_routes_and_keeps_client_connections() {
    let (v1, v2) = (Backend::start("svc", "v1").await, Backend::start("svc", "v2").await);
    let base = format!(
        "{}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
",
        service("svc", "ns", "HTTP", &[&v1, &v2])
    );
    let vs = |subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - route: [{{destination: {{host: svc, subset: {subset}}}}}]
"
        )
    };
    let h = Harness::start(&format!("{base}{}", vs("v1")), Some("ns")).await;
    let c = http1_client();
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.backend_version(), Some("v1"));
    let opened = c.connections_opened();
    h.reload(&format!("{base}{}", vs("v2")));
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.backend_version(), Some("v2"));
    assert_eq!(c.connections_opened(), opened, "the client's keep-alive connection survived the swap");
    assert_eq!(v2.connections(), 1);
    // Back to v1: its pooled upstream connection was kept too.
    h.reload(&format!("{base}{}", vs("v1")));
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.backend_version(), Some("v1"));
    assert_eq!(v1.connections(), 1);
}

#[tokio::test]
async fn admin_ready_config_dump_stats_and_clusters() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let ready = c.get(&h.admin_url("/ready"), "", &[]).await;
    assert_eq!(ready.status, 200);
    for _ in 0..3 {
        c.get(&h.mesh_url("/"), "svc", &[]).await;
    }
    let dump = c.get(&h.admin_url("/config_dump"), "", &[]).await.json();
    let mesh = dump["listeners"].as_array().unwrap().iter().find(|l| l["name"] == "mesh").unwrap();
    let vh =
        mesh["virtual_hosts"].as_array().unwrap().iter().find(|v| v["name"] == "svc.ns.svc.cluster.local").unwrap();
    assert!(vh["domains"].as_array().unwrap().contains(&serde_json::json!("svc")));
    let forward = &vh["routes"][0]["action"]["forward"];
    assert_eq!(forward["destinations"][0]["name"], "outbound|80||svc.ns.svc.cluster.local");
    // The table serialized: typed policies, durations as protobuf JSON, no Debug text.
    assert_eq!(
        forward["retry"]["retry_on"],
        serde_json::json!(["connect-failure", "refused-stream", "retriable-status-codes", "cancelled", "unavailable"])
    );
    assert_eq!(forward["retry"]["backoff_base"], "0.025s");
    assert_eq!(dump["clusters"][0]["endpoints"][0]["address"], format!("127.0.0.1:{}", b.port()));
    assert_eq!(dump["clusters"][0]["limits"]["connect_timeout"], "10s");
    assert_eq!(dump["clusters"][0]["lb"], "least_request");
    let text = dump.to_string();
    assert!(!text.contains("Some(") && !text.contains(" { "), "Debug text in the dump: {text}");

    let stats = c.get(&h.admin_url("/stats/prometheus"), "", &[]).await;
    assert!(stats.header("content-type").unwrap().starts_with("text/plain"));
    let text = stats.text();
    let line = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && l.contains("response_code=\"200\""))
        .expect("a 200 series");
    for label in [
        "reporter=\"source\"",
        "destination_service=\"svc.ns.svc.cluster.local\"",
        "destination_service_name=\"svc\"",
        "destination_service_namespace=\"ns\"",
        "destination_app=\"svc\"",
        "destination_version=\"v1\"",
        "destination_canonical_service=\"svc\"",
        "destination_canonical_revision=\"v1\"",
        "request_protocol=\"http\"",
        "response_flags=\"-\"",
    ] {
        assert!(line.contains(label), "{label} missing in {line}");
    }
    assert!(line.ends_with(" 3"), "{line}");
    assert!(text.contains("istio_request_duration_milliseconds_bucket{"));
    assert!(text.contains("istio_request_duration_milliseconds_count{"));

    let clusters = c.get(&h.admin_url("/clusters"), "", &[]).await.text();
    assert!(clusters.contains(&format!("outbound|80||svc.ns.svc.cluster.local::127.0.0.1:{}::rq_active::0", b.port())));
}

/// `istio_request_bytes` sums the request bodies that went upstream: a bodiless GET
/// counts zero, a POST its body, on HTTP/1.1 and on HTTP/2.
#[tokio::test]
async fn request_body_bytes_are_counted_in_metrics() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let (c1, c2) = (http1_client(), http2_client());
    assert_eq!(c1.get(&h.mesh_url("/"), "svc", &[]).await.status, 200);
    let post = |c: &weir_testkit::HttpClient, n: usize| {
        let (c, url) = (c.clone(), h.mesh_url("/upload"));
        async move { c.request(http::Method::POST, &url, "svc", &[], vec![b'x'; n]).await.status }
    };
    assert_eq!(post(&c1, 1234).await, 200);
    assert_eq!(post(&c2, 4321).await, 200);
    let series = |text: &str, name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name) && l.contains("response_code=\"200\""))?;
        line.rsplit(' ').next()?.parse().ok()
    };
    let admin = h.admin_url("/stats/prometheus");
    weir_testkit::wait_for_async(
        || {
            let (c, admin) = (c1.clone(), admin.clone());
            async move { series(&c.get(&admin, "", &[]).await.text(), "istio_request_bytes_count{") == Some(3.0) }
        },
        TEST_TIMEOUT,
    )
    .await;
    let text = c1.get(&admin, "", &[]).await.text();
    assert_eq!(series(&text, "istio_request_bytes_sum{"), Some(5555.0), "{text}");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let b = Backend::builder("svc", "v1").delay(Duration::from_millis(300)).start().await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let url = h.mesh_url("/");
    let c = http1_client();
    let in_flight = tokio::spawn(async move { c.get(&url, "svc", &[]).await });
    wait_for(|| b.hits() == 1, TEST_TIMEOUT).await;
    h.proxy.shutdown(TEST_TIMEOUT).await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the request in flight at shutdown completed");
    assert!(std::net::TcpStream::connect(h.mesh()).is_err(), "no longer accepting");
}

#[tokio::test]
async fn hostile_requests_get_clear_errors_and_the_proxy_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let big = format!("GET / HTTP/1.1\r\nHost: svc\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    let cases: [(&[u8], &str); 5] = [
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400"),
        (b"G@T / HTTP/1.1\r\nHost: svc\r\n\r\n", "HTTP/1.1 400"),
        (b"\x00\x01garbage\r\n\r\n", "HTTP/1.1 400"),
        (big.as_bytes(), "HTTP/1.1 431"),
        // Absolute form: the URI's host wins over Host.
        (b"GET http://svc.ns/x HTTP/1.1\r\nHost: unknown.example\r\n\r\n", "HTTP/1.1 200"),
    ];
    for (req, want) in cases {
        let mut s = tokio::net::TcpStream::connect(h.mesh()).await.unwrap();
        let _ = s.write_all(req).await;
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(TEST_TIMEOUT, s.read(&mut buf)).await.unwrap().unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with(want), "{:?} -> {head}", String::from_utf8_lossy(&req[..req.len().min(40)]));
    }
    assert_eq!(http1_client().get(&h.mesh_url("/"), "svc", &[]).await.status, 200);
}

/// Sends raw bytes and reads until the proxy closes the connection.
async fn raw_exchange(addr: std::net::SocketAddr, req: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(TEST_TIMEOUT, s.read_to_end(&mut out)).await.expect("the proxy closed in time");
    String::from_utf8_lossy(&out).into_owned()
}

/// What Envoy refuses before routing never reaches the upstream: two Host lines, a
/// transfer coding other than chunked, CONNECT. (Content-Length beside chunked is
/// refused with 400 by the head parser; see `downstream_http1.rs`.) And the
/// upstream always gets the authority the request was routed by.
#[tokio::test]
async fn ambiguous_requests_are_refused_and_the_routed_host_goes_upstream() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let cases: [(&[u8], &str); 3] = [
        (b"GET / HTTP/1.1\r\nHost: svc\r\nHost: evil\r\nConnection: close\r\n\r\n", "HTTP/1.1 400"),
        (
            b"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 501",
        ),
        (b"CONNECT svc:80 HTTP/1.1\r\nHost: svc:80\r\nConnection: close\r\n\r\n", "HTTP/1.1 404"),
    ];
    for (req, want) in cases {
        let resp = raw_exchange(h.mesh(), req).await;
        assert!(resp.starts_with(want), "{:?} -> {resp}", String::from_utf8_lossy(&req[..req.len().min(50)]));
    }
    assert_eq!(b.hits(), 0, "none of them reached the upstream");
    // Absolute form routes by the URI's authority, and that is the Host sent upstream.
    let resp =
        raw_exchange(h.mesh(), b"GET http://svc.ns/x HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains(r#""host":"svc.ns""#), "{resp}");
    // An Expect header is answered by the proxy, not passed on.
    let resp = raw_exchange(
        h.mesh(),
        b"POST /e HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    .await;
    assert!(resp.contains("200 OK") && !resp.contains("\"expect\""), "{resp}");
}

/// An upstream that answers every request with the same raw bytes, then closes.
async fn raw_upstream(response: &'static [u8]) -> u16 {
    use tokio::io::AsyncWriteExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if !common::read_head(&mut s).await {
                    return;
                }
                let _ = s.write_all(response).await;
            });
        }
    });
    port
}

/// Responses that are not valid HTTP are the upstream's protocol error: 502 with the
/// UPE flag, as Envoy reports them.
#[tokio::test]
async fn invalid_upstream_responses_are_502_upe() {
    let bad_status = raw_upstream(b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n").await;
    let both = raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let mut yaml = String::new();
    for (name, port) in [("bad", bad_status), ("both", both)] {
        yaml.push_str(&format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: ns}}
spec:
  hosts: [{name}.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
"
        ));
    }
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    for host in ["bad", "both"] {
        let r = c.get(&h.mesh_url("/"), host, &[]).await;
        assert_eq!(r.status, 502, "{host}: {}", r.text());
    }
    let metrics = c.get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
    let upe = metrics
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{") && l.contains("response_flags=\"UPE\""))
        .count();
    assert_eq!(upe, 2, "{metrics}");
}

/// A client speaking HTTP/1.1 gets HTTP/1.1 back even from an HTTP/1.0 upstream.
#[tokio::test]
async fn responses_carry_the_client_s_http_version() {
    let port = raw_upstream(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: old, namespace: ns}}
spec:
  hosts: [old.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let resp = raw_exchange(h.mesh(), b"GET / HTTP/1.1\r\nHost: old\r\nConnection: close\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("ok"), "{resp}");
}

/// A WebSocket handshake is routed like any request, then the proxy tunnels the bytes
/// both ways (Istio enables WebSocket upgrades on every listener). The upstream is a raw
/// socket that answers the handshake with 101 and echoes what follows, upper-cased.
#[tokio::test]
async fn websocket_upgrades_tunnel_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "handshake cut short");
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(text.contains("upgrade: websocket") && text.contains("connection: upgrade"), "{text}");
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .await
            .unwrap();
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            let up: Vec<u8> = buf[..n].to_ascii_uppercase();
            s.write_all(&up).await.unwrap();
        }
    });
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ws, namespace: ns}}
spec:
  hosts: [ws.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let mut s = tokio::net::TcpStream::connect(h.mesh()).await.unwrap();
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(TEST_TIMEOUT, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "proxy closed during the handshake: {}", String::from_utf8_lossy(&head));
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(text.contains("upgrade: websocket") && text.contains("connection: upgrade"), "{text}");
    for msg in [&b"hello"[..], b"second frame"] {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(TEST_TIMEOUT, s.read_exact(&mut got)).await.unwrap().unwrap();
        assert_eq!(got, msg.to_ascii_uppercase());
    }
}

/// A pooled connection the upstream closes while idle is released (not left in
/// CLOSE_WAIT until its next use), and the next request still succeeds.
#[tokio::test]
async fn idle_connections_closed_by_the_upstream_are_released() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let close = std::sync::Arc::new(tokio::sync::Notify::new());
    let close_signal = close.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let close = close_signal.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // A keep-alive response; the server closes the idle connection when told.
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                close.notified().await;
            });
        }
    });
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.text(), "ok");
    let idle = |text: &str| -> Option<u32> {
        text.lines().find(|l| l.contains("::cx_idle::"))?.rsplit("::").next()?.parse().ok()
    };
    let clusters = h.admin_url("/clusters");
    assert_eq!(idle(&c.get(&clusters, "", &[]).await.text()), Some(1), "the connection went back to the pool");
    close.notify_waiters();
    weir_testkit::wait_for_async(
        || {
            let (c, clusters) = (c.clone(), clusters.clone());
            async move { idle(&c.get(&clusters, "", &[]).await.text()) == Some(0) }
        },
        TEST_TIMEOUT,
    )
    .await;
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.text(), "ok");
}

/// A client that leaves while its request waits on the upstream is recorded as Envoy
/// records it: response code 0 with the DC flag.
#[tokio::test]
async fn abandoned_requests_are_recorded_with_dc() {
    use tokio::io::AsyncWriteExt;
    let b = Backend::builder("svc", "v1").delay(Duration::from_secs(3)).start().await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let mut s = tokio::net::TcpStream::connect(h.mesh()).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: svc\r\n\r\n").await.unwrap();
    wait_for(|| b.hits() == 1, TEST_TIMEOUT).await;
    drop(s);
    let c = http1_client();
    let admin = h.admin_url("/stats/prometheus");
    weir_testkit::wait_for_async(
        || {
            let (c, admin) = (c.clone(), admin.clone());
            async move {
                c.get(&admin, "", &[]).await.text().lines().any(|l| {
                    l.starts_with("istio_requests_total{")
                        && l.contains("response_code=\"0\"")
                        && l.contains("response_flags=\"DC\"")
                })
            }
        },
        TEST_TIMEOUT,
    )
    .await;
}

#[tokio::test]
async fn bodiless_responses_keep_the_upstream_connection_reusable() {
    let b = Backend::builder("svc", "v1").status(204).start().await;
    let yaml = format!("{}{}", service("svc", "ns", "HTTP", &[&b]), route_all("svc", "ns"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    for _ in 0..20 {
        assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.status, 204);
        let head = c.request(http::Method::HEAD, &h.mesh_url("/"), "svc", &[], "").await;
        assert_eq!(head.status, 204);
    }
    assert_eq!(b.connections(), 1, "204 and HEAD responses left the connection reusable");
}
