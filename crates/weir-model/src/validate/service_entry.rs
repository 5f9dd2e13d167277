//! ServiceEntry (SE-01 .. SE-11) and WorkloadEntry (WE-01 .. WE-03) rules.

use std::collections::BTreeMap;

use super::{Report, export_to, rules, workload_selector};
use crate::path::FieldPath;
use crate::types::{Location, Resolution, ServiceEntry, WorkloadEntry};

/// The label that turns automatic address allocation off.
const AUTOALLOCATE_LABEL: &str = "networking.istio.io/enable-autoallocate-ip";

/// The label that binds a service to a waypoint (`none` opts out).
const USE_WAYPOINT_LABEL: &str = "istio.io/use-waypoint";

pub(super) fn validate(
    se: &ServiceEntry,
    ns: &str,
    labels: &BTreeMap<String, String>,
    spec: &FieldPath,
    rep: &mut Report,
) {
    let resolution = se.effective_resolution();
    // SE-04
    if se.workload_selector.is_some() && !se.endpoints.is_empty() {
        rep.error(spec, "only one of workloadSelector and endpoints may be set");
    }
    if let Some(sel) = &se.workload_selector {
        workload_selector(&sel.labels, &spec.key("workloadSelector").key("labels"), rep);
    }
    // SE-01
    if se.hosts.is_empty() {
        rep.error(&spec.key("hosts"), "a service entry needs at least one host");
    }
    for (i, h) in se.hosts.iter().enumerate() {
        let hp = spec.key("hosts").index(i);
        if h == "*" {
            rep.error(&hp, "the host \"*\" is not allowed in a service entry");
            continue;
        }
        rep.check(&hp, rules::wildcard_domain(h));
        if resolution != Resolution::DynamicDns
            && let Err(m) = rules::partial_wildcard(h)
        {
            rep.warn(&hp, m);
        }
    }
    // SE-02
    let mut cidr = false;
    for (i, a) in se.addresses.iter().enumerate() {
        cidr |= a.contains('/');
        rep.check(&spec.key("addresses").index(i), rules::ip_or_subnet(a));
    }
    if cidr && !matches!(resolution, Resolution::None | Resolution::Static) {
        rep.error(&spec.key("addresses"), "CIDR addresses are allowed only with resolution NONE or STATIC");
    }
    // SE-03, SE-10
    let autoallocate =
        resolution != Resolution::None && labels.get(AUTOALLOCATE_LABEL).map(String::as_str) != Some("false");
    let mut names: Vec<&str> = Vec::new();
    let mut numbers: Vec<u32> = Vec::new();
    for (i, port) in se.ports.iter().enumerate() {
        let pp = spec.key("ports").index(i);
        if names.contains(&port.name.as_str()) {
            rep.error(&pp.key("name"), format!("port name {:?} is already defined", port.name));
        }
        names.push(&port.name);
        if numbers.contains(&port.number) {
            rep.error(&pp.key("number"), format!("port {} is already defined", port.number));
        }
        numbers.push(port.number);
        if port.target_port != 0 {
            rep.check(&pp.key("targetPort"), rules::port(port.target_port));
        }
        if se.addresses.is_empty()
            && !autoallocate
            && (port.protocol.is_empty() || port.protocol.eq_ignore_ascii_case("TCP"))
        {
            rep.warn(
                &pp.key("protocol"),
                "addresses are required for ports serving TCP (or unset) protocol when address auto-allocation is off: traffic is matched by port alone",
            );
        }
        rep.check(&pp.key("name"), rules::dns1123_label(&port.name, "port name"));
        rep.check(&pp.key("protocol"), rules::protocol(&port.protocol, true));
        rep.check(&pp.key("number"), rules::port(port.number));
    }
    let port_names: Vec<&str> = se.ports.iter().map(|p| p.name.as_str()).collect();
    match resolution {
        // SE-05
        Resolution::None => {
            if !se.endpoints.is_empty() {
                rep.error(&spec.key("endpoints"), "resolution NONE takes no endpoints");
            }
            if se.workload_selector.is_some() {
                rep.warn(&spec.key("workloadSelector"), "workloadSelector has no effect with resolution NONE");
            }
        }
        // SE-06
        Resolution::Static => {
            let mut unix = false;
            for (i, ep) in se.endpoints.iter().enumerate() {
                unix |= ep.address.starts_with("unix://");
                validate_workload_entry(ep, Some(&port_names), false, &spec.key("endpoints").index(i), rep);
            }
            if unix && se.ports.len() != 1 {
                rep.error(&spec.key("ports"), "exactly 1 service port is required with unix socket endpoints");
            }
        }
        // SE-07
        Resolution::Dns | Resolution::DnsRoundRobin => {
            if se.endpoints.is_empty() {
                for (i, h) in se.hosts.iter().enumerate() {
                    if rules::fqdn(h).is_err() {
                        rep.error(
                            &spec.key("hosts").index(i),
                            format!("host {h:?} must be a fully qualified name (no wildcard) when resolution is DNS and no endpoints are given"),
                        );
                    }
                }
            }
            if resolution == Resolution::DnsRoundRobin && se.endpoints.len() > 1 {
                rep.error(&spec.key("endpoints"), "resolution DNS_ROUND_ROBIN allows at most one endpoint");
            }
            for (i, ep) in se.endpoints.iter().enumerate() {
                let ep_path = spec.key("endpoints").index(i);
                if ep.address.starts_with("unix://") {
                    rep.error(
                        &ep_path.key("address"),
                        format!(
                            "endpoint address {:?} must be an IP address or an FQDN with resolution DNS",
                            ep.address
                        ),
                    );
                }
                validate_workload_entry(ep, Some(&port_names), true, &ep_path, rep);
            }
            if !se.addresses.is_empty() && se.hosts.len() > 1 && se.ports.iter().any(|p| is_tcp_based(&p.protocol)) {
                rep.warn(spec, "a service entry should not have several hosts together with addresses and a TCP port");
            }
        }
        // SE-08
        Resolution::DynamicDns => {
            for (i, h) in se.hosts.iter().enumerate() {
                if !h.starts_with('*') {
                    rep.error(
                        &spec.key("hosts").index(i),
                        format!("host {h:?} must be a wildcard with resolution DYNAMIC_DNS"),
                    );
                }
            }
            if !se.addresses.is_empty() {
                rep.error(&spec.key("addresses"), "resolution DYNAMIC_DNS takes no addresses");
            }
            if !se.endpoints.is_empty() {
                rep.error(&spec.key("endpoints"), "resolution DYNAMIC_DNS takes no endpoints");
            }
            let waypoint = labels.get(USE_WAYPOINT_LABEL).is_some_and(|w| !w.is_empty() && w != "none");
            if se.effective_location() == Location::MeshInternal && waypoint {
                rep.error(
                    &spec.key("location"),
                    format!("resolution DYNAMIC_DNS needs location MESH_EXTERNAL when a waypoint is used ({USE_WAYPOINT_LABEL} is set)"),
                );
            }
            for (i, port) in se.ports.iter().enumerate() {
                let ok = ["HTTP", "TLS", "GRPC", "HTTP2"].iter().any(|p| p.eq_ignore_ascii_case(&port.protocol));
                if !ok {
                    rep.error(
                        &spec.key("ports").index(i).key("protocol"),
                        format!(
                            "protocol {:?} is not supported with DYNAMIC_DNS; use HTTP, TLS, GRPC or HTTP2",
                            port.protocol
                        ),
                    );
                }
            }
        }
    }
    // SE-09
    if resolution != Resolution::None
        && se.hosts.len() > 1
        && let Some(i) = se.ports.iter().position(|p| rules::proto_family(&p.protocol) == rules::Proto::Other)
    {
        rep.error(
            &spec.key("ports").index(i).key("protocol"),
            "several hosts need HTTP or TLS ports so they can be told apart (or resolution NONE)",
        );
    }
    export_to(&se.export_to, ns, true, false, &spec.key("exportTo"), rep);
}

