//! The compiler and the table lookup together: Istio's routing semantics on real
//! configuration, without a network.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue, Method};
use weir_compile::{Instance, compile};
use weir_model::load_str;
use weir_table::{Action, ClusterRef, Listener, NoRoute, RequestView, RouteTable};

fn table(text: &str, instance: &Instance) -> RouteTable {
    let r = load_str("t.yaml", text);
    assert!(!r.has_errors(), "{:#?}", r.diagnostics);
    compile(r.resources, instance, 1).table
}

fn mesh_instance(ns: &str) -> Instance {
    Instance { namespace: ns.into(), mesh: true, ..Instance::default() }
}

struct Req<'a> {
    method: Method,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: HeaderMap,
    port: u16,
}

fn req<'a>(authority: &'a str, path: &'a str) -> Req<'a> {
    Req { method: Method::GET, authority, path, query: None, headers: HeaderMap::new(), port: 0 }
}

impl Req<'_> {
    fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.insert(k, HeaderValue::from_static(v));
        self
    }
}

/// The cluster name a request is sent to (weighted picks use `r`), or the reason.
fn route_to(t: &RouteTable, l: &Listener, q: &Req<'_>, r: u32) -> Result<String, String> {
    let view = RequestView {
        method: &q.method,
        scheme: "http",
        authority: q.authority,
        path: q.path,
        path_and_query: q.path,
        query: q.query,
        headers: &q.headers,
        port: q.port,
    };
    match l.route(&view) {
        Err(NoRoute::UnknownHost) => Err("unknown host".into()),
        Err(NoRoute::NoMatch) => Err("no match".into()),
        Ok(routed) => match &*routed.route.action {
            Action::Forward(f) => {
                let d = f.pick(r);
                match d.cluster.resolve(routed.view.port) {
                    Some(id) => Ok(t.cluster(id).name.to_string()),
                    None => Err(format!("NC {}", d.name)),
                }
            }
            Action::Redirect(rd) => Ok(format!("redirect {}", rd.status.as_u16())),
            Action::Direct(d) => Ok(format!("direct {}", d.status.as_u16())),
        },
    }
}

const BOOKINFO: [&str; 4] = [
    include_str!("../../../examples/bookinfo/services.yaml"),
    include_str!("../../../examples/bookinfo/destination-rules.yaml"),
    include_str!("../../../examples/bookinfo/gateway.yaml"),
    include_str!("../../../examples/bookinfo/mesh.yaml"),
];

fn bookinfo() -> String {
    BOOKINFO.join("\n---\n")
}

#[test]
fn mesh_short_names_resolve_like_istio() {
    let t = table(&bookinfo(), &mesh_instance("bookinfo"));
    let mesh = t.mesh().unwrap();
    for host in [
        "ratings",
        "ratings:9080",
        "ratings.bookinfo",
        "ratings.bookinfo:9080",
        "ratings.bookinfo.svc",
        "ratings.bookinfo.svc.cluster.local",
        "RATINGS.bookinfo.svc.cluster.local:9080",
    ] {
        assert_eq!(
            route_to(&t, mesh, &req(host, "/"), 0).as_deref(),
            Ok("outbound|9080|v1|ratings.bookinfo.svc.cluster.local"),
            "{host}"
        );
    }
    // A host outside the registry goes to Istio's PassthroughCluster (ALLOW_ANY).
    assert_eq!(route_to(&t, mesh, &req("nope", "/"), 0).as_deref(), Ok("PassthroughCluster"));
    // From another namespace the bare name is not an alias: it is a name outside the
    // registry.
    let t2 = table(&bookinfo(), &mesh_instance("other"));
    assert_eq!(route_to(&t2, t2.mesh().unwrap(), &req("ratings", "/"), 0).as_deref(), Ok("PassthroughCluster"));
    assert!(route_to(&t2, t2.mesh().unwrap(), &req("ratings.bookinfo", "/"), 0).is_ok());
}

#[test]
fn header_routing_first_match_wins_and_weights_split() {
    let t = table(&bookinfo(), &mesh_instance("bookinfo"));
    let mesh = t.mesh().unwrap();
    let jason = req("reviews", "/").header("end-user", "jason");
    assert_eq!(route_to(&t, mesh, &jason, 0).unwrap(), "outbound|9080|v2|reviews.bookinfo.svc.cluster.local");
    let other = req("reviews", "/").header("end-user", "bob");
    assert_eq!(route_to(&t, mesh, &other, 0).unwrap(), "outbound|9080|v1|reviews.bookinfo.svc.cluster.local");
    assert_eq!(route_to(&t, mesh, &other, u32::MAX).unwrap(), "outbound|9080|v3|reviews.bookinfo.svc.cluster.local");
}

