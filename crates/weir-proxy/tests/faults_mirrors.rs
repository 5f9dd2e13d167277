//! Fault injection and mirroring (spec §2.10, §2.11) with real clients and loopback
//! backends: Istio's fault-injection task (scoped to `end-user: jason`), aborts that
//! never reach the backend, delays outside the route timeout, gRPC aborts, shares of
//! requests within statistical bounds, and mirrors that get the request (body and all)
//! without touching the client's response or latency.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, service, service_at};
use http::Method;
use weir_compile::Instance;
use weir_testkit::{Backend, GrpcClient, TEST_TIMEOUT, http1_client, http2_client};

const DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: ns}
spec:
  host: svc
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
";

fn vs(http: &str) -> String {
    common::svc_routes(http)
}

async fn start(backends: &[&Backend], http: &str) -> Harness {
    Harness::start(&format!("{}{DR}{}", service("svc", "ns", "HTTP", backends), vs(http)), Some("ns")).await
}

// === faults ===

/// Istio's fault-injection task: for `end-user: jason` only, every request is aborted
/// with 503 (flag `FI`) without reaching the backend; everyone else is served.
#[tokio::test]
async fn aborts_for_jason_only_never_reach_the_backend() {
    let b = Backend::start("svc", "v1").await;
    let h = start(
        &[&b],
        "  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: svc, subset: v1}}]
  - route: [{destination: {host: svc, subset: v1}}]
",
    )
    .await;
    for c in [http1_client(), http2_client()] {
        let r = c.get(&h.mesh_url("/"), "svc", &[("end-user", "jason")]).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "fault filter abort"));
        assert_eq!(b.hits(), 0, "an abort never contacts the upstream");
        let r = c.get(&h.mesh_url("/"), "svc", &[("end-user", "mary")]).await;
        assert_eq!(r.status, 200);
        b.reset_hits();
    }
    assert_eq!(h.requests_with(503, "FI").await, 2);
    assert_eq!(h.requests_with(200, "-").await, 2);
}

/// An abort is answered before the router: it is never retried, even with a policy
/// that retries its status.
#[tokio::test]
async fn aborts_are_never_retried() {
    let b = Backend::start("svc", "v1").await;
    let h = start(
        &[&b],
        "  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: svc}}]
",
    )
    .await;
    assert_eq!(http1_client().get(&h.mesh_url("/"), "svc", &[]).await.status, 503);
    assert_eq!(b.hits(), 0);
    // The cluster never saw a request, so /stats does not list it (no retry either).
    assert_eq!(h.cluster_stat("outbound|80||svc.ns.svc.cluster.local", "upstream_rq_retry").await, None);
}

/// The delay holds the request before it goes upstream (flag `DI`) and is not counted
/// in the route's own timeout: a 300 ms delay on a route with a 100 ms timeout and a
/// fast backend still gets 200, 300 ms or more later.
#[tokio::test]
async fn delays_hold_the_request_outside_the_route_timeout() {
    let b = Backend::start("svc", "v1").await;
    let h = start(
        &[&b],
        "  - fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    timeout: 100ms
    route: [{destination: {host: svc}}]
",
    )
    .await;
    let t = Instant::now();
    let r = http1_client().get(&h.mesh_url("/"), "svc", &[]).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    assert_eq!(b.hits(), 1);
    assert_eq!(h.requests_with(200, "DI").await, 1);
}

/// Istio's fault-injection task: a delay at the sidecar is cut by the timeout of the
/// hop in front of it. A gateway (a second weir) with a 500 ms route timeout in front of
/// a sidecar that delays jason's requests by 20 s answers 504 `UT` after 500 ms; the
/// sidecar's own route timeout would not have cut the delay.
#[tokio::test]
async fn the_hop_in_fronts_timeout_cuts_a_delay() {
    let b = Backend::start("svc", "v1").await;
    let sidecar = start(
        &[&b],
        "  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {fixedDelay: 20s, percentage: {value: 100}}}
    route: [{destination: {host: svc}}]
  - route: [{destination: {host: svc}}]
",
    )
    .await;
    let gateway = Harness::start(
        &format!(
            "{}{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edge, namespace: ns}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - timeout: 500ms
    rewrite: {{authority: svc}}
    route: [{{destination: {{host: sidecar.ns.svc.cluster.local}}}}]
",
            common::GATEWAY,
            service_at("sidecar", "ns", "HTTP", sidecar.mesh().port())
        ),
        None,
    )
    .await;
    let c = http1_client();
    assert_eq!(c.get(&gateway.gw_url(8080, "/"), "svc.example", &[]).await.backend_version(), Some("v1"));
    let t = Instant::now();
    let r = c.get(&gateway.gw_url(8080, "/"), "svc.example", &[("end-user", "jason")]).await;
    let took = t.elapsed();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (504, "upstream request timeout"));
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(15), "{took:?}");
    assert_eq!(b.hits(), 1, "the delayed request never reached the backend");
    assert_eq!(gateway.requests_with(504, "UT").await, 1);
}

