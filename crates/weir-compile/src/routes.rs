//! VirtualService HTTP routes -> table routes for one place (a gateway or the mesh):
//! match entries filtered by gateways, source labels and port, one route per entry,
//! actions compiled, delegates merged in, nothing emitted after a catch-all.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use regex::{Regex, RegexBuilder};
use weir_model::types::{
    CorsPolicy, Destination, HeaderOperations, Headers, HttpMatchRequest, HttpRoute, MatchForm, RedirectPortSelection,
    StringMatch, UnmatchedPreflights, VirtualService,
};
use weir_table::{
    Action, DirectResponse, FaultAbort, FaultPolicy, Forward, HeaderKey, HeaderMatch, HeaderOps, HeaderTemplate,
    HttpMatch, MirrorPolicy, PathMatch, PathRewrite, QueryMatch, Redirect, RedirectPath, RedirectPort, RetryPolicy,
    Route, StrMatch, TemplatePart, WeightedCluster,
};

use crate::Instance;
use crate::clusters::{Clusters, PortContext};
use crate::hosts::{self, GatewayRef};
use crate::store::{Item, Store, selects, visible};

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

/// A problem found while compiling routes (reported as a warning).
pub(crate) type Notes = Vec<String>;

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
    let mut out = Vec::new();
    for route in &vs.spec.http {
        let routes = if let Some(d) = &route.delegate {
            let dns = if d.namespace.is_empty() { ns } else { d.namespace.as_str() };
            let Some(delegate) = store
                .virtual_services
                .iter()
                .find(|v| v.meta.name == d.name && v.meta.namespace == dns && v.spec.hosts.is_empty())
            else {
                notes.push(format!("VirtualService {}/{}: delegate {dns}/{} not found", ns, vs.meta.name, d.name));
                continue;
            };
            if !visible(&delegate.spec.export_to, dns, ns) {
                notes.push(format!(
                    "VirtualService {}/{}: delegate {dns}/{} is not exported to {ns}",
                    ns, vs.meta.name, d.name
                ));
                continue;
            }
            let mut merged = Vec::new();
            for droute in &delegate.spec.http {
                let Some(r) = merge_delegate(route, droute) else { continue };
                merged.push(r);
            }
            // Delegate destinations resolve in the delegate's namespace.
            merged.into_iter().flat_map(|r| entries(&r, dns, &vs_gws, ns, place, instance, clusters, notes)).collect()
        } else {
            entries(route, ns, &vs_gws, ns, place, instance, clusters, notes)
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
                notes.push(e);
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
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("regex {pattern:?} does not compile: {e}"))
}

fn str_match(sm: &StringMatch) -> Result<StrMatch, String> {
    Ok(match sm.form() {
        None => StrMatch::Present,
        Some(MatchForm::Exact(e)) => StrMatch::Exact(e.into()),
        Some(MatchForm::Prefix(p)) => StrMatch::Prefix(p.into()),
        Some(MatchForm::Regex("*")) => StrMatch::Present,
        Some(MatchForm::Regex(r)) => StrMatch::Regex(regex(r)?),
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
    Ok(out)
}

/// Envoy header value templates: `%%` is a literal `%`, `%NAME%` and `%NAME(arg)%`
/// are variables.
pub(crate) fn template(value: &str) -> HeaderTemplate {
    if !value.contains('%')
        && let Ok(v) = HeaderValue::from_str(value)
    {
        return HeaderTemplate::Literal(v);
    }
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            text.push('%');
            rest = r;
            continue;
        }
        let Some(end) = rest.find('%') else {
            text.push('%');
            continue;
        };
        let var = &rest[..end];
        rest = &rest[end + 1..];
        let part = match var {
            "DOWNSTREAM_REMOTE_ADDRESS" => TemplatePart::DownstreamRemoteAddress,
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => TemplatePart::DownstreamRemoteAddressWithoutPort,
            "DOWNSTREAM_LOCAL_ADDRESS" => TemplatePart::DownstreamLocalAddress,
            "HOSTNAME" => TemplatePart::Hostname,
            "PROTOCOL" => TemplatePart::Protocol,
            "START_TIME" => TemplatePart::StartTime,
            v => match v.strip_prefix("REQ(").and_then(|x| x.strip_suffix(')')) {
                Some(h) => match HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) {
                    Ok(n) => TemplatePart::Req(n),
                    Err(_) => TemplatePart::Unknown(format!("%{var}%").into()),
                },
                None => TemplatePart::Unknown(format!("%{var}%").into()),
            },
        };
        if !text.is_empty() {
            parts.push(TemplatePart::Text(std::mem::take(&mut text).into()));
        }
        parts.push(part);
    }
    text.push_str(rest);
    if parts.is_empty()
        && let Ok(v) = HeaderValue::from_str(&text)
    {
        return HeaderTemplate::Literal(v);
    }
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text.into()));
    }
    HeaderTemplate::Parts(parts.into())
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case("host") || name == ":authority"
}

