//! `DestinationRule` (spec §3).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::{Labels, Percent, PortSelector};
use crate::duration::Duration;

/// `DestinationRule.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DestinationRule {
    /// Registry host (short names relative to the DR's namespace).
    pub host: String,
    /// Policy for all ports and subsets.
    pub traffic_policy: Option<Box<TrafficPolicy>>,
    /// Named endpoint subsets.
    pub subsets: Vec<Subset>,
    /// Namespaces that can see it.
    pub export_to: Vec<String>,
    /// Client workloads it applies to.
    pub workload_selector: Option<LabelSelector>,
}

/// `WorkloadSelector` as DestinationRule spells it (`matchLabels`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    /// Labels a client workload must carry.
    pub match_labels: Labels,
}

/// `Subset`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subset {
    /// Name (DNS-1123 label).
    pub name: String,
    /// Endpoint labels; all must match.
    pub labels: Labels,
    /// Subset policy (overrides block by block).
    pub traffic_policy: Option<Box<TrafficPolicy>>,
}

/// `TrafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficPolicy {
    /// Load balancing.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS.
    pub tls: Option<ClientTlsSettings>,
    /// Per-port overrides.
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// HTTP CONNECT/POST tunnel.
    pub tunnel: Option<TunnelSettings>,
    /// PROXY protocol towards the upstream.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Retry budget.
    pub retry_budget: Option<RetryBudget>,
}

/// `TrafficPolicy.PortTrafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortTrafficPolicy {
    /// The port this applies to.
    pub port: Option<PortSelector>,
    /// Load balancing.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS.
    pub tls: Option<ClientTlsSettings>,
}

/// `LoadBalancerSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerSettings {
    /// Simple algorithm.
    pub simple: Option<SimpleLb>,
    /// Consistent hashing.
    pub consistent_hash: Option<ConsistentHashLb>,
    /// Locality-weighted load balancing.
    pub locality_lb_setting: Option<LocalityLbSetting>,
    /// Zone-aware routing.
    pub zone_aware_lb_setting: Option<ZoneAwareLbSetting>,
    /// Deprecated form of `warmup.duration`.
    pub warmup_duration_secs: Option<Duration>,
    /// Slow start.
    pub warmup: Option<WarmupConfiguration>,
}

impl LoadBalancerSettings {
    /// The warm-up window, with the deprecated `warmupDurationSecs` mapped.
    pub fn effective_warmup(&self) -> Option<Duration> {
        self.warmup.as_ref().and_then(|w| w.duration).or(self.warmup_duration_secs)
    }
}

/// `LoadBalancerSettings.SimpleLB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLb {
    /// Means LEAST_REQUEST.
    Unspecified,
    /// Deprecated alias of LEAST_REQUEST.
    LeastConn,
    /// Random.
    Random,
    /// Send to the address the caller dialled.
    Passthrough,
    /// Round robin.
    RoundRobin,
    /// Power of two choices.
    LeastRequest,
}

impl SimpleLb {
    /// The algorithm in effect: `UNSPECIFIED` and the deprecated `LEAST_CONN` both mean
    /// `LEAST_REQUEST`.
    pub fn effective(self) -> SimpleLb {
        match self {
            SimpleLb::Unspecified | SimpleLb::LeastConn => SimpleLb::LeastRequest,
            other => other,
        }
    }
}

/// `ConsistentHashLB`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsistentHashLb {
    /// Hash a request header.
    pub http_header_name: Option<String>,
    /// Hash a cookie.
    pub http_cookie: Option<HttpCookie>,
    /// Hash the source IP.
    pub use_source_ip: Option<bool>,
    /// Hash a query parameter.
    pub http_query_parameter_name: Option<String>,
    /// Ring hash algorithm.
    pub ring_hash: Option<RingHash>,
    /// Maglev algorithm.
    pub maglev: Option<MagLev>,
    /// Deprecated ring size.
    pub minimum_ring_size: Option<u64>,
}

/// `ConsistentHashLB.HTTPCookie`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpCookie {
    /// Cookie name.
    pub name: String,
    /// Cookie path.
    pub path: String,
    /// Lifetime of a generated cookie.
    pub ttl: Option<Duration>,
    /// Extra attributes.
    pub attributes: Vec<CookieAttribute>,
}

/// `ConsistentHashLB.HTTPCookie.Attribute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CookieAttribute {
    /// Attribute name.
    pub name: String,
    /// Attribute value.
    pub value: String,
}

/// `ConsistentHashLB.RingHash`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RingHash {
    /// Minimum number of virtual nodes.
    pub minimum_ring_size: u64,
}

/// `ConsistentHashLB.MagLev`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MagLev {
    /// Lookup table size (prime).
    pub table_size: u64,
}

/// `LocalityLoadBalancerSetting`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityLbSetting {
    /// Weighted distribution.
    pub distribute: Vec<LocalityDistribute>,
    /// Region failover.
    pub failover: Vec<LocalityFailover>,
    /// Ordered label priorities.
    pub failover_priority: Vec<String>,
    /// Overrides the mesh switch.
    pub enabled: Option<bool>,
}

/// `LocalityLoadBalancerSetting.Distribute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityDistribute {
    /// Origin locality.
    pub from: String,
    /// Destination localities and weights.
    pub to: BTreeMap<String, u32>,
}

/// `LocalityLoadBalancerSetting.Failover`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityFailover {
    /// Origin region.
    pub from: String,
    /// Failover region.
    pub to: String,
}

