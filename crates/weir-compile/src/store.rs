//! The resources a compilation reads, grouped by kind and in Istio's precedence order
//! (older first: creation time, then name, then namespace).

use weir_model::types::{DestinationRule, Gateway, ServiceEntry, Sidecar, VirtualService, WorkloadEntry};
use weir_model::{ObjectMeta, Origin, Resource, Spec};

/// One resource of kind `T` with its metadata.
#[derive(Debug, Clone)]
pub struct Item<T> {
    /// Metadata (namespace already defaulted).
    pub meta: ObjectMeta,
    /// The spec.
    pub spec: T,
    /// Where it was written.
    pub origin: Origin,
}

impl<T> Item<T> {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.meta.namespace, self.meta.name)
    }
}

/// Valid resources by kind.
#[derive(Debug, Clone, Default)]
pub struct Store {
    /// VirtualServices.
    pub virtual_services: Vec<Item<VirtualService>>,
    /// DestinationRules.
    pub destination_rules: Vec<Item<DestinationRule>>,
    /// Gateways.
    pub gateways: Vec<Item<Gateway>>,
    /// ServiceEntries.
    pub service_entries: Vec<Item<ServiceEntry>>,
    /// WorkloadEntries.
    pub workload_entries: Vec<Item<WorkloadEntry>>,
    /// Sidecars.
    pub sidecars: Vec<Item<Sidecar>>,
}

fn order<T>(items: &mut [Item<T>]) {
    items.sort_by(|a, b| {
        let ka = (a.meta.creation_timestamp.as_deref().unwrap_or(""), &a.meta.name, &a.meta.namespace);
        let kb = (b.meta.creation_timestamp.as_deref().unwrap_or(""), &b.meta.name, &b.meta.namespace);
        ka.cmp(&kb)
    });
}

impl Store {
    /// Groups resources by kind and orders each group.
    pub fn new(resources: impl IntoIterator<Item = Resource>) -> Self {
        let mut s = Store::default();
        for r in resources {
            let (meta, origin) = (r.meta, r.origin);
            match r.spec {
                Spec::VirtualService(spec) => s.virtual_services.push(Item { meta, spec, origin }),
                Spec::DestinationRule(spec) => s.destination_rules.push(Item { meta, spec, origin }),
                Spec::Gateway(spec) => s.gateways.push(Item { meta, spec, origin }),
                Spec::ServiceEntry(spec) => s.service_entries.push(Item { meta, spec, origin }),
                Spec::WorkloadEntry(spec) => s.workload_entries.push(Item { meta, spec, origin }),
                Spec::Sidecar(spec) => s.sidecars.push(Item { meta, spec: *spec, origin }),
            }
        }
        order(&mut s.virtual_services);
        order(&mut s.destination_rules);
        order(&mut s.gateways);
        order(&mut s.service_entries);
        order(&mut s.workload_entries);
        order(&mut s.sidecars);
        s
    }
}

/// True when a resource exported with `export_to` from `own_ns` is visible in `client_ns`.
pub fn visible(export_to: &[String], own_ns: &str, client_ns: &str) -> bool {
    export_to.is_empty() || export_to.iter().any(|e| e == "*" || e == client_ns || (e == "." && own_ns == client_ns))
}

/// True when every selector label is among `labels`.
pub fn selects(
    selector: &std::collections::BTreeMap<String, String>,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