/// Header edits, with `host`/`:authority` set or add turned into an authority rewrite.
fn header_ops(h: Option<&Headers>) -> (HeaderOps, Option<HeaderValue>) {
    let mut ops = HeaderOps::default();
    let mut authority = None;
    let Some(h) = h else { return (ops, None) };
    let pairs = |m: &std::collections::BTreeMap<String, String>, authority: &mut Option<HeaderValue>, request: bool| {
        let mut v = Vec::new();
        for (k, val) in m {
            if request && is_authority(k) {
                if authority.is_none() {
                    *authority = HeaderValue::from_str(val).ok();
                }
                continue;
            }
            if let Ok(n) = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()) {
                v.push((n, template(val)));
            }
        }
        v
    };
    let names = |l: &[String]| -> Vec<HeaderName> {
        l.iter().filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok()).collect()
    };
    let empty = HeaderOperations::default();
    let req = h.request.as_ref().unwrap_or(&empty);
    let resp = h.response.as_ref().unwrap_or(&empty);
    ops.request_set = pairs(&req.set, &mut authority, true);
    ops.request_add = pairs(&req.add, &mut authority, true);
    ops.request_remove = names(&req.remove);
    ops.response_set = pairs(&resp.set, &mut authority, false);
    ops.response_add = pairs(&resp.add, &mut authority, false);
    ops.response_remove = names(&resp.remove);
    (ops, authority)
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
        });
    }
    let (headers, mut authority) = header_ops(route.headers.as_ref());
    if let Some(rw) = &route.rewrite
        && !rw.authority.is_empty()
    {
        authority = HeaderValue::from_str(&rw.authority).ok();
    }
    let rewrite = route.rewrite.as_ref().and_then(|rw| {
        if let Some(rr) = &rw.uri_regex_rewrite {
            let pattern = RegexBuilder::new(&rr.pattern).size_limit(1 << 20).build().ok()?;
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
        let (dh, dauth) = header_ops(d.headers.as_ref());
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
    let mut mirrors = Vec::new();
    if let (Some(m), Some(pct)) = (&route.mirror, route.effective_mirror_percentage()) {
        let (cluster, name) = destination(m, dest_ns, place, clusters, &domain);
        mirrors.push(MirrorPolicy { cluster, name, percentage: pct });
    }
    for m in &route.mirrors {
        if let Some(d) = &m.destination {
            let (cluster, name) = destination(d, dest_ns, place, clusters, &domain);
            mirrors.push(MirrorPolicy { cluster, name, percentage: m.percentage.map(|p| p.value).unwrap_or(100.0) });
        }
    }
    Action::Forward(Forward {
        destinations: destinations.into(),
        total_weight: cumulative,
        rewrite,
        authority,
        headers,
        timeout: route.timeout.map(|d| d.to_std()),
        retry: retry_policy(route),
        fault: fault(route),
        mirrors: mirrors.into(),
        cors: route.cors_policy.as_ref().map(cors),
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

/// Istio's default `retryOn` (1.24+: 503 is no longer retried by default).
const DEFAULT_RETRY_ON: [&str; 5] =
    ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"];

/// Istio's built-in policy for a route without `retries` (and for default routes):
/// 2 retries, the default conditions, no status codes, 25ms back-off, other hosts.
pub(crate) fn default_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        per_try_timeout: None,
        retry_on: DEFAULT_RETRY_ON.iter().map(|s| (*s).into()).collect(),
        retriable_status_codes: Box::new([]),
        backoff: Duration::from_millis(25),
        retry_other_hosts: true,
    }
}

/// The retry policy in effect (spec §2.9): absent = Istio's default (2 retries on
/// connect-failure, refused-stream, unavailable, cancelled, retriable-status-codes);
/// `attempts <= 0` = none.
fn retry_policy(route: &HttpRoute) -> Option<RetryPolicy> {
    const DEFAULT_ON: [&str; 5] =
        ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"];
    let Some(r) = &route.retries else {
        return Some(RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: DEFAULT_ON.iter().map(|s| (*s).into()).collect(),
            retriable_status_codes: Box::new([]),
            backoff: Duration::from_millis(25),
            retry_other_hosts: true,
        });
    };
    if r.attempts <= 0 {
        return None;
    }
    let (mut on, mut codes): (Vec<Box<str>>, Vec<u16>) = (Vec::new(), Vec::new());
    if r.retry_on.is_empty() {
        on = DEFAULT_RETRY_ON.iter().map(|s| (*s).into()).collect();
    } else {
        for tok in r.retry_on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match tok.parse::<u16>() {
                Ok(code) => codes.push(code),
                Err(_) => on.push(tok.into()),
            }
        }
        if !codes.is_empty() && !on.iter().any(|t| &**t == "retriable-status-codes") {
            on.push("retriable-status-codes".into());
        }
    }
    Some(RetryPolicy {
        attempts: r.attempts as u32,
        per_try_timeout: r.per_try_timeout.map(|d| d.to_std()),
        retry_on: on.into(),
        retriable_status_codes: codes.into(),
        backoff: r.backoff.map(|d| d.to_std()).unwrap_or(Duration::from_millis(25)),
        retry_other_hosts: r.retry_ignore_previous_hosts.unwrap_or(true),
    })
}

fn fault(route: &HttpRoute) -> Option<FaultPolicy> {
    let f = route.fault.as_ref()?;
    let delay = f.delay.as_ref().and_then(|d| Some((d.fixed_delay?.to_std(), d.effective_percentage())));
    let abort = f.abort.as_ref().and_then(|a| {
        let kind = if let Some(s) = a.http_status {
            FaultAbort::Http(s as u16)
        } else {
            FaultAbort::Grpc(grpc_code(a.grpc_status.as_deref()?)?)
        };
        Some((kind, a.effective_percentage()))
    });
    Some(FaultPolicy { delay, abort })
}

fn grpc_code(name: &str) -> Option<u32> {
    weir_model::validate::GRPC_STATUSES.iter().position(|n| *n == name).map(|i| i as u32)
}

fn cors(c: &CorsPolicy) -> weir_table::CorsPolicy {
    let join = |l: &[String]| (!l.is_empty()).then(|| HeaderValue::from_str(&l.join(",")).ok()).flatten();
    weir_table::CorsPolicy {
        allow_origins: c.effective_origins().iter().filter_map(|o| str_match(o).ok()).collect(),
        allow_methods: join(&c.allow_methods),
        allow_headers: join(&c.allow_headers),
        expose_headers: join(&c.expose_headers),
        max_age: c.max_age.map(|d| HeaderValue::from(d.to_std().as_secs())),
        allow_credentials: c.allow_credentials,
        forward_unmatched_preflights: c.unmatched_preflights != Some(UnmatchedPreflights::Ignore),
    }
}

/// Merges a delegate route into its root route (spec §2.8): match entries combined
/// with every root entry they do not conflict with; fields the delegate leaves unset
/// inherited from the root. `None` when every combination conflicts.
fn merge_delegate(root: &HttpRoute, d: &HttpRoute) -> Option<HttpRoute> {
    let roots: Vec<HttpMatchRequest> =
        if root.matches.is_empty() { vec![Default::default()] } else { root.matches.clone() };
    let dels: Vec<HttpMatchRequest> = if d.matches.is_empty() { vec![Default::default()] } else { d.matches.clone() };
    let mut merged = Vec::new();
    for dm in &dels {
        for rm in &roots {
            if let Some(m) = merge_match(rm, dm) {
                merged.push(m);
            }
        }
    }
    if merged.is_empty() {
        return None;
    }
    let mut out = d.clone();
    out.matches = if merged.iter().all(|m| *m == HttpMatchRequest::default()) { Vec::new() } else { merged };
    out.name = match (root.name.is_empty(), d.name.is_empty()) {
        (false, false) => format!("{}-{}", root.name, d.name),
        (false, true) => root.name.clone(),
        _ => d.name.clone(),
    };
    if out.rewrite.is_none() {
        out.rewrite = root.rewrite.clone();
    }
    if out.direct_response.is_none() && out.route.is_empty() && out.redirect.is_none() {
        out.direct_response = root.direct_response.clone();
    }
    if out.timeout.is_none() {
        out.timeout = root.timeout;
    }
    if out.retries.is_none() {
        out.retries = root.retries.clone();
    }
    if out.fault.is_none() {
        out.fault = root.fault.clone();
    }
    if out.mirror.is_none() && out.mirrors.is_empty() {
        out.mirror = root.mirror.clone();
        out.mirrors = root.mirrors.clone();
        out.mirror_percentage = out.mirror_percentage.or(root.mirror_percentage);
        out.mirror_percent = out.mirror_percent.or(root.mirror_percent);
    }
    if out.cors_policy.is_none() {
        out.cors_policy = root.cors_policy.clone();
    }
    if out.headers.is_none() {
        out.headers = root.headers.clone();
    }
    Some(out)
}

fn merge_opt<T: Clone + PartialEq>(a: &Option<T>, b: &Option<T>) -> Result<Option<T>, ()> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(()),
        (Some(x), _) => Ok(Some(x.clone())),
        (None, y) => Ok(y.clone()),
    }
}

