//! Resilience with real loopback backends that fail on command: circuit breaking
//! (Istio's circuit-breaking task), retries and timeouts (Istio's request-timeout and
//! retry tasks), outlier detection (Envoy's semantics), replayable bodies, upstream
//! failures with their response flags, and the admin views of all of it.
//!
//! Nothing here waits for time to pass to be right: held requests are released by the
//! test, conditions are polled with generous bounds, and the few timeouts configured
//! are short while the delays they must cut are long, so only their order matters.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Harness, service};
use http::Method;
use weir_testkit::{Backend, HttpClient, Protocol, TEST_TIMEOUT, TestResponse, http1_client, http2_client};

const CLUSTER: &str = "outbound|80||svc.ns.svc.cluster.local";

fn dr(policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  trafficPolicy:
{policy}
---
"
    )
}

/// A VirtualService for `svc` whose one route carries `extra` (indented YAML fields).
fn vs(extra: &str) -> String {
    common::svc_routes(&format!("  - route: [{{destination: {{host: svc}}}}]\n{extra}\n"))
}

async fn start(backends: &[&Backend], policy: Option<&str>, route: &str) -> Harness {
    let mut yaml = service("svc", "ns", "HTTP", backends);
    if let Some(p) = policy {
        yaml.push_str(&dr(p));
    }
    yaml.push_str(&vs(route));
    Harness::start(&yaml, Some("ns")).await
}

async fn get(c: &HttpClient, h: &Harness, path: &str) -> TestResponse {
    c.get(&h.mesh_url(path), "svc", &[]).await
}

/// How many of `n` requests for `/` did not get 200.
async fn failures(c: &HttpClient, h: &Harness, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        if get(c, h, "/").await.status != 200 {
            failed += 1;
        }
    }
    failed
}

/// `cluster.<CLUSTER>.<name>` from `/stats`.
async fn stat(h: &Harness, name: &str) -> u64 {
    h.cluster_stat(CLUSTER, name).await.unwrap_or_else(|| panic!("no cluster.{CLUSTER}.{name} in /stats"))
}

async fn wait_stat(h: &Harness, name: &str, want: u64) {
    let deadline = Instant::now() + TEST_TIMEOUT;
    loop {
        let v = stat(h, name).await;
        if v == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed {v}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn clusters(h: &Harness) -> String {
    http1_client().get(&h.admin_url("/clusters"), "", &[]).await.text()
}

async fn wait_hits(b: &Backend, n: u64) {
    weir_testkit::wait_for(|| b.hits() >= n, TEST_TIMEOUT).await;
}

// === circuit breaking ===

/// Istio's circuit-breaking task: `maxConnections: 1`, `http1MaxPendingRequests: 1`.
/// With one request on the connection and one waiting for it, a third overflows at
/// once: 503 `UO` with `x-envoy-overloaded: true`, never sent upstream. Once the
/// backend answers, the two others succeed.
#[tokio::test]
async fn circuit_breaking_task_overflows_the_third_concurrent_request() {
    let b = Backend::start("svc", "v1").await;
    b.set_hold(true);
    let policy = "    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}";
    let h = start(&[&b], Some(policy), "").await;
    let url = h.mesh_url("/");
    let spawn = |url: String| tokio::spawn(async move { http1_client().get(&url, "svc", &[]).await });
    let first = spawn(url.clone());
    wait_hits(&b, 1).await;
    let second = spawn(url.clone());
    wait_stat(&h, "upstream_rq_pending_active", 1).await;
    let third = http1_client().get(&url, "svc", &[]).await;
    assert_eq!(third.status, 503);
    assert_eq!(third.header("x-envoy-overloaded"), Some("true"));
    assert!(third.text().ends_with("reset reason: overflow"), "{}", third.text());
    assert_eq!(b.hits(), 1, "the overflow never reached the backend");
    b.release(2);
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200);
    assert_eq!(b.hits(), 2);
    assert_eq!(stat(&h, "upstream_rq_pending_overflow").await, 1);
    assert_eq!(stat(&h, "upstream_rq_total").await, 2, "the overflow never went upstream");
    assert_eq!(h.requests_with(503, "UO").await, 1);
    assert_eq!(h.requests_with(200, "-").await, 2);
    // The same limits, read back from /clusters.
    let text = clusters(&h).await;
    assert!(text.contains(&format!("{CLUSTER}::default_priority::max_connections::1")), "{text}");
    assert!(text.contains(&format!("{CLUSTER}::rq_pending_overflow::1")), "{text}");
}

/// `http2MaxRequests` bounds requests in flight over both protocols; overflow is UO.
#[tokio::test]
async fn max_requests_overflow_over_http2() {
    let b = Backend::start("svc", "v1").await;
    b.set_hold(true);
    let h = start(&[&b], Some("    connectionPool: {http: {http2MaxRequests: 1}}"), "").await;
    let url = h.mesh_url("/");
    let c = http2_client();
    let first = {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move { c.get(&url, "svc", &[]).await })
    };
    wait_hits(&b, 1).await;
    let r = c.get(&url, "svc", &[]).await;
    assert_eq!((r.status.as_u16(), r.header("x-envoy-overloaded")), (503, Some("true")));
    b.release(1);
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(stat(&h, "upstream_rq_pending_overflow").await, 1);
}

