//! VirtualService destinations (istioctl's DestinationHostAnalyzer and
//! DestinationRuleAnalyzer): every route and mirror host must name a visible service
//! (IST0101), with one of its ports when a port is given (IST0101 `host:port`) and a
//! port when the service has several (IST0112); every subset must be defined by a
//! DestinationRule for that host (IST0101 `host+subset`); and a gateway route without
//! a subset to a host another VirtualService splits by subset is flagged (IST0140).

use std::collections::HashSet;

use weir_model::FieldPath;
use weir_model::types::{Destination, VirtualService};

use super::context::{Context, resource_name};
use super::{Report, Subject, msg};

/// One destination of a VirtualService with where it is written.
struct Dest<'a> {
    /// `None` for a route entry without a destination: it names no host.
    destination: Option<&'a Destination>,
    /// The `destination` (or `mirror`) object's path.
    path: FieldPath,
    mirror: bool,
}

fn destinations<'a>(vs: &'a VirtualService) -> Vec<Dest<'a>> {
    let spec = FieldPath::root().key("spec");
    let mut dests: Vec<Dest<'a>> = Vec::new();
    let mut add = |kind: &str, i: usize, j: usize, destination: Option<&'a Destination>| {
        let path = spec.key(kind).index(i).key("route").index(j).key("destination");
        dests.push(Dest { destination, path, mirror: false });
    };
    // istioctl's order: TCP, TLS, then HTTP routes.
    for (i, r) in vs.tcp.iter().enumerate() {
        r.route.iter().enumerate().for_each(|(j, d)| add("tcp", i, j, d.destination.as_ref()));
    }
    for (i, r) in vs.tls.iter().enumerate() {
        r.route.iter().enumerate().for_each(|(j, d)| add("tls", i, j, d.destination.as_ref()));
    }
    for (i, r) in vs.http.iter().enumerate() {
        r.route.iter().enumerate().for_each(|(j, d)| add("http", i, j, d.destination.as_ref()));
    }
    for (i, r) in vs.http.iter().enumerate() {
        if let Some(m) = &r.mirror {
            dests.push(Dest { destination: Some(m), path: spec.key("http").index(i).key("mirror"), mirror: true });
        }
        for (j, m) in r.mirrors.iter().enumerate() {
            dests.push(Dest {
                destination: m.destination.as_ref(),
                path: spec.key("http").index(i).key("mirrors").index(j).key("destination"),
                mirror: true,
            });
        }
    }
    dests
}

/// Runs the checks; `hosts: false` leaves out those that need the registry (host,
/// port and IST0140), for inputs that define no services.
pub(crate) fn check(cx: &Context<'_>, report: &mut Report, hosts: bool) {
    // `((namespace, name), subset)` for every DestinationRule subset.
    let subsets: HashSet<((String, String), &str)> = cx
        .destination_rules
        .iter()
        .flat_map(|(r, dr)| dr.subsets.iter().map(|s| (resource_name(&r.meta.namespace, &dr.host), s.name.as_str())))
        .collect();
    // Hosts each VirtualService routes by subset, among its own hosts.
    let split_by_subset: Vec<(String, Vec<&str>)> = cx
        .virtual_services
        .iter()
        .filter_map(|(r, vs)| {
            let hosts: Vec<&str> = vs
                .http
                .iter()
                .flat_map(|h| h.route.iter().filter_map(|d| d.destination.as_ref()))
                .filter(|d| !d.subset.is_empty() && vs.hosts.contains(&d.host))
                .map(|d| d.host.as_str())
                .collect();
            (!hosts.is_empty()).then(|| (format!("{}/{}", r.meta.namespace, r.meta.name), hosts))
        })
        .collect();

    for (r, vs) in &cx.virtual_services {
        let ns = r.meta.namespace.as_str();
        let subject = Subject::Istio(r);
        let none = Destination::default();
        for d in destinations(vs) {
            let dest = d.destination.unwrap_or(&none);
            let host_path = d.path.key("host");
            match cx.services.lookup(ns, &vs.export_to, &dest.host).filter(|_| hosts) {
                None if !hosts => {}
                None => {
                    let what = if d.mirror { "mirror host" } else { "host" };
                    let m = format!("Referenced {what} not found: {:?}", dest.host);
                    report.add(subject, msg::REFERENCED_RESOURCE_NOT_FOUND, host_path.clone(), m);
                }
                Some(svc) => match &dest.port {
                    None if svc.ports.len() > 1 => {
                        let ports: Vec<String> = svc.ports.iter().map(u32::to_string).collect();
                        let m = format!(
                            "This VirtualService routes to a service {:?} that exposes multiple ports [{}]. \
                             Specifying a port in the destination is required to disambiguate.",
                            dest.host,
                            ports.join(" ")
                        );
                        report.add(subject, msg::DESTINATION_PORT_SELECTOR_REQUIRED, host_path.clone(), m);
                    }
                    Some(p) if !svc.ports.contains(&p.number) => {
                        let m = format!("Referenced host:port not found: \"{}:{}\"", dest.host, p.number);
                        report.add(subject, msg::REFERENCED_RESOURCE_NOT_FOUND, d.path.key("port").key("number"), m);
                    }
                    _ => {}
                },
            }
            if !dest.subset.is_empty() && !subsets.contains(&(resource_name(ns, &dest.host), dest.subset.as_str())) {
                let what = if d.mirror { "mirror+subset in destinationrule" } else { "host+subset in destinationrule" };
                let m = format!("Referenced {what} not found: \"{}+{}\"", dest.host, dest.subset);
                report.add(subject, msg::REFERENCED_RESOURCE_NOT_FOUND, d.path.key("subset"), m);
            }
        }

        // A gateway-bound route without a subset to a host that some VirtualService
        // splits by subset: the split does not apply to this gateway's requests.
        if vs.gateways.is_empty() || !hosts {
            continue;
        }
        let this = format!("{ns}/{}", r.meta.name);
        for (i, h) in vs.http.iter().enumerate() {
            for (j, d) in h.route.iter().enumerate() {
                let Some(dest) = d.destination.as_ref().filter(|d| d.subset.is_empty()) else { continue };
                for (other, hosts) in &split_by_subset {
                    if hosts.contains(&dest.host.as_str()) {
                        let m = format!(
                            "Subset in virtual service {other} has no effect on ingress gateway {this} requests"
                        );
                        let path = FieldPath::root().key("spec").key("http").index(i).key("route").index(j);
                        report.add(
                            subject,
                            msg::INGRESS_ROUTE_RULES_NOT_AFFECTED,
                            path.key("destination").key("host"),
                            m,
                        );
                    }
                }
            }
        }
    }
}