#[test]
fn a_service_without_virtual_service_gets_a_default_route() {
    let t = table(&bookinfo(), &mesh_instance("bookinfo"));
    let mesh = t.mesh().unwrap();
    assert_eq!(
        route_to(&t, mesh, &req("productpage", "/anything"), 0).unwrap(),
        "outbound|9080||productpage.bookinfo.svc.cluster.local"
    );
}

#[test]
fn gateway_listener_binds_virtual_services_through_gateways() {
    let t = table(&bookinfo(), &Instance::default());
    assert!(t.mesh().is_none());
    let gw = t.gateway(8080).expect("listener for the Gateway server port");
    let to = |q: &Req<'_>| route_to(&t, gw, q, 0);
    assert_eq!(
        to(&req("anything.example", "/reviews/1").header("end-user", "jason")).unwrap(),
        "outbound|9080|v2|reviews.bookinfo.svc.cluster.local"
    );
    assert_eq!(to(&req("x", "/reviews")).unwrap(), "outbound|9080|v1|reviews.bookinfo.svc.cluster.local");
    assert_eq!(to(&req("x", "/ratings")).unwrap(), "outbound|9080||ratings.bookinfo.svc.cluster.local");
    assert_eq!(to(&req("x", "/")).unwrap(), "outbound|9080||productpage.bookinfo.svc.cluster.local");
    // A gateway whose selector does not match this instance is not served.
    let other = Instance { labels: BTreeMap::from([("istio".into(), "egressgateway".into())]), ..Instance::default() };
    assert!(table(&bookinfo(), &other).listeners.is_empty());
}

const SE: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc.ns.svc.cluster.local]
  resolution: STATIC
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 9090, name: admin, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}, ports: {http: 8080}}
";

#[test]
fn missing_subsets_and_hosts_are_503_nc_not_errors() {
    let text = format!(
        "{SE}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - match: [{{uri: {{prefix: /nosubset}}}}]
    route: [{{destination: {{host: svc, subset: v9}}}}]
  - match: [{{uri: {{prefix: /nohost}}}}]
    route: [{{destination: {{host: ghost}}}}]
  - route: [{{destination: {{host: svc, port: {{number: 80}}}}}}]
"
    );
    let r = load_str("t.yaml", &text);
    let compiled = compile(r.resources, &mesh_instance("ns"), 1);
    assert_eq!(compiled.diagnostics.len(), 2, "{:?}", compiled.diagnostics);
    let t = compiled.table;
    let mesh = t.mesh().unwrap();
    assert_eq!(
        route_to(&t, mesh, &req("svc", "/nosubset"), 0),
        Err("NC outbound|80|v9|svc.ns.svc.cluster.local".into())
    );
    assert!(route_to(&t, mesh, &req("svc", "/nohost"), 0).unwrap_err().starts_with("NC"));
    assert_eq!(route_to(&t, mesh, &req("svc", "/"), 0).unwrap(), "outbound|80||svc.ns.svc.cluster.local");
}

#[test]
fn endpoints_use_port_maps_and_subsets_select_by_labels() {
    let text = format!(
        "{SE}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: dr, namespace: ns}}
spec:
  host: svc
  subsets: [{{name: v2, labels: {{version: v2}}}}]
"
    );
    let t = table(&text, &mesh_instance("ns"));
    let mesh = t.mesh().unwrap();
    // Default route, port from Host; multi-port service.
    let c80 = route_to(&t, mesh, &req("svc", "/"), 0).unwrap();
    assert_eq!(c80, "outbound|80||svc.ns.svc.cluster.local");
    let c9090 = route_to(&t, mesh, &req("svc:9090", "/"), 0).unwrap();
    assert_eq!(c9090, "outbound|9090||svc.ns.svc.cluster.local");
    let cluster = t.clusters.iter().find(|c| &*c.name == "outbound|80||svc.ns.svc.cluster.local").unwrap();
    let addrs: Vec<String> = cluster.endpoints.iter().map(|e| e.address.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:8080"]);
    let _ = ClusterRef::Missing;
}

#[test]
fn match_entries_filtered_by_port_source_labels_and_gateways() {
    let text = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ['*']
  - port: {number: 8081, name: http2, protocol: HTTP}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: ns}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - match: [{port: 8081}]
    directResponse: {status: 201}
  - match: [{sourceLabels: {app: nope}}]
    directResponse: {status: 202}
  - match: [{sourceLabels: {istio: ingressgateway}, uri: {prefix: /src}}]
    directResponse: {status: 203}
  - match: [{gateways: [mesh], uri: {prefix: /meshonly}}]
    directResponse: {status: 204}
  - match: [{sourceNamespace: elsewhere, uri: {prefix: /ns}}]
    directResponse: {status: 205}
  - match: [{sourceNamespace: istio-system, uri: {prefix: /ns}}]
    directResponse: {status: 206}
  - directResponse: {status: 200}
";
    let t = table(text, &Instance::default());
    let (a, b) = (t.gateway(8080).unwrap(), t.gateway(8081).unwrap());
    assert_eq!(route_to(&t, a, &req("x", "/"), 0).unwrap(), "direct 200");
    assert_eq!(route_to(&t, b, &req("x", "/"), 0).unwrap(), "direct 201");
    assert_eq!(route_to(&t, a, &req("x", "/src"), 0).unwrap(), "direct 203");
    assert_eq!(route_to(&t, a, &req("x", "/meshonly"), 0).unwrap(), "direct 200");
    assert_eq!(route_to(&t, a, &req("x", "/ns"), 0).unwrap(), "direct 206");
}