fn is_tcp_based(p: &str) -> bool {
    ["TCP", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL"].iter().any(|k| k.eq_ignore_ascii_case(p))
}

/// A WorkloadEntry, alone (`ports = None`) or as a ServiceEntry endpoint.
pub(super) fn validate_workload_entry(
    we: &WorkloadEntry,
    ports: Option<&[&str]>,
    allow_fqdn: bool,
    p: &FieldPath,
    rep: &mut Report,
) {
    let addr = we.address.as_str();
    // WE-01
    if addr.is_empty() {
        if we.network.is_empty() {
            rep.error(&p.key("address"), "address is required (unless network is set)");
            return;
        }
        rep.warn(&p.key("address"), format!("address is unset with network {:?}", we.network));
    }
    // WE-02
    if let Some(path) = addr.strip_prefix("unix://") {
        rep.check(&p.key("address"), rules::unix_address(path));
        if !we.ports.is_empty() {
            rep.error(&p.key("ports"), format!("unix endpoint {addr:?} must not list ports"));
        }
    } else if !addr.is_empty() && !rules::is_ip(addr) {
        if !allow_fqdn {
            rep.error(&p.key("address"), format!("endpoint address {addr:?} is not a valid IP address"));
        } else if rules::fqdn(addr).is_err() {
            rep.error(&p.key("address"), format!("endpoint address {addr:?} is not a valid FQDN or IP address"));
        }
    }
    // WE-03
    for (name, port) in &we.ports {
        let pp = p.key("ports").key(name);
        if let Some(ports) = ports
            && !ports.contains(&name.as_str())
        {
            rep.error_at_key(&pp, format!("endpoint port {name:?} is not a port name of the service entry"));
        }
        if let Err(m) = rules::dns1123_label(name, "port name") {
            rep.error_at_key(&pp, m);
        }
        rep.check(&pp, rules::port(*port));
    }
    rep.labels(&p.key("labels"), &we.labels);
}
