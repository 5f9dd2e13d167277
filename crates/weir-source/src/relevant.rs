//! Loading only what one request can meet: `weir explain` on a mesh of 10,000
//! services must answer in well under a second, and parsing 10 MB of YAML alone takes
//! longer than that. The documents are found by their `---` lines, and a document is
//! parsed only when it may matter: a VirtualService, DestinationRule or ServiceEntry
//! whose text names one of the hosts the request can reach (or a wildcard host), and
//! every document of any other kind (Gateways, Sidecars, WorkloadEntries...), since
//! those apply by selector rather than by name. The hosts the request can reach grow
//! as VirtualServices are read: their destinations, mirrors and delegates are names
//! to look for in turn.
//!
//! The test is on text, so it errs towards reading more: a document that merely
//! mentions a name is read, and nothing that could change the route is skipped. The
//! caller keeps a full load for answers that depend on what is absent (no route).

use std::ops::Range;
use std::path::PathBuf;

use weir_model::{LoadReport, Spec, check_duplicates, load_str};

use crate::files::{SourceError, SourceText, read_texts};

/// Kinds found by name; every other kind is always read.
const BY_NAME: [&str; 3] = ["VirtualService", "DestinationRule", "ServiceEntry"];

/// One document of a file.
struct Doc {
    /// 0-based line the document's text starts on.
    first_line: u32,
    range: Range<usize>,
    /// Read only if it names a wanted host.
    by_name: bool,
    read: bool,
}

/// Splits `text` at its `---` lines.
fn documents(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let (mut start, mut first_line, mut line, mut at) = (0usize, 0u32, 0u32, 0usize);
    let json = text.trim_start().starts_with(['{', '[']);
    for l in text.split_inclusive('\n') {
        let bare = l.trim_end_matches(['\n', '\r']);
        if !json && (bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t")) {
            docs.push(doc(text, start..at, first_line));
            start = at + l.len();
            first_line = line + 1;
        }
        at += l.len();
        line += 1;
    }
    docs.push(doc(text, start..text.len(), first_line));
    docs
}

fn doc(text: &str, range: Range<usize>, first_line: u32) -> Doc {
    let kind = text[range.clone()]
        .lines()
        .find_map(|l| l.strip_prefix("kind:"))
        .map(|k| k.trim().trim_matches(['"', '\'']))
        .unwrap_or("");
    Doc { first_line, range, by_name: BY_NAME.contains(&kind), read: false }
}

/// The part of a host that any spelling of it shares: its first label (`reviews` of
/// `reviews`, `reviews.bookinfo` and `reviews.bookinfo.svc.cluster.local`), lowercased.
fn needle(host: &str) -> Option<String> {
    let host = host.trim_start_matches("*.");
    let label = host.split(['.', ':']).next().unwrap_or("");
    (!label.is_empty() && label != "*").then(|| label.to_ascii_lowercase())
}

/// Loads the documents under `paths` that requests for `hosts` can meet (see the
/// module docs). Positions in diagnostics and origins are those of the whole files.
pub fn load_relevant(paths: &[PathBuf], hosts: &[&str]) -> (LoadReport, Vec<SourceError>) {
    let (texts, errors) = read_texts(paths);
    let lower: Vec<String> = texts.iter().map(|t| t.text.to_ascii_lowercase()).collect();
    let mut docs: Vec<Vec<Doc>> = texts.iter().map(|t| documents(&t.text)).collect();
    let mut wanted: Vec<String> = hosts.iter().filter_map(|h| needle(h)).collect();
    let mut report = LoadReport::default();
    let mut checked = 0;
    // Each round reads the documents naming the hosts found so far; the
    // VirtualServices among them may name more.
    for _round in 0..8 {
        let fresh = &wanted[checked..];
        checked = wanted.len();
        let mut more = Vec::new();
        for (f, file_docs) in docs.iter_mut().enumerate() {
            for d in file_docs.iter_mut().filter(|d| !d.read) {
                let text = &lower[f][d.range.clone()];
                let named = !d.by_name
                    || text.contains("\"*")
                    || text.contains("'*")
                    || fresh.iter().any(|n| text.contains(n.as_str()));
                if !named {
                    continue;
                }
                d.read = true;
                let part = load_part(&texts[f], d);
                for r in &part.resources {
                    if let Spec::VirtualService(vs) = &r.spec {
                        more.extend(reachable(vs));
                    }
                }
                report.extend(part);
            }
        }
        more.sort();
        more.dedup();
        more.retain(|n| !wanted.contains(n));
        if more.is_empty() {
            break;
        }
        wanted.extend(more);
    }
    let dups = check_duplicates(&mut report.resources);
    report.diagnostics.extend(dups);
    (report, errors)
}

/// One document loaded on its own, its positions moved to where it sits in the file.
fn load_part(file: &SourceText, d: &Doc) -> LoadReport {
    let mut part = load_str(&file.name, &file.text[d.range.clone()]);
    let shift = |line: &mut u32| {
        if *line > 0 {
            *line += d.first_line;
        }
    };
    for r in part.resources.iter_mut().chain(part.rejected.iter_mut()) {
        shift(&mut r.origin.pos.line);
    }
    for o in &mut part.core {
        shift(&mut o.origin.pos.line);
    }
    for diag in &mut part.diagnostics {
        shift(&mut diag.line);
    }
    part
}

/// Names a VirtualService sends requests on to: destinations, mirrors, delegates.
fn reachable(vs: &weir_model::types::VirtualService) -> Vec<String> {
    let mut hosts: Vec<&str> = Vec::new();
    for h in &vs.http {
        hosts.extend(h.route.iter().filter_map(|d| d.destination.as_ref()).map(|d| d.host.as_str()));
        hosts.extend(h.mirror.as_ref().map(|d| d.host.as_str()));
        hosts.extend(h.mirrors.iter().filter_map(|m| m.destination.as_ref()).map(|d| d.host.as_str()));
        hosts.extend(h.delegate.as_ref().map(|d| d.name.as_str()));
    }
    for r in &vs.tcp {
        hosts.extend(r.route.iter().filter_map(|d| d.destination.as_ref()).map(|d| d.host.as_str()));
    }
    for r in &vs.tls {
        hosts.extend(r.route.iter().filter_map(|d| d.destination.as_ref()).map(|d| d.host.as_str()));
    }
    hosts.into_iter().filter_map(needle).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_separator_lines_and_know_their_first_line() {
        let text = "kind: VirtualService\na: 1\n---\nkind: Gateway\n--- # c\nkind: \"ServiceEntry\"\n";
        let docs = documents(text);
        let got: Vec<(u32, &str, bool)> =
            docs.iter().map(|d| (d.first_line, &text[d.range.clone()], d.by_name)).collect();
        assert_eq!(
            got,
            [
                (0, "kind: VirtualService\na: 1\n", true),
                (3, "kind: Gateway\n", false),
                (5, "kind: \"ServiceEntry\"\n", true),
            ]
        );
    }

    #[test]
    fn every_spelling_of_a_host_shares_its_needle() {
        assert_eq!(needle("reviews").as_deref(), Some("reviews"));
        assert_eq!(needle("Reviews.bookinfo.svc.cluster.local").as_deref(), Some("reviews"));
        assert_eq!(needle("reviews:9080").as_deref(), Some("reviews"));
        assert_eq!(needle("*.example.com").as_deref(), Some("example"));
        assert_eq!(needle("*"), None);
    }
}
