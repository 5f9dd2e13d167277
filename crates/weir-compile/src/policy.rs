//! DestinationRules: which one applies to a host (spec §3.1) and the policy in effect
//! for a (port, subset) cluster (spec §3.2).
//!
//! Selection follows Istio's index: rules are consolidated per namespace and host in
//! three pools (every rule usable in its own namespace; rules exported beyond it; the
//! root namespace's private rules), same-host rules merging as Istio merges them; a
//! client then looks in its own namespace, the service's, and the root namespace.

use std::collections::{BTreeMap, BTreeSet};

use crate::fast_map::HashMap;
use std::sync::Arc;

use weir_model::types::{
    ClientTlsSettings, ConnectionPoolSettings, DestinationRule, LoadBalancerSettings, OutlierDetection, RetryBudget,
    Subset, TrafficPolicy,
};

use crate::hosts::{self, specificity};
use crate::store::{Item, Store, selects};

/// The DestinationRule in effect for a host, after merging same-host rules.
/// It borrows the rules' parts from the store: a large mesh has one per host, and
/// copying policies and subsets into each was a tenth of the compile.
#[derive(Debug, Clone, Default)]
pub struct MergedRule<'a> {
    /// Top-level policy (the oldest rule that has one).
    pub traffic_policy: Option<&'a TrafficPolicy>,
    /// Subsets, concatenated (a repeated name keeps the first).
    pub subsets: Vec<&'a Subset>,
    /// The rules merged (`ns/name`), for dumps.
    pub sources: Vec<String>,
}

impl<'a> MergedRule<'a> {
    /// A subset by name.
    pub fn subset(&self, name: &str) -> Option<&'a Subset> {
        self.subsets.iter().find(|s| s.name == name).copied()
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
    /// Retry budget (a traffic policy's, not port-level).
    pub retry_budget: Option<RetryBudget>,
}

/// One entry of a pool: a rule with the rules merged into it.
#[derive(Debug, Clone)]
struct Consolidated<'a> {
    /// Shared with every cluster whose host it serves (built once, never cloned).
    rule: Arc<MergedRule<'a>>,
    /// The rule's `workloadSelector` labels, if it has one.
    selector: Option<BTreeMap<String, String>>,
    /// Its `exportTo` as written (`.` for a rule with a selector, which is never
    /// exported).
    export_to: BTreeSet<String>,
    /// The namespace it was written in.
    namespace: String,
}

impl<'a> Consolidated<'a> {
    fn of(dr: &'a Item<DestinationRule>, export_to: BTreeSet<String>) -> Self {
        Consolidated {
            rule: Arc::new(MergedRule {
                traffic_policy: dr.spec.traffic_policy.as_deref(),
                subsets: dr.spec.subsets.iter().collect(),
                sources: vec![dr.id()],
            }),
            selector: dr.spec.workload_selector.as_ref().map(|s| s.match_labels.clone()),
            export_to,
            namespace: dr.meta.namespace.clone(),
        }
    }

    /// Takes `dr`'s subsets it lacks, and its policy if it has none.
    fn absorb(&mut self, dr: &'a Item<DestinationRule>) {
        // Only the index holds the rule while it is built: no copy is made here.
        let rule = Arc::make_mut(&mut self.rule);
        for s in &dr.spec.subsets {
            if rule.subset(&s.name).is_none() {
                rule.subsets.push(s);
            }
        }
        if rule.traffic_policy.is_none() {
            rule.traffic_policy = dr.spec.traffic_policy.as_deref();
        }
        rule.sources.push(dr.id());
    }
}

/// Consolidated rules of one namespace by expanded host: exact names by hash, wildcard
/// hosts in a short list, so finding the rules for a host does not scan them all.
#[derive(Debug, Default)]
struct Pool<'a> {
    exact: HashMap<String, Vec<Consolidated<'a>>>,
    wildcard: Vec<(String, Vec<Consolidated<'a>>)>,
}

