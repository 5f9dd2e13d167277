//! Seed patterns 3 (circuit breaker), 4 (retry and timeout), 5 (mirroring), 6 (fault
//! injection) and 7 (HTTPS ingress gateway) of `examples/seed/`, unchanged, carrying
//! real traffic: only ServiceEntries for their hosts (for pattern 5, the DestinationRule
//! naming its subsets; for pattern 7, a VirtualService bound to its Gateway and the
//! credential) are added, with loopback backends behind them.

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use weir_testkit::{Backend, TEST_TIMEOUT, http1_client, http2_client, wait_for};

const PATTERN_3: &str = include_str!("../../../examples/seed/3-circuit-breaker.yaml");
const PATTERN_4: &str = include_str!("../../../examples/seed/4-retry-timeout.yaml");
const PATTERN_5: &str = include_str!("../../../examples/seed/5-mirroring.yaml");
const PATTERN_6: &str = include_str!("../../../examples/seed/6-fault-injection.yaml");
const PATTERN_7: &str = include_str!("../../../examples/seed/7-ingress-gateway.yaml");

/// A ServiceEntry for `name.default.svc.cluster.local` over `backends`.
fn entry(name: &str, backends: &[&Backend]) -> String {
    let eps: String = backends
        .iter()
        .map(|b| {
            format!("  - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: {}}}}}\n", b.port(), b.version())
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
{eps}---
"
    )
}

/// Pattern 3: connection-pool limits in force (read back from `/clusters`), and outlier
/// detection ejecting the endpoint that fails after `consecutive5xxErrors: 5`, within
/// `maxEjectionPercent: 50`; `maxRequestsPerConnection: 10` recycles connections.
#[tokio::test]
async fn pattern_3_circuit_breaker() {
    let good = Backend::start("my-service", "v1").await;
    let bad = Backend::start("my-service", "v2").await;
    bad.set_status(Some(500));
    let yaml = format!("{}---\n{PATTERN_3}", entry("my-service", &[&good, &bad]));
    let h = Harness::start(&yaml, Some("default")).await;
    let c = http1_client();
    let mut failed = 0;
    for _ in 0..100 {
        if c.get(&h.mesh_url("/"), "my-service", &[]).await.status != 200 {
            failed += 1;
        }
    }
    assert_eq!(failed, 5, "five consecutive 5xx, then the host is ejected for 30 s");
    assert_eq!(bad.hits(), 5);
    assert!(good.connections() >= good.hits() / 10, "{} connections for {} requests", good.connections(), good.hits());
    let clusters = c.get(&h.admin_url("/clusters"), "", &[]).await.text();
    let cluster = "outbound|80||my-service.default.svc.cluster.local";
    for line in [
        format!("{cluster}::default_priority::max_connections::100"),
        format!("{cluster}::default_priority::max_pending_requests::100"),
        format!("{cluster}::default_priority::max_requests::1000"),
        format!("{cluster}::default_priority::max_retries::3"),
        format!("{cluster}::127.0.0.1:{}::health_flags::/failed_outlier_check", bad.port()),
    ] {
        assert!(clusters.contains(&line), "no {line} in\n{clusters}");
    }
}

/// Pattern 4: 503 and 409 (`retriable-4xx`) are retried up to three times, 500 is not;
/// a try slower than `perTryTimeout: 3s` is cut at 3 s. (Envoy retries a per-try
/// timeout only under `reset`, `5xx` or `gateway-error`, none of which this list has:
/// the client gets 504 `UT` then, well inside `timeout: 10s`.)
#[tokio::test]
async fn pattern_4_retry_and_timeout() {
    let b = Backend::start("ratings", "v1").await;
    let yaml = format!("{}---\n{PATTERN_4}", entry("ratings", &[&b]));
    let h = Harness::start(&yaml, Some("default")).await;
    let c = http1_client();
    b.fail_next(503, 2);
    let r = c.get(&h.mesh_url("/"), "ratings", &[]).await;
    assert_eq!((r.status.as_u16(), b.hits()), (200, 3));
    assert_eq!(r.json()["headers"]["x-envoy-attempt-count"], "3");
    b.reset_hits();
    b.fail_next(409, 1);
    assert_eq!(c.get(&h.mesh_url("/"), "ratings", &[]).await.status, 200);
    assert_eq!(b.hits(), 2);
    b.reset_hits();
    b.fail_next(500, 1);
    assert_eq!(c.get(&h.mesh_url("/"), "ratings", &[]).await.status, 500, "500 is not in retryOn");
    b.reset_hits();
    b.fail_next(503, 4);
    assert_eq!(c.get(&h.mesh_url("/"), "ratings", &[]).await.status, 503, "three retries, then the 503 stands");
    assert_eq!(b.hits(), 4);
    b.reset_hits();
    b.delay_next(Duration::from_secs(60), 1);
    let t = Instant::now();
    let r = c.get(&h.mesh_url("/"), "ratings", &[]).await;
    let took = t.elapsed();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (504, "upstream request timeout"));
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(10), "{took:?}");
    assert_eq!(b.hits(), 1);
}

