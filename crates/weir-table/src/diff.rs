//! What changes between two compiled tables, as `weir diff` prints it: listeners,
//! virtual hosts and routes added, removed or changed, clusters whose policy or
//! endpoints changed, and how each route's traffic shares shift. Pure: two tables in,
//! a [`TableDiff`] out.
//!
//! Routes are compared by what they do, not by where their clusters sit in the table:
//! a route's cluster references are indexes that any edit elsewhere renumbers, so they
//! are compared by cluster name.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::action::Action;
use crate::route::{Listener, Route, RouteTable, VirtualHost};

/// One route's destinations and their shares in percent.
pub type Shares = BTreeMap<String, f64>;

/// A change of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only in the new table.
    Added,
    /// Only in the old table.
    Removed,
    /// In both, different.
    Changed,
}

/// A virtual host or route that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Listener name.
    pub listener: String,
    /// Virtual host name.
    pub host: String,
    /// Route name (or `#index` for unnamed routes); `None` for a whole virtual host.
    pub route: Option<String>,
    /// What happened.
    pub change: Change,
    /// Traffic shares before and after (forwarding routes whose shares moved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<(Shares, Shares)>,
}

/// Everything that differs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableDiff {
    /// Listeners added or removed (`name` → change).
    pub listeners: Vec<(String, Change)>,
    /// Virtual hosts and routes.
    pub items: Vec<Item>,
    /// Clusters added, removed or changed (policy, endpoints).
    pub clusters: Vec<(String, Change)>,
}

impl TableDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty() && self.items.is_empty() && self.clusters.is_empty()
    }
}

/// A short name for a destination cluster: `outbound|9080|v1|reviews.bookinfo.svc.cluster.local`
/// is `reviews v1`, `outbound|9080||reviews...` is `reviews:9080`; other names are kept
/// whole.
pub fn destination_label(cluster: &str) -> String {
    let parts: Vec<&str> = cluster.split('|').collect();
    match parts.as_slice() {
        ["outbound", port, subset, host] => {
            let short = host.split('.').next().unwrap_or(host);
            if subset.is_empty() { format!("{short}:{port}") } else { format!("{short} {subset}") }
        }
        _ => cluster.to_string(),
    }
}

/// The shares of a route that forwards; `None` for redirects and direct responses.
pub fn shares(route: &Route) -> Option<Shares> {
    let Action::Forward(f) = &*route.action else { return None };
    let total: u32 = f.destinations.iter().map(|d| d.weight).sum();
    let mut out = Shares::new();
    for d in f.destinations.iter() {
        let pct = if total == 0 { 0.0 } else { f64::from(d.weight) * 100.0 / f64::from(total) };
        *out.entry(destination_label(&d.name)).or_default() += pct;
    }
    Some(out)
}

/// Drops `cluster` fields (indexes into the table) from a serialized route.
fn without_indexes(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("cluster");
            m.values_mut().for_each(without_indexes);
        }
        Value::Array(a) => a.iter_mut().for_each(without_indexes),
        _ => {}
    }
}

fn route_value(r: &Route) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    without_indexes(&mut v);
    v
}

fn route_key(i: usize, r: &Route) -> String {
    if r.name.is_empty() { format!("#{i}") } else { r.name.to_string() }
}

fn hosts_of(l: &Listener) -> BTreeMap<&str, &VirtualHost> {
    l.virtual_hosts.iter().map(|v| (&*v.name, v)).collect()
}

