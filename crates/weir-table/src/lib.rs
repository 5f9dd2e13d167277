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
    HeaderEdits, HeaderOps, HeaderTemplate, MirrorPolicy, PathRewrite, Redirect, RedirectPath, RedirectPort, Share,
    TemplatePart, WeightedCluster,
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
#[cfg(test)]
mod sizes {
    use std::mem::size_of;

    /// A mesh of 10,000 services holds about 20,000 routes, 30,000 clusters and 40,000
    /// endpoints: rarely set policies are boxed so that these stay small (bench/scale.sh
    /// measures the whole). Growing one of them is a decision, not an accident.
    #[test]
    fn table_entries_stay_small() {
        assert!(size_of::<crate::Route>() <= 216, "Route: {} bytes", size_of::<crate::Route>());
        assert!(size_of::<crate::Forward>() <= 208, "Forward: {} bytes", size_of::<crate::Forward>());
        assert!(size_of::<crate::Cluster>() <= 192, "Cluster: {} bytes", size_of::<crate::Cluster>());
        assert!(size_of::<crate::Endpoint>() <= 72, "Endpoint: {} bytes", size_of::<crate::Endpoint>());
    }
}
