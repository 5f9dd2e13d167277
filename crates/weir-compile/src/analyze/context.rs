//! The indexes every check reads, built once per analysis: resources by kind, the
//! services visible by scope (ServiceEntries and Kubernetes Services, as istioctl's
//! `InitServiceEntryHostMap` builds them), and workloads with their labels.

use std::collections::{BTreeMap, HashMap};

use weir_model::k8s::{CoreKind, CoreObject, CoreSpec};
use weir_model::types::{DestinationRule, Gateway, ServiceEntry, Sidecar, VirtualService, WorkloadEntry};
use weir_model::{Resource, Spec};

use super::Inputs;

/// The cluster-local suffix short names expand with.
const CLUSTER_LOCAL: &str = "svc.cluster.local";

/// A short name (no dot, no leading `*`) as `<host>.<ns>.svc.cluster.local`; anything
/// else unchanged (istioctl's `ConvertHostToFQDN`: no lower-casing, IPs kept).
pub(crate) fn fqdn(ns: &str, host: &str) -> String {
    if !host.starts_with('*') && !host.contains('.') {
        format!("{host}.{ns}.{CLUSTER_LOCAL}")
    } else {
        host.to_string()
    }
}

/// The `(namespace, name)` a host stands for (istioctl's `GetResourceNameFromHost`):
/// `name.ns.svc.cluster.local` gives its two parts; anything else is a name in
/// `default_ns`. DestinationRules and subsets are matched by this pair.
pub(crate) fn resource_name(default_ns: &str, host: &str) -> (String, String) {
    if let Some((name, ns)) = host.strip_suffix(".svc.cluster.local").and_then(|rest| rest.rsplit_once('.'))
        && !name.is_empty()
        && !ns.is_empty()
    {
        return (ns.to_string(), name.to_string());
    }
    (default_ns.to_string(), host.to_string())
}

/// A label selector as Kubernetes prints it: `k=v` pairs, sorted, comma-separated.
pub(crate) fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

pub(crate) use crate::store::selects;

/// A service as destination checks see it.
#[derive(Debug, Clone)]
pub(crate) struct Svc<'a> {
    /// Port numbers.
    pub(crate) ports: Vec<u32>,
    /// A ServiceEntry's `workloadSelector` labels (none for Kubernetes Services).
    pub(crate) workload_selector: Option<&'a BTreeMap<String, String>>,
}

/// Services by `(scope, fqdn)`: scope `*` is visible everywhere, else the one
/// namespace it is exported to.
#[derive(Debug, Default)]
pub(crate) struct Services<'a> {
    by_scope: HashMap<(String, String), Svc<'a>>,
    /// Wildcard hosts, in insertion order: `(scope, host, service)`.
    wildcards: Vec<(String, String, Svc<'a>)>,
}

impl<'a> Services<'a> {
    fn insert(&mut self, scope: &str, host: String, svc: Svc<'a>) {
        if host.starts_with('*') {
            self.wildcards.retain(|(s, h, _)| !(s == scope && *h == host));
            self.wildcards.push((scope.to_string(), host.clone(), svc.clone()));
        }
        self.by_scope.insert((scope.to_string(), host), svc);
    }

    /// The service `host` names for a resource in `source_ns` exported with
    /// `export_to` (istioctl's `GetDestinationHost`): exported-to-all first, then the
    /// resource's own scopes, then wildcard hosts by suffix.
    pub(crate) fn lookup(&self, source_ns: &str, export_to: &[String], host: &str) -> Option<&Svc<'a>> {
        let name = fqdn(source_ns, host);
        let get = |scope: &str| self.by_scope.get(&(scope.to_string(), name.clone()));
        if let Some(s) = get("*") {
            return Some(s);
        }
        if export_to.is_empty() {
            if let Some(s) = get(source_ns) {
                return Some(s);
            }
        } else {
            for e in export_to {
                let scope = if e == "." { source_ns } else { e.as_str() };
                if let Some(s) = get(scope) {
                    return Some(s);
                }
            }
        }
        let bare = host.strip_prefix('*').unwrap_or(host);
        self.wildcards
            .iter()
            .filter(|(scope, _, _)| scope == "*" || scope == source_ns)
            .find(|(_, h, _)| bare.ends_with(h.strip_prefix('*').unwrap_or(h)))
            .map(|(_, _, s)| s)
    }
}