/// `ZoneAwareLbSetting`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ZoneAwareLbSetting {
    /// On/off.
    pub enabled: Option<bool>,
    /// Region failover.
    pub failover: Vec<LocalityFailover>,
    /// Ordered label priorities.
    pub failover_priority: Vec<String>,
}

/// `WarmupConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WarmupConfiguration {
    /// Window (required).
    pub duration: Option<Duration>,
    /// Starting share (default 10).
    pub minimum_percent: Option<f64>,
    /// Curve (default 1.0 = linear).
    pub aggression: Option<f64>,
}

/// `ConnectionPoolSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectionPoolSettings {
    /// TCP limits.
    pub tcp: Option<TcpSettings>,
    /// HTTP limits.
    pub http: Option<HttpSettings>,
}

/// `ConnectionPoolSettings.TCPSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpSettings {
    /// Max connections per host.
    pub max_connections: i32,
    /// Connect timeout.
    pub connect_timeout: Option<Duration>,
    /// SO_KEEPALIVE.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Max connection age.
    pub max_connection_duration: Option<Duration>,
    /// Idle timeout (`0s` disables).
    pub idle_timeout: Option<Duration>,
}

/// `ConnectionPoolSettings.TCPSettings.TcpKeepalive`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpKeepalive {
    /// Probes before the connection is dead.
    pub probes: u32,
    /// Idle time before probing.
    pub time: Option<Duration>,
    /// Interval between probes.
    pub interval: Option<Duration>,
}

/// `ConnectionPoolSettings.HTTPSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpSettings {
    /// Max requests waiting for a connection.
    pub http1_max_pending_requests: i32,
    /// Max concurrent requests.
    pub http2_max_requests: i32,
    /// Requests per connection (1 = no keep-alive).
    pub max_requests_per_connection: i32,
    /// Max concurrent retries.
    pub max_retries: i32,
    /// Idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Upgrade to HTTP/2 upstream.
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Speak the downstream's protocol upstream.
    pub use_client_protocol: bool,
    /// Max streams per HTTP/2 connection.
    pub max_concurrent_streams: i32,
    /// HTTP/2 PING keep-alive.
    pub http2_keep_alive: Option<Http2KeepAlive>,
}

/// `HTTPSettings.H2UpgradePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// Mesh default.
    Default,
    /// Stay on HTTP/1.1.
    DoNotUpgrade,
    /// HTTP/2 upstream.
    Upgrade,
}

/// HTTP/2 keep-alive settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Http2KeepAlive {
    /// PING interval.
    pub interval: Option<Duration>,
    /// PING timeout.
    pub timeout: Option<Duration>,
}

/// `OutlierDetection`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutlierDetection {
    /// Track local-origin failures apart.
    pub split_external_local_origin_errors: bool,
    /// Local-origin failures before ejection.
    pub consecutive_local_origin_failures: Option<u32>,
    /// 502/503/504 before ejection.
    pub consecutive_gateway_errors: Option<u32>,
    /// 5xx before ejection (default 5).
    pub consecutive_5xx_errors: Option<u32>,
    /// Deprecated; read as `consecutiveGatewayErrors` when that is absent.
    pub consecutive_errors: Option<i32>,
    /// Sweep interval.
    pub interval: Option<Duration>,
    /// Base ejection time.
    pub base_ejection_time: Option<Duration>,
    /// Max share of hosts ejected.
    pub max_ejection_percent: i32,
    /// Panic threshold.
    pub min_health_percent: i32,
    /// Codes counted as errors instead of 5xx.
    pub outlier_detection_http_error_codes: Vec<u32>,
}

impl OutlierDetection {
    /// Gateway-error threshold with the deprecated `consecutiveErrors` mapped to it.
    pub fn effective_gateway_errors(&self) -> Option<u32> {
        self.consecutive_gateway_errors.or(self.consecutive_errors.filter(|n| *n > 0).map(|n| n as u32))
    }
}

/// `ClientTLSSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTlsSettings {
    /// TLS mode.
    pub mode: Option<ClientTlsMode>,
    /// Client certificate path.
    pub client_certificate: String,
    /// Client key path.
    pub private_key: String,
    /// CA bundle path.
    pub ca_certificates: String,
    /// Secret name.
    pub credential_name: String,
    /// Accepted server SANs.
    pub subject_alt_names: Vec<String>,
    /// SNI to send.
    pub sni: String,
    /// Skip verification.
    pub insecure_skip_verify: Option<bool>,
    /// CRL path.
    pub ca_crl: String,
}

/// `ClientTLSSettings.TLSmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Plaintext.
    Disable,
    /// TLS.
    Simple,
    /// mTLS with given certificates.
    Mutual,
    /// mTLS with the Istio workload certificate.
    IstioMutual,
}

/// `TrafficPolicy.TunnelSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TunnelSettings {
    /// `CONNECT` (default) or `POST`.
    pub protocol: String,
    /// Host to tunnel to.
    pub target_host: String,
    /// Port to tunnel to.
    pub target_port: u32,
}

/// `TrafficPolicy.ProxyProtocol`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyProtocol {
    /// V1 or V2.
    pub version: Option<ProxyProtocolVersion>,
}

/// `ProxyProtocol.VERSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProxyProtocolVersion {
    /// Text header.
    V1,
    /// Binary header.
    V2,
}

/// `TrafficPolicy.RetryBudget`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryBudget {
    /// Share of active requests that may be retries (default 20). Written either as a
    /// number or as `{value: N}`; both are accepted.
    pub percent: Option<Percent>,
    /// Retries always allowed (default 3).
    pub min_retry_concurrency: u32,
    /// Averaging window.
    pub budget_interval: Option<Duration>,
}
