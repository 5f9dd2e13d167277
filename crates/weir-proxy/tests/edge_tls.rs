//! The edge: HTTPS, TLS and TCP gateway servers with real TLS handshakes (certificates
//! made in the test by rcgen, credentials in a directory as `weir run --credentials`
//! reads them): SNI picks the certificate, ALPN gives HTTP/2, MUTUAL checks client
//! certificates, PASSTHROUGH reaches a TLS backend the client verifies end to end,
//! rotated certificates serve new connections, and TCP routes split connections by
//! weight.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Harness, service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_compile::Instance;
use weir_testkit::{Backend, TEST_TIMEOUT, TcpNamed, TestCa, TlsClient, TlsNamed, https_get, wait_for_async};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d =
        std::env::temp_dir().join(format!("weir-edge-{tag}-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn gateway_with_credentials(yaml: &str, creds: &Path) -> Harness {
    let creds = creds.to_path_buf();
    Harness::with_config(yaml, Instance::default(), move |c| c.credentials = Some(creds)).await
}

fn leaf_names(der: &[u8]) -> String {
    // The SANs appear in the DER as plain text; enough to tell two test leaves apart.
    String::from_utf8_lossy(der).into_owned()
}

const TWO_HTTPS_SERVERS: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: a-cert}
    hosts: ['*.a.example.com']
  - port: {number: 443, name: https-b, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: b-cert}
    hosts: [b.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: istio-system}
spec:
  hosts: ['*.a.example.com']
  gateways: [gw]
  http:
  - route: [{destination: {host: app-a.istio-system.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: istio-system}
spec:
  hosts: [b.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: app-b.istio-system.svc.cluster.local}}]
---
";

#[tokio::test]
async fn sni_picks_the_certificate_and_the_request_reaches_the_host_behind_it() {
    let (app_a, app_b) = (Backend::start("app-a", "v1").await, Backend::start("app-b", "v1").await);
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("sni");
    ca.write_credential(&creds, "a-cert", &ca.leaf(&["*.a.example.com"]), false);
    ca.write_credential(&creds, "b-cert", &ca.leaf(&["b.example.com"]), false);
    let yaml = format!(
        "{}{}{TWO_HTTPS_SERVERS}",
        service("app-a", "istio-system", "HTTP", &[&app_a]),
        service("app-b", "istio-system", "HTTP", &[&app_b])
    );
    let h = gateway_with_credentials(&yaml, &creds).await;
    let addr = h.gateway(443);

    let mut a = TlsClient::new("www.a.example.com").connect(addr, ca.roots()).await.expect("handshake a");
    assert!(leaf_names(a.peer_cert.as_ref().unwrap()).contains("*.a.example.com"));
    let text = https_get(&mut a.stream, "www.a.example.com", "/x").await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"service\":\"app-a\""), "{text}");
    assert!(text.contains("\"x-forwarded-proto\":\"https\""), "the upstream learns the client used TLS: {text}");

    let mut b = TlsClient::new("b.example.com").connect(addr, ca.roots()).await.expect("handshake b");
    assert!(leaf_names(b.peer_cert.as_ref().unwrap()).contains("b.example.com"));
    let text = https_get(&mut b.stream, "b.example.com", "/").await.unwrap();
    assert!(text.contains("\"service\":\"app-b\""), "{text}");

    // A name no server covers finds no filter chain: the handshake fails.
    assert!(TlsClient::new("c.example.com").connect(addr, ca.roots()).await.is_err());
    // Plain HTTP on the HTTPS port is not served.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: b.example.com\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(TEST_TIMEOUT, plain.read_to_end(&mut buf)).await.expect("closed");
    assert!(!String::from_utf8_lossy(&buf).contains("app-b"));
}

