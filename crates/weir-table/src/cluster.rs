//! Clusters: one per (service, port, subset), with endpoints and the merged
//! DestinationRule policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use serde::Serialize;

/// Istio's name for where requests to blocked destinations go (`REGISTRY_ONLY`): the
/// catch-all virtual host's `service`, which telemetry reports as the destination.
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";

/// Istio's cluster for destinations outside the registry (`ALLOW_ANY`).
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

/// Index of a cluster in [`crate::RouteTable::clusters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An upstream endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    /// Where it is.
    pub address: Address,
    /// Load-balancing weight (>= 1).
    pub weight: u32,
    /// Labels (for dumps and telemetry: `app`, `version`).
    #[serde(serialize_with = "crate::ser::labels")]
    pub labels: Arc<[(Box<str>, Box<str>)]>,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    /// A request header.
    Header(#[serde(serialize_with = "crate::ser::header_name")] HeaderName),
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge.
    Http2,
    /// Whatever the downstream spoke.
    ClientProtocol,
}

/// Connection-pool settings (spec §3.6): Envoy's circuit-breaker thresholds for the
/// cluster, counted across every worker of this weir instance (`u32::MAX` =
/// unlimited), and how upstream connections are made and kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionLimits {
    /// Open connections to the cluster's hosts (`tcp.maxConnections`).
    pub max_connections: u32,
    /// Requests waiting for a connection or an HTTP/2 stream
    /// (`http.http1MaxPendingRequests`).
    pub max_pending_requests: u32,
    /// Requests in flight to the cluster, both protocols (`http.http2MaxRequests`).
    pub max_requests: u32,
    /// Retries in flight to the cluster (`http.maxRetries`); replaced by
    /// [`ConnectionLimits::retry_budget`] when that is set, as in Envoy.
    pub max_retries: u32,
    /// Retries as a share of the requests in flight (DestinationRule `retryBudget`).
    pub retry_budget: Option<RetryBudget>,
    /// Requests per connection before it is closed (0 = unlimited;
    /// `http.maxRequestsPerConnection`).
    pub max_requests_per_connection: u32,
    /// Connect timeout (`tcp.connectTimeout`, default 10s).
    #[serde(serialize_with = "crate::ser::duration")]
    pub connect_timeout: Duration,
    /// Close a connection without requests for this long (`http.idleTimeout`, else
    /// `tcp.idleTimeout`; default 1h; `None` = never).
    #[serde(serialize_with = "crate::ser::opt_duration")]
    pub idle_timeout: Option<Duration>,
    /// Stop using a connection this old (`tcp.maxConnectionDuration`): it takes no new
    /// requests and closes once its requests finish.
    #[serde(serialize_with = "crate::ser::opt_duration")]
    pub max_connection_duration: Option<Duration>,
    /// Streams per HTTP/2 connection (`http.maxConcurrentStreams`); past it another
    /// connection is opened.
    pub max_concurrent_streams: u32,
    /// TCP keep-alive on upstream sockets (`tcp.tcpKeepalive`).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// HTTP/2 PING keep-alive (`http.http2KeepAlive`).
    pub http2_keepalive: Option<Http2Keepalive>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            retry_budget: None,
            max_requests_per_connection: 0,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(3600)),
            max_connection_duration: None,
            max_concurrent_streams: i32::MAX as u32,
            tcp_keepalive: None,
            http2_keepalive: None,
        }
    }
}

/// A retry budget: concurrent retries may be `percent` of the requests in flight and
/// pending, and at least `min_concurrency`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryBudget {
    /// Share of active and pending requests (0..=100).
    pub percent: f64,
    /// Retries always allowed.
    pub min_concurrency: u32,
}

/// SO_KEEPALIVE and the fields that override the system's values (Linux: 7200s idle,
/// 75s interval, 9 probes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpKeepalive {
    /// Idle time before the first probe.
    #[serde(serialize_with = "crate::ser::opt_duration")]
    pub time: Option<Duration>,
    /// Time between probes.
    #[serde(serialize_with = "crate::ser::opt_duration")]
    pub interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped.
    pub probes: Option<u32>,
}

/// HTTP/2 PING keep-alive towards the upstream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Http2Keepalive {
    /// Time between PINGs.
    #[serde(serialize_with = "crate::ser::duration")]
    pub interval: Duration,
    /// A PING unanswered this long closes the connection.
    #[serde(serialize_with = "crate::ser::duration")]
    pub timeout: Duration,
}

/// Outlier detection (spec §3.7), installed only when the DestinationRule has the
/// block; Envoy's defaults fill what it leaves out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierPolicy {
    /// Consecutive errors ejecting a host (`consecutive5xxErrors`, default 5; `None`
    /// when set to 0).
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502/503/504 ejecting a host (`consecutiveGatewayErrors`; off
    /// unless set).
    pub consecutive_gateway_errors: Option<u32>,
    /// Count local-origin failures (connect failures, resets, timeouts) apart from the
    /// upstream's responses (`splitExternalLocalOriginErrors`).
    pub split_local_origin: bool,
    /// Consecutive local-origin failures ejecting a host when split (default 5).
    pub consecutive_local_origin_failures: Option<u32>,
    /// Status codes counted as errors instead of 5xx (`outlierDetectionHttpErrorCodes`;
    /// empty = 500..=599).
    pub error_codes: Box<[u16]>,
    /// How often ejected hosts are checked for return (`interval`, default 10s).
    #[serde(serialize_with = "crate::ser::duration")]
    pub interval: Duration,
    /// Ejection time, multiplied by the times a host was ejected (`baseEjectionTime`,
    /// default 30s), capped at `max(300s, base)`.
    #[serde(serialize_with = "crate::ser::duration")]
    pub base_ejection_time: Duration,
    /// Share of hosts that may be ejected at once (`maxEjectionPercent`, default 10).
    pub max_ejection_percent: u32,
    /// Below this share of healthy hosts the balancer uses every host
    /// (`minHealthPercent`; 0, Istio's default, never does).
    pub min_health_percent: u32,
}

/// A cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Pool limits and timeouts; shared (most clusters have the defaults, and a
    /// service's subsets usually share theirs).
    pub limits: Arc<ConnectionLimits>,
    /// Outlier detection (boxed, as the rest that most clusters lack: a 10,000-service
    /// mesh has 30,000 clusters).
    pub outlier: Option<Box<OutlierPolicy>>,
    /// TLS originated to the endpoints (`trafficPolicy.tls` SIMPLE or MUTUAL); `None`
    /// = plaintext.
    pub upstream_tls: Option<Box<crate::upstream_tls::UpstreamTls>>,
}
