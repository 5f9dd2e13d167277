//! Istio's standard metrics (spec §11) without a shared lock on the request path:
//! each worker thread aggregates into its own shard (an uncontended mutex, touched by
//! a scrape only), and `/stats/prometheus` merges the shards.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::flags::Flags;

/// Envoy's default histogram buckets (milliseconds for durations).
pub const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];

/// Destination labels: fixed per cluster and endpoint, built when a table is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestLabels {
    /// `destination_service` (FQDN, or the Host when no cluster was chosen).
    pub service: String,
    /// `destination_service_name`.
    pub service_name: String,
    /// `destination_service_namespace`.
    pub service_namespace: String,
    /// `destination_app`.
    pub app: String,
    /// `destination_version`.
    pub version: String,
    /// `destination_workload`.
    pub workload: String,
    /// `destination_workload_namespace`.
    pub workload_namespace: String,
    /// `destination_canonical_service`.
    pub canonical_service: String,
    /// `destination_canonical_revision`.
    pub canonical_revision: String,
}

/// Istio's canonical service and revision of a workload, from its labels:
/// `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`, else
/// the workload name; `service.istio.io/canonical-revision`, else
/// `app.kubernetes.io/version`, else `version`, else `latest`.
pub fn canonical<'a>(label: impl Fn(&str) -> Option<&'a str>, workload: &'a str) -> (&'a str, &'a str) {
    let first = |keys: [&str; 3]| keys.into_iter().find_map(&label);
    let service = first(["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"]).unwrap_or(workload);
    let revision =
        first(["service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"]).unwrap_or("latest");
    (service, revision)
}

/// Distinct unreached hosts whose labels a worker keeps; past this, such requests are
/// counted under `destination_service="unknown"` (a client sending random `Host`s
/// cannot grow the series without bound).
const MAX_UNKNOWN_SERVICES: usize = 1024;

thread_local! {
    /// The labels of requests that reached no service, one per host (per worker).
    static UNKNOWN: RefCell<HashMap<Box<str>, Arc<DestLabels>, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

impl DestLabels {
    /// The labels of a request that reached no service, for host `service`: the same
    /// `Arc` each time on this thread. A series is keyed by its labels' address, so a
    /// fresh `Arc` per request made a series per request (memory and `/stats/prometheus`
    /// work grew with every local reply).
    pub fn unknown_shared(service: &str) -> Arc<DestLabels> {
        UNKNOWN.with_borrow_mut(|m| {
            if let Some(d) = m.get(service) {
                return d.clone();
            }
            let service = if m.len() >= MAX_UNKNOWN_SERVICES { "" } else { service };
            m.entry(service.into()).or_insert_with(|| Arc::new(DestLabels::unknown(service))).clone()
        })
    }

    /// All `unknown`, for requests that reached no service.
    pub fn unknown(service: &str) -> Self {
        let u = || "unknown".to_string();
        DestLabels {
            service: if service.is_empty() { u() } else { service.to_string() },
            service_name: u(),
            service_namespace: u(),
            app: u(),
            version: u(),
            workload: u(),
            workload_namespace: u(),
            canonical_service: u(),
            canonical_revision: u(),
        }
    }
}

/// Labels that describe this proxy (the source side).
#[derive(Debug, Clone)]
pub struct SourceLabels {
    /// `source_workload`.
    pub workload: String,
    /// `source_workload_namespace`.
    pub namespace: String,
    /// `source_app`.
    pub app: String,
    /// `source_version`.
    pub version: String,
    /// `source_canonical_service`.
    pub canonical_service: String,
    /// `source_canonical_revision`.
    pub canonical_revision: String,
}

#[derive(Debug, Clone)]
struct Key {
    dest: Arc<DestLabels>,
    code: u16,
    flags: Flags,
    grpc: bool,
    grpc_status: Option<u16>,
    /// A TCP connection (the `istio_tcp_*` metrics), not a request.
    tcp: bool,
}

impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.dest, &o.dest)
            && self.tcp == o.tcp
            && self.code == o.code
            && self.flags == o.flags
            && self.grpc == o.grpc
            && self.grpc_status == o.grpc_status
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (Arc::as_ptr(&self.dest) as usize).hash(h);
        self.code.hash(h);
        self.flags.hash(h);
        self.grpc.hash(h);
        self.grpc_status.hash(h);
        self.tcp.hash(h);
    }
}

