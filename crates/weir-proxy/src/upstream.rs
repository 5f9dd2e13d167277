//! Runtime state behind the table: per cluster the circuit-breaker counters, the
//! statistics, the outlier detector, a balancer over the hosts not ejected and the TLS
//! client configurations when it originates TLS; per endpoint connection pools, an
//! in-flight counter and its outlier state.
//!
//! Built when a table is installed. A cluster whose definition did not change keeps all
//! its state; a changed cluster keeps its counters and statistics, and each endpoint
//! that stays keeps its pools and outlier state, so reloads drop neither connections
//! nor ejections.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use weir_table::{Address, Cluster, Endpoint, LbPolicy};

use crate::balance::{Balancer, Candidate};
use crate::breaker::Breakers;
use crate::outlier::{self, Ejection, HostState, Outcome};
use crate::pool::{Pool, PoolCtx};
use crate::stats::{ClusterStats, Sharded};
use crate::telemetry::{DestLabels, canonical};

pub(crate) use crate::snapshot::Snapshot;

/// One upstream endpoint at run time.
#[derive(Debug)]
pub(crate) struct EndpointState {
    pub(crate) address: Address,
    pub(crate) weight: u32,
    /// In-flight requests (LEAST_REQUEST, `/clusters`).
    pub(crate) active: AtomicU32,
    /// One pool per worker (a request uses its own worker's connections), or one shared
    /// by all workers when the cluster limits connections.
    pub(crate) pools: Box<[Pool]>,
    /// `ip:port` as text (access log, hashing).
    pub(crate) host: Arc<str>,
    /// Metric labels for requests it serves.
    pub(crate) labels: Arc<DestLabels>,
    /// Outlier detection state.
    health: Mutex<HostState>,
    /// Ejected by outlier detection (read by `/clusters` and balancer rebuilds).
    pub(crate) ejected: AtomicBool,
}

impl EndpointState {
    fn new(
        address: Address,
        weight: u32,
        host: Arc<str>,
        labels: Arc<DestLabels>,
        pools: usize,
        limited: bool,
    ) -> Self {
        EndpointState {
            address,
            weight,
            active: AtomicU32::new(0),
            pools: (0..pools.max(1)).map(|_| Pool::new(limited)).collect(),
            host,
            labels,
            health: Mutex::new(HostState::default()),
            ejected: AtomicBool::new(false),
        }
    }

    /// The pool the calling worker uses.
    pub(crate) fn pool(&self) -> &Pool {
        match self.pools.len() {
            1 => &self.pools[0],
            n => &self.pools[crate::workers::current() % n],
        }
    }

    /// Open upstream connections over all pools.
    pub(crate) fn connections(&self) -> u32 {
        self.pools.iter().map(|p| p.counts.connections.load(Ordering::Relaxed)).sum()
    }

    /// Idle HTTP/1.1 connections over all pools.
    pub(crate) fn idle(&self) -> usize {
        self.pools.iter().map(Pool::idle).sum()
    }

    /// Requests waiting for a connection over all pools.
    pub(crate) fn waiting(&self) -> u32 {
        self.pools.iter().map(Pool::waiting).sum()
    }

