//! From text to resources: split documents, decode each strictly, validate it, and
//! turn every problem into a [`Diagnostic`]. One bad document never hides the others.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;

use crate::de::{DecodeError, decode, nearest};
use crate::diag::{Diagnostic, Severity, codes};
use crate::k8s::{CoreKind, CoreObject};
use crate::node::{Node, Pos, Value, documents};
use crate::path::FieldPath;
use crate::resource::{DEFAULT_NAMESPACE, GROUP, Kind, Object, Origin, Resource, ResourceKey, Spec, VERSIONS};
use crate::validate::{self, Finding};

/// Istio networking kinds that exist but that weir does not use: skipped, not errors.
const OTHER_ISTIO_NETWORKING_KINDS: [&str; 3] = ["EnvoyFilter", "WorkloadGroup", "ProxyConfig"];

/// What loading produced: the resources that are usable (no errors) and every finding.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Resources without errors, in source order.
    pub resources: Vec<Resource>,
    /// All findings, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// Resources that decoded but broke a validation rule: the proxy never uses them,
    /// but `analyze` still checks their references, as istioctl does.
    pub rejected: Vec<Resource>,
    /// Kubernetes objects read for analysis (Services, Pods, Namespaces, Secrets...).
    pub core: Vec<CoreObject>,
}

impl LoadReport {
    /// Appends another report.
    pub fn extend(&mut self, other: LoadReport) {
        self.resources.extend(other.resources);
        self.diagnostics.extend(other.diagnostics);
        self.rejected.extend(other.rejected);
        self.core.extend(other.core);
    }

    /// True when some finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads every document in `text` (YAML, multi-document YAML, JSON, or a `kind: List`).
/// `file` names the source in diagnostics.
pub fn load_str(file: &str, text: &str) -> LoadReport {
    let ctx = FileCtx { file: Arc::from(file), text, lines: OnceLock::new() };
    let mut out = LoadReport::default();
    // One document at a time: its tree is dropped before the next one is parsed.
    for doc in documents(text) {
        match doc.root {
            Ok(node) => load_object(&ctx, &node, &FieldPath::root(), &mut out),
            Err(err) => out.diagnostics.push(ctx.diag(
                Severity::Error,
                codes::SYNTAX,
                err.pos,
                None,
                &FieldPath::root(),
                format!("invalid YAML: {}", err.message),
            )),
        }
    }
    out
}

/// Loads one object already decoded from JSON (as the Kubernetes API serves objects):
/// the same decoding and validation as [`load_str`], without printing it to text and
/// parsing it back. Positions are unknown (line 0); diagnostics name the field path.
pub fn load_json(file: &str, value: serde_json::Value) -> LoadReport {
    let ctx = FileCtx { file: Arc::from(file), text: "", lines: OnceLock::new() };
    let mut out = LoadReport::default();
    load_object(&ctx, &Node::from_json(value), &FieldPath::root(), &mut out);
    out
}

/// Drops later resources whose (kind, namespace, name) repeats an earlier one, and
/// reports each with both locations.
pub fn check_duplicates(resources: &mut Vec<Resource>) -> Vec<Diagnostic> {
    let mut seen: HashMap<ResourceKey, Origin> = HashMap::new();
    let mut diags = Vec::new();
    resources.retain(|r| {
        let key = r.key();
        match duplicate(&mut seen, key, &r.origin) {
            Some(d) => {
                diags.push(d);
                false
            }
            None => true,
        }
    });
    diags
}

/// The same check over identities alone, for callers that do not keep the resources
/// (`weir validate`): the diagnostic for each key that repeats an earlier one.
pub fn check_duplicate_keys(keys: impl IntoIterator<Item = (ResourceKey, Origin)>) -> Vec<Diagnostic> {
    let mut seen: HashMap<ResourceKey, Origin> = HashMap::new();
    keys.into_iter().filter_map(|(key, origin)| duplicate(&mut seen, key, &origin)).collect()
}

fn duplicate(seen: &mut HashMap<ResourceKey, Origin>, key: ResourceKey, origin: &Origin) -> Option<Diagnostic> {
    if let Some(first) = seen.get(&key) {
        return Some(Diagnostic {
            severity: Severity::Error,
            code: codes::DUPLICATE,
            file: origin.file.clone(),
            line: origin.pos.line,
            column: origin.pos.column,
            kind: Some(key.kind.to_string()),
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            path: "metadata.name".into(),
            message: format!(
                "duplicate {key}: it is also defined at {first} (each resource may be defined once; edit or remove one of them)"
            ),
            source_line: None,
        });
    }
    seen.insert(key, origin.clone());
    None
}

struct FileCtx<'a> {
    file: Arc<str>,
    text: &'a str,
    /// Byte offsets of line starts, built on the first diagnostic only.
    lines: OnceLock<Vec<usize>>,
}

