//! The table plus the runtime state of its clusters, swapped in as one unit: what a
//! request loads once and routes and sends by. Cluster states are made on first use
//! (or at install, for those that need it) and carried over from the previous
//! snapshot for clusters whose identity did not change.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use weir_table::{Cluster, RouteTable};

use crate::upstream::{ClusterState, cluster_state};

/// The runtime state of a table's clusters, indexed like `table.clusters`.
///
/// A cluster's state (endpoints with per-worker pools, balancer, counters, metric
/// labels) costs kilobytes, and a large mesh has tens of thousands of clusters of which
/// an instance uses a few: the state is made when a request first indexes the cluster.
/// Clusters that need their state at once are made at install: those carried over
/// from the previous table (they have been used), those with outlier detection (their
/// sweep runs from the start) and those with limits of their own (the admin API lists
/// them from the start).
#[derive(Debug)]
pub(crate) struct ClusterStates {
    table: Arc<RouteTable>,
    workers: usize,
    /// Where `credentialName`s are read (upstream TLS).
    credentials: Option<Arc<Path>>,
    slots: Box<[OnceLock<Arc<ClusterState>>]>,
}

impl std::ops::Index<usize> for ClusterStates {
    type Output = Arc<ClusterState>;

    /// The state of cluster `i`, made on first use.
    fn index(&self, i: usize) -> &Arc<ClusterState> {
        self.slots[i]
            .get_or_init(|| cluster_state(&self.table.clusters[i], None, self.workers, self.credentials.as_deref()))
    }
}

impl ClusterStates {
    /// Every cluster's state, making those not made yet (for the admin API's listings).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<ClusterState>> {
        (0..self.slots.len()).map(|i| &self[i])
    }

    /// The states made so far (used clusters and those made at install).
    pub(crate) fn made(&self) -> impl Iterator<Item = &Arc<ClusterState>> {
        self.slots.iter().filter_map(OnceLock::get)
    }
}

/// Whether a cluster's state is made at install rather than on first use. Upstream TLS
/// is: its certificates are read then (not on a request's path), and a bad one is
/// reported at once.
fn made_at_install(c: &Cluster) -> bool {
    c.outlier.is_some() || *c.limits != weir_table::ConnectionLimits::default() || c.upstream_tls.is_some()
}

/// The table plus the runtime state of its clusters, swapped in as one unit.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) table: Arc<RouteTable>,
    /// Indexed like `table.clusters`.
    pub(crate) clusters: ClusterStates,
}

impl Snapshot {
    /// An empty snapshot (nothing configured yet).
    pub(crate) fn empty() -> Self {
        let table = Arc::new(RouteTable::default());
        Snapshot {
            clusters: ClusterStates { table: table.clone(), workers: 1, credentials: None, slots: Box::new([]) },
            table,
        }
    }

    /// Builds the runtime state for `table`, carrying over what `previous` had for
    /// clusters and endpoints that stay; `credentials` is where upstream TLS reads
    /// `credentialName`s. Returns it with the clusters that are new and need an outlier
    /// sweep.
    pub(crate) fn build(
        table: Arc<RouteTable>,
        previous: &Snapshot,
        workers: usize,
        credentials: Option<&Path>,
    ) -> (Self, Vec<Arc<ClusterState>>) {
        let by_name: HashMap<&str, &Arc<ClusterState>> = previous.clusters.made().map(|c| (&*c.name, c)).collect();
        let mut fresh = Vec::new();
        let slots = table
            .clusters
            .iter()
            .map(|c| {
                let slot = OnceLock::new();
                let prev = by_name.get(&*c.name).copied();
                if prev.is_some() || made_at_install(c) {
                    let state = cluster_state(c, prev, workers, credentials);
                    let reused = prev.is_some_and(|p| Arc::ptr_eq(p, &state));
                    if c.outlier.is_some() && !reused {
                        fresh.push(state.clone());
                    }
                    let _ = slot.set(state);
                }
                slot
            })
            .collect();
        let clusters = ClusterStates { table: table.clone(), workers, credentials: credentials.map(Arc::from), slots };
        (Snapshot { table, clusters }, fresh)
    }

    /// The listener named `name`.
    pub(crate) fn listener(&self, name: &str) -> Option<&weir_table::Listener> {
        self.table.listeners.iter().find(|l| &*l.name == name)
    }
}
