//! DestinationRules (istioctl's CaCertificateAnalyzer and PodNotSelectedAnalyzer):
//! SIMPLE or MUTUAL TLS without `caCertificates` does not verify the server (IST0128,
//! IST0129 per port); the host must name a visible service (IST0174); each subset must
//! select some workload (IST0173).
//!
//! Workloads are Pods, as in istioctl, and also WorkloadEntries and ServiceEntry
//! endpoints: in file mode those are the only workloads weir has, and a subset that
//! selects one of them does select endpoints.

use std::collections::BTreeMap;

use weir_model::FieldPath;
use weir_model::types::{ClientTlsMode, ClientTlsSettings};

use super::context::Context;
use super::{Report, Subject, msg};

fn unverified(tls: Option<&ClientTlsSettings>, has_workload_selector: bool) -> Option<&'static str> {
    let tls = tls?;
    let mode = match tls.mode {
        Some(ClientTlsMode::Simple) => "SIMPLE",
        Some(ClientTlsMode::Mutual) => "MUTUAL",
        _ => return None,
    };
    let exempt = !tls.credential_name.is_empty() && has_workload_selector;
    (tls.ca_certificates.is_empty() && !exempt).then_some(mode)
}

/// IST0128 and IST0129.
pub(crate) fn check_tls(cx: &Context<'_>, report: &mut Report) {
    for (r, dr) in &cx.destination_rules {
        let ns = r.meta.namespace.as_str();
        let subject = Subject::Istio(r);
        let name = format!("{ns}/{}", r.meta.name);
        let policy = FieldPath::root().key("spec").key("trafficPolicy");
        let tp = dr.traffic_policy.as_deref();
        if let Some(mode) = unverified(tp.and_then(|t| t.tls.as_ref()), dr.workload_selector.is_some()) {
            let m = format!(
                "DestinationRule {name} in namespace {ns} has TLS mode set to {mode} but no caCertificates are set to \
                 validate server identity for host: {}",
                dr.host
            );
            report.add(subject, msg::NO_SERVER_CERT_VERIFICATION_DESTINATION, policy.key("tls"), m);
        }
        for (i, p) in tp.map(|t| t.port_level_settings.as_slice()).unwrap_or_default().iter().enumerate() {
            if let Some(mode) = unverified(p.tls.as_ref(), dr.workload_selector.is_some()) {
                let port = p.port.as_ref().map_or(String::new(), |p| format!("number:{}", p.number));
                let m = format!(
                    "DestinationRule {name} in namespace {ns} has TLS mode set to {mode} but no caCertificates are set \
                     to validate server identity for host: {} at port {port}",
                    dr.host
                );
                let path = policy.key("portLevelSettings").index(i).key("tls");
                report.add(subject, msg::NO_SERVER_CERT_VERIFICATION_PORT, path, m);
            }
        }
    }
}

/// IST0174 and IST0173: they need the registry.
pub(crate) fn check_hosts(cx: &Context<'_>, report: &mut Report) {
    let workloads = cx.workloads();
    for (r, dr) in &cx.destination_rules {
        let subject = Subject::Istio(r);
        let Some(svc) = cx.services.lookup(&r.meta.namespace, &dr.export_to, &dr.host) else {
            let m =
                format!("The host {} defined in the DestinationRule does not match any services in the mesh.", dr.host);
            report.add(subject, msg::UNKNOWN_DESTINATION_RULE_HOST, FieldPath::root().key("spec").key("host"), m);
            continue;
        };
        for (i, subset) in dr.subsets.iter().enumerate() {
            let mut selector: BTreeMap<String, String> = svc.workload_selector.cloned().unwrap_or_default();
            selector.extend(subset.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            if !workloads.any_selected(&selector) {
                let m = format!(
                    "The Subset {} defined in the DestinationRule does not select any pods. Which may lead to 503 UH \
                     (NoHealthyUpstream).",
                    subset.name
                );
                let path = FieldPath::root().key("spec").key("subsets").index(i);
                report.add(subject, msg::SUBSET_SELECTS_NO_PODS, path, m);
            }
        }
    }
}