impl<'a> Pool<'a> {
    /// Adds `dr` (host `host`) as Istio's `mergeDestinationRule` does: into every entry
    /// with the same exportTo and compatible selectors, and as an entry of its own
    /// unless an entry absorbed it completely.
    fn add(&mut self, host: &str, dr: &'a Item<DestinationRule>, export_to: BTreeSet<String>) {
        let list = if host.starts_with('*') {
            match self.wildcard.iter().position(|(h, _)| h == host) {
                Some(i) => &mut self.wildcard[i].1,
                None => {
                    self.wildcard.push((host.to_string(), Vec::new()));
                    &mut self.wildcard.last_mut().expect("just pushed").1
                }
            }
        } else {
            self.exact.entry(host.to_string()).or_default()
        };
        let selector = dr.spec.workload_selector.as_ref().map(|s| &s.match_labels);
        let mut separately = true;
        for entry in list.iter_mut() {
            let both_without = selector.is_none() && entry.selector.is_none();
            let both_with = selector.is_some() && entry.selector.is_some();
            let selectors_equal = selector == entry.selector.as_ref();
            if export_to == entry.export_to {
                separately = !(both_without || (both_with && selectors_equal));
            } else if !entry.export_to.is_empty() && export_to.is_superset(&entry.export_to) {
                separately = true;
            } else {
                separately = true;
                continue;
            }
            if both_with && !selectors_equal {
                separately = true;
                continue;
            }
            entry.absorb(dr);
        }
        if separately {
            list.push(Consolidated::of(dr, export_to));
        }
    }

    /// The entries for the most specific host matching `host`.
    fn lookup(&self, host: &str) -> Option<&[Consolidated<'a>]> {
        if let Some(v) = self.exact.get(host) {
            return Some(v);
        }
        self.wildcard
            .iter()
            .filter(|(w, _)| hosts::subset_of(host, w))
            .max_by_key(|(w, _)| specificity(w))
            .map(|(_, v)| v.as_slice())
    }
}

/// DestinationRules indexed as Istio indexes them for a proxy's lookups.
#[derive(Debug, Default)]
pub struct RuleIndex<'a> {
    /// Per namespace: every rule usable there (exported to `*`, `.` or that
    /// namespace, or not restricted).
    namespace_local: HashMap<String, Pool<'a>>,
    /// Per namespace: the rules exported beyond it.
    exported: HashMap<String, Pool<'a>>,
    /// The root namespace's rules that are private to it.
    root_local: Pool<'a>,
    root_ns: String,
}

impl<'a> RuleIndex<'a> {
    /// Indexes the store's rules; `root_ns` is the mesh's root namespace.
    pub fn new(store: &'a Store, domain: &str, root_ns: &str) -> Self {
        let mut idx = RuleIndex { root_ns: root_ns.to_string(), ..RuleIndex::default() };
        // Rules with a selector first, each group oldest first (the store's order).
        let mut rules: Vec<&'a Item<DestinationRule>> = store.destination_rules.iter().collect();
        rules.sort_by_key(|d| d.spec.workload_selector.is_none());
        for dr in rules {
            let ns = dr.meta.namespace.as_str();
            let host = hosts::expand(&dr.spec.host, ns, domain);
            let export_to: BTreeSet<String> = match dr.spec.workload_selector {
                // A rule with a workload selector is never exported.
                Some(_) => BTreeSet::from([".".to_string()]),
                None => dr.spec.export_to.iter().cloned().collect(),
            };
            let local = export_to.is_empty() || export_to.iter().any(|e| e == "*" || e == "." || e == ns);
            if local {
                idx.namespace_local.entry(ns.to_string()).or_default().add(&host, dr, export_to.clone());
            }
            let private_only = export_to.len() == 1 && export_to.iter().all(|e| e == "." || e == ns);
            if !private_only {
                idx.exported.entry(ns.to_string()).or_default().add(&host, dr, export_to);
            } else if ns == root_ns {
                idx.root_local.add(&host, dr, export_to);
            }
        }
        idx
    }

    /// The entries of `ns`'s exported rules for `host` that `client_ns` may see.
    fn exported_to(&self, ns: &str, host: &str, client_ns: &str) -> Option<Vec<&Consolidated<'a>>> {
        let entries = self.exported.get(ns)?.lookup(host)?;
        let seen: Vec<&Consolidated<'a>> = entries
            .iter()
            .filter(|c| c.export_to.is_empty() || c.export_to.contains("*") || c.export_to.contains(client_ns))
            .collect();
        (!seen.is_empty()).then_some(seen)
    }
}

