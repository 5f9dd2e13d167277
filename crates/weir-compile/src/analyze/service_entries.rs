//! ServiceEntries (istioctl's ProtocolAddressesAnalyzer and
//! ConflictingServiceEntryProtocolAnalyzer): a TCP (or unnamed-protocol) port without
//! `addresses` cannot be told apart from other TCP traffic on that port (IST0134, one
//! per such port); two entries giving one host and port different protocols in
//! overlapping export scopes conflict (IST0177).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use weir_model::{FieldPath, Resource};

use super::{Context, Report, Subject, msg};

/// `(export scope, host, port)`.
type ScopedPort<'a> = (String, &'a str, u32);

pub(crate) fn check(cx: &Context<'_>, report: &mut Report) {
    for (r, se) in &cx.service_entries {
        if !se.addresses.is_empty() || r.status_addresses || cx.dns_auto_allocate {
            continue;
        }
        for (i, port) in se.ports.iter().enumerate() {
            if port.protocol.is_empty() || port.protocol.eq_ignore_ascii_case("TCP") {
                let path = FieldPath::root().key("spec").key("ports").index(i);
                let m = "ServiceEntry addresses are required for this protocol.".to_string();
                report.add(Subject::Istio(r), msg::SERVICE_ENTRY_ADDRESSES_REQUIRED, path, m);
            }
        }
    }

    // `(scope, host, port)` → `(protocol, entry)`.
    let mut index: BTreeMap<ScopedPort<'_>, Vec<(&str, &Resource)>> = BTreeMap::new();
    for (r, se) in &cx.service_entries {
        let ns = r.meta.namespace.as_str();
        let scopes: BTreeSet<String> = if se.export_to.is_empty() || se.export_to.iter().any(|e| e == "*") {
            BTreeSet::from(["*".to_string()])
        } else {
            se.export_to.iter().map(|e| if e == "." { ns.to_string() } else { e.clone() }).collect()
        };
        for scope in scopes {
            for h in &se.hosts {
                for p in &se.ports {
                    index.entry((scope.clone(), h.as_str(), p.number)).or_default().push((p.protocol.as_str(), r));
                }
            }
        }
    }
    let mut reported: HashSet<(&str, &str)> = HashSet::new();
    for ((scope, host, port), entries) in &index {
        let mut entries = entries.clone();
        if scope != "*" {
            entries.extend(index.get(&("*".to_string(), *host, *port)).into_iter().flatten().copied());
        }
        let protocols: BTreeSet<String> = entries.iter().map(|(p, _)| p.to_ascii_uppercase()).collect();
        if protocols.len() < 2 {
            continue;
        }
        let names: BTreeSet<String> =
            entries.iter().map(|(_, r)| format!("{}/{}", r.meta.namespace, r.meta.name)).collect();
        let names = names.into_iter().collect::<Vec<_>>().join(", ");
        let protocols = protocols.into_iter().collect::<Vec<_>>().join(", ");
        for (_, r) in entries {
            if !reported.insert((r.meta.namespace.as_str(), r.meta.name.as_str())) {
                continue;
            }
            let m = format!(
                "Multiple ServiceEntries ({names}) define the same host {host:?} and port {port} with conflicting \
                 protocols ({protocols})."
            );
            let path = FieldPath::root().key("metadata").key("name");
            report.add(Subject::Istio(r), msg::CONFLICTING_SERVICE_ENTRY_PROTOCOL, path, m);
        }
    }
}