#[tokio::test]
async fn alpn_h2_serves_http2_over_tls() {
    let app = Backend::start("app-b", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("alpn");
    ca.write_credential(&creds, "a-cert", &ca.leaf(&["*.a.example.com"]), false);
    ca.write_credential(&creds, "b-cert", &ca.leaf(&["b.example.com"]), false);
    let yaml = format!(
        "{}{}{TWO_HTTPS_SERVERS}",
        service("app-a", "istio-system", "HTTP", &[&app]),
        service("app-b", "istio-system", "HTTP", &[&app])
    );
    let h = gateway_with_credentials(&yaml, &creds).await;
    let client = TlsClient { alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()], ..TlsClient::new("b.example.com") };
    let s = client.connect(h.gateway(443), ca.roots()).await.expect("handshake");
    assert_eq!(s.alpn.as_deref(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s.stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req =
        http::Request::get("https://b.example.com/h2").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
    let resp = send.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("\"path\":\"/h2\"") && text.contains("app-b"), "{text}");

    // http/1.1 only: HTTP/1.1.
    let c1 = TlsClient { alpn: vec![b"http/1.1".to_vec()], ..TlsClient::new("b.example.com") };
    let mut s1 = c1.connect(h.gateway(443), ca.roots()).await.unwrap();
    assert_eq!(s1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(https_get(&mut s1.stream, "b.example.com", "/").await.unwrap().starts_with("HTTP/1.1 200"));
}

fn mutual_gateway(mode: &str, extra: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls: {{mode: {mode}, credentialName: m-cert{extra}}}
    hosts: [m.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: m, namespace: istio-system}}
spec:
  hosts: [m.example.com]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: app.istio-system.svc.cluster.local}}}}]
---
"
    )
}

/// A handshake whose result (TLS 1.3 reports a refused client certificate on the first
/// read) is a response from the upstream.
async fn served(client: &TlsClient, addr: std::net::SocketAddr, ca: &TestCa) -> bool {
    served_as(client, addr, ca, "m.example.com").await
}

/// [`served`] for requests to `host`.
async fn served_as(client: &TlsClient, addr: std::net::SocketAddr, ca: &TestCa, host: &str) -> bool {
    let Ok(mut s) = client.connect(addr, ca.roots()).await else { return false };
    matches!(https_get(&mut s.stream, host, "/").await, Ok(t) if t.starts_with("HTTP/1.1 200"))
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let other_ca = TestCa::new("other-ca");
    let creds = temp_dir("mtls");
    ca.write_credential(&creds, "m-cert", &ca.leaf(&["m.example.com"]), true);
    let yaml = format!("{}{}", service("app", "istio-system", "HTTP", &[&app]), mutual_gateway("MUTUAL", ""));
    let h = gateway_with_credentials(&yaml, &creds).await;
    let addr = h.gateway(443);
    assert!(!served(&TlsClient::new("m.example.com"), addr, &ca).await, "no client certificate: refused");
    let good = TlsClient { client_cert: Some(ca.leaf(&["client.example.com"])), ..TlsClient::new("m.example.com") };
    assert!(served(&good, addr, &ca).await, "a certificate from the CA: served");
    let stranger =
        TlsClient { client_cert: Some(other_ca.leaf(&["client.example.com"])), ..TlsClient::new("m.example.com") };
    assert!(!served(&stranger, addr, &ca).await, "a certificate from another CA: refused");
}

