//! TLS origination (DestinationRule `trafficPolicy.tls` SIMPLE and MUTUAL) with real
//! handshakes: the client speaks plain HTTP to the mesh listener or a gateway, weir
//! speaks TLS to the upstream ([`TlsBackend`], which reports the SNI, ALPN and client
//! certificate it saw). Certificates are made by rcgen in each test; CA bundles and
//! credentials sit in a temporary directory as `weir run --credentials` reads them.

mod common;

use std::path::{Path, PathBuf};

use common::{GATEWAY, Harness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_compile::Instance;
use weir_testkit::{TEST_TIMEOUT, TestCa, TlsBackend, http1_client, wait_for, wait_for_async};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("weir-origin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A mesh proxy in namespace `ns` reading credentials from `creds`.
async fn mesh(yaml: &str, creds: &Path) -> Harness {
    let creds = creds.to_path_buf();
    let instance = Instance { namespace: "ns".into(), mesh: true, ..Instance::default() };
    Harness::with_config(yaml, instance, move |c| c.credentials = Some(creds)).await
}

/// An external `api.example.test` on port 80 (`protocol`) served by `port` on 127.0.0.1,
/// and its DestinationRule with `tls` (a YAML flow mapping).
fn api(port: u16, protocol: &str, tls: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api, namespace: ns}}
spec:
  hosts: [api.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: {protocol}}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: api, namespace: ns}}
spec:
  host: api.example.test
  trafficPolicy:
    tls: {tls}
---
"
    )
}

/// Istio's egress "TLS origination" task: the ServiceEntry declares port 80 as HTTP
/// with targetPort 443 (here: the backend's port) and a port 443 HTTPS, resolution DNS;
/// the DestinationRule upgrades port 80 with `mode: SIMPLE`. The application sends
/// `http://edition.example.test/politics`; weir sends HTTPS, with SNI set to the name
/// it resolves. (The endpoint `localhost` stands in for the external name, which the
/// task resolves itself.)
#[tokio::test]
async fn egress_tls_origination_upgrades_plain_http_on_port_80() {
    let ca = TestCa::new("public-ca");
    let backend = TlsBackend::start("edition", &ca.leaf(&["localhost"])).await;
    let dir = temp_dir("task");
    ca.write_ca(&dir.join("ca.pem"));
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: edition-example-test, namespace: ns}}
spec:
  hosts: [edition.example.test]
  ports:
  - {{number: 80, name: http-port, protocol: HTTP, targetPort: {port}}}
  - {{number: 443, name: https-port, protocol: HTTPS, targetPort: {port}}}
  resolution: DNS
  endpoints: [{{address: localhost}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: edition-example-test, namespace: ns}}
spec:
  host: edition.example.test
  trafficPolicy:
    portLevelSettings:
    - port: {{number: 80}}
      tls:
        mode: SIMPLE # initiates HTTPS when accessing edition.example.test
        caCertificates: {ca}
