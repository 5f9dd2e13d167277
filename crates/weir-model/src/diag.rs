//! Diagnostics: one shape for every finding, from a YAML syntax error to a rule Istio
//! enforces. Codes reuse Istio's `IST####` where the meaning is the same; weir's own
//! codes are `WEIR###` and listed in [`codes`].

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::node::Pos;

/// How bad a finding is. A warning never fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Rejected: the resource is not used.
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
    /// For information only.
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// The registry of codes.
pub mod codes {
    /// A resource breaks a schema rule (Istio's SchemaValidationError).
    pub const SCHEMA_ERROR: &str = "IST0106";
    /// A schema rule Istio only warns about (Istio's SchemaWarning).
    pub const SCHEMA_WARNING: &str = "IST0133";
    /// A VirtualService rule can never match (Istio's VirtualServiceUnreachableRule).
    pub const UNREACHABLE_RULE: &str = "IST0130";
    /// A match is covered by an earlier one (Istio's VirtualServiceIneffectiveMatch).
    pub const INEFFECTIVE_MATCH: &str = "IST0131";
    /// A deprecated field is used (Istio's Deprecated).
    pub const DEPRECATED: &str = "IST0002";
    /// The text is not valid YAML or JSON.
    pub const SYNTAX: &str = "WEIR001";
    /// A field is not part of the schema.
    pub const UNKNOWN_FIELD: &str = "WEIR002";
    /// A value has the wrong type or cannot be decoded.
    pub const BAD_VALUE: &str = "WEIR003";
    /// A document is not a Kubernetes object, or names an unknown kind or version.
    pub const BAD_OBJECT: &str = "WEIR004";
    /// A kind weir does not use was skipped.
    pub const SKIPPED_KIND: &str = "WEIR005";
    /// Two resources have the same kind, namespace and name.
    pub const DUPLICATE: &str = "WEIR006";
    /// A file or directory could not be read.
    pub const IO: &str = "WEIR007";
    /// More findings on one resource than are shown: the rest are counted.
    pub const TRUNCATED: &str = "WEIR008";
    /// A reference to a resource that does not exist (Istio's ReferencedResourceNotFound).
    pub const REFERENCE_NOT_FOUND: &str = "IST0101";
    /// Configuration weir accepts but does not serve or execute (yet).
    pub const NOT_SERVED: &str = "WEIR101";
}

