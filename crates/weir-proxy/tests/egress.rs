//! Egress control on the mesh listener: `outboundTrafficPolicy` ALLOW_ANY (Istio's
//! default) passes a host outside the registry through to the name it gives (here an
//! address, and `localhost`, which resolves from /etc/hosts), REGISTRY_ONLY answers 502
//! and reports BlackHoleCluster; TLS sent to the mesh listener is routed by SNI (a mesh
//! VirtualService's `tls` route, or a registry service by its own name) without being
//! decrypted.

mod common;

use common::{Harness, service};
use weir_compile::Instance;
use weir_testkit::{Backend, TestCa, TlsClient, TlsNamed, http1_client, https_get};

const REGISTRY_ONLY: &str = "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
";

async fn prometheus(h: &Harness) -> String {
    http1_client().get(&h.admin_url("/stats/prometheus"), "", &[]).await.text()
}

#[tokio::test]
async fn allow_any_passes_unknown_hosts_through_to_the_name_they_give() {
    let known = Backend::start("cart", "v1").await;
    let outside = Backend::start("outside", "v1").await;
    let h = Harness::start(&service("cart", "shop", "HTTP", &[&known]), Some("shop")).await;
    let c = http1_client();
    let by_ip = format!("127.0.0.1:{}", outside.port());
    let r = c.get(&h.mesh_url("/x"), &by_ip, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend(), Some("outside"));
    let by_name = format!("localhost:{}", outside.port());
    let r = c.get(&h.mesh_url("/y"), &by_name, &[]).await;
    assert_eq!(r.backend(), Some("outside"), "the name is resolved when connecting");
    assert_eq!(c.get(&h.mesh_url("/"), "cart", &[]).await.backend(), Some("cart"));
    assert_eq!(outside.hits(), 2);
    let stats = prometheus(&h).await;
    assert!(
        stats.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("destination_service=\"PassthroughCluster\"")
            && l.contains("response_code=\"200\"")),
        "{stats}"
    );
}

#[tokio::test]
async fn registry_only_blocks_unknown_hosts_with_502() {
    let known = Backend::start("cart", "v1").await;
    let outside = Backend::start("outside", "v1").await;
    let yaml = format!("{}{REGISTRY_ONLY}", service("cart", "shop", "HTTP", &[&known]));
    let h = Harness::start(&yaml, Some("shop")).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/x"), &format!("127.0.0.1:{}", outside.port()), &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(outside.hits(), 0);
    assert_eq!(c.get(&h.mesh_url("/"), "cart.shop", &[]).await.backend(), Some("cart"), "registry hosts still work");
    let stats = prometheus(&h).await;
    assert!(
        stats.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("destination_service=\"BlackHoleCluster\"")
            && l.contains("response_code=\"502\"")),
        "{stats}"
    );
    // A Sidecar selecting this workload overrides the namespace's.
    let allow = "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: gateway-only, namespace: shop}
spec:
  workloadSelector: {labels: {istio: ingressgateway}}
  outboundTrafficPolicy: {mode: ALLOW_ANY}
";
    h.reload(&format!("{yaml}{allow}"));
    let r = c.get(&h.mesh_url("/x"), &format!("127.0.0.1:{}", outside.port()), &[]).await;
    assert_eq!(r.backend(), Some("outside"));
}

#[tokio::test]
async fn tls_to_the_mesh_listener_is_routed_by_sni_without_decrypting() {
    let ca = TestCa::new("external-ca");
    let api = TlsNamed::start("api-backend", &ca.leaf(&["api.example.com", "alias.example.com"])).await;
    let pay = TlsNamed::start("pay-backend", &ca.leaf(&["pay.example.com"])).await;
    let entry = |name: &str, host: &str, port: u16| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: shop}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {port}}}}}]
---
"
        )
    };
    // alias.example.com (in no ServiceEntry) through a mesh tls route to api; the
    // services by their own names.
    let vs = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: alias, namespace: shop}
spec:
  hosts: [alias.example.com]
  tls:
  - match: [{sniHosts: [alias.example.com]}]
    route: [{destination: {host: api.example.com, port: {number: 443}}}]
---
";
    let yaml = format!(
        "{}{}{vs}{REGISTRY_ONLY}",
        entry("api", "api.example.com", api.port()),
        entry("pay", "pay.example.com", pay.port())
    );
    let h =
        Harness::with_instance(&yaml, Instance { namespace: "shop".into(), mesh: true, ..Instance::default() }).await;
    // Each client verifies the backend's own certificate: weir does not terminate.
    for (sni, backend) in
        [("pay.example.com", "pay-backend"), ("api.example.com", "api-backend"), ("alias.example.com", "api-backend")]
    {
        let mut s = TlsClient::new(sni).connect(h.mesh(), ca.roots()).await.unwrap_or_else(|e| panic!("{sni}: {e}"));
        let text = https_get(&mut s.stream, sni, "/").await.unwrap();
        assert!(text.ends_with(backend), "{sni}: {text}");
    }
    // An SNI outside the registry under REGISTRY_ONLY: closed.
    assert!(TlsClient::new("elsewhere.org").connect(h.mesh(), ca.roots()).await.is_err());
    // Plain HTTP on the same listener still works.
    assert_eq!(http1_client().get(&h.mesh_url("/"), "nowhere", &[]).await.status, 502);
}

