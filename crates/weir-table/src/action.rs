//! What a matched route does: forward to weighted clusters, redirect, or answer
//! directly; plus the per-route policies the request path executes (header edits,
//! CORS, the timeout, retries).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use regex::Regex;
use serde::Serialize;
use serde::ser::SerializeSeq;

use crate::cluster::ClusterId;
use crate::matcher::StrMatch;
use crate::retry::RetryPolicy;

/// The action of a route.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Forward upstream.
    Forward(Forward),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    Direct(DirectResponse),
}

/// Which cluster a destination sends to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterRef {
    /// No such service, port or subset: the request fails with 503 `NC`.
    Missing,
    /// One cluster.
    Fixed(ClusterId),
    /// Depends on the port the request is for (a mesh destination without a port, to a
    /// service with several ports): the cluster for each port.
    PerPort(Box<[(u16, ClusterId)]>),
}

impl ClusterRef {
    /// The cluster for a request on `port`.
    pub fn resolve(&self, port: u16) -> Option<ClusterId> {
        match self {
            ClusterRef::Missing => None,
            ClusterRef::Fixed(id) => Some(*id),
            ClusterRef::PerPort(list) => list.iter().find(|(p, _)| *p == port).map(|(_, id)| *id),
        }
    }
}

/// A weighted destination.
#[derive(Debug, Clone, Serialize)]
pub struct WeightedCluster {
    /// The cluster.
    pub cluster: ClusterRef,
    /// Cluster name (`outbound|port|subset|host`), also when unknown.
    pub name: Box<str>,
    /// Relative weight.
    pub weight: u32,
    /// Upper bound of this destination in the cumulative table.
    pub cumulative: u32,
    /// Destination-level header edits (after the route's).
    pub headers: HeaderOps,
    /// Authority rewrite from destination-level `host` header edits, used only when the
    /// route sets none.
    #[serde(serialize_with = "crate::ser::opt_header_value")]
    pub authority: Option<HeaderValue>,
}

/// Forwarding.
#[derive(Debug, Clone, Serialize)]
pub struct Forward {
    /// Destinations with weight > 0 (a single destination always gets everything).
    pub destinations: Box<[WeightedCluster]>,
    /// Sum of weights.
    pub total_weight: u32,
    /// Path rewrite. Boxed, like the other rarely set policies: a large mesh holds
    /// one `Forward` per route.
    pub rewrite: Option<Box<PathRewrite>>,
    /// New `Host`/`:authority`.
    #[serde(serialize_with = "crate::ser::opt_header_value")]
    pub authority: Option<HeaderValue>,
    /// Route-level header edits.
    pub headers: HeaderOps,
    /// Overall timeout covering every try (`None` = no timeout, Istio's default). For
    /// gRPC requests it is also the cap of the client's `grpc-timeout`.
    #[serde(serialize_with = "crate::ser::opt_duration")]
    pub timeout: Option<Duration>,
    /// Retry policy (`None`: no retries, `attempts: 0`).
    pub retry: Option<RetryPolicy>,
    /// Fault injection (Envoy's fault filter, before the router).
    pub fault: Option<Box<FaultPolicy>>,
    /// Mirrors (shadow requests, fire and forget).
    pub mirrors: Box<[MirrorPolicy]>,
    /// CORS.
    pub cors: Option<Box<CorsPolicy>>,
}

impl Forward {
    /// Picks a destination for a uniformly random `r` in `0..u32::MAX`.
    pub fn pick(&self, r: u32) -> &WeightedCluster {
        if self.destinations.len() == 1 || self.total_weight == 0 {
            return &self.destinations[0];
        }
        let x = ((u64::from(r) * u64::from(self.total_weight)) >> 32) as u32;
        self.destinations.iter().find(|d| x < d.cumulative).unwrap_or(&self.destinations[self.destinations.len() - 1])
    }
}

/// A share of requests in millionths, as Istio gives Envoy its percentages
/// (`FractionalPercent` over a million); it serializes as a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share(u32);

impl Share {
    /// All requests.
    pub const ALL: Share = Share(1_000_000);

    /// `percent` (0..=100; out of range is clamped) of requests.
    pub fn percent(percent: f64) -> Share {
        Share((percent.clamp(0.0, 100.0) * 10_000.0).round() as u32)
    }

    /// True when a uniform `draw` falls in the share (Envoy: `draw % 10⁶ < numerator`).
    pub fn hit(self, draw: u64) -> bool {
        (draw % 1_000_000) < u64::from(self.0)
    }

    /// True for 0%.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 10_000.0)
    }
}

