//! `weir analyze PATH...`: istioctl's analysis of networking configuration, offline,
//! with every finding placed at its file, line, column and field. Validation findings
//! come first-hand from the loader (IST0106 errors, IST0133 warnings, IST0130/IST0131
//! reachability, IST0002 deprecations); cross-resource findings from
//! `weir_compile::analyze`, over the Istio resources and the Kubernetes Services,
//! Pods, Namespaces and Secrets in the same files, plus the ingress gateway Pod and
//! Service istioctl assumes offline.
//!
//! Exit codes as istioctl's: 0 when no finding reaches `--failure-threshold`, 79 when
//! one does, 65 when some input could not be read or parsed (and nothing reached the
//! threshold), 64 for a usage error.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use serde::Serialize;
use weir_compile::analyze::{self, Inputs};
use weir_model::diag::codes;
use weir_model::node::{Node, documents};
use weir_model::place::{Unplaced, place_all};
use weir_model::{Diagnostic, FieldPath, Severity};

/// Usage error (sysexits `EX_USAGE`).
pub(crate) const EXIT_USAGE: u8 = 64;
/// Unreadable or unparsable input (sysexits `EX_DATAERR`).
const EXIT_INPUT: u8 = 65;
/// istioctl's "analyzers found issues".
const EXIT_FOUND: u8 = 79;

/// Most findings shown for one resource; the rest are counted in one line.
const PER_RESOURCE_CAP: usize = 50;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Files or directories (searched recursively for *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format: `log` (istioctl's default; `text` is the same), `json` or `yaml`.
    #[arg(short = 'o', long = "output", default_value = "log")]
    format: String,
    /// The level at which findings make the exit code 79: Info, Warning or Error.
    #[arg(long, default_value = "Error")]
    failure_threshold: String,
    /// The lowest level shown: Info, Warning or Error.
    #[arg(long, default_value = "Info")]
    output_threshold: String,
    /// Suppress a code on matching resources: `CODE=Kind ns/name` (or istioctl's
    /// `Kind name.ns`); `*` matches any characters. Repeatable.
    #[arg(short = 'S', long = "suppress", value_name = "CODE=RESOURCE")]
    suppress: Vec<String>,
    /// Report only resources in this namespace (default: every namespace).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Every namespace (the default; accepted for istioctl compatibility).
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespace")]
    all_namespaces: bool,
    /// A MeshConfig (or the `istio` ConfigMap) to analyze with, as istioctl's flag.
    #[arg(long = "meshConfigFile", visible_alias = "mesh-config-file", value_name = "FILE")]
    mesh_config: Option<PathBuf>,
    /// Also report what weir's proxy would not do with this configuration, as `weir
    /// run` logs it: servers, TLS modes and policies it does not serve or execute yet
    /// (WEIR101). Off by default, so that the codes are exactly istioctl's.
    #[arg(long)]
    proxy_notes: bool,
    /// Analyze what the Kubernetes API server holds (with the files given, if any),
    /// as `weir run --kubernetes` would read it.
    #[arg(long)]
    kubernetes: bool,
    /// The kubeconfig file (with --kubernetes).
    #[arg(long, value_name = "PATH", requires = "kubernetes")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (with --kubernetes).
    #[arg(long, value_name = "NAME", requires = "kubernetes")]
    context: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Log,
    Json,
    Yaml,
}

fn level(s: &str) -> Option<Severity> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Some(Severity::Error),
        "warning" | "warn" => Some(Severity::Warning),
        "info" => Some(Severity::Info),
        _ => None,
    }
}

/// istioctl's level names.
fn level_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    }
}

/// How severe, for thresholds (Error is the most).
fn rank(s: Severity) -> u8 {
    match s {
        Severity::Error => 3,
        Severity::Warning => 2,
        Severity::Info => 1,
    }
}

#[allow(clippy::print_stderr)]
fn usage(msg: &str) -> ExitCode {
    eprintln!("weir analyze: {msg}");
    ExitCode::from(EXIT_USAGE)
}

/// One finding as `-o json` / `-o yaml` print it: istioctl's fields (`code`,
/// `level`, `message`, `origin`, `reference`, `documentationUrl`) plus weir's exact
/// place (`resource`, `file`, `line`, `column`, `path`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Out<'a> {
    code: &'a str,
    level: &'static str,
    message: &'a str,
    resource: String,
    origin: String,
    file: &'a str,
    line: u32,
    column: u32,
    path: &'a str,
    reference: String,
    documentation_url: String,
}

