//! weir's data plane: takes compiled [`weir_table::RouteTable`]s and carries HTTP/1.1,
//! HTTP/2 and gRPC traffic by them.
//!
//! Where to begin reading: [`Proxy`] (install a table, bind its listeners, drain on
//! shutdown), then `entry` (every request: decide, then answer or forward), `forward`
//! (the chain of stages a forwarded request goes through), `router` (route timeout and
//! retries around `attempt`, one try), `pool` (upstream connections within the circuit
//! breakers), `outlier` (ejections), `telemetry` (metrics and access log) and `admin`.
//! `docs/ARCHITECTURE.md` draws the chain.
//!
//! This crate does not parse YAML or know where configuration came from.

mod admin;
mod attempt;
mod balance;
mod batch;
pub mod body;
mod breaker;
mod cors;
mod dice;
mod dns;
mod downstream;
mod entry;
mod failure;
mod fault;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
mod h1;
mod h2_client;
mod headers;
mod limit;
mod maybe_tls;
mod mirror;
mod outlier;
mod pool;
mod prefixed;
mod record;
mod redirect;
mod replay;
mod respond;
mod response;
mod retry;
mod router;
mod server;
mod snapshot;
mod stats;
mod tcp_proxy;
pub mod telemetry;
mod timeout;
mod tls;
mod transport;
mod tunnel;
mod upstream;
mod upstream_io;
mod upstream_request;
mod workers;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_table::{ListenerRole, RouteTable};

use crate::entry::Shared;
use crate::server::Serving;
use crate::telemetry::{AccessLog, Format, Metrics, SourceLabels};
use crate::upstream::Snapshot;

/// Settings a user supplies.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Address of the mesh listener (`--mesh-listener`), if any.
    pub mesh_listener: Option<SocketAddr>,
    /// IP that gateway servers without `bind` listen on.
    pub gateway_address: IpAddr,
    /// Access-log format.
    pub access_log: Format,
    /// Who this proxy is, for metrics.
    pub source: SourceLabels,
    /// `%HOSTNAME%`.
    pub hostname: String,
    /// Worker threads (event loops); 0 means one per CPU this process may use.
    pub workers: usize,
    /// Seed of the per-request random draws (weighted picks, faults, mirrors,
    /// balancers, back-off jitter), for reproducible runs; `None`: seeded from the
    /// system.
    pub seed: Option<u64>,
    /// Give mirrored requests Envoy's `-shadow` host suffix (Istio before 1.28; off,
    /// as current Istio, by default).
    pub shadow_host_suffix: bool,
    /// Where Gateway and DestinationRule `credentialName`s are read: `DIR/<name>/`
    /// holds `tls.crt`, `tls.key` and optionally `ca.crt` (or `cert`, `key`, `cacert`).
    pub credentials: Option<std::path::PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            mesh_listener: None,
            gateway_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            access_log: Format::Text,
            source: SourceLabels {
                workload: "istio-ingressgateway".into(),
                namespace: "istio-system".into(),
                app: "istio-ingressgateway".into(),
                version: "unknown".into(),
                canonical_service: "istio-ingressgateway".into(),
                canonical_revision: "latest".into(),
            },
            hostname: "weir".into(),
            workers: 0,
            seed: None,
            shadow_host_suffix: false,
            credentials: None,
        }
    }
}

/// How often each worker looks for pooled connections their peer has closed.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// On one worker, periodically releases that worker's idle upstream connections whose
/// peer has closed them (see [`pool::Pool::sweep`]).
async fn sweep_idle(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let snapshot = shared.snapshot.load();
        // Only clusters that have state can have pooled connections.
        for cluster in snapshot.clusters.made() {
            let sweep = |ep: &upstream::EndpointState| ep.pool().sweep(&cluster.spec.limits, &cluster.stats);
            if cluster.spec.lb == weir_table::LbPolicy::Passthrough {
                cluster.pooled_endpoints().iter().for_each(|e| sweep(e));
            } else {
                cluster.endpoints.iter().for_each(|e| sweep(e));
            }
        }
    }
}