/// Everything the checks read.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) virtual_services: Vec<(&'a Resource, &'a VirtualService)>,
    pub(crate) destination_rules: Vec<(&'a Resource, &'a DestinationRule)>,
    pub(crate) gateways: Vec<(&'a Resource, &'a Gateway)>,
    pub(crate) service_entries: Vec<(&'a Resource, &'a ServiceEntry)>,
    pub(crate) workload_entries: Vec<(&'a Resource, &'a WorkloadEntry)>,
    pub(crate) sidecars: Vec<(&'a Resource, &'a Sidecar)>,
    pub(crate) core: &'a [CoreObject],
    /// Gateways by `(namespace, name)`.
    pub(crate) gateway_index: HashMap<(&'a str, &'a str), usize>,
    pub(crate) services: Services<'a>,
    /// Pods, with their labels as subsets see them (node topology added).
    pub(crate) pods: Vec<(&'a CoreObject, BTreeMap<String, String>)>,
    pub(crate) dns_auto_allocate: bool,
    /// `(kind, namespace, name)` → the value of its suppression annotation.
    suppressions: HashMap<(&'static str, &'a str, &'a str), &'a str>,
}

impl<'a> Context<'a> {
    /// Builds the indexes.
    pub fn new(inputs: &'a Inputs) -> Self {
        let mut cx = Context {
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            gateways: Vec::new(),
            service_entries: Vec::new(),
            workload_entries: Vec::new(),
            sidecars: Vec::new(),
            core: &inputs.core,
            gateway_index: HashMap::new(),
            services: Services::default(),
            pods: Vec::new(),
            suppressions: HashMap::new(),
            dns_auto_allocate: inputs.dns_auto_allocate,
        };
        for r in &inputs.resources {
            if let Some(s) = r.meta.annotations.get(super::SUPPRESS_ANNOTATION) {
                cx.suppressions.insert((r.kind().as_str(), &r.meta.namespace, &r.meta.name), s);
            }
            match &r.spec {
                Spec::VirtualService(s) => cx.virtual_services.push((r, s)),
                Spec::DestinationRule(s) => cx.destination_rules.push((r, s)),
                Spec::Gateway(s) => {
                    cx.gateway_index.insert((&r.meta.namespace, &r.meta.name), cx.gateways.len());
                    cx.gateways.push((r, s));
                }
                Spec::ServiceEntry(s) => cx.service_entries.push((r, s)),
                Spec::WorkloadEntry(s) => cx.workload_entries.push((r, s)),
                Spec::Sidecar(s) => cx.sidecars.push((r, s)),
            }
        }
        for (r, se) in &cx.service_entries {
            let ns = r.meta.namespace.as_str();
            let svc = Svc {
                ports: se.ports.iter().map(|p| p.number).collect(),
                workload_selector: se.workload_selector.as_ref().map(|w| &w.labels),
            };
            for h in &se.hosts {
                if se.export_to.is_empty() {
                    cx.services.insert("*", fqdn(ns, h), svc.clone());
                    continue;
                }
                for e in &se.export_to {
                    match e.as_str() {
                        "*" => {
                            cx.services.insert("*", fqdn(ns, h), svc.clone());
                            break;
                        }
                        "." => cx.services.insert(ns, fqdn(ns, h), svc.clone()),
                        other => cx.services.insert(other, fqdn(ns, h), svc.clone()),
                    }
                }
            }
        }
        let nodes: HashMap<&str, &CoreObject> =
            inputs.core.iter().filter(|o| o.kind == CoreKind::Node).map(|o| (o.name.as_str(), o)).collect();
        for o in &inputs.core {
            if let Some(s) = o.annotations.get(super::SUPPRESS_ANNOTATION) {
                cx.suppressions.insert((o.kind.as_str(), &o.namespace, &o.name), s);
            }
            match &o.spec {
                CoreSpec::Service { ports, .. } => {
                    let svc = Svc { ports: ports.iter().map(|p| p.port).collect(), workload_selector: None };
                    let host = fqdn(&o.namespace, &o.name);
                    match o.annotations.get("networking.istio.io/exportTo").filter(|a| !a.is_empty()) {
                        None => cx.services.insert("*", host, svc),
                        Some(list) => {
                            for scope in list.split(',').map(str::trim) {
                                let scope = if scope == "." { o.namespace.as_str() } else { scope };
                                cx.services.insert(scope, host.clone(), svc.clone());
                            }
                        }
                    }
                }
                CoreSpec::Pod { node_name } => {
                    cx.pods.push((o, crate::kube_registry::endpoint_labels(o, nodes.get(node_name.as_str()).copied())))
                }
                _ => {}
            }
        }
        cx
    }

    /// The gateway a VirtualService in `vs_ns` names with `name` (`ns/name` or short).
    pub(crate) fn gateway(&self, vs_ns: &str, name: &str) -> Option<(&'a Resource, &'a Gateway)> {
        let (ns, name) = gateway_name(vs_ns, name);
        self.gateway_index.get(&(ns, name)).map(|&i| self.gateways[i])
    }

    /// Pods a selector picks (all namespaces).
    pub(crate) fn pods_selected<'s>(
        &'s self,
        selector: &'s BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a CoreObject> + 's {
        self.pods.iter().filter(move |(p, _)| selects(selector, &p.labels)).map(|(p, _)| *p)
    }

    /// Every workload a subset could select: Pods (with node topology labels) and, in
    /// file mode, WorkloadEntries and ServiceEntry endpoints — weir's registry there.
    pub(crate) fn workloads(&self) -> Workloads<'_> {
        let mut w = Workloads::default();
        for (_, labels) in &self.pods {
            w.add(labels);
        }
        for (_, we) in &self.workload_entries {
            w.add(&we.labels);
        }
        for (_, se) in &self.service_entries {
            for ep in &se.endpoints {
                w.add(&ep.labels);
            }
        }
        w
    }

    /// The codes the resource `kind ns/name` silences with its suppression annotation.
    pub(crate) fn suppressed(&self, kind: &str, ns: &str, name: &str) -> Option<&'a str> {
        self.suppressions.get(&(kind, ns, name)).copied()
    }
}