fn resource_name(d: &Diagnostic) -> String {
    match (&d.kind, &d.namespace, &d.name) {
        (Some(k), Some(ns), Some(n)) => format!("{k} {ns}/{n}"),
        (Some(k), None, Some(n)) => format!("{k} {n}"),
        (Some(k), _, None) => k.clone(),
        _ => String::new(),
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// `defaultConfig.proxyMetadata` turns on DNS capture with address auto-allocation.
fn dns_auto_allocate(text: &str) -> bool {
    let check = |root: &Node| {
        let meta = root.get("defaultConfig").and_then(|c| c.get("proxyMetadata"));
        let is_true = |k: &str| meta.and_then(|m| m.get(k)).and_then(Node::as_str) == Some("true");
        is_true("ISTIO_META_DNS_CAPTURE")
            && (is_true("ISTIO_META_DNS_AUTO_ALLOCATE") || is_true("PILOT_ENABLE_IP_AUTOALLOCATE"))
    };
    documents(text).filter_map(|d| d.root.ok()).any(|root| {
        // The `istio` ConfigMap carries the MeshConfig as text under `data.mesh`.
        match root.get("data").and_then(|d| d.get("mesh")).and_then(Node::as_str) {
            Some(inner) => documents(inner).filter_map(|d| d.root.ok()).any(|r| check(&r)),
            None => check(&root),
        }
    })
}

pub(crate) fn run(args: &Args) -> ExitCode {
    if args.paths.is_empty() && !args.kubernetes {
        return usage("give the files or directories to analyze (`-` reads stdin)");
    }
    let format = match args.format.to_ascii_lowercase().as_str() {
        "log" | "text" | "human" => Format::Log,
        "json" => Format::Json,
        "yaml" => Format::Yaml,
        other => return usage(&format!("{other:?} is not an output format; expected log, json or yaml")),
    };
    let Some(failure) = level(&args.failure_threshold) else {
        return usage(&format!("--failure-threshold {:?}: expected Info, Warning or Error", args.failure_threshold));
    };
    let Some(output) = level(&args.output_threshold) else {
        return usage(&format!("--output-threshold {:?}: expected Info, Warning or Error", args.output_threshold));
    };
    let mut suppressions = Vec::new();
    for s in &args.suppress {
        let Some((code, resource)) = s.split_once('=') else {
            return usage(&format!(
                "--suppress {s:?}: expected CODE=RESOURCE, e.g. \"IST0101=VirtualService default/reviews\""
            ));
        };
        if !analyze::msg::ALL.contains(&code) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "Warning: Supplied message code '{code}' is an unknown message code and will not have any effect."
                );
            }
        }
        suppressions.push((code.to_string(), resource.to_string()));
    }
    let dns = match &args.mesh_config {
        None => false,
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => dns_auto_allocate(&text),
            Err(e) => return usage(&format!("cannot read --meshConfigFile {}: {e}", p.display())),
        },
    };

    let (mut report, texts, io_errors) = weir_source::load_paths_with_text(&args.paths);
    if args.kubernetes {
        match crate::explain::cluster_snapshot(args.kubeconfig.clone(), args.context.clone()) {
            Ok(cluster) => report.extend(cluster),
            Err(e) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("weir analyze: cannot read from Kubernetes: {e}");
                }
                return ExitCode::from(EXIT_INPUT);
            }
        }
    }
    let mut parse_errors = io_errors.len();
    let mut diags: Vec<Diagnostic> = Vec::new();
    #[allow(clippy::print_stderr)]
    for e in &io_errors {
        eprintln!("weir: cannot read {e}");
    }
    for mut d in report.diagnostics {
        match d.code {
            codes::SKIPPED_KIND => continue,
            codes::SYNTAX => {
                parse_errors += 1;
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{d}");
                }
                continue;
            }
            codes::UNKNOWN_FIELD | codes::BAD_VALUE | codes::BAD_OBJECT => {
                d.code = codes::SCHEMA_ERROR;
                d.message = format!("Schema validation error: {}", d.message);
            }
            codes::SCHEMA_ERROR => d.message = format!("Schema validation error: {}", d.message),
            codes::SCHEMA_WARNING => d.message = format!("Schema validation warning: {}", d.message),
            _ => {}
        }
        diags.push(d);
    }

    let rejected: std::collections::HashSet<weir_model::ResourceKey> =
        report.rejected.iter().map(|r| r.key()).collect();
    let mut resources = report.resources;
    resources.extend(report.rejected);
    let mut core = report.core;
    core.extend(analyze::default_ingress());
    let inputs = Inputs { resources, core, dns_auto_allocate: dns };
    let analysis = analyze::analyze(&inputs);
    let mut found: Vec<(Diagnostic, FieldPath)> = analysis
        .findings
        .into_iter()
        .map(|f| {
            let path = f.path.clone();
            (f.into_diagnostic(), path)
        })
        .collect();
    if args.proxy_notes {
        // What `weir run` would log for this configuration, as a gateway
        // (`istio=ingressgateway` in istio-system) with the mesh listener.
        let instance = weir_compile::Instance { mesh: true, ..weir_compile::Instance::default() };
        let valid: Vec<_> = inputs.resources.iter().filter(|r| !rejected.contains(&r.key())).cloned().collect();
        let compiled = weir_compile::compile(valid, &instance, 1);
        found.extend(
            compiled
                .diagnostics
                .into_iter()
                .filter(|n| n.diagnostic.code != codes::REFERENCE_NOT_FOUND)
                .map(|n| (n.diagnostic, n.field)),
        );
    }
    diags.extend(placed(found, &texts));

    let keep = |d: &Diagnostic| {
        let resource = resource_name(d);
        let flipped = match (&d.kind, &d.namespace, &d.name) {
            (Some(k), Some(ns), Some(n)) => format!("{k} {n}.{ns}"),
            _ => resource.clone(),
        };
        let suppressed =
            suppressions.iter().any(|(c, pat)| c == d.code && (glob(pat, &resource) || glob(pat, &flipped)));
        let in_namespace = args.namespace.as_ref().is_none_or(|ns| d.namespace.as_deref().is_none_or(|dns| dns == ns));
        !suppressed && in_namespace
    };
    diags.retain(keep);
    let failed = diags.iter().any(|d| rank(d.severity) >= rank(failure));
    let shown: Vec<Diagnostic> = weir_model::diag::cap_per_resource(
        diags.into_iter().filter(|d| rank(d.severity) >= rank(output)).collect(),
        PER_RESOURCE_CAP,
    );

    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Log => shown.iter().try_for_each(|d| writeln!(out, "{}", log_line(d))),
        Format::Json => serde_json::to_writer_pretty(&mut out, &structured(&shown))
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Yaml => match serde_saphyr::to_string(&structured(&shown)) {
            Ok(s) => out.write_all(if shown.is_empty() { b"[]\n" } else { s.as_bytes() }),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        },
    };
    drop(out);
    #[allow(clippy::print_stderr)]
    for s in &analysis.skipped {
        eprintln!("Info: {}.", s.describe());
    }
    if shown.is_empty() && parse_errors == 0 {
        let names: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        #[allow(clippy::print_stderr)]
        {
            eprintln!("\u{2714} No validation issues found when analyzing {}.", names.join(", "));
        }
    }
    if written.is_err() {
        ExitCode::from(EXIT_INPUT)
    } else if failed {
        ExitCode::from(EXIT_FOUND)
    } else if parse_errors > 0 {
        ExitCode::from(EXIT_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// Findings as diagnostics at their fields' positions.
fn placed(mut items: Vec<(Diagnostic, FieldPath)>, texts: &[weir_source::SourceText]) -> Vec<Diagnostic> {
    let by_name: HashMap<&str, &str> = texts.iter().map(|t| (t.name.as_str(), t.text.as_str())).collect();
    let mut unplaced: Vec<Unplaced<'_>> = items.iter_mut().map(|(d, p)| Unplaced { diagnostic: d, path: p }).collect();
    place_all(&mut unplaced, |file| by_name.get(file).map(|t| t.to_string()));
    items.into_iter().map(|(d, _)| d).collect()
}

fn log_line(d: &Diagnostic) -> String {
    let mut origin = resource_name(d);
    if !d.file.is_empty() && d.line > 0 {
        origin.push_str(&format!(" {}:{}:{}", d.file, d.line, d.column));
    }
    if !d.path.is_empty() {
        origin.push_str(&format!(" {}", d.path));
    }
    let mut s = format!("{} [{}] ({origin}) {}", level_name(d.severity), d.code, d.message);
    if let Some(src) = &d.source_line {
        let gutter = d.line.to_string();
        s.push_str(&format!("\n {gutter} | {src}"));
        if d.column > 0 && !src.starts_with('…') {
            let pad: String =
                src.chars().take(d.column as usize - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            s.push_str(&format!("\n {} | {pad}^", " ".repeat(gutter.len())));
        }
    }
    s
}

fn structured(diags: &[Diagnostic]) -> Vec<Out<'_>> {
    diags
        .iter()
        .map(|d| {
            let resource = resource_name(d);
            Out {
                code: d.code,
                level: level_name(d.severity),
                message: &d.message,
                origin: resource.clone(),
                resource,
                file: &d.file,
                line: d.line,
                column: d.column,
                path: &d.path,
                reference: format!("{}:{}", d.file, d.line),
                documentation_url: if d.code.starts_with("IST") {
                    format!("https://istio.io/latest/docs/reference/config/analysis/{}/", d.code.to_ascii_lowercase())
                } else {
                    String::new()
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_istioctl_suppressions_do() {
        assert!(glob("VirtualService default/*", "VirtualService default/reviews"));
        assert!(glob("*", "anything"));
        assert!(glob("Gateway *.testing", "Gateway gw.testing"));
        assert!(!glob("Gateway *.testing", "Gateway gw.prod"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "ac"));
    }

    #[test]
    fn mesh_config_turns_on_auto_allocation_only_with_capture() {
        let yes = "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n";
        assert!(dns_auto_allocate(yes));
        assert!(!dns_auto_allocate("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"));
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  mesh: |\n{}",
            yes.lines().map(|l| format!("    {l}\n")).collect::<String>()
        );
        assert!(dns_auto_allocate(&cm));
    }
}
