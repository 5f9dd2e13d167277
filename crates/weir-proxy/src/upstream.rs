//! Runtime state behind the table: per cluster a balancer and per endpoint a
//! connection pool and an in-flight counter. Built when a table is installed; a
//! cluster whose definition did not change keeps its state (pools, counters), and an
//! endpoint that stays keeps its pool, so reloads do not drop upstream connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use weir_table::{Address, Cluster, Endpoint, LbPolicy, ListenerRole, RouteTable};

use crate::balance::{Balancer, Candidate};
use crate::pool::Pool;
use crate::telemetry::{DestLabels, canonical};

/// One upstream endpoint at run time.
#[derive(Debug)]
pub(crate) struct EndpointState {
    pub(crate) address: Address,
    pub(crate) weight: u32,
    /// In-flight requests (LEAST_REQUEST).
    pub(crate) active: AtomicU32,
    /// One pool per worker: a request uses its own worker's connections.
    pub(crate) pools: Box<[Pool]>,
    /// `ip:port` as text (access log, hashing).
    pub(crate) host: Arc<str>,
    /// Metric labels for requests it serves.
    pub(crate) labels: Arc<DestLabels>,
}

impl EndpointState {
    fn new(address: Address, weight: u32, host: Arc<str>, labels: Arc<DestLabels>, workers: usize) -> Self {
        EndpointState {
            address,
            weight,
            active: AtomicU32::new(0),
            pools: (0..workers.max(1)).map(|_| Pool::default()).collect(),
            host,
            labels,
        }
    }

    /// The calling worker's pool.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pools[crate::workers::current() % self.pools.len()]
    }

    /// Open upstream connections over all workers.
    pub(crate) fn connections(&self) -> u32 {
        self.pools.iter().map(|p| p.connections.load(Ordering::Relaxed)).sum()
    }

    /// Idle HTTP/1.1 connections over all workers.
    pub(crate) fn idle(&self) -> usize {
        self.pools.iter().map(Pool::idle).sum()
    }
}

impl Candidate for Arc<EndpointState> {
    fn weight(&self) -> u32 {
        self.weight
    }
    fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }
    fn hash_key(&self) -> String {
        self.host.to_string()
    }
}

/// Counts a request in flight on an endpoint until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<EndpointState>);

impl InFlight {
    pub(crate) fn new(ep: &Arc<EndpointState>) -> Self {
        ep.active.fetch_add(1, Ordering::Relaxed);
        InFlight(ep.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One cluster at run time.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) spec: Cluster,
    pub(crate) name: Arc<str>,
    pub(crate) endpoints: Vec<Arc<EndpointState>>,
    pub(crate) balancer: Balancer,
    /// Labels for requests that reach no endpoint of this cluster.
    pub(crate) labels: Arc<DestLabels>,
    /// Pools for passthrough destinations, by address.
    pub(crate) passthrough: std::sync::Mutex<HashMap<String, Arc<EndpointState>>>,
    workers: usize,
}

impl ClusterState {
    /// An endpoint for a passthrough request to `host:port` (kept for reuse).
    pub(crate) fn passthrough_endpoint(&self, host: &str, port: u16) -> Arc<EndpointState> {
        let key = format!("{host}:{port}");
        let mut map = self.passthrough.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone())
            .or_insert_with(|| {
                let address = match host.trim_start_matches('[').trim_end_matches(']').parse() {
                    Ok(ip) => Address::Socket(std::net::SocketAddr::new(ip, port)),
                    Err(_) => Address::Dns(host.into(), port),
                };
                Arc::new(EndpointState::new(address, 1, key.into(), self.labels.clone(), self.workers))
            })
            .clone()
    }
}

/// Metric labels for requests to `ep` (or to the cluster, when no endpoint was reached).
fn labels_for(c: &Cluster, ep: Option<&Endpoint>) -> DestLabels {
    let label = |k: &str| ep.and_then(|e| e.label(k));
    let (app, version) = (label("app"), label("version"));
    let name = c.service.split('.').next().unwrap_or(&c.service).to_string();
    let unknown = || "unknown".to_string();
    let (canonical_service, canonical_revision) = match ep {
        Some(_) => canonical(label, "unknown"),
        None => ("unknown", "unknown"),
    };
    DestLabels {
        canonical_service: canonical_service.to_string(),
        canonical_revision: canonical_revision.to_string(),
        service: c.service.to_string(),
        service_name: name.clone(),
        service_namespace: c.namespace.to_string(),
        app: app.map(str::to_string).unwrap_or_else(unknown),
        version: version.map(str::to_string).unwrap_or_else(unknown),
        workload: app
            .map(|a| match version {
                Some(v) => format!("{a}-{v}"),
                None => a.to_string(),
            })
            .unwrap_or_else(unknown),
        workload_namespace: c.namespace.to_string(),
    }
}

/// The table plus the runtime state of its clusters, swapped in as one unit.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) table: Arc<RouteTable>,
    /// Indexed like `table.clusters`.
    pub(crate) clusters: Vec<Arc<ClusterState>>,
}

impl Snapshot {
    /// An empty snapshot (nothing configured yet).
    pub(crate) fn empty() -> Self {
        Snapshot { table: Arc::new(RouteTable::default()), clusters: Vec::new() }
    }

    /// Builds the runtime state for `table`, carrying over what `previous` had for
    /// clusters and endpoints that did not change.
    pub(crate) fn build(table: Arc<RouteTable>, previous: &Snapshot, workers: usize) -> Self {
        let by_name: HashMap<&str, &Arc<ClusterState>> = previous.clusters.iter().map(|c| (&*c.name, c)).collect();
        let clusters = table
            .clusters
            .iter()
            .map(|c| {
                if let Some(prev) = by_name.get(&*c.name)
                    && prev.spec == *c
                {
                    return Arc::clone(prev);
                }
                let old_eps: HashMap<&Address, &Arc<EndpointState>> = by_name
                    .get(&*c.name)
                    .map(|p| p.endpoints.iter().map(|e| (&e.address, e)).collect())
                    .unwrap_or_default();
                let endpoints: Vec<Arc<EndpointState>> = c
                    .endpoints
                    .iter()
                    .map(|e| match old_eps.get(&e.address) {
                        Some(prev) if prev.weight == e.weight => Arc::clone(prev),
                        _ => Arc::new(EndpointState::new(
                            e.address.clone(),
                            e.weight,
                            e.address.to_string().into(),
                            Arc::new(labels_for(c, Some(e))),
                            workers,
                        )),
                    })
                    .collect();
                let policy =
                    if endpoints.is_empty() && c.lb != LbPolicy::Passthrough { &LbPolicy::Random } else { &c.lb };
                Arc::new(ClusterState {
                    balancer: Balancer::new(policy, &endpoints),
                    spec: c.clone(),
                    name: c.name.as_ref().into(),
                    endpoints,
                    labels: Arc::new(labels_for(c, None)),
                    passthrough: std::sync::Mutex::new(HashMap::new()),
                    workers,
                })
            })
            .collect();
        Snapshot { table, clusters }
    }

    /// The listener named `name`.
    pub(crate) fn listener(&self, name: &str) -> Option<&weir_table::Listener> {
        self.table.listeners.iter().find(|l| &*l.name == name)
    }

    /// The mesh listener.
    pub(crate) fn mesh(&self) -> Option<&weir_table::Listener> {
        self.table.listeners.iter().find(|l| l.role == ListenerRole::Mesh)
    }
}