    pub(crate) fn health(&self) -> MutexGuard<'_, HostState> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
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

/// The hosts the balancer picks from: those not ejected (all of them in panic mode).
#[derive(Debug)]
pub(crate) struct LbSet {
    pub(crate) endpoints: Vec<Arc<EndpointState>>,
    pub(crate) balancer: Balancer,
}

/// Outlier bookkeeping of one cluster, kept across reloads like the endpoints' own
/// outlier state: a reload may leave requests on the cluster's previous state for a
/// while (a long stream), and both must agree on who is ejected.
#[derive(Debug, Default)]
pub(crate) struct OutlierShared {
    /// Serializes ejection decisions (the share of ejected hosts).
    ejecting: Mutex<()>,
    /// Bumped on every ejection and return; a cluster state whose balancer was built
    /// from an older version rebuilds it before its next pick.
    version: AtomicU64,
    /// The cluster state whose sweep task runs (the newest; older ones stop).
    sweeper: AtomicU64,
}

/// Passthrough hosts whose endpoints (and pools) a cluster keeps.
const MAX_PASSTHROUGH: usize = 1024;

/// Identifies each cluster state built.
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// One cluster at run time.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) spec: Cluster,
    pub(crate) name: Arc<str>,
    /// Every endpoint, ejected or not.
    pub(crate) endpoints: Vec<Arc<EndpointState>>,
    /// What the balancer picks from; replaced when an ejection changes.
    pub(crate) lb: ArcSwap<LbSet>,
    /// Labels for requests that reach no endpoint of this cluster.
    pub(crate) labels: Arc<DestLabels>,
    /// Pools for passthrough destinations, by host.
    pub(crate) passthrough: Mutex<HashMap<Box<str>, Arc<EndpointState>>>,
    pub(crate) breakers: Arc<Breakers>,
    pub(crate) stats: Arc<ClusterStats>,
    /// `upstream_rq_total`, per worker.
    pub(crate) rq_total: Arc<Sharded>,
    /// TLS origination (`spec.upstream_tls`), its configurations built once.
    pub(crate) tls: Option<Arc<crate::tls::Origin>>,
    outliers: Arc<OutlierShared>,
    /// The outlier version `lb` was built from.
    lb_version: AtomicU64,
    epoch: u64,
    pools_per_endpoint: usize,
}

/// Whether a cluster's endpoints share one pool between workers: when the cluster
/// limits connections, so the limit holds across the whole instance.
fn pools_for(c: &Cluster, workers: usize) -> usize {
    if c.limits.max_connections == u32::MAX { workers.max(1) } else { 1 }
}

