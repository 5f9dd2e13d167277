//! `weir diff OLD NEW`: compiles both configurations for the same instance and says
//! what changes (listeners, hosts, routes, clusters) and how each route's traffic
//! shares shift. Exit codes as diff(1): 0 same, 1 different, 2 trouble.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};
use weir_compile::Instance;
use weir_table::RouteTable;
use weir_table::diff::{Change, Shares, TableDiff};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per change, shares as `reviews v1 90% → 75%`.
    Text,
    /// The whole diff as JSON.
    Json,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The configuration before (a file or directory).
    old: PathBuf,
    /// The configuration after (a file or directory).
    new: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    format: Format,
    /// The instance's workload labels (which Gateways it serves), as for `weir run`.
    #[arg(long, value_name = "K=V,...", default_value = "istio=ingressgateway", value_parser = crate::run::parse_labels)]
    labels: BTreeMap<String, String>,
    /// The instance's namespace (short names of the mesh listener), as for `weir run`.
    #[arg(long, default_value = "default")]
    namespace: String,
}

/// Loads and compiles one side; `Err` says why it cannot be compared.
fn table(path: &PathBuf, instance: &Instance) -> Result<RouteTable, String> {
    let (report, io) = weir_source::load_paths(std::slice::from_ref(path));
    if let Some(e) = io.first() {
        return Err(format!("cannot read {e}"));
    }
    if report.has_errors() {
        let n = report.diagnostics.iter().filter(|d| d.severity == weir_model::Severity::Error).count();
        return Err(format!(
            "{} does not validate ({n} errors; see `weir validate {}`)",
            path.display(),
            path.display()
        ));
    }
    Ok(weir_compile::compile_with(report.resources, &report.core, instance, 1).table)
}

fn pct(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 { format!("{r:.0}%") } else { format!("{r:.1}%") }
}

/// `reviews v1 90% → 75%, reviews v3 10% → 25%` (destinations that appear or go away
/// show 0%).
fn shift(before: &Shares, after: &Shares) -> String {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (before.get(k).copied().unwrap_or(0.0), after.get(k).copied().unwrap_or(0.0));
            ((a - b).abs() > f64::EPSILON).then(|| format!("{k} {} → {}", pct(a), pct(b)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn word(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
    }
}

fn text(out: &mut impl Write, d: &TableDiff) -> std::io::Result<()> {
    for (name, c) in &d.listeners {
        writeln!(out, "listener {name}: {}", word(*c))?;
    }
    for i in &d.items {
        match &i.route {
            None if i.change == Change::Changed => writeln!(out, "{} {}: routes reordered", i.listener, i.host)?,
            None => writeln!(out, "{} {}: host {}", i.listener, i.host, word(i.change))?,
            Some(r) => {
                write!(out, "{} {}: route {r} {}", i.listener, i.host, word(i.change))?;
                match &i.shares {
                    Some((a, b)) => writeln!(out, ": {}", shift(a, b))?,
                    None => writeln!(out)?,
                }
            }
        }
    }
    for (name, c) in &d.clusters {
        writeln!(out, "cluster {name}: {}", word(*c))?;
    }
    let n = d.listeners.len() + d.items.len() + d.clusters.len();
    if n == 0 { writeln!(out, "no change") } else { writeln!(out, "{n} change{}", if n == 1 { "" } else { "s" }) }
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let instance =
        Instance { labels: args.labels.clone(), namespace: args.namespace.clone(), mesh: true, ..Instance::default() };
    let (old, new) = match (table(&args.old, &instance), table(&args.new, &instance)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("weir diff: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let d = weir_table::diff::diff(&old, &new);
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Text => text(&mut out, &d),
        Format::Json => {
            let mut v = serde_json::to_value(&d).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert("changed".into(), serde_json::Value::Bool(!d.is_empty()));
            }
            serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::other).and_then(|()| writeln!(out))
        }
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    if d.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