/// How often certificate files are looked at for changes.
const CERT_POLL: Duration = Duration::from_secs(1);

/// Rebuilds the TLS configurations when a certificate, key or CA file changes
/// (rotation): new connections get the new certificate, open ones keep theirs.
async fn rotate_certificates(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(CERT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        rotate_upstream_certificates(&shared).await;
        if !shared.tls.load().changed() {
            continue;
        }
        let table = shared.snapshot.load().table.clone();
        let credentials = shared.credentials.clone();
        // File reads off the event loop.
        let Ok(mut built) =
            tokio::task::spawn_blocking(move || tls::TlsConfigs::build(&table, credentials.as_deref())).await
        else {
            continue;
        };
        // A rotation caught half-written (a new certificate beside the old key) keeps
        // the server's working configuration until the files fit again.
        built.keep_working(&shared.tls.load());
        tracing::info!("certificates changed; TLS servers reloaded");
        shared.tls.store(Arc::new(built));
    }
}

/// Rebuilds the TLS client configurations of clusters whose certificate, key or CA
/// files changed (upstream TLS origination).
async fn rotate_upstream_certificates(shared: &Shared) {
    let changed: Vec<Arc<tls::Origin>> =
        shared.snapshot.load().clusters.made().filter_map(|c| c.tls.clone()).filter(|o| o.changed()).collect();
    if changed.is_empty() {
        return;
    }
    // File reads off the event loop.
    let n = changed.len();
    if tokio::task::spawn_blocking(move || changed.iter().for_each(|o| o.reload())).await.is_ok() {
        tracing::info!(clusters = n, "certificates changed; upstream TLS reloaded");
    }
}

/// Decides where a table listener binds; tests map gateway ports to port 0.
pub type Binder = Arc<dyn Fn(&weir_table::Listener) -> SocketAddr + Send + Sync>;

/// A listener that could not be bound.
#[derive(Debug)]
pub struct BindError {
    /// Listener name.
    pub listener: String,
    /// Address tried.
    pub address: SocketAddr,
    /// The Gateways whose servers wanted it (empty for the mesh listener).
    pub gateways: Vec<String>,
    /// Why.
    pub error: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "listener {} cannot bind {}: {}", self.listener, self.address, self.error)?;
        if !self.gateways.is_empty() {
            write!(
                f,
                " (for Gateway {}, served because its selector matches this instance's --labels)",
                self.gateways.join(", ")
            )?;
        }
        if self.error.kind() == std::io::ErrorKind::PermissionDenied && self.address.port() < 1024 {
            write!(
                f,
                "; ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the weir \
                 binary), or lower net.ipv4.ip_unprivileged_port_start"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for BindError {}

struct Running {
    address: SocketAddr,
    stop: CancellationToken,
    drain: CancellationToken,
}

/// A running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    workers: Arc<workers::Workers>,
    config: ProxyConfig,
    binder: Option<Binder>,
    running: Mutex<HashMap<String, Running>>,
    stop: CancellationToken,
    tracker: TaskTracker,
    ready: AtomicBool,
    config_state: ConfigState,
}

/// What happened to the configurations offered to this proxy, for `/stats/prometheus`.
#[derive(Debug, Default)]
struct ConfigState {
    /// Resources left out of the serving configuration for not validating.
    rejected_resources: std::sync::atomic::AtomicU64,
    /// Reloads installed.
    reloads_ok: std::sync::atomic::AtomicU64,
    /// Reloads refused (the last good configuration kept serving).
    reloads_rejected: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("config", &self.config).finish()
    }
}

impl Proxy {
    /// A proxy with nothing installed yet (every request is 404 until a table is).
    pub fn new(config: ProxyConfig) -> Arc<Self> {
        Self::with_binder(config, None)
    }

