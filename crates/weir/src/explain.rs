//! `weir explain`: what the proxy would do with one request, offline. The
//! configuration is compiled for the instance the request meets (a Gateway's selector
//! labels, or the mesh with `--source-labels`), and the trace comes from
//! `weir_table::explain`, which runs the proxy's own route lookup on that table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use weir_compile::Instance;
use weir_model::Spec;
use weir_table::explain::Trace;
use weir_table::{ListenerRole, RequestView};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For reading.
    Text,
    /// The trace as JSON.
    Json,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Configuration files or directories.
    #[arg(required_unless_present = "kubernetes", value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The request's Host / `:authority` (a port may follow).
    #[arg(long)]
    host: String,
    /// The request's path, with its query.
    #[arg(long, default_value = "/")]
    path: String,
    /// A request header `name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "K:V")]
    headers: Vec<String>,
    /// The method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The port: the Gateway server's port, or on the mesh the service port.
    #[arg(long)]
    port: Option<u16>,
    /// Through this Gateway (`ns/name`): the instance has its selector's labels.
    #[arg(long, value_name = "NS/NAME", conflicts_with = "mesh")]
    gateway: Option<String>,
    /// Through the mesh listener (the default).
    #[arg(long)]
    mesh: bool,
    /// The client's workload labels (match `sourceLabels`), on the mesh.
    #[arg(long, value_name = "K=V,...", value_parser = crate::run::parse_labels)]
    source_labels: Option<BTreeMap<String, String>>,
    /// The client's namespace (short names, `sourceNamespace`); a Gateway's own by default.
    #[arg(long)]
    namespace: Option<String>,
    /// `http` or `https`.
    #[arg(long, default_value = "http")]
    scheme: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    format: Format,
    /// Read every document. By default only those the request can meet are read (the
    /// VirtualServices, DestinationRules and ServiceEntries that name a host it can
    /// reach, and every document of other kinds), and everything when that finds no
    /// route or a problem; the answer is the same, sooner on a large mesh.
    #[arg(long)]
    read_all: bool,
    /// Explain over what the Kubernetes API server holds, as `weir run --kubernetes`
    /// would read it.
    #[arg(long)]
    kubernetes: bool,
    /// The kubeconfig file (with --kubernetes).
    #[arg(long, value_name = "PATH", requires = "kubernetes")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (with --kubernetes).
    #[arg(long, value_name = "NAME", requires = "kubernetes")]
    context: Option<String>,
}

/// One full read of the cluster, through the source `weir run --kubernetes` uses.
pub(crate) fn cluster_snapshot(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
) -> Result<weir_model::LoadReport, String> {
    use weir_source::Source;
    let options = weir_source::KubeOptions { kubeconfig, context, ..weir_source::KubeOptions::default() };
    let source = weir_source::KubernetesSource::start(options, std::time::Duration::from_millis(10))?;
    Ok(source.snapshot().report)
}

#[allow(clippy::print_stderr)]
fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("weir explain: {msg}");
    ExitCode::from(code)
}

pub(crate) fn run(args: &Args) -> ExitCode {
    if args.kubernetes {
        let report = match cluster_snapshot(args.kubeconfig.clone(), args.context.clone()) {
            Ok(r) => r,
            Err(e) => return fail(2, &format!("cannot read from Kubernetes: {e}")),
        };
        // An object that does not validate is left out, as the proxy leaves it out.
        let report = weir_model::LoadReport { diagnostics: Vec::new(), ..report };
        return match trace(args, report) {
            Ok(t) => print(args, &t),
            Err(code) => code,
        };
    }
    // First only the documents this request can meet (fast on a large mesh); the
    // whole configuration when that read finds a problem, or no route: an answer
    // about what is absent needs everything.
    if !args.read_all {
        let (report, io) = weir_source::load_relevant(&args.paths, &[args.host.as_str()]);
        if io.is_empty() && !report.has_errors() {
            match trace(args, report) {
                Ok(t) if t.route.is_some() => return print(args, &t),
                Ok(_) => {}
                // Bad flags, or a gateway that does not exist: Gateways are always read.
                Err(code) => return code,
            }
        }
    }
    let (report, io) = weir_source::load_paths(&args.paths);
    if let Some(e) = io.first() {
        return fail(2, &format!("cannot read {e}"));
    }
    if report.has_errors() {
        return fail(65, "the configuration does not validate (see `weir validate`)");
    }
    match trace(args, report) {
        Ok(t) => print(args, &t),
        Err(code) => code,
    }
}

