//! `weir explain`: the decision trace of one request on one listener, from the same
//! lookup the proxy runs ([`Listener::route`]): the virtual host, each route tried with
//! the condition that failed, the route chosen, its weighted destinations and their
//! clusters, the policies in force, and the outcome (or the response flag the proxy
//! would give when it cannot route). Pure: a table and a request view in, a [`Trace`]
//! out.

use serde::Serialize;
use serde_json::Value;

use crate::action::Action;
use crate::route::{Listener, NoRoute, RequestView, RouteTable};

/// One route tried.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    /// Its index in the virtual host.
    pub index: usize,
    /// Its name (may be empty).
    pub name: String,
    /// The VirtualService it came from.
    pub origin: String,
    /// True for the route chosen.
    pub matched: bool,
    /// The condition that failed (empty when matched).
    pub reason: String,
}

/// The route chosen.
#[derive(Debug, Clone, Serialize)]
pub struct Chosen {
    /// Its name.
    pub name: String,
    /// Its index in the virtual host.
    pub index: usize,
}

/// A weighted destination of the chosen route.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    /// The service host.
    pub host: String,
    /// The subset ("" for none).
    pub subset: String,
    /// The port (0 when the destination names no cluster).
    pub port: u16,
    /// Share of requests, percent.
    pub weight: f64,
    /// Cluster name.
    pub cluster: String,
    /// Endpoints of the cluster (`ip:port` or `name:port`).
    pub endpoints: Vec<String>,
}

/// The whole trace.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// Listener name.
    pub listener: String,
    /// Virtual host chosen by Host (`None`: no virtual host).
    pub virtual_host: Option<String>,
    /// The port routing saw.
    pub port: u16,
    /// Routes tried, in order, up to the one chosen.
    pub tried: Vec<Tried>,
    /// The route chosen.
    pub route: Option<Chosen>,
    /// Its destinations (forwarding routes).
    pub destinations: Vec<Destination>,
    /// The cluster of the first destination (`None`: 503 NC, or not forwarding).
    pub cluster: Option<String>,
    /// Route and cluster policies in force.
    pub policies: Value,
    /// What the proxy does: `forward`, `redirect`, `direct_response`, `https_redirect`,
    /// or a failure with its response flag (`404 NR`, `503 NC`, `503 UH`).
    pub outcome: String,
}

/// Explains `req` on `listener` of `table`.
pub fn explain(table: &RouteTable, listener: &Listener, req: &RequestView<'_>) -> Trace {
    let mut t = Trace {
        listener: listener.name.to_string(),
        virtual_host: None,
        port: req.port,
        tried: Vec::new(),
        route: None,
        destinations: Vec::new(),
        cluster: None,
        policies: Value::Null,
        outcome: String::new(),
    };
    let Some(vhost) = listener.virtual_host(req.authority) else {
        t.outcome = "404 NR: no virtual host for this Host".into();
        return t;
    };
    t.virtual_host = Some(vhost.name.to_string());
    let view = listener.routing_view(vhost, req);
    t.port = view.port;
    // The chosen route is the proxy's own lookup; the reasons are the matcher's.
    let routed = listener.route(req);
    for (index, r) in vhost.routes.iter().enumerate() {
        let failed = r.matcher.failing(&view);
        t.tried.push(Tried {
            index,
            name: r.name.to_string(),
            origin: r.origin.to_string(),
            matched: failed.is_none(),
            reason: failed.map(|f| r.matcher.describe_failure(f)).unwrap_or_default(),
        });
        if failed.is_none() {
            break;
        }
    }
    let route = match routed {
        Err(NoRoute::UnknownHost) => {
            t.outcome = "404 NR: no virtual host for this Host".into();
            return t;
        }
        Err(NoRoute::NoMatch) => {
            t.outcome = "404 NR: no route matched".into();
            return t;
        }
        Ok(r) => r.route,
    };
    let index = vhost.routes.iter().position(|r| std::ptr::eq(r, route)).unwrap_or(0);
    t.route = Some(Chosen { name: route.name.to_string(), index });
    if vhost.require_tls {
        t.outcome = "301 https_redirect (httpsRedirect)".into();
        return t;
    }
    match &*route.action {
        Action::Redirect(r) => {
            t.outcome = format!("{} redirect", r.status.as_u16());
            t.policies = serde_json::to_value(r).unwrap_or(Value::Null);
        }
        Action::Direct(d) => t.outcome = format!("{} direct_response", d.status.as_u16()),
        Action::Forward(f) => {
            let total: u32 = f.destinations.iter().map(|d| d.weight).sum();
            for d in f.destinations.iter() {
                let cluster = d.cluster.resolve(view.port).map(|id| table.cluster(id));
                let (host, subset, port) = match cluster {
                    Some(c) => (c.service.to_string(), c.subset.to_string(), c.port),
                    None => (d.name.rsplit('|').next().unwrap_or("").to_string(), String::new(), 0),
                };
                t.destinations.push(Destination {
                    host,
                    subset,
                    port,
                    weight: if total == 0 { 0.0 } else { f64::from(d.weight) * 100.0 / f64::from(total) },
                    cluster: d.name.to_string(),
                    endpoints: cluster
                        .map(|c| c.endpoints.iter().map(|e| e.address.to_string()).collect())
                        .unwrap_or_default(),
                });
            }
            let first = f.destinations.first().and_then(|d| d.cluster.resolve(view.port)).map(|id| table.cluster(id));
            t.cluster = first.map(|c| c.name.to_string());
            t.policies = serde_json::json!({
                "timeout": f.timeout.map(crate::ser::duration_text),
                "retries": serde_json::to_value(&f.retry).unwrap_or(Value::Null),
                "fault": serde_json::to_value(&f.fault).unwrap_or(Value::Null),
                "mirrors": serde_json::to_value(&f.mirrors).unwrap_or(Value::Null),
                "headers": serde_json::to_value(&f.headers).unwrap_or(Value::Null),
                "rewrite": serde_json::to_value(&f.rewrite).unwrap_or(Value::Null),
                "load_balancer": first.map(|c| serde_json::to_value(&c.lb).unwrap_or(Value::Null)),
                "connection_pool": first.map(|c| serde_json::to_value(&c.limits).unwrap_or(Value::Null)),
                "outlier_detection": first.map(|c| serde_json::to_value(&c.outlier).unwrap_or(Value::Null)),
                "tls": first.map(|c| serde_json::to_value(&c.upstream_tls).unwrap_or(Value::Null)),
            });
            t.outcome = match first {
                None => "503 NC: the destination names no cluster (service, port or subset)".into(),
                Some(c) if c.endpoints.is_empty() && c.lb != crate::cluster::LbPolicy::Passthrough => {
                    "503 UH: the cluster has no endpoints".into()
                }
                Some(c) => format!("forward to {}", c.name),
            };
        }
    }
    t
}