#[tokio::test]
async fn optional_mutual_and_subject_alt_names() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("optmtls");
    ca.write_credential(&creds, "m-cert", &ca.leaf(&["m.example.com"]), true);
    let yaml = format!(
        "{}{}",
        service("app", "istio-system", "HTTP", &[&app]),
        mutual_gateway("OPTIONAL_MUTUAL", ", subjectAltNames: ['spiffe://good/client']")
    );
    let h = gateway_with_credentials(&yaml, &creds).await;
    let addr = h.gateway(443);
    assert!(served(&TlsClient::new("m.example.com"), addr, &ca).await, "OPTIONAL_MUTUAL lets a client without one in");
    let good = TlsClient { client_cert: Some(ca.leaf(&["spiffe://good/client"])), ..TlsClient::new("m.example.com") };
    assert!(served(&good, addr, &ca).await, "the SAN is accepted");
    let wrong = TlsClient { client_cert: Some(ca.leaf(&["spiffe://bad/client"])), ..TlsClient::new("m.example.com") };
    assert!(!served(&wrong, addr, &ca).await, "a SAN not listed is refused");
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("rotate");
    ca.write_credential(&creds, "m-cert", &ca.leaf(&["m.example.com", "first.example.com"]), false);
    let yaml = format!("{}{}", service("app", "istio-system", "HTTP", &[&app]), mutual_gateway("SIMPLE", ""));
    let h = gateway_with_credentials(&yaml, &creds).await;
    let addr = h.gateway(443);
    let mut open = TlsClient::new("m.example.com").connect(addr, ca.roots()).await.unwrap();
    assert!(leaf_names(open.peer_cert.as_ref().unwrap()).contains("first.example.com"));
    ca.write_credential(&creds, "m-cert", &ca.leaf(&["m.example.com", "second.example.com"]), false);
    wait_for_async(
        || async {
            let s = TlsClient::new("m.example.com").connect(addr, ca.roots()).await.unwrap();
            leaf_names(s.peer_cert.as_ref().unwrap()).contains("second.example.com")
        },
        TEST_TIMEOUT,
    )
    .await;
    // The connection opened before the rotation still works.
    let text = https_get(&mut open.stream, "m.example.com", "/").await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_missing_credential_fails_only_its_own_server() {
    let app = Backend::start("app-b", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("missing");
    // a-cert is never written.
    ca.write_credential(&creds, "b-cert", &ca.leaf(&["b.example.com"]), false);
    let yaml = format!(
        "{}{}{TWO_HTTPS_SERVERS}",
        service("app-a", "istio-system", "HTTP", &[&app]),
        service("app-b", "istio-system", "HTTP", &[&app])
    );
    let h = gateway_with_credentials(&yaml, &creds).await;
    let addr = h.gateway(443);
    assert!(TlsClient::new("www.a.example.com").connect(addr, ca.roots()).await.is_err());
    let mut b = TlsClient::new("b.example.com").connect(addr, ca.roots()).await.expect("b still serves");
    assert!(https_get(&mut b.stream, "b.example.com", "/").await.unwrap().contains("app-b"));
    // Writing the credential later brings the server up without a reload.
    ca.write_credential(&creds, "a-cert", &ca.leaf(&["*.a.example.com"]), false);
    wait_for_async(
        || async { TlsClient::new("www.a.example.com").connect(addr, ca.roots()).await.is_ok() },
        TEST_TIMEOUT,
    )
    .await;
}

#[tokio::test]
async fn passthrough_reaches_the_tls_backend_chosen_by_sni() {
    let ca = TestCa::new("backend-ca");
    let nginx = TlsNamed::start("nginx-backend", &ca.leaf(&["nginx.example.com"])).await;
    let other = TlsNamed::start("other-backend", &ca.leaf(&["other.example.com"])).await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: nginx, namespace: istio-system}}
spec:
  hosts: [nginx.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: other, namespace: istio-system}}
spec:
  hosts: [other.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: passthrough, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: tls, protocol: TLS}}
    tls: {{mode: PASSTHROUGH}}
    hosts: ['*.example.com']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: sni, namespace: istio-system}}
spec:
  hosts: ['*.example.com']
  gateways: [passthrough]
  tls:
  - match: [{{port: 443, sniHosts: [nginx.example.com]}}]
    route: [{{destination: {{host: nginx.example.com, port: {{number: 443}}}}}}]
  - match: [{{port: 443, sniHosts: ['*.example.com']}}]
    route: [{{destination: {{host: other.example.com, port: {{number: 443}}}}}}]
---
",
        nginx.port(),
        other.port()
    );
    let h = Harness::start(&yaml, None).await;
    let addr = h.gateway(443);
    // The client verifies the backend's own certificate: weir never decrypts.
    let mut s = TlsClient::new("nginx.example.com").connect(addr, ca.roots()).await.expect("end-to-end TLS");
    let text = https_get(&mut s.stream, "nginx.example.com", "/").await.unwrap();
    assert!(text.ends_with("nginx-backend"), "{text}");
    let mut s = TlsClient::new("other.example.com").connect(addr, ca.roots()).await.expect("second route");
    assert!(https_get(&mut s.stream, "other.example.com", "/").await.unwrap().ends_with("other-backend"));
    // An SNI no route covers: closed.
    assert!(TlsClient::new("x.elsewhere.org").connect(addr, ca.roots()).await.is_err());
}

