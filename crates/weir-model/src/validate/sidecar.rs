//! Sidecar rules (SC-01 .. SC-05).

use super::destination_rule::connection_pool;
use super::gateway::{namespaced_host, server_tls};
use super::virtual_service::destination;
use super::{Report, rules, workload_selector};
use crate::path::FieldPath;
use crate::types::{CaptureMode, OutboundMode, Port, ServerTlsMode, Sidecar};

pub(super) fn validate(sc: &Sidecar, ns: &str, spec: &FieldPath, rep: &mut Report) {
    if let Some(sel) = &sc.workload_selector {
        workload_selector(&sel.labels, &spec.key("workloadSelector").key("labels"), rep);
    }
    // SC-01
    if sc.egress.is_empty()
        && sc.ingress.is_empty()
        && sc.outbound_traffic_policy.is_none()
        && sc.inbound_connection_pool.is_none()
    {
        rep.error(
            spec,
            "a Sidecar must set at least one of egress, ingress, outboundTrafficPolicy or inboundConnectionPool",
        );
        return;
    }
    // SC-04
    let mut ports: Vec<u32> = Vec::new();
    for (i, l) in sc.ingress.iter().enumerate() {
        let lp = spec.key("ingress").index(i);
        let Some(port) = &l.port else {
            rep.error(&lp.key("port"), "an ingress listener needs a port");
            continue;
        };
        if port.target_port > 0 {
            rep.error(&lp.key("port").key("targetPort"), "targetPort has no effect on Sidecars");
        }
        port_name_protocol(port, &lp.key("port"), rep);
        rep.check(&lp.key("port").key("number"), rules::port(port.number));
        if !l.bind.is_empty() && !rules::is_ip(&l.bind) {
            rep.error(&lp.key("bind"), format!("bind {:?} must be an IP address", l.bind));
        }
        if ports.contains(&port.number) {
            rep.error(
                &lp.key("port").key("number"),
                format!("port {} is used by another IP-bound listener", port.number),
            );
        }
        ports.push(port.number);
        if !l.default_endpoint.is_empty() {
            default_endpoint(&l.default_endpoint, &lp.key("defaultEndpoint"), rep);
        }
        if let Some(tls) = &l.tls {
            let tp = lp.key("tls");
            if !tls.subject_alt_names.is_empty() {
                rep.error(&tp.key("subjectAltNames"), "subjectAltNames is not supported in sidecar ingress tls");
            }
            if tls.https_redirect {
                rep.error(&tp.key("httpsRedirect"), "httpsRedirect is not supported in sidecar ingress tls");
            }
            if !tls.credential_name.is_empty() || !tls.credential_names.is_empty() || !tls.tls_certificates.is_empty() {
                rep.error(
                    &tp,
                    "credentialName, credentialNames and tlsCertificates are not supported in sidecar ingress tls",
                );
            }
            if matches!(tls.effective_mode(), ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough) {
                rep.error(&tp.key("mode"), "ISTIO_MUTUAL and AUTO_PASSTHROUGH cannot be used in sidecar ingress tls");
            }
            if rules::proto_family(&port.protocol) != rules::Proto::Tls {
                rep.error(&tp, "tls settings need an HTTPS or TLS port");
            }
            server_tls(tls, &tp, rep);
        }
        if let Some(cp) = &l.connection_pool {
            connection_pool(cp, &lp.key("connectionPool"), rep);
            if cp.http.is_some() && rules::proto_family(&port.protocol) != rules::Proto::Http {
                rep.warn(
                    &lp.key("connectionPool").key("http"),
                    format!(
                        "HTTP pool settings on port {} ({:?}) have no effect: its protocol is not HTTP",
                        port.number, port.protocol
                    ),
                );
            }
        }
    }
    // SC-02, SC-03
    let mut ports: Vec<u32> = Vec::new();
    let mut sockets: Vec<&str> = Vec::new();
    let mut catch_all = false;
    for (i, l) in sc.egress.iter().enumerate() {
        let lp = spec.key("egress").index(i);
        match &l.port {
            None => {
                if catch_all {
                    rep.error(&lp, "only one egress listener may omit its port");
                    continue;
                }
                if i == sc.egress.len() - 1 {
                    catch_all = true;
                } else {
                    rep.error(&lp, "the egress listener without a port must be the last one");
                }
            }
            Some(port) => {
                let pp = lp.key("port");
                if port.target_port > 0 {
                    rep.error(&pp.key("targetPort"), "targetPort has no effect on Sidecars");
                }
                port_name_protocol(port, &pp, rep);
                if port.number == 0 {
                    match l.bind.strip_prefix("unix://") {
                        None => rep.error(&lp.key("bind"), "a listener with port 0 needs a unix:// bind address"),
                        Some(addr) => rep.check(&lp.key("bind"), rules::unix_address(addr)),
                    }
                    if !matches!(l.capture_mode, None | Some(CaptureMode::Default | CaptureMode::None)) {
                        rep.error(
                            &lp.key("captureMode"),
                            "captureMode must be DEFAULT or NONE for unix socket listeners",
                        );
                    }
                    if sockets.contains(&l.bind.as_str()) {
                        rep.error(&lp.key("bind"), format!("unix socket {:?} is used by another listener", l.bind));
                    }
                    sockets.push(&l.bind);
                } else {
                    rep.check(&pp.key("number"), rules::port(port.number));
                    if !l.bind.is_empty() && !rules::is_ip(&l.bind) {
                        rep.error(&lp.key("bind"), format!("bind {:?} must be an IP address", l.bind));
                    }
                    if ports.contains(&port.number) {
                        rep.error(
                            &pp.key("number"),
                            format!("port {} is used by another IP-bound listener", port.number),
                        );
                    }
                    ports.push(port.number);
                }
            }
        }
        egress_hosts(&l.hosts, ns, &lp.key("hosts"), rep);
    }
    // SC-05
    if let Some(otp) = &sc.outbound_traffic_policy {
        let op = spec.key("outboundTrafficPolicy");
        if otp.mode == Some(OutboundMode::AllowAnyDynamicDns) {
            rep.error(&op.key("mode"), "ALLOW_ANY_DYNAMIC_DNS is only valid in mesh config, not in a Sidecar");
        }
        if let Some(proxy) = &otp.egress_proxy {
            let ep = op.key("egressProxy");
            if otp.mode != Some(OutboundMode::AllowAny) {
                rep.error(&ep, "egressProxy may only be set with mode ALLOW_ANY");
            } else {
                rep.check(&ep.key("host"), rules::fqdn(&proxy.host));
                if proxy.port.is_none() {
                    rep.error(&ep.key("port"), "egressProxy needs a port");
                } else {
                    destination(proxy, &ep, rep);
                }
            }
            rep.push(
                crate::diag::Severity::Warning,
                crate::diag::codes::DEPRECATED,
                &ep,
                "outboundTrafficPolicy.egressProxy is deprecated",
            );
        }
    }
    if let Some(cp) = &sc.inbound_connection_pool {
        connection_pool(cp, &spec.key("inboundConnectionPool"), rep);
    }
}