/// One TCP series: connections opened and closed, bytes each way.
#[derive(Debug, Clone, Copy, Default)]
struct TcpStat {
    opened: u64,
    closed: u64,
    received: u64,
    sent: u64,
}

/// Per-bucket counts (not cumulative: one increment per observation); the
/// exposition sums them into Prometheus' cumulative `le` buckets.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        let i = BUCKETS.partition_point(|le| *le < v);
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.sum += o.sum;
        self.count += o.count;
    }
}

#[derive(Debug, Clone, Default)]
struct Stat {
    requests: u64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

type Shard = HashMap<Key, Stat, foldhash::fast::RandomState>;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard of each metrics registry (several proxies may share a
    /// process in tests).
    static SHARDS: RefCell<Vec<(usize, Arc<Mutex<Shard>>)>> = const { RefCell::new(Vec::new()) };
}

/// One request, as metrics see it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Destination labels.
    pub dest: Arc<DestLabels>,
    /// Response code (0 when none was sent).
    pub code: u16,
    /// Response flags.
    pub flags: Flags,
    /// gRPC request.
    pub grpc: bool,
    /// gRPC status, when known.
    pub grpc_status: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Request bytes.
    pub request_bytes: u64,
    /// Response bytes.
    pub response_bytes: u64,
}

/// The registry.
#[derive(Debug)]
pub struct Metrics {
    id: usize,
    shards: Mutex<Vec<Arc<Mutex<Shard>>>>,
    /// TCP connections (one update at open and one at close: not sharded).
    tcp: Mutex<HashMap<Key, TcpStat, foldhash::fast::RandomState>>,
    source: SourceLabels,
}