#[tokio::test]
async fn tcp_routes_split_connections_by_weight_and_pass_half_close() {
    let v1 = TcpNamed::start("tcp-echo-v1").await;
    let v2 = TcpNamed::start("tcp-echo-v2").await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: tcp-echo, namespace: istio-system}}
spec:
  hosts: [tcp-echo.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{tcp: {}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{tcp: {}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: tcp-echo, namespace: istio-system}}
spec:
  host: tcp-echo.istio-system.svc.cluster.local
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31400, name: tcp, protocol: TCP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tcp-echo, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [tcp-gw]
  tcp:
  - match: [{{port: 31400}}]
    route:
    - {{destination: {{host: tcp-echo.istio-system.svc.cluster.local, port: {{number: 9000}}, subset: v1}}, weight: 80}}
    - {{destination: {{host: tcp-echo.istio-system.svc.cluster.local, port: {{number: 9000}}, subset: v2}}, weight: 20}}
---
",
        v1.port(),
        v2.port()
    );
    let h = Harness::start(&yaml, None).await;
    let addr = h.gateway(31400);
    let (mut n1, mut n2) = (0, 0);
    for i in 0..200 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let msg = format!("hello {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        // Half-close: the echo server sees our FIN, finishes echoing, then closes.
        s.shutdown().await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(TEST_TIMEOUT, s.read_to_string(&mut out)).await.expect("closed").unwrap();
        let (name, echoed) = out.split_once('\n').expect("name line");
        assert_eq!(echoed, msg);
        match name {
            "tcp-echo-v1" => n1 += 1,
            "tcp-echo-v2" => n2 += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // 80/20 over 200 connections: v2 expects 40, sd ~5.7; bounds are > 4 sd.
    assert!((16..=64).contains(&n2), "v1 {n1}, v2 {n2}");
    assert_eq!(n1 + n2, 200);
    // Istio's TCP metrics, per destination version: connections and bytes.
    let stats = weir_testkit::http1_client().get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
    let sum = |metric: &str, version: &str| -> u64 {
        stats
            .lines()
            .filter(|l| {
                l.starts_with(&format!("{metric}{{")) && l.contains(&format!("destination_version=\"{version}\""))
            })
            .filter(|l| {
                l.contains("request_protocol=\"tcp\"")
                    && l.contains("destination_service=\"tcp-echo.istio-system.svc.cluster.local\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(sum("istio_tcp_connections_opened_total", "v1"), n1, "{stats}");
    assert_eq!(sum("istio_tcp_connections_opened_total", "v2"), n2);
    wait_for_async(
        || async {
            let stats = weir_testkit::http1_client().get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
            stats
                .lines()
                .filter(|l| l.starts_with("istio_tcp_connections_closed_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
                == 200
        },
        TEST_TIMEOUT,
    )
    .await;
    let stats = weir_testkit::http1_client().get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
    let total = |metric: &str| -> u64 {
        stats
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let sent_by_clients: u64 = (0..200).map(|i| format!("hello {i}").len() as u64).sum();
    assert_eq!(total("istio_tcp_received_bytes_total"), sent_by_clients);
    assert_eq!(total("istio_tcp_sent_bytes_total"), sent_by_clients + 200 * "tcp-echo-vN\n".len() as u64);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn https_redirect_answers_301_on_the_plain_port_while_https_serves() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("redirect");
    ca.write_credential(&creds, "m-cert", &ca.leaf(&["m.example.com"]), false);
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    tls: {{httpsRedirect: true}}
    hosts: [m.example.com]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: m-cert}}
    hosts: [m.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: m, namespace: istio-system}}
spec:
  hosts: [m.example.com]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: app.istio-system.svc.cluster.local}}}}]
",
        service("app", "istio-system", "HTTP", &[&app])
    );
    let h = gateway_with_credentials(&yaml, &creds).await;
    let r = weir_testkit::http1_client().get(&h.gw_url(80, "/a?b=1"), "m.example.com", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers.get("location").unwrap(), "https://m.example.com/a?b=1");
    assert_eq!(app.hits(), 0);
    let mut s = TlsClient::new("m.example.com").connect(h.gateway(443), ca.roots()).await.unwrap();
    assert!(https_get(&mut s.stream, "m.example.com", "/a").await.unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(app.hits(), 1);
}