/// A delay and an abort on one request compose as in Envoy: delayed, then aborted
/// (`DI,FI`).
#[tokio::test]
async fn delay_then_abort() {
    let b = Backend::start("svc", "v1").await;
    let h = start(
        &[&b],
        "  - fault:
      delay: {fixedDelay: 200ms, percentage: {value: 100}}
      abort: {httpStatus: 418, percentage: {value: 100}}
    route: [{destination: {host: svc}}]
",
    )
    .await;
    let t = Instant::now();
    let r = http1_client().get(&h.mesh_url("/"), "svc", &[]).await;
    assert_eq!(r.status, 418);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(b.hits(), 0);
    assert_eq!(h.requests_with(418, "DI,FI").await, 1);
}

/// Shares of requests: 30% aborted and 20% delayed (by 1 ms) out of 2000, each within
/// six standard deviations; the deprecated integer `percent` counts the same way.
#[tokio::test]
async fn fault_shares_hold_statistically() {
    let b = Backend::start("svc", "v1").await;
    let h = start(
        &[&b],
        "  - fault:
      delay: {fixedDelay: 1ms, percent: 20}
      abort: {httpStatus: 500, percentage: {value: 30}}
    route: [{destination: {host: svc}}]
",
    )
    .await;
    let c = http1_client();
    let n = 2000u64;
    let mut aborted = 0u64;
    for _ in 0..n {
        if c.get(&h.mesh_url("/"), "svc", &[]).await.status == 500 {
            aborted += 1;
        }
    }
    // sd = sqrt(n p (1-p)): about 20.5 for 30%, 17.9 for 20%.
    assert!((600 - 123..=600 + 123).contains(&aborted), "{aborted} of {n} aborted");
    assert_eq!(b.hits(), n - aborted);
    let delayed = h.requests_with(500, "DI,FI").await + h.requests_with(200, "DI").await;
    assert!((400 - 108..=400 + 108).contains(&delayed), "{delayed} of {n} delayed");
}

/// gRPC aborts: a `grpcStatus` gives a real gRPC client that status in a trailers-only
/// response; an `httpStatus` gives it the status Envoy maps it to (503 is UNAVAILABLE).
#[tokio::test]
async fn grpc_aborts_carry_the_grpc_status() {
    let b = Backend::start("svc", "v1").await;
    let h = start(
        &[&b],
        "  - match: [{uri: {prefix: /test.Echo/Denied}}]
    fault: {abort: {grpcStatus: PERMISSION_DENIED, percentage: {value: 100}}}
    route: [{destination: {host: svc}}]
  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: svc}}]
",
    )
    .await;
    let c = GrpcClient::new(h.mesh());
    let r = c.unary("svc", "/test.Echo/Denied", b"x").await;
    assert_eq!((r.http_status.as_u16(), r.status), (200, Some(7)));
    assert!(r.trailers.is_none(), "trailers-only");
    assert_eq!(r.message.as_deref(), Some("fault filter abort"));
    let r = c.unary("svc", "/test.Echo/Unary", b"x").await;
    assert_eq!((r.http_status.as_u16(), r.status), (200, Some(14)));
    assert_eq!(b.hits(), 0);
}

// === mirrors ===