/// `maxRetries` bounds retries in flight: of two requests that both need a retry at
/// once, one retries and the other's response stands with flag `UO`.
#[tokio::test]
async fn the_retry_circuit_breaker_flags_uo() {
    let b = Backend::start("svc", "v1").await;
    b.set_hold(true);
    b.fail_next(503, 2);
    let route = "    retries: {attempts: 2, retryOn: 5xx}";
    let h = start(&[&b], Some("    connectionPool: {http: {maxRetries: 1}}"), route).await;
    let url = h.mesh_url("/");
    let spawn = |url: String| tokio::spawn(async move { http1_client().get(&url, "svc", &[]).await });
    let (one, two) = (spawn(url.clone()), spawn(url.clone()));
    wait_hits(&b, 2).await;
    b.release(2);
    // One of them retries (a third request reaches the backend and is held there).
    wait_hits(&b, 3).await;
    b.release(1);
    let mut codes = [one.await.unwrap().status.as_u16(), two.await.unwrap().status.as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 503]);
    assert_eq!(h.requests_with(503, "UO").await, 1);
    assert_eq!(stat(&h, "upstream_rq_retry_overflow").await, 1);
    assert_eq!(stat(&h, "upstream_rq_retry").await, 1);
    assert_eq!(stat(&h, "upstream_rq_retry_success").await, 1);
}

/// `maxRequestsPerConnection: 1` turns keep-alive off upstream.
#[tokio::test]
async fn max_requests_per_connection_closes_after_each_request() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&[&b], Some("    connectionPool: {http: {maxRequestsPerConnection: 1}}"), "").await;
    let c = http1_client();
    for _ in 0..3 {
        assert_eq!(get(&c, &h, "/").await.status, 200);
    }
    assert_eq!(b.connections(), 3);
    assert_eq!(stat(&h, "upstream_cx_max_requests").await, 3);
}

/// An upstream connection with no requests for `http.idleTimeout` is closed.
#[tokio::test]
async fn idle_upstream_connections_close_after_the_idle_timeout() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&[&b], Some("    connectionPool: {http: {idleTimeout: 200ms}}"), "").await;
    let c = http1_client();
    assert_eq!(get(&c, &h, "/").await.status, 200);
    // The worker's sweep (every 2 s) finds the connection idle past its timeout.
    weir_testkit::wait_for_async(
        || {
            let h = &h;
            async move { clusters(h).await.contains("::cx_active::0") }
        },
        TEST_TIMEOUT,
    )
    .await;
    assert_eq!(stat(&h, "upstream_cx_idle_timeout").await, 1);
    assert_eq!(get(&c, &h, "/").await.status, 200);
    assert_eq!(b.connections(), 2, "the second request needed a new connection");
}

// === retries ===

/// A backend failing twice then succeeding: the client gets 200, the backend saw three
/// tries, each with its `x-envoy-attempt-count`.
#[tokio::test]
async fn retries_turn_two_failures_into_a_success() {
    let b = Backend::start("svc", "v1").await;
    b.fail_next(503, 2);
    let h = start(&[&b], None, "    retries: {attempts: 3, retryOn: 5xx}").await;
    for c in [http1_client(), http2_client()] {
        b.reset_hits();
        b.fail_next(503, 2);
        let r = get(&c, &h, "/").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["headers"]["x-envoy-attempt-count"], "3");
        assert_eq!(b.hits(), 3);
    }
    assert_eq!(stat(&h, "upstream_rq_retry").await, 4);
    assert_eq!(h.requests_with(200, "-").await, 2);
}

/// Retries exhausted on a retriable response: the upstream's response stands, with
/// flag `URX` (Envoy's `upstream_rq_retry_limit_exceeded`).
#[tokio::test]
async fn exhausted_retries_are_flagged_urx() {
    let b = Backend::start("svc", "v1").await;
    b.set_status(Some(503));
    let h = start(&[&b], None, "    retries: {attempts: 2, retryOn: gateway-error}").await;
    let r = get(&http1_client(), &h, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.backend(), Some("svc"), "the upstream's own response");
    assert_eq!(b.hits(), 3);
    assert_eq!(h.requests_with(503, "URX").await, 1);
    assert_eq!(stat(&h, "upstream_rq_retry_limit_exceeded").await, 1);
}

