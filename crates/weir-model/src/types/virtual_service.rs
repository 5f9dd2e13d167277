//! `VirtualService` (spec §2).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::{Destination, Headers, Labels, Percent, StringMatch};
use crate::duration::Duration;

/// `VirtualService.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VirtualService {
    /// Hosts this applies to; empty for a delegate.
    pub hosts: Vec<String>,
    /// Gateways (and/or `mesh`) the routes are installed on; empty means `mesh`.
    pub gateways: Vec<String>,
    /// HTTP routes, in order.
    pub http: Vec<HttpRoute>,
    /// TLS (SNI) routes, in order.
    pub tls: Vec<TlsRoute>,
    /// TCP routes, in order.
    pub tcp: Vec<TcpRoute>,
    /// Namespaces that can see it.
    pub export_to: Vec<String>,
}

/// `HTTPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    /// Route name (access logs).
    pub name: String,
    /// OR of conditions; empty matches everything.
    #[serde(rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    /// Weighted destinations.
    pub route: Vec<HttpRouteDestination>,
    /// Redirect instead of forwarding.
    pub redirect: Option<Box<HttpRedirect>>,
    /// Answer directly.
    pub direct_response: Option<Box<HttpDirectResponse>>,
    /// Hand over to another VirtualService.
    pub delegate: Option<Delegate>,
    /// Rewrite before forwarding.
    pub rewrite: Option<Box<HttpRewrite>>,
    /// Overall timeout (all tries).
    pub timeout: Option<Duration>,
    /// Retry policy.
    pub retries: Option<Box<HttpRetry>>,
    /// Fault injection.
    pub fault: Option<Box<HttpFaultInjection>>,
    /// Legacy single mirror.
    pub mirror: Option<Destination>,
    /// Share mirrored by `mirror` (default 100).
    pub mirror_percentage: Option<Percent>,
    /// Deprecated integer form of `mirrorPercentage`.
    pub mirror_percent: Option<u32>,
    /// Mirrors.
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// CORS.
    pub cors_policy: Option<Box<CorsPolicy>>,
    /// Header edits.
    pub headers: Option<Box<Headers>>,
}

impl HttpRoute {
    /// The mirror share, with the deprecated `mirrorPercent` mapped when
    /// `mirrorPercentage` is absent; `None` when the route has no `mirror`.
    pub fn effective_mirror_percentage(&self) -> Option<f64> {
        self.mirror.as_ref()?;
        Some(match (&self.mirror_percentage, self.mirror_percent) {
            (Some(p), _) => p.value,
            (None, Some(p)) => p as f64,
            (None, None) => 100.0,
        })
    }
}

/// `HTTPMatchRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMatchRequest {
    /// Match name (appended to the route name).
    pub name: String,
    /// Path (without query).
    pub uri: Option<StringMatch>,
    /// `:scheme`.
    pub scheme: Option<StringMatch>,
    /// `:method`.
    pub method: Option<StringMatch>,
    /// `:authority`.
    pub authority: Option<StringMatch>,
    /// Header conditions; a null value is kept so validation can reject it.
    pub headers: BTreeMap<String, Option<StringMatch>>,
    /// Listener port.
    pub port: u32,
    /// Proxy selector by labels.
    pub source_labels: Labels,
    /// Replaces the VS gateways for this match.
    pub gateways: Vec<String>,
    /// Query parameter conditions.
    pub query_params: BTreeMap<String, Option<StringMatch>>,
    /// Case-insensitive `uri` exact/prefix.
    pub ignore_uri_case: bool,
    /// Inverted header conditions.
    pub without_headers: BTreeMap<String, Option<StringMatch>>,
    /// Proxy selector by namespace.
    pub source_namespace: String,
    /// Envoy stat prefix.
    pub stat_prefix: String,
}

/// `HTTPRouteDestination`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteDestination {
    /// Where to send.
    pub destination: Option<Destination>,
    /// Relative share.
    pub weight: i32,
    /// Destination-level header edits.
    pub headers: Option<Headers>,
}

/// `RouteDestination` (TCP/TLS).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteDestination {
    /// Where to send.
    pub destination: Option<Destination>,
    /// Relative share.
    pub weight: i32,
}

/// `HTTPRedirect`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRedirect {
    /// Replace the whole path.
    pub uri: String,
    /// Replace the matched prefix.
    pub prefix_rewrite: Option<String>,
    /// New host.
    pub authority: String,
    /// Explicit port.
    pub port: u32,
    /// Port derived from the protocol or the request.
    pub derive_port: Option<RedirectPortSelection>,
    /// `http` or `https`.
    pub scheme: String,
    /// 3xx status (default 301).
    pub redirect_code: u32,
}

/// `HTTPRedirect.RedirectPortSelection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectPortSelection {
    /// 80 for http, 443 for https (no port in the URL).
    FromProtocolDefault,
    /// The port the request arrived on.
    FromRequestPort,
}

/// `HTTPDirectResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpDirectResponse {
    /// Status code.
    pub status: u32,
    /// Body.
    pub body: Option<HttpBody>,
}

/// `HTTPBody`: `string` or `bytes` (base64).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpBody {
    /// Text body.
    pub string: Option<String>,
    /// Base64 body.
    pub bytes: Option<String>,
}

