//! Clusters: (service, port, subset) with its endpoints and merged policy, built on
//! demand and shared by every route that names them.

use crate::fast_map::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use weir_model::types::{
    ConnectionPoolSettings, H2UpgradePolicy, HttpCookie, LoadBalancerSettings, OutlierDetection, Resolution,
    RetryBudget, SimpleLb,
};
use weir_table::{
    Address, Cluster, ClusterId, ClusterRef, ConnectionLimits, Endpoint, HashKey, Http2Keepalive, LbPolicy,
    OutlierPolicy, TcpKeepalive, UpstreamProtocol,
};

use weir_model::FieldPath;

use crate::Instance;
use crate::notes::{Note, Target};
use crate::policy::{self, EffectivePolicy, MergedRule};
use crate::registry::{Registry, Service, ServicePort};
use crate::store::Store;

/// The port a destination without `port` resolves to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PortContext {
    /// A gateway listener: its server port.
    Listener(u16),
    /// The mesh listener: whichever service port the request is for.
    AnyPort,
}

/// Builds and remembers clusters.
pub(crate) struct Clusters<'a> {
    registry: &'a Registry,
    instance: &'a Instance,
    pub(crate) clusters: Vec<Cluster>,
    ids: HashMap<(String, u16, String), ClusterId>,
    /// The merged DestinationRule of each host, shared by the host's clusters.
    rules: HashMap<String, Option<Arc<MergedRule<'a>>>>,
    /// Distinct pool limits seen so far (see [`Clusters::shared_limits`]).
    limits: Vec<Arc<ConnectionLimits>>,
    /// Distinct endpoint label sets: the endpoints of a mesh mostly carry a handful
    /// (`version: v1`, ...), and each cluster holding an endpoint shares its set.
    label_sets: LabelSets,
    rule_index: policy::RuleIndex<'a>,
    /// Destinations that named nothing, and policies not executed: one note each.
    pub(crate) missing: Vec<Note>,
    /// The resource and field whose destinations are being resolved.
    about: Option<(Target, FieldPath)>,
    store: &'a Store,
}

