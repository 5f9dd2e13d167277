//! `weir run --kubernetes` against the testkit's stand-in API server (no real cluster
//! can run on these machines; it speaks the list/watch wire protocol the real kube
//! client uses): the Service, EndpointSlices and Pods are the registry, a
//! VirtualService change reroutes traffic, an invalid VirtualService is rejected alone,
//! neither `410 Gone` nor an API-server restart stops the serving table, and a rotated
//! TLS Secret changes the certificate a Gateway serves.

mod common;

use std::ffi::OsStr;
use std::process::Command;

use common::Weir;

use serde_json::{Value, json};
use weir_testkit::{Backend, ConfigDir, FakeApiServer, TEST_TIMEOUT, http1_client, wait_for_async};

fn start(kubeconfig: &std::path::Path) -> Weir {
    let mut args: Vec<&OsStr> = vec!["--kubernetes".as_ref(), "--kubeconfig".as_ref(), kubeconfig.as_os_str()];
    args.extend(
        [
            "--mesh-listener",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--namespace",
            "shop",
            "--access-log-format",
            "off",
        ]
        .map(OsStr::new),
    );
    Weir::spawn(&args, &[])
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "reviews", "namespace": "shop"},
           "spec": {"selector": {"app": "reviews"}, "clusterIP": "10.96.0.7",
                    "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}})
}

fn pod(name: &str, version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "shop", "labels": {"app": "reviews", "version": version}},
           "spec": {"nodeName": "node-1"}})
}

fn slice(name: &str, pod: &str, port: u16) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": "reviews"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true},
                          "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}}],
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
}

fn route_to(subset: &str) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "reviews", "namespace": "shop"},
           "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": subset}}]}]}})
}

async fn version_is(weir: &Weir, want: &'static str) -> bool {
    http1_client().get(&format!("http://{}/", weir.mesh), "reviews", &[]).await.backend_version() == Some(want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_the_api_server_and_follows_its_changes() {
    let v1 = Backend::start("reviews", "v1").await;
    let v2 = Backend::start("reviews", "v2").await;
    let v3 = Backend::start("reviews", "v3").await;
    let api = FakeApiServer::start().await;
    api.apply(service());
    api.apply(pod("reviews-v1", "v1"));
    api.apply(pod("reviews-v2", "v2"));
    api.apply(slice("reviews-a", "reviews-v1", v1.port()));
    api.apply(slice("reviews-b", "reviews-v2", v2.port()));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                     "metadata": {"name": "reviews", "namespace": "shop"},
                     "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                             {"name": "v2", "labels": {"version": "v2"}}]}}));
    api.apply(route_to("v1"));
    let dir = ConfigDir::new();
    let kubeconfig = dir.write("kubeconfig", &api.kubeconfig());
    let weir = start(&kubeconfig);
    assert!(version_is(&weir, "v1").await, "{}", weir.stderr());

    // A VirtualService change reroutes.
    api.apply(route_to("v2"));
    wait_for_async(|| version_is(&weir, "v2"), TEST_TIMEOUT).await;

    // An invalid VirtualService is rejected alone, named in the log; the rest serves.
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": "broken", "namespace": "shop"},
                     "spec": {"hosts": ["ratings"], "http": [{"timeout": "0s", "route": [{"destination": {"host": "ratings"}}]}]}}));
    wait_for_async(|| async { weir.stderr().contains("VirtualService shop/broken") }, TEST_TIMEOUT).await;
    assert!(version_is(&weir, "v2").await);
    // ... and counted.
    let stats = format!("http://{}/stats/prometheus", weir.admin);
    wait_for_async(
        || async {
            http1_client().get(&stats, "admin", &[]).await.text().contains("weir_config_rejected_resources 1\n")
        },
        TEST_TIMEOUT,
    )
    .await;

    // An EndpointSlice change moves traffic: v2's Pod now answers on another port
    // (a third backend, which says "v3").
    api.apply(slice("reviews-b", "reviews-v2", v3.port()));
    wait_for_async(|| version_is(&weir, "v3"), TEST_TIMEOUT).await;

    // History compacted: the watches get 410 Gone, relist, and changes still arrive.
    api.expire_history();
    api.apply(slice("reviews-b", "reviews-v2", v2.port()));
    wait_for_async(|| version_is(&weir, "v2"), TEST_TIMEOUT).await;

    // The API server restarts: traffic keeps flowing, and later changes still apply.
    api.restart().await;
    assert!(version_is(&weir, "v2").await);
    api.apply(route_to("v1"));
    let deadline = std::time::Instant::now() + TEST_TIMEOUT;
    while !version_is(&weir, "v1").await {
        assert!(std::time::Instant::now() < deadline, "no reroute after the restart; weir's log:\n{}", weir.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `weir analyze --kubernetes` and `weir explain --kubernetes` read the cluster the
/// same way: a missing subset is found on the VirtualService, and the trace names the
/// Pod-backed subset cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_and_explain_read_the_cluster() {
    let api = FakeApiServer::start().await;
    api.apply(service());
    api.apply(pod("reviews-v1", "v1"));
    api.apply(slice("reviews-a", "reviews-v1", 9080));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                     "metadata": {"name": "reviews", "namespace": "shop"},
                     "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}));
    api.apply(route_to("v9"));
    let dir = ConfigDir::new();
    let kubeconfig = dir.write("kubeconfig", &api.kubeconfig());
    let kc = kubeconfig.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["analyze", "-o", "json", "--kubernetes", "--kubeconfig", &kc])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(79), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String)> =
        list.iter().map(|f| (f["code"].as_str().unwrap().into(), f["resource"].as_str().unwrap().into())).collect();
    assert_eq!(got, [("IST0101".to_string(), "VirtualService shop/reviews".to_string())], "{list:?}");

    api.apply(route_to("v1"));
    let kc = kubeconfig.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["explain", "-o", "json", "--kubernetes", "--kubeconfig", &kc, "--host", "reviews.shop"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let trace: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trace["cluster"], "outbound|9080|v1|reviews.shop.svc.cluster.local", "{trace}");
}