/// A finding about the configuration, placed at a file, line and column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error, warning or info.
    pub severity: Severity,
    /// `IST####` or `WEIR###`.
    pub code: &'static str,
    /// The file (or `-` for stdin).
    pub file: Arc<str>,
    /// 1-based line (0 when unknown).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub column: u32,
    /// Resource kind, when known.
    pub kind: Option<String>,
    /// Resource namespace, when known.
    pub namespace: Option<String>,
    /// Resource name, when known.
    pub name: Option<String>,
    /// Field path such as `spec.http[0].route[1].weight`; empty for the whole document.
    pub path: String,
    /// What is wrong, quoting the value and saying what was expected.
    pub message: String,
    /// The source line the position is on (for human output).
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// The position as a [`Pos`].
    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error[CODE] Kind ns/name: field.path: message`, then the source
    /// line with a caret under the column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // No text to point into (an object read from the Kubernetes API): the
            // resource and the field path say where.
            write!(f, "{}: {}[{}]", self.file, self.severity, self.code)?;
        } else {
            write!(f, "{}:{}:{}: {}[{}]", self.file, self.line, self.column, self.severity, self.code)?;
        }
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
            match (&self.namespace, &self.name) {
                (Some(ns), Some(name)) => write!(f, " {ns}/{name}")?,
                (None, Some(name)) => write!(f, " {name}")?,
                _ => {}
            }
            f.write_str(":")?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)?;
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string();
            write!(f, "\n {gutter} | {src}")?;
            if self.column > 0 {
                // In an excerpt cut at its start, the column sits EXCERPT_HALF chars
                // after the leading ellipsis.
                let skipped = excerpt_start(self.column).filter(|_| src.starts_with('…')).map_or(0, |s| s - 1);
                let before = (self.column as usize - 1).saturating_sub(skipped);
                let pad: String = src.chars().take(before).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                write!(f, "\n {} | {pad}^", " ".repeat(gutter.len()))?;
            }
        }
        Ok(())
    }
}

/// Severity counts, for summaries and exit codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Infos.
    pub infos: usize,
}

impl Counts {
    /// Counts a list of diagnostics.
    pub fn of(diags: &[Diagnostic]) -> Self {
        let mut c = Counts::default();
        for d in diags {
            match d.severity {
                Severity::Error => c.errors += 1,
                Severity::Warning => c.warnings += 1,
                Severity::Info => c.infos += 1,
            }
        }
        c
    }
}

/// At most `max` findings per resource (file, kind, namespace, name), in their order,
/// and for each resource over the cap one info line (WEIR008) counting the rest: a
/// resource with thousands of mistakes must not bury the others.
pub fn cap_per_resource(diags: Vec<Diagnostic>, max: usize) -> Vec<Diagnostic> {
    use std::collections::HashMap;
    type Key = (Arc<str>, Option<String>, Option<String>, Option<String>);
    let key = |d: &Diagnostic| -> Key { (d.file.clone(), d.kind.clone(), d.namespace.clone(), d.name.clone()) };
    let mut count: HashMap<Key, usize> = HashMap::new();
    let mut out = Vec::with_capacity(diags.len().min(max * 64));
    let mut over: Vec<(Key, Diagnostic, usize)> = Vec::new();
    for d in diags {
        let k = key(&d);
        // Findings about no resource (syntax errors) are never capped.
        if d.kind.is_none() {
            out.push(d);
            continue;
        }
        let n = count.entry(k.clone()).or_default();
        *n += 1;
        if *n <= max {
            out.push(d);
        } else if *n == max + 1 {
            over.push((k, d, 1));
        } else if let Some(o) = over.iter_mut().find(|(ok, _, _)| *ok == k) {
            o.2 += 1;
        }
    }
    for (_, mut d, n) in over {
        d.severity = Severity::Info;
        d.code = codes::TRUNCATED;
        d.path = String::new();
        d.source_line = None;
        d.message = format!("{n} more finding{} on this resource not shown", if n == 1 { "" } else { "s" });
        out.push(d);
    }
    out
}

/// Longest source excerpt a diagnostic carries, in characters: a finding on a very
/// long line (a flow-style list of thousands of hosts) must not repeat the whole line.
pub const EXCERPT_WIDTH: usize = 160;
const EXCERPT_HALF: usize = EXCERPT_WIDTH / 2;

/// Where an excerpt around `column` starts when its line is cut (`None`: from the
/// line's start).
fn excerpt_start(column: u32) -> Option<usize> {
    let col = (column as usize).saturating_sub(1);
    (col > EXCERPT_HALF).then(|| col - EXCERPT_HALF)
}

/// The source line as a diagnostic shows it: whole when short, else a window of
/// [`EXCERPT_WIDTH`] characters around `column`, marked with `…` where cut.
pub fn excerpt(line: &str, column: u32) -> String {
    if line.chars().count() <= EXCERPT_WIDTH {
        return line.to_string();
    }
    let start = excerpt_start(column).unwrap_or(0);
    let window: String = line.chars().skip(start).take(EXCERPT_WIDTH).collect();
    let more = line.chars().count() > start + EXCERPT_WIDTH;
    format!("{}{window}{}", if start > 0 { "…" } else { "" }, if more { "…" } else { "" })
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;

    #[test]
    fn findings_are_capped_per_resource_with_a_count_of_the_rest() {
        let d = |name: &str, i: u32| Diagnostic {
            severity: Severity::Error,
            code: "IST0106",
            file: "f.yaml".into(),
            line: i,
            column: 1,
            kind: Some("VirtualService".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            path: format!("spec.hosts[{i}]"),
            message: "m".into(),
            source_line: None,
        };
        let mut all: Vec<Diagnostic> = (0..10).map(|i| d("a", i)).collect();
        all.push(d("b", 99));
        let capped = cap_per_resource(all, 3);
        let got: Vec<(&str, &str, &str)> =
            capped.iter().map(|x| (x.name.as_deref().unwrap(), x.code, x.message.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a", "IST0106", "m"),
                ("a", "IST0106", "m"),
                ("a", "IST0106", "m"),
                ("b", "IST0106", "m"),
                ("a", "WEIR008", "7 more findings on this resource not shown"),
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column_and_the_caret_still_points_there() {
        assert_eq!(excerpt("short line", 3), "short line");
        let line: String = (0..1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let cut = excerpt(&line, 500);
        assert!(cut.starts_with('…') && cut.ends_with('…'));
        assert_eq!(cut.chars().count(), EXCERPT_WIDTH + 2);
        let d = Diagnostic {
            severity: Severity::Error,
            code: "IST0106",
            file: "f.yaml".into(),
            line: 1,
            column: 500,
            kind: None,
            namespace: None,
            name: None,
            path: String::new(),
            message: "m".into(),
            source_line: Some(cut.clone()),
        };
        let text = d.to_string();
        let mut lines = text.lines().skip(1);
        let (src, caret) = (lines.next().unwrap(), lines.next().unwrap());
        let at = caret.chars().position(|c| c == '^').unwrap();
        assert_eq!(src.chars().nth(at), line.chars().nth(499), "{src}\n{caret}");
    }
}
