//! Configuration sources. Each produces a [`weir_model::LoadReport`]; resources carry
//! their origin (file:line:column). Today: files and directories (watched for changes),
//! stdin, and fixed resources.
//!
//! Start with [`Source`] (what the proxy's reload loop reads), then [`load_paths`].

mod files;
mod kubernetes;
mod relevant;
mod source;
mod watch;

pub use files::{
    CheckReport, SourceError, SourceText, check_paths, collect_files, load_paths, load_paths_with_text, load_stdin,
};
pub use kubernetes::{KubeOptions, KubernetesSource};
pub use relevant::load_relevant;
pub use source::{FileSource, FixedSource, Snapshot, Source, Subscription};
pub use watch::{WatchHandle, watch};