/// Workload label sets, indexed by label so that a selector is checked against the
/// workloads carrying its rarest label only (10,000 subsets over 20,000 endpoints
/// would otherwise be 200 million comparisons).
#[derive(Debug, Default)]
pub(crate) struct Workloads<'w> {
    all: Vec<&'w BTreeMap<String, String>>,
    by_label: HashMap<(&'w str, &'w str), Vec<usize>>,
}

impl<'w> Workloads<'w> {
    fn add(&mut self, labels: &'w BTreeMap<String, String>) {
        let i = self.all.len();
        self.all.push(labels);
        for (k, v) in labels {
            self.by_label.entry((k, v)).or_default().push(i);
        }
    }

    /// True when some workload carries every label of `selector`.
    pub(crate) fn any_selected(&self, selector: &BTreeMap<String, String>) -> bool {
        let mut rarest: Option<&Vec<usize>> = None;
        for (k, v) in selector {
            match self.by_label.get(&(k.as_str(), v.as_str())) {
                None => return false,
                Some(list) if rarest.is_none_or(|r| list.len() < r.len()) => rarest = Some(list),
                Some(_) => {}
            }
        }
        match rarest {
            None => !self.all.is_empty(),
            Some(list) => list.iter().any(|&i| selects(selector, self.all[i])),
        }
    }
}

/// `ns/name` or a short name in `default_ns` (istioctl's `NewShortOrFullName`).
pub(crate) fn gateway_name<'s>(default_ns: &'s str, name: &'s str) -> (&'s str, &'s str) {
    name.split_once('/').unwrap_or((default_ns, name))
}