impl Metrics {
    /// A registry for a proxy with these source labels.
    pub fn new(source: SourceLabels) -> Self {
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            tcp: Mutex::new(HashMap::default()),
            source,
        }
    }

    fn shard(&self) -> Arc<Mutex<Shard>> {
        SHARDS.with(|s| {
            let mut s = s.borrow_mut();
            if let Some((_, shard)) = s.iter().find(|(id, _)| *id == self.id) {
                return shard.clone();
            }
            let shard = Arc::new(Mutex::new(Shard::default()));
            self.shards.lock().unwrap_or_else(|e| e.into_inner()).push(shard.clone());
            s.push((self.id, shard.clone()));
            shard
        })
    }

    /// Records one request.
    pub fn record(&self, o: &Observation) {
        let shard = self.shard();
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let key = Key {
            dest: o.dest.clone(),
            code: o.code,
            flags: o.flags,
            grpc: o.grpc,
            grpc_status: o.grpc_status,
            tcp: false,
        };
        let stat = shard.entry(key).or_default();
        stat.requests += 1;
        stat.duration.observe(o.duration_ms);
        stat.request_bytes.observe(o.request_bytes as f64);
        stat.response_bytes.observe(o.response_bytes as f64);
    }

    fn tcp_key(dest: &Arc<DestLabels>, flags: Flags) -> Key {
        Key { dest: dest.clone(), code: 0, flags, grpc: false, grpc_status: None, tcp: true }
    }

    /// A TCP connection was accepted for `dest` (`istio_tcp_connections_opened_total`).
    pub fn tcp_opened(&self, dest: &Arc<DestLabels>) {
        let mut m = self.tcp.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(Self::tcp_key(dest, Flags::NONE)).or_default().opened += 1;
    }

    /// A TCP connection to `dest` closed, with its flags and bytes received from the
    /// client and sent to it.
    pub fn tcp_closed(&self, dest: &Arc<DestLabels>, flags: Flags, received: u64, sent: u64) {
        let mut m = self.tcp.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.entry(Self::tcp_key(dest, flags)).or_default();
        s.closed += 1;
        s.received += received;
        s.sent += sent;
    }

    fn labels(&self, k: &Key) -> String {
        let s = &self.source;
        let d = &k.dest;
        let mut out = String::with_capacity(700);
        let pairs: [(&str, &str); 26] = [
            ("reporter", "source"),
            ("source_workload", &s.workload),
            ("source_workload_namespace", &s.namespace),
            ("source_principal", "unknown"),
            ("source_app", &s.app),
            ("source_version", &s.version),
            ("source_canonical_service", &s.canonical_service),
            ("source_canonical_revision", &s.canonical_revision),
            ("source_cluster", "unknown"),
            ("destination_workload", &d.workload),
            ("destination_workload_namespace", &d.workload_namespace),
            ("destination_principal", "unknown"),
            ("destination_app", &d.app),
            ("destination_version", &d.version),
            ("destination_service", &d.service),
            ("destination_service_name", &d.service_name),
            ("destination_service_namespace", &d.service_namespace),
            ("destination_canonical_service", &d.canonical_service),
            ("destination_canonical_revision", &d.canonical_revision),
            ("destination_cluster", "unknown"),
            (
                "request_protocol",
                if k.tcp {
                    "tcp"
                } else if k.grpc {
                    "grpc"
                } else {
                    "http"
                },
            ),
            ("response_code", ""),
            ("grpc_response_status", ""),
            ("response_flags", ""),
            ("connection_security_policy", "unknown"),
            ("", ""),
        ];
        for (name, value) in pairs {
            if name.is_empty() || (k.tcp && matches!(name, "response_code" | "grpc_response_status")) {
                continue;
            }
            let value = match name {
                "response_code" => k.code.to_string(),
                "grpc_response_status" => k.grpc_status.map(|g| g.to_string()).unwrap_or_default(),
                "response_flags" => k.flags.render(),
                _ => value.to_string(),
            };
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{name}=\"{}\"", escape(&value));
        }
        out
    }

    /// Series held for requests (all shards), for tests.
    #[cfg(test)]
    fn series(&self) -> usize {
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner()).clone();
        shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut merged: BTreeMap<String, Stat> = BTreeMap::new();
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for shard in shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for (k, v) in &shard {
                let e = merged.entry(self.labels(k)).or_default();
                e.requests += v.requests;
                e.duration.merge(&v.duration);
                e.request_bytes.merge(&v.request_bytes);
                e.response_bytes.merge(&v.response_bytes);
            }
        }
        let mut out = String::new();
        out.push_str("# HELP istio_requests_total Total number of requests.\n# TYPE istio_requests_total counter\n");
        for (labels, s) in &merged {
            let _ = writeln!(out, "istio_requests_total{{{labels}}} {}", s.requests);
        }
        for (name, help, pick) in [
            ("istio_request_duration_milliseconds", "Request duration in milliseconds.", 0),
            ("istio_request_bytes", "Request size in bytes.", 1),
            ("istio_response_bytes", "Response size in bytes.", 2),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (labels, s) in &merged {
                let h = match pick {
                    0 => &s.duration,
                    1 => &s.request_bytes,
                    _ => &s.response_bytes,
                };
                let mut cumulative = 0;
                for (le, n) in BUCKETS.iter().zip(h.buckets) {
                    cumulative += n;
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        let tcp: BTreeMap<String, TcpStat> = {
            let m = self.tcp.lock().unwrap_or_else(|e| e.into_inner());
            let mut merged: BTreeMap<String, TcpStat> = BTreeMap::new();
            for (k, v) in m.iter() {
                let e = merged.entry(self.labels(k)).or_default();
                e.opened += v.opened;
                e.closed += v.closed;
                e.received += v.received;
                e.sent += v.sent;
            }
            merged
        };
        if !tcp.is_empty() {
            for (name, help, pick) in [
                ("istio_tcp_connections_opened_total", "Total TCP connections opened.", 0),
                ("istio_tcp_connections_closed_total", "Total TCP connections closed.", 1),
                ("istio_tcp_received_bytes_total", "Total bytes received from clients over TCP.", 2),
                ("istio_tcp_sent_bytes_total", "Total bytes sent to clients over TCP.", 3),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (labels, s) in &tcp {
                    let v = [s.opened, s.closed, s.received, s.sent][pick];
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP istio_build Istio component build info.\n# TYPE istio_build gauge\nistio_build{{component=\"proxy\",tag=\"weir-{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_labels_follow_istio_precedence() {
        let labels = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        };
        assert_eq!(canonical(labels(&[]), "wl"), ("wl", "latest"));
        assert_eq!(canonical(labels(&[("app", "api"), ("version", "v1")]), "wl"), ("api", "v1"));
        let all = &[
            ("app", "api"),
            ("version", "v1"),
            ("app.kubernetes.io/name", "api-k8s"),
            ("app.kubernetes.io/version", "2.0"),
            ("service.istio.io/canonical-name", "shop-api"),
            ("service.istio.io/canonical-revision", "r7"),
        ];
        assert_eq!(canonical(labels(all), "wl"), ("shop-api", "r7"));
        assert_eq!(canonical(labels(&all[..4]), "wl"), ("api-k8s", "2.0"));
    }

    /// The labels of a gateway with no app or version labels.
    fn gateway() -> SourceLabels {
        SourceLabels {
            workload: "gw".into(),
            namespace: "istio-system".into(),
            app: "unknown".into(),
            version: "unknown".into(),
            canonical_service: "gw".into(),
            canonical_revision: "latest".into(),
        }
    }

    #[test]
    fn records_from_several_threads_merge_into_one_series() {
        let m = Arc::new(Metrics::new(gateway()));
        let dest = Arc::new(DestLabels::unknown("reviews.bookinfo.svc.cluster.local"));
        let obs = Observation {
            dest,
            code: 200,
            flags: Flags::NONE,
            grpc: false,
            grpc_status: None,
            duration_ms: 3.0,
            request_bytes: 0,
            response_bytes: 10,
        };
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (m, o) = (m.clone(), obs.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        m.record(&o);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = m.render();
        let line = text.lines().find(|l| l.starts_with("istio_requests_total{")).unwrap();
        assert!(line.ends_with(" 100"), "{line}");
        assert!(line.contains("destination_service=\"reviews.bookinfo.svc.cluster.local\""));
        assert!(line.contains("response_code=\"200\""));
        assert!(line.contains("response_flags=\"-\""));
        assert!(text.contains("istio_request_duration_milliseconds_bucket{") && text.contains("le=\"5\"} 100"));
        assert!(text.contains("istio_request_duration_milliseconds_count{"));
    }

    #[test]
    fn local_replies_to_one_host_share_one_series_and_hosts_are_bounded() {
        let m = Metrics::new(gateway());
        let obs = |host: &str| Observation {
            dest: DestLabels::unknown_shared(host),
            code: 404,
            flags: Flags::NO_ROUTE,
            grpc: false,
            grpc_status: None,
            duration_ms: 0.1,
            request_bytes: 0,
            response_bytes: 0,
        };
        for _ in 0..500 {
            m.record(&obs("nowhere.example"));
        }
        assert_eq!(m.series(), 1, "one host, one series");
        for i in 0..3 * MAX_UNKNOWN_SERVICES {
            m.record(&obs(&format!("random-{i}.example")));
        }
        assert!(m.series() <= MAX_UNKNOWN_SERVICES + 1, "{} series", m.series());
        let text = m.render();
        assert!(text.contains("destination_service=\"nowhere.example\""));
        assert!(text.contains("destination_service=\"unknown\""), "hosts past the bound are `unknown`");
    }
}