/// Fault injection on a route (spec §2.10): a delay and an abort, each drawn on its
/// own share of requests; both may hit one request (delayed, then aborted).
#[derive(Debug, Clone, Serialize)]
pub struct FaultPolicy {
    /// Delay before the request goes on.
    pub delay: Option<FaultDelay>,
    /// Answer without contacting the upstream.
    pub abort: Option<FaultAbort>,
}

/// A fixed delay.
#[derive(Debug, Clone, Serialize)]
pub struct FaultDelay {
    /// How long.
    #[serde(serialize_with = "crate::ser::duration")]
    pub duration: Duration,
    /// Of which requests.
    pub share: Share,
}

/// An abort.
#[derive(Debug, Clone, Serialize)]
pub struct FaultAbort {
    /// What the client gets.
    pub status: AbortStatus,
    /// Of which requests.
    pub share: Share,
}

/// What an abort answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortStatus {
    /// An HTTP status (a gRPC client gets its gRPC mapping, as Envoy sends it).
    Http(u16),
    /// A gRPC status: HTTP 200 with `grpc-status` (trailers-only for gRPC clients).
    Grpc(u16),
}

/// A mirror: a copy of each drawn request sent to another destination, whose answer
/// nobody waits for (spec §2.11).
#[derive(Debug, Clone, Serialize)]
pub struct MirrorPolicy {
    /// Where copies go.
    pub cluster: ClusterRef,
    /// Its name (`outbound|port|subset|host`), also when unknown.
    pub name: Box<str>,
    /// Of which requests.
    pub share: Share,
}

/// A path rewrite.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathRewrite {
    /// Replace the matched prefix (`prefix` is the route's matched prefix, `/` when the
    /// route matched no uri, as Envoy does).
    Prefix {
        /// The matched prefix.
        matched: Box<str>,
        /// Its replacement.
        replacement: Box<str>,
        /// Compare the prefix case-insensitively.
        ignore_case: bool,
    },
    /// Replace the whole path.
    Full(Box<str>),
    /// Regex substitution over the path (every match).
    Regex {
        /// Pattern.
        #[serde(serialize_with = "crate::ser::regex")]
        pattern: Regex,
        /// Replacement with `${1}` references.
        replacement: Box<str>,
    },
}

impl PathRewrite {
    /// The new path for `path` (without query).
    pub fn apply(&self, path: &str) -> String {
        match self {
            PathRewrite::Prefix { matched, replacement, ignore_case } => {
                let ok = path.len() >= matched.len()
                    && if *ignore_case {
                        path.as_bytes()[..matched.len()].eq_ignore_ascii_case(matched.as_bytes())
                    } else {
                        path.starts_with(&**matched)
                    };
                if ok { format!("{replacement}{}", &path[matched.len()..]) } else { path.to_string() }
            }
            PathRewrite::Full(p) => p.to_string(),
            PathRewrite::Regex { pattern, replacement } => pattern.replace_all(path, &**replacement).into_owned(),
        }
    }
}

/// Header edits on a request and its response. Almost every route and destination has
/// none, so the edits live behind one pointer: 8 bytes instead of 144 in each `Forward`
/// and each weighted destination (a 10,000-service mesh holds tens of thousands). Reads
/// go through `Deref` (no edits reads as empty lists); the first write allocates.
#[derive(Debug, Clone, Default)]
pub struct HeaderOps(Option<Box<HeaderEdits>>);

/// The edits of a [`HeaderOps`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeaderEdits {
    /// Request: overwrite or add.
    #[serde(serialize_with = "edits")]
    pub request_set: Vec<(HeaderName, HeaderTemplate)>,
    /// Request: append.
    #[serde(serialize_with = "edits")]
    pub request_add: Vec<(HeaderName, HeaderTemplate)>,
    /// Request: remove.
    #[serde(serialize_with = "crate::ser::header_names")]
    pub request_remove: Vec<HeaderName>,
    /// Response: overwrite or add.
    #[serde(serialize_with = "edits")]
    pub response_set: Vec<(HeaderName, HeaderTemplate)>,
    /// Response: append.
    #[serde(serialize_with = "edits")]
    pub response_add: Vec<(HeaderName, HeaderTemplate)>,
    /// Response: remove.
    #[serde(serialize_with = "crate::ser::header_names")]
    pub response_remove: Vec<HeaderName>,
}

/// `[name, value]` pairs, values as written (`%VAR%` included).
fn edits<S: serde::Serializer>(l: &[(HeaderName, HeaderTemplate)], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(l.len()))?;
    for (n, t) in l {
        seq.serialize_element(&(n.as_str(), t.to_string()))?;
    }
    seq.end()
}