/// Istio's default policy (no `retries`) retries connection failures and gRPC
/// `unavailable`/`cancelled`, not 503 (Istio 1.24+); bare codes in `retryOn` are
/// retriable status codes; `attempts: 0` turns retries off.
#[tokio::test]
async fn default_policy_bare_codes_and_no_retries() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - match: [{{uri: {{prefix: /codes}}}}]
    retries: {{attempts: 2, retryOn: \"418,connect-failure\"}}
    route: [{{destination: {{host: svc}}}}]
  - match: [{{uri: {{prefix: /off}}}}]
    retries: {{attempts: 0}}
    route: [{{destination: {{host: svc}}}}]
  - route: [{{destination: {{host: svc}}}}]
",
        service("svc", "ns", "HTTP", &[&b])
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    b.fail_next(503, 1);
    assert_eq!(get(&c, &h, "/default").await.status, 503, "503 is not retried by default");
    assert_eq!(b.hits(), 1);
    b.reset_hits();
    b.fail_next(418, 2);
    assert_eq!(get(&c, &h, "/codes").await.status, 200);
    assert_eq!(b.hits(), 3);
    b.reset_hits();
    b.fail_next(503, 1);
    assert_eq!(get(&c, &h, "/codes").await.status, 503, "503 is not in the list");
    b.reset_hits();
    b.fail_next(418, 1);
    assert_eq!(get(&c, &h, "/off").await.status, 418);
    assert_eq!(b.hits(), 1);
}

/// A retry prefers a host not tried yet (Istio's default `previous_hosts`): with one
/// host always failing and RANDOM balancing, nearly every request succeeds on its one
/// retry. (Without the predicate a quarter would fail: first and second pick both the
/// bad host.)
#[tokio::test]
async fn retries_go_to_another_host() {
    let good = Backend::start("svc", "v1").await;
    let bad = Backend::start("svc", "v2").await;
    bad.set_status(Some(503));
    let h =
        start(&[&good, &bad], Some("    loadBalancer: {simple: RANDOM}"), "    retries: {attempts: 1, retryOn: 5xx}")
            .await;
    let c = http1_client();
    let failed = failures(&c, &h, 200).await;
    // Expected about 3 (1/2 x 1/32); six standard deviations is about 14.
    assert!(failed < 15, "{failed} of 200 failed");
    assert!(bad.hits() > 50, "the bad host was picked first about half the time: {}", bad.hits());
}

/// `perTryTimeout` shorter than a slow first try: the try is cut, retried, and the
/// answer comes long before the slow try would have finished.
#[tokio::test]
async fn a_slow_first_try_is_cut_by_the_per_try_timeout_and_retried() {
    let b = Backend::start("svc", "v1").await;
    b.delay_next(Duration::from_secs(20), 1);
    let h =
        start(&[&b], None, "    timeout: 15s\n    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}").await;
    let t = Instant::now();
    let r = get(&http1_client(), &h, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-envoy-attempt-count"], "2");
    assert!(t.elapsed() < Duration::from_secs(15), "answered within the route timeout: {:?}", t.elapsed());
    assert_eq!(b.hits(), 2);
    assert_eq!(stat(&h, "upstream_rq_per_try_timeout").await, 1);
}

/// A per-try timeout is a local reset: Istio's default conditions do not retry it, and
/// the client gets 504 `UT` (`upstream_per_try_timeout`).
#[tokio::test]
async fn a_per_try_timeout_without_a_matching_condition_is_504() {
    let b = Backend::start("svc", "v1").await;
    b.set_delay(Duration::from_secs(20));
    let h = start(&[&b], None, "    retries: {attempts: 2, perTryTimeout: 100ms}").await;
    let r = get(&http1_client(), &h, "/").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (504, "upstream request timeout"));
    assert_eq!(b.hits(), 1);
    assert_eq!(h.requests_with(504, "UT").await, 1);
}

/// The route timeout covers every try: with tries that always time out and many
/// retries left, the request still ends at the route timeout with 504 `UT`.
#[tokio::test]
async fn the_route_timeout_caps_all_tries() {
    let b = Backend::start("svc", "v1").await;
    b.set_delay(Duration::from_secs(30));
    let route = "    timeout: 1s\n    retries: {attempts: 50, perTryTimeout: 300ms, retryOn: reset}";
    let h = start(&[&b], None, route).await;
    let t = Instant::now();
    let r = get(&http1_client(), &h, "/").await;
    let took = t.elapsed();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (504, "upstream request timeout"));
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(b.hits() >= 2, "it retried: {}", b.hits());
    assert!(b.hits() < 50, "but not past the route timeout: {}", b.hits());
    assert_eq!(stat(&h, "upstream_rq_timeout").await, 1);
    assert_eq!(h.requests_with(504, "UT").await, 1);
}

/// A gRPC request that times out gets the gRPC status Envoy maps 504 to (14,
/// UNAVAILABLE) in a trailers-only response; the client's `grpc-timeout` is the
/// timeout when the route has none, and goes upstream as the time left.
#[tokio::test]
async fn grpc_timeouts() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&[&b], None, "").await;
    let c = http2_client();
    let grpc = [("content-type", "application/grpc"), ("grpc-timeout", "5S")];
    let r =
        c.request(Method::POST, &h.mesh_url("/pkg.Svc/Call"), "svc", &grpc, Bytes::from_static(b"\0\0\0\0\0")).await;
    assert_eq!(r.status, 200);
    let sent = r.json()["headers"]["grpc-timeout"].as_str().unwrap().to_string();
    let ms: u64 = sent.strip_suffix('m').unwrap().parse().unwrap();
    assert!((1..=5000).contains(&ms), "{sent}");
    b.set_delay(Duration::from_secs(30));
    let grpc = [("content-type", "application/grpc"), ("grpc-timeout", "200m")];
    let r =
        c.request(Method::POST, &h.mesh_url("/pkg.Svc/Call"), "svc", &grpc, Bytes::from_static(b"\0\0\0\0\0")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), Some("14"));
    assert_eq!(r.header("grpc-message"), Some("upstream request timeout"));
}

