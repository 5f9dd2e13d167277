//! DestinationRule rules (DR-01 .. DR-12).

use std::collections::BTreeMap;

use super::{Report, export_to, rules, workload_selector};
use crate::path::FieldPath;
use crate::types::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRule, H2UpgradePolicy, LoadBalancerSettings,
    LocalityLbSetting, OutlierDetection, TrafficPolicy,
};

pub(super) fn validate(dr: &DestinationRule, ns: &str, spec: &FieldPath, rep: &mut Report) {
    // DR-01
    rep.check(&spec.key("host"), rules::wildcard_domain(&dr.host).map_err(|m| format!("host: {m}")));
    // DR-03
    if let Some(sel) = &dr.workload_selector {
        workload_selector(&sel.match_labels, &spec.key("workloadSelector").key("matchLabels"), rep);
    }
    if let Some(tp) = &dr.traffic_policy {
        traffic_policy(tp, ns, &spec.key("trafficPolicy"), rep);
    }
    // DR-02
    let mut names: Vec<&str> = Vec::new();
    for (i, s) in dr.subsets.iter().enumerate() {
        let sp = spec.key("subsets").index(i);
        if s.name.is_empty() {
            rep.error(&sp.key("name"), "subset name is required");
        } else {
            if names.contains(&s.name.as_str()) {
                rep.error(&sp.key("name"), format!("duplicate subset name {:?}", s.name));
            }
            rep.check(&sp.key("name"), rules::dns1123_label(&s.name, "subset name"));
        }
        names.push(&s.name);
        rep.labels(&sp.key("labels"), &s.labels);
        if let Some(tp) = &s.traffic_policy {
            traffic_policy(tp, ns, &sp.key("trafficPolicy"), rep);
        }
    }
    export_to(&dr.export_to, ns, false, dr.workload_selector.is_some(), &spec.key("exportTo"), rep);
}

/// DR-04 .. DR-12 for one traffic policy (top-level or subset).
fn traffic_policy(tp: &TrafficPolicy, ns: &str, p: &FieldPath, rep: &mut Report) {
    let empty = tp.load_balancer.is_none()
        && tp.connection_pool.is_none()
        && tp.outlier_detection.is_none()
        && tp.tls.is_none()
        && tp.port_level_settings.is_empty()
        && tp.tunnel.is_none()
        && tp.proxy_protocol.is_none()
        && tp.retry_budget.is_none();
    if empty {
        rep.error(p, "a traffic policy must set at least one field");
        return;
    }
    if tp.tunnel.is_some() && tp.proxy_protocol.is_some() {
        rep.error(p, "tunnel and proxyProtocol must not be set together");
        return;
    }
    if let Some(od) = &tp.outlier_detection {
        outlier(od, &p.key("outlierDetection"), rep);
    }
    if let Some(cp) = &tp.connection_pool {
        connection_pool(cp, &p.key("connectionPool"), rep);
    }
    if let Some(lb) = &tp.load_balancer {
        load_balancer(lb, tp.outlier_detection.as_ref(), &p.key("loadBalancer"), rep);
    }
    if let Some(tls) = &tp.tls {
        client_tls(tls, ns, &p.key("tls"), rep);
    }
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let pp = p.key("portLevelSettings").index(i);
        match pl.port {
            None => rep.error(&pp.key("port"), "a port traffic policy needs a port"),
            Some(port) => rep.check(&pp.key("port").key("number"), rules::port(port.number)),
        }
        if pl.load_balancer.is_none()
            && pl.connection_pool.is_none()
            && pl.outlier_detection.is_none()
            && pl.tls.is_none()
        {
            rep.error(
                &pp,
                "a port traffic policy must set at least one of loadBalancer, connectionPool, outlierDetection or tls",
            );
            continue;
        }
        if let Some(od) = &pl.outlier_detection {
            outlier(od, &pp.key("outlierDetection"), rep);
        }
        if let Some(cp) = &pl.connection_pool {
            connection_pool(cp, &pp.key("connectionPool"), rep);
        }
        if let Some(lb) = &pl.load_balancer {
            load_balancer(lb, pl.outlier_detection.as_ref(), &pp.key("loadBalancer"), rep);
        }
        if let Some(tls) = &pl.tls {
            client_tls(tls, ns, &pp.key("tls"), rep);
        }
    }
    // DR-12
    if let Some(t) = &tp.tunnel {
        let tp = p.key("tunnel");
        if !t.protocol.is_empty() && t.protocol != "CONNECT" && t.protocol != "POST" {
            rep.error(&tp.key("protocol"), format!("tunnel protocol {:?} must be \"CONNECT\" or \"POST\"", t.protocol));
        }
        if rules::fqdn(&t.target_host).is_err() && !rules::is_ip(&t.target_host) {
            rep.error(
                &tp.key("targetHost"),
                format!("tunnel target host {:?} must be an FQDN or an IP address", t.target_host),
            );
        }
        rep.check(&tp.key("targetPort"), rules::port(t.target_port).map_err(|m| format!("tunnel target port: {m}")));
    }
    if let Some(rb) = &tp.retry_budget {
        if let Some(pct) = rb.percent
            && !(0.0..=100.0).contains(&pct.value)
        {
            rep.error(
                &p.key("retryBudget").key("percent"),
                format!("retry budget percent {} must be in the range 0..100", pct.value),
            );
        }
        if let Some(d) = &rb.budget_interval {
            rep.check(&p.key("retryBudget").key("budgetInterval"), rules::duration(d));
        }
    }
}

