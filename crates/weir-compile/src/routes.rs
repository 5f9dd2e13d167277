//! VirtualService HTTP routes -> table routes for one place (a gateway or the mesh):
//! match entries filtered by gateways, source labels and port, one route per entry,
//! actions compiled, delegates merged in, nothing emitted after a catch-all.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use regex::Regex;
use weir_model::types::{
    Destination, HttpMatchRequest, HttpRoute, MatchForm, RedirectPortSelection, StringMatch, VirtualService,
};
use weir_table::{
    Action, DirectResponse, Forward, HeaderKey, HeaderMatch, HeaderOps, HttpMatch, MirrorPolicy, PathMatch,
    PathRewrite, QueryMatch, Redirect, RedirectPath, RedirectPort, Route, Share, StrMatch, WeightedCluster,
};

use crate::clusters::{Clusters, PortContext};
use crate::hosts::{self, GatewayRef};
use crate::store::{Item, Store, selects, visible};
use crate::{Instance, delegate, header_ops, route_policy};
use weir_model::FieldPath;

/// Where routes are being built.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The gateway, or the mesh.
    pub(crate) target: GatewayRef,
    /// Gateway server port (match `port` is decided now); `None` on the mesh listener
    /// (checked per request).
    pub(crate) server_port: Option<u16>,
}

impl Place {
    fn port_context(&self) -> PortContext {
        match self.server_port {
            Some(p) => PortContext::Listener(p),
            None => PortContext::AnyPort,
        }
    }
}

pub(crate) use crate::notes::Notes;
use crate::notes::{Note, Target};

/// The gateways a VirtualService is bound to (`mesh` when it lists none).
pub(crate) fn vs_gateways(vs: &Item<VirtualService>) -> Vec<GatewayRef> {
    if vs.spec.gateways.is_empty() {
        return vec![GatewayRef::Mesh];
    }
    vs.spec.gateways.iter().map(|g| hosts::gateway_ref(g, &vs.meta.namespace)).collect()
}

/// True when some route of `vs` can be installed at `target`.
pub(crate) fn binds_to(vs: &Item<VirtualService>, target: &GatewayRef) -> bool {
    let ns = &vs.meta.namespace;
    vs_gateways(vs).contains(target)
        || vs
            .spec
            .http
            .iter()
            .flat_map(|r| &r.matches)
            .any(|m| m.gateways.iter().any(|g| hosts::gateway_ref(g, ns) == *target))
        || vs
            .spec
            .tcp
            .iter()
            .flat_map(|r| &r.matches)
            .any(|m| m.gateways.iter().any(|g| hosts::gateway_ref(g, ns) == *target))
        || vs
            .spec
            .tls
            .iter()
            .flat_map(|r| &r.matches)
            .any(|m| m.gateways.iter().any(|g| hosts::gateway_ref(g, ns) == *target))
}

/// Builds the routes of `vs` for `place`.
pub(crate) fn build(
    vs: &Item<VirtualService>,
    place: &Place,
    store: &Store,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
) -> Vec<Route> {
    let ns = vs.meta.namespace.as_str();
    let vs_gws = vs_gateways(vs);
    let target = Target::of(weir_model::Kind::VirtualService, vs);
    let mut out = Vec::new();
    for (i, route) in vs.spec.http.iter().enumerate() {
        let at = FieldPath::root().key("spec").key("http").index(i);
        clusters.about(target.clone(), at.clone());
        let routes = if let Some(d) = &route.delegate {
            let dns = if d.namespace.is_empty() { ns } else { d.namespace.as_str() };
            let Some(delegate) = store
                .virtual_services
                .iter()
                .find(|v| v.meta.name == d.name && v.meta.namespace == dns && v.spec.hosts.is_empty())
            else {
                let m = format!("delegate {dns}/{} not found", d.name);
                notes.push(Note::unresolved(Some(target.clone()), at.key("delegate"), m));
                continue;
            };
            if !visible(&delegate.spec.export_to, dns, ns) {
                let m = format!("delegate {dns}/{} is not exported to {ns}", d.name);
                notes.push(Note::unresolved(Some(target.clone()), at.key("delegate"), m));
                continue;
            }
            let mut merged = Vec::new();
            for droute in &delegate.spec.http {
                let Some(r) = delegate::merge_delegate(route, droute) else { continue };
                merged.push(r);
            }
            // Delegate destinations resolve in the delegate's namespace.
            merged
                .into_iter()
                .flat_map(|r| entries(&r, dns, &vs_gws, ns, place, instance, clusters, (&target, &at), notes))
                .collect()
        } else {
            entries(route, ns, &vs_gws, ns, place, instance, clusters, (&target, &at), notes)
        };
        let origin: Box<str> = vs.id().into();
        for mut r in routes {
            r.origin = origin.clone();
            let catch_all = r.matcher.is_catch_all();
            out.push(r);
            if catch_all {
                return out;
            }
        }
    }
    out
}

