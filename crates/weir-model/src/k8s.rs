//! The Kubernetes objects that analysis reads beside the Istio resources: Services
//! (hosts and ports), Pods (labels that gateways, Sidecars and subsets select),
//! Namespaces, Nodes, Secrets (gateway credentials), Deployments (annotations) and
//! RequestAuthentications (JWT claim routing).
//!
//! They are read leniently, straight from the positioned tree: these are not weir's
//! schema to police, and `kubectl` has already checked them. Only the fields analysis
//! uses are kept; the proxy never sees them in file mode (its registry is ServiceEntries).

use std::collections::BTreeMap;
use std::fmt;

use crate::node::{Node, Value};
use crate::resource::{DEFAULT_NAMESPACE, Origin};

/// The kinds read for analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoreKind {
    /// `v1` Service.
    Service,
    /// `v1` Pod.
    Pod,
    /// `v1` Namespace (cluster-scoped).
    Namespace,
    /// `v1` Node (cluster-scoped).
    Node,
    /// `v1` Secret.
    Secret,
    /// `apps/v1` Deployment.
    Deployment,
    /// `security.istio.io` RequestAuthentication.
    RequestAuthentication,
    /// `gateway.networking.k8s.io` Gateway (Kubernetes Gateway API).
    KubernetesGateway,
    /// `discovery.k8s.io` EndpointSlice.
    EndpointSlice,
}

impl CoreKind {
    /// The kind for an `apiVersion` group and `kind`, when analysis reads it.
    pub fn parse(group: &str, kind: &str) -> Option<CoreKind> {
        Some(match (group, kind) {
            ("", "Service") => CoreKind::Service,
            ("", "Pod") => CoreKind::Pod,
            ("", "Namespace") => CoreKind::Namespace,
            ("", "Node") => CoreKind::Node,
            ("", "Secret") => CoreKind::Secret,
            ("apps", "Deployment") => CoreKind::Deployment,
            ("security.istio.io", "RequestAuthentication") => CoreKind::RequestAuthentication,
            ("gateway.networking.k8s.io", "Gateway") => CoreKind::KubernetesGateway,
            ("discovery.k8s.io", "EndpointSlice") => CoreKind::EndpointSlice,
            _ => return None,
        })
    }

    /// The `kind:` string.
    pub fn as_str(self) -> &'static str {
        match self {
            CoreKind::Service => "Service",
            CoreKind::Pod => "Pod",
            CoreKind::Namespace => "Namespace",
            CoreKind::Node => "Node",
            CoreKind::Secret => "Secret",
            CoreKind::Deployment => "Deployment",
            CoreKind::RequestAuthentication => "RequestAuthentication",
            CoreKind::KubernetesGateway => "Gateway",
            CoreKind::EndpointSlice => "EndpointSlice",
        }
    }

    /// Cluster-scoped kinds have no namespace.
    pub fn cluster_scoped(self) -> bool {
        matches!(self, CoreKind::Namespace | CoreKind::Node)
    }
}

impl fmt::Display for CoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `name`.
    pub name: String,
    /// `port`.
    pub port: u32,
    /// `targetPort` when it is a number (a named target port resolves on the Pod).
    pub target_port: Option<u32>,
    /// `protocol` (`TCP` when absent).
    pub protocol: String,
    /// `appProtocol`.
    pub app_protocol: Option<String>,
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEndpoint {
    /// `addresses`.
    pub addresses: Vec<String>,
    /// `conditions.ready` (`None`: absent, which counts as ready).
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
    /// `targetRef` when it names a Pod: `(namespace, name)`.
    pub pod: Option<(String, String)>,
    /// `nodeName`.
    pub node_name: String,
}

/// A port of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    /// `name` (`""` when unset).
    pub name: String,
    /// `port` (0 when unset).
    pub port: u32,
    /// `protocol` (`TCP` when absent).
    pub protocol: String,
}

