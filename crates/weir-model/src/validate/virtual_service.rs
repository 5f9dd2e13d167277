//! VirtualService rules (VS-01 .. VS-42).

use super::http_policy::{authority_rewrite, cors, fault, headers, redirect, retries, rewrite};
use super::{Report, export_to, reachability, rules};
use crate::path::FieldPath;
use crate::types::{
    Destination, HttpMatchRequest, HttpRoute, HttpRouteDestination, L4MatchAttributes, RouteDestination, StringMatch,
    TlsMatchAttributes, VirtualService,
};

const MESH: &str = "mesh";

pub(super) fn validate(vs: &VirtualService, ns: &str, spec: &FieldPath, rep: &mut Report) {
    let delegate = vs.hosts.is_empty();
    // VS-01
    if delegate {
        if !vs.gateways.is_empty() {
            rep.error(&spec.key("gateways"), "a delegate VirtualService (one without hosts) must not set gateways");
        }
        if !vs.tls.is_empty() {
            rep.error(&spec.key("tls"), "a delegate VirtualService (one without hosts) must not have tls routes");
        }
        if !vs.tcp.is_empty() {
            rep.error(&spec.key("tcp"), "a delegate VirtualService (one without hosts) must not have tcp routes");
        }
    }
    // Where the VS applies, as Istio decides it: bound to gateways only when it lists
    // gateways and "mesh" is not among them; otherwise it also (or only) binds the mesh.
    let applies_to_gateway = !vs.gateways.is_empty() && !vs.gateways.iter().any(|g| g == MESH);
    let applies_to_mesh = !applies_to_gateway;
    gateway_names(&vs.gateways, &spec.key("gateways"), rep);

    // VS-02, VS-03
    let mut all_hosts_valid = true;
    for (i, host) in vs.hosts.iter().enumerate() {
        let p = spec.key("hosts").index(i);
        let sni_form = applies_to_gateway && host.starts_with("outbound_.");
        match rules::wildcard_domain(host) {
            Err(_) if rules::is_ip(host) || sni_form => {}
            Err(m) => {
                rep.error(&p, m);
                all_hosts_valid = false;
            }
            Ok(()) if applies_to_mesh && host == "*" => {
                rep.error(&p, "the wildcard host \"*\" is not allowed for a VirtualService bound to the mesh (no gateways, or \"mesh\" among them)");
                all_hosts_valid = false;
            }
            Ok(()) => {}
        }
    }
    // VS-04: one finding per offending host (against the first earlier host it
    // overlaps), not one per pair: a list repeating one host 2,000 times is 1,999
    // findings, not two million.
    if all_hosts_valid {
        for j in 1..vs.hosts.len() {
            if let Some(i) = (0..j).find(|&i| crate::host::overlaps(&vs.hosts[i], &vs.hosts[j])) {
                rep.error(
                    &spec.key("hosts").index(j),
                    format!("duplicate hosts in virtual service: {:?} overlaps {:?}", vs.hosts[i], vs.hosts[j]),
                );
            }
        }
    }
    // VS-05
    if vs.http.is_empty() && vs.tcp.is_empty() && vs.tls.is_empty() {
        rep.error(spec, "a VirtualService must have at least one of http, tcp or tls routes");
    }
    // VS-07
    if !applies_to_gateway {
        for (i, route) in vs.http.iter().enumerate() {
            for (j, m) in route.matches.iter().enumerate() {
                let mp = spec.key("http").index(i).key("match").index(j);
                for (field, map) in [("headers", &m.headers), ("withoutHeaders", &m.without_headers)] {
                    for key in map.keys().filter(|k| rules::is_jwt_claim_key(k)) {
                        rep.error_at_key(
                            &mp.key(field).key(key),
                            format!("JWT claim based routing ({key:?}) is only supported on gateways; this VirtualService is bound to the mesh"),
                        );
                    }
                }
            }
        }
    }
    for (i, route) in vs.http.iter().enumerate() {
        http_route(route, delegate, &spec.key("http").index(i), rep);
    }
    for (i, route) in vs.tls.iter().enumerate() {
        let p = spec.key("tls").index(i);
        if route.matches.is_empty() {
            rep.error(&p.key("match"), "a TLS route must have at least one match condition");
        }
        for (j, m) in route.matches.iter().enumerate() {
            tls_match(m, vs, &p.key("match").index(j), rep);
        }
        if route.route.is_empty() {
            rep.error(&p.key("route"), "a TLS route must have a route");
        }
        route_destinations(&route.route, &p.key("route"), rep);
    }
    for (i, route) in vs.tcp.iter().enumerate() {
        let p = spec.key("tcp").index(i);
        for (j, m) in route.matches.iter().enumerate() {
            l4_match(m, &p.key("match").index(j), rep);
        }
        if route.route.is_empty() {
            rep.error(&p.key("route"), "a TCP route must have a route");
        }
        route_destinations(&route.route, &p.key("route"), rep);
    }
    export_to(&vs.export_to, ns, false, false, &spec.key("exportTo"), rep);
    reachability::unreachable_http(&vs.http, &spec.key("http"), rep);
    reachability::unreachable_l4(vs.tcp.iter().map(|r| r.matches.as_slice()), &spec.key("tcp"), rep);
    reachability::unreachable_l4(vs.tls.iter().map(|r| r.matches.as_slice()), &spec.key("tls"), rep);
}