/// Pattern 5: every request answered by v1, and a copy of each (with its body) to v2.
#[tokio::test]
async fn pattern_5_mirroring() {
    let v1 = Backend::start("my-service", "v1").await;
    let v2 = Backend::start("my-service", "v2").await;
    let dr = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: my-service}
spec:
  host: my-service
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
";
    let yaml = format!("{}{dr}{PATTERN_5}", entry("my-service", &[&v1, &v2]));
    let h = Harness::start(&yaml, Some("default")).await;
    let c = http1_client();
    for i in 0..20 {
        let r = c.request(http::Method::POST, &h.mesh_url("/orders"), "my-service", &[], format!("order {i}")).await;
        assert_eq!(r.backend_version(), Some("v1"));
    }
    wait_for(|| v2.hits() >= 20, TEST_TIMEOUT).await;
    assert_eq!((v1.hits(), v2.hits()), (20, 20));
    assert_eq!(v2.body_bytes(), v1.body_bytes(), "the copies carry the bodies");
}

/// Pattern 6: 10% of requests delayed by 5 s (flag DI) and 5% aborted with 503 (flag
/// FI), never reaching the backend. 1000 concurrent requests, so the delays overlap;
/// each share within six standard deviations (100 +- 57, 50 +- 41), and every delayed
/// request took its 5 s.
#[tokio::test]
async fn pattern_6_fault_injection() {
    let b = Backend::start("ratings", "v1").await;
    let yaml = format!("{}---\n{PATTERN_6}", entry("ratings", &[&b]));
    let h = Harness::start(&yaml, Some("default")).await;
    let c = http2_client();
    let n = 1000u64;
    let calls = (0..n).map(|_| {
        let (c, url) = (c.clone(), h.mesh_url("/ratings/0"));
        tokio::spawn(async move {
            let t = Instant::now();
            let r = c.get(&url, "ratings", &[]).await;
            (r.status.as_u16(), r.text(), t.elapsed())
        })
    });
    let mut replies = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        replies.push(call.await.unwrap());
    }
    let aborted = replies.iter().filter(|(s, body, _)| *s == 503 && body == "fault filter abort").count() as u64;
    let slow = replies.iter().filter(|(_, _, took)| *took >= Duration::from_secs(5)).count() as u64;
    assert_eq!(replies.iter().filter(|(s, _, _)| *s == 200).count() as u64, n - aborted);
    assert!((50 - 41..=50 + 41).contains(&aborted), "{aborted} of {n} aborted");
    assert_eq!(b.hits(), n - aborted, "aborted requests never reach the backend");
    let delayed = h.requests_with(200, "DI").await + h.requests_with(503, "DI,FI").await;
    assert!((100 - 57..=100 + 57).contains(&delayed), "{delayed} of {n} delayed");
    assert!(slow >= delayed, "{slow} requests took 5 s, {delayed} were delayed");
    assert_eq!(h.requests_with(503, "FI").await + h.requests_with(503, "DI,FI").await, aborted);
}

/// Pattern 7 with curl as the client: the certificate comes from the credential
/// `my-tls-secret`, curl verifies it against the test CA, HTTP/1.1 and HTTP/2 (ALPN)
/// both reach the service a VirtualService binds to the gateway, and a host under
/// `*.example.com` that no VirtualService covers is 404.
#[tokio::test]
async fn pattern_7_https_ingress_gateway_with_curl() {
    let b = Backend::start("httpbin", "v1").await;
    let ca = weir_testkit::TestCa::new("pattern-7-ca");
    let creds = std::env::temp_dir().join(format!("weir-pattern-7-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&creds);
    ca.write_credential(&creds, "my-tls-secret", &ca.leaf(&["*.example.com"]), false);
    let ca_file = creds.join("ca.pem");
    std::fs::write(&ca_file, &ca.cert).unwrap();
    let vs = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com]
  gateways: [my-gateway]
  http:
  - route: [{destination: {host: httpbin.default.svc.cluster.local}}]
";
    let yaml = format!("{}---\n{PATTERN_7}---\n{vs}", entry("httpbin", &[&b]));
    let instance = weir_compile::Instance { namespace: "default".into(), ..weir_compile::Instance::default() };
    let dir = creds.clone();
    let h = Harness::with_config(&yaml, instance, move |c| c.credentials = Some(dir)).await;
    let port = h.gateway(443).port();
    let curl = move |host: &'static str, extra: &'static [&'static str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code} %{http_version}"])
            .args(extra)
            .arg("--cacert")
            .arg(&ca_file)
            .arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
            .arg(format!("https://{host}:{port}/status"))
            .output()
            .expect("curl runs (installed by .ci/run)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (one, two, other) = tokio::task::spawn_blocking(move || {
        (
            curl("httpbin.example.com", &["--http1.1"]),
            curl("httpbin.example.com", &["--http2"]),
            curl("other.example.com", &[]),
        )
    })
    .await
    .unwrap();
    assert_eq!(one, "200 1.1");
    assert_eq!(two, "200 2", "ALPN h2 over TLS");
    assert_eq!(other, "404 2", "no VirtualService for this host: 404 NR");
    assert_eq!(b.hits(), 2);
    let _ = std::fs::remove_dir_all(&creds);
}