static NO_EDITS: HeaderEdits = HeaderEdits {
    request_set: Vec::new(),
    request_add: Vec::new(),
    request_remove: Vec::new(),
    response_set: Vec::new(),
    response_add: Vec::new(),
    response_remove: Vec::new(),
};

impl std::ops::Deref for HeaderOps {
    type Target = HeaderEdits;

    fn deref(&self) -> &HeaderEdits {
        self.0.as_deref().unwrap_or(&NO_EDITS)
    }
}

impl std::ops::DerefMut for HeaderOps {
    fn deref_mut(&mut self) -> &mut HeaderEdits {
        self.0.get_or_insert_with(Box::default)
    }
}

impl Serialize for HeaderOps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl HeaderOps {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|e| e.is_empty())
    }
}

impl HeaderEdits {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.request_set.is_empty()
            && self.request_add.is_empty()
            && self.request_remove.is_empty()
            && self.response_set.is_empty()
            && self.response_add.is_empty()
            && self.response_remove.is_empty()
    }
}

/// A header value, possibly with Envoy `%VARIABLE%` substitutions.
#[derive(Debug, Clone)]
pub enum HeaderTemplate {
    /// A fixed value (`%%` already turned into `%`).
    Literal(HeaderValue),
    /// Parts evaluated per request.
    Parts(Box<[TemplatePart]>),
}

/// One part of a [`HeaderTemplate`].
#[derive(Debug, Clone)]
pub enum TemplatePart {
    /// Text.
    Text(Box<str>),
    /// `%DOWNSTREAM_REMOTE_ADDRESS%` (ip:port).
    DownstreamRemoteAddress,
    /// `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`.
    DownstreamRemoteAddressWithoutPort,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    DownstreamLocalAddress,
    /// `%HOSTNAME%`.
    Hostname,
    /// `%REQ(name)%`: a request header.
    Req(HeaderName),
    /// `%PROTOCOL%`.
    Protocol,
    /// `%START_TIME%`.
    StartTime,
    /// `%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%`.
    DownstreamLocalAddressWithoutPort,
    /// `%DOWNSTREAM_LOCAL_PORT%`.
    DownstreamLocalPort,
    /// `%DOWNSTREAM_REMOTE_PORT%`.
    DownstreamRemotePort,
    /// `%UPSTREAM_CLUSTER%`: the chosen destination's cluster name.
    UpstreamCluster,
    /// `%ROUTE_NAME%`.
    RouteName,
    /// `%RESPONSE_CODE%` (response headers only).
    ResponseCode,
    /// `%RESP(name)%`: a response header (response headers only).
    Resp(HeaderName),
    /// A variable weir does not evaluate: kept as written.
    Unknown(Box<str>),
}

impl std::fmt::Display for HeaderTemplate {
    /// The value as Envoy would read it back: text with `%` doubled, variables as
    /// `%NAME%`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderTemplate::Literal(v) => f.write_str(&String::from_utf8_lossy(v.as_bytes()).replace('%', "%%")),
            HeaderTemplate::Parts(parts) => parts.iter().try_for_each(|p| write!(f, "{p}")),
        }
    }
}

impl std::fmt::Display for TemplatePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            TemplatePart::Text(t) => return f.write_str(&t.replace('%', "%%")),
            TemplatePart::Req(h) => return write!(f, "%REQ({h})%"),
            TemplatePart::Resp(h) => return write!(f, "%RESP({h})%"),
            TemplatePart::Unknown(raw) => return f.write_str(raw),
            TemplatePart::DownstreamRemoteAddress => "DOWNSTREAM_REMOTE_ADDRESS",
            TemplatePart::DownstreamRemoteAddressWithoutPort => "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
            TemplatePart::DownstreamLocalAddress => "DOWNSTREAM_LOCAL_ADDRESS",
            TemplatePart::Hostname => "HOSTNAME",
            TemplatePart::Protocol => "PROTOCOL",
            TemplatePart::StartTime => "START_TIME",
            TemplatePart::DownstreamLocalAddressWithoutPort => "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
            TemplatePart::DownstreamLocalPort => "DOWNSTREAM_LOCAL_PORT",
            TemplatePart::DownstreamRemotePort => "DOWNSTREAM_REMOTE_PORT",
            TemplatePart::UpstreamCluster => "UPSTREAM_CLUSTER",
            TemplatePart::RouteName => "ROUTE_NAME",
            TemplatePart::ResponseCode => "RESPONSE_CODE",
        };
        write!(f, "%{name}%")
    }
}