impl ClusterState {
    /// An endpoint for a passthrough request to `host` on the cluster's port, kept for
    /// reuse (for at most [`MAX_PASSTHROUGH`] hosts: the names come from clients).
    pub(crate) fn passthrough_endpoint(&self, host: &str, port: u16) -> Arc<EndpointState> {
        let mut map = self.passthrough.lock().unwrap_or_else(|e| e.into_inner());
        let key: Arc<str> = format!("{host}:{port}").into();
        if let Some(e) = map.get(&*key) {
            return e.clone();
        }
        let address = match host.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => Address::Socket(std::net::SocketAddr::new(ip, port)),
            Err(_) => Address::Dns(host.into(), port),
        };
        let limited = self.spec.limits.max_connections != u32::MAX;
        let ep = Arc::new(EndpointState::new(
            address,
            1,
            key.clone(),
            self.labels.clone(),
            self.pools_per_endpoint,
            limited,
        ));
        if map.len() < MAX_PASSTHROUGH {
            map.insert((*key).into(), ep.clone());
        }
        ep
    }

    /// Every endpoint with pools: the cluster's and the passthrough ones.
    pub(crate) fn pooled_endpoints(&self) -> Vec<Arc<EndpointState>> {
        let map = self.passthrough.lock().unwrap_or_else(|e| e.into_inner());
        self.endpoints.iter().chain(map.values()).cloned().collect()
    }

    /// What a pool of `ep` needs; `no_wait`: fail rather than wait for a connection.
    pub(crate) fn pool_ctx<'a>(&'a self, ep: &'a EndpointState, no_wait: bool) -> PoolCtx<'a> {
        PoolCtx {
            address: &ep.address,
            limits: &self.spec.limits,
            breakers: &self.breakers,
            stats: &self.stats,
            tls: self.tls.as_deref(),
            no_wait,
        }
    }

    /// The hosts to pick from, as outlier detection leaves them.
    fn lb_set(spec: &Cluster, endpoints: &[Arc<EndpointState>]) -> LbSet {
        let healthy: Vec<Arc<EndpointState>> =
            endpoints.iter().filter(|e| !e.ejected.load(Ordering::Acquire)).cloned().collect();
        let min = spec.outlier.as_ref().map_or(0, |o| o.min_health_percent);
        let chosen = if healthy.len() < endpoints.len() && outlier::in_panic(healthy.len(), endpoints.len(), min) {
            endpoints.to_vec()
        } else {
            healthy
        };
        let policy = if chosen.is_empty() && spec.lb != LbPolicy::Passthrough { &LbPolicy::Random } else { &spec.lb };
        LbSet { balancer: Balancer::new(policy, &chosen), endpoints: chosen }
    }

    /// The hosts to pick from now.
    pub(crate) fn lb(&self) -> arc_swap::Guard<Arc<LbSet>> {
        let v = self.outliers.version.load(Ordering::Acquire);
        if self.lb_version.load(Ordering::Acquire) != v {
            self.rebuild_lb(v);
        }
        self.lb.load()
    }

    fn rebuild_lb(&self, version: u64) {
        self.lb.store(Arc::new(Self::lb_set(&self.spec, &self.endpoints)));
        self.lb_version.store(version, Ordering::Release);
    }

    /// An ejection changed: every state of this cluster rebuilds its balancer.
    fn ejections_changed(&self) {
        let v = self.outliers.version.fetch_add(1, Ordering::AcqRel) + 1;
        self.rebuild_lb(v);
    }

    /// Hosts ejected now.
    pub(crate) fn ejected(&self) -> usize {
        self.endpoints.iter().filter(|e| e.ejected.load(Ordering::Acquire)).count()
    }

    /// Records what a try to `ep` told about it, and ejects it when that makes an
    /// outlier of it. Does nothing for clusters without outlier detection.
    pub(crate) fn report(&self, ep: &EndpointState, outcome: Outcome) {
        let Some(policy) = &self.spec.outlier else { return };
        if outcome == Outcome::Connected && !policy.split_local_origin {
            return;
        }
        let fired = ep.health().record(policy, outcome);
        if let Some(kind) = fired {
            self.eject(ep, kind, Instant::now());
        }
    }

    fn eject(&self, ep: &EndpointState, kind: Ejection, now: Instant) {
        let Some(policy) = &self.spec.outlier else { return };
        // Passthrough endpoints are not hosts of the cluster.
        if !self.endpoints.iter().any(|e| std::ptr::eq(&**e, ep)) {
            return;
        }
        let s = &self.stats;
        ClusterStats::inc(match kind {
            Ejection::Consecutive5xx => &s.outlier_detection_ejections_detected_consecutive_5xx,
            Ejection::ConsecutiveGateway => &s.outlier_detection_ejections_detected_consecutive_gateway_failure,
            Ejection::ConsecutiveLocalOrigin => {
                &s.outlier_detection_ejections_detected_consecutive_local_origin_failure
            }
        });
        let _one_at_a_time = self.outliers.ejecting.lock().unwrap_or_else(|e| e.into_inner());
        if ep.ejected.load(Ordering::Acquire) {
            return;
        }
        if !outlier::may_eject(self.ejected(), self.endpoints.len(), policy.max_ejection_percent) {
            ClusterStats::inc(&s.outlier_detection_ejections_overflow);
            return;
        }
        ep.health().eject(policy, now);
        ep.ejected.store(true, Ordering::Release);
        ClusterStats::inc(&s.outlier_detection_ejections_total);
        ClusterStats::inc(&s.outlier_detection_ejections_enforced_total);
        ClusterStats::inc(match kind {
            Ejection::Consecutive5xx => &s.outlier_detection_ejections_enforced_consecutive_5xx,
            Ejection::ConsecutiveGateway => &s.outlier_detection_ejections_enforced_consecutive_gateway_failure,
            Ejection::ConsecutiveLocalOrigin => {
                &s.outlier_detection_ejections_enforced_consecutive_local_origin_failure
            }
        });
        tracing::info!(cluster = %self.name, host = %ep.host, reason = ?kind, "outlier ejected");
        self.ejections_changed();
    }

    /// The interval sweep: brings back hosts whose ejection time has passed.
    pub(crate) fn sweep_outliers(&self, now: Instant) {
        let Some(policy) = &self.spec.outlier else { return };
        let _one_at_a_time = self.outliers.ejecting.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        for ep in &self.endpoints {
            if ep.health().sweep(policy, now) {
                ep.ejected.store(false, Ordering::Release);
                tracing::info!(cluster = %self.name, host = %ep.host, "outlier returned");
                changed = true;
            }
        }
        if changed {
            self.ejections_changed();
        }
    }

    /// True while this is the newest state of its cluster (the one that sweeps).
    fn sweeps(&self) -> bool {
        self.outliers.sweeper.load(Ordering::Acquire) == self.epoch
    }
}