/// Finds the DestinationRule for service `host` (FQDN) of namespace `service_ns`, as
/// seen by a proxy in `client_ns` with workload `labels`: rules in the client's
/// namespace first (for a proxy in the root namespace, only that namespace's private
/// rules, so a mesh-wide default there does not hide a service's own rule), then the
/// service's namespace, then the root namespace. Of the consolidated entries found, the
/// first whose selector picks this proxy wins, else the last without a selector.
pub fn rule_for<'a>(
    index: &RuleIndex<'a>,
    host: &str,
    service_ns: &str,
    client_ns: &str,
    labels: &BTreeMap<String, String>,
) -> Option<Arc<MergedRule<'a>>> {
    let entries: Vec<&Consolidated<'a>> = if client_ns != index.root_ns
        && let Some(found) = index.namespace_local.get(client_ns).and_then(|p| p.lookup(host))
    {
        found.iter().collect()
    } else if client_ns == index.root_ns
        && let Some(found) = index.root_local.lookup(host)
    {
        found.iter().collect()
    } else {
        index.exported_to(service_ns, host, client_ns).or_else(|| index.exported_to(&index.root_ns, host, client_ns))?
    };
    let mut catch_all = None;
    for c in entries {
        match &c.selector {
            None => catch_all = Some(c),
            Some(sel) if c.namespace == client_ns && selects(sel, labels) => return Some(c.rule.clone()),
            Some(_) => {}
        }
    }
    catch_all.map(|c| c.rule.clone())
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
            retry_budget: tp.retry_budget.clone(),
        };
        return (e, true);
    }
    let e = EffectivePolicy {
        load_balancer: tp.load_balancer.clone(),
        connection_pool: tp.connection_pool.clone(),
        outlier_detection: tp.outlier_detection.clone(),
        tls: tp.tls.clone(),
        retry_budget: tp.retry_budget.clone(),
    };
    (e, false)
}