/// Seed pattern 5: everything to v1 and a copy of everything to v2; the client only
/// ever sees v1's answers, the copy keeps the Host as current Istio does, and counts
/// in the mirror cluster's `upstream_rq_total`.
#[tokio::test]
async fn mirrors_get_a_copy_of_each_request() {
    let v1 = Backend::start("svc", "v1").await;
    let v2 = Backend::start("svc", "v2").await;
    let h = start(
        &[&v1, &v2],
        "  - route: [{destination: {host: svc, subset: v1}}]
    mirror: {host: svc, subset: v2}
    mirrorPercentage: {value: 100.0}
",
    )
    .await;
    let c = http1_client();
    for _ in 0..10 {
        let r = c.get(&h.mesh_url("/"), "svc", &[]).await;
        assert_eq!(r.backend_version(), Some("v1"));
    }
    weir_testkit::wait_for(|| v2.hits() == 10, TEST_TIMEOUT).await;
    assert_eq!(v1.hits(), 10);
    assert_eq!(v2.last_authority().as_deref(), Some("svc"), "no -shadow suffix by default");
    assert_eq!(h.cluster_stat("outbound|80|v2|svc.ns.svc.cluster.local", "upstream_rq_total").await, Some(10));
    assert_eq!(h.requests_with(200, "-").await, 10, "copies are not the client's requests");
}

/// A mirrored POST arrives with its body, over HTTP/1.1 and HTTP/2; with
/// `--shadow-host-suffix` the copy's Host gets Envoy's `-shadow`.
#[tokio::test]
async fn mirrored_posts_arrive_with_their_body() {
    let v1 = Backend::start("svc", "v1").await;
    let v2 = Backend::start("svc", "v2").await;
    let yaml = format!(
        "{}{DR}{}",
        service("svc", "ns", "HTTP", &[&v1, &v2]),
        vs("  - route: [{destination: {host: svc, subset: v1}}]\n    mirror: {host: svc, subset: v2}\n")
    );
    let instance = Instance { namespace: "ns".into(), mesh: true, ..Instance::default() };
    let h = Harness::with_config(&yaml, instance, |c| c.shadow_host_suffix = true).await;
    let body: Vec<u8> = (0..50_000).map(|i| (i % 251) as u8).collect();
    for c in [http1_client(), http2_client()] {
        let r = c.request(Method::POST, &h.mesh_url("/"), "svc:80", &[], body.clone()).await;
        assert_eq!(r.json()["body_len"], 50_000);
    }
    weir_testkit::wait_for(|| v2.body_bytes() == 100_000, TEST_TIMEOUT).await;
    assert_eq!(v2.last_authority().as_deref(), Some("svc-shadow:80"));
}

/// Fire and forget: a mirror that takes 10 s does not slow the client, and a mirror
/// that is down causes no client error.
#[tokio::test]
async fn mirrors_never_touch_the_client() {
    let v1 = Backend::start("svc", "v1").await;
    let slow = Backend::start("svc", "v2").await;
    slow.set_delay(Duration::from_secs(10));
    let down = Backend::start("svc", "v3").await;
    down.stop().await;
    let mut yaml = service("svc", "ns", "HTTP", &[&v1, &slow, &down]);
    yaml.push_str(&DR.replace(
        "  - {name: v2, labels: {version: v2}}\n",
        "  - {name: v2, labels: {version: v2}}\n  - {name: v3, labels: {version: v3}}\n",
    ));
    yaml.push_str(&vs("  - route: [{destination: {host: svc, subset: v1}}]
    mirrors:
    - destination: {host: svc, subset: v2}
    - destination: {host: svc, subset: v3}
"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let t = Instant::now();
    for _ in 0..3 {
        let r = http1_client().get(&h.mesh_url("/"), "svc", &[]).await;
        assert_eq!((r.status.as_u16(), r.backend_version()), (200, Some("v1")));
    }
    assert!(t.elapsed() < Duration::from_secs(8), "the slow mirror held the client: {:?}", t.elapsed());
    weir_testkit::wait_for(|| slow.hits() == 3, TEST_TIMEOUT).await;
    assert_eq!(h.requests_with(200, "-").await, 3);
}

/// `mirrorPercentage` mirrors its share of requests (50% of 600 within six standard
/// deviations).
#[tokio::test]
async fn mirror_shares_hold_statistically() {
    let v1 = Backend::start("svc", "v1").await;
    let v2 = Backend::start("svc", "v2").await;
    let h = start(
        &[&v1, &v2],
        "  - route: [{destination: {host: svc, subset: v1}}]
    mirror: {host: svc, subset: v2}
    mirrorPercentage: {value: 50}
",
    )
    .await;
    let c = http1_client();
    for _ in 0..600 {
        c.get(&h.mesh_url("/"), "svc", &[]).await;
    }
    // Copies still in flight finish quickly; wait until the count has not moved for a
    // second (a late copy can only make the count larger, never fail the bound below).
    let (mut last, mut still) = (u64::MAX, 0);
    while still < 5 {
        let now = v2.hits();
        still = if now == last { still + 1 } else { 0 };
        last = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!((300 - 74..=300 + 74).contains(&v2.hits()), "{} of 600 mirrored", v2.hits());
}

/// The mirror destination's port is honoured: copies to `shadow` port 9090 reach the
/// endpoint's `alt` port, never its port 80 backend.
#[tokio::test]
async fn mirrors_go_to_their_destination_port() {
    let v1 = Backend::start("svc", "v1").await;
    let (web, alt) = (Backend::start("shadow", "web").await, Backend::start("shadow", "alt").await);
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shadow, namespace: ns}}
spec:
  hosts: [shadow.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}, {{number: 9090, name: alt, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {}, alt: {}}}}}]
