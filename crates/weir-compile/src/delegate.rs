//! VirtualService delegation (spec §2.8): a delegate's routes merged under the root
//! route that hands over to it.

use weir_model::types::{HttpMatchRequest, HttpRoute, MatchForm};

/// Merges a delegate route into its root route (spec §2.8): match entries combined
/// with every root entry they do not conflict with; fields the delegate leaves unset
/// inherited from the root. `None` when every combination conflicts.
pub(crate) fn merge_delegate(root: &HttpRoute, d: &HttpRoute) -> Option<HttpRoute> {
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