#[test]
fn nothing_after_a_catch_all_is_emitted() {
    let text = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: ns}
spec:
  hosts: [a.example.com]
  http:
  - match: [{uri: {prefix: /}}]
    directResponse: {status: 200}
  - match: [{uri: {prefix: /x}}]
    directResponse: {status: 201}
";
    let r = load_str("t.yaml", text);
    let t = compile(r.resources, &mesh_instance("ns"), 1).table;
    let vh = t.mesh().unwrap().virtual_host("a.example.com").unwrap();
    assert_eq!(vh.routes.len(), 1);
}

#[test]
fn delegates_merge_matches_and_inherit() {
    let text = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: ns}
spec:
  hosts: [a.example.com]
  http:
  - name: api
    match: [{uri: {prefix: /api}}]
    delegate: {name: api-routes}
    timeout: 5s
  - directResponse: {status: 404}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-routes, namespace: ns}
spec:
  http:
  - name: v1
    match: [{uri: {prefix: /api/v1}}]
    directResponse: {status: 201}
  - name: outside
    match: [{uri: {prefix: /other}}]
    directResponse: {status: 202}
  - name: rest
    directResponse: {status: 203}
";
    let t = table(text, &mesh_instance("ns"));
    let mesh = t.mesh().unwrap();
    assert_eq!(route_to(&t, mesh, &req("a.example.com", "/api/v1/x"), 0).unwrap(), "direct 201");
    assert_eq!(route_to(&t, mesh, &req("a.example.com", "/api/v2"), 0).unwrap(), "direct 203");
    assert_eq!(route_to(&t, mesh, &req("a.example.com", "/other"), 0).unwrap(), "direct 404");
    let vh = t.mesh().unwrap().virtual_host("a.example.com").unwrap();
    assert_eq!(&*vh.routes[0].name, "api-v1");
}

#[test]
fn workload_selector_takes_endpoints_from_workload_entries_in_the_namespace() {
    let text = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm, namespace: ns}
spec:
  hosts: [vm.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: ns}
spec: {address: 10.0.0.1, labels: {app: vm, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: ns}
spec: {address: 10.0.0.2, labels: {app: vm, version: v2}, ports: {http: 9090}, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other-ns, namespace: elsewhere}
spec: {address: 10.0.0.3, labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other-app, namespace: ns}
spec: {address: 10.0.0.4, labels: {app: db}}
";
    let t = table(text, &mesh_instance("ns"));
    let c = t.clusters.iter().find(|c| &*c.name == "outbound|80||vm.ns.svc.cluster.local").unwrap();
    let eps: Vec<(String, u32)> = c.endpoints.iter().map(|e| (e.address.to_string(), e.weight)).collect();
    assert_eq!(eps, [("10.0.0.1:8080".to_string(), 1), ("10.0.0.2:9090".to_string(), 3)]);
}

