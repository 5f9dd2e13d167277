//! The `spec` of each Istio networking kind, field for field as the Istio API defines
//! it (all of `v1alpha3`, `v1beta1` and `v1` share one schema). Field names follow
//! the YAML (camelCase) through serde; proto3 scalars default to zero, wrapper types and
//! messages are `Option` so that "absent" stays visible where defaults depend on it.

pub mod common;
pub mod destination_rule;
pub mod gateway;
pub mod service_entry;
pub mod sidecar;
pub mod virtual_service;

pub use common::*;
pub use destination_rule::*;
pub use gateway::*;
pub use service_entry::*;
pub use sidecar::*;
pub use virtual_service::*;