/// A redirect.
#[derive(Debug, Clone, Serialize)]
pub struct Redirect {
    /// New scheme.
    pub scheme: Option<Box<str>>,
    /// New host.
    pub authority: Option<Box<str>>,
    /// New port.
    pub port: RedirectPort,
    /// New path.
    pub path: RedirectPath,
    /// Status (301 by default).
    #[serde(serialize_with = "crate::ser::status")]
    pub status: StatusCode,
    /// The route's header edits (its response edits apply to the redirect).
    pub headers: HeaderOps,
}

/// The port of a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectPort {
    /// Keep the request's.
    Keep,
    /// This port (omitted when it is the scheme's default).
    Explicit(u16),
    /// The scheme's default (no port).
    ProtocolDefault,
    /// The port the request arrived on.
    RequestPort,
}

/// The path of a redirect.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectPath {
    /// Keep the request's.
    Keep,
    /// Replace it.
    Full(Box<str>),
    /// Replace the matched prefix.
    Prefix {
        /// The route's matched prefix.
        matched: Box<str>,
        /// Replacement.
        replacement: Box<str>,
    },
}

/// A fixed response.
#[derive(Debug, Clone, Serialize)]
pub struct DirectResponse {
    /// Status.
    #[serde(serialize_with = "crate::ser::status")]
    pub status: StatusCode,
    /// Body.
    #[serde(rename = "body_bytes", serialize_with = "crate::ser::byte_len")]
    pub body: Bytes,
    /// The route's header edits (its response edits apply to the reply).
    pub headers: HeaderOps,
}

/// CORS, compiled.
#[derive(Debug, Clone, Serialize)]
pub struct CorsPolicy {
    /// Allowed origins.
    pub allow_origins: Box<[StrMatch]>,
    /// `Access-Control-Allow-Methods`.
    #[serde(serialize_with = "crate::ser::opt_header_value")]
    pub allow_methods: Option<HeaderValue>,
    /// `Access-Control-Allow-Headers`.
    #[serde(serialize_with = "crate::ser::opt_header_value")]
    pub allow_headers: Option<HeaderValue>,
    /// `Access-Control-Expose-Headers`.
    #[serde(serialize_with = "crate::ser::opt_header_value")]
    pub expose_headers: Option<HeaderValue>,
    /// `Access-Control-Max-Age`.
    #[serde(serialize_with = "crate::ser::opt_header_value")]
    pub max_age: Option<HeaderValue>,
    /// `Access-Control-Allow-Credentials`.
    pub allow_credentials: Option<bool>,
    /// Forward preflights from origins that are not allowed (Istio's default).
    pub forward_unmatched_preflights: bool,
}

impl CorsPolicy {
    /// True when `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|m| m.matches(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wc(weight: u32, cumulative: u32) -> WeightedCluster {
        WeightedCluster {
            cluster: ClusterRef::Fixed(ClusterId(weight as usize)),
            name: "c".into(),
            weight,
            cumulative,
            headers: HeaderOps::default(),
            authority: None,
        }
    }

    #[test]
    fn pick_follows_cumulative_weights() {
        let f = Forward {
            destinations: vec![wc(90, 90), wc(10, 100)].into(),
            total_weight: 100,
            rewrite: None,
            authority: None,
            headers: HeaderOps::default(),
            timeout: None,
            retry: None,
            fault: None,
            mirrors: Box::new([]),
            cors: None,
        };
        let mut counts = [0u32; 2];
        for i in 0..1000u64 {
            let r = (((2 * i + 1) << 31) / 1000) as u32;
            counts[(f.pick(r).weight == 10) as usize] += 1;
        }
        assert_eq!(counts, [900, 100]);
    }

    #[test]
    fn rewrites() {
        let p = PathRewrite::Prefix { matched: "/api".into(), replacement: "/v2".into(), ignore_case: false };
        assert_eq!(p.apply("/api/users"), "/v2/users");
        let p = PathRewrite::Prefix { matched: "/".into(), replacement: "/v2".into(), ignore_case: false };
        assert_eq!(p.apply("/foo"), "/v2foo");
        assert_eq!(PathRewrite::Full("/x".into()).apply("/y/z"), "/x");
        let r = PathRewrite::Regex { pattern: Regex::new("^/v1/(.*)$").unwrap(), replacement: "/v2/${1}".into() };
        assert_eq!(r.apply("/v1/items"), "/v2/items");
    }
}