/// What analysis (and the Kubernetes registry) keeps of each kind.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreSpec {
    /// A Service: its selector and ports.
    Service {
        /// `spec.selector`.
        selector: BTreeMap<String, String>,
        /// `spec.ports`.
        ports: Vec<ServicePort>,
        /// `spec.clusterIPs` (or `clusterIP`); `None` for a headless Service.
        cluster_ips: Vec<String>,
        /// `spec.type`: `ExternalName` Services are aliases, not services of their own.
        external_name: Option<String>,
    },
    /// A Pod: the node it runs on.
    Pod {
        /// `spec.nodeName`.
        node_name: String,
    },
    /// An EndpointSlice: the Service it belongs to, its address type, endpoints and ports.
    EndpointSlice {
        /// The `kubernetes.io/service-name` label.
        service: String,
        /// `addressType` (`IPv4`, `IPv6`, `FQDN`).
        address_type: String,
        /// `endpoints`.
        endpoints: Vec<SliceEndpoint>,
        /// `ports`.
        ports: Vec<SlicePort>,
    },
    /// A Secret: its type and decoded data.
    Secret {
        /// `type` (`Opaque` when absent).
        kind: String,
        /// `data` (base64-decoded; `None` when not valid base64) merged with `stringData`.
        data: BTreeMap<String, Option<Vec<u8>>>,
    },
    /// A RequestAuthentication: the labels it selects (empty: every workload).
    RequestAuthentication {
        /// `spec.selector.matchLabels`.
        selector: BTreeMap<String, String>,
    },
    /// A Kubernetes Gateway API Gateway: each listener's `hostname` (`None`: any host).
    KubernetesGateway {
        /// `spec.listeners[].hostname`.
        hostnames: Vec<Option<String>>,
    },
    /// Namespace, Node, Deployment: metadata only.
    Meta,
}

/// One Kubernetes object read for analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreObject {
    /// Kind.
    pub kind: CoreKind,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when absent; empty for cluster-scoped kinds).
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The kept part of the spec.
    pub spec: CoreSpec,
    /// Where it was written.
    pub origin: Origin,
}