/// Who a diagnostic is about.
struct Who {
    kind: String,
    namespace: String,
    name: String,
}

impl FileCtx<'_> {
    fn line_text(&self, line: u32) -> Option<String> {
        if line == 0 {
            return None;
        }
        let starts = self
            .lines
            .get_or_init(|| std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect());
        let start = *starts.get(line as usize - 1)?;
        let end = starts.get(line as usize).map(|e| e - 1).unwrap_or(self.text.len());
        Some(self.text[start..end.max(start)].trim_end_matches('\r').to_string())
    }

    fn diag(
        &self,
        severity: Severity,
        code: &'static str,
        pos: Pos,
        who: Option<&Who>,
        path: &FieldPath,
        message: String,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            kind: who.map(|w| w.kind.clone()),
            namespace: who.map(|w| w.namespace.clone()),
            name: who.map(|w| w.name.clone()),
            path: path.to_string(),
            message,
            source_line: self.line_text(pos.line).map(|l| crate::diag::excerpt(&l, pos.column)),
        }
    }
}

fn join(base: &FieldPath, rel: &FieldPath) -> FieldPath {
    let mut p = base.clone();
    for seg in rel.segs() {
        match seg {
            crate::path::Seg::Key(k) => p.push_key(k),
            crate::path::Seg::Index(i) => p.push_index(*i),
        }
    }
    p
}

