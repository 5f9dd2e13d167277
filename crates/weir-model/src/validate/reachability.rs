//! VS-40 .. VS-42: rules that can never match (IST0130) and matches made ineffective
//! by earlier ones (IST0131), as Istio's validation reports them.

use super::Report;
use crate::diag::{Severity, codes};
use crate::path::FieldPath;
use crate::types::{HttpMatchRequest, HttpRoute, StringMatch};

fn rule_name(name: &str, i: usize) -> String {
    if name.is_empty() { format!("#{i}") } else { format!("{name:?}") }
}

fn unreachable(rep: &mut Report, p: &FieldPath, rule: &str, reason: &str) {
    rep.push(Severity::Warning, codes::UNREACHABLE_RULE, p, format!("virtualService rule {rule} not used ({reason})"));
}

/// A match with its name cleared, for duplicate detection (names are ignored).
fn unnamed(m: &HttpMatchRequest) -> HttpMatchRequest {
    HttpMatchRequest { name: String::new(), ..m.clone() }
}

/// VS-40, VS-41, VS-42 for HTTP routes, in the order Istio's analysis walks them:
/// matches after a catch-all rule are reported unreachable and take no further part.
pub(super) fn unreachable_http(routes: &[HttpRoute], p: &FieldPath, rep: &mut Report) {
    let mut seen: Vec<(HttpMatchRequest, usize)> = Vec::new();
    let mut prefixes: Vec<PrefixMatch<'_>> = Vec::new();
    let mut catch_all = false;
    for (i, r) in routes.iter().enumerate() {
        let rp = p.index(i);
        let name = rule_name(&r.name, i);
        if r.matches.is_empty() {
            if catch_all {
                unreachable(rep, &rp, &name, "only the last rule can have no matches");
            }
            catch_all = true;
            continue;
        }
        if catch_all {
            unreachable(rep, &rp, &name, "route without matches defined before");
            continue;
        }
        let mut dups = 0;
        for (j, m) in r.matches.iter().enumerate() {
            let key = unnamed(m);
            if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == key) {
                dups += 1;
                ineffective(
                    rep,
                    &rp.key("match").index(j),
                    &name,
                    &match_name(m, j),
                    &rule_name(&routes[*earlier].name, *earlier),
                );
                continue;
            }
            seen.push((key, i));
            if let Some(pm) = PrefixMatch::new(m, i, j) {
                prefixes.push(pm);
            }
        }
        if dups == r.matches.len() {
            unreachable(rep, &rp, &name, "all matches used by prior rules");
        }
    }
    // VS-42: every later prefix match against every earlier one.
    for (a, earlier) in prefixes.iter().enumerate() {
        for later in &prefixes[a + 1..] {
            if later.prefix != earlier.prefix
                && later.prefix.starts_with(earlier.prefix)
                && later.same_conditions(earlier)
            {
                let rule = &routes[later.rule];
                let first = &routes[earlier.rule];
                ineffective(
                    rep,
                    &p.index(later.rule).key("match").index(later.index).key("uri"),
                    &rule_name(&rule.name, later.rule),
                    &format!("{} of prefix {}", match_name(later.m, later.index), later.prefix),
                    &format!(
                        "{} of prefix {} on {}",
                        match_name(earlier.m, earlier.index),
                        earlier.prefix,
                        rule_name(&first.name, earlier.rule)
                    ),
                );
            }
        }
    }
}

fn ineffective(rep: &mut Report, p: &FieldPath, rule: &str, m: &str, earlier: &str) {
    rep.push(
        Severity::Info,
        codes::INEFFECTIVE_MATCH,
        p,
        format!("virtualService rule {rule} match {m} is not used (duplicate/overlapping match in rule {earlier})"),
    );
}

fn match_name(m: &HttpMatchRequest, j: usize) -> String {
    if m.name.is_empty() { format!("#{j}") } else { format!("{:?}", m.name) }
}

/// A match on a uri prefix, with the conditions VS-42 compares (Istio compares the port,
/// method, authority, headers, query parameters and absent headers, and nothing else).
struct PrefixMatch<'a> {
    m: &'a HttpMatchRequest,
    rule: usize,
    index: usize,
    prefix: &'a str,
}

impl<'a> PrefixMatch<'a> {
    fn new(m: &'a HttpMatchRequest, rule: usize, index: usize) -> Option<Self> {
        let prefix = m.uri.as_ref()?.prefix.as_deref().filter(|p| !p.is_empty())?;
        Some(PrefixMatch { m, rule, index, prefix })
    }

    /// Same conditions besides the uri; an unset method counts as `exact: GET`.
    fn same_conditions(&self, other: &PrefixMatch<'_>) -> bool {
        let get = StringMatch { exact: Some("GET".into()), ..Default::default() };
        let (a, b) = (self.m, other.m);
        a.port == b.port
            && a.method.as_ref().unwrap_or(&get) == b.method.as_ref().unwrap_or(&get)
            && a.authority == b.authority
            && a.headers == b.headers
            && a.query_params == b.query_params
            && a.without_headers == b.without_headers
    }
}

/// VS-40 and VS-41 for TCP and TLS routes.
pub(super) fn unreachable_l4<'a, M: PartialEq + 'a>(
    routes: impl Iterator<Item = &'a [M]>,
    p: &FieldPath,
    rep: &mut Report,
) {
    let mut seen: Vec<(&M, usize)> = Vec::new();
    let mut catch_all = false;
    for (i, matches) in routes.enumerate() {
        let rp = p.index(i);
        let name = rule_name("", i);
        if matches.is_empty() {
            if catch_all {
                unreachable(rep, &rp, &name, "only the last rule can have no matches");
            }
            catch_all = true;
            continue;
        }
        if catch_all {
            unreachable(rep, &rp, &name, "route without matches defined before");
            continue;
        }
        let mut dups = 0;
        for (j, m) in matches.iter().enumerate() {
            if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == m) {
                dups += 1;
                rep.push(
                    Severity::Info,
                    codes::INEFFECTIVE_MATCH,
                    &rp.key("match").index(j),
                    format!("virtualService rule {name} match #{j} is not used (duplicate/overlapping match in rule #{earlier})"),
                );
            } else {
                seen.push((m, i));
            }
        }
        if dups == matches.len() {
            unreachable(rep, &rp, &name, "all matches used by prior rules");
        }
    }
}