/// VS-06: `ns/name` with both parts DNS labels, or a bare name that is an FQDN
/// (a dotted bare name is the legacy `name.namespace` form: a warning).
pub(super) fn gateway_names(names: &[String], path: &FieldPath, rep: &mut Report) {
    for (i, g) in names.iter().enumerate() {
        let p = path.index(i);
        match g.split_once('/') {
            None => {
                if let Some((name, rest)) = g.split_once('.') {
                    let ns = rest.split('.').next().unwrap_or("");
                    rep.warn(&p, format!("gateway {g:?} uses the legacy name.namespace form; prefer \"{ns}/{name}\""));
                }
                rep.check(&p, rules::fqdn(g).map_err(|m| format!("gateway name {g:?} is invalid: {m}")));
            }
            Some((ns, name)) => {
                if ns.is_empty() || name.is_empty() {
                    rep.error(&p, format!("gateway {g:?}: namespace and name must not be empty"));
                    continue;
                }
                if !rules::is_dns1123_label(ns) {
                    rep.error(&p, format!("gateway {g:?}: namespace {ns:?} is not a DNS-1123 label"));
                }
                if !rules::is_dns1123_label(name) {
                    rep.error(&p, format!("gateway {g:?}: name {name:?} is not a DNS-1123 label"));
                }
            }
        }
    }
}

fn http_route(r: &HttpRoute, delegate_vs: bool, p: &FieldPath, rep: &mut Report) {
    // VS-10, VS-11 (conflicts)
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        rep.error(&p.key("mirrors"), "an HTTP route cannot have both mirror and mirrors");
    }
    if r.delegate.is_some() {
        if delegate_vs {
            rep.error(
                &p.key("delegate"),
                "a delegate VirtualService cannot delegate again (only one level of delegation)",
            );
        }
        if !r.route.is_empty() {
            rep.error(&p.key("delegate"), "an HTTP route cannot have both route and delegate");
        }
        if r.redirect.is_some() {
            rep.error(&p.key("delegate"), "an HTTP route cannot have both redirect and delegate");
        }
    }
    if r.redirect.is_some() {
        let rp = p.key("redirect");
        if !r.route.is_empty() {
            rep.error(&rp, "an HTTP route cannot have both route and redirect");
        }
        if r.fault.is_some() {
            rep.error(&rp, "an HTTP route cannot have both fault and redirect");
        }
        if r.rewrite.is_some() {
            rep.error(&rp, "an HTTP route cannot have both rewrite and redirect");
        }
        if r.direct_response.is_some() {
            rep.error(&rp, "an HTTP route cannot have both redirect and directResponse");
        }
    } else if r.route.is_empty() && r.delegate.is_none() && r.direct_response.is_none() {
        rep.error(p, "an HTTP route needs one of route, redirect, directResponse or delegate");
    }
    if r.direct_response.is_some() {
        let dp = p.key("directResponse");
        if !r.route.is_empty() {
            rep.error(&dp, "an HTTP route cannot have both route and directResponse");
        }
        if r.fault.is_some() {
            rep.error(&dp, "an HTTP route cannot have both fault and directResponse");
        }
        if r.rewrite.is_some() {
            rep.error(&dp, "an HTTP route cannot have both rewrite and directResponse");
        }
    }

    // VS-22
    for (i, m) in r.matches.iter().enumerate() {
        match_request(m, &p.key("match").index(i), rep);
    }
    // VS-21
    if let Some(h) = &r.headers {
        headers(h, &p.key("headers"), rep);
    }
    // VS-23
    if let Some(c) = &r.cors_policy {
        cors(c, &p.key("corsPolicy"), rep);
    }
    // VS-16
    if let Some(f) = &r.fault {
        fault(f, &p.key("fault"), rep);
    }
    // VS-11
    if let Some(pct) = r.mirror_percent {
        if pct > 100 {
            rep.error(&p.key("mirrorPercent"), format!("mirrorPercent {pct} must be at most 100"));
        }
        rep.warn(&p.key("mirrorPercent"), "\"mirrorPercent\" is deprecated; use \"mirrorPercentage\" instead");
    }
    if let Some(pct) = r.mirror_percentage
        && !(0.0..=100.0).contains(&pct.value)
    {
        rep.error(
            &p.key("mirrorPercentage").key("value"),
            format!("mirrorPercentage {} must be in the range 0..100", pct.value),
        );
    }
    if let Some(m) = &r.mirror {
        destination(m, &p.key("mirror"), rep);
    }
    for (i, m) in r.mirrors.iter().enumerate() {
        let mp = p.key("mirrors").index(i);
        match &m.destination {
            None => rep.error(&mp.key("destination"), "missing required field `destination`"),
            Some(d) => destination(d, &mp.key("destination"), rep),
        }
        if let Some(pct) = m.percentage
            && !(0.0..=100.0).contains(&pct.value)
        {
            rep.error(
                &mp.key("percentage").key("value"),
                format!("mirror percentage {} must be in the range 0..100", pct.value),
            );
        }
    }
    // VS-17
    if let Some(rd) = &r.redirect {
        redirect(rd, r, &p.key("redirect"), rep);
    }
    // VS-18
    if let Some(dr) = &r.direct_response {
        let dp = p.key("directResponse");
        if let Some(body) = &dr.body {
            let size = match (&body.string, &body.bytes) {
                (Some(s), _) => Ok(s.len()),
                (None, Some(b)) => rules::base64_len(b),
                _ => Ok(0),
            };
            match size {
                Err(m) => rep.error(&dp.key("body").key("bytes"), m),
                Ok(n) if n > 1 << 20 => {
                    rep.error(&dp.key("body"), format!("direct response body is {n} bytes; the limit is 1 MiB"))
                }
                Ok(n) if n > 100 << 10 => rep.warn(
                    &dp.key("body"),
                    format!(
                        "direct response body is {n} bytes; bodies over 100 KiB may hurt control-plane performance"
                    ),
                ),
                Ok(_) => {}
            }
            if body.string.is_some() && body.bytes.is_some() {
                rep.error(&dp.key("body"), "only one of body.string and body.bytes may be set");
            }
        }
        if !(200..=600).contains(&dr.status) {
            rep.error(&dp.key("status"), format!("HTTP status {} must be in the range 200..600", dr.status));
        }
    }
    // VS-15
    if let Some(rt) = &r.retries {
        retries(rt, &p.key("retries"), rep);
    }
    // VS-19, VS-20
    if let Some(rw) = &r.rewrite {
        rewrite(rw, &p.key("rewrite"), rep);
    }
    authority_rewrite(r, p, rep);
    // VS-12, VS-13
    http_route_destinations(&r.route, &p.key("route"), rep);
    // VS-14
    if let Some(t) = &r.timeout {
        rep.check(
            &p.key("timeout"),
            rules::duration(t).map_err(|m| format!("timeout: {m} (omit the field to disable the timeout)")),
        );
    }
}