fn load_object(ctx: &FileCtx<'_>, node: &Node, base: &FieldPath, out: &mut LoadReport) {
    let err = |out: &mut LoadReport, pos: Pos, who: Option<&Who>, rel: &str, msg: String| {
        let path = if rel.is_empty() { base.clone() } else { base.key(rel) };
        out.diagnostics.push(ctx.diag(Severity::Error, codes::BAD_OBJECT, pos, who, &path, msg));
    };
    if !matches!(node.value, Value::Map(_)) {
        let msg = format!(
            "expected a Kubernetes object (a mapping with `apiVersion`, `kind`, `metadata` and `spec`), found {}",
            node.value.describe()
        );
        return err(out, node.pos, None, "", msg);
    }
    let kind = node.get("kind").and_then(Node::as_str).unwrap_or("").to_string();
    let api_version = node.get("apiVersion").and_then(Node::as_str).unwrap_or("").to_string();
    let meta = node.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Node::as_str).unwrap_or("").to_string();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Node::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string();
    let who = Who { kind: if kind.is_empty() { "<no kind>".into() } else { kind.clone() }, namespace, name };

    if kind.is_empty() {
        let msg = match node.get("kind") {
            None => "missing required field `kind`".to_string(),
            Some(k) => {
                format!("expected `kind` to be a string such as \"VirtualService\", found {}", k.value.describe())
            }
        };
        let pos = node.get("kind").map_or(node.pos, |k| k.pos);
        return err(out, pos, None, "kind", msg);
    }
    if kind == "List" {
        return load_list(ctx, node, base, out, &who);
    }
    if api_version.is_empty() {
        let msg = match node.get("apiVersion") {
            None => format!("missing required field `apiVersion` (for {kind}: \"{GROUP}/v1\")"),
            Some(v) => format!("expected `apiVersion` to be a string, found {}", v.value.describe()),
        };
        let pos = node.get("apiVersion").map_or(node.pos, |k| k.pos);
        return err(out, pos, Some(&who), "apiVersion", msg);
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version.as_str()));
    if group != GROUP {
        if let (Some(k), "") = (Kind::parse(&kind), group) {
            // `apiVersion: v1` with an Istio kind is a mistake, not a core kind.
            let msg =
                format!("{k} belongs to the {GROUP} group: expected apiVersion \"{GROUP}/v1\", found {api_version:?}");
            let pos = node.get("apiVersion").map_or(node.pos, |n| n.pos);
            return err(out, pos, Some(&who), "apiVersion", msg);
        }
        let core = CoreKind::parse(group, &kind);
        let msg = match core {
            Some(_) => format!(
                "read {kind} ({api_version}) as Kubernetes state: Services, EndpointSlices, Pods and Nodes are \
                 the registry beside ServiceEntries; `weir analyze` checks references to all of them"
            ),
            None => format!("skipped {kind} ({api_version}): weir does not use this kind"),
        };
        out.diagnostics.push(ctx.diag(Severity::Info, codes::SKIPPED_KIND, node.pos, Some(&who), base, msg));
        if let Some(core) = core {
            let origin = Origin { file: ctx.file.clone(), pos: node.pos };
            out.core.push(CoreObject::read(core, node, origin));
        }
        return;
    }
    if !VERSIONS.contains(&version) {
        let msg = format!("unknown version {version:?} of {GROUP}; expected one of v1alpha3, v1beta1, v1");
        let pos = node.get("apiVersion").map_or(node.pos, |n| n.pos);
        return err(out, pos, Some(&who), "apiVersion", msg);
    }
    let Some(k) = Kind::parse(&kind) else {
        if OTHER_ISTIO_NETWORKING_KINDS.contains(&kind.as_str()) {
            let msg = format!("skipped {kind} ({api_version}): weir does not use this kind");
            out.diagnostics.push(ctx.diag(Severity::Info, codes::SKIPPED_KIND, node.pos, Some(&who), base, msg));
            return;
        }
        let names = Kind::ALL.map(Kind::as_str);
        let msg = match nearest(&kind, names.iter().copied().chain(OTHER_ISTIO_NETWORKING_KINDS)) {
            Some(s) => format!("unknown kind {kind:?} in {GROUP}, did you mean `{s}`?"),
            None => format!("unknown kind {kind:?} in {GROUP}; expected one of {}", names.join(", ")),
        };
        let pos = node.get("kind").map_or(node.pos, |n| n.pos);
        return err(out, pos, Some(&who), "kind", msg);
    };

    let decoded = match k {
        Kind::VirtualService => decode_as(node, base, Spec::VirtualService),
        Kind::DestinationRule => decode_as(node, base, Spec::DestinationRule),
        Kind::Gateway => decode_as(node, base, Spec::Gateway),
        Kind::ServiceEntry => decode_as(node, base, Spec::ServiceEntry),
        Kind::WorkloadEntry => decode_as(node, base, Spec::WorkloadEntry),
        Kind::Sidecar => decode_as(node, base, |s| Spec::Sidecar(Box::new(s))),
    };
    let mut errors = !decoded.errors.is_empty();
    for e in &decoded.errors {
        out.diagnostics.push(decode_diag(ctx, &who, e));
    }
    let Some((mut meta, spec)) = decoded.value else {
        return;
    };
    if meta.namespace.is_empty() {
        meta.namespace = DEFAULT_NAMESPACE.to_string();
    }
    // The tree is not kept: it costs many times the text, and every finding that
    // needs a position was placed above.
    let origin = Origin { file: ctx.file.clone(), pos: node.pos };
    let status_addresses = matches!(node.get("status").and_then(|s| s.get("addresses")).map(|a| &a.value), Some(Value::Seq(l)) if !l.is_empty());
    let resource = Resource { api_version, meta, spec, origin, status_addresses };
    for f in validate::validate(&resource) {
        errors |= f.severity == Severity::Error;
        out.diagnostics.push(finding_diag(ctx, &who, node, base, f));
    }
    if errors {
        out.rejected.push(resource);
    } else {
        out.resources.push(resource);
    }
}

