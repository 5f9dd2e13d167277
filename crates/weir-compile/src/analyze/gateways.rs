//! Gateways (istioctl's IngressGatewayPortAnalyzer, SecretAnalyzer,
//! CertificateAnalyzer and ConflictingGatewayAnalyzer): the selector must pick a pod
//! (IST0101), each server port must be a port of a Service in front of those pods
//! (IST0162), each `credentialName` must name a Secret in the pods' namespace (IST0101)
//! that holds a usable certificate (IST0161); gateways on the same pods must not share
//! a certificate (IST0138) or claim the same port, host and bind (IST0145).

use std::collections::{BTreeMap, HashMap, HashSet};

use weir_model::FieldPath;
use weir_model::k8s::{CoreKind, CoreObject, CoreSpec};
use weir_model::types::{Gateway, ServerTlsSettings};

use super::context::{Context, gateway_name, selector_string, selects};
use super::{Report, Subject, msg};

fn selector_path(selector: &BTreeMap<String, String>) -> FieldPath {
    let p = FieldPath::root().key("spec").key("selector");
    match selector.keys().next() {
        Some(k) => p.key(k),
        None => p,
    }
}

/// `credentials`: check `credentialName` Secrets (IST0101, IST0161), which needs
/// Secrets in the inputs.
pub(crate) fn check(cx: &Context<'_>, report: &mut Report, credentials: bool) {
    let secrets: HashMap<(&str, &str), &CoreObject> = cx
        .core
        .iter()
        .filter(|o| o.kind == CoreKind::Secret)
        .map(|o| ((o.namespace.as_str(), o.name.as_str()), o))
        .collect();
    for (r, gw) in &cx.gateways {
        let subject = Subject::Istio(r);
        let selector = selector_string(&gw.selector);
        let pods: Vec<&CoreObject> = cx.pods_selected(&gw.selector).collect();
        let Some(first) = pods.first() else {
            let m = format!("Referenced selector not found: {selector:?}");
            report.add(subject, msg::REFERENCED_RESOURCE_NOT_FOUND, selector_path(&gw.selector), m);
            continue;
        };

        // Ports of the Services that select the gateway pods: target ports, and ports.
        let mut target_ports = HashSet::new();
        let mut service_ports = HashSet::new();
        for pod in &pods {
            for o in cx.core.iter().filter(|o| o.namespace == pod.namespace) {
                let CoreSpec::Service { selector, ports, .. } = &o.spec else { continue };
                if !selects(selector, &pod.labels) {
                    continue;
                }
                for p in ports.iter().filter(|p| p.protocol == "TCP") {
                    match p.target_port.filter(|&t| t != 0) {
                        Some(t) => {
                            target_ports.insert(t);
                            service_ports.insert(p.port);
                        }
                        None => {
                            target_ports.insert(p.port);
                        }
                    }
                }
            }
        }
        for server in &gw.servers {
            let Some(port) = &server.port else { continue };
            if !target_ports.contains(&port.number) && !service_ports.contains(&port.number) {
                let m = format!(
                    "The gateway is listening on a target port (port {}) that is not defined in the Service associated \
                     with its workload instances (Pod selector {selector}). If you need to access the gateway port \
                     through the gateway Service, it will not be available.",
                    port.number
                );
                report.add(subject, msg::GATEWAY_PORT_NOT_DEFINED_ON_SERVICE, selector_path(&gw.selector), m);
            }
        }

        // Credentials live beside the gateway pods.
        let pods_ns = first.namespace.as_str();
        for (i, server) in gw.servers.iter().enumerate().filter(|_| credentials) {
            let Some(cn) = server.tls.as_ref().map(|t| t.credential_name.as_str()).filter(|c| !c.is_empty()) else {
                continue;
            };
            let path = FieldPath::root().key("spec").key("servers").index(i).key("tls").key("credentialName");
            match secrets.get(&gateway_name(pods_ns, cn)) {
                None => {
                    let m = format!("Referenced credentialName not found: {cn:?}");
                    report.add(subject, msg::REFERENCED_RESOURCE_NOT_FOUND, path, m);
                }
                Some(secret) if !valid_secret(secret) => {
                    let m = format!(
                        "The credential referenced by the Gateway {} in namespace {pods_ns} is invalid, which can cause \
                         the traffic not to work as expected.",
                        r.meta.name
                    );
                    report.add(subject, msg::INVALID_GATEWAY_CREDENTIAL, path, m);
                }
                Some(_) => {}
            }
        }
    }
    duplicate_certificates(cx, report);
    conflicting_gateways(cx, report);
}