/// Sweeps a cluster's outliers every `interval` until a reload replaces it (the newer
/// state sweeps then) or it is gone.
pub(crate) async fn sweep_outliers(cluster: Weak<ClusterState>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(c) = cluster.upgrade() else { return };
        if !c.sweeps() {
            return;
        }
        c.sweep_outliers(Instant::now());
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

/// The state of cluster `c`, carrying over what `prev` (its state in the previous table)
/// had: all of it when the definition did not change, else its counters, statistics and
/// outlier bookkeeping, and the pools and outlier state of endpoints that stay.
pub(crate) fn cluster_state(
    c: &Cluster,
    prev: Option<&Arc<ClusterState>>,
    workers: usize,
    credentials: Option<&Path>,
) -> Arc<ClusterState> {
    if let Some(prev) = prev
        && prev.spec == *c
    {
        return Arc::clone(prev);
    }
    let pools = pools_for(c, workers);
    // Connections made under other TLS settings (or in plaintext) must not serve this
    // definition: as Envoy rebuilds a cluster whose transport socket changed, the
    // endpoints' pools start empty then.
    let same_tls = prev.is_none_or(|p| p.spec.upstream_tls == c.upstream_tls);
    let old_eps: HashMap<&Address, &Arc<EndpointState>> =
        prev.map(|p| p.endpoints.iter().map(|e| (&e.address, e)).collect()).unwrap_or_default();
    let endpoints: Vec<Arc<EndpointState>> = c
        .endpoints
        .iter()
        .map(|e| {
            let old = old_eps.get(&e.address);
            match old {
                Some(prev) if same_tls && prev.weight == e.weight && prev.pools.len() == pools => Arc::clone(prev),
                _ => {
                    let fresh = EndpointState::new(
                        e.address.clone(),
                        e.weight,
                        e.address.to_string().into(),
                        Arc::new(labels_for(c, Some(e))),
                        pools,
                        c.limits.max_connections != u32::MAX,
                    );
                    if let Some(prev) = old.filter(|_| !same_tls) {
                        // The host stays: its outlier state does too, not its pools
                        // (their connections have other TLS settings).
                        *fresh.health() = prev.health().clone();
                        fresh.ejected.store(prev.ejected.load(Ordering::Acquire), Ordering::Release);
                    }
                    Arc::new(fresh)
                }
            }
        })
        .collect();
    let outliers: Arc<OutlierShared> = prev.map(|p| p.outliers.clone()).unwrap_or_default();
    let epoch = EPOCH.fetch_add(1, Ordering::Relaxed);
    outliers.sweeper.store(epoch, Ordering::Release);
    if c.outlier.is_none() {
        // No detector any more: nobody is ejected (and states still in use
        // rebuild their balancers).
        for e in &endpoints {
            e.ejected.store(false, Ordering::Release);
            *e.health() = HostState::default();
        }
        outliers.version.fetch_add(1, Ordering::AcqRel);
    }
    let version = outliers.version.load(Ordering::Acquire);
    // The same TLS settings keep their configurations (and session cache).
    let tls = c.upstream_tls.as_ref().map(|t| match prev.and_then(|p| p.tls.as_ref()) {
        Some(o) if o.spec() == &**t => o.clone(),
        _ => Arc::new(crate::tls::Origin::new(t, &c.service, &c.name, credentials)),
    });
    Arc::new(ClusterState {
        lb: ArcSwap::from_pointee(ClusterState::lb_set(c, &endpoints)),
        lb_version: AtomicU64::new(version),
        outliers,
        epoch,
        spec: c.clone(),
        name: c.name.as_ref().into(),
        endpoints,
        labels: Arc::new(labels_for(c, None)),
        passthrough: Mutex::new(HashMap::new()),
        breakers: prev.map(|p| p.breakers.clone()).unwrap_or_default(),
        stats: prev.map(|p| p.stats.clone()).unwrap_or_default(),
        rq_total: prev.map(|p| p.rq_total.clone()).unwrap_or_else(|| Arc::new(Sharded::new(workers))),
        tls,
        pools_per_endpoint: pools,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_table::{ConnectionLimits, OutlierPolicy, RouteTable, UpstreamProtocol};

    fn cluster(name: &str, outlier: bool) -> Cluster {
        Cluster {
            name: name.into(),
            service: "a.ns.svc.cluster.local".into(),
            namespace: "ns".into(),
            port: 80,
            subset: "".into(),
            port_protocol: "HTTP".into(),
            endpoints: vec![Endpoint {
                address: Address::Socket(([127, 0, 0, 1], 9).into()),
                weight: 1,
                labels: Arc::new([("version".into(), "v1".into())]),
                locality: "".into(),
            }],
            lb: LbPolicy::RoundRobin,
            protocol: UpstreamProtocol::Http1,
            limits: ConnectionLimits::default().into(),
            upstream_tls: None,
            outlier: outlier.then(|| {
                Box::new(OutlierPolicy {
                    consecutive_5xx: Some(5),
                    consecutive_gateway_errors: None,
                    split_local_origin: false,
                    consecutive_local_origin_failures: None,
                    error_codes: Box::new([]),
                    interval: Duration::from_secs(10),
                    base_ejection_time: Duration::from_secs(30),
                    max_ejection_percent: 10,
                    min_health_percent: 0,
                })
            }),
        }
    }

    fn table(clusters: Vec<Cluster>) -> Arc<RouteTable> {
        Arc::new(RouteTable { version: 1, listeners: Vec::new(), clusters })
    }

    #[test]
    fn cluster_state_is_made_on_first_use_and_kept_across_reloads() {
        let t = table(vec![cluster("plain", false), cluster("detected", true)]);
        let (snap, fresh) = Snapshot::build(t.clone(), &Snapshot::empty(), 2, None);
        // Outlier detection needs its state (and its sweep) from the start.
        assert_eq!(snap.clusters.made().map(|c| &*c.name).collect::<Vec<_>>(), ["detected"]);
        assert_eq!(fresh.len(), 1);
        let plain = snap.clusters[0].clone();
        assert_eq!(&*plain.name, "plain");
        assert_eq!(plain.endpoints.len(), 1);
        assert!(Arc::ptr_eq(&plain, &snap.clusters[0]), "made once");
        plain.rq_total.inc();

        // A reload with the same definitions keeps the states that were made, and
        // leaves the others to be made when used.
        let (next, fresh) =
            Snapshot::build(table(vec![cluster("plain", false), cluster("other", false)]), &snap, 2, None);
        assert!(fresh.is_empty());
        assert_eq!(next.clusters.made().count(), 1);
        assert!(Arc::ptr_eq(&plain, &next.clusters[0]));
        assert_eq!(next.clusters[0].rq_total.get(), 1);
        assert_eq!(next.clusters.iter().count(), 2);
    }
}