/// Istio's egress-gateway task over HTTP: the mesh sends edition.cnn.com to the egress
/// gateway (another weir, labelled `istio: egressgateway`), which sends it out to the
/// external service; the same VirtualService, bound to both, routes each hop.
#[tokio::test]
async fn mesh_to_egress_gateway_to_external_service() {
    let external = Backend::start("edition-cnn", "v1").await;
    let config = |egress_port: u16| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: cnn, namespace: default}}
spec:
  hosts: [edition.cnn.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http-port, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http-port: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: istio-egressgateway, namespace: istio-system}}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {egress_port}}}, labels: {{istio: egressgateway}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: istio-egressgateway, namespace: default}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [edition.cnn.com]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: egressgateway-for-cnn, namespace: default}}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{{name: cnn}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: direct-cnn-through-egress-gateway, namespace: default}}
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{{gateways: [mesh], port: 80}}]
    route:
    - destination: {{host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn, port: {{number: 80}}}}
      weight: 100
  - match: [{{gateways: [istio-egressgateway], port: 80}}]
    route:
    - destination: {{host: edition.cnn.com, port: {{number: 80}}}}
      weight: 100
---
",
            external.port()
        )
    };
    let egress_labels = [("istio".to_string(), "egressgateway".to_string())].into_iter().collect();
    let gw = Harness::with_instance(
        &config(1),
        Instance { labels: egress_labels, namespace: "istio-system".into(), ..Instance::default() },
    )
    .await;
    let mesh = Harness::with_instance(
        &config(gw.gateway(80).port()),
        Instance { namespace: "default".into(), mesh: true, labels: Default::default(), ..Instance::default() },
    )
    .await;
    let r = http1_client().get(&mesh.mesh_url("/politics"), "edition.cnn.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend(), Some("edition-cnn"));
    assert_eq!(external.last_authority().as_deref(), Some("edition.cnn.com"));
    // The egress gateway saw it: its metrics name the external service.
    let stats = prometheus(&gw).await;
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("istio_requests_total{") && l.contains("destination_service=\"edition.cnn.com\"")),
        "{stats}"
    );
    let stats = prometheus(&mesh).await;
    assert!(stats.contains("destination_service=\"istio-egressgateway.istio-system.svc.cluster.local\""), "{stats}");
}

/// Sidecar `egress` listeners: one with a port and `captureMode: NONE` is a local
/// listener (127.0.0.1 by default) serving only the hosts it imports on its port; the
/// port-less one says what the main mesh listener imports.
#[tokio::test]
async fn sidecar_egress_listeners_are_local_listeners_over_their_imports() {
    let cart = Backend::start("cart", "v1").await;
    let billing = Backend::start("billing", "v1").await;
    let sidecar = "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  egress:
  - port: {number: 80, protocol: HTTP, name: egress-http}
    captureMode: NONE
    hosts: [./*]
  - hosts: [finance/*]
---
";
    let yaml = format!(
        "{}{}{sidecar}",
        service("cart", "shop", "HTTP", &[&cart]),
        service("billing", "finance", "HTTP", &[&billing])
    );
    let h = Harness::start(&yaml, Some("shop")).await;
    let local = h.proxy.address_of("127.0.0.1_80").expect("the egress listener is bound");
    let c = http1_client();
    let url = format!("http://{local}/");
    assert_eq!(c.get(&url, "cart", &[]).await.backend(), Some("cart"), "./* imports the namespace's services");
    assert_eq!(c.get(&url, "billing.finance", &[]).await.status, 502, "not imported by this listener");
    // The main mesh listener imports finance/* only.
    assert_eq!(c.get(&h.mesh_url("/"), "billing.finance", &[]).await.backend(), Some("billing"));
    assert_eq!(c.get(&h.mesh_url("/"), "cart", &[]).await.status, 502);
}

/// A ServiceEntry's `addresses` (VIPs) are names of the service on the mesh listener,
/// as Envoy lists them among a virtual host's domains.
#[tokio::test]
async fn service_entry_addresses_are_names_of_the_service() {
    let b = Backend::start("legacy", "v1").await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: legacy, namespace: shop}}
spec:
  hosts: [legacy.example.com]
  addresses: [240.240.0.1]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]
---
{REGISTRY_ONLY}",
        b.port()
    );
    let h = Harness::start(&yaml, Some("shop")).await;
    let c = http1_client();
    for host in ["legacy.example.com", "240.240.0.1", "240.240.0.1:80"] {
        assert_eq!(c.get(&h.mesh_url("/"), host, &[]).await.backend(), Some("legacy"), "{host}");
    }
    assert_eq!(c.get(&h.mesh_url("/"), "240.240.0.2", &[]).await.status, 502);
}