/// A Secret holds a usable credential when it has `cert`/`key` (or `tls.crt`/`tls.key`)
/// with values, and the certificate is PEM that parses and is valid now.
fn valid_secret(secret: &CoreObject) -> bool {
    let CoreSpec::Secret { data, .. } = &secret.spec else { return false };
    let value = |k: &str| data.get(k).and_then(|v| v.as_deref()).filter(|v| !v.is_empty());
    let cert = match (value("cert"), value("key"), value("tls.crt"), value("tls.key")) {
        (Some(c), Some(_), _, _) | (_, _, Some(c), Some(_)) => c,
        _ => return false,
    };
    match x509_parser::pem::parse_x509_pem(cert) {
        Ok((_, pem)) => pem.parse_x509().is_ok_and(|c| c.validity().is_valid()),
        Err(_) => false,
    }
}

fn same_certificate(a: &ServerTlsSettings, b: &ServerTlsSettings) -> bool {
    match (a.credential_name.is_empty(), b.credential_name.is_empty()) {
        (false, false) => a.credential_name == b.credential_name,
        (true, true) => {
            !a.server_certificate.is_empty()
                && a.server_certificate == b.server_certificate
                && !a.private_key.is_empty()
                && a.private_key == b.private_key
        }
        _ => false,
    }
}

fn duplicate_certificates(cx: &Context<'_>, report: &mut Report) {
    for (r, gw) in &cx.gateways {
        for (o, other) in &cx.gateways {
            if std::ptr::eq(*r, *o) || !(gw.selector.is_empty() || selects(&gw.selector, &other.selector)) {
                continue;
            }
            let shared = gw
                .servers
                .iter()
                .filter_map(|s| s.tls.as_ref())
                .any(|a| other.servers.iter().filter_map(|s| s.tls.as_ref()).any(|b| same_certificate(a, b)));
            if shared {
                let m = format!(
                    "Duplicate certificate in multiple gateways [{}/{} {}/{}] may cause 404s if clients re-use HTTP2 \
                     connections.",
                    r.meta.namespace, r.meta.name, o.meta.namespace, o.meta.name
                );
                let path = FieldPath::root().key("metadata").key("name");
                report.add(Subject::Istio(r), msg::GATEWAY_DUPLICATE_CERTIFICATE, path, m);
            }
        }
    }
}

fn conflicting_gateways(cx: &Context<'_>, report: &mut Report) {
    let selects_same_pod = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
        cx.pods.iter().any(|(p, _)| selects(a, &p.labels) && selects(b, &p.labels))
    };
    let same_workloads = |a: &Gateway, b: &Gateway| {
        let (sa, sb) = (selector_string(&a.selector), selector_string(&b.selector));
        sa == sb || ((sa.contains(&sb) || sb.contains(&sa)) && selects_same_pod(&a.selector, &b.selector))
    };
    for (r, gw) in &cx.gateways {
        let selector = selector_string(&gw.selector);
        for (i, server) in gw.servers.iter().enumerate() {
            let number = server.port.as_ref().map_or(0, |p| p.number);
            let mut conflicts: Vec<String> = Vec::new();
            for (o, other) in &cx.gateways {
                if std::ptr::eq(*r, *o) || !same_workloads(gw, other) {
                    continue;
                }
                let clash = other
                    .servers
                    .iter()
                    .filter(|s| s.port.as_ref().map_or(0, |p| p.number) == number)
                    .any(|s| s.bind == server.bind && s.hosts.iter().any(|h| server.hosts.contains(h)));
                if clash {
                    conflicts.push(format!("{}/{}", o.meta.namespace, o.meta.name));
                }
            }
            if conflicts.is_empty() {
                continue;
            }
            conflicts.sort();
            let m = format!(
                "Conflict with gateways {} (workload selector {selector}, port {number}, hosts {}).",
                conflicts.join(","),
                server.hosts.join(",")
            );
            let path = FieldPath::root().key("spec").key("servers").index(i).key("port").key("number");
            report.add(Subject::Istio(r), msg::CONFLICTING_GATEWAYS, path, m);
        }
    }
}