---
",
        port = backend.port(),
        ca = dir.join("ca.pem").display()
    );
    let h = mesh(&yaml, &dir).await;
    let c = http1_client();
    for _ in 0..3 {
        let r = c.get(&h.mesh_url("/politics"), "edition.example.test", &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        assert_eq!(body["service"], "edition");
        assert_eq!(body["path"], "/politics");
        assert_eq!(body["authority"], "edition.example.test");
        assert_eq!(body["protocol"], "HTTP/1.1");
        assert_eq!(body["alpn"], "http/1.1");
        assert_eq!(body["sni"], "localhost", "a DNS endpoint's name is the SNI");
    }
    // One TLS session carried every request: idle TLS connections are reused.
    assert_eq!(backend.sessions().len(), 1, "{:?}", backend.sessions());
    let dump = c.get(&h.admin_url("/config_dump"), "", &[]).await.json();
    let cluster = |name: &str| {
        dump["clusters"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or_default()
    };
    assert_eq!(cluster("outbound|80||edition.example.test")["upstream_tls"]["mode"], "SIMPLE");
    assert!(cluster("outbound|443||edition.example.test")["upstream_tls"].is_null(), "port 443 is not upgraded");
}

/// A certificate the configured CA did not sign fails the handshake: a connect failure
/// (503 `UF`, retried under the default `connect-failure`), counted as one, and by
/// outlier detection, which ejects the host.
#[tokio::test]
async fn a_certificate_from_another_ca_is_a_connect_failure() {
    let (trusted, other) = (TestCa::new("trusted"), TestCa::new("other"));
    let backend = TlsBackend::start("api", &other.leaf(&["api.example.test"])).await;
    let dir = temp_dir("other-ca");
    trusted.write_ca(&dir.join("ca.pem"));
    let tls = format!(
        "{{mode: SIMPLE, caCertificates: {}}}
    outlierDetection: {{consecutive5xxErrors: 3, interval: 1h, baseEjectionTime: 1h, maxEjectionPercent: 100}}",
        dir.join("ca.pem").display()
    );
    let h = mesh(&api(backend.port(), "HTTP", &tls), &dir).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(h.requests_with(503, "UF,URX").await, 1);
    assert!(backend.sessions().is_empty());
    wait_for(|| backend.failed_handshakes() >= 3, TEST_TIMEOUT).await;
    let cluster = "outbound|80||api.example.test";
    assert_eq!(h.cluster_stat(cluster, "upstream_cx_connect_fail").await, Some(3));
    assert_eq!(h.cluster_stat(cluster, "outlier_detection.ejections_active").await, Some(1));
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(h.requests_with(503, "UH").await, 1, "the host is ejected");
}

/// Without `subjectAltNames` the certificate must be valid for the name the
/// connection is for: the SNI, else (an IP endpoint) the service host. With them, it
/// must carry one of them (DNS or URI SAN), whatever the host.
#[tokio::test]
async fn subject_alt_names_and_host_names_are_checked() {
    let ca = TestCa::new("ca");
    let dir = temp_dir("sans");
    ca.write_ca(&dir.join("ca.pem"));
    let ca_path = dir.join("ca.pem").display().to_string();
    let right = TlsBackend::start("api", &ca.leaf(&["api.example.test", "spiffe://example.test/api"])).await;
    let wrong = TlsBackend::start("wrong", &ca.leaf(&["wrong.example.test"])).await;
    let c = http1_client();
    let status = |h: &Harness| {
        let url = h.mesh_url("/");
        async move { http1_client().get(&url, "api.example.test", &[]).await.status }
    };

    // No SANs, no SNI: the service host is checked.
    let h = mesh(&api(right.port(), "HTTP", &format!("{{mode: SIMPLE, caCertificates: {ca_path}}}")), &dir).await;
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["sni"].is_null(), "an IP endpoint without `sni` gets no SNI");
    h.reload(&api(wrong.port(), "HTTP", &format!("{{mode: SIMPLE, caCertificates: {ca_path}}}")));
    assert_eq!(status(&h).await, 503, "wrong.example.test is not api.example.test");

    // A listed SAN the certificate does not carry.
    let tls = format!("{{mode: SIMPLE, caCertificates: {ca_path}, subjectAltNames: [other.example.test]}}");
    h.reload(&api(right.port(), "HTTP", &tls));
    assert_eq!(status(&h).await, 503);
    // A URI SAN it carries.
    let tls = format!("{{mode: SIMPLE, caCertificates: {ca_path}, subjectAltNames: [spiffe://example.test/api]}}");
    h.reload(&api(right.port(), "HTTP", &tls));
    assert_eq!(status(&h).await, 200);
    // A listed DNS SAN makes a certificate for another name acceptable.
    let tls = format!("{{mode: SIMPLE, caCertificates: {ca_path}, subjectAltNames: [wrong.example.test]}}");
    h.reload(&api(wrong.port(), "HTTP", &tls));
    assert_eq!(status(&h).await, 200);
    assert!(h.requests_with(503, "UF,URX").await >= 2);
}

/// `insecureSkipVerify: true` needs no CA; without it and without a CA there is
/// nothing to verify against (weir has no system trust store): the handshake fails.
#[tokio::test]
async fn insecure_skip_verify_works_without_a_ca() {
    let unknown = TestCa::new("unknown");
    let backend = TlsBackend::start("api", &unknown.leaf(&["somewhere.else"])).await;
    let dir = temp_dir("insecure");
    let h = mesh(&api(backend.port(), "HTTP", "{mode: SIMPLE, insecureSkipVerify: true}"), &dir).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["service"], "api");
    h.reload(&api(backend.port(), "HTTP", "{mode: SIMPLE}"));
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 503, "no CA, no verification: {}", r.text());
}

/// MUTUAL: the upstream requires a client certificate from its CA; weir presents the
/// one of `credentialName` (`tls.crt`, `tls.key`, and `ca.crt` for the server), or of
/// `clientCertificate`/`privateKey` files. SIMPLE presents none and is refused.
#[tokio::test]
async fn mutual_presents_the_client_certificate_the_backend_requires() {
    let (server_ca, client_ca) = (TestCa::new("server-ca"), TestCa::new("client-ca"));
    let backend =
        TlsBackend::builder("api", &server_ca.leaf(&["api.example.test"])).client_ca(client_ca.roots()).start().await;
    let creds = temp_dir("mutual");
    let client = client_ca.leaf(&["spiffe://example.test/ns/ns/sa/client"]);
    // The credential's CA is the one that verifies the server.
    server_ca.write_credential(&creds, "client-credential", &client, true);
    std::fs::copy(creds.join("client-credential/tls.crt"), creds.join("c.crt")).unwrap();
    let h = mesh(
        &api(backend.port(), "HTTP", "{mode: MUTUAL, credentialName: client-credential, sni: api.example.test}"),
        &creds,
    )
    .await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["client_cert"], true);
    assert_eq!(backend.sessions()[0].client_cert.as_deref(), Some(&client.cert_der()[..]));
    assert_eq!(backend.sessions()[0].sni.as_deref(), Some("api.example.test"));

    // The same from file paths.
    let other_client = client_ca.leaf(&["spiffe://example.test/ns/ns/sa/files"]);
    let (cert, key) = other_client.write_files(&creds, "files-client");
    server_ca.write_ca(&creds.join("server-ca.pem"));
    let tls = format!(
        "{{mode: MUTUAL, clientCertificate: {}, privateKey: {}, caCertificates: {}}}",
        cert.display(),
        key.display(),
        creds.join("server-ca.pem").display()
    );
    h.reload(&api(backend.port(), "HTTP", &tls));
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(backend.sessions().iter().any(|s| s.client_cert.as_deref() == Some(&other_client.cert_der()[..])));

    // SIMPLE sends no client certificate: the backend refuses the session.
    let tls = format!("{{mode: SIMPLE, caCertificates: {}}}", creds.join("server-ca.pem").display());
    h.reload(&api(backend.port(), "HTTP", &tls));
    let r = c.get(&h.mesh_url("/"), "api.example.test", &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
}

