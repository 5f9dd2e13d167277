//! `ServiceEntry` (spec §5) and `WorkloadEntry` (spec §6).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::{Labels, Port, WorkloadSelector};

/// `ServiceEntry.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEntry {
    /// Host names.
    pub hosts: Vec<String>,
    /// VIPs / CIDRs.
    pub addresses: Vec<String>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Inside or outside the mesh.
    pub location: Option<Location>,
    /// How endpoints are found.
    pub resolution: Option<Resolution>,
    /// Inline endpoints.
    pub endpoints: Vec<WorkloadEntry>,
    /// Select WorkloadEntries (and pods) by label.
    pub workload_selector: Option<WorkloadSelector>,
    /// Namespaces that can see it.
    pub export_to: Vec<String>,
    /// Accepted upstream SANs.
    pub subject_alt_names: Vec<String>,
}

impl ServiceEntry {
    /// Resolution in effect (NONE when unset).
    pub fn effective_resolution(&self) -> Resolution {
        self.resolution.unwrap_or(Resolution::None)
    }

    /// Location in effect (MESH_EXTERNAL when unset).
    pub fn effective_location(&self) -> Location {
        self.location.unwrap_or(Location::MeshExternal)
    }
}

/// `ServiceEntry.Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh.
    MeshExternal,
    /// Part of the mesh.
    MeshInternal,
}

/// `ServiceEntry.Resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the original destination.
    None,
    /// Endpoint IPs.
    Static,
    /// Strict DNS.
    Dns,
    /// Logical DNS.
    DnsRoundRobin,
    /// Per-request DNS for wildcard hosts.
    DynamicDns,
}

/// `WorkloadEntry.spec` (and a ServiceEntry endpoint).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadEntry {
    /// IP, FQDN or unix socket.
    pub address: String,
    /// Service port name -> endpoint port.
    pub ports: BTreeMap<String, u32>,
    /// Endpoint labels.
    pub labels: Labels,
    /// Network id.
    pub network: String,
    /// `region/zone/subzone`.
    pub locality: String,
    /// LB weight (0 = 1).
    pub weight: u32,
    /// Service account.
    pub service_account: String,
}