/// Mesh clients may set their own timeouts with Envoy's headers, which are not passed
/// on; at a gateway the same headers are stripped and change nothing.
#[tokio::test]
async fn envoy_timeout_headers_on_mesh_requests_only() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!(
        "{}{}{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edge, namespace: ns}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - route: [{{destination: {{host: svc}}}}]
",
        service("svc", "ns", "HTTP", &[&b]),
        common::GATEWAY,
        vs("")
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let fast = c.get(&h.mesh_url("/"), "svc", &[("x-envoy-upstream-rq-timeout-ms", "5000")]).await;
    assert_eq!(fast.status, 200);
    assert!(fast.json()["headers"].get("x-envoy-upstream-rq-timeout-ms").is_none(), "not passed on");
    assert_eq!(fast.json()["headers"]["x-envoy-expected-rq-timeout-ms"], "5000");
    b.set_delay(Duration::from_millis(600));
    let cut = c.get(&h.mesh_url("/"), "svc", &[("x-envoy-upstream-rq-timeout-ms", "100")]).await;
    assert_eq!(cut.status, 504);
    let edge = c.get(&h.gw_url(8080, "/"), "svc", &[("x-envoy-upstream-rq-timeout-ms", "100")]).await;
    assert_eq!(edge.status, 200, "a gateway ignores its clients' control headers");
    assert!(edge.json()["headers"].get("x-envoy-expected-rq-timeout-ms").is_none());
}

// === replayable bodies ===

/// A 10 KiB body is retried byte for byte; a 2 MiB body outgrows the 1 MiB buffer and
/// is not retried, as in Envoy.
#[tokio::test]
async fn request_bodies_are_replayed_up_to_the_buffer_limit() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&[&b], None, "    retries: {attempts: 2, retryOn: 5xx}").await;
    for c in [http1_client(), http2_client()] {
        b.reset_hits();
        b.fail_next(503, 1);
        let small: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
        let r = c.request(Method::POST, &h.mesh_url("/echo-body"), "svc", &[], small.clone()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.as_ref(), small.as_slice(), "{:?}: the retry sent the same bytes", c.protocol());
        assert_eq!(b.hits(), 2);

        b.reset_hits();
        b.fail_next(503, 1);
        let big = vec![7u8; 2 * 1024 * 1024];
        let r = c.request(Method::POST, &h.mesh_url("/"), "svc", &[], big).await;
        assert_eq!(r.status, 503, "{:?}: not retried", c.protocol());
        assert_eq!(b.hits(), 1);
        assert_eq!(r.json()["body_len"], 2 * 1024 * 1024, "the first try got the whole body");
    }
}

// === upstream failures ===

/// A backend that resets the connection after reading the request head.
async fn resetting_upstream() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if !common::read_head(&mut s).await {
                    return;
                }
                // SO_LINGER 0: the close is a reset.
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                drop(s);
            });
        }
    });
    port
}

