//! The case runner shared by the rule tables (`rules_*.rs`).
#![allow(dead_code)]

use weir_model::{Diagnostic, Severity, load_str};

/// One rule case: `body` is the spec (indented two spaces) or a whole document when it
/// starts with `apiVersion`. The line holding `#<` is where the finding must point.
#[derive(Debug)]
pub(crate) struct Case {
    /// Rule id and a short description.
    pub(crate) rule: &'static str,
    /// Resource kind.
    pub(crate) kind: &'static str,
    /// The spec body, or a whole document.
    pub(crate) body: &'static str,
    /// Expected diagnostic code.
    pub(crate) code: &'static str,
    /// Expected field path.
    pub(crate) path: &'static str,
    /// Replace `.0` by `.1` (first occurrence) to get the nearest valid case.
    pub(crate) fix: (&'static str, &'static str),
}

fn document(case: &Case, body: &str) -> String {
    if body.trim_start().starts_with("apiVersion") {
        return body.trim_start_matches('\n').to_string();
    }
    format!(
        "apiVersion: networking.istio.io/v1\nkind: {}\nmetadata:\n  name: test\n  namespace: ns1\nspec:{}\n",
        case.kind, body
    )
}

fn marked_line(case: &Case) -> u32 {
    let doc = document(case, case.body);
    let idx = doc.lines().position(|l| l.contains("#<")).unwrap_or_else(|| panic!("{}: no #< marker", case.rule));
    idx as u32 + 1
}

fn show(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| format!("  {}:{} {}[{}] {}: {}\n", d.line, d.column, d.severity, d.code, d.path, d.message))
        .collect()
}

/// Runs every case and reports all failures at once.
pub(crate) fn run_cases(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let doc = document(case, case.body);
        let diags = load_str("case.yaml", &doc).diagnostics;
        let line = marked_line(case);
        let hit = diags.iter().find(|d| d.code == case.code && d.path == case.path);
        match hit {
            None => failures.push(format!(
                "{}: expected {} at {} (line {line}), got:\n{}",
                case.rule,
                case.code,
                case.path,
                show(&diags)
            )),
            Some(d) if d.line != line => {
                failures.push(format!("{}: {} at {} is on line {}, expected {line}", case.rule, d.code, d.path, d.line))
            }
            Some(_) => {}
        }
        assert!(doc.contains(case.fix.0), "{}: fix text {:?} not found", case.rule, case.fix.0);
        let fixed_body = case.body.replacen(case.fix.0, case.fix.1, 1);
        let fixed = document(case, &fixed_body);
        let diags = load_str("case.yaml", &fixed).diagnostics;
        let still = diags.iter().any(|d| d.code == case.code && d.path == case.path);
        let errors: Vec<_> = diags.iter().filter(|d| d.severity == Severity::Error).cloned().collect();
        if still || !errors.is_empty() {
            failures.push(format!("{}: the fixed case is not clean:\n{}", case.rule, show(&diags)));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