/// `Delegate`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Delegate {
    /// Delegate VirtualService name.
    pub name: String,
    /// Its namespace (default: the root's).
    pub namespace: String,
}

/// `HTTPRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRewrite {
    /// New path or prefix.
    pub uri: String,
    /// New authority.
    pub authority: String,
    /// Regex rewrite of the path.
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// `RegexRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegexRewrite {
    /// RE2 pattern.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Replacement with `\1` references.
    pub rewrite: String,
}

/// `HTTPRetry`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRetry {
    /// Number of retries.
    pub attempts: i32,
    /// Timeout per try.
    pub per_try_timeout: Option<Duration>,
    /// Comma list of conditions and codes.
    pub retry_on: String,
    /// Retry in other localities.
    pub retry_remote_localities: Option<bool>,
    /// Avoid hosts already tried (default true).
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Base back-off interval (default 25ms).
    pub backoff: Option<Duration>,
}

/// `HTTPFaultInjection`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpFaultInjection {
    /// Delay.
    pub delay: Option<FaultDelay>,
    /// Abort.
    pub abort: Option<FaultAbort>,
}

/// `HTTPFaultInjection.Delay`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultDelay {
    /// Fixed delay.
    pub fixed_delay: Option<Duration>,
    /// Not supported by Istio (validation error).
    pub exponential_delay: Option<Duration>,
    /// Share of requests delayed.
    pub percentage: Option<Percent>,
    /// Deprecated integer share.
    pub percent: Option<i32>,
}

impl FaultDelay {
    /// The delayed share, with the deprecated `percent` mapped when `percentage` is
    /// absent; both absent means 0%.
    pub fn effective_percentage(&self) -> f64 {
        match (&self.percentage, self.percent) {
            (Some(p), _) => p.value,
            (None, Some(p)) => p as f64,
            (None, None) => 0.0,
        }
    }
}

/// `HTTPFaultInjection.Abort`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultAbort {
    /// HTTP status to return.
    pub http_status: Option<i32>,
    /// gRPC status name.
    pub grpc_status: Option<String>,
    /// Not supported (validation error).
    pub http2_error: Option<String>,
    /// Share of requests aborted.
    pub percentage: Option<Percent>,
}

impl FaultAbort {
    /// The aborted share (absent = 0%).
    pub fn effective_percentage(&self) -> f64 {
        self.percentage.map(|p| p.value).unwrap_or(0.0)
    }
}

/// `HTTPMirrorPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMirrorPolicy {
    /// Where copies go.
    pub destination: Option<Destination>,
    /// Share mirrored (absent = 100).
    pub percentage: Option<Percent>,
}

/// `CorsPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsPolicy {
    /// Allowed origins.
    pub allow_origins: Vec<StringMatch>,
    /// Deprecated exact-origin list.
    pub allow_origin: Vec<String>,
    /// Allowed methods.
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    pub allow_headers: Vec<String>,
    /// Exposed response headers.
    pub expose_headers: Vec<String>,
    /// Preflight cache time.
    pub max_age: Option<Duration>,
    /// Allow credentials.
    pub allow_credentials: Option<bool>,
    /// What to do with preflights from origins not allowed.
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

impl CorsPolicy {
    /// Allowed origins, with the deprecated `allowOrigin` mapped to exact matches when
    /// `allowOrigins` is empty.
    pub fn effective_origins(&self) -> Vec<StringMatch> {
        if !self.allow_origins.is_empty() {
            return self.allow_origins.clone();
        }
        self.allow_origin.iter().map(|o| StringMatch { exact: Some(o.clone()), ..Default::default() }).collect()
    }
}

/// `CorsPolicy.UnmatchedPreflights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// Same as `FORWARD`.
    Unspecified,
    /// Forward preflights from origins not allowed.
    Forward,
    /// Answer them without CORS headers.
    Ignore,
}

/// `TLSRoute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsRoute {
    /// Conditions (required).
    #[serde(rename = "match")]
    pub matches: Vec<TlsMatchAttributes>,
    /// Destinations.
    pub route: Vec<RouteDestination>,
}

/// `TLSMatchAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsMatchAttributes {
    /// SNI names.
    pub sni_hosts: Vec<String>,
    /// Destination IPs/CIDRs.
    pub destination_subnets: Vec<String>,
    /// Listener port.
    pub port: u32,
    /// Proxy selector by labels.
    pub source_labels: Labels,
    /// Gateways.
    pub gateways: Vec<String>,
    /// Proxy selector by namespace.
    pub source_namespace: String,
}

/// `TCPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpRoute {
    /// Conditions (optional).
    #[serde(rename = "match")]
    pub matches: Vec<L4MatchAttributes>,
    /// Destinations.
    pub route: Vec<RouteDestination>,
}

/// `L4MatchAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct L4MatchAttributes {
    /// Destination IPs/CIDRs.
    pub destination_subnets: Vec<String>,
    /// Listener port.
    pub port: u32,
    /// Unsupported by Istio; accepted and ignored.
    pub source_subnet: String,
    /// Proxy selector by labels.
    pub source_labels: Labels,
    /// Gateways.
    pub gateways: Vec<String>,
    /// Proxy selector by namespace.
    pub source_namespace: String,
}