/// `outbound|<port>|<subset>|<host>`.
pub fn cluster_name(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

impl<'a> Clusters<'a> {
    pub(crate) fn new(store: &'a Store, registry: &'a Registry, instance: &'a Instance) -> Self {
        Clusters {
            registry,
            instance,
            clusters: Vec::new(),
            ids: HashMap::default(),
            rules: HashMap::default(),
            limits: Vec::new(),
            label_sets: LabelSets::default(),
            rule_index: policy::RuleIndex::new(store, &instance.domain, &instance.root_namespace),
            missing: Vec::new(),
            about: None,
            store,
        }
    }

    /// Notes from here on are about `target`'s field `path` (its route).
    pub(crate) fn about(&mut self, target: Target, path: FieldPath) {
        self.about = Some((target, path));
    }

    fn unresolved(&mut self, message: String) {
        let (target, path) = self.about.clone().map_or((None, FieldPath::root()), |(t, p)| (Some(t), p));
        self.missing.push(Note::unresolved(target, path, message));
    }

    /// The DestinationRule (`ns/name`) a merged rule came from, as a note target.
    fn rule_target(&self, source: &str) -> Option<Target> {
        let (ns, name) = source.split_once('/')?;
        let dr = self.store.destination_rules.iter().find(|d| d.meta.namespace == ns && d.meta.name == name)?;
        Some(Target::of(weir_model::Kind::DestinationRule, dr))
    }

    /// The clusters built; the rest (indexes borrowing the store) is dropped.
    pub(crate) fn into_clusters(self) -> Vec<Cluster> {
        self.clusters
    }

    /// The cluster domain.
    pub(crate) fn domain(&self) -> &str {
        &self.instance.domain
    }

    /// One `Arc` per distinct set of pool limits: clusters share them (almost all have
    /// the defaults).
    fn shared_limits(&mut self, limits: Arc<ConnectionLimits>) -> Arc<ConnectionLimits> {
        if let Some(same) = self.limits.iter().find(|l| ***l == *limits) {
            return same.clone();
        }
        if self.limits.len() < 64 {
            self.limits.push(limits.clone());
        }
        limits
    }

    fn rule(&mut self, svc: &Service) -> Option<Arc<MergedRule<'a>>> {
        if let Some(r) = self.rules.get(&svc.host) {
            return r.clone();
        }
        let r = policy::rule_for(
            &self.rule_index,
            &svc.host,
            &svc.namespace,
            &self.instance.namespace,
            &self.instance.labels,
        );
        self.rules.insert(svc.host.clone(), r.clone());
        r
    }

    /// The cluster(s) for a destination `host` (an FQDN), optional `port` and `subset`.
    pub(crate) fn resolve(
        &mut self,
        host: &str,
        port: Option<u16>,
        subset: &str,
        ctx: PortContext,
    ) -> (ClusterRef, String) {
        let registry = self.registry;
        let Some(svc) = registry.lookup(host, &self.instance.namespace) else {
            let p = port.or(match ctx {
                PortContext::Listener(p) => Some(p),
                PortContext::AnyPort => None,
            });
            let name = cluster_name(p.unwrap_or(80), subset, host);
            self.unresolved(format!("destination host {host:?} names no service in the registry"));
            return (ClusterRef::Missing, name);
        };
        let chosen = match (port, svc.ports.as_slice(), ctx) {
            (Some(p), _, _) => Some(p),
            (None, [only], _) => Some(only.number),
            (None, _, PortContext::Listener(p)) => Some(p),
            (None, _, PortContext::AnyPort) => None,
        };
        match chosen {
            Some(p) => {
                let name = cluster_name(p, subset, &svc.host);
                match self.build(svc, p, subset) {
                    Some(id) => (ClusterRef::Fixed(id), name),
                    None => (ClusterRef::Missing, name),
                }
            }
            None => {
                let mut per_port = Vec::new();
                for sp in &svc.ports {
                    if let Some(id) = self.build(svc, sp.number, subset) {
                        per_port.push((sp.number, id));
                    }
                }
                let name = cluster_name(svc.default_port().unwrap_or(80), subset, &svc.host);
                if per_port.is_empty() {
                    (ClusterRef::Missing, name)
                } else {
                    (ClusterRef::PerPort(per_port.into()), name)
                }
            }
        }
    }

    /// Every cluster Istio's CDS would have: each port of each visible service, with
    /// and without each subset of its DestinationRule. Routes only reference some of
    /// them, but keeping all means a reload that moves traffic between subsets finds
    /// the pools it left warm.
    pub(crate) fn build_all(&mut self) {
        let registry = self.registry;
        for svc in registry.visible_services(&self.instance.namespace) {
            let subsets: Vec<String> =
                self.rule(svc).map(|r| r.subsets.iter().map(|s| s.name.clone()).collect()).unwrap_or_default();
            for port in &svc.ports {
                self.build(svc, port.number, "");
                for s in &subsets {
                    self.build(svc, port.number, s);
                }
            }
        }
    }

    /// The cluster for (service, port, subset), built once.
    fn build(&mut self, svc: &Service, port: u16, subset: &str) -> Option<ClusterId> {
        let key = (svc.host.clone(), port, subset.to_string());
        if let Some(id) = self.ids.get(&key) {
            return Some(*id);
        }
        let Some(sp) = svc.port(port) else {
            self.unresolved(format!("port {port} is not a port of service {:?}", svc.host));
            return None;
        };
        let rule = self.rule(svc);
        let subset_def = if subset.is_empty() {
            None
        } else {
            match rule.as_deref().and_then(|r| r.subset(subset)) {
                Some(s) => Some(s),
                None => {
                    self.unresolved(format!(
                        "subset {subset:?} of host {:?} is not defined by any DestinationRule",
                        svc.host
                    ));
                    return None;
                }
            }
        };
        let pol = policy::effective(rule.as_deref(), port, subset_def);
        let unserved = not_executed(&pol, &svc.host);
        if !unserved.is_empty() {
            // Found only when there is something to say (a search over the rules).
            let target = rule.as_deref().and_then(|r| r.sources.first()).and_then(|s| self.rule_target(s));
            let at = FieldPath::root().key("spec").key("trafficPolicy");
            for m in unserved {
                self.missing.push(Note::not_served(target.clone(), at.clone(), m));
            }
        }
        let selector = subset_def.map(|s| &s.labels);
        let mut cluster = make_cluster(svc, sp, subset, selector, &pol, &mut self.label_sets);
        cluster.limits = self.shared_limits(cluster.limits);
        let id = ClusterId(self.clusters.len());
        self.clusters.push(cluster);
        self.ids.insert(key, id);
        Some(id)
    }
}