/// A client limited to TLS 1.2, with a certificate of its own.
async fn tls12_client(addr: std::net::SocketAddr, sni: &str, ca: &TestCa) -> std::io::Result<weir_testkit::TlsSession> {
    TlsClient { max_tls12: true, ..TlsClient::new(sni) }.connect(addr, ca.roots()).await
}

#[tokio::test]
async fn file_paths_protocol_versions_and_certificate_pins() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let dir = temp_dir("files");
    let leaf = ca.leaf(&["f.example.com"]);
    std::fs::write(dir.join("server.pem"), &leaf.cert).unwrap();
    std::fs::write(dir.join("server.key"), &leaf.key).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.cert).unwrap();
    let client = ca.leaf(&["client.example.com"]);
    let other_client = ca.leaf(&["client.example.com"]);
    let der = rustls_pki_types_der(&client.cert);
    let hash: String = ring_sha256_hex(&der);
    let spki_client = ca.leaf(&["spki.example.com"]);
    let spki = spki_pin(&rustls_pki_types_der(&spki_client.cert));
    let path = |f: &str| dir.join(f).display().to_string();
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https-13, protocol: HTTPS}}
    tls: {{mode: SIMPLE, serverCertificate: {}, privateKey: {}, minProtocolVersion: TLSV1_3}}
    hosts: [f.example.com]
  - port: {{number: 8443, name: https-pinned, protocol: HTTPS}}
    tls:
      mode: MUTUAL
      serverCertificate: {}
      privateKey: {}
      caCertificates: {}
      verifyCertificateHash: ['{hash}']
    hosts: [f.example.com]
  - port: {{number: 9443, name: https-spki, protocol: HTTPS}}
    tls:
      mode: MUTUAL
      serverCertificate: {}
      privateKey: {}
      caCertificates: {}
      verifyCertificateSpki: ['{spki}']
    hosts: [f.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: f, namespace: istio-system}}
spec:
  hosts: [f.example.com]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: app.istio-system.svc.cluster.local}}}}]
",
        service("app", "istio-system", "HTTP", &[&app]),
        path("server.pem"),
        path("server.key"),
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
    );
    let h = Harness::start(&yaml, None).await;
    let v13 = h.gateway(443);
    let mut s = TlsClient::new("f.example.com").connect(v13, ca.roots()).await.expect("TLS 1.3 from file paths");
    assert!(https_get(&mut s.stream, "f.example.com", "/").await.unwrap().starts_with("HTTP/1.1 200"));
    assert!(tls12_client(v13, "f.example.com", &ca).await.is_err(), "minProtocolVersion TLSV1_3 refuses TLS 1.2");

    let pinned = h.gateway(8443);
    let good = TlsClient { client_cert: Some(client), ..TlsClient::new("f.example.com") };
    let mut s = good.connect(pinned, ca.roots()).await.unwrap();
    assert!(
        https_get(&mut s.stream, "f.example.com", "/").await.unwrap().starts_with("HTTP/1.1 200"),
        "the pinned certificate"
    );
    let unpinned = TlsClient { client_cert: Some(other_client), ..TlsClient::new("f.example.com") };
    let refused = match unpinned.connect(pinned, ca.roots()).await {
        Err(_) => true,
        Ok(mut s) => {
            https_get(&mut s.stream, "f.example.com", "/").await.map_or(true, |t| !t.starts_with("HTTP/1.1 200"))
        }
    };
    assert!(refused, "a certificate from the same CA that is not pinned is refused");

    let by_key = h.gateway(9443);
    let good = TlsClient { client_cert: Some(spki_client), ..TlsClient::new("f.example.com") };
    let mut s = good.connect(by_key, ca.roots()).await.unwrap();
    assert!(
        https_get(&mut s.stream, "f.example.com", "/").await.unwrap().starts_with("HTTP/1.1 200"),
        "the pinned key"
    );
    let other = TlsClient { client_cert: Some(ca.leaf(&["spki.example.com"])), ..TlsClient::new("f.example.com") };
    let refused = match other.connect(by_key, ca.roots()).await {
        Err(_) => true,
        Ok(mut s) => {
            https_get(&mut s.stream, "f.example.com", "/").await.map_or(true, |t| !t.starts_with("HTTP/1.1 200"))
        }
    };
    assert!(refused, "another key (same name, same CA) is refused");
}

