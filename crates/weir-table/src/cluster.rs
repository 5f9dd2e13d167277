//! Clusters: one per (service, port, subset), with endpoints and the merged
//! DestinationRule policy.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;

/// Index of a cluster in [`crate::RouteTable::clusters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub usize);

/// Where an endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IP address and port.
    Socket(SocketAddr),
    /// A name resolved when connecting (resolution DNS) and a port.
    Dns(Box<str>, u16),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Socket(s) => write!(f, "{s}"),
            Address::Dns(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// An upstream endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Where it is.
    pub address: Address,
    /// Load-balancing weight (>= 1).
    pub weight: u32,
    /// Labels (for dumps and telemetry: `app`, `version`).
    pub labels: Vec<(Box<str>, Box<str>)>,
    /// `region/zone/subzone`.
    pub locality: Box<str>,
}

impl Endpoint {
    /// A label value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| &**k == key).map(|(_, v)| &**v)
    }
}

/// What a consistent hash is computed from.
#[derive(Debug, Clone, PartialEq)]
pub enum HashKey {
    /// A request header.
    Header(HeaderName),
    /// A cookie; generated when absent if a `ttl` is set (`0s` = session cookie).
    Cookie {
        /// Cookie name.
        name: Box<str>,
        /// What a generated `Set-Cookie` carries after `name="value"`, built at compile
        /// time in Envoy's order: `; Max-Age=N`, `; Path=p`, the attributes, `; HttpOnly`.
        /// `None` when there is no `ttl` (no cookie is generated).
        set_cookie_suffix: Option<Box<str>>,
    },
    /// The downstream IP.
    SourceIp,
    /// A query parameter.
    QueryParameter(Box<str>),
}

/// The load-balancing policy.
#[derive(Debug, Clone, PartialEq)]
pub enum LbPolicy {
    /// Power of two choices on active requests (Istio's default).
    LeastRequest,
    /// Round robin.
    RoundRobin,
    /// Random.
    Random,
    /// To the address the caller asked for.
    Passthrough,
    /// Ring hash.
    RingHash {
        /// Hash input.
        key: HashKey,
        /// Minimum ring size.
        min_ring_size: u64,
    },
    /// Maglev.
    Maglev {
        /// Hash input.
        key: HashKey,
        /// Table size (prime).
        table_size: u64,
    },
}

/// Which protocol to speak to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge.
    Http2,
    /// Whatever the downstream spoke.
    ClientProtocol,
}

/// Circuit-breaker limits (connection pool settings); `u32::MAX` = unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    /// Max connections per endpoint.
    pub max_connections: u32,
    /// Max requests waiting for a connection.
    pub max_pending_requests: u32,
    /// Max concurrent requests.
    pub max_requests: u32,
    /// Max concurrent retries.
    pub max_retries: u32,
    /// Requests per connection (0 = unlimited).
    pub max_requests_per_connection: u32,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Idle timeout for upstream connections.
    pub idle_timeout: Option<Duration>,
    /// Max streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            max_requests_per_connection: 0,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(3600)),
            max_concurrent_streams: i32::MAX as u32,
        }
    }
}

/// Outlier detection (installed only when configured).
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierPolicy {
    /// Consecutive 5xx before ejection.
    pub consecutive_5xx: Option<u32>,
    /// Consecutive gateway errors before ejection.
    pub consecutive_gateway_errors: Option<u32>,
    /// Sweep interval.
    pub interval: Duration,
    /// Base ejection time.
    pub base_ejection_time: Duration,
    /// Max share of hosts ejected.
    pub max_ejection_percent: u32,
    /// Panic threshold.
    pub min_health_percent: u32,
}

/// A cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// `outbound|<port>|<subset>|<host>`.
    pub name: Box<str>,
    /// Service FQDN.
    pub service: Box<str>,
    /// Service namespace.
    pub namespace: Box<str>,
    /// Service port.
    pub port: u16,
    /// Subset name ("" for none).
    pub subset: Box<str>,
    /// The service port's protocol as declared (`HTTP`, `HTTP2`, `GRPC`...).
    pub port_protocol: Box<str>,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Load balancing.
    pub lb: LbPolicy,
    /// Upstream protocol.
    pub protocol: UpstreamProtocol,
    /// Pool limits and timeouts.
    pub limits: ConnectionLimits,
    /// Outlier detection.
    pub outlier: Option<OutlierPolicy>,
}