/// DestinationRule settings weir does not execute yet: they stay out of the table, and
/// each is named once in a warning (a policy in the table is a policy in force).
fn not_executed(pol: &EffectivePolicy, host: &str) -> Vec<String> {
    let mut out = Vec::new();
    if pol.retry_budget.as_ref().and_then(|b| b.budget_interval).is_some_and(|d| d.as_nanos() > 0) {
        out.push(format!(
            "retryBudget.budgetInterval of host {host:?} is not applied (Envoy's retry budget counts requests in flight)"
        ));
    }
    out.extend(crate::upstream_tls::not_executed(pol.tls.as_ref(), host));
    if let Some(lb) = &pol.load_balancer {
        if lb
            .locality_lb_setting
            .as_ref()
            .is_some_and(|l| !l.distribute.is_empty() || !l.failover.is_empty() || !l.failover_priority.is_empty())
        {
            out.push(format!(
                "loadBalancer.localityLbSetting of host {host:?} is not executed by weir yet: every locality is one priority"
            ));
        }
        if lb.effective_warmup().is_some() {
            out.push(format!(
                "loadBalancer warm-up of host {host:?} is not executed by weir yet: new endpoints get full load"
            ));
        }
    }
    out
}

/// Label sets interned for the compile: equal sets are one allocation.
#[derive(Default)]
struct LabelSets(HashSet<Labels>);

/// An endpoint's labels, as the table holds them.
type Labels = Arc<[(Box<str>, Box<str>)]>;

impl LabelSets {
    fn share(&mut self, labels: &std::collections::BTreeMap<String, String>) -> Labels {
        let set: Vec<(Box<str>, Box<str>)> =
            labels.iter().map(|(k, v)| (k.as_str().into(), v.as_str().into())).collect();
        if let Some(same) = self.0.get(set.as_slice()) {
            return same.clone();
        }
        let shared: Labels = set.into();
        self.0.insert(shared.clone());
        shared
    }
}

fn make_cluster(
    svc: &Service,
    sp: &ServicePort,
    subset: &str,
    selector: Option<&std::collections::BTreeMap<String, String>>,
    pol: &EffectivePolicy,
    label_sets: &mut LabelSets,
) -> Cluster {
    let mut endpoints = Vec::new();
    for ep in &svc.endpoints {
        if let Some(sel) = selector
            && !sel.iter().all(|(k, v)| ep.labels.get(k) == Some(v))
        {
            continue;
        }
        let Some(port) = svc.endpoint_port(ep, sp) else { continue };
        let address = match ep.address.parse::<IpAddr>() {
            Ok(ip) => Address::Socket(SocketAddr::new(ip, port)),
            Err(_) if ep.address.starts_with("unix://") => continue,
            Err(_) => Address::Dns(ep.address.as_str().into(), port),
        };
        endpoints.push(Endpoint {
            address,
            weight: ep.weight.max(1),
            labels: label_sets.share(&ep.labels),
            locality: ep.locality.as_str().into(),
        });
    }
    let mut lb = lb_policy(pol.load_balancer.as_ref());
    if svc.endpoints.is_empty() {
        match svc.resolution {
            Resolution::Dns | Resolution::DnsRoundRobin | Resolution::None if !svc.host.starts_with('*') => {
                endpoints.push(Endpoint {
                    address: Address::Dns(svc.host.as_str().into(), sp.default_target()),
                    weight: 1,
                    labels: Arc::new([]),
                    locality: "".into(),
                });
            }
            Resolution::None | Resolution::DynamicDns => lb = LbPolicy::Passthrough,
            _ => {}
        }
    }
    endpoints.shrink_to_fit();
    let protocol = upstream_protocol(pol.connection_pool.as_ref(), &sp.protocol);
    Cluster {
        name: cluster_name(sp.number, subset, &svc.host).into(),
        service: svc.host.as_str().into(),
        namespace: svc.namespace.as_str().into(),
        port: sp.number,
        subset: subset.into(),
        port_protocol: sp.protocol.as_str().into(),
        endpoints,
        lb,
        protocol,
        limits: limits(pol.connection_pool.as_ref(), pol.retry_budget.as_ref()).into(),
        outlier: pol.outlier_detection.as_ref().map(|o| Box::new(outlier(o))),
        upstream_tls: crate::upstream_tls::compile(pol.tls.as_ref(), &svc.subject_alt_names, protocol, &sp.protocol)
            .map(Box::new),
    }
}