fn port_name_protocol(port: &Port, p: &FieldPath, rep: &mut Report) {
    if !port.name.is_empty() {
        rep.check(&p.key("name"), rules::dns1123_label(&port.name, "port name"));
    }
    rep.check(&p.key("protocol"), rules::protocol(&port.protocol, true));
}

fn default_endpoint(ep: &str, p: &FieldPath, rep: &mut Report) {
    if let Some(addr) = ep.strip_prefix("unix://") {
        rep.check(p, rules::unix_address(addr));
        return;
    }
    let Some((host, port)) = ep.rsplit_once(':') else {
        rep.error(p, format!("defaultEndpoint {ep:?} must be 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port> or unix://<path>"));
        return;
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
        rep.error(p, format!("defaultEndpoint host {host:?} must be 127.0.0.1, 0.0.0.0, [::1], [::] or empty"));
    }
    match port.parse::<u32>() {
        Ok(n) => rep.check(p, rules::port(n)),
        Err(_) => rep.error(p, format!("defaultEndpoint port {port:?} is not a number")),
    }
}

fn egress_hosts(hosts: &[String], ns: &str, p: &FieldPath, rep: &mut Report) {
    if hosts.is_empty() {
        rep.error(p, "an egress listener needs at least one host");
        return;
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let hp = p.index(i);
        if let Some((hns, name)) = h.split_once('/') {
            let hns = if hns == "." { ns } else { hns };
            let same_ns: Vec<&String> = seen.iter().filter(|(n, _)| n == hns).map(|(_, s)| s).collect();
            let dup = if name != "*" { same_ns.iter().any(|s| *s == name || *s == "*") } else { !same_ns.is_empty() };
            if dup {
                rep.warn(&hp, format!("duplicated egress host {h:?}"));
            }
            seen.push((hns.to_string(), name.to_string()));
        }
        namespaced_host(h, false, &hp, rep);
    }
    let all = seen.iter().any(|(n, s)| n == "*" && s == "*");
    let namespaces: std::collections::BTreeSet<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    if all && namespaces.len() != 1 {
        rep.warn(p, "\"*/*\" already selects everything; other hosts add nothing");
    }
}
