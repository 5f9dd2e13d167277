//! The table, its listeners and virtual hosts, and the lookup that picks a route.

use std::sync::Arc;

use http::{HeaderMap, Method};
use serde::Serialize;

use crate::action::Action;
use crate::cluster::{Cluster, ClusterId};
use crate::hosts::{HostMap, port_of};
use crate::matcher::HttpMatch;
use crate::transport::{L4Route, TlsServer};

/// A compiled configuration: what the proxy serves until the next one replaces it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteTable {
    /// Increases with every compiled configuration.
    pub version: u64,
    /// Gateway listeners (one per server port), then the mesh listener if any.
    pub listeners: Vec<Listener>,
    /// Clusters, indexed by [`ClusterId`].
    pub clusters: Vec<Cluster>,
}

impl RouteTable {
    /// The cluster with this id.
    pub fn cluster(&self, id: ClusterId) -> &Cluster {
        &self.clusters[id.0]
    }

    /// The main mesh listener (`mesh`), if the table has one.
    pub fn mesh(&self) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.role == ListenerRole::Mesh && l.is_main_mesh())
    }

    /// The gateway listener on `port`.
    pub fn gateway(&self, port: u16) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.role == ListenerRole::Gateway && l.port == port)
    }
}

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerRole {
    /// A Gateway server port.
    Gateway,
    /// The mesh (sidecar outbound) listener.
    Mesh,
}

/// A listener: the virtual hosts served on one port.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// Name (`0.0.0.0_8080`, `mesh`).
    pub name: Box<str>,
    /// Gateway or mesh.
    pub role: ListenerRole,
    /// Bind address from the Gateway server (`None` = all addresses).
    pub bind: Option<Box<str>>,
    /// Port (gateway listeners; 0 for the mesh listener, whose address comes from the
    /// command line).
    pub port: u16,
    /// Server protocol (`HTTP`, `HTTP2`, `GRPC`...).
    pub protocol: Box<str>,
    /// The Gateways (`ns/name`) whose servers this listener serves (empty for the mesh).
    pub gateways: Vec<Box<str>>,
    /// Host -> index into `virtual_hosts` (the dump lists each virtual host's domains).
    #[serde(skip)]
    pub hosts: HostMap<usize>,
    /// Virtual hosts.
    pub virtual_hosts: Vec<VirtualHost>,
    /// TLS servers on this port, picked by SNI; when there are any, every connection
    /// must open with a TLS ClientHello.
    pub tls: Vec<TlsServer>,
    /// TCP routes of a plain TCP server (protocol `TCP`, `MONGO`...); empty for HTTP.
    pub tcp: Vec<L4Route>,
}

/// A virtual host: the ordered routes for a set of domains.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualHost {
    /// Name (the first domain, with port for gateways).
    pub name: Box<str>,
    /// Domains served (for dumps).
    pub domains: Vec<Box<str>>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// Redirect plain HTTP to HTTPS (Gateway `httpsRedirect`).
    pub require_tls: bool,
    /// Port assumed when the Host carries none (mesh listener: the service's port).
    pub default_port: u16,
    /// The registry service this host names, if any (for telemetry when no route picks
    /// a cluster).
    pub service: Option<Box<str>>,
}

/// One route: one match entry and the (shared) action.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Envoy route name: the HTTPRoute `name`, or `name.matchName`.
    pub name: Box<str>,
    /// The VirtualService it came from (`ns/name`), for dumps and `explain`.
    pub origin: Box<str>,
    /// Conditions.
    pub matcher: HttpMatch,
    /// What to do.
    pub action: Arc<Action>,
}

/// The parts of a request that routing reads. `Copy`: cheap views, no allocation.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Method.
    pub method: &'a Method,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// `Host` / `:authority` (may carry a port).
    pub authority: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Path with the query (for `:path` header matches).
    pub path_and_query: &'a str,
    /// Query string without `?`.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// The port routing sees: the gateway listener's port, or on the mesh listener the
    /// service port (from the Host, else the virtual host's default).
    pub port: u16,
}

/// Why no route was chosen (404, response flag `NR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// No virtual host for the Host.
    UnknownHost,
    /// A virtual host, but no route matched.
    NoMatch,
}

/// The name of the main mesh listener (its address comes from `--mesh-listener`).
pub const MAIN_MESH: &str = "mesh";

impl Listener {
    /// True for the main mesh listener (Sidecar egress listeners are mesh listeners
    /// with an address of their own).
    pub fn is_main_mesh(&self) -> bool {
        self.role == ListenerRole::Mesh && &*self.name == MAIN_MESH
    }

    /// Finds the virtual host for a Host / `:authority`.
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        self.hosts.lookup(authority).map(|i| &self.virtual_hosts[*i])
    }

    /// The request as routing on `vhost` sees it: on the mesh listener the port is the
    /// service port (from the Host, else the virtual host's default).
    pub fn routing_view<'r>(&self, vhost: &VirtualHost, req: &RequestView<'r>) -> RequestView<'r> {
        let mut view = *req;
        if self.role == ListenerRole::Mesh {
            view.port = port_of(req.authority).unwrap_or(vhost.default_port);
        }
        view
    }

    /// Chooses the route for a request: the virtual host by Host, then the first route
    /// whose conditions hold. Returns the request view as routing saw it (with the
    /// effective port), which later stages use for rewrites and redirects.
    pub fn route<'t, 'r>(&'t self, req: &RequestView<'r>) -> Result<Routed<'t, 'r>, NoRoute> {
        let vhost = self.virtual_host(req.authority).ok_or(NoRoute::UnknownHost)?;
        let view = self.routing_view(vhost, req);
        let route = vhost.routes.iter().find(|r| r.matcher.matches(&view)).ok_or(NoRoute::NoMatch)?;
        Ok(Routed { vhost, route, view })
    }
}

/// A chosen route.
#[derive(Debug, Clone, Copy)]
pub struct Routed<'t, 'r> {
    /// The virtual host.
    pub vhost: &'t VirtualHost,
    /// The route.
    pub route: &'t Route,
    /// The request as routing saw it.
    pub view: RequestView<'r>,
}