/// One table route per match entry of `route` that applies at `place`.
#[allow(clippy::too_many_arguments)]
fn entries(
    route: &HttpRoute,
    dest_ns: &str,
    vs_gws: &[GatewayRef],
    vs_ns: &str,
    place: &Place,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    (target, at): (&Target, &FieldPath),
    notes: &mut Notes,
) -> Vec<Route> {
    let empty = HttpMatchRequest::default();
    let matches: Vec<&HttpMatchRequest> =
        if route.matches.is_empty() { vec![&empty] } else { route.matches.iter().collect() };
    let mut out = Vec::new();
    for m in matches {
        let gws: Vec<GatewayRef> = if m.gateways.is_empty() {
            vs_gws.to_vec()
        } else {
            m.gateways.iter().map(|g| hosts::gateway_ref(g, vs_ns)).collect()
        };
        if !gws.contains(&place.target) {
            continue;
        }
        if !m.source_labels.is_empty() && !selects(&m.source_labels, &instance.labels) {
            continue;
        }
        if !m.source_namespace.is_empty() && m.source_namespace != instance.namespace {
            continue;
        }
        if let (Some(server), true) = (place.server_port, m.port != 0)
            && u32::from(server) != m.port
        {
            continue;
        }
        let matcher = match http_match(m, place) {
            Ok(mm) => mm,
            Err(e) => {
                notes.push(Note::not_served(Some(target.clone()), at.key("match"), e));
                continue;
            }
        };
        let name: Box<str> = match (route.name.is_empty(), m.name.is_empty()) {
            (_, true) => route.name.as_str().into(),
            (true, false) => m.name.as_str().into(),
            (false, false) => format!("{}.{}", route.name, m.name).into(),
        };
        let action = action(route, &matcher, dest_ns, place, clusters);
        out.push(Route { name, origin: "".into(), matcher, action: Arc::new(action) });
    }
    out
}

fn regex(pattern: &str) -> Result<Regex, String> {
    weir_model::re2::compile(pattern, true).map_err(|e| format!("regex {pattern:?} does not compile: {e}"))
}

pub(crate) fn str_match(sm: &StringMatch) -> Result<StrMatch, String> {
    Ok(match sm.form() {
        None => StrMatch::Present,
        Some(MatchForm::Exact(e)) => StrMatch::Exact(e.into()),
        Some(MatchForm::Prefix(p)) => StrMatch::Prefix(p.into()),
        Some(MatchForm::Regex("*")) => StrMatch::Present,
        Some(MatchForm::Regex(r)) => StrMatch::Regex(Box::new(regex(r)?)),
    })
}

