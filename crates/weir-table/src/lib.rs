//! The routing table the proxy executes: everything already parsed, resolved and
//! compiled (regexes built, hosts lower-cased and hashed, weights turned into
//! cumulative tables). A table is immutable; a new configuration produces a new table.
//!
//! Where to begin reading:
//! - [`RouteTable`] holds [`Listener`]s and [`Cluster`]s.
//! - [`Listener::route`] is the one place a route is chosen for a request: the proxy
//!   and `explain` call the same function.
//! - [`plan::decide`] turns a request into a [`Plan`]: route, destination, cluster,
//!   timeouts, retries, affinity. It is pure, and it is what `explain` prints.
//! - [`hosts::HostMap`] resolves a `Host`/`:authority` to a virtual host in time that
//!   does not grow with the number of hosts.
//!
//! This crate knows nothing of YAML or of where configuration came from.

pub mod action;
pub mod cluster;
pub mod diff;
pub mod explain;
pub mod hosts;
pub mod matcher;
pub mod normalize;
pub mod plan;
pub mod retry;
pub mod route;
pub mod ser;
pub mod transport;
pub mod upstream_tls;

pub use action::{
    AbortStatus, Action, ClusterRef, CorsPolicy, DirectResponse, FaultAbort, FaultDelay, FaultPolicy, Forward,
    HeaderOps, HeaderTemplate, MirrorPolicy, PathRewrite, Redirect, RedirectPath, RedirectPort, Share, TemplatePart,
    WeightedCluster,
};
pub use cluster::{
    Address, Cluster, ClusterId, ConnectionLimits, Endpoint, HashKey, Http2Keepalive, LbPolicy, OutlierPolicy,
    RetryBudget, TcpKeepalive, UpstreamProtocol,
};
pub use hosts::HostMap;
pub use matcher::{Failed, HeaderKey, HeaderMatch, HttpMatch, PathMatch, QueryMatch, StrMatch};
pub use plan::{Affinity, Decision, Dice, Facts, Fault, Plan, RetryPlan, Timeouts, decide};
pub use retry::{RetryOn, RetryPolicy};
pub use route::{Listener, ListenerRole, NoRoute, RequestView, Route, RouteTable, Routed, VirtualHost};
pub use transport::{CertSource, ConnView, L4Route, Serve, Subnet, Termination, TlsMode, TlsServer, TlsVersion};
pub use upstream_tls::{CaSource, UpstreamTls, UpstreamTlsMode, VerifyName};
