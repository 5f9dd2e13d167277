//! The service registry of file mode: services, ports and labelled endpoints from
//! ServiceEntries (inline `endpoints`, or `workloadSelector` over WorkloadEntries).

use std::collections::BTreeMap;

use crate::fast_map::HashMap;
use std::net::IpAddr;

use weir_model::types::{Location, Resolution, ServiceEntry};

use crate::store::{Item, Store, selects, visible};

/// A service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// Number.
    pub number: u16,
    /// Name.
    pub name: String,
    /// Protocol as declared (upper-case; empty = sniffed).
    pub protocol: String,
    /// Endpoint port when endpoints do not say (0 = same as `number`).
    pub target_port: u16,
}

impl ServicePort {
    /// The endpoint port when an endpoint names none: `targetPort`, else the number.
    pub fn default_target(&self) -> u16 {
        if self.target_port != 0 { self.target_port } else { self.number }
    }
}

/// An endpoint of a service, before it is tied to a port.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEndpoint {
    /// IP, FQDN or unix path.
    pub address: String,
    /// Port name -> endpoint port.
    pub ports: BTreeMap<String, u16>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// LB weight (>= 1).
    pub weight: u32,
    /// Locality.
    pub locality: String,
    /// Serves only the port names in `ports`: set on endpoints a later ServiceEntry
    /// adds to an existing host (Istio pools a host's endpoints across the entries of
    /// one namespace and ties them to the service's ports by name).
    pub named_ports_only: bool,
}

/// A service in the registry: one per ServiceEntry host.
#[derive(Debug, Clone)]
pub struct Service {
    /// Host name, lower-case.
    pub host: String,
    /// Namespace of the ServiceEntry.
    pub namespace: String,
    /// The ServiceEntry (`ns/name`).
    pub origin: String,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Endpoints.
    pub endpoints: Vec<ServiceEndpoint>,
    /// Resolution.
    pub resolution: Resolution,
    /// Location.
    pub location: Location,
    /// exportTo.
    pub export_to: Vec<String>,
    /// `subjectAltNames`: SANs accepted from the endpoints' certificates when a
    /// DestinationRule's `tls` names none.
    pub subject_alt_names: Vec<String>,
    /// `addresses` that are single IPs (VIPs): on the mesh listener they are names of
    /// the service, as Envoy's virtual-host domains list a service's VIPs.
    pub vips: Vec<String>,
}

impl Service {
    /// The port with this number.
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// The port a client means when it names none: the only port, else 80 if
    /// declared, else the first.
    pub fn default_port(&self) -> Option<u16> {
        match self.ports.as_slice() {
            [] => None,
            [only] => Some(only.number),
            ports => Some(ports.iter().find(|p| p.number == 80).unwrap_or(&ports[0]).number),
        }
    }

    /// The endpoint port for service port `port` on `ep`: the endpoint's port map by
    /// port name, else `targetPort`, else the service port; `None` when the endpoint
    /// does not serve that port.
    pub fn endpoint_port(&self, ep: &ServiceEndpoint, port: &ServicePort) -> Option<u16> {
        match ep.ports.get(&port.name) {
            Some(p) => Some(*p),
            None if ep.named_ports_only => None,
            None => Some(port.default_target()),
        }
    }
}

/// All services, by host.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Services in precedence order.
    pub services: Vec<Service>,
    by_host: HashMap<String, Vec<usize>>,
}

