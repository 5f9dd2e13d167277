//! The registry istiod builds from Kubernetes (`../shared/spec/kubernetes-registry.md`):
//! each Service is a service `<name>.<ns>.svc.<domain>` with its ports (protocol from
//! `appProtocol` or the port name's prefix), and its endpoints come from the ready
//! endpoints of its EndpointSlices, labelled with their Pod's labels plus the
//! topology labels Istio adds, tied to the Service's ports by port name.
//!
//! The same objects come from the API server (`weir run --kubernetes`) or from files
//! (`kubectl get svc,endpointslices,pods -o yaml`); the registry does not know which.

use std::collections::BTreeMap;

use crate::fast_map::{HashMap, HashSet};

use weir_model::k8s::{CoreKind, CoreObject, CoreSpec, SliceEndpoint};
use weir_model::types::{Location, Resolution};

use crate::registry::{Service, ServiceEndpoint, ServicePort};

/// The cluster name Istio labels endpoints with (`CLUSTER_ID`'s default).
const CLUSTER_ID: &str = "Kubernetes";

/// The protocol Istio infers for a Service port (`ConvertProtocol`), as weir names
/// protocols; `None` for UDP (no listener or cluster is built). An empty string is
/// Istio's "unsupported": sniffed on the mesh, HTTP/1.1 at gateways.
pub fn port_protocol(name: &str, app_protocol: Option<&str>, protocol: &str, number: u32) -> Option<String> {
    if protocol.eq_ignore_ascii_case("UDP") {
        return None;
    }
    let input = match app_protocol {
        Some("kubernetes.io/h2c") => return Some("HTTP2".into()),
        Some("kubernetes.io/ws") => return Some("HTTP".into()),
        Some("kubernetes.io/wss") => return Some("HTTPS".into()),
        Some(a) => a,
        None => name,
    };
    if input.len() >= 8 && input[..8].eq_ignore_ascii_case("grpc-web") {
        return Some("GRPC".into());
    }
    let prefix = input.split('-').next().unwrap_or("").to_ascii_lowercase();
    let known = match prefix.as_str() {
        "http" | "http_proxy" => "HTTP",
        "http2" => "HTTP2",
        "grpc" => "GRPC",
        "https" => "HTTPS",
        "tls" => "TLS",
        // Opaque TCP for weir (Istio adds protocol filters for some).
        "tcp" | "mongo" | "redis" | "mysql" => "TCP",
        "udp" => return None,
        _ if matches!(number, 25 | 53 | 3306 | 27017) => "TCP",
        _ => "",
    };
    Some(known.to_string())
}

