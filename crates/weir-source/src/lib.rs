//! Configuration sources. Today: files and directories (watched for changes) and stdin. Each source produces a
//! [`weir_model::LoadReport`]; resources carry their origin (file:line:column).
//!
//! Start with [`load_paths`].

mod files;
mod relevant;
mod watch;

pub use files::{
    CheckReport, SourceError, SourceText, check_paths, collect_files, load_paths, load_paths_with_text, load_stdin,
};
pub use relevant::load_relevant;
pub use watch::{WatchHandle, watch};