/// DR-07.
fn outlier(od: &OutlierDetection, p: &FieldPath, rep: &mut Report) {
    if let Some(d) = &od.base_ejection_time {
        rep.check(&p.key("baseEjectionTime"), rules::duration(d));
    }
    if od.consecutive_errors.is_some_and(|n| n != 0) {
        rep.warn(
            &p.key("consecutiveErrors"),
            "consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors instead",
        );
    }
    if !od.split_external_local_origin_errors && od.consecutive_local_origin_failures.is_some_and(|n| n > 0) {
        rep.error(
            &p.key("consecutiveLocalOriginFailures"),
            "consecutiveLocalOriginFailures is set but splitExternalLocalOriginErrors is false",
        );
    }
    if let Some(d) = &od.interval {
        rep.check(&p.key("interval"), rules::duration(d));
    }
    rep.check(&p.key("maxEjectionPercent"), rules::int_percent(od.max_ejection_percent));
    rep.check(&p.key("minHealthPercent"), rules::int_percent(od.min_health_percent));
    for (i, code) in od.outlier_detection_http_error_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            rep.error(
                &p.key("outlierDetectionHttpErrorCodes").index(i),
                format!("status code {code} must be in the range 100..599"),
            );
        }
    }
}

/// DR-06.
pub(super) fn connection_pool(cp: &ConnectionPoolSettings, p: &FieldPath, rep: &mut Report) {
    if cp.http.is_none() && cp.tcp.is_none() {
        rep.error(p, "a connection pool must set tcp or http");
        return;
    }
    if let Some(h) = &cp.http {
        let hp = p.key("http");
        for (field, v) in [
            ("http1MaxPendingRequests", h.http1_max_pending_requests),
            ("http2MaxRequests", h.http2_max_requests),
            ("maxRequestsPerConnection", h.max_requests_per_connection),
            ("maxRetries", h.max_retries),
            ("maxConcurrentStreams", h.max_concurrent_streams),
        ] {
            if v < 0 {
                rep.error(&hp.key(field), format!("{field} {v} must not be negative"));
            }
        }
        if let Some(d) = &h.idle_timeout {
            rep.check(&hp.key("idleTimeout"), rules::duration(d));
        }
        if h.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) && h.use_client_protocol {
            rep.error(
                &hp.key("useClientProtocol"),
                "useClientProtocol must not be true when h2UpgradePolicy is UPGRADE",
            );
        }
        if let Some(ka) = &h.http2_keep_alive {
            let kp = hp.key("http2KeepAlive");
            for (field, d) in [("interval", &ka.interval), ("timeout", &ka.timeout)] {
                match d {
                    None => rep.error(&kp.key(field), format!("http2KeepAlive needs `{field}`")),
                    Some(d) => rep.check(&kp.key(field), rules::duration(d)),
                }
            }
        }
    }
    if let Some(t) = &cp.tcp {
        let tp = p.key("tcp");
        if t.max_connections < 0 {
            rep.error(&tp.key("maxConnections"), format!("maxConnections {} must not be negative", t.max_connections));
        }
        for (field, d) in
            [("connectTimeout", &t.connect_timeout), ("maxConnectionDuration", &t.max_connection_duration)]
        {
            if let Some(d) = d {
                rep.check(&tp.key(field), rules::duration(d));
            }
        }
        if let Some(d) = &t.idle_timeout
            && d.as_nanos() != 0
        {
            rep.check(&tp.key("idleTimeout"), rules::duration(d));
        }
        if let Some(ka) = &t.tcp_keepalive {
            let kp = tp.key("tcpKeepalive");
            for (field, d) in [("time", &ka.time), ("interval", &ka.interval)] {
                if let Some(d) = d {
                    rep.check(&kp.key(field), rules::duration(d));
                }
            }
        }
    }
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut i = 2u64;
    while i * i <= n {
        if n.is_multiple_of(i) {
            return false;
        }
        i += 1;
    }
    true
}