/// The policy for cluster (port, subset) under `rule` (spec §3.2): top-level, then
/// port-level, then the subset's blocks replacing whole blocks (a subset port-level
/// entry replaces all four, even those it leaves absent).
pub fn effective(rule: Option<&MergedRule>, port: u16, subset: Option<&Subset>) -> EffectivePolicy {
    let mut base = rule.and_then(|r| r.traffic_policy).map(|tp| for_port(tp, port).0).unwrap_or_default();
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
        if sub.retry_budget.is_some() {
            base.retry_budget = sub.retry_budget;
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
        r.traffic_policy?.load_balancer.as_ref()?.simple
    }

    #[test]
    fn client_namespace_then_service_namespace_then_root() {
        use weir_model::types::SimpleLb::*;
        let s = store(RULES);
        let none = BTreeMap::new();
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let get = |host: &str, svc_ns: &str, client: &str| rule_for(&idx, host, svc_ns, client, &none);
        let h = "cart.shop.svc.cluster.local";
        assert_eq!(lb(&get(h, "shop", "client").unwrap()), Some(RoundRobin));
        assert_eq!(lb(&get(h, "shop", "other").unwrap()), Some(Random));
        assert_eq!(lb(&get("x.other.svc.cluster.local", "other", "other").unwrap()), Some(Passthrough));
        assert!(get("api.example.com", "other", "other").is_none());
    }

    fn dr(name: &str, ns: &str, host: &str, extra: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  host: {host}\n{extra}---\n"
        )
    }

    fn subsets<'a>(r: &MergedRule<'a>) -> Vec<&'a str> {
        r.subsets.iter().map(|s| s.name.as_str()).collect()
    }

    /// A proxy in the root namespace (a gateway in istio-system) looks at the service's
    /// own rule before the root namespace's exported mesh-wide default; a rule private
    /// to the root namespace still comes first for it.
    #[test]
    fn a_root_namespace_proxy_prefers_the_service_rule_to_a_mesh_wide_default() {
        use weir_model::types::SimpleLb::*;
        let mesh_wide = dr(
            "default",
            "istio-system",
            "'*.svc.cluster.local'",
            "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n",
        );
        let own = dr(
            "echo",
            "demo",
            "echo",
            "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n  subsets: [{name: v1, labels: {version: v1}}]\n",
        );
        let s = store(&format!("{mesh_wide}{own}"));
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let none = BTreeMap::new();
        let h = "echo.demo.svc.cluster.local";
        let r = rule_for(&idx, h, "demo", "istio-system", &none).unwrap();
        assert_eq!((lb(&r), subsets(&r)), (Some(RoundRobin), vec!["v1"]));
        // A client in another namespace sees the same; the mesh-wide rule covers the rest.
        assert_eq!(lb(&rule_for(&idx, h, "demo", "shop", &none).unwrap()), Some(RoundRobin));
        assert_eq!(
            lb(&rule_for(&idx, "x.shop.svc.cluster.local", "shop", "istio-system", &none).unwrap()),
            Some(Random)
        );

        let private = dr(
            "gw-only",
            "istio-system",
            "echo.demo.svc.cluster.local",
            "  exportTo: ['.']\n  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n",
        );
        let s = store(&format!("{mesh_wide}{own}{private}"));
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        assert_eq!(lb(&rule_for(&idx, h, "demo", "istio-system", &none).unwrap()), Some(LeastRequest));
        assert_eq!(lb(&rule_for(&idx, h, "demo", "shop", &none).unwrap()), Some(RoundRobin));
    }

    /// A rule with a workload selector is never merged into a selector-less one: the
    /// proxies it selects get it alone, the others the selector-less rule.
    #[test]
    fn a_selector_rule_stands_alone_for_the_proxies_it_selects() {
        use weir_model::types::SimpleLb::*;
        let plain = dr(
            "a-plain",
            "demo",
            "echo",
            "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n  subsets: [{name: v2, labels: {version: v2}}]\n",
        );
        let sel = dr(
            "b-sel",
            "demo",
            "echo",
            "  workloadSelector: {matchLabels: {app: client}}\n  subsets: [{name: v1, labels: {version: v1}}]\n",
        );
        let s = store(&format!("{plain}{sel}"));
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let h = "echo.demo.svc.cluster.local";
        let client = BTreeMap::from([("app".to_string(), "client".to_string())]);
        let r = rule_for(&idx, h, "demo", "demo", &client).unwrap();
        assert_eq!((lb(&r), subsets(&r)), (None, vec!["v1"]));
        let r = rule_for(&idx, h, "demo", "demo", &BTreeMap::new()).unwrap();
        assert_eq!((lb(&r), subsets(&r)), (Some(RoundRobin), vec!["v2"]));
        // The selector only works in its own namespace.
        let r = rule_for(&idx, h, "demo", "other", &client).unwrap();
        assert_eq!(subsets(&r), vec!["v2"]);
    }

    /// Same-host rules merge only when their exportTo is the same; otherwise the client
    /// uses the last selector-less entry, as Istio does.
    #[test]
    fn rules_with_different_export_to_do_not_merge() {
        use weir_model::types::SimpleLb::*;
        let private =
            dr("a-private", "demo", "echo", "  exportTo: ['.']\n  subsets: [{name: v1, labels: {version: v1}}]\n");
        let public = dr(
            "b-public",
            "demo",
            "echo",
            "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n  subsets: [{name: v2, labels: {version: v2}}]\n",
        );
        let s = store(&format!("{private}{public}"));
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let r = rule_for(&idx, "echo.demo.svc.cluster.local", "demo", "demo", &BTreeMap::new()).unwrap();
        assert_eq!((lb(&r), subsets(&r)), (Some(RoundRobin), vec!["v2"]));
        // Same exportTo: merged, the older policy and subsets first.
        let public2 = dr(
            "c-public",
            "demo",
            "echo",
            "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets: [{name: v3, labels: {version: v3}}]\n",
        );
        let s = store(&format!("{public}{public2}"));
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let r = rule_for(&idx, "echo.demo.svc.cluster.local", "demo", "demo", &BTreeMap::new()).unwrap();
        assert_eq!((lb(&r), subsets(&r)), (Some(RoundRobin), vec!["v2", "v3"]));
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
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let r = rule_for(&idx, "svc.ns.svc.cluster.local", "ns", "ns", &BTreeMap::new()).unwrap();
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
        let idx = RuleIndex::new(&s, "cluster.local", "istio-system");
        let r = rule_for(&idx, "svc.ns.svc.cluster.local", "ns", "ns", &BTreeMap::new()).unwrap();
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
