//! Per-resource validation with Istio's verdicts: what the webhook rejects (error),
//! what it accepts with a warning, and the VirtualService reachability findings
//! (`IST0130`/`IST0131`). Rules are named after `validation-rules.md` (VS-nn, DR-nn...).
//!
//! Each kind has its own module; [`rules`] holds the shared building blocks. Checks
//! report a field path; the loader turns it into a line and column.

mod destination_rule;
mod gateway;
mod http_policy;
mod reachability;
pub(crate) mod rules;

pub use rules::GRPC_STATUSES;
mod service_entry;
mod sidecar;
mod virtual_service;

use crate::diag::{Severity, codes};
use crate::path::FieldPath;
use crate::resource::{Resource, Spec};

/// A validation finding, before it is placed in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Error, warning or info.
    pub severity: Severity,
    /// Diagnostic code.
    pub code: &'static str,
    /// Path from the object root (`spec.http[0].timeout`).
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
    /// Point at the map key of the last path segment rather than at its value.
    pub at_key: bool,
}

/// Collects findings while a resource is walked.
#[derive(Debug, Default)]
pub(crate) struct Report {
    findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: &FieldPath,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding { severity, code, path: path.clone(), message: message.into(), at_key: false });
    }

    /// A schema error (IST0106).
    pub(crate) fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.push(Severity::Error, codes::SCHEMA_ERROR, path, message);
    }

    /// A schema warning (IST0133).
    pub(crate) fn warn(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.push(Severity::Warning, codes::SCHEMA_WARNING, path, message);
    }

    /// A schema error about a map key.
    pub(crate) fn error_at_key(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Error,
            code: codes::SCHEMA_ERROR,
            path: path.clone(),
            message: message.into(),
            at_key: true,
        });
    }

    /// Reports `r` as an error at `path` when it fails.
    pub(crate) fn check(&mut self, path: &FieldPath, r: Result<(), String>) {
        if let Err(m) = r {
            self.error(path, m);
        }
    }

    /// C-6 over a label map at `path`.
    pub(crate) fn labels(&mut self, path: &FieldPath, map: &std::collections::BTreeMap<String, String>) {
        for (key, on_key, msg) in rules::labels(map) {
            if on_key {
                self.error_at_key(&path.key(&key), msg);
            } else {
                self.error(&path.key(&key), msg);
            }
        }
    }
}

/// Validates one resource on its own (no lookups of other resources).
pub fn validate(r: &Resource) -> Vec<Finding> {
    let mut rep = Report::default();
    metadata(r, &mut rep);
    let spec = FieldPath::root().key("spec");
    let ns = r.meta.namespace.as_str();
    match &r.spec {
        Spec::VirtualService(vs) => virtual_service::validate(vs, ns, &spec, &mut rep),
        Spec::DestinationRule(dr) => destination_rule::validate(dr, ns, &spec, &mut rep),
        Spec::Gateway(gw) => gateway::validate(gw, &r.meta.name, &spec, &mut rep),
        Spec::ServiceEntry(se) => service_entry::validate(se, ns, &r.meta.labels, &spec, &mut rep),
        Spec::WorkloadEntry(we) => service_entry::validate_workload_entry(we, None, true, &spec, &mut rep),
        Spec::Sidecar(sc) => sidecar::validate(sc, ns, &spec, &mut rep),
    }
    rep.findings
}

/// Name, namespace and annotations (C-14).
fn metadata(r: &Resource, rep: &mut Report) {
    let meta = FieldPath::root().key("metadata");
    if r.meta.name.is_empty() {
        rep.error(&meta.key("name"), "missing required field `name`");
    }
    if let Err(m) = rules::dns1123_label(&r.meta.namespace, "namespace") {
        rep.error(&meta.key("namespace"), m);
    }
    for key in r.meta.annotations.keys() {
        let bad = match key.as_str() {
            "istio.io/dry-run" => Some("the annotation \"istio.io/dry-run\" is only allowed on AuthorizationPolicy"),
            "internal.istio.io/webhook-always-reject"
            | "internal.istio.io/parents"
            | "internal.istio.io/parent-namespace" => Some("internal Istio annotations may not be set by users"),
            _ => None,
        };
        if let Some(msg) = bad {
            rep.error_at_key(&meta.key("annotations").key(key), format!("{key:?}: {msg}"));
        }
    }
    rep.labels(&meta.key("labels"), &r.meta.labels);
}

/// `exportTo` (C-7). `se` allows `~`; `selector_ns` restricts a selector DR to its namespace.
pub(crate) fn export_to(
    list: &[String],
    ns: &str,
    se: bool,
    dr_with_selector: bool,
    path: &FieldPath,
    rep: &mut Report,
) {
    if list.is_empty() {
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let p = path.index(i);
        let key = if e == "." { ns } else { e.as_str() };
        if seen.contains(&key) {
            if key != e {
                rep.error(&p, format!("duplicate entries in exportTo: \".\" and the own namespace {ns:?}"));
            } else {
                rep.error(&p, format!("duplicate entry {e:?} in exportTo"));
            }
            continue;
        }
        let valid = e == "." || e == "*" || (se && e == "~") || rules::is_dns1123_label(e);
        if !valid {
            let extra = if se { ", \"~\"" } else { "" };
            rep.error(&p, format!("exportTo entry {e:?} is invalid: expected \".\", \"*\"{extra} or a namespace name"));
        }
        seen.push(key);
    }
    if dr_with_selector {
        if seen.contains(&ns) {
            if seen.len() > 1 {
                rep.error(path, "a DestinationRule with a workloadSelector cannot have multiple entries in exportTo");
            }
        } else {
            rep.error(path, "a DestinationRule with a workloadSelector cannot be exported beyond its own namespace");
        }
    }
    if seen.contains(&"*") && list.len() > 1 {
        rep.error(path, "exportTo cannot mix \"*\" (public) with other entries");
    }
    if seen.contains(&"~") && list.len() > 1 {
        rep.error(path, "exportTo cannot mix \"~\" (visible to no one) with other entries");
    }
}

/// Workload selectors (C-15): no empty keys, no `*`; no labels at all is a warning.
pub(crate) fn workload_selector(
    labels: &std::collections::BTreeMap<String, String>,
    path: &FieldPath,
    rep: &mut Report,
) {
    if labels.is_empty() {
        rep.warn(path, "workload selector has no labels: it applies to every workload in the namespace");
        return;
    }
    for (k, v) in labels {
        if k.is_empty() {
            rep.error_at_key(&path.key(k), "empty key is not supported in a workload selector");
        }
        if k.contains('*') || v.contains('*') {
            rep.error(&path.key(k), format!("wildcard is not supported in a workload selector: {k:?}: {v:?}"));
        }
    }
}
