//! DestinationRules: which one applies to a host (spec §3.1) and the policy in effect
//! for a (port, subset) cluster (spec §3.2).

use std::collections::{BTreeMap, HashMap};

use weir_model::types::{
    ClientTlsSettings, ConnectionPoolSettings, DestinationRule, LoadBalancerSettings, OutlierDetection, Subset,
    TrafficPolicy,
};

use crate::hosts::{self, specificity};
use crate::store::{Item, Store, selects, visible};

/// The DestinationRule in effect for a host, after merging same-host rules.
#[derive(Debug, Clone, Default)]
pub struct MergedRule {
    /// Top-level policy (the oldest rule that has one).
    pub traffic_policy: Option<TrafficPolicy>,
    /// Subsets, concatenated (a repeated name keeps the first).
    pub subsets: Vec<Subset>,
    /// The rules merged (`ns/name`), for dumps.
    pub sources: Vec<String>,
}

impl MergedRule {
    /// A subset by name.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

/// The policy for one cluster: each block as the merge decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EffectivePolicy {
    /// Load balancing.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Pool limits.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS.
    pub tls: Option<ClientTlsSettings>,
}

/// DestinationRules indexed by their expanded host: exact names by hash, wildcard
/// hosts in a short list, so finding the rules for a host does not scan them all.
#[derive(Debug, Default)]
pub struct RuleIndex {
    exact: HashMap<String, Vec<usize>>,
    wildcard: Vec<(String, usize)>,
    hosts: Vec<String>,
}

impl RuleIndex {
    /// Indexes the store's rules.
    pub fn new(store: &Store, domain: &str) -> Self {
        let mut idx = RuleIndex::default();
        for (i, dr) in store.destination_rules.iter().enumerate() {
            let h = hosts::expand(&dr.spec.host, &dr.meta.namespace, domain);
            if h.starts_with('*') {
                idx.wildcard.push((h.clone(), i));
            } else {
                idx.exact.entry(h.clone()).or_default().push(i);
            }
            idx.hosts.push(h);
        }
        idx
    }

    /// Rules whose host covers `host`, in store order.
    fn candidates(&self, host: &str) -> Vec<usize> {
        let mut v: Vec<usize> = self.exact.get(host).cloned().unwrap_or_default();
        v.extend(self.wildcard.iter().filter(|(w, _)| hosts::subset_of(host, w)).map(|(_, i)| *i));
        v.sort_unstable();
        v
    }
}

/// Finds the DestinationRule for service `host` (FQDN) of namespace `service_ns`, as
/// seen by a proxy in `client_ns` with workload `labels`: rules in the client's
/// namespace first, then the service's namespace, then the root namespace; within a
/// step the most specific host wins and same-host rules merge.
#[allow(clippy::too_many_arguments)]
pub fn rule_for(
    store: &Store,
    index: &RuleIndex,
    host: &str,
    service_ns: &str,
    client_ns: &str,
    labels: &BTreeMap<String, String>,
    root_ns: &str,
) -> Option<MergedRule> {
    let applicable = |dr: &Item<DestinationRule>| {
        if !visible(&dr.spec.export_to, &dr.meta.namespace, client_ns) {
            return false;
        }
        match &dr.spec.workload_selector {
            Some(sel) => dr.meta.namespace == client_ns && selects(&sel.match_labels, labels),
            None => true,
        }
    };
    let candidates = index.candidates(host);
    for ns in [client_ns, service_ns, root_ns] {
        let mut best: Option<(bool, usize)> = None;
        let mut chosen: Vec<&Item<DestinationRule>> = Vec::new();
        for &i in &candidates {
            let dr = &store.destination_rules[i];
            if dr.meta.namespace != ns || !applicable(dr) {
                continue;
            }
            let spec = specificity(&index.hosts[i]);
            match best {
                Some(b) if spec < b => continue,
                Some(b) if spec == b => chosen.push(dr),
                _ => {
                    best = Some(spec);
                    chosen = vec![dr];
                }
            }
        }
        if !chosen.is_empty() {
            // Rules with a workload selector come before those without.
            chosen.sort_by_key(|d| d.spec.workload_selector.is_none());
            let mut merged = MergedRule::default();
            for dr in chosen {
                if merged.traffic_policy.is_none() {
                    merged.traffic_policy = dr.spec.traffic_policy.clone();
                }
                for s in &dr.spec.subsets {
                    if merged.subset(&s.name).is_none() {
                        merged.subsets.push(s.clone());
                    }
                }
                merged.sources.push(dr.id());
            }
            return Some(merged);
        }
    }
    None
}

/// A traffic policy reduced to one port: the port-level entry for `port` replaces the
/// four blocks wholesale (nothing else is inherited); returns also whether such an
/// entry existed.
fn for_port(tp: &TrafficPolicy, port: u16) -> (EffectivePolicy, bool) {
    if let Some(pl) = tp.port_level_settings.iter().find(|p| p.port.is_some_and(|s| s.number == u32::from(port))) {
        let e = EffectivePolicy {
            load_balancer: pl.load_balancer.clone(),
            connection_pool: pl.connection_pool.clone(),
            outlier_detection: pl.outlier_detection.clone(),
            tls: pl.tls.clone(),
        };
        return (e, true);
    }
    let e = EffectivePolicy {
        load_balancer: tp.load_balancer.clone(),
        connection_pool: tp.connection_pool.clone(),
        outlier_detection: tp.outlier_detection.clone(),
        tls: tp.tls.clone(),
    };
    (e, false)
}