---
{}",
        service("svc", "ns", "HTTP", &[&v1]),
        web.port(),
        alt.port(),
        vs("  - route: [{destination: {host: svc}}]\n    mirror: {host: shadow, port: {number: 9090}}\n")
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    for _ in 0..5 {
        assert_eq!(http1_client().get(&h.mesh_url("/"), "svc", &[]).await.backend_version(), Some("v1"));
    }
    weir_testkit::wait_for(|| alt.hits() == 5, TEST_TIMEOUT).await;
    assert_eq!(web.hits(), 0);
    assert_eq!(h.cluster_stat("outbound|9090||shadow.ns.svc.cluster.local", "upstream_rq_total").await, Some(5));
}

/// A mirror obeys its cluster's connection limits and is dropped, not queued, on
/// overflow: with the mirror's one connection busy, the next copy is dropped and never
/// arrives later.
#[tokio::test]
async fn mirrors_are_dropped_at_their_clusters_limits() {
    let v1 = Backend::start("svc", "v1").await;
    let shadow = Backend::start("shadow", "v1").await;
    shadow.set_hold(true);
    let yaml = format!(
        "{}{}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: shadow, namespace: ns}}
spec:
  host: shadow
  trafficPolicy: {{connectionPool: {{tcp: {{maxConnections: 1}}, http: {{http1MaxPendingRequests: 10}}}}}}
---
{}",
        service("svc", "ns", "HTTP", &[&v1]),
        service("shadow", "ns", "HTTP", &[&shadow]),
        vs("  - route: [{destination: {host: svc}}]\n    mirror: {host: shadow}\n")
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.status, 200);
    weir_testkit::wait_for(|| shadow.hits() == 1, TEST_TIMEOUT).await;
    assert_eq!(c.get(&h.mesh_url("/"), "svc", &[]).await.status, 200);
    let cluster = "outbound|80||shadow.ns.svc.cluster.local";
    let deadline = Instant::now() + TEST_TIMEOUT;
    while h.cluster_stat(cluster, "upstream_rq_pending_overflow").await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the second copy was not dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shadow.release(10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shadow.hits(), 1, "the dropped copy never came");
}

/// A real gRPC client (tonic) against a real gRPC server (tonic-health) through weir:
/// served when no fault matches, and the injected `grpcStatus` as a `tonic::Status`
/// (message and all) for `end-user: jason`.
#[tokio::test]
async fn tonic_sees_grpc_aborts() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: health, namespace: ns}}
spec:
  hosts: [health]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    fault: {{abort: {{grpcStatus: PERMISSION_DENIED, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: health}}}}]
  - route: [{{destination: {{host: health}}}}]
",
        service_at("health", "ns", "GRPC", port)
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    // The client's :authority must name the service: connect to weir, address `health`.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", h.mesh()))
        .unwrap()
        .origin("http://health".parse().unwrap())
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let served = tokio::time::timeout(TEST_TIMEOUT, client.check(HealthCheckRequest { service: String::new() }))
        .await
        .unwrap()
        .expect("served without a fault");
    assert_eq!(served.into_inner().status(), ServingStatus::Serving);

    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.metadata_mut().insert("end-user", "jason".parse().unwrap());
    let status = tokio::time::timeout(TEST_TIMEOUT, client.check(req)).await.unwrap().expect_err("aborted");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "fault filter abort");
    assert_eq!(h.requests_with(200, "FI").await, 1);
}