/// base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo, as Istio's
/// `verifyCertificateSpki` takes it.
fn spki_pin(der: &[u8]) -> String {
    use base64::Engine as _;
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let d = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    base64::engine::general_purpose::STANDARD.encode(d.as_ref())
}

fn rustls_pki_types_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).next().unwrap().unwrap().to_vec()
}

fn ring_sha256_hex(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[tokio::test]
async fn generic_secret_keys_and_a_separate_cacert_credential() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("generic");
    let leaf = ca.leaf(&["m.example.com"]);
    // Istio's generic secret: cert / key, and the CA in `<name>-cacert`.
    std::fs::create_dir_all(creds.join("m-cert")).unwrap();
    std::fs::write(creds.join("m-cert/cert"), &leaf.cert).unwrap();
    std::fs::write(creds.join("m-cert/key"), &leaf.key).unwrap();
    std::fs::create_dir_all(creds.join("m-cert-cacert")).unwrap();
    std::fs::write(creds.join("m-cert-cacert/cacert"), &ca.cert).unwrap();
    let yaml = format!("{}{}", service("app", "istio-system", "HTTP", &[&app]), mutual_gateway("MUTUAL", ""));
    let h = gateway_with_credentials(&yaml, &creds).await;
    let addr = h.gateway(443);
    let good = TlsClient { client_cert: Some(ca.leaf(&["c.example.com"])), ..TlsClient::new("m.example.com") };
    assert!(served(&good, addr, &ca).await);
    assert!(!served(&TlsClient::new("m.example.com"), addr, &ca).await);
}

/// A TCP route's cluster keeps its DestinationRule's `maxConnections`: past it a new
/// connection is closed at once (UO) while the open one keeps working; a dead
/// endpoint fails the connect (UF).
#[tokio::test]
async fn tcp_routes_keep_the_connection_limit_and_report_connect_failures() {
    let echo = TcpNamed::start("tcp-echo").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: istio-system}}
spec:
  hosts: [echo.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tcp: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: dead, namespace: istio-system}}
spec:
  hosts: [dead.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tcp: {dead_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: istio-system}}