/// Connect failures are 503 `UF` (with `URX` once the default retries are spent); a
/// connection reset before the response is 503 `UC`, retried under `reset`.
#[tokio::test]
async fn connect_failures_and_resets_have_their_flags() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let reset_port = resetting_upstream().await;
    let entry = |name: &str, port: u16| {
        format!(
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
        )
    };
    let yaml = format!(
        "{}{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: resets, namespace: ns}}
spec:
  hosts: [resets]
  http:
  - match: [{{uri: {{prefix: /retried}}}}]
    retries: {{attempts: 2, retryOn: reset}}
    route: [{{destination: {{host: resets}}}}]
  - retries: {{attempts: 0}}
    route: [{{destination: {{host: resets}}}}]
",
        entry("dead", dead_port),
        entry("resets", reset_port)
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/"), "dead", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("retried and the latest reset reason: remote connection failure"), "{}", r.text());
    let r = c.get(&h.mesh_url("/"), "resets", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.text().ends_with("reset reason: connection termination"), "{}", r.text());
    let r = c.get(&h.mesh_url("/retried"), "resets", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(h.requests_with(503, "UF,URX").await, 1);
    assert_eq!(h.requests_with(503, "UC").await, 1);
    assert_eq!(h.requests_with(503, "URX,UC").await, 1);
}

// === outlier detection ===

const EJECT_AFTER_3: &str = "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 100ms
      baseEjectionTime: 300ms
      maxEjectionPercent: 100";

/// One of two endpoints always answers 500: it is ejected after three consecutive
/// errors, then every request goes to the healthy one; once its ejection time has
/// passed (and it is fixed) it gets traffic again.
#[tokio::test]
async fn a_failing_endpoint_is_ejected_and_returns() {
    let good = Backend::start("svc", "v1").await;
    let bad = Backend::start("svc", "v2").await;
    bad.set_status(Some(500));
    let h = start(&[&good, &bad], Some(EJECT_AFTER_3), "    retries: {attempts: 0}").await;
    let c = http1_client();
    let failed = failures(&c, &h, 200).await;
    // It may have come back (after 300 ms) and been ejected again meanwhile: each
    // ejection costs exactly three errors.
    assert_eq!(failed % 3, 0, "{failed}");
    assert!(failed <= 6, "{failed} of 200 failed");
    assert!(stat(&h, "outlier_detection.ejections_enforced_consecutive_5xx").await >= 1);
    // Fixed: it comes back once its ejection time has passed.
    bad.set_status(None);
    let bad_host = format!("127.0.0.1:{}", bad.port());
    weir_testkit::wait_for_async(
        || {
            let (h, line) = (&h, format!("{CLUSTER}::{bad_host}::health_flags::healthy"));
            async move { clusters(h).await.contains(&line) }
        },
        TEST_TIMEOUT,
    )
    .await;
    bad.reset_hits();
    for _ in 0..10 {
        assert_eq!(get(&c, &h, "/").await.status, 200);
    }
    assert!(bad.hits() >= 4, "it takes traffic again: {}", bad.hits());
}

/// While ejected, a host shows in `/clusters` with `/failed_outlier_check` and the time
/// left; the ejection survives a reload that leaves the cluster as it was.
#[tokio::test]
async fn ejections_show_in_clusters_and_survive_reloads() {
    let good = Backend::start("svc", "v1").await;
    let bad = Backend::start("svc", "v2").await;
    bad.set_status(Some(500));
    let policy = "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 50}";
    let yaml =
        format!("{}{}{}", service("svc", "ns", "HTTP", &[&good, &bad]), dr(policy), vs("    retries: {attempts: 0}"));
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    for _ in 0..10 {
        get(&c, &h, "/").await;
    }
    assert_eq!(bad.hits(), 2);
    let bad_host = format!("127.0.0.1:{}", bad.port());
    let text = clusters(&h).await;
    assert!(text.contains(&format!("{CLUSTER}::{bad_host}::health_flags::/failed_outlier_check")), "{text}");
    assert!(text.contains(&format!("{CLUSTER}::{bad_host}::times_ejected::1")), "{text}");
    assert!(text.contains(&format!("{CLUSTER}::outlier::ejections_active::1")), "{text}");
    let left: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{CLUSTER}::{bad_host}::ejected_for_ms::")))
        .and_then(|v| v.parse().ok())
        .expect("time left");
    assert!(left > 30_000 && left <= 60_000, "{left}");
    assert_eq!(stat(&h, "outlier_detection.ejections_active").await, 1);
    let json = http1_client().get(&h.admin_url("/clusters?format=json"), "", &[]).await.json();
    let cl = json["clusters"].as_array().unwrap().iter().find(|c| c["name"] == CLUSTER).unwrap();
    assert!(cl["hosts"].as_array().unwrap().iter().any(|e| e["health_flags"] == "/failed_outlier_check"));
    // An unrelated change: the cluster stays, and so does the ejection.
    h.reload(&format!(
        "{yaml}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: other, namespace: ns}}\nspec:\n  hosts: [other.example]\n  http:\n  - route: [{{destination: {{host: svc}}}}]\n"
    ));
    assert!(clusters(&h).await.contains(&format!("{CLUSTER}::{bad_host}::health_flags::/failed_outlier_check")));
    for _ in 0..10 {
        assert_eq!(get(&c, &h, "/").await.status, 200);
    }
    assert_eq!(bad.hits(), 2, "still ejected after the reload");
}

/// `maxEjectionPercent` caps ejections: of three failing hosts at 34%, one is ejected.
#[tokio::test]
async fn max_ejection_percent_caps_ejections() {
    let bs = [Backend::start("svc", "a").await, Backend::start("svc", "b").await, Backend::start("svc", "c").await];
    for b in &bs {
        b.set_status(Some(503));
    }
    let policy = "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 34}";
    let h = start(&[&bs[0], &bs[1], &bs[2]], Some(policy), "    retries: {attempts: 0}").await;
    let c = http1_client();
    for _ in 0..30 {
        assert_eq!(get(&c, &h, "/").await.status, 503);
    }
    assert_eq!(stat(&h, "outlier_detection.ejections_active").await, 1);
    assert!(stat(&h, "outlier_detection.ejections_overflow").await >= 1);
    assert_eq!(bs.iter().filter(|b| b.hits() == 2).count(), 1, "the ejected one got no more traffic");
}

/// With every host ejected (and Istio's panic threshold of 0), requests fail with 503
/// `UH` "no healthy upstream" without reaching any host.
#[tokio::test]
async fn every_host_ejected_is_no_healthy_upstream() {
    let b = Backend::start("svc", "v1").await;
    b.set_status(Some(500));
    let policy = "    outlierDetection: {consecutive5xxErrors: 2, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 100}";
    let h = start(&[&b], Some(policy), "    retries: {attempts: 0}").await;
    let c = http1_client();
    assert_eq!(get(&c, &h, "/").await.status, 500);
    assert_eq!(get(&c, &h, "/").await.status, 500);
    let r = get(&c, &h, "/").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "no healthy upstream"));
    assert_eq!(b.hits(), 2);
    assert_eq!(h.requests_with(503, "UH").await, 1);
}

/// Consecutive gateway errors eject on their own threshold; connect failures count as
/// errors too (local origin, not split).
#[tokio::test]
async fn gateway_errors_and_connect_failures_eject() {
    let good = Backend::start("svc", "v1").await;
    let gone = Backend::start("svc", "v2").await;
    gone.stop().await;
    let policy = "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutiveGatewayErrors: 2, consecutive5xxErrors: 0, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 50}";
    let h = start(&[&good, &gone], Some(policy), "    retries: {attempts: 0}").await;
    let c = http1_client();
    let failed = failures(&c, &h, 20).await;
    assert_eq!(failed, 2);
    assert_eq!(stat(&h, "outlier_detection.ejections_enforced_consecutive_gateway_failure").await, 1);
}