/// A `kubernetes.io/tls` Secret, its data base64-encoded as the API serves it.
fn tls_secret(name: &str, leaf: &weir_testkit::Pem) -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": name, "namespace": "shop"},
           "data": {"tls.crt": b64(&leaf.cert), "tls.key": b64(&leaf.key)}})
}

/// A port nothing listens on now. `weir run` binds a Gateway server's own port number
/// (as Envoy does), so the test picks one the kernel just handed out and released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The host's HTTPS answer through the gateway when the handshake verifies against
/// `ca`, else `None`.
async fn https_through(addr: std::net::SocketAddr, ca: &weir_testkit::TestCa) -> Option<String> {
    let mut s = weir_testkit::TlsClient::new("shop.example.com").connect(addr, ca.roots()).await.ok()?;
    weir_testkit::https_get(&mut s.stream, "shop.example.com", "/").await.ok()
}

/// The first HTTPS answer whose certificate `ca` signed, waiting for weir to serve one
/// (`why` and weir's log if it never does).
async fn served_by(addr: std::net::SocketAddr, ca: &weir_testkit::TestCa, weir: &Weir, why: &str) -> String {
    let deadline = std::time::Instant::now() + TEST_TIMEOUT;
    loop {
        if let Some(text) = https_through(addr, ca).await {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "{why}; weir's log:\n{}", weir.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A Gateway's `credentialName` is a Secret in the cluster: the HTTPS server presents
/// it, and when the Secret is rotated, new connections get the new certificate
/// without a restart while the old connection keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_changes_the_served_certificate() {
    let v1 = Backend::start("reviews", "v1").await;
    let (ca1, ca2) = (weir_testkit::TestCa::new("ca-one"), weir_testkit::TestCa::new("ca-two"));
    let port = free_port();
    let api = FakeApiServer::start().await;
    api.apply(service());
    api.apply(pod("reviews-v1", "v1"));
    api.apply(slice("reviews-a", "reviews-v1", v1.port()));
    api.apply(tls_secret("shop-cert", &ca1.leaf(&["shop.example.com"])));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                     "metadata": {"name": "edge", "namespace": "shop"},
                     "spec": {"selector": {"istio": "ingressgateway"},
                              "servers": [{"port": {"number": port, "name": "https", "protocol": "HTTPS"},
                                           "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"},
                                           "hosts": ["shop.example.com"]}]}}));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": "shop", "namespace": "shop"},
                     "spec": {"hosts": ["shop.example.com"], "gateways": ["edge"],
                              "http": [{"route": [{"destination": {"host": "reviews"}}]}]}}));
    let dir = ConfigDir::new();
    let kubeconfig = dir.write("kubeconfig", &api.kubeconfig());
    let creds = dir.path().join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let mut args: Vec<&OsStr> = vec![
        "--kubernetes".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "--credentials".as_ref(),
        creds.as_os_str(),
    ];
    args.extend(
        [
            "--listen-address",
            "127.0.0.1",
            "--mesh-listener",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--namespace",
            "shop",
            "--access-log-format",
            "off",
        ]
        .map(OsStr::new),
    );
    let weir = Weir::spawn(&args, &[]);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();

    // The Secret's certificate is served (it verifies against its CA), and the request
    // reaches the service behind the host.
    let first = served_by(addr, &ca1, &weir, "no HTTPS with the first certificate").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("\"service\":\"reviews\""), "{first}");
    assert!(https_through(addr, &ca2).await.is_none(), "the second CA does not sign the first certificate");
    let mut kept =
        weir_testkit::TlsClient::new("shop.example.com").connect(addr, ca1.roots()).await.expect("handshake");

    // Rotation: the Secret now holds a certificate from another CA.
    api.apply(tls_secret("shop-cert", &ca2.leaf(&["shop.example.com"])));
    let rotated = served_by(addr, &ca2, &weir, "the rotated certificate is not served").await;
    assert!(rotated.contains("\"service\":\"reviews\""), "{rotated}");
    assert!(https_through(addr, &ca1).await.is_none(), "new connections no longer get the old certificate");
    // The connection made before the rotation still carries a request.
    let text = weir_testkit::https_get(&mut kept.stream, "shop.example.com", "/").await.unwrap();
    assert!(text.contains("\"service\":\"reviews\""), "{text}");
}
