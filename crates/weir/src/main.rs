//! The `weir` binary: argument parsing, rendering and exit codes. Logic lives in the
//! library crates.

mod analyze;
mod demo;
mod demo_tls;
mod diff;
mod explain;
mod memory;
mod new;
mod run;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: memory::Allocator = memory::Allocator;

/// weir: an Istio-compatible traffic manager.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve traffic by Istio configuration (gateway and mesh roles); reload on change.
    Run(run::Args),
    /// Run the bookinfo demo: sample backends plus weir serving examples/bookinfo.
    Demo(demo::Args),
    /// Check Istio networking resources offline: exit 0 when there are no errors
    /// (warnings allowed), 1 when there are errors, 2 on usage or I/O failure.
    Validate(validate::Args),
    /// Compare two configurations as compiled: listeners, hosts, routes and clusters
    /// that change, and how traffic shares shift. Exit 0 when equal, 1 when they
    /// differ, 2 when one cannot be read or does not validate.
    Diff(diff::Args),
    /// Write one of the seed patterns as Istio YAML from flags (canary, header-route,
    /// circuit-breaker, retry, mirror, fault, gateway); the output always validates.
    New(new::Args),
    /// Analyze configuration as `istioctl analyze` does, offline: cross-resource
    /// checks with Istio's IST codes, placed at file:line:column and field. Exit 0
    /// when clean, 79 when findings reach --failure-threshold, 64 on usage errors,
    /// 65 when input cannot be read or parsed.
    Analyze(analyze::Args),
    /// Trace what the proxy would do with one request: listener, virtual host, each
    /// route tried and why it did not match, destinations, policies, outcome.
    Explain(explain::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `analyze` follows istioctl's exit codes: a usage error is 64.
            let analyzing = std::env::args().nth(1).as_deref() == Some("analyze");
            let code = e.exit_code();
            let _ = e.print();
            return match (analyzing, code) {
                (true, c) if c != 0 => ExitCode::from(analyze::EXIT_USAGE),
                _ => ExitCode::from(u8::try_from(code).unwrap_or(2)),
            };
        }
    };
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Validate(args) => validate::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::New(args) => new::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Analyze(args) => analyze::run(&args),
    }
}