/// DR-08 .. DR-10.
fn load_balancer(lb: &LoadBalancerSettings, od: Option<&OutlierDetection>, p: &FieldPath, rep: &mut Report) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        rep.error(p, "only one of simple and consistentHash may be set");
    }
    if let Some(ch) = &lb.consistent_hash {
        let cp = p.key("consistentHash");
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip.is_some(),
            ch.http_query_parameter_name.is_some(),
        ];
        if keys.iter().filter(|b| **b).count() > 1 {
            rep.error(&cp, "only one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName may be set");
        }
        if let Some(c) = &ch.http_cookie {
            let kp = cp.key("httpCookie");
            if c.name.is_empty() {
                rep.error(&kp.key("name"), "httpCookie needs a name");
            }
            let mut seen: Vec<&str> = Vec::new();
            for (i, a) in c.attributes.iter().enumerate() {
                if a.name.is_empty() {
                    rep.error(&kp.key("attributes").index(i).key("name"), "cookie attribute needs a name");
                } else if seen.contains(&a.name.as_str()) {
                    rep.error(
                        &kp.key("attributes").index(i).key("name"),
                        format!("duplicate cookie attribute {:?}", a.name),
                    );
                }
                seen.push(&a.name);
            }
        }
        if ch.minimum_ring_size.is_some_and(|n| n != 0) {
            rep.warn(&cp.key("minimumRingSize"), "minimumRingSize is deprecated; use ringHash.minimumRingSize instead");
            if ch.ring_hash.is_some() || ch.maglev.is_some() {
                rep.error(&cp.key("minimumRingSize"), "only one of minimumRingSize and ringHash/maglev may be set");
            }
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            rep.error(&cp, "only one of ringHash and maglev may be set");
        }
        if let Some(m) = &ch.maglev {
            let tp = cp.key("maglev").key("tableSize");
            if m.table_size == 0 {
                rep.error(&tp, "maglev needs a tableSize");
            } else if m.table_size >= 5_000_011 {
                rep.error(&tp, format!("maglev tableSize {} must be less than 5000011", m.table_size));
            } else if !is_prime(m.table_size) {
                rep.error(
                    &tp,
                    format!("maglev tableSize {} must be a prime number (65537 is the usual choice)", m.table_size),
                );
            }
        }
    }
    if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
        rep.error(p, "only one of localityLbSetting and zoneAwareLbSetting may be set");
    }
    if let Some(l) = &lb.locality_lb_setting {
        locality(l, od, &p.key("localityLbSetting"), rep);
    }
    if let Some(w) = &lb.warmup {
        let wp = p.key("warmup");
        match &w.duration {
            None => rep.error(&wp.key("duration"), "warmup needs a duration"),
            Some(d) => rep.check(&wp.key("duration"), rules::duration(d)),
        }
        if let Some(m) = w.minimum_percent
            && !(0.0..=100.0).contains(&m)
        {
            rep.error(&wp.key("minimumPercent"), format!("minimumPercent {m} must be in the range 0..100"));
        }
        if let Some(a) = w.aggression
            && a <= 0.0
        {
            rep.error(&wp.key("aggression"), format!("aggression {a} must be greater than 0"));
        }
    }
    if let Some(d) = &lb.warmup_duration_secs {
        rep.check(&p.key("warmupDurationSecs"), rules::duration(d));
    }
}

/// DR-09.
fn locality(l: &LocalityLbSetting, od: Option<&OutlierDetection>, p: &FieldPath, rep: &mut Report) {
    if !l.distribute.is_empty() && !l.failover.is_empty() {
        rep.error(p, "distribute and failover cannot be set together");
        return;
    }
    const TOPOLOGY: [&str; 3] =
        ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"];
    if !l.failover.is_empty()
        && let Some((i, label)) =
            l.failover_priority.iter().enumerate().find(|(_, lbl)| TOPOLOGY.contains(&lbl.as_str()))
    {
        rep.error(
            &p.key("failoverPriority").index(i),
            format!("failover cannot be combined with the topology label {label:?} in failoverPriority"),
        );
        return;
    }
    let mut sources = Vec::new();
    for (i, d) in l.distribute.iter().enumerate() {
        let dp = p.key("distribute").index(i);
        sources.push(d.from.clone());
        let mut total: u64 = 0;
        for (loc, w) in &d.to {
            if *w == 0 || *w > 100 {
                rep.error(&dp.key("to").key(loc), format!("locality weight {w} must be in the range 1..100"));
                return;
            }
            total += *w as u64;
        }
        if total != 100 {
            rep.error(&dp.key("to"), format!("locality weights total {total}; they must total 100"));
            return;
        }
        if let Err(m) = localities(d.to.keys().map(String::as_str)) {
            rep.error(&dp.key("to"), m);
        }
    }
    if let Err(m) = localities(sources.iter().map(String::as_str)) {
        rep.error(&p.key("distribute"), m);
    }
    for (i, f) in l.failover.iter().enumerate() {
        let fp = p.key("failover").index(i);
        if f.from == f.to {
            rep.error(&fp, format!("failover from {:?} to the same region", f.from));
        }
        if f.from.contains('/') || f.to.contains('/') {
            rep.error(&fp, "failover must name regions only (no '/')");
        }
        if f.from.contains('*') || f.to.contains('*') {
            rep.error(&fp, "failover regions must not contain the wildcard '*'");
        }
    }
    if (!l.failover.is_empty() || !l.failover_priority.is_empty()) && od.is_none() {
        rep.warn(p, "failover needs an outlierDetection policy to take effect");
    }
}