fn diff_routes(listener: &str, host: &str, old: &VirtualHost, new: &VirtualHost, out: &mut Vec<Item>) {
    let keyed = |v: &'_ VirtualHost| -> Vec<(String, Value, Option<Shares>)> {
        v.routes.iter().enumerate().map(|(i, r)| (route_key(i, r), route_value(r), shares(r))).collect()
    };
    let (a, b) = (keyed(old), keyed(new));
    let item = |route: &str, change, shares| Item {
        listener: listener.to_string(),
        host: host.to_string(),
        route: Some(route.to_string()),
        change,
        shares,
    };
    for (k, v, s) in &a {
        match b.iter().find(|(k2, _, _)| k2 == k) {
            None => out.push(item(k, Change::Removed, None)),
            Some((_, v2, s2)) if v2 != v => {
                let moved = match (s, s2) {
                    (Some(x), Some(y)) if x != y => Some((x.clone(), y.clone())),
                    _ => None,
                };
                out.push(item(k, Change::Changed, moved));
            }
            Some(_) => {}
        }
    }
    for (k, _, _) in &b {
        if !a.iter().any(|(k2, _, _)| k2 == k) {
            out.push(item(k, Change::Added, None));
        }
    }
    // The same routes in another order is a change too (first match wins).
    let order = |v: &[(String, Value, Option<Shares>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    let (oa, ob) = (order(&a), order(&b));
    let common_a: Vec<&String> = oa.iter().filter(|k| ob.contains(k)).collect();
    let common_b: Vec<&String> = ob.iter().filter(|k| oa.contains(k)).collect();
    if common_a != common_b {
        out.push(Item {
            listener: listener.to_string(),
            host: host.to_string(),
            route: None,
            change: Change::Changed,
            shares: None,
        });
    }
}

fn listeners_by_name(t: &RouteTable) -> BTreeMap<String, &Listener> {
    t.listeners.iter().map(|l| (l.name.to_string(), l)).collect()
}

/// The differences from `old` to `new`.
pub fn diff(old: &RouteTable, new: &RouteTable) -> TableDiff {
    let mut d = TableDiff::default();
    let (lo, ln) = (listeners_by_name(old), listeners_by_name(new));
    for name in lo.keys().filter(|n| !ln.contains_key(*n)) {
        d.listeners.push((name.clone(), Change::Removed));
    }
    for name in ln.keys().filter(|n| !lo.contains_key(*n)) {
        d.listeners.push((name.clone(), Change::Added));
    }
    for (name, l_old) in &lo {
        let Some(l_new) = ln.get(name) else { continue };
        let (ho, hn) = (hosts_of(l_old), hosts_of(l_new));
        let whole = |host: &str, change| Item {
            listener: name.clone(),
            host: host.to_string(),
            route: None,
            change,
            shares: None,
        };
        for (h, v_old) in &ho {
            match hn.get(h) {
                None => d.items.push(whole(h, Change::Removed)),
                Some(v_new) => diff_routes(name, h, v_old, v_new, &mut d.items),
            }
        }
        for h in hn.keys().filter(|h| !ho.contains_key(*h)) {
            d.items.push(whole(h, Change::Added));
        }
    }
    let clusters = |t: &RouteTable| {
        t.clusters
            .iter()
            .map(|c| (c.name.to_string(), serde_json::to_value(c).unwrap_or(Value::Null)))
            .collect::<BTreeMap<_, _>>()
    };
    let (co, cn) = (clusters(old), clusters(new));
    for (name, v) in &co {
        match cn.get(name) {
            None => d.clusters.push((name.clone(), Change::Removed)),
            Some(v2) if v2 != v => d.clusters.push((name.clone(), Change::Changed)),
            Some(_) => {}
        }
    }
    for name in cn.keys().filter(|n| !co.contains_key(*n)) {
        d.clusters.push((name.clone(), Change::Added));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_labels_are_short() {
        assert_eq!(destination_label("outbound|9080|v1|reviews.bookinfo.svc.cluster.local"), "reviews v1");
        assert_eq!(destination_label("outbound|80||httpbin.org"), "httpbin:80");
        assert_eq!(destination_label("PassthroughCluster"), "PassthroughCluster");
    }

    #[test]
    fn equal_tables_have_no_diff() {
        let t = RouteTable::default();
        assert!(diff(&t, &t).is_empty());
    }
}