fn string_match(sm: &StringMatch, allow_empty_prefix: bool, p: &FieldPath, rep: &mut Report) {
    if sm.set_count() > 1 {
        rep.error(p, "only one of exact, prefix and regex may be set");
    }
    if let Some(prefix) = &sm.prefix
        && prefix.is_empty()
        && !allow_empty_prefix
    {
        rep.error(&p.key("prefix"), "prefix match must not be empty");
    }
    if let Some(re) = &sm.regex {
        rep.check(&p.key("regex"), rules::regex(re));
    }
}

fn match_request(m: &HttpMatchRequest, p: &FieldPath, rep: &mut Report) {
    for (name, sm) in &m.headers {
        let hp = p.key("headers").key(name);
        if let Err(e) = rules::match_header_name(name) {
            rep.error_at_key(&hp, e);
        }
        match sm {
            None => rep.error(&hp, format!("header match {name:?} cannot be null (use {{}} to match presence)")),
            Some(sm) => string_match(sm, false, &hp, rep),
        }
    }
    for (name, sm) in &m.without_headers {
        let hp = p.key("withoutHeaders").key(name);
        if let Err(e) = rules::match_header_name(name) {
            rep.error_at_key(&hp, e);
        }
        if let Some(sm) = sm
            && sm.regex.as_deref() != Some("*")
        {
            string_match(sm, false, &hp, rep);
        }
    }
    if let Some(u) = &m.uri {
        string_match(u, true, &p.key("uri"), rep);
    }
    for (field, v) in [("scheme", &m.scheme), ("method", &m.method), ("authority", &m.authority)] {
        if let Some(sm) = v {
            string_match(sm, false, &p.key(field), rep);
        }
    }
    for (name, sm) in &m.query_params {
        let qp = p.key("queryParams").key(name);
        match sm {
            None => {
                rep.error(&qp, format!("query parameter match {name:?} cannot be null (use {{}} to match presence)"))
            }
            Some(sm) => string_match(sm, false, &qp, rep),
        }
    }
    if m.port != 0 {
        rep.check(&p.key("port"), rules::port(m.port));
    }
    rep.labels(&p.key("sourceLabels"), &m.source_labels);
    gateway_names(&m.gateways, &p.key("gateways"), rep);
    if !m.source_namespace.is_empty() {
        rep.check(&p.key("sourceNamespace"), rules::dns1123_label(&m.source_namespace, "sourceNamespace"));
    }
}