    /// Like [`Proxy::new`] with a custom listener binder.
    ///
    /// # Panics
    /// When the worker threads cannot be started (out of threads at start-up).
    pub fn with_binder(config: ProxyConfig, binder: Option<Binder>) -> Arc<Self> {
        let n = if config.workers == 0 {
            std::thread::available_parallelism().map(usize::from).unwrap_or(1)
        } else {
            config.workers
        };
        dice::set_seed(config.seed);
        // Invariant: a proxy without workers cannot serve; failing to start threads at
        // start-up is fatal.
        #[allow(clippy::expect_used)]
        let workers = Arc::new(workers::Workers::start(n).expect("start the worker threads"));
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(Snapshot::empty()),
            tls: ArcSwap::from_pointee(tls::TlsConfigs::default()),
            credentials: config.credentials.clone(),
            metrics: Metrics::new(config.source.clone()),
            access_log: AccessLog::new(config.access_log),
            hostname: config.hostname.clone(),
            shadow_host_suffix: config.shadow_host_suffix,
        });
        let stop = CancellationToken::new();
        for handle in workers.handles() {
            handle.spawn(sweep_idle(shared.clone(), stop.clone()));
        }
        if let Some(first) = workers.handles().first() {
            first.spawn(rotate_certificates(shared.clone(), stop.clone()));
        }
        Arc::new(Proxy {
            shared,
            workers,
            config,
            binder,
            running: Mutex::new(HashMap::new()),
            stop,
            tracker: TaskTracker::new(),
            ready: AtomicBool::new(false),
            config_state: ConfigState::default(),
        })
    }

    fn address_for(&self, l: &weir_table::Listener) -> SocketAddr {
        if let Some(b) = &self.binder {
            return b(l);
        }
        match l.role {
            ListenerRole::Mesh if l.is_main_mesh() => {
                self.config.mesh_listener.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 15001)))
            }
            // A Sidecar egress listener: its own bind (127.0.0.1 unless set) and port.
            ListenerRole::Mesh => {
                let ip = l.bind.as_deref().and_then(|b| b.parse().ok()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                SocketAddr::new(ip, l.port)
            }
            ListenerRole::Gateway => {
                let ip = l.bind.as_deref().and_then(|b| b.parse().ok()).unwrap_or(self.config.gateway_address);
                SocketAddr::new(ip, l.port)
            }
        }
    }

    /// Installs a table: new requests use it at once (in-flight ones finish on the old
    /// one), listeners it adds are bound and those it drops drain. Returns the
    /// listeners that could not be bound; the rest serve.
    pub fn install(&self, mut table: RouteTable) -> Vec<BindError> {
        if self.config.mesh_listener.is_none() {
            table.listeners.retain(|l| !l.is_main_mesh());
        }
        let table = Arc::new(table);
        let previous = self.shared.snapshot.load_full();
        let (snapshot, fresh) =
            Snapshot::build(table.clone(), &previous, self.workers.len(), self.shared.credentials.as_deref());
        // Certificates first: a connection that sees the new table finds its servers.
        let tls = tls::TlsConfigs::build(&table, self.shared.credentials.as_deref());
        self.shared.tls.store(Arc::new(tls));
        self.shared.snapshot.store(Arc::new(snapshot));
        // Each new cluster with outlier detection sweeps its ejections at its interval,
        // until a later table replaces it.
        for c in fresh {
            if let Some(o) = &c.spec.outlier {
                let interval = o.interval;
                self.workers.handles()[0].spawn(upstream::sweep_outliers(Arc::downgrade(&c), interval));
            }
        }

        let mut errors = Vec::new();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: HashMap<String, &weir_table::Listener> =
            table.listeners.iter().map(|l| (l.name.to_string(), l)).collect();
        running.retain(|name, r| {
            let keep = wanted.contains_key(name);
            if !keep {
                r.stop.cancel();
                r.drain.cancel();
            }
            keep
        });
        for (name, l) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let address = self.address_for(l);
            match server::bind_per_worker(address, self.workers.len()) {
                Ok(listeners) => {
                    let bound = listeners.first().and_then(|l| l.local_addr().ok()).unwrap_or(address);
                    let stop = self.stop.child_token();
                    let drain = self.stop.child_token();
                    let serving = Serving { name: name.as_str().into(), role: l.role, port: l.port };
                    for (listener, worker) in listeners.into_iter().zip(self.workers.handles()) {
                        self.tracker.spawn_on(
                            server::accept_loop(
                                listener,
                                serving.clone(),
                                self.shared.clone(),
                                stop.clone(),
                                drain.clone(),
                                self.tracker.clone(),
                            ),
                            worker,
                        );
                    }
                    tracing::info!(listener = %name, address = %bound, "listening");
                    running.insert(name, Running { address: bound, stop, drain });
                }
                Err(error) => {
                    let gateways = l.gateways.iter().map(|g| g.to_string()).collect();
                    errors.push(BindError { listener: name, address, gateways, error });
                }
            }
        }
        self.ready.store(errors.is_empty(), Ordering::Release);
        errors
    }

    /// The bound listeners: (name, address).
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = running.iter().map(|(n, r)| (n.clone(), r.address)).collect();
        v.sort();
        v
    }

    /// The address of a listener by name (`mesh`, `0.0.0.0_8080`).
    pub fn address_of(&self, name: &str) -> Option<SocketAddr> {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).get(name).map(|r| r.address)
    }

    /// True once a table is installed and all its listeners are bound.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The installed table.
    pub fn table(&self) -> Arc<RouteTable> {
        self.shared.snapshot.load().table.clone()
    }

    /// Records a configuration offered to the proxy: `accepted` (installed) or
    /// refused, and how many resources of it were left out for not validating (a
    /// Kubernetes source serves the rest).
    pub fn record_config(&self, accepted: bool, rejected_resources: u64) {
        let s = &self.config_state;
        if accepted {
            s.reloads_ok.fetch_add(1, Ordering::Relaxed);
            s.rejected_resources.store(rejected_resources, Ordering::Relaxed);
        } else {
            s.reloads_rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `weir_config_*` series: the configuration's health.
    fn config_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let s = &self.config_state;
        let _ = writeln!(
            out,
            "# HELP weir_config_rejected_resources Resources left out of the serving configuration for not validating.\n\
             # TYPE weir_config_rejected_resources gauge\nweir_config_rejected_resources {}",
            s.rejected_resources.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP weir_config_reloads_total Configurations offered to the proxy, by result.\n\
             # TYPE weir_config_reloads_total counter\nweir_config_reloads_total{{result=\"installed\"}} {}\n\
             weir_config_reloads_total{{result=\"rejected\"}} {}",
            s.reloads_ok.load(Ordering::Relaxed),
            s.reloads_rejected.load(Ordering::Relaxed)
        );
    }

    /// The Prometheus text of the metrics.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render()
    }

    /// The installed table as JSON (what `/config_dump` serves).
    pub fn config_dump(&self) -> serde_json::Value {
        admin::config_dump(self)
    }

    /// Serves the admin API on `address`; returns the bound address.
    pub fn serve_admin(self: &Arc<Self>, address: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = server::bind(address)?;
        let bound = listener.local_addr()?;
        tokio::spawn(admin::serve(listener, self.clone(), self.stop.child_token()));
        Ok(bound)
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace`), then returns.
    pub async fn shutdown(&self, grace: Duration) {
        self.ready.store(false, Ordering::Release);
        {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            for r in running.values() {
                r.stop.cancel();
                r.drain.cancel();
            }
        }
        self.tracker.close();
        let _ = tokio::time::timeout(grace, self.tracker.wait()).await;
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_name_the_gateway_and_hint_at_privileged_ports() {
        let e = BindError {
            listener: "0.0.0.0_80".into(),
            address: SocketAddr::from(([0, 0, 0, 0], 80)),
            gateways: vec!["default/bookinfo-gateway".into()],
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let text = e.to_string();
        assert!(text.contains("Gateway default/bookinfo-gateway") && text.contains("--labels"), "{text}");
        assert!(text.contains("CAP_NET_BIND_SERVICE"), "{text}");
        let busy = BindError { error: std::io::Error::from(std::io::ErrorKind::AddrInUse), ..e };
        assert!(!busy.to_string().contains("CAP_NET_BIND_SERVICE"));
    }
}
