//! Telemetry: one record per request feeds the Istio metrics and the access log.

pub mod access_log;
pub mod flags;
pub mod metrics;

pub use access_log::{AccessLog, Entry, Format};
pub use flags::Flags;
pub use metrics::{DestLabels, Metrics, Observation, SourceLabels, canonical};
