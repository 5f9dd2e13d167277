//! A proxy in-process on loopback, configured from YAML, plus helpers to register the
//! test backends as ServiceEntries.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use weir_compile::Instance;
use weir_proxy::telemetry::Format;
use weir_proxy::{Binder, Proxy, ProxyConfig};
use weir_testkit::{Backend, http1_client};

/// A running proxy.
pub struct Harness {
    pub proxy: Arc<Proxy>,
    pub admin: SocketAddr,
    instance: Instance,
    version: std::sync::atomic::AtomicU64,
}

fn table(yaml: &str, instance: &Instance, version: u64) -> weir_table::RouteTable {
    let report = weir_model::load_str("test.yaml", yaml);
    assert!(!report.has_errors(), "test config does not validate: {:#?}", report.diagnostics);
    weir_compile::compile(report.resources, instance, version).table
}

impl Harness {
    /// Gateway role (labels istio=ingressgateway, namespace istio-system) plus the mesh
    /// listener when `mesh_ns` is set (then the instance lives in that namespace).
    pub async fn start(yaml: &str, mesh_ns: Option<&str>) -> Harness {
        let mut instance = Instance::default();
        if let Some(ns) = mesh_ns {
            instance.namespace = ns.to_string();
            instance.mesh = true;
        }
        Self::with_instance(yaml, instance).await
    }

    pub async fn with_instance(yaml: &str, instance: Instance) -> Harness {
        Self::with_config(yaml, instance, |_| {}).await
    }

    /// Like [`Harness::with_instance`], with the proxy's settings adjusted by `edit`.
    pub async fn with_config(yaml: &str, instance: Instance, edit: impl FnOnce(&mut ProxyConfig)) -> Harness {
        let mut config = ProxyConfig {
            mesh_listener: instance.mesh.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            access_log: Format::Off,
            ..ProxyConfig::default()
        };
        edit(&mut config);
        let binder: Binder = Arc::new(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let proxy = Proxy::with_binder(config, Some(binder));
        let errors = proxy.install(table(yaml, &instance, 1));
        assert!(errors.is_empty(), "{errors:?}");
        let admin = proxy.serve_admin(SocketAddr::from(([127, 0, 0, 1], 0))).expect("admin binds");
        Harness { proxy, admin, instance, version: 1.into() }
    }

    /// Installs a new configuration.
    pub fn reload(&self, yaml: &str) {
        let v = self.version.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let errors = self.proxy.install(table(yaml, &self.instance, v));
        assert!(errors.is_empty(), "{errors:?}");
    }

    pub fn mesh(&self) -> SocketAddr {
        self.proxy.address_of("mesh").expect("mesh listener")
    }

    pub fn gateway(&self, port: u16) -> SocketAddr {
        self.proxy.address_of(&format!("0.0.0.0_{port}")).expect("gateway listener")
    }

    pub fn mesh_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.mesh())
    }

    pub fn gw_url(&self, port: u16, path: &str) -> String {
        format!("http://{}{path}", self.gateway(port))
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// `cluster.<cluster>.<name>` from `/stats`, or `None` when it is not there.
    pub async fn cluster_stat(&self, cluster: &str, name: &str) -> Option<u64> {
        let text = http1_client().get(&self.admin_url("/stats"), "", &[]).await.text();
        let key = format!("cluster.{cluster}.{name}: ");
        text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.parse().ok())
    }

    /// The `istio_requests_total` count for `code` and `flags`, over all other labels.
    pub async fn requests_with(&self, code: u16, flags: &str) -> u64 {
        let text = http1_client().get(&self.admin_url("/stats/prometheus"), "", &[]).await.text();
        let (code, flags) = (format!("response_code=\"{code}\""), format!("response_flags=\"{flags}\""));
        text.lines()
            .filter(|l| l.starts_with("istio_requests_total{") && l.contains(&code) && l.contains(&flags))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// A Sidecar making `ns`'s mesh listener answer hosts outside the registry with 502
/// (`REGISTRY_ONLY`) instead of passing them through to the name they give (Istio's
/// default `ALLOW_ANY`): for tests about local replies that must not touch DNS.
pub fn registry_only(ns: &str) -> String {
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: {ns}}}
spec:
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
---
"
    )
}

/// A ServiceEntry `host` (in `ns`) with one port (`protocol`, number 80) whose
/// endpoints are the given backends, each with labels `version=<backend version>`.
pub fn service(name: &str, ns: &str, protocol: &str, backends: &[&Backend]) -> String {
    let eps: String = backends
        .iter()
        .map(|b| {
            format!(
                "  - address: 127.0.0.1\n    ports: {{http: {}}}\n    labels: {{app: {name}, version: {}}}\n",
                b.port(),
                b.version()
            )
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{name}.{ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: {protocol}}}]
  endpoints:
{eps}---
"
    )
}

/// A ServiceEntry `name` (in `ns`) with one port (`protocol`, number 80) and one
/// endpoint, 127.0.0.1:`port`, without labels: for upstreams that are not test
/// [`Backend`]s (a gRPC server, another proxy).
pub fn service_at(name: &str, ns: &str, protocol: &str, port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{name}.{ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: p, protocol: {protocol}}}]
  endpoints: [{{address: 127.0.0.1, ports: {{p: {port}}}}}]
---
"
    )
}

/// A VirtualService `svc` in namespace `ns` for host `svc` with the given `http:`
/// routes (YAML list items, indented two spaces).
pub fn svc_routes(http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
{http}---
"
    )
}

/// A gateway on port 8080 for any host, selecting the default instance.
pub const GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ['*']
---
";

/// Reads from `s` until the end of a request head (`\r\n\r\n`); false if the peer
/// closed first.
pub async fn read_head(s: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}
