//! The `weir` binary: argument parsing, rendering and exit codes. Logic lives in the
//! library crates.

mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// weir: an Istio-compatible traffic manager.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Istio networking resources offline: exit 0 when there are no errors
    /// (warnings allowed), 1 when there are errors, 2 on usage or I/O failure.
    Validate(validate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
    }
}
