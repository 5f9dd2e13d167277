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

/// VS-40, VS-41, VS-42 for HTTP routes.
pub(super) fn unreachable_http(routes: &[HttpRoute], p: &FieldPath, rep: &mut Report) {
    let mut seen: Vec<(HttpMatchRequest, usize)> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, r) in routes.iter().enumerate() {
        let rp = p.index(i);
        let name = rule_name(&r.name, i);
        if r.matches.is_empty() {
            if catch_all.is_some() {
                unreachable(rep, &rp, &name, "only the last rule can have no matches");
            }
            catch_all = Some(i);
            continue;
        }
        if catch_all.is_some() {
            unreachable(rep, &rp, &name, "route without matches defined before");
        }
        let mut dups = 0;
        for (j, m) in r.matches.iter().enumerate() {
            let mp = rp.key("match").index(j);
            let key = unnamed(m);
            if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == key) {
                dups += 1;
                let mname = if m.name.is_empty() { format!("#{j}") } else { format!("{:?}", m.name) };
                rep.push(
                    Severity::Info,
                    codes::INEFFECTIVE_MATCH,
                    &mp,
                    format!(
                        "virtualService rule {name} match {mname} is not used (duplicate/overlapping match in rule {})",
                        rule_name(&routes[*earlier].name, *earlier)
                    ),
                );
            } else {
                if let Some(earlier) = covering_prefix(&seen, &key) {
                    rep.push(
                        Severity::Info,
                        codes::INEFFECTIVE_MATCH,
                        &mp.key("uri"),
                        format!(
                            "virtualService rule {name} match #{j} is not used: its uri prefix is covered by an earlier prefix match in rule {}",
                            rule_name(&routes[earlier].name, earlier)
                        ),
                    );
                }
                seen.push((key, i));
            }
        }
        if dups == r.matches.len() {
            unreachable(rep, &rp, &name, "all matches used by prior rules");
        }
    }
}

/// VS-42: an earlier match whose uri prefix covers this one's, all else equal (an unset
/// method counts as GET).
fn covering_prefix(seen: &[(HttpMatchRequest, usize)], m: &HttpMatchRequest) -> Option<usize> {
    let prefix = m.uri.as_ref()?.prefix.as_deref()?;
    let norm = |x: &HttpMatchRequest| {
        let mut y = x.clone();
        y.uri = None;
        if y.method.is_none() {
            y.method = Some(StringMatch { exact: Some("GET".into()), ..Default::default() });
        }
        y
    };
    let me = norm(m);
    seen.iter().find_map(|(earlier, rule)| {
        let ep = earlier.uri.as_ref()?.prefix.as_deref()?;
        (ep != prefix && prefix.starts_with(ep) && norm(earlier) == me).then_some(*rule)
    })
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
