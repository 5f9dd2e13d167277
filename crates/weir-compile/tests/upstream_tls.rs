//! DestinationRule `tls` compiled into the clusters' [`UpstreamTls`] (spec §3.8), with
//! the top-level, port-level and subset-level blocks merged as spec §3.2 says; what is
//! not executed (ISTIO_MUTUAL, `caCrl`) stays out of the table with a warning.

use weir_compile::{Instance, compile};
use weir_model::load_str;
use weir_table::{CaSource, CertSource, Cluster, RouteTable, UpstreamTls, UpstreamTlsMode};

/// An external service with an HTTP port upgraded to TLS and a gRPC port, endpoints by
/// IP, labelled for a subset.
const SERVICE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: ns}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 443}
  - {number: 9000, name: grpc, protocol: GRPC}
  endpoints: [{address: 10.0.0.1, labels: {version: v2}}]
---
";

fn compiled(dr: &str) -> (RouteTable, Vec<String>) {
    let r = load_str("t.yaml", &format!("{SERVICE}{dr}"));
    assert!(!r.has_errors(), "{:#?}", r.diagnostics);
    let c = compile(r.resources, &Instance { namespace: "ns".into(), mesh: true, ..Instance::default() }, 1);
    (c.table, c.diagnostics.into_iter().map(|d| d.diagnostic.message).collect())
}

fn cluster<'t>(t: &'t RouteTable, name: &str) -> &'t Cluster {
    t.clusters.iter().find(|c| &*c.name == name).unwrap_or_else(|| panic!("no cluster {name}"))
}

fn tls<'t>(t: &'t RouteTable, name: &str) -> Option<&'t UpstreamTls> {
    cluster(t, name).upstream_tls.as_deref()
}

#[test]
fn simple_settings_reach_the_table_as_written() {
    let (t, notes) = compiled(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: ns}
spec:
  host: api.example.com
  trafficPolicy:
    tls:
      mode: SIMPLE
      caCertificates: /etc/certs/ca.pem
      sni: edge.example.com
      subjectAltNames: [api.example.com, spiffe://example.com/api]
",
    );
    assert!(notes.is_empty(), "SIMPLE is executed, so nothing warns: {notes:?}");
    let http = tls(&t, "outbound|80||api.example.com").expect("TLS in the table");
    assert_eq!(http.mode, UpstreamTlsMode::Simple);
    assert_eq!(http.ca, Some(CaSource::File { path: "/etc/certs/ca.pem".into() }));
    assert_eq!(http.sni.as_deref(), Some("edge.example.com"));
    assert_eq!(http.subject_alt_names, [Box::from("api.example.com"), Box::from("spiffe://example.com/api")]);
    assert!(http.client_certificate.is_none() && !http.insecure_skip_verify);
    assert_eq!(http.alpn, [Box::from("http/1.1")]);
    // The gRPC port speaks HTTP/2: its connections offer h2.
    assert_eq!(tls(&t, "outbound|9000||api.example.com").unwrap().alpn, [Box::from("h2")]);
    // The dump names files, never key material.
    let dump = serde_json::to_value(cluster(&t, "outbound|80||api.example.com")).unwrap();
    assert_eq!(dump["upstream_tls"]["mode"], "SIMPLE");
    assert_eq!(dump["upstream_tls"]["ca"]["file"]["path"], "/etc/certs/ca.pem");
}

#[test]
fn port_level_and_subset_tls_replace_the_block_as_istio_merges() {
    let (t, _) = compiled(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: ns}
spec:
  host: api.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: SIMPLE, insecureSkipVerify: true}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: MUTUAL, credentialName: kubernetes://api-client, sni: v2.example.com}
  - name: plain
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: DISABLE}
",
    );
    // Port-level: only port 80 originates TLS.
    let p80 = tls(&t, "outbound|80||api.example.com").expect("port-level tls");
    assert!(p80.insecure_skip_verify && p80.ca.is_none());
    assert!(tls(&t, "outbound|9000||api.example.com").is_none(), "no top-level tls: plaintext");
    // The subset's block replaces the port's whole block.
    let v2 = tls(&t, "outbound|80|v2|api.example.com").expect("subset tls");
    assert_eq!(v2.mode, UpstreamTlsMode::Mutual);
    assert_eq!(v2.client_certificate, Some(CertSource::Credential { name: "api-client".into() }));
    assert_eq!(v2.ca, Some(CaSource::Credential { name: "api-client".into() }));
    assert_eq!(v2.sni.as_deref(), Some("v2.example.com"));
    assert!(!v2.insecure_skip_verify);
    assert!(tls(&t, "outbound|9000|v2|api.example.com").is_some(), "subset policy covers every port");
    assert!(tls(&t, "outbound|80|plain|api.example.com").is_none(), "DISABLE in the subset wins");
}

#[test]
fn mutual_from_files() {
    let (t, notes) = compiled(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: ns}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: MUTUAL, clientCertificate: /c/cert.pem, privateKey: /c/key.pem, caCertificates: /c/ca.pem}
",
    );
    assert!(notes.is_empty(), "{notes:?}");
    let m = tls(&t, "outbound|80||api.example.com").unwrap();
    assert_eq!(m.mode, UpstreamTlsMode::Mutual);
    assert_eq!(
        m.client_certificate,
        Some(CertSource::Files { cert: "/c/cert.pem".into(), key: "/c/key.pem".into(), ca: None })
    );
    assert_eq!(m.ca, Some(CaSource::File { path: "/c/ca.pem".into() }));
}

#[test]
fn istio_mutual_and_crls_are_not_executed_and_say_so() {
    let (t, notes) = compiled(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: ns}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 9000}
      tls: {mode: SIMPLE, caCertificates: /ca.pem, caCrl: /crl.pem}
",
    );
    assert!(tls(&t, "outbound|80||api.example.com").is_none(), "ISTIO_MUTUAL is not compiled");
    let all = notes.join("\n");
    assert!(all.contains("tls mode ISTIO_MUTUAL") && all.contains("plaintext"), "{all}");
    // SIMPLE with a CRL is executed without the revocation check, and says so.
    assert!(tls(&t, "outbound|9000||api.example.com").is_some());
    assert!(all.contains("caCrl") && all.contains("revocation"), "{all}");
    assert!(!all.contains("tls mode SIMPLE"), "{all}");
}