/// VS-13.
pub(super) fn destination(d: &Destination, p: &FieldPath, rep: &mut Report) {
    if d.host == "*" {
        rep.error(&p.key("host"), "destination host \"*\" is not allowed");
    } else {
        rep.check(&p.key("host"), rules::wildcard_domain(&d.host));
    }
    if !d.subset.is_empty() {
        rep.check(&p.key("subset"), rules::dns1123_label(&d.subset, "subset name"));
    }
    if let Some(port) = d.port {
        rep.check(&p.key("port").key("number"), rules::port(port.number));
    }
}

/// VS-12 for HTTP destinations (with their header operations, VS-21).
fn http_route_destinations(list: &[HttpRouteDestination], p: &FieldPath, rep: &mut Report) {
    let mut total: i64 = 0;
    for (i, d) in list.iter().enumerate() {
        let dp = p.index(i);
        match &d.destination {
            None => rep.error(&dp.key("destination"), "missing required field `destination`"),
            Some(dest) => destination(dest, &dp.key("destination"), rep),
        }
        if let Some(h) = &d.headers {
            headers(h, &dp.key("headers"), rep);
        }
        if d.weight < 0 {
            rep.error(&dp.key("weight"), format!("weight {} must not be negative", d.weight));
        }
        total += d.weight as i64;
    }
    if list.len() > 1 && total == 0 {
        rep.error(p, "with several destinations the weights must not all be 0 (total destination weight = 0)");
    }
}

/// VS-12 for TCP/TLS destinations.
fn route_destinations(list: &[RouteDestination], p: &FieldPath, rep: &mut Report) {
    let mut total: i64 = 0;
    for (i, d) in list.iter().enumerate() {
        let dp = p.index(i);
        match &d.destination {
            None => rep.error(&dp.key("destination"), "missing required field `destination`"),
            Some(dest) => destination(dest, &dp.key("destination"), rep),
        }
        if d.weight < 0 {
            rep.error(&dp.key("weight"), format!("weight {} must not be negative", d.weight));
        }
        total += d.weight as i64;
    }
    if list.len() > 1 && total == 0 {
        rep.error(p, "with several destinations the weights must not all be 0 (total destination weight = 0)");
    }
}

/// VS-30.
fn tls_match(m: &TlsMatchAttributes, vs: &VirtualService, p: &FieldPath, rep: &mut Report) {
    if m.sni_hosts.is_empty() {
        rep.error(&p.key("sniHosts"), "a TLS match must have at least one SNI host");
    }
    // On a VirtualService bound only to gateways, the gateway's `outbound_.<port>_.
    // <subset>_.<host>` SNI form is allowed, as in `hosts` (VS-30).
    let gateway_only = !vs.gateways.is_empty() && !vs.gateways.iter().any(|g| g == MESH);
    for (i, sni) in m.sni_hosts.iter().enumerate() {
        let sp = p.key("sniHosts").index(i);
        let sni_form = gateway_only && sni.starts_with("outbound_.");
        if let Err(e) = rules::wildcard_domain(sni)
            && !sni_form
        {
            if rules::is_ip(sni) {
                rep.warn(&sp, format!("SNI host {sni:?} is an IP address, which goes against the SNI spec; most clients do not send it"));
            } else {
                rep.error(&sp, e);
            }
            continue;
        }
        if !vs.hosts.iter().any(|h| crate::host::subset_of(sni, h)) {
            rep.error(
                &sp,
                format!("SNI host {sni:?} is not covered by any of the VirtualService hosts [{}]", vs.hosts.join(", ")),
            );
        }
    }
    for (i, s) in m.destination_subnets.iter().enumerate() {
        rep.check(&p.key("destinationSubnets").index(i), rules::ip_or_subnet(s));
    }
    if m.port != 0 {
        rep.check(&p.key("port"), rules::port(m.port));
    }
    rep.labels(&p.key("sourceLabels"), &m.source_labels);
    gateway_names(&m.gateways, &p.key("gateways"), rep);
}

/// VS-31.
fn l4_match(m: &L4MatchAttributes, p: &FieldPath, rep: &mut Report) {
    for (i, s) in m.destination_subnets.iter().enumerate() {
        rep.check(&p.key("destinationSubnets").index(i), rules::ip_or_subnet(s));
    }
    if m.port != 0 {
        rep.check(&p.key("port"), rules::port(m.port));
    }
    rep.labels(&p.key("sourceLabels"), &m.source_labels);
    gateway_names(&m.gateways, &p.key("gateways"), rep);
}