/// Services from Kubernetes Services, EndpointSlices, Pods and Nodes, in the order
/// the Services are given. WorkloadEntries of the Service's namespace that its
/// selector matches are endpoints too, as istiod adds them
/// (`PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES`, on by default).
pub fn services(core: &[CoreObject], store: &crate::store::Store, domain: &str) -> Vec<Service> {
    let pods: HashMap<(&str, &str), &CoreObject> =
        core.iter().filter(|o| o.kind == CoreKind::Pod).map(|o| ((o.namespace.as_str(), o.name.as_str()), o)).collect();
    let nodes: HashMap<&str, &CoreObject> =
        core.iter().filter(|o| o.kind == CoreKind::Node).map(|o| (o.name.as_str(), o)).collect();
    // Slices by the Service they belong to.
    let mut slices: HashMap<(&str, &str), Vec<&CoreObject>> = HashMap::default();
    for o in core {
        if let CoreSpec::EndpointSlice { service, .. } = &o.spec
            && !service.is_empty()
            && !o.labels.contains_key("multicluster.kubernetes.io/service-name")
        {
            slices.entry((o.namespace.as_str(), service.as_str())).or_default().push(o);
        }
    }
    let mut out = Vec::new();
    for o in core {
        let CoreSpec::Service { ports, cluster_ips, external_name, selector } = &o.spec else { continue };
        if external_name.is_some() {
            // An alias of another host, with no cluster of its own.
            continue;
        }
        let ports: Vec<ServicePort> = ports
            .iter()
            .filter_map(|p| {
                let protocol = port_protocol(&p.name, p.app_protocol.as_deref(), &p.protocol, p.port)?;
                Some(ServicePort {
                    number: u16::try_from(p.port).ok()?,
                    name: p.name.clone(),
                    protocol,
                    target_port: p.target_port.and_then(|t| u16::try_from(t).ok()).unwrap_or(0),
                })
            })
            .collect();
        let mut endpoints = Vec::new();
        let mut seen: HashSet<(String, String, u16)> = HashSet::default();
        for slice in slices.get(&(o.namespace.as_str(), o.name.as_str())).into_iter().flatten() {
            let CoreSpec::EndpointSlice { address_type, endpoints: eps, ports: slice_ports, .. } = &slice.spec else {
                continue;
            };
            if address_type == "FQDN" {
                continue;
            }
            let port_map: BTreeMap<String, u16> = slice_ports
                .iter()
                .filter_map(|p| Some((p.name.clone(), u16::try_from(p.port).ok().filter(|&n| n != 0)?)))
                .collect();
            for ep in eps.iter().filter(|e| healthy(e)) {
                let labels = match &ep.pod {
                    Some((ns, name)) => {
                        let ns = if ns.is_empty() { slice.namespace.as_str() } else { ns.as_str() };
                        // A Pod not known yet: Istio skips the endpoint rather than send
                        // it without its labels.
                        let Some(pod) = pods.get(&(ns, name.as_str())) else { continue };
                        endpoint_labels(pod, nodes.get(pod_node(pod, ep)).copied())
                    }
                    None => BTreeMap::new(),
                };
                let locality = locality(&labels);
                for address in &ep.addresses {
                    // One endpoint per (address, port name), as istiod de-duplicates (the
                    // port number too: distinct only when one address is reused).
                    let fresh: Vec<&String> = port_map
                        .iter()
                        .filter(|(name, port)| seen.insert((address.clone(), (*name).clone(), **port)))
                        .map(|(name, _)| name)
                        .collect();
                    if fresh.is_empty() {
                        continue;
                    }
                    endpoints.push(ServiceEndpoint {
                        address: address.clone(),
                        ports: fresh.into_iter().map(|n| (n.clone(), port_map[n])).collect(),
                        labels: labels.clone(),
                        weight: 1,
                        locality: locality.clone(),
                        named_ports_only: true,
                    });
                }
            }
        }
        // WorkloadEntries the selector picks (a Service without a selector picks none).
        for we in store.workload_entries.iter().filter(|we| we.meta.namespace == o.namespace) {
            let mut labels = we.spec.labels.clone();
            labels.extend(we.meta.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            if selector.is_empty() || !crate::store::selects(selector, &labels) {
                continue;
            }
            endpoints.push(ServiceEndpoint {
                address: we.spec.address.clone(),
                ports: we.spec.ports.iter().filter_map(|(k, v)| Some((k.clone(), u16::try_from(*v).ok()?))).collect(),
                locality: we.spec.locality.clone(),
                labels,
                weight: we.spec.weight.max(1),
                named_ports_only: false,
            });
        }
        let export_to = o
            .annotations
            .get("networking.istio.io/exportTo")
            .map(|a| a.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        out.push(Service {
            host: format!("{}.{}.svc.{domain}", o.name, o.namespace).to_ascii_lowercase(),
            namespace: o.namespace.clone(),
            origin: format!("Service {}/{}", o.namespace, o.name),
            ports,
            endpoints,
            resolution: Resolution::Static,
            location: Location::MeshInternal,
            export_to,
            subject_alt_names: Vec::new(),
            vips: cluster_ips.clone(),
        });
    }
    out
}

/// Ready (or with no `ready` condition): the endpoints Envoy gets as HEALTHY. Terminating
/// and not-ready endpoints are not sent (Istio's defaults).
fn healthy(ep: &SliceEndpoint) -> bool {
    ep.ready != Some(false)
}

fn pod_node<'a>(pod: &'a CoreObject, ep: &'a SliceEndpoint) -> &'a str {
    match &pod.spec {
        CoreSpec::Pod { node_name } if !node_name.is_empty() => node_name,
        _ => &ep.node_name,
    }
}

/// A Pod's labels plus what Istio adds (`AugmentLabels`): region, zone and subzone
/// from the node's topology labels, the cluster, and the node's hostname.
pub(crate) fn endpoint_labels(pod: &CoreObject, node: Option<&CoreObject>) -> BTreeMap<String, String> {
    let mut labels = pod.labels.clone();
    let node_name = match &pod.spec {
        CoreSpec::Pod { node_name } => node_name.as_str(),
        _ => "",
    };
    if let Some(node) = node {
        let get = |k: &str, old: &str| node.labels.get(k).or_else(|| node.labels.get(old)).filter(|v| !v.is_empty());
        for (key, old) in [
            ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"),
            ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"),
            ("topology.istio.io/subzone", "topology.istio.io/subzone"),
        ] {
            if let Some(v) = get(key, old) {
                labels.insert(key.to_string(), v.clone());
            }
        }
    }
    labels.insert("topology.istio.io/cluster".into(), CLUSTER_ID.into());
    if !node_name.is_empty() {
        labels.insert("kubernetes.io/hostname".into(), node_name.to_string());
    }
    labels
}

/// `region/zone/subzone` from the topology labels (empty when there are none).
fn locality(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<&str> =
        ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"]
            .iter()
            .map(|k| labels.get(*k).map_or("", String::as_str))
            .collect();
    if parts.iter().all(|p| p.is_empty()) { String::new() } else { parts.join("/").trim_end_matches('/').to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, annotations: {networking.istio.io/exportTo: \". , ops\"}}
spec:
  clusterIP: 10.0.0.9
  ports: [{name: http, port: 9080, targetPort: 8080}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: reviews.shop.svc.cluster.local}
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {topology.kubernetes.io/region: eu, topology.kubernetes.io/zone: eu-1}}
---
apiVersion: v1
kind: Pod
metadata: {name: r1, namespace: shop, labels: {app: reviews, version: v1}}
spec: {nodeName: n1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-x, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints:
- {addresses: [10.1.0.1], conditions: {ready: true}, targetRef: {kind: Pod, name: r1, namespace: shop}}
- {addresses: [10.1.0.2], conditions: {ready: false}, targetRef: {kind: Pod, name: r1, namespace: shop}}
- {addresses: [10.1.0.3], targetRef: {kind: Pod, name: not-yet, namespace: shop}}
- {addresses: [10.1.0.4]}
ports: [{name: http, port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-fqdn, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: FQDN
endpoints: [{addresses: [r.example.com]}]
ports: [{name: http, port: 8080}]
";

    #[test]
    fn services_and_endpoints_as_istiod_builds_them() {
        let report = weir_model::load_str("cluster.yaml", CLUSTER);
        let svcs = services(&report.core, &crate::store::Store::default(), "cluster.local");
        assert_eq!(svcs.len(), 1, "the ExternalName Service is an alias, not a service");
        let s = &svcs[0];
        assert_eq!(s.host, "reviews.shop.svc.cluster.local");
        assert_eq!(s.export_to, [".", "ops"]);
        assert_eq!(s.vips, ["10.0.0.9"]);
        let ports: Vec<(u16, &str, &str, u16)> =
            s.ports.iter().map(|p| (p.number, p.name.as_str(), p.protocol.as_str(), p.target_port)).collect();
        assert_eq!(ports, [(9080, "http", "HTTP", 8080)], "UDP ports are left out");
        // Ready with its Pod; not ready, Pod unknown and FQDN endpoints are left out;
        // one without a targetRef keeps no labels.
        let eps: Vec<(&str, Option<&str>, Option<&str>, &str)> = s
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.address.as_str(),
                    e.labels.get("version").map(String::as_str),
                    e.labels.get("topology.kubernetes.io/zone").map(String::as_str),
                    e.locality.as_str(),
                )
            })
            .collect();
        assert_eq!(eps, [("10.1.0.1", Some("v1"), Some("eu-1"), "eu/eu-1"), ("10.1.0.4", None, None, "")]);
        assert_eq!(s.endpoints[0].labels["kubernetes.io/hostname"], "n1");
        assert_eq!(s.endpoint_port(&s.endpoints[0], &s.ports[0]), Some(8080));
    }

    #[test]
    fn workload_entries_the_service_selects_are_endpoints() {
        let text = "apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec: {address: 10.9.0.1, labels: {app: legacy, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: other}
spec: {address: 10.9.0.2, labels: {app: legacy}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-3, namespace: shop}
spec: {address: 10.9.0.3, labels: {app: other}}
";
        let report = weir_model::load_str("cluster.yaml", text);
        assert!(!report.has_errors(), "{:?}", report.diagnostics);
        let store = crate::store::Store::new(report.resources);
        let svcs = services(&report.core, &store, "cluster.local");
        let s = &svcs[0];
        let addrs: Vec<&str> = s.endpoints.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(addrs, ["10.9.0.1"], "same namespace, selected labels only");
        assert_eq!(s.endpoint_port(&s.endpoints[0], &s.ports[0]), Some(8080), "the Service targetPort");
        assert_eq!(s.endpoints[0].labels["version"], "v1");
    }

    #[test]
    fn port_protocols_as_istio_infers_them() {
        let cases = [
            ("http-web", None, "TCP", 80, Some("HTTP")),
            ("HTTP2-x", None, "TCP", 80, Some("HTTP2")),
            ("grpc-web-x", None, "TCP", 80, Some("GRPC")),
            ("grpc", None, "TCP", 80, Some("GRPC")),
            ("httpfoo", None, "TCP", 80, Some("")),
            ("web", None, "TCP", 80, Some("")),
            ("", None, "TCP", 3306, Some("TCP")),
            ("", None, "TCP", 8080, Some("")),
            ("tcp-db", None, "TCP", 5432, Some("TCP")),
            ("mongo", None, "TCP", 27018, Some("TCP")),
            ("http", Some("kubernetes.io/h2c"), "TCP", 80, Some("HTTP2")),
            ("http", Some("grpc"), "TCP", 80, Some("GRPC")),
            ("http", Some("custom"), "TCP", 80, Some("")),
            ("dns", None, "UDP", 53, None),
        ];
        for (name, app, proto, number, want) in cases {
            assert_eq!(port_protocol(name, app, proto, number).as_deref(), want, "{name} {app:?} {proto} {number}");
        }
    }
}