/// Errors split by origin: with `splitExternalLocalOriginErrors`, connect failures count
/// against `consecutiveLocalOriginFailures` and responses against the 5xx threshold.
#[tokio::test]
async fn local_origin_failures_count_apart_when_split() {
    let good = Backend::start("svc", "v1").await;
    let gone = Backend::start("svc", "v2").await;
    gone.stop().await;
    let policy = "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3, consecutive5xxErrors: 100, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 50}";
    let h = start(&[&good, &gone], Some(policy), "    retries: {attempts: 0}").await;
    let c = http1_client();
    let failed = failures(&c, &h, 20).await;
    assert_eq!(failed, 3);
    assert_eq!(stat(&h, "outlier_detection.ejections_enforced_consecutive_local_origin_failure").await, 1);
}

/// The plain HTTP/1.1 path also keeps working under concurrent load with limits set:
/// no request is lost or answered twice.
#[tokio::test]
async fn limits_under_concurrency_lose_nothing() {
    let b = Backend::start("svc", "v1").await;
    b.set_delay(Duration::from_millis(5));
    let policy = "    connectionPool:
      tcp: {maxConnections: 2}
      http: {http1MaxPendingRequests: 1000}";
    let h = start(&[&b], Some(policy), "").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = h.mesh_url("/");
        tasks.push(tokio::spawn(async move {
            let c = HttpClient::new(Protocol::Http1);
            let mut ok = 0;
            for _ in 0..25 {
                if c.get(&url, "svc", &[]).await.status == 200 {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(ok, 200);
    assert_eq!(b.hits(), 200);
    assert!(b.connections() <= 2, "{} connections for a limit of 2", b.connections());
}

/// Istio's default policy retries gRPC `unavailable` (and `cancelled`) read from the
/// response headers of a trailers-only response; `internal` is not retried.
#[tokio::test]
async fn grpc_unavailable_is_retried_by_default() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&[&b], None, "").await;
    let c = http2_client();
    let grpc = [("content-type", "application/grpc")];
    b.fail_next_grpc(14, 2);
    let r =
        c.request(Method::POST, &h.mesh_url("/pkg.Svc/Call"), "svc", &grpc, Bytes::from_static(b"\0\0\0\0\0")).await;
    assert_eq!((r.status.as_u16(), r.header("grpc-status")), (200, None));
    assert_eq!(b.hits(), 3);
    b.reset_hits();
    b.fail_next_grpc(13, 1);
    let r =
        c.request(Method::POST, &h.mesh_url("/pkg.Svc/Call"), "svc", &grpc, Bytes::from_static(b"\0\0\0\0\0")).await;
    assert_eq!(r.header("grpc-status"), Some("13"));
    assert_eq!(b.hits(), 1);
}

/// An HTTP/2 upstream that resets its first `refuse` streams with `REFUSED_STREAM` and
/// every later one with `INTERNAL_ERROR` when `reset_rest`, else answers 200.
async fn h2_upstream(refuse: usize, reset_rest: bool) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(s).await else { return };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    if n < refuse {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                    } else if reset_rest {
                        respond.send_reset(h2::Reason::INTERNAL_ERROR);
                    } else {
                        let _ = respond.send_response(http::Response::new(()), true);
                    }
                }
            });
        }
    });
    (port, seen)
}

fn h2_entry(name: &str, port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: ns}}
spec:
  hosts: [{name}.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http2, protocol: HTTP2}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http2: {port}}}}}]
---
"
    )
}

