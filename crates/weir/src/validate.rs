//! `weir validate PATH...`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};
use weir_model::{Counts, Diagnostic};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// `file:line:col: severity[CODE] Kind ns/name: path: message` with the source line.
    Human,
    /// A JSON array of diagnostics.
    Json,
    /// A YAML list of diagnostics.
    Yaml,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Files or directories (searched recursively for *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "human")]
    format: Format,
    /// Hide info diagnostics (skipped kinds) in human output.
    #[arg(short, long)]
    quiet: bool,
}

/// Most findings shown for one resource; the rest are counted in one line.
const PER_RESOURCE_CAP: usize = 50;

pub(crate) fn run(args: &Args) -> ExitCode {
    let (report, io_errors) = weir_source::check_paths(&args.paths);
    let counts = Counts::of(&report.diagnostics);
    let shown = weir_model::diag::cap_per_resource(report.diagnostics, PER_RESOURCE_CAP);
    // Read failures first, so the summary is the last thing a reader sees.
    #[allow(clippy::print_stderr)]
    {
        for e in &io_errors {
            eprintln!("weir: cannot read {e}");
        }
        if io_errors.is_empty() && report.valid == 0 && shown.is_empty() {
            eprintln!("weir: warning: no resources found (looked for *.yaml, *.yml and *.json files)");
        }
    }
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Human => human(&mut out, &shown, counts, report.valid, args.quiet),
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &shown).map_err(std::io::Error::other).and_then(|()| writeln!(out))
        }
        Format::Yaml => match serde_saphyr::to_string(&shown) {
            Ok(s) => out.write_all(if shown.is_empty() { b"[]\n" } else { s.as_bytes() }),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        },
    };
    drop(out);
    if written.is_err() || !io_errors.is_empty() {
        ExitCode::from(2)
    } else if counts.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn human(
    out: &mut impl Write,
    diags: &[Diagnostic],
    counts: Counts,
    resources: usize,
    quiet: bool,
) -> std::io::Result<()> {
    for d in diags {
        if quiet && d.severity == weir_model::Severity::Info {
            continue;
        }
        writeln!(out, "{d}")?;
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    writeln!(
        out,
        "{}, {} ({} valid)",
        plural(counts.errors, "error"),
        plural(counts.warnings, "warning"),
        plural(resources, "resource"),
    )
}