/// The policy for cluster (port, subset) under `rule` (spec §3.2): top-level, then
/// port-level, then the subset's blocks replacing whole blocks (a subset port-level
/// entry replaces all four, even those it leaves absent).
pub fn effective(rule: Option<&MergedRule>, port: u16, subset: Option<&Subset>) -> EffectivePolicy {
    let mut base = rule.and_then(|r| r.traffic_policy.as_ref()).map(|tp| for_port(tp, port).0).unwrap_or_default();
    if let Some(sub_tp) = subset.and_then(|s| s.traffic_policy.as_ref()) {
        let (sub, port_level) = for_port(sub_tp, port);
        if port_level {
            return sub;
        }
        if sub.load_balancer.is_some() {
            base.load_balancer = sub.load_balancer;
        }
        if sub.connection_pool.is_some() {
            base.connection_pool = sub.connection_pool;
        }
        if sub.outlier_detection.is_some() {
            base.outlier_detection = sub.outlier_detection;
        }
        if sub.tls.is_some() {
            base.tls = sub.tls;
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::load_str;

    fn store(text: &str) -> Store {
        let r = load_str("t.yaml", text);
        assert!(!r.has_errors(), "{:?}", r.diagnostics);
        Store::new(r.resources)
    }

    const RULES: &str = "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: in-service-ns, namespace: shop}
spec:
  host: cart
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: in-client-ns, namespace: client}
spec:
  host: cart.shop.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wildcard, namespace: istio-system}
spec:
  host: '*.svc.cluster.local'
  trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}
";

    fn lb(r: &MergedRule) -> Option<weir_model::types::SimpleLb> {
        r.traffic_policy.as_ref()?.load_balancer.as_ref()?.simple
    }

    #[test]
    fn client_namespace_then_service_namespace_then_root() {
        use weir_model::types::SimpleLb::*;
        let s = store(RULES);
        let none = BTreeMap::new();
        let idx = RuleIndex::new(&s, "cluster.local");
        let get =
            |host: &str, svc_ns: &str, client: &str| rule_for(&s, &idx, host, svc_ns, client, &none, "istio-system");
        let h = "cart.shop.svc.cluster.local";
        assert_eq!(lb(&get(h, "shop", "client").unwrap()), Some(RoundRobin));
        assert_eq!(lb(&get(h, "shop", "other").unwrap()), Some(Random));
        assert_eq!(lb(&get("x.other.svc.cluster.local", "other", "other").unwrap()), Some(Passthrough));
        assert!(get("api.example.com", "other", "other").is_none());
    }

    #[test]
    fn same_host_rules_merge_subsets_and_the_oldest_policy_wins() {
        let s = store(
            "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: ns}
spec:
  host: svc
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: ns}
spec:
  host: svc
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]
",
        );
        let idx = RuleIndex::new(&s, "cluster.local");
        let r = rule_for(&s, &idx, "svc.ns.svc.cluster.local", "ns", "ns", &BTreeMap::new(), "istio-system").unwrap();
        assert_eq!(lb(&r), Some(weir_model::types::SimpleLb::Random));
        assert_eq!(r.subsets.len(), 2);
        assert_eq!(r.subset("v1").unwrap().labels["version"], "v1");
    }

    #[test]
    fn port_level_and_subset_blocks_replace_whole_blocks() {
        let s = store(
            "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: ns}
spec:
  host: svc
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 10}}
    portLevelSettings:
    - port: {number: 8080}
      loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {http: {http2MaxRequests: 5}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 80}
        outlierDetection: {consecutive5xxErrors: 3}
",
        );
        let idx = RuleIndex::new(&s, "cluster.local");
        let r = rule_for(&s, &idx, "svc.ns.svc.cluster.local", "ns", "ns", &BTreeMap::new(), "istio-system").unwrap();
        use weir_model::types::SimpleLb::*;
        let lbs = |e: &EffectivePolicy| e.load_balancer.as_ref().and_then(|l| l.simple);
        // Port 80: top level.
        let e = effective(Some(&r), 80, None);
        assert_eq!(lbs(&e), Some(Random));
        assert!(e.connection_pool.is_some());
        // Port 8080: the port-level entry only; the top-level pool is lost.
        let e = effective(Some(&r), 8080, None);
        assert_eq!(lbs(&e), Some(RoundRobin));
        assert!(e.connection_pool.is_none());
        // Subset v1 replaces the pool block wholesale.
        let e = effective(Some(&r), 80, r.subset("v1"));
        assert_eq!(lbs(&e), Some(Random));
        let cp = e.connection_pool.unwrap();
        assert!(cp.tcp.is_none());
        assert_eq!(cp.http.unwrap().http2_max_requests, 5);
        // Subset v2 has a port-level entry for 80: all four blocks come from it.
        let e = effective(Some(&r), 80, r.subset("v2"));
        assert!(e.load_balancer.is_none() && e.connection_pool.is_none());
        assert!(e.outlier_detection.is_some());
    }
}