#[test]
fn gateway_server_hosts_restrict_namespaces_and_hosts() {
    let text = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ['shop/*.example.com', './admin.example.com']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [www.example.com, www.example.org]
  gateways: [edge/gw]
  http: [{directResponse: {status: 201}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: intruder, namespace: other}
spec:
  hosts: [evil.example.com]
  gateways: [edge/gw]
  http: [{directResponse: {status: 202}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: admin, namespace: edge}
spec:
  hosts: ['*']
  gateways: [gw]
  http: [{directResponse: {status: 203}}]
";
    let t = table(text, &Instance::default());
    let gw = t.gateway(8080).unwrap();
    assert_eq!(route_to(&t, gw, &req("www.example.com", "/"), 0).unwrap(), "direct 201");
    assert_eq!(route_to(&t, gw, &req("www.example.org", "/"), 0), Err("unknown host".into()));
    assert_eq!(route_to(&t, gw, &req("evil.example.com", "/"), 0), Err("unknown host".into()));
    // A `*` VirtualService in the gateway's namespace gets only the server's host.
    assert_eq!(route_to(&t, gw, &req("admin.example.com", "/"), 0).unwrap(), "direct 203");
    assert_eq!(route_to(&t, gw, &req("other.example.net", "/"), 0), Err("unknown host".into()));
}

/// A WorkloadEntry's metadata labels win over its spec labels (Istio merges them so).
#[test]
fn workload_entry_metadata_labels_take_precedence() {
    let text = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm, namespace: ns}
spec:
  hosts: [vm.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: ns, labels: {app: vm, version: meta}}
spec: {address: 10.0.0.1, labels: {app: other, version: spec}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: vm, namespace: ns}
spec:
  host: vm
  subsets: [{name: meta, labels: {version: meta}}, {name: spec, labels: {version: spec}}]
";
    let t = table(text, &mesh_instance("ns"));
    let eps = |name: &str| -> Vec<String> {
        let c = t.clusters.iter().find(|c| &*c.name == name).unwrap();
        c.endpoints.iter().map(|e| e.address.to_string()).collect()
    };
    assert_eq!(eps("outbound|80|meta|vm.ns.svc.cluster.local"), ["10.0.0.1:80"]);
    assert!(eps("outbound|80|spec|vm.ns.svc.cluster.local").is_empty());
}

/// ServiceEntries of one namespace declaring the same host pool their endpoints (the
/// oldest entry's ports apply; a later entry's endpoints serve the port names it has).
#[test]
fn service_entries_with_the_same_host_pool_their_endpoints() {
    let se = |name: &str, port_name: &str, target: u16, ip: &str| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: ns}}
spec:
  hosts: [split.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: {port_name}, protocol: HTTP, targetPort: {target}}}]
  endpoints: [{{address: {ip}}}]
---
"
        )
    };
    let text = format!(
        "{}{}{}",
        se("a", "http", 8080, "10.0.0.1"),
        se("b", "http", 9090, "10.0.0.2"),
        se("c", "web", 80, "10.0.0.3")
    );
    let t = table(&text, &mesh_instance("ns"));
    let c = t.clusters.iter().find(|c| &*c.name == "outbound|80||split.example.com").unwrap();
    let addrs: Vec<String> = c.endpoints.iter().map(|e| e.address.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.1:8080", "10.0.0.2:9090"]);
}

/// Compiler notes are diagnostics like validation's: a code, the resource, its field,
/// and (placed with the source text) the line and column of that field.
#[test]
fn compiler_notes_name_the_resource_and_the_field_and_are_placed_on_it() {
    let text = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [shop.example.com]
  - port: {number: 9443, name: mtls, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: edge}
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: ghost.example.com}}]
";
    let r = load_str("edge.yaml", text);
    assert!(!r.has_errors(), "{:?}", r.diagnostics);
    let mut notes = compile(r.resources, &weir_compile::Instance::default(), 1).diagnostics;
    let got: Vec<String> = notes
        .iter()
        .map(|n| {
            let d = &n.diagnostic;
            format!("{} {:?} {:?} {} {}", d.code, d.kind, d.name, d.path, d.line)
        })
        .collect();
    assert_eq!(
        got,
        [
            "WEIR101 Some(\"Gateway\") Some(\"gw\") spec.servers[1].tls.mode 1",
            "IST0101 Some(\"VirtualService\") Some(\"shop\") spec.http[0] 13",
        ]
    );
    let mut items: Vec<weir_model::place::Unplaced<'_>> = notes
        .iter_mut()
        .map(|n| weir_model::place::Unplaced { diagnostic: &mut n.diagnostic, path: &n.field })
        .collect();
    weir_model::place::place_all(&mut items, |_| Some(text.to_string()));
    assert_eq!((notes[0].diagnostic.line, notes[0].diagnostic.column), (11, 17));
    assert_eq!(notes[0].diagnostic.source_line.as_deref(), Some("    tls: {mode: ISTIO_MUTUAL}"));
    assert_eq!((notes[1].diagnostic.line, notes[1].diagnostic.column), (20, 5));
}