/// A stream refused by an HTTP/2 upstream is retried under Istio's default
/// `refused-stream`; a stream the upstream resets is 503 `UR`.
#[tokio::test]
async fn http2_resets_refused_streams_are_retried_and_resets_are_ur() {
    let (refusing, refused_seen) = h2_upstream(1, false).await;
    let (resetting, _) = h2_upstream(0, true).await;
    let yaml = format!(
        "{}{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: resets, namespace: ns}}
spec:
  hosts: [resets]
  http:
  - retries: {{attempts: 0}}
    route: [{{destination: {{host: resets}}}}]
",
        h2_entry("refuses", refusing),
        h2_entry("resets", resetting)
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/"), "refuses", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(refused_seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    let r = c.get(&h.mesh_url("/"), "resets", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.text().ends_with("reset reason: remote reset"), "{}", r.text());
    assert_eq!(h.requests_with(503, "UR").await, 1);
}

/// `maxConcurrentStreams` caps streams per HTTP/2 connection: past it the pool opens
/// another connection.
#[tokio::test]
async fn max_concurrent_streams_opens_more_http2_connections() {
    let b = Backend::start("svc", "v1").await;
    b.set_hold(true);
    let mut yaml = service("svc", "ns", "HTTP2", &[&b]);
    yaml.push_str(&dr("    connectionPool: {http: {maxConcurrentStreams: 1}}"));
    yaml.push_str(&vs(""));
    let h = Harness::start(&yaml, Some("ns")).await;
    let spawn = |url: String| tokio::spawn(async move { http1_client().get(&url, "svc", &[]).await });
    let (one, two) = (spawn(h.mesh_url("/")), spawn(h.mesh_url("/")));
    wait_hits(&b, 2).await;
    assert_eq!(b.connections(), 2);
    b.release(2);
    assert_eq!(one.await.unwrap().json()["protocol"], "HTTP/2");
    assert_eq!(two.await.unwrap().status, 200);
}

/// `maxConnectionDuration` retires upstream connections once they are that old.
#[tokio::test]
async fn old_upstream_connections_are_retired() {
    let b = Backend::start("svc", "v1").await;
    let h = start(&[&b], Some("    connectionPool: {tcp: {maxConnectionDuration: 200ms}}"), "").await;
    let c = http1_client();
    assert_eq!(get(&c, &h, "/").await.status, 200);
    weir_testkit::wait_for_async(
        || {
            let h = &h;
            async move { stat(h, "upstream_cx_max_duration_reached").await == 1 }
        },
        TEST_TIMEOUT,
    )
    .await;
    assert_eq!(get(&c, &h, "/").await.status, 200);
    assert_eq!(b.connections(), 2);
}

/// Envoy's cluster statistics in Prometheus form, as Istio's bootstrap names them.
#[tokio::test]
async fn cluster_statistics_in_prometheus() {
    let b = Backend::start("svc", "v1").await;
    b.fail_next(503, 1);
    let h = start(
        &[&b],
        Some("    connectionPool: {tcp: {maxConnections: 10}}"),
        "    retries: {attempts: 1, retryOn: 5xx}",
    )
    .await;
    assert_eq!(get(&http1_client(), &h, "/").await.status, 200);
    let text = http1_client().get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
    for line in [
        format!("envoy_cluster_upstream_rq_retry{{cluster_name=\"{CLUSTER}\"}} 1"),
        format!("envoy_cluster_upstream_rq_total{{cluster_name=\"{CLUSTER}\"}} 2"),
        format!("envoy_cluster_upstream_rq_pending_overflow{{cluster_name=\"{CLUSTER}\"}} 0"),
        format!("envoy_cluster_circuit_breakers_default_remaining_cx{{cluster_name=\"{CLUSTER}\"}} 9"),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("# TYPE envoy_cluster_upstream_rq_retry counter"));
    assert!(text.contains("# TYPE envoy_cluster_upstream_cx_active gauge"));
    let filtered = http1_client().get(&h.admin_url("/stats?filter=retry%24"), "", &[]).await.text();
    assert_eq!(filtered.trim(), format!("cluster.{CLUSTER}.upstream_rq_retry: 1"));
}

// === found in review: waits that must end ===

/// An upstream that answers plain requests with 200 on a kept-alive connection and a
/// WebSocket handshake with 101, then echoes upper-cased.
async fn plain_and_websocket_upstream() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if !String::from_utf8_lossy(&head).to_ascii_lowercase().contains("upgrade: websocket") {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                        continue;
                    }
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                        )
                        .await;
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
            });
        }
    });
    port
}

/// With `maxConnections: 1` and that one connection idle in the pool, a WebSocket
/// upgrade takes it (as Envoy serves upgrades from the HTTP/1.1 pool) instead of
/// waiting for a second one that may never be allowed.
#[tokio::test]
async fn an_upgrade_takes_the_idle_connection_within_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = plain_and_websocket_upstream().await;
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
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ws, namespace: ns}}
spec:
  host: ws
  trafficPolicy: {{connectionPool: {{tcp: {{maxConnections: 1}}}}}}
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    assert_eq!(http1_client().get(&h.mesh_url("/"), "ws", &[]).await.text(), "ok");
    let mut s = tokio::net::TcpStream::connect(h.mesh()).await.unwrap();
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(TEST_TIMEOUT, s.read(&mut buf)).await.expect("the upgrade got an answer").unwrap();
        assert!(n > 0);
        head.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"));
    s.write_all(b"hi").await.unwrap();
    let mut got = [0u8; 2];
    tokio::time::timeout(TEST_TIMEOUT, s.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(&got, b"HI");
    // The tunnel holds the cluster's one connection.
    assert!(clusters(&h).await.contains("::cx_active::1"));
}

/// A route timeout while a try waits is that host's timeout for outlier detection (a
/// 504 when errors are not split), and the access log names the host.
#[tokio::test]
async fn route_timeouts_count_against_the_host() {
    let b = Backend::start("svc", "v1").await;
    b.set_delay(Duration::from_secs(30));
    let policy = "    outlierDetection: {consecutive5xxErrors: 1, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 100}";
    let h = start(&[&b], Some(policy), "    timeout: 100ms\n    retries: {attempts: 0}").await;
    assert_eq!(get(&http1_client(), &h, "/").await.status, 504);
    assert_eq!(stat(&h, "outlier_detection.ejections_active").await, 1);
    let r = get(&http1_client(), &h, "/").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "no healthy upstream"));
}