spec:
  host: echo.istio-system.svc.cluster.local
  trafficPolicy: {{connectionPool: {{tcp: {{maxConnections: 1, connectTimeout: 5s}}}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31400, name: tcp, protocol: TCP}}
    hosts: ['*']
  - port: {{number: 31401, name: tcp-dead, protocol: TCP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tcp, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [tcp-gw]
  tcp:
  - match: [{{port: 31400}}]
    route: [{{destination: {{host: echo.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
  - match: [{{port: 31401}}]
    route: [{{destination: {{host: dead.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
---
",
        echo.port()
    );
    let h = Harness::start(&yaml, None).await;
    let mut first = tokio::net::TcpStream::connect(h.gateway(31400)).await.unwrap();
    let mut line = [0u8; 9];
    tokio::time::timeout(TEST_TIMEOUT, first.read_exact(&mut line)).await.unwrap().unwrap();
    assert_eq!(&line, b"tcp-echo\n");
    // The one connection the cluster allows is in use: the next is closed unanswered.
    let mut second = tokio::net::TcpStream::connect(h.gateway(31400)).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(TEST_TIMEOUT, second.read_to_end(&mut buf)).await.expect("closed").unwrap();
    assert!(buf.is_empty(), "{buf:?}");
    // The first still works.
    first.write_all(b"ping").await.unwrap();
    let mut pong = [0u8; 4];
    tokio::time::timeout(TEST_TIMEOUT, first.read_exact(&mut pong)).await.unwrap().unwrap();
    assert_eq!(&pong, b"ping");
    // A dead endpoint: closed, counted as a connect failure.
    let mut to_dead = tokio::net::TcpStream::connect(h.gateway(31401)).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(TEST_TIMEOUT, to_dead.read_to_end(&mut buf)).await.expect("closed");
    let stats = weir_testkit::http1_client().get(&h.admin_url("/stats/prometheus"), "", &[]).await.text();
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("istio_tcp_connections_closed_total{") && l.contains("response_flags=\"UO\"")),
        "{stats}"
    );
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("istio_tcp_connections_closed_total{") && l.contains("response_flags=\"UF\"")),
        "{stats}"
    );
}

/// TCP route conditions: `destinationSubnets` against the address the client
/// connected to, `sourceLabels` and `sourceNamespace` against this instance's.
#[tokio::test]
async fn tcp_route_conditions_subnets_and_source_labels() {
    let near = TcpNamed::start("near").await;
    let far = TcpNamed::start("far").await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: near, namespace: istio-system}}
spec:
  hosts: [near.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tcp: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: far, namespace: istio-system}}
spec:
  hosts: [far.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tcp: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31400, name: tcp, protocol: TCP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tcp, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [tcp-gw]
  tcp:
  - match: [{{destinationSubnets: [10.0.0.0/8]}}]
    route: [{{destination: {{host: far.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
  - match: [{{sourceLabels: {{istio: egressgateway}}}}]
    route: [{{destination: {{host: far.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
  - match: [{{sourceNamespace: elsewhere}}]
    route: [{{destination: {{host: far.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
  - match: [{{destinationSubnets: [127.0.0.0/8], sourceLabels: {{istio: ingressgateway}}}}]
    route: [{{destination: {{host: near.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
---
",
        near.port(),
        far.port()
    );
    let h = Harness::start(&yaml, None).await;
    let mut s = tokio::net::TcpStream::connect(h.gateway(31400)).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(TEST_TIMEOUT, s.read_to_string(&mut out)).await.unwrap().unwrap();
    assert_eq!(out, "near\n", "10.0.0.0/8 and the other labels do not match; 127.0.0.0/8 with ours does");
}

/// `maxProtocolVersion` and `cipherSuites` decide what the handshake negotiates.
#[tokio::test]
async fn max_protocol_version_and_cipher_suites_are_negotiated() {
    let app = Backend::start("app", "v1").await;
    let ca = TestCa::new("edge-ca");
    let creds = temp_dir("suites");
    ca.write_credential(&creds, "m-cert", &ca.leaf(&["m.example.com"]), false);
    let yaml = format!(
        "{}{}",
        service("app", "istio-system", "HTTP", &[&app]),
        mutual_gateway("SIMPLE", ", maxProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256]")
    );
    let h = gateway_with_credentials(&yaml, &creds).await;
    let mut s = TlsClient::new("m.example.com").connect(h.gateway(443), ca.roots()).await.expect("TLS 1.2");
    assert_eq!(s.version.as_deref(), Some("TLSv1_2"), "a TLS 1.3 client is held to 1.2");
    assert_eq!(
        s.suite.as_deref(),
        Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        "the only suite allowed (not the default first choice)"
    );
    assert!(https_get(&mut s.stream, "m.example.com", "/").await.unwrap().starts_with("HTTP/1.1 200"));
}

/// A TCP route's `gateways` match: the route applies on the listener of the gateway
/// it names only.
#[tokio::test]
async fn tcp_route_gateways_match_picks_the_listener() {
    let a = TcpNamed::start("via-a").await;
    let b = TcpNamed::start("via-b").await;
    let entry = |name: &str, port: u16| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: istio-system}}
spec:
  hosts: [{name}.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tcp: {port}}}}}]
---
"
        )
    };
    let yaml = format!(
        "{}{}apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw-a, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: 31400, name: tcp, protocol: TCP}}, hosts: ['*']}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw-b, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: 31401, name: tcp, protocol: TCP}}, hosts: ['*']}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tcp, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [gw-a, gw-b]
  tcp:
  - match: [{{gateways: [gw-b]}}]
    route: [{{destination: {{host: b.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
  - route: [{{destination: {{host: a.istio-system.svc.cluster.local, port: {{number: 9000}}}}}}]
---
",
        entry("a", a.port()),
        entry("b", b.port())
    );
    let h = Harness::start(&yaml, None).await;
    for (port, want) in [(31400, "via-a\n"), (31401, "via-b\n")] {
        let mut s = tokio::net::TcpStream::connect(h.gateway(port)).await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(TEST_TIMEOUT, s.read_to_string(&mut out)).await.unwrap().unwrap();
        assert_eq!(out, want, "port {port}");
    }
}
