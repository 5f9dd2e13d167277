//! `Sidecar` (spec §7).

use serde::Deserialize;

use super::common::{Destination, Port, WorkloadSelector};
use super::destination_rule::ConnectionPoolSettings;
use super::gateway::ServerTlsSettings;

/// `Sidecar.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sidecar {
    /// Workloads it applies to (absent = the namespace).
    pub workload_selector: Option<WorkloadSelector>,
    /// Inbound listeners.
    pub ingress: Vec<IstioIngressListener>,
    /// Outbound listeners.
    pub egress: Vec<IstioEgressListener>,
    /// What to do with unknown destinations.
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    /// Inbound pool.
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
}

/// `IstioIngressListener`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioIngressListener {
    /// Port (required).
    pub port: Option<Port>,
    /// Bind IP.
    pub bind: String,
    /// Capture mode.
    pub capture_mode: Option<CaptureMode>,
    /// Where to forward.
    pub default_endpoint: String,
    /// TLS (SIMPLE/MUTUAL only).
    pub tls: Option<ServerTlsSettings>,
    /// Pool for this port.
    pub connection_pool: Option<ConnectionPoolSettings>,
}

/// `IstioEgressListener`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioEgressListener {
    /// Port (absent = catch-all).
    pub port: Option<Port>,
    /// Bind IP or unix socket.
    pub bind: String,
    /// Capture mode.
    pub capture_mode: Option<CaptureMode>,
    /// `ns/host` imports.
    pub hosts: Vec<String>,
}

/// `CaptureMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    /// Environment default.
    Default,
    /// iptables capture.
    Iptables,
    /// No capture.
    None,
}

/// `OutboundTrafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutboundTrafficPolicy {
    /// REGISTRY_ONLY or ALLOW_ANY.
    pub mode: Option<OutboundMode>,
    /// Egress proxy for unknown destinations.
    pub egress_proxy: Option<Destination>,
}

/// `OutboundTrafficPolicy.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Only registry hosts.
    RegistryOnly,
    /// Anything (passthrough).
    AllowAny,
    /// Mesh config only; rejected in Sidecar.
    AllowAnyDynamicDns,
}