/// Through a gateway: `sni` is sent as configured (and is the name verified), and an
/// HTTP/2 port offers `h2` by ALPN and speaks HTTP/2 over the TLS session.
#[tokio::test]
async fn sni_is_sent_as_configured_and_http2_ports_offer_h2() {
    let ca = TestCa::new("ca");
    let backend = TlsBackend::start("api", &ca.leaf(&["edge.example.test"])).await;
    let dir = temp_dir("sni");
    ca.write_ca(&dir.join("ca.pem"));
    let route = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: ns}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - route: [{destination: {host: api.example.test}}]
---
";
    let tls = format!("{{mode: SIMPLE, caCertificates: {}, sni: edge.example.test}}", dir.join("ca.pem").display());
    let yaml = format!("{}{GATEWAY}{route}", api(backend.port(), "HTTP", &tls));
    let creds = dir.clone();
    let h = Harness::with_config(&yaml, Instance::default(), move |c| c.credentials = Some(creds)).await;
    let c = http1_client();
    let r = c.get(&h.gw_url(8080, "/a"), "anything.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["sni"], "edge.example.test");
    assert_eq!(body["authority"], "anything.example.test", "SNI and Host are independent");
    assert_eq!(backend.sessions()[0].sni.as_deref(), Some("edge.example.test"));

    h.reload(&format!("{}{GATEWAY}{route}", api(backend.port(), "HTTP2", &tls)));
    let r = c.get(&h.gw_url(8080, "/b"), "anything.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!((body["alpn"].as_str(), body["protocol"].as_str()), (Some("h2"), Some("HTTP/2")), "{body}");
}

/// A TCP route to a cluster with TLS origination: the bytes go over a TLS session
/// (no ALPN: they are not known to be HTTP).
#[tokio::test]
async fn tcp_routes_originate_tls_too() {
    let ca = TestCa::new("ca");
    let backend = TlsBackend::start("api", &ca.leaf(&["api.example.test"])).await;
    let dir = temp_dir("tcp");
    ca.write_ca(&dir.join("ca.pem"));
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-gw, namespace: ns}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31400, name: tcp, protocol: TCP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tcp, namespace: ns}}
spec:
  hosts: ['*']
  gateways: [tcp-gw]
  tcp:
  - route: [{{destination: {{host: api.example.test, port: {{number: 80}}}}}}]
---
",
        api(backend.port(), "TCP", &format!("{{mode: SIMPLE, caCertificates: {}}}", dir.join("ca.pem").display()))
    );
    let h = Harness::start(&yaml, None).await;
    let mut s = tokio::net::TcpStream::connect(h.gateway(31400)).await.unwrap();
    s.write_all(b"GET /over-tcp HTTP/1.1\r\nHost: raw.example.test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(TEST_TIMEOUT, s.read_to_string(&mut out)).await.expect("closed").unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"path\":\"/over-tcp\"") && out.contains("\"alpn\":null"), "{out}");
    assert_eq!(backend.sessions().len(), 1);
}

/// A rotated CA file is picked up: new connections verify against the new bundle.
#[tokio::test]
async fn a_rotated_ca_bundle_serves_new_connections() {
    let (old, new) = (TestCa::new("old"), TestCa::new("new"));
    let backend = TlsBackend::start("api", &new.leaf(&["api.example.test"])).await;
    let dir = temp_dir("rotate");
    let ca = dir.join("ca.pem");
    old.write_ca(&ca);
    let h =
        mesh(&api(backend.port(), "HTTP", &format!("{{mode: SIMPLE, caCertificates: {}}}", ca.display())), &dir).await;
    let url = h.mesh_url("/");
    assert_eq!(http1_client().get(&url, "api.example.test", &[]).await.status, 503);
    new.write_ca(&ca);
    // The certificate files are polled: wait for the new bundle to be used.
    wait_for_async(
        || {
            let url = url.clone();
            async move { http1_client().get(&url, "api.example.test", &[]).await.status == 200 }
        },
        TEST_TIMEOUT,
    )
    .await;
}