fn http_match(m: &HttpMatchRequest, place: &Place) -> Result<HttpMatch, String> {
    let mut out = HttpMatch { name: m.name.as_str().into(), ..Default::default() };
    if let Some(u) = &m.uri {
        let matcher = match (str_match(u)?, m.ignore_uri_case) {
            (StrMatch::Exact(e), true) => StrMatch::Exact(e.to_ascii_lowercase().into()),
            (StrMatch::Prefix(p), true) => StrMatch::Prefix(p.to_ascii_lowercase().into()),
            (other, _) => other,
        };
        out.path = Some(PathMatch { matcher, ignore_case: m.ignore_uri_case });
    }
    out.method = m.method.as_ref().map(str_match).transpose()?;
    out.scheme = m.scheme.as_ref().map(str_match).transpose()?;
    out.authority = m.authority.as_ref().map(str_match).transpose()?;
    for (invert, map) in [(false, &m.headers), (true, &m.without_headers)] {
        for (name, sm) in map {
            let lower = name.to_ascii_lowercase();
            let key = match lower.as_str() {
                // Istio ignores these keys in `headers`.
                "uri" | "scheme" | "method" | "authority" => continue,
                ":method" => HeaderKey::Method,
                ":authority" => HeaderKey::Authority,
                ":path" => HeaderKey::Path,
                ":scheme" => HeaderKey::Scheme,
                n if n.starts_with("@request.auth.claims") => {
                    return Err(format!(
                        "JWT claim matches ({name}) need request authentication, which weir does not do yet; the match entry is skipped"
                    ));
                }
                n => {
                    HeaderKey::Name(HeaderName::from_bytes(n.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?)
                }
            };
            let matcher = match sm {
                Some(sm) => str_match(sm)?,
                None => StrMatch::Present,
            };
            out.headers.push(HeaderMatch { key, name: lower.as_str().into(), matcher, invert });
        }
    }
    for (name, sm) in &m.query_params {
        let matcher = match sm {
            Some(sm) => str_match(sm)?,
            None => StrMatch::Present,
        };
        out.query.push(QueryMatch { name: name.as_str().into(), matcher });
    }
    if place.server_port.is_none() && m.port != 0 {
        out.port = u16::try_from(m.port).ok();
    }
    out.headers.shrink_to_fit();
    out.query.shrink_to_fit();
    Ok(out)
}

fn destination(
    d: &Destination,
    dest_ns: &str,
    place: &Place,
    clusters: &mut Clusters<'_>,
    domain: &str,
) -> (weir_table::ClusterRef, Box<str>) {
    let host = hosts::expand(&d.host, dest_ns, domain);
    let port = d.port.and_then(|p| u16::try_from(p.number).ok());
    let (r, name) = clusters.resolve(&host, port, &d.subset, place.port_context());
    (r, name.into())
}

fn action(route: &HttpRoute, matcher: &HttpMatch, dest_ns: &str, place: &Place, clusters: &mut Clusters<'_>) -> Action {
    let domain = clusters.domain().to_string();
    let matched_prefix = matcher.path.as_ref().and_then(PathMatch::prefix);
    // Route-level header edits apply whatever the action (Istio sets them on the route).
    let (headers, mut authority) = header_ops::header_ops(route.headers.as_deref());
    if let Some(rd) = &route.redirect {
        let path = if !rd.uri.is_empty() {
            RedirectPath::Full(rd.uri.as_str().into())
        } else if let Some(p) = &rd.prefix_rewrite {
            RedirectPath::Prefix { matched: matched_prefix.unwrap_or("/").into(), replacement: p.as_str().into() }
        } else {
            RedirectPath::Keep
        };
        let port = match (rd.port, rd.derive_port) {
            (p, _) if p != 0 => RedirectPort::Explicit(p as u16),
            (_, Some(RedirectPortSelection::FromProtocolDefault)) => RedirectPort::ProtocolDefault,
            (_, Some(RedirectPortSelection::FromRequestPort)) => RedirectPort::RequestPort,
            _ => RedirectPort::Keep,
        };
        let code = if rd.redirect_code == 0 { 301 } else { rd.redirect_code as u16 };
        return Action::Redirect(Redirect {
            scheme: (!rd.scheme.is_empty()).then(|| rd.scheme.as_str().into()),
            authority: (!rd.authority.is_empty()).then(|| rd.authority.as_str().into()),
            port,
            path,
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY),
            headers,
        });
    }
    if let Some(dr) = &route.direct_response {
        let body = match &dr.body {
            Some(b) => match (&b.string, &b.bytes) {
                (Some(s), _) => Bytes::from(s.clone()),
                (None, Some(b64)) => {
                    Bytes::from(base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default())
                }
                _ => Bytes::new(),
            },
            None => Bytes::new(),
        };
        return Action::Direct(DirectResponse {
            status: StatusCode::from_u16(dr.status as u16).unwrap_or(StatusCode::OK),
            body,
            headers,
        });
    }
    if let Some(rw) = &route.rewrite
        && !rw.authority.is_empty()
    {
        authority = HeaderValue::from_str(&rw.authority).ok();
    }
    let rewrite = route.rewrite.as_ref().and_then(|rw| {
        if let Some(rr) = &rw.uri_regex_rewrite {
            let pattern = weir_model::re2::compile(&rr.pattern, false).ok()?;
            return Some(PathRewrite::Regex { pattern, replacement: envoy_substitution(&rr.rewrite).into() });
        }
        if rw.uri.is_empty() {
            return None;
        }
        Some(match matcher.path.as_ref() {
            Some(p) => match p.prefix() {
                Some(prefix) => PathRewrite::Prefix {
                    matched: prefix.into(),
                    replacement: rw.uri.as_str().into(),
                    ignore_case: p.ignore_case,
                },
                None => PathRewrite::Full(rw.uri.as_str().into()),
            },
            None => {
                PathRewrite::Prefix { matched: "/".into(), replacement: rw.uri.as_str().into(), ignore_case: false }
            }
        })
    });
    let several = route.route.len() > 1;
    let mut destinations = Vec::new();
    let mut cumulative = 0u32;
    for d in &route.route {
        let Some(dest) = &d.destination else { continue };
        let weight = if several { d.weight.max(0) as u32 } else { 1 };
        if weight == 0 {
            continue;
        }
        cumulative += weight;
        let (cluster, name) = destination(dest, dest_ns, place, clusters, &domain);
        let (dh, dauth) = header_ops::header_ops(d.headers.as_ref());
        destinations.push(WeightedCluster { cluster, name, weight, cumulative, headers: dh, authority: dauth });
    }
    if destinations.is_empty() {
        // Validation rejects this; answer 503 NC rather than panic.
        destinations.push(WeightedCluster {
            cluster: weir_table::ClusterRef::Missing,
            name: "".into(),
            weight: 1,
            cumulative: 1,
            headers: HeaderOps::default(),
            authority: None,
        });
        cumulative = 1;
    }
    // Istio's mirror policies: `mirror` with `mirrorPercentage` (else the deprecated
    // `mirrorPercent`, else 100%), or each of `mirrors` with its `percentage` (absent =
    // 100%); an explicit 0 mirrors nothing.
    let mut mirrors = Vec::new();
    if let (Some(m), Some(pct)) = (&route.mirror, route.effective_mirror_percentage()) {
        let (cluster, name) = destination(m, dest_ns, place, clusters, &domain);
        mirrors.push(MirrorPolicy { cluster, name, share: Share::percent(pct) });
    }
    for m in &route.mirrors {
        if let Some(d) = &m.destination {
            let (cluster, name) = destination(d, dest_ns, place, clusters, &domain);
            mirrors.push(MirrorPolicy {
                cluster,
                name,
                share: Share::percent(m.percentage.map_or(100.0, |p| p.value)),
            });
        }
    }
    mirrors.retain(|m| !m.share.is_none());
    Action::Forward(Forward {
        destinations: destinations.into(),
        total_weight: cumulative,
        rewrite: rewrite.map(Box::new),
        authority,
        headers,
        timeout: route.timeout.map(|d| d.to_std()).filter(|d| !d.is_zero()),
        retry: route_policy::retry_policy(route),
        fault: route_policy::fault(route).map(Box::new),
        mirrors: mirrors.into(),
        cors: route.cors_policy.as_deref().map(route_policy::cors).map(Box::new),
    })
}

/// `\1` (RE2 style) to `${1}` (the regex crate's replacement syntax); `$` escaped.
fn envoy_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions() {
        assert_eq!(envoy_substitution("/v2/\\1/\\2"), "/v2/${1}/${2}");
        assert_eq!(envoy_substitution("$x"), "$$x");
    }
}