/// The trace of the request `args` describe, over `report`'s resources.
fn trace(args: &Args, report: weir_model::LoadReport) -> Result<Trace, ExitCode> {
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else { return Err(fail(64, &format!("-H {h:?}: expected name:value"))) };
        let (Ok(k), Ok(v)) = (HeaderName::try_from(k.trim().to_ascii_lowercase()), HeaderValue::try_from(v.trim()))
        else {
            return Err(fail(64, &format!("-H {h:?}: not a valid header")));
        };
        headers.append(k, v);
    }
    let Ok(method) = Method::try_from(args.method.as_str()) else { return Err(fail(64, "--method: not a method")) };
    let (instance, gateway) = match &args.gateway {
        Some(g) => {
            let (ns, name) = g.split_once('/').unwrap_or(("default", g));
            let found = report.resources.iter().find_map(|r| match &r.spec {
                Spec::Gateway(gw) if r.meta.name == name && r.meta.namespace == ns => Some(gw.selector.clone()),
                _ => None,
            });
            let Some(selector) = found else {
                return Err(fail(2, &format!("no Gateway {ns}/{name} in the configuration")));
            };
            let namespace = args.namespace.clone().unwrap_or_else(|| ns.to_string());
            (Instance { labels: selector, namespace, mesh: false, ..Instance::default() }, Some(format!("{ns}/{name}")))
        }
        None => {
            let labels = args.source_labels.clone().unwrap_or_default();
            let namespace = args.namespace.clone().unwrap_or_else(|| "default".into());
            (Instance { labels, namespace, mesh: true, ..Instance::default() }, None)
        }
    };
    let table = weir_compile::compile_with(report.resources, &report.core, &instance, 1).table;
    let listener = match &gateway {
        Some(g) => {
            let mut candidates: Vec<_> = table
                .listeners
                .iter()
                .filter(|l| l.role == ListenerRole::Gateway && l.gateways.iter().any(|x| &**x == g))
                .filter(|l| args.port.is_none_or(|p| l.port == p))
                .collect();
            candidates.sort_by_key(|l| (l.port != 80, l.port));
            match candidates.first() {
                Some(l) => *l,
                None => {
                    return Err(fail(
                        2,
                        &format!(
                            "Gateway {g} serves no listener{}",
                            args.port.map(|p| format!(" on port {p}")).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        None => match table.mesh() {
            Some(l) => l,
            None => return Err(fail(2, "no mesh listener")),
        },
    };
    // As the proxy sees the request: the path normalized, the mesh port from the Host.
    let (raw_path, query) = match args.path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (args.path.clone(), None),
    };
    let path = weir_table::normalize::normalize_path(&raw_path).unwrap_or(raw_path);
    let path_and_query = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let authority = match (listener.role, args.port) {
        (ListenerRole::Mesh, Some(p)) if weir_table::hosts::port_of(&args.host).is_none() => {
            format!("{}:{p}", args.host)
        }
        _ => args.host.clone(),
    };
    let view = RequestView {
        method: &method,
        scheme: if args.scheme == "https" { "https" } else { "http" },
        authority: &authority,
        path: &path,
        path_and_query: &path_and_query,
        query: query.as_deref(),
        headers: &headers,
        port: if listener.role == ListenerRole::Gateway { listener.port } else { 0 },
    };
    Ok(weir_table::explain::explain(&table, listener, &view))
}

fn print(args: &Args, trace: &Trace) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, trace).map_err(std::io::Error::other).and_then(|()| writeln!(out))
        }
        Format::Text => text(&mut out, trace),
    };
    if written.is_err() { ExitCode::from(2) } else { ExitCode::SUCCESS }
}

fn text(out: &mut impl Write, t: &Trace) -> std::io::Result<()> {
    writeln!(out, "listener      {}", t.listener)?;
    match &t.virtual_host {
        Some(v) => writeln!(out, "virtual host  {v} (port {})", t.port)?,
        None => writeln!(out, "virtual host  none")?,
    }
    for r in &t.tried {
        let name = if r.name.is_empty() { String::new() } else { format!(" {}", r.name) };
        let origin = if r.origin.is_empty() { String::new() } else { format!(" (VirtualService {})", r.origin) };
        if r.matched {
            writeln!(out, "route {}{name}{origin}: matched", r.index)?;
        } else {
            writeln!(out, "route {}{name}{origin}: no match: {}", r.index, r.reason)?;
        }
    }
    if !t.destinations.is_empty() {
        writeln!(out, "destinations")?;
        for d in &t.destinations {
            let subset = if d.subset.is_empty() { String::new() } else { format!(" subset {}", d.subset) };
            let eps = if d.endpoints.is_empty() { "no endpoints".to_string() } else { d.endpoints.join(", ") };
            writeln!(out, "  {:>5.1}%  {}{subset} port {}  {}  [{eps}]", d.weight, d.host, d.port, d.cluster)?;
        }
    }
    if let Some(p) = t.policies.as_object() {
        let set: Vec<String> = p
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            // Header edits with nothing in them.
            .filter(|(_, v)| {
                v.as_object().is_none_or(|o| o.values().any(|x| x.as_array().is_none_or(|a| !a.is_empty())))
            })
            .map(|(k, v)| format!("  {k}: {v}"))
            .collect();
        if !set.is_empty() {
            writeln!(out, "policies")?;
            for s in set {
                writeln!(out, "{s}")?;
            }
        }
    }
    writeln!(out, "outcome       {}", t.outcome)
}