fn endpoint_from(
    we: &weir_model::types::WorkloadEntry,
    meta_labels: Option<&BTreeMap<String, String>>,
) -> ServiceEndpoint {
    // Metadata labels win over spec labels, as Istio merges them.
    let mut labels = we.labels.clone();
    labels.extend(meta_labels.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
    ServiceEndpoint {
        address: we.address.clone(),
        ports: we.ports.iter().filter_map(|(k, v)| Some((k.clone(), u16::try_from(*v).ok()?))).collect(),
        labels,
        weight: we.weight.max(1),
        locality: we.locality.clone(),
        named_ports_only: false,
    }
}

impl Registry {
    /// Builds the registry from the store's ServiceEntries and WorkloadEntries. A host
    /// declared by several entries of one namespace is one service: the oldest entry's
    /// ports and settings, with every entry's endpoints.
    pub fn build(store: &Store) -> Self {
        Registry::build_with(store, Vec::new())
    }

    /// Builds the registry from Kubernetes services (first: Istio's Kubernetes registry
    /// precedes ServiceEntries for a host both declare) and the store's ServiceEntries.
    pub fn build_with(store: &Store, kubernetes: Vec<Service>) -> Self {
        let mut reg = Registry::default();
        for svc in kubernetes {
            reg.by_host.entry(svc.host.clone()).or_default().push(reg.services.len());
            reg.services.push(svc);
        }
        let mut by_key: HashMap<(String, String), usize> = HashMap::default();
        for se in &store.service_entries {
            let mut endpoints = endpoints_of(se, store);
            let last = se.spec.hosts.len().saturating_sub(1);
            for (i, host) in se.spec.hosts.iter().enumerate() {
                let host = host.to_ascii_lowercase();
                if let Some(&i) = by_key.get(&(host.clone(), se.meta.namespace.clone())) {
                    let extra = endpoints.iter().map(|ep| named_ports(ep, &se.spec));
                    reg.services[i].endpoints.extend(extra);
                    continue;
                }
                by_key.insert((host.clone(), se.meta.namespace.clone()), reg.services.len());
                let svc = Service {
                    host,
                    namespace: se.meta.namespace.clone(),
                    origin: se.id(),
                    ports: se
                        .spec
                        .ports
                        .iter()
                        .filter_map(|p| {
                            Some(ServicePort {
                                number: u16::try_from(p.number).ok()?,
                                name: p.name.clone(),
                                protocol: p.protocol.to_ascii_uppercase(),
                                target_port: u16::try_from(p.target_port).unwrap_or(0),
                            })
                        })
                        .collect(),
                    // Each host of the entry has the endpoints; the last one takes them.
                    endpoints: if i == last { std::mem::take(&mut endpoints) } else { endpoints.clone() },
                    resolution: se.spec.effective_resolution(),
                    location: se.spec.effective_location(),
                    export_to: se.spec.export_to.clone(),
                    subject_alt_names: se.spec.subject_alt_names.clone(),
                    vips: se
                        .spec
                        .addresses
                        .iter()
                        .map(|a| a.strip_suffix("/32").unwrap_or(a))
                        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
                        .map(str::to_string)
                        .collect(),
                };
                reg.by_host.entry(svc.host.clone()).or_default().push(reg.services.len());
                reg.services.push(svc);
            }
        }
        reg
    }

    /// The service a client in `client_ns` reaches by `host` (exact registry name):
    /// among the visible ones, its own namespace's first, else the oldest.
    pub fn lookup(&self, host: &str, client_ns: &str) -> Option<&Service> {
        let candidates = self.by_host.get(host)?;
        let visible_ones =
            candidates.iter().map(|i| &self.services[*i]).filter(|s| visible(&s.export_to, &s.namespace, client_ns));
        let mut first = None;
        for s in visible_ones {
            if s.namespace == client_ns {
                return Some(s);
            }
            first.get_or_insert(s);
        }
        first
    }

    /// Every service visible from `client_ns`, one per host, in precedence order.
    pub fn visible_services<'a>(&'a self, client_ns: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .iter()
            .filter(move |s| self.lookup(&s.host, client_ns).is_some_and(|chosen| std::ptr::eq(chosen, *s)))
    }
}

fn endpoints_of(se: &Item<ServiceEntry>, store: &Store) -> Vec<ServiceEndpoint> {
    if let Some(sel) = &se.spec.workload_selector {
        return store
            .workload_entries
            .iter()
            .filter(|we| we.meta.namespace == se.meta.namespace)
            .map(|we| endpoint_from(&we.spec, Some(&we.meta.labels)))
            .filter(|ep| selects(&sel.labels, &ep.labels))
            .collect();
    }
    se.spec.endpoints.iter().map(|e| endpoint_from(e, None)).collect()
}

/// `ep` as an endpoint of another entry's service: its port for each of `se`'s port
/// names made explicit, serving those names only.
fn named_ports(ep: &ServiceEndpoint, se: &ServiceEntry) -> ServiceEndpoint {
    let mut ep = ep.clone();
    for p in &se.ports {
        if !ep.ports.contains_key(&p.name) {
            let target = if p.target_port != 0 { p.target_port } else { p.number };
            if let Ok(port) = u16::try_from(target) {
                ep.ports.insert(p.name.clone(), port);
            }
        }
    }
    ep.named_ports_only = true;
    ep
}

/// True when `address` is an IP literal.
pub fn is_ip(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok()
}

/// The host part used for endpoints of a DNS service without endpoints (not wildcards).
pub fn dns_target(host: &str) -> Option<&str> {
    (!host.starts_with('*')).then_some(host)
}
