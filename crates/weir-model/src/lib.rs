//! weir's model of the Istio networking API: the resources exactly as users write them.
//!
//! Where to begin reading:
//! - [`load::load_str`] turns text (YAML, multi-document YAML, JSON, `kind: List`) into
//!   [`Resource`]s and [`Diagnostic`]s. It never panics and never stops at the first
//!   bad document.
//! - [`node`] keeps every parsed value with its line and column; [`de`] decodes that tree
//!   into the typed [`types`] strictly (unknown fields are errors, with the nearest valid
//!   name), and [`validate`] applies Istio's per-resource rules, reporting field paths
//!   that the loader places back in the file.
//!
//! This crate does no I/O beyond the text it is given, and knows nothing of sockets.

pub mod de;
pub mod diag;
pub mod duration;
mod fast_yaml;
pub mod host;
pub mod k8s;
pub mod load;
pub mod node;
pub mod path;
pub mod place;
pub mod re2;
pub mod resource;
pub mod types;
pub mod validate;

pub use diag::{Counts, Diagnostic, Severity};
pub use duration::Duration;
pub use load::{LoadReport, check_duplicate_keys, check_duplicates, load_json, load_str};
pub use path::FieldPath;
pub use resource::{Kind, ObjectMeta, Origin, Resource, ResourceKey, Spec};