/// The `Set-Cookie` text after `name="value"` for a generated affinity cookie, as
/// Envoy writes it: `; Max-Age=N` (absent for a session cookie), `; Path=p`, each
/// attribute (`; Name=value`, or `; Name` when it has no value), then `; HttpOnly`.
fn set_cookie_suffix(c: &HttpCookie) -> Option<Box<str>> {
    let ttl = c.ttl?.to_std();
    let mut s = String::new();
    if !ttl.is_zero() {
        s.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if !c.path.is_empty() {
        s.push_str(&format!("; Path={}", c.path));
    }
    for a in &c.attributes {
        match a.value.as_str() {
            "" => s.push_str(&format!("; {}", a.name)),
            v => s.push_str(&format!("; {}={v}", a.name)),
        }
    }
    s.push_str("; HttpOnly");
    Some(s.into())
}

fn lb_policy(lb: Option<&LoadBalancerSettings>) -> LbPolicy {
    let Some(lb) = lb else { return LbPolicy::LeastRequest };
    if let Some(ch) = &lb.consistent_hash {
        let key = if let Some(h) = &ch.http_header_name {
            http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok().map(HashKey::Header)
        } else if let Some(c) = &ch.http_cookie {
            Some(HashKey::Cookie { name: c.name.as_str().into(), set_cookie_suffix: set_cookie_suffix(c) })
        } else if ch.use_source_ip == Some(true) {
            Some(HashKey::SourceIp)
        } else {
            ch.http_query_parameter_name.as_ref().map(|q| HashKey::QueryParameter(q.as_str().into()))
        };
        if let Some(key) = key {
            if let Some(m) = &ch.maglev {
                return LbPolicy::Maglev { key, table_size: m.table_size };
            }
            let min = ch.ring_hash.as_ref().map(|r| r.minimum_ring_size).or(ch.minimum_ring_size).filter(|n| *n > 0);
            return LbPolicy::RingHash { key, min_ring_size: min.unwrap_or(1024) };
        }
    }
    match lb.simple.map(SimpleLb::effective) {
        Some(SimpleLb::Random) => LbPolicy::Random,
        Some(SimpleLb::RoundRobin) => LbPolicy::RoundRobin,
        Some(SimpleLb::Passthrough) => LbPolicy::Passthrough,
        _ => LbPolicy::LeastRequest,
    }
}

/// Spec §3.6: `useClientProtocol` never upgrades; `UPGRADE` speaks HTTP/2; otherwise
/// ports declared HTTP/2 or gRPC get HTTP/2 and the rest HTTP/1.1 (the mesh default
/// `DO_NOT_UPGRADE`).
fn upstream_protocol(cp: Option<&ConnectionPoolSettings>, port_protocol: &str) -> UpstreamProtocol {
    let http = cp.and_then(|c| c.http.as_ref());
    if http.is_some_and(|h| h.use_client_protocol) {
        return UpstreamProtocol::ClientProtocol;
    }
    match http.and_then(|h| h.h2_upgrade_policy) {
        Some(H2UpgradePolicy::Upgrade) => UpstreamProtocol::Http2,
        Some(H2UpgradePolicy::DoNotUpgrade) => UpstreamProtocol::Http1,
        _ => match port_protocol {
            "HTTP2" | "GRPC" | "GRPC-WEB" => UpstreamProtocol::Http2,
            _ => UpstreamProtocol::Http1,
        },
    }
}

fn positive(v: i32) -> Option<u32> {
    (v > 0).then_some(v as u32)
}

/// Istio's `applyConnectionPool` (spec §3.6): zero or unset integers keep the
/// defaults (unlimited); `http.idleTimeout` wins over `tcp.idleTimeout`; `0s` idle
/// timeouts disable them.
fn limits(cp: Option<&ConnectionPoolSettings>, budget: Option<&RetryBudget>) -> ConnectionLimits {
    let mut l = ConnectionLimits {
        retry_budget: budget.map(|b| weir_table::RetryBudget {
            percent: b.percent.map_or(20.0, |p| p.value),
            min_concurrency: if b.min_retry_concurrency > 0 { b.min_retry_concurrency } else { 3 },
        }),
        ..ConnectionLimits::default()
    };
    let Some(cp) = cp else { return l };
    let nonzero = |d: weir_model::Duration| (d.as_nanos() > 0).then(|| d.to_std());
    if let Some(t) = &cp.tcp {
        l.max_connections = positive(t.max_connections).unwrap_or(l.max_connections);
        if let Some(d) = t.connect_timeout {
            l.connect_timeout = d.to_std();
        }
        if let Some(d) = t.idle_timeout {
            l.idle_timeout = nonzero(d);
        }
        l.max_connection_duration = t.max_connection_duration.and_then(nonzero);
        l.tcp_keepalive = t.tcp_keepalive.as_ref().map(|k| TcpKeepalive {
            time: k.time.and_then(nonzero),
            interval: k.interval.and_then(nonzero),
            probes: (k.probes > 0).then_some(k.probes),
        });
    }
    if let Some(h) = &cp.http {
        l.max_pending_requests = positive(h.http1_max_pending_requests).unwrap_or(l.max_pending_requests);
        l.max_requests = positive(h.http2_max_requests).unwrap_or(l.max_requests);
        l.max_retries = positive(h.max_retries).unwrap_or(l.max_retries);
        l.max_requests_per_connection = positive(h.max_requests_per_connection).unwrap_or(0);
        l.max_concurrent_streams = positive(h.max_concurrent_streams).unwrap_or(l.max_concurrent_streams);
        if let Some(d) = h.idle_timeout {
            l.idle_timeout = nonzero(d);
        }
        l.http2_keepalive = h.http2_keep_alive.as_ref().and_then(|k| {
            Some(Http2Keepalive { interval: k.interval.and_then(nonzero)?, timeout: k.timeout.and_then(nonzero)? })
        });
    }
    l
}

/// Istio's `applyOutlierDetection` over Envoy's defaults (spec §3.7).
fn outlier(od: &OutlierDetection) -> OutlierPolicy {
    OutlierPolicy {
        consecutive_5xx: match od.consecutive_5xx_errors {
            None => Some(5),
            Some(0) => None,
            Some(n) => Some(n),
        },
        consecutive_gateway_errors: od.effective_gateway_errors().filter(|n| *n > 0),
        split_local_origin: od.split_external_local_origin_errors,
        consecutive_local_origin_failures: if od.split_external_local_origin_errors {
            Some(od.consecutive_local_origin_failures.filter(|n| *n > 0).unwrap_or(5))
        } else {
            None
        },
        error_codes: od.outlier_detection_http_error_codes.iter().filter_map(|c| u16::try_from(*c).ok()).collect(),
        interval: od.interval.map(|d| d.to_std()).filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(10)),
        base_ejection_time: od
            .base_ejection_time
            .map(|d| d.to_std())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30)),
        max_ejection_percent: if od.max_ejection_percent > 0 { od.max_ejection_percent.min(100) as u32 } else { 10 },
        min_health_percent: od.min_health_percent.clamp(0, 100) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::types::CookieAttribute;

    fn cookie(ttl: Option<&str>, path: &str, attributes: &[(&str, &str)]) -> HttpCookie {
        HttpCookie {
            name: "c".into(),
            path: path.into(),
            ttl: ttl.map(|t| weir_model::Duration::parse(t).unwrap()),
            attributes: attributes
                .iter()
                .map(|(n, v)| CookieAttribute { name: n.to_string(), value: v.to_string() })
                .collect(),
        }
    }

    #[test]
    fn generated_cookie_attributes_follow_envoy() {
        let suffix = |c: HttpCookie| set_cookie_suffix(&c).map(|s| s.to_string());
        assert_eq!(suffix(cookie(None, "/", &[])), None, "no ttl: no cookie is generated");
        assert_eq!(suffix(cookie(Some("0s"), "", &[])).as_deref(), Some("; HttpOnly"), "session cookie");
        assert_eq!(
            suffix(cookie(Some("1m30s"), "/app", &[("SameSite", "Lax"), ("Partitioned", "")])).as_deref(),
            Some("; Max-Age=90; Path=/app; SameSite=Lax; Partitioned; HttpOnly")
        );
    }
}