/// Ejections and returns agree across a reload that changes the cluster (so requests
/// may run on both its old and new state): the host ejected before the reload stays
/// out after it, and comes back when its time is up.
#[tokio::test]
async fn ejections_agree_across_a_reload_that_changes_the_cluster() {
    let good = Backend::start("svc", "v1").await;
    let bad = Backend::start("svc", "v2").await;
    bad.set_status(Some(500));
    let policy = |connect: &str| {
        format!(
            "    loadBalancer: {{simple: ROUND_ROBIN}}
    connectionPool: {{tcp: {{connectTimeout: {connect}}}}}
    outlierDetection: {{consecutive5xxErrors: 2, interval: 100ms, baseEjectionTime: 1s, maxEjectionPercent: 50}}"
        )
    };
    let yaml = |connect: &str| {
        format!(
            "{}{}{}",
            service("svc", "ns", "HTTP", &[&good, &bad]),
            dr(&policy(connect)),
            vs("    retries: {attempts: 0}")
        )
    };
    let h = Harness::start(&yaml("1s"), Some("ns")).await;
    let c = http1_client();
    for _ in 0..10 {
        get(&c, &h, "/").await;
    }
    assert_eq!(bad.hits(), 2);
    h.reload(&yaml("2s"));
    for _ in 0..10 {
        assert_eq!(get(&c, &h, "/").await.status, 200);
    }
    assert_eq!(bad.hits(), 2, "still ejected on the new cluster state");
    bad.set_status(None);
    let line = format!("{CLUSTER}::127.0.0.1:{}::health_flags::healthy", bad.port());
    weir_testkit::wait_for_async(
        || {
            let (h, line) = (&h, line.clone());
            async move { clusters(h).await.contains(&line) }
        },
        TEST_TIMEOUT,
    )
    .await;
    for _ in 0..10 {
        assert_eq!(get(&c, &h, "/").await.status, 200);
    }
    assert!(bad.hits() >= 6, "back in the new state's rotation: {}", bad.hits());
}

/// An HTTP/2 upstream that answers its first request 503 at once without reading the
/// request body (and keeps the stream open), and reads the whole body of later ones.
/// Its stream windows are small and its connection window large: the first try's body
/// is stuck in its stream, the connection still has room for the next.
async fn h2_early_503_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut b = h2::server::Builder::new();
                b.initial_window_size(16 * 1024).initial_connection_window_size(8 * 1024 * 1024);
                let Ok(mut conn) = b.handshake(s).await else { return };
                let mut held = Vec::new();
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    if count.fetch_add(1, Ordering::SeqCst) == 0 {
                        let mut r = http::Response::new(());
                        *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                        let _ = respond.send_response(r, true);
                        held.push(req);
                        continue;
                    }
                    tokio::spawn(async move {
                        let mut body = req.into_body();
                        let mut n = 0usize;
                        while let Some(Ok(d)) = body.data().await {
                            n += d.len();
                            let _ = body.flow_control().release_capacity(d.len());
                        }
                        if let Ok(mut send) = respond.send_response(http::Response::new(()), false) {
                            let _ = send.send_data(bytes::Bytes::from(n.to_string()), true);
                        }
                    });
                }
            });
        }
    });
    (port, seen)
}

/// A retry does not wait for the abandoned try's body: here the HTTP/2 connection
/// keeps the first try's stream (and its body) open, and the retry still goes.
#[tokio::test]
async fn a_retry_does_not_wait_for_an_abandoned_http2_try() {
    let (port, seen) = h2_early_503_upstream().await;
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: up, namespace: ns}}
spec:
  hosts: [up]
  http:
  - retries: {{attempts: 2, retryOn: 5xx}}
    route: [{{destination: {{host: up}}}}]
",
        h2_entry("up", port)
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let body = vec![b'x'; 300 * 1024];
    let r = http1_client().request(Method::POST, &h.mesh_url("/"), "up", &[], body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), (300 * 1024).to_string(), "the retry sent the whole body");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// `http2KeepAlive`: weir pings its HTTP/2 upstream connections, and one whose peer
/// stops answering pings is closed (its request fails instead of hanging). The peer
/// here is a raw socket that speaks just enough HTTP/2 (its SETTINGS) and then never
/// answers anything, as a black-holed host would.
#[tokio::test]
async fn an_http2_upstream_that_stops_answering_pings_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<(bool, bool)>();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        // SETTINGS (empty), then silence: no SETTINGS ACK, no PING ACK, no response.
        s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break true,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        };
        // Frames after the 24-byte preface: 9-byte headers, type at offset 3.
        let mut ping = false;
        let mut at = 24.min(seen.len());
        while at + 9 <= seen.len() {
            let len = (usize::from(seen[at]) << 16) | (usize::from(seen[at + 1]) << 8) | usize::from(seen[at + 2]);
            ping |= seen[at + 3] == 6;
            at += 9 + len;
        }
        let _ = seen_tx.send((ping, closed));
    });
    let yaml = format!(
        "{}{}{}",
        common::service_at("svc", "ns", "HTTP2", port),
        dr("    connectionPool: {http: {http2KeepAlive: {interval: 100ms, timeout: 100ms}}}"),
        vs("")
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let r = tokio::time::timeout(TEST_TIMEOUT, http1_client().get(&h.mesh_url("/"), "svc", &[]))
        .await
        .expect("the request ends when the dead connection is closed");
    assert_eq!(r.status, 503, "{}", r.text());
    let (ping, closed) = tokio::time::timeout(TEST_TIMEOUT, seen_rx).await.unwrap().unwrap();
    assert!(ping, "weir sent a PING");
    assert!(closed, "weir closed the connection");
}
