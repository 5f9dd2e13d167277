//! VirtualServices bound to the mesh that claim the same host in overlapping export
//! scopes (istioctl's ConflictingMeshGatewayHostsAnalyzer, IST0109): every one of them
//! is reported once, naming all of them.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use weir_model::host::overlaps;
use weir_model::{FieldPath, Resource};

use super::context::{Context, fqdn};
use super::{Report, Subject, msg};

pub(crate) fn check(cx: &Context<'_>, report: &mut Report) {
    // `(scope, fqdn)` → the mesh-bound VirtualServices declaring it, in input order.
    let mut hosts: BTreeMap<(String, String), Vec<&Resource>> = BTreeMap::new();
    for (r, vs) in &cx.virtual_services {
        if !(vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh")) {
            continue;
        }
        let ns = r.meta.namespace.as_str();
        let scopes: BTreeSet<String> = if vs.export_to.is_empty() || vs.export_to.iter().any(|e| e == "*") {
            BTreeSet::from(["*".to_string()])
        } else {
            vs.export_to.iter().map(|e| if e == "." { ns.to_string() } else { e.clone() }).collect()
        };
        for scope in &scopes {
            for h in &vs.hosts {
                hosts.entry((scope.clone(), fqdn(ns, h))).or_default().push(r);
            }
        }
    }
    let mut reported: HashSet<(&str, &str)> = HashSet::new();
    for ((scope, host), list) in &hosts {
        let mut list = list.clone();
        if scope != "*" {
            for ((other_scope, other_host), more) in &hosts {
                if other_scope == "*" && overlaps(host, other_host) {
                    list.extend(more.iter().copied());
                }
            }
        }
        if list.len() < 2 {
            continue;
        }
        let mut names: Vec<String> = list.iter().map(|r| format!("{}/{}", r.meta.namespace, r.meta.name)).collect();
        names.sort();
        let names = names.join(",");
        for r in list {
            if !reported.insert((r.meta.namespace.as_str(), r.meta.name.as_str())) {
                continue;
            }
            let m = format!(
                "The VirtualServices {names} associated with mesh gateway define the same host {scope}/{host} which can \
                 lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single \
                 resource."
            );
            report.add(
                Subject::Istio(r),
                msg::CONFLICTING_MESH_GATEWAY_VS_HOSTS,
                FieldPath::root().key("metadata").key("name"),
                m,
            );
        }
    }
}