fn merge_map<V: Clone + PartialEq>(
    a: &std::collections::BTreeMap<String, V>,
    b: &std::collections::BTreeMap<String, V>,
) -> Result<std::collections::BTreeMap<String, V>, ()> {
    let mut out = a.clone();
    for (k, v) in b {
        match out.get(k) {
            Some(x) if x != v => return Err(()),
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

fn merge_match(root: &HttpMatchRequest, d: &HttpMatchRequest) -> Option<HttpMatchRequest> {
    let uri = match (&root.uri, &d.uri) {
        (Some(r), Some(dl)) => {
            // The delegate may narrow the root's prefix; regexes cannot be combined.
            match (r.form(), dl.form()) {
                (Some(MatchForm::Prefix(rp)), Some(MatchForm::Prefix(p) | MatchForm::Exact(p)))
                    if p.starts_with(rp) =>
                {
                    Some(dl.clone())
                }
                (Some(MatchForm::Exact(re)), Some(MatchForm::Exact(de))) if re == de => Some(dl.clone()),
                _ => return None,
            }
        }
        (r, dl) => r.clone().or(dl.clone()),
    };
    let port = match (root.port, d.port) {
        (0, p) | (p, 0) => p,
        (a, b) if a == b => a,
        _ => return None,
    };
    let source_namespace = match (root.source_namespace.as_str(), d.source_namespace.as_str()) {
        ("", s) | (s, "") => s.to_string(),
        (a, b) if a == b => a.to_string(),
        _ => return None,
    };
    Some(HttpMatchRequest {
        name: match (root.name.is_empty(), d.name.is_empty()) {
            (false, false) => format!("{}-{}", root.name, d.name),
            (false, true) => root.name.clone(),
            _ => d.name.clone(),
        },
        uri,
        scheme: merge_opt(&root.scheme, &d.scheme).ok()?,
        method: merge_opt(&root.method, &d.method).ok()?,
        authority: merge_opt(&root.authority, &d.authority).ok()?,
        headers: merge_map(&root.headers, &d.headers).ok()?,
        port,
        source_labels: merge_map(&root.source_labels, &d.source_labels).ok()?,
        gateways: root.gateways.clone(),
        query_params: merge_map(&root.query_params, &d.query_params).ok()?,
        ignore_uri_case: root.ignore_uri_case || d.ignore_uri_case,
        without_headers: merge_map(&root.without_headers, &d.without_headers).ok()?,
        source_namespace,
        stat_prefix: if d.stat_prefix.is_empty() { root.stat_prefix.clone() } else { d.stat_prefix.clone() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(matches!(template("plain"), HeaderTemplate::Literal(v) if v == "plain"));
        assert!(matches!(template("100%%"), HeaderTemplate::Literal(v) if v == "100%"));
        let HeaderTemplate::Parts(p) = template("ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%;id=%REQ(X-Id)%") else {
            panic!()
        };
        assert_eq!(p.len(), 4);
        assert!(matches!(&p[1], TemplatePart::DownstreamRemoteAddressWithoutPort));
        assert!(matches!(&p[3], TemplatePart::Req(n) if n == "x-id"));
    }

    #[test]
    fn substitutions() {
        assert_eq!(envoy_substitution("/v2/\\1/\\2"), "/v2/${1}/${2}");
        assert_eq!(envoy_substitution("$x"), "$$x");
    }
}
