//! weir's compiler: valid Istio resources in, an immutable [`weir_table::RouteTable`]
//! out. Pure and deterministic: the same resources and instance always give the same
//! table, so it is tested and benchmarked without a network.
//!
//! Where to begin reading: [`compile`]. Then [`registry`] (services and endpoints from
//! ServiceEntries), [`policy`] (which DestinationRule applies and the merged policy),
//! `routes` (VirtualService routes for one place) and `listeners` (gateway and mesh).

pub mod analyze;
mod clusters;
mod delegate;
mod egress;
mod fast_map;
mod header_ops;
pub mod hosts;
pub mod kube_registry;
mod l4;
mod listeners;
mod notes;
pub mod policy;
pub mod registry;
mod route_policy;
mod routes;
pub mod store;
mod upstream_tls;

use std::collections::BTreeMap;

use weir_model::Resource;
use weir_table::RouteTable;

pub use clusters::cluster_name;
pub use notes::CompileNote;
pub use store::Store;

/// Who this proxy is: what selects Gateways and route entries.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Workload labels (Gateway `selector`, match `sourceLabels`).
    pub labels: BTreeMap<String, String>,
    /// Namespace (visibility, short names, `sourceNamespace`).
    pub namespace: String,
    /// Build the mesh listener.
    pub mesh: bool,
    /// Cluster domain (`cluster.local`).
    pub domain: String,
    /// Root namespace (mesh-wide DestinationRules).
    pub root_namespace: String,
}

impl Default for Instance {
    fn default() -> Self {
        Instance {
            labels: BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]),
            namespace: "istio-system".into(),
            mesh: false,
            domain: hosts::DEFAULT_DOMAIN.into(),
            root_namespace: "istio-system".into(),
        }
    }
}

/// A compiled table and what the compiler noticed.
#[derive(Debug)]
pub struct Compiled {
    /// The table.
    pub table: RouteTable,
    /// Warnings: destinations naming nothing, servers not served... each on its
    /// resource, with the field to place it on.
    pub diagnostics: Vec<CompileNote>,
    /// What the compile read, handed back so that a caller with a table to install
    /// frees it afterwards: at 10,000 services freeing the resources and the registry
    /// takes tens of milliseconds a reload need not wait for.
    pub inputs: Inputs,
}

/// The resources and the registry a compile read; freed on drop.
pub struct Inputs {
    _store: Store,
    _registry: registry::Registry,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").finish_non_exhaustive()
    }
}

/// Compiles valid resources for `instance`.
pub fn compile(resources: impl IntoIterator<Item = Resource>, instance: &Instance, version: u64) -> Compiled {
    compile_with(resources, &[], instance, version)
}

/// Compiles valid resources for `instance`, with the Kubernetes Services,
/// EndpointSlices, Pods and Nodes of `core` in the registry beside ServiceEntries.
pub fn compile_with(
    resources: impl IntoIterator<Item = Resource>,
    core: &[weir_model::k8s::CoreObject],
    instance: &Instance,
    version: u64,
) -> Compiled {
    let store = Store::new(resources);
    let registry = registry::Registry::build_with(&store, kube_registry::services(core, &store, &instance.domain));
    let mut clusters = clusters::Clusters::new(&store, &registry, instance);
    let mut notes = Vec::new();
    let mut listeners = listeners::gateways(&store, instance, &mut clusters, &mut notes);
    if instance.mesh {
        listeners.extend(listeners::mesh_listeners(&store, &registry, instance, &mut clusters, &mut notes));
    }
    clusters.build_all();
    notes.append(&mut clusters.missing);
    let mut diagnostics: Vec<CompileNote> = notes.into_iter().map(CompileNote::from).collect();
    diagnostics.sort_by(|a, b| {
        let key = |n: &CompileNote| {
            (n.diagnostic.file.clone(), n.diagnostic.line, n.diagnostic.column, n.diagnostic.message.clone())
        };
        key(a).cmp(&key(b))
    });
    diagnostics.dedup();
    let mut clusters = clusters.into_clusters();
    clusters.shrink_to_fit();
    let inputs = Inputs { _store: store, _registry: registry };
    Compiled { table: RouteTable { version, listeners, clusters }, diagnostics, inputs }
}