/// Localities: `region[/zone[/subzone]]`, no empty part, at most one trailing `*`, no
/// overlaps.
fn localities<'a>(locs: impl Iterator<Item = &'a str>) -> Result<(), String> {
    type Zones = BTreeMap<String, BTreeMap<String, bool>>;
    let mut map: BTreeMap<String, Zones> = BTreeMap::new();
    let overlap = |l: &str| format!("locality {l:?} overlaps one given before");
    for loc in locs {
        let stars = loc.matches('*').count();
        if stars > 1 || (stars == 1 && !loc.ends_with('*')) {
            return Err(format!("locality {loc:?}: the wildcard '*' may appear once, at the end"));
        }
        if map.contains_key("*") {
            return Err(overlap(loc));
        }
        let parts: Vec<&str> = loc.splitn(3, '/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("locality {loc:?} must not have an empty region, zone or subzone"));
        }
        let star = |m: &mut BTreeMap<String, bool>| {
            m.insert("*".into(), true);
        };
        match parts.as_slice() {
            [region] => {
                if map.contains_key(*region) {
                    return Err(overlap(loc));
                }
                let mut zones = Zones::new();
                star(zones.entry("*".into()).or_default());
                map.insert(region.to_string(), zones);
            }
            [region, zone] => {
                let zones = map.entry(region.to_string()).or_default();
                if zones.contains_key("*") || zones.contains_key(*zone) {
                    return Err(overlap(loc));
                }
                star(zones.entry(zone.to_string()).or_default());
            }
            [region, zone, sub] => {
                let zones = map.entry(region.to_string()).or_default();
                if zones.contains_key("*") {
                    return Err(overlap(loc));
                }
                let subs = zones.entry(zone.to_string()).or_default();
                if subs.contains_key("*") || subs.contains_key(*sub) {
                    return Err(overlap(loc));
                }
                subs.insert(sub.to_string(), true);
            }
            _ => {}
        }
    }
    Ok(())
}

/// DR-11.
fn client_tls(tls: &ClientTlsSettings, ns: &str, p: &FieldPath, rep: &mut Report) {
    let mode = tls.mode.unwrap_or(ClientTlsMode::Disable);
    if tls.insecure_skip_verify == Some(true) {
        if mode == ClientTlsMode::Simple
            && (!tls.ca_certificates.is_empty() || !tls.credential_name.is_empty() || !tls.subject_alt_names.is_empty())
        {
            rep.error(
                p,
                "caCertificates, credentialName and subjectAltNames cannot be set when insecureSkipVerify is true",
            );
        }
        if mode == ClientTlsMode::Mutual && (!tls.ca_certificates.is_empty() || !tls.subject_alt_names.is_empty()) {
            rep.error(p, "caCertificates and subjectAltNames cannot be set when insecureSkipVerify is true");
        }
    }
    if let Some(rest) = tls.credential_name.strip_prefix("configmap://") {
        let target_ns = rest.split_once('/').map(|(n, _)| n).unwrap_or(ns);
        if target_ns != ns {
            rep.error(
                &p.key("credentialName"),
                format!("credentialName {:?} must be in the DestinationRule's namespace {ns:?}", tls.credential_name),
            );
        }
    }
    let needs_certs = matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual);
    if needs_certs && !tls.credential_name.is_empty() {
        if !tls.client_certificate.is_empty()
            || !tls.private_key.is_empty()
            || !tls.ca_certificates.is_empty()
            || !tls.ca_crl.is_empty()
        {
            rep.error(
                p,
                "clientCertificate, privateKey, caCertificates and caCrl cannot be set when credentialName is set",
            );
        }
        return;
    }
    if mode == ClientTlsMode::Mutual {
        if tls.client_certificate.is_empty() {
            rep.error(&p.key("clientCertificate"), "MUTUAL TLS needs a clientCertificate (or a credentialName)");
        }
        if tls.private_key.is_empty() {
            rep.error(&p.key("privateKey"), "MUTUAL TLS needs a privateKey (or a credentialName)");
        }
    }
}