fn load_list(ctx: &FileCtx<'_>, node: &Node, base: &FieldPath, out: &mut LoadReport, who: &Who) {
    match node.get("items").map(|n| &n.value) {
        Some(Value::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                load_object(ctx, item, &base.key("items").index(i), out);
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => {
            let pos = node.get("items").map_or(node.pos, |n| n.pos);
            let msg = format!("expected `items` to be a list of objects, found {}", other.describe());
            out.diagnostics.push(ctx.diag(Severity::Error, codes::BAD_OBJECT, pos, Some(who), &base.key("items"), msg));
        }
    }
}

struct DecodedObject {
    value: Option<(crate::resource::ObjectMeta, Spec)>,
    errors: Vec<DecodeError>,
}

fn decode_as<S: DeserializeOwned + Default>(node: &Node, base: &FieldPath, wrap: fn(S) -> Spec) -> DecodedObject {
    let d = decode::<Object<S>>(node, base);
    DecodedObject { value: d.value.map(|o| (o.metadata, wrap(o.spec.unwrap_or_default()))), errors: d.errors }
}

fn decode_diag(ctx: &FileCtx<'_>, who: &Who, e: &DecodeError) -> Diagnostic {
    let code = if e.unknown_field { codes::UNKNOWN_FIELD } else { codes::BAD_VALUE };
    ctx.diag(Severity::Error, code, e.pos, Some(who), &e.path, e.message.clone())
}

fn finding_diag(ctx: &FileCtx<'_>, who: &Who, node: &Node, base: &FieldPath, f: Finding) -> Diagnostic {
    let pos = if f.at_key { node.locate_key(&f.path) } else { node.locate(&f.path) };
    ctx.diag(f.severity, f.code, pos, Some(who), &join(base, &f.path), f.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What loading found, without positions: resources and core objects with their
    /// origins' positions cleared, and each finding as (severity, code, path, message).
    type Unplaced = (Vec<Resource>, Vec<Resource>, Vec<CoreObject>, Vec<(Severity, &'static str, String, String)>);

    fn unplaced(mut r: LoadReport) -> Unplaced {
        for x in r.resources.iter_mut().chain(r.rejected.iter_mut()) {
            x.origin.pos = Pos::default();
        }
        for c in &mut r.core {
            c.origin.pos = Pos::default();
        }
        let findings = r.diagnostics.into_iter().map(|d| (d.severity, d.code, d.path, d.message)).collect();
        (r.resources, r.rejected, r.core, findings)
    }

    /// An object the Kubernetes API served (JSON, already decoded) loads as its text
    /// does: the same resources, core objects and findings on the same fields; only the
    /// positions are unknown.
    #[test]
    fn decoded_json_loads_as_its_text_does() {
        let objects = [
            // Valid, with integers, a float and nested lists.
            r#"{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "r", "namespace": "shop"},
                "spec": {"hosts": ["reviews"], "http": [{"timeout": "2s",
                  "retries": {"attempts": 3, "perTryTimeout": "1s"},
                  "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 12.5}}},
                  "route": [{"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 90},
                            {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10}]}]}}"#,
            // A validation error (a zero timeout).
            r#"{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "bad", "namespace": "shop"},
                "spec": {"hosts": ["ratings"], "http": [{"timeout": "0s", "route": [
                  {"destination": {"host": "ratings"}}]}]}}"#,
            // A decode error (an unknown field) and a validation error (a negative limit).
            r#"{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "d", "namespace": "shop"},
                "spec": {"host": "reviews", "bogus": 1, "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": -1}}}}}"#,
            // A Kubernetes Service (a core object).
            r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "shop"},
                "spec": {"selector": {"app": "reviews"}, "clusterIP": "10.96.0.7",
                         "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}}"#,
        ];
        for text in objects {
            let from_text = unplaced(load_str("k", text));
            let from_json = unplaced(load_json("k", serde_json::from_str(text).unwrap()));
            assert_eq!(from_json, from_text, "{text}");
        }
        // The cases above do exercise findings and each kind of output.
        let all: Vec<Unplaced> = objects.iter().map(|t| unplaced(load_str("k", t))).collect();
        assert_eq!(all[0].0.len(), 1);
        assert!(!all[1].3.is_empty() && !all[2].3.is_empty(), "findings expected: {:?} {:?}", all[1].3, all[2].3);
        assert_eq!(all[3].2.len(), 1);
        // Without a position, a finding reads `source: error[CODE] Kind ns/name: path: ...`.
        let shown = load_json("kubernetes:VirtualService shop/bad", serde_json::from_str(objects[1]).unwrap());
        let line = shown.diagnostics[0].to_string();
        assert!(line.starts_with("kubernetes:VirtualService shop/bad: error["), "{line}");
        assert!(line.contains("VirtualService shop/bad: spec.http[0].timeout:"), "{line}");
    }
}
