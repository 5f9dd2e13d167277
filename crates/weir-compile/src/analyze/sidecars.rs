//! Sidecars (istioctl's SelectorAnalyzer): a workload selector must pick a Pod in the
//! Sidecar's namespace (IST0101); two Sidecars selecting one Pod conflict (IST0110);
//! so do two selector-less Sidecars in one namespace (IST0111). Workloads and
//! namespaces in ambient mode have no sidecar for the policy to reach (IST0167).

use std::collections::BTreeMap;

use weir_model::k8s::{CoreKind, CoreObject};
use weir_model::{FieldPath, Resource};

use super::context::{Context, selector_string, selects};
use super::{Report, Subject, msg};

fn pod_ambient(pod: &CoreObject) -> bool {
    pod.annotations.get("ambient.istio.io/redirection").is_some_and(|v| v == "enabled")
}

/// `pods: false` (no Pod in the inputs) leaves out the selector checks.
pub(crate) fn check(cx: &Context<'_>, report: &mut Report, pods: bool) {
    // Pod → the Sidecars selecting it; namespace → its selector-less Sidecars.
    let mut by_pod: BTreeMap<(&str, &str), (&CoreObject, Vec<&Resource>)> = BTreeMap::new();
    let mut by_namespace: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for (r, sc) in &cx.sidecars {
        let ns = r.meta.namespace.as_str();
        let Some(selector) = sc.workload_selector.as_ref().map(|w| &w.labels).filter(|l| !l.is_empty()) else {
            by_namespace.entry(ns).or_default().push(r);
            continue;
        };
        let mut found = false;
        for (pod, _) in cx.pods.iter().filter(|(p, _)| p.namespace == ns && selects(selector, &p.labels)) {
            found = true;
            by_pod.entry((&pod.namespace, &pod.name)).or_insert_with(|| (pod, Vec::new())).1.push(r);
        }
        if !found && pods {
            let mut path = FieldPath::root().key("spec").key("workloadSelector").key("labels");
            if let Some(k) = selector.keys().next() {
                path = path.key(k);
            }
            let m = format!("Referenced selector not found: {:?}", selector_string(selector));
            report.add(Subject::Istio(r), msg::REFERENCED_RESOURCE_NOT_FOUND, path, m);
        }
    }
    let names = |list: &[&Resource]| {
        let mut n: Vec<&str> = list.iter().map(|r| r.meta.name.as_str()).collect();
        n.sort();
        format!("[{}]", n.join(" "))
    };
    let mut ineffective = std::collections::HashSet::new();
    for ((pod_ns, pod_name), (pod, list)) in &by_pod {
        if pod_ambient(pod) {
            for r in list {
                if ineffective.insert((r.meta.namespace.as_str(), r.meta.name.as_str())) {
                    let m = "The policy has no impact: selected workload is in ambient mode, the policy has no impact."
                        .to_string();
                    report.add(Subject::Istio(r), msg::INEFFECTIVE_POLICY, FieldPath::root(), m);
                }
            }
            continue;
        }
        if list.len() < 2 || !pods {
            continue;
        }
        for r in list {
            let m = format!(
                "The Sidecars {} in namespace {pod_ns:?} select the same workload pod {pod_name:?}, which can lead to \
                 undefined behavior.",
                names(list)
            );
            let path = FieldPath::root().key("metadata").key("name");
            report.add(Subject::Istio(r), msg::CONFLICTING_SIDECAR_SELECTORS, path, m);
        }
    }
    let ambient_namespaces: Vec<&str> = cx
        .core
        .iter()
        .filter(|o| o.kind == CoreKind::Namespace)
        // A namespace with sidecar injection on (or a revision) is not ambient.
        .filter(|o| o.labels.get("istio-injection").is_none_or(|v| v != "enabled"))
        .filter(|o| o.labels.get("istio.io/rev").is_none_or(|v| v.is_empty()))
        .filter(|o| o.labels.get("istio.io/dataplane-mode").is_some_and(|v| v == "ambient"))
        .map(|o| o.name.as_str())
        .collect();
    for (ns, list) in &by_namespace {
        if ambient_namespaces.contains(ns) {
            for r in list {
                if ineffective.insert((r.meta.namespace.as_str(), r.meta.name.as_str())) {
                    let m =
                        "The policy has no impact: namespace is in ambient mode, the policy has no impact.".to_string();
                    report.add(Subject::Istio(r), msg::INEFFECTIVE_POLICY, FieldPath::root(), m);
                }
            }
            continue;
        }
        if list.len() < 2 {
            continue;
        }
        for r in list {
            let m = format!(
                "The Sidecars {} in namespace {ns:?} have no workload selector, which can lead to undefined behavior.",
                names(list)
            );
            report.add(Subject::Istio(r), msg::MULTIPLE_SIDECARS_WITHOUT_SELECTORS, FieldPath::root(), m);
        }
    }
}