impl CoreObject {
    /// Reads `node` as `kind`; missing or odd fields read as empty.
    pub fn read(kind: CoreKind, node: &Node, origin: Origin) -> CoreObject {
        let meta = node.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Node::as_str).unwrap_or("").to_string();
        let namespace = if kind.cluster_scoped() {
            String::new()
        } else {
            meta.and_then(|m| m.get("namespace"))
                .and_then(Node::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_NAMESPACE)
                .to_string()
        };
        let spec_node = node.get("spec");
        let spec = match kind {
            CoreKind::Service => CoreSpec::Service {
                selector: string_map(spec_node.and_then(|s| s.get("selector"))),
                ports: items(spec_node.and_then(|s| s.get("ports"))).iter().map(service_port).collect(),
                cluster_ips: {
                    let many: Vec<String> =
                        items(spec_node.and_then(|s| s.get("clusterIPs"))).iter().filter_map(scalar).collect();
                    let one = spec_node.and_then(|s| s.get("clusterIP")).and_then(scalar);
                    let all = if many.is_empty() { one.into_iter().collect() } else { many };
                    all.into_iter().filter(|ip| !ip.is_empty() && ip != "None").collect()
                },
                external_name: (spec_node.and_then(|s| s.get("type")).and_then(Node::as_str) == Some("ExternalName"))
                    .then(|| spec_node.and_then(|s| s.get("externalName")).and_then(scalar).unwrap_or_default()),
            },
            CoreKind::Pod => CoreSpec::Pod {
                node_name: spec_node.and_then(|s| s.get("nodeName")).and_then(scalar).unwrap_or_default(),
            },
            CoreKind::Secret => {
                let mut data: BTreeMap<String, Option<Vec<u8>>> =
                    string_map(node.get("data")).into_iter().map(|(k, v)| (k, base64_decode(&v))).collect();
                for (k, v) in string_map(node.get("stringData")) {
                    data.insert(k, Some(v.into_bytes()));
                }
                let kind = node.get("type").and_then(Node::as_str).unwrap_or("Opaque").to_string();
                CoreSpec::Secret { kind, data }
            }
            CoreKind::RequestAuthentication => CoreSpec::RequestAuthentication {
                selector: string_map(spec_node.and_then(|s| s.get("selector")).and_then(|s| s.get("matchLabels"))),
            },
            CoreKind::EndpointSlice => CoreSpec::EndpointSlice {
                service: string_map(meta.and_then(|m| m.get("labels")))
                    .remove("kubernetes.io/service-name")
                    .unwrap_or_default(),
                address_type: node.get("addressType").and_then(scalar).unwrap_or_default(),
                endpoints: items(node.get("endpoints")).iter().map(slice_endpoint).collect(),
                ports: items(node.get("ports"))
                    .iter()
                    .map(|p| SlicePort {
                        name: p.get("name").and_then(scalar).unwrap_or_default(),
                        port: number(p.get("port")).unwrap_or(0),
                        protocol: p.get("protocol").and_then(scalar).unwrap_or_else(|| "TCP".into()),
                    })
                    .collect(),
            },
            CoreKind::KubernetesGateway => CoreSpec::KubernetesGateway {
                hostnames: items(spec_node.and_then(|s| s.get("listeners")))
                    .iter()
                    .map(|l| l.get("hostname").and_then(Node::as_str).filter(|h| !h.is_empty()).map(str::to_string))
                    .collect(),
            },
            CoreKind::Namespace | CoreKind::Node | CoreKind::Deployment => CoreSpec::Meta,
        };
        CoreObject {
            kind,
            name,
            namespace,
            labels: string_map(meta.and_then(|m| m.get("labels"))),
            annotations: string_map(meta.and_then(|m| m.get("annotations"))),
            spec,
            origin,
        }
    }

    /// `Kind ns/name` (or `Kind name` when cluster-scoped), as istioctl names resources.
    pub fn display_name(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

fn items(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

/// A scalar as text (labels and annotations may be written unquoted as numbers or booleans).
fn scalar(node: &Node) -> Option<String> {
    Some(match &node.value {
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Null => String::new(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

fn string_map(node: Option<&Node>) -> BTreeMap<String, String> {
    match node.map(|n| &n.value) {
        Some(Value::Map(entries)) => entries.iter().filter_map(|(k, v)| Some((k.name.clone(), scalar(v)?))).collect(),
        _ => BTreeMap::new(),
    }
}

fn number(node: Option<&Node>) -> Option<u32> {
    match node.map(|n| &n.value) {
        Some(Value::UInt(u)) => u32::try_from(*u).ok(),
        Some(Value::Str(s)) => s.parse().ok(),
        _ => None,
    }
}

fn flag(node: Option<&Node>) -> Option<bool> {
    match node.map(|n| &n.value) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn slice_endpoint(node: &Node) -> SliceEndpoint {
    let conditions = node.get("conditions");
    let target = node.get("targetRef");
    let pod = target.filter(|t| t.get("kind").and_then(Node::as_str) == Some("Pod")).map(|t| {
        let get = |k: &str| t.get(k).and_then(scalar).unwrap_or_default();
        (get("namespace"), get("name"))
    });
    SliceEndpoint {
        addresses: items(node.get("addresses")).iter().filter_map(scalar).collect(),
        ready: flag(conditions.and_then(|c| c.get("ready"))),
        serving: flag(conditions.and_then(|c| c.get("serving"))),
        terminating: flag(conditions.and_then(|c| c.get("terminating"))),
        pod,
        node_name: node.get("nodeName").and_then(scalar).unwrap_or_default(),
    }
}

fn service_port(node: &Node) -> ServicePort {
    ServicePort {
        name: node.get("name").and_then(scalar).unwrap_or_default(),
        port: number(node.get("port")).unwrap_or(0),
        target_port: number(node.get("targetPort")),
        protocol: node.get("protocol").and_then(scalar).unwrap_or_else(|| "TCP".into()),
        app_protocol: node.get("appProtocol").and_then(scalar),
    }
}

/// Standard base64 (whitespace ignored, as the API server's decoder does). `None` when invalid.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Pos, documents};

    fn read(kind: CoreKind, yaml: &str) -> CoreObject {
        let doc = documents(yaml).next().unwrap().root.unwrap();
        CoreObject::read(kind, &doc, Origin { file: "t.yaml".into(), pos: Pos::new(1, 1) })
    }

    #[test]
    fn a_service_keeps_its_selector_and_ports() {
        let s = read(
            CoreKind::Service,
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: bookinfo, annotations: {a: 1}}\n\
             spec:\n  selector: {app: reviews}\n  ports:\n  - {name: http, port: 9080, targetPort: 8080}\n  - {port: 81, targetPort: web, protocol: UDP}\n",
        );
        assert_eq!(s.display_name(), "Service bookinfo/reviews");
        assert_eq!(s.annotations["a"], "1");
        let CoreSpec::Service { selector, ports, .. } = s.spec else { panic!() };
        assert_eq!(selector["app"], "reviews");
        assert_eq!(ports[0].target_port, Some(8080));
        assert_eq!(ports[0].protocol, "TCP");
        assert_eq!((ports[1].target_port, ports[1].protocol.as_str()), (None, "UDP"));
    }

    #[test]
    fn a_secret_decodes_data_and_merges_string_data() {
        let s = read(
            CoreKind::Secret,
            "kind: Secret\nmetadata: {name: c}\ntype: kubernetes.io/tls\ndata: {tls.crt: aGVsbG8=, bad: '*'}\nstringData: {tls.key: k}\n",
        );
        assert_eq!(s.namespace, "default");
        let CoreSpec::Secret { kind, data } = s.spec else { panic!() };
        assert_eq!(kind, "kubernetes.io/tls");
        assert_eq!(data["tls.crt"].as_deref(), Some(&b"hello"[..]));
        assert_eq!(data["bad"], None);
        assert_eq!(data["tls.key"].as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn namespaces_are_cluster_scoped() {
        let n = read(CoreKind::Namespace, "kind: Namespace\nmetadata: {name: bookinfo, namespace: x}\n");
        assert_eq!(n.display_name(), "Namespace bookinfo");
    }
}
