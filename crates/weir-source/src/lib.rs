//! Configuration sources. Today: files, directories and stdin. Each source produces a
//! [`weir_model::LoadReport`]; resources carry their origin (file:line:column).
//!
//! Start with [`load_paths`].

mod files;

pub use files::{SourceError, collect_files, load_paths, load_stdin};
