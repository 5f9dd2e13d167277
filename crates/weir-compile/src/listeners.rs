//! Listeners: one per Gateway server port for Gateways that select this instance, and
//! the mesh listener. Each gets its virtual hosts and their ordered routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_model::types::{Gateway, VirtualService};
use weir_table::{
    Action, Forward, HeaderOps, HostMap, HttpMatch, L4Route, Listener, ListenerRole, Route, Serve, TlsMode, TlsServer,
    VirtualHost, WeightedCluster,
};

use crate::Instance;
use crate::clusters::{Clusters, PortContext};
use crate::egress;
use crate::hosts::{self, GatewayRef};
use crate::l4::{self, L4Place};
use crate::notes::{Note, Notes, Target};
use crate::registry::Registry;
use crate::route_policy;
use crate::routes::{self, Place};
use crate::store::{Item, Store, selects, visible};

/// Protocols served as HTTP on a gateway server.
const HTTP_PROTOCOLS: [&str; 5] = ["HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"];
/// Protocols served as opaque TCP (Istio treats MONGO, MYSQL, REDIS as TCP).
const TCP_PROTOCOLS: [&str; 4] = ["TCP", "MONGO", "MYSQL", "REDIS"];
/// ALPN offered by terminating HTTPS servers, as Envoy's gateway does.
const HTTP_ALPN: [&str; 2] = ["h2", "http/1.1"];

/// What a gateway server carries, by its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain HTTP (also h2c).
    Http,
    /// HTTPS: TLS, then HTTP (or, PASSTHROUGH, TLS routes).
    Https,
    /// TLS: TLS, then TCP routes (or, PASSTHROUGH, TLS routes).
    Tls,
    /// Plain TCP routes.
    Tcp,
}

impl Kind {
    fn of(protocol: &str) -> Option<Kind> {
        if HTTP_PROTOCOLS.contains(&protocol) {
            Some(Kind::Http)
        } else if protocol == "HTTPS" {
            Some(Kind::Https)
        } else if protocol == "TLS" {
            Some(Kind::Tls)
        } else if TCP_PROTOCOLS.contains(&protocol) {
            Some(Kind::Tcp)
        } else {
            None
        }
    }

    /// Whether the port's connections open with TLS.
    fn encrypted(self) -> bool {
        matches!(self, Kind::Https | Kind::Tls)
    }
}

struct GatewayListener {
    bind: Option<String>,
    port: u16,
    protocol: String,
    encrypted: bool,
    /// domain -> (VirtualService indexes in store order, https redirect)
    domains: BTreeMap<String, (Vec<usize>, bool)>,
    /// Gateways feeding this listener.
    gateways: Vec<GatewayRef>,
    tls: Vec<TlsServer>,
    tcp: Vec<L4Route>,
}

/// A gateway server's hosts as (namespace filter, DNS name lower case).
fn server_hosts(hosts: &[String]) -> Vec<(String, String)> {
    hosts
        .iter()
        .map(|h| match h.split_once('/') {
            Some((ns, dns)) => (ns.to_string(), dns.to_ascii_lowercase()),
            None => ("*".to_string(), h.to_ascii_lowercase()),
        })
        .collect()
}

/// The VirtualServices bound to `gref` whose hosts fall under the server's hosts, with
/// the domains they share, in store order.
fn bound_services<'s>(
    store: &'s Store,
    gw: &Item<Gateway>,
    gref: &GatewayRef,
    hosts_of_server: &[(String, String)],
    instance: &Instance,
) -> Vec<(usize, &'s Item<VirtualService>, Vec<String>)> {
    let mut out = Vec::new();
    for (vi, vs) in store.virtual_services.iter().enumerate() {
        if vs.spec.hosts.is_empty() || !routes::binds_to(vs, gref) {
            continue;
        }
        if !visible(&vs.spec.export_to, &vs.meta.namespace, &gw.meta.namespace) {
            continue;
        }
        let mut domains = Vec::new();
        for h in &vs.spec.hosts {
            let vs_host = hosts::expand(h, &vs.meta.namespace, &instance.domain);
            for (sns, sdns) in hosts_of_server {
                let ns_ok =
                    sns == "*" || (sns == "." && vs.meta.namespace == gw.meta.namespace) || *sns == vs.meta.namespace;
                if !ns_ok {
                    continue;
                }
                if let Some(domain) = hosts::intersect(&vs_host, sdns)
                    && !domains.contains(&domain)
                {
                    domains.push(domain);
                }
            }
        }
        if !domains.is_empty() {
            out.push((vi, vs, domains));
        }
    }
    out
}

/// Gateway listeners for the Gateways whose selector matches the instance labels.
pub(crate) fn gateways(
    store: &Store,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
) -> Vec<Listener> {
    let mut listeners: Vec<GatewayListener> = Vec::new();
    for gw in &store.gateways {
        if !selects(&gw.spec.selector, &instance.labels) {
            continue;
        }
        let gref = GatewayRef::Gateway { namespace: gw.meta.namespace.clone(), name: gw.meta.name.clone() };
        let target = Target::of(weir_model::Kind::Gateway, gw);
        for (si, server) in gw.spec.servers.iter().enumerate() {
            let at = weir_model::FieldPath::root().key("spec").key("servers").index(si);
            let not_served = |path: weir_model::FieldPath, m: String| Note::not_served(Some(target.clone()), path, m);
            let Some(port) = &server.port else { continue };
            let protocol = port.protocol.to_ascii_uppercase();
            let Ok(number) = u16::try_from(port.number) else { continue };
            let Some(kind) = Kind::of(&protocol) else {
                let m = format!(
                    "server port {number} ({protocol}) is not served: weir serves HTTP, HTTPS, HTTP2, GRPC, TLS and \
                     TCP gateway servers"
                );
                notes.push(not_served(at.key("port").key("protocol"), m));
                continue;
            };
            let tls_mode = match (kind.encrypted(), &server.tls) {
                (false, _) => None,
                (true, None) => {
                    let m = format!("server port {number} ({protocol}) has no tls settings and is not served");
                    notes.push(not_served(at.clone(), m));
                    continue;
                }
                (true, Some(t)) => match l4::mode(t) {
                    Some(m) => Some(m),
                    None => {
                        let m = format!(
                            "server port {number} ({protocol}): tls mode {} is not served (it needs the mesh's own \
                             certificates)",
                            t.effective_mode().as_str()
                        );
                        notes.push(not_served(at.key("tls").key("mode"), m));
                        continue;
                    }
                },
            };
            let bind = (!server.bind.is_empty()).then(|| server.bind.clone());
            let idx = match listeners.iter().position(|l| l.port == number && l.bind == bind) {
                Some(i) => i,
                None => {
                    listeners.push(GatewayListener {
                        bind: bind.clone(),
                        port: number,
                        protocol: protocol.clone(),
                        encrypted: kind.encrypted(),
                        domains: BTreeMap::new(),
                        gateways: Vec::new(),
                        tls: Vec::new(),
                        tcp: Vec::new(),
                    });
                    listeners.len() - 1
                }
            };
            let l = &mut listeners[idx];
            let first_kind = Kind::of(&l.protocol);
            let compatible = l.encrypted == kind.encrypted()
                && (kind.encrypted() || (kind == Kind::Tcp) == (first_kind == Some(Kind::Tcp)));
            if !compatible {
                let m = format!(
                    "server port {number} ({protocol}) conflicts with the {} server already on that port; it is not \
                     served",
                    l.protocol
                );
                notes.push(not_served(at.key("port"), m));
                continue;
            }
            if !l.gateways.contains(&gref) {
                l.gateways.push(gref.clone());
            }
            let hosts_of_server = server_hosts(&server.hosts);
            let bound = bound_services(store, gw, &gref, &hosts_of_server, instance);
            let dns_hosts: Vec<String> = hosts_of_server.iter().map(|(_, d)| d.clone()).collect();
            let place = L4Place { gateway: &gref, port: number, server_hosts: &dns_hosts };
            let origin: Box<str> =
                format!("{}/{}", gw.id(), if port.name.is_empty() { &protocol } else { &port.name }).into();
            match (kind, tls_mode) {
                (Kind::Http, _) | (Kind::Https, Some(TlsMode::Simple | TlsMode::Mutual | TlsMode::OptionalMutual)) => {
                    let redirect = kind == Kind::Http && server.tls.as_ref().is_some_and(|t| t.https_redirect);
                    for (vi, _, domains) in &bound {
                        for domain in domains {
                            let entry = l.domains.entry(domain.clone()).or_default();
                            if !entry.0.contains(vi) {
                                entry.0.push(*vi);
                            }
                            entry.1 |= redirect;
                        }
                    }
                    if let (Some(mode), Some(t)) = (tls_mode, &server.tls) {
                        l.tls.push(TlsServer {
                            origin,
                            hosts: dns_hosts.iter().map(|h| h.as_str().into()).collect(),
                            mode,
                            termination: {
                                notes.extend(
                                    l4::not_executed(t, &format!("server port {number}"))
                                        .into_iter()
                                        .map(|m| not_served(at.key("tls"), m)),
                                );
                                Some(l4::termination(t, &HTTP_ALPN))
                            },
                            serve: Serve::Http,
                        });
                    }
                }
                (Kind::Https | Kind::Tls, Some(TlsMode::Passthrough)) => {
                    let routes: Vec<L4Route> = bound
                        .iter()
                        .flat_map(|(_, vs, _)| l4::tls_routes(vs, &place, instance, clusters, notes))
                        .collect();
                    l.tls.push(TlsServer {
                        origin,
                        hosts: dns_hosts.iter().map(|h| h.as_str().into()).collect(),
                        mode: TlsMode::Passthrough,
                        termination: None,
                        serve: Serve::Tcp(routes),
                    });
                }
                (Kind::Tls, Some(mode)) => {
                    let routes: Vec<L4Route> = bound
                        .iter()
                        .flat_map(|(_, vs, _)| l4::tcp_routes(vs, &place, instance, clusters, notes))
                        .collect();
                    let Some(t) = &server.tls else { continue };
                    l.tls.push(TlsServer {
                        origin,
                        hosts: dns_hosts.iter().map(|h| h.as_str().into()).collect(),
                        mode,
                        termination: {
                            notes.extend(
                                l4::not_executed(t, &format!("server port {number}"))
                                    .into_iter()
                                    .map(|m| not_served(at.key("tls"), m)),
                            );
                            Some(l4::termination(t, &[]))
                        },
                        serve: Serve::Tcp(routes),
                    });
                }
                (Kind::Tcp, _) => {
                    for (_, vs, _) in &bound {
                        l.tcp.extend(l4::tcp_routes(vs, &place, instance, clusters, notes));
                    }
                }
                (Kind::Https | Kind::Tls, None) => {}
            }
        }
    }
    listeners
        .into_iter()
        .map(|l| {
            let mut out = Listener {
                name: format!("{}_{}", l.bind.as_deref().unwrap_or("0.0.0.0"), l.port).into(),
                role: ListenerRole::Gateway,
                bind: l.bind.as_deref().map(Into::into),
                port: l.port,
                protocol: l.protocol.as_str().into(),
                gateways: l
                    .gateways
                    .iter()
                    .filter_map(|g| match g {
                        GatewayRef::Gateway { namespace, name } => Some(format!("{namespace}/{name}").into()),
                        GatewayRef::Mesh => None,
                    })
                    .collect(),
                hosts: HostMap::default(),
                virtual_hosts: Vec::new(),
                tls: l.tls,
                tcp: l.tcp,
            };
            for (domain, (mut vss, require_tls)) in l.domains {
                vss.sort_unstable();
                let mut routes_out = Vec::new();
                for vi in vss {
                    let vs = &store.virtual_services[vi];
                    // The VS may be bound to several of the listener's gateways: build
                    // for the first that it names.
                    let Some(target) = l.gateways.iter().find(|g| routes::binds_to(vs, g)) else { continue };
                    let place = Place { target: target.clone(), server_port: Some(l.port) };
                    routes_out.extend(routes::build(vs, &place, store, instance, clusters, notes));
                }
                out.hosts.insert(&domain, out.virtual_hosts.len());
                out.virtual_hosts.push(VirtualHost {
                    name: format!("{domain}:{}", l.port).into(),
                    domains: vec![domain.as_str().into()],
                    routes: routes_out,
                    require_tls,
                    default_port: l.port,
                    service: None,
                });
            }
            out
        })
        .collect()
}

/// The mesh listeners: the main one (`--mesh-listener`, every port, routed by Host),
/// then one per Sidecar egress listener that is an explicit local listener (a port,
/// with `captureMode: NONE` or a `bind`), serving only the hosts it imports on its
/// port.
pub(crate) fn mesh_listeners(
    store: &Store,
    registry: &Registry,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
) -> Vec<Listener> {
    let scopes = egress::scopes(store, instance, notes);
    scopes.iter().map(|scope| mesh(store, registry, instance, clusters, notes, scope)).collect()
}

/// A mesh listener: a virtual host per visible service it imports (its routes from the
/// first mesh VirtualService for its host, else a default route to the service), plus
/// one per VirtualService host that names no service, and the catch-all of the
/// outbound traffic policy.
fn mesh(
    store: &Store,
    registry: &Registry,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
    scope: &egress::Scope,
) -> Listener {
    let ns = instance.namespace.as_str();
    let place = Place { target: GatewayRef::Mesh, server_port: scope.port };
    let mesh_vs: Vec<(usize, Vec<String>)> = store
        .virtual_services
        .iter()
        .enumerate()
        .filter(|(_, vs)| !vs.spec.hosts.is_empty())
        .filter(|(_, vs)| routes::binds_to(vs, &GatewayRef::Mesh))
        .filter(|(_, vs)| visible(&vs.spec.export_to, &vs.meta.namespace, ns))
        .map(|(i, vs)| {
            let hs: Vec<String> =
                vs.spec.hosts.iter().map(|h| hosts::expand(h, &vs.meta.namespace, &instance.domain)).collect();
            (i, hs.into_iter().filter(|h| scope.imports(&vs.meta.namespace, h)).collect::<Vec<_>>())
        })
        .filter(|(_, hs)| !hs.is_empty())
        .collect();
    let mut listener = Listener {
        name: scope.name.as_str().into(),
        role: ListenerRole::Mesh,
        bind: scope.bind.as_deref().map(Into::into),
        port: scope.port.unwrap_or(0),
        protocol: "HTTP".into(),
        gateways: Vec::new(),
        hosts: HostMap::default(),
        virtual_hosts: Vec::new(),
        tls: Vec::new(),
        tcp: Vec::new(),
    };
    let add = |listener: &mut Listener, domains: Vec<String>, vh: VirtualHost| {
        let idx = listener.virtual_hosts.len();
        let mut used = false;
        let mut kept = Vec::new();
        for d in domains {
            if listener.hosts.get_exact(&d).is_none() {
                listener.hosts.insert(&d, idx);
                kept.push(d.as_str().into());
                used = true;
            }
        }
        if used {
            // A large mesh holds tens of thousands of these: no spare capacity.
            kept.shrink_to_fit();
            let mut vh = VirtualHost { domains: kept, ..vh };
            vh.routes.shrink_to_fit();
            listener.virtual_hosts.push(vh);
        }
    };
    // Mesh VirtualServices by host: exact names hashed, wildcards listed.
    let mut by_exact: crate::fast_map::HashMap<&str, Vec<usize>> = Default::default();
    let mut wildcards: Vec<(&str, usize)> = Vec::new();
    for (vi, hs) in &mesh_vs {
        for h in hs {
            if h.starts_with('*') {
                wildcards.push((h, *vi));
            } else {
                by_exact.entry(h).or_default().push(*vi);
            }
        }
    }
    for svc in registry.visible_services(ns) {
        if !scope.imports(&svc.namespace, &svc.host) || scope.port.is_some_and(|p| svc.port(p).is_none()) {
            continue;
        }
        // The most specific VS host covering the service; ties go to the older VS.
        let exact =
            by_exact.get(svc.host.as_str()).and_then(|v| v.iter().min()).map(|vi| (hosts::specificity(&svc.host), *vi));
        let chosen = exact.or_else(|| {
            wildcards
                .iter()
                .filter(|(h, _)| hosts::subset_of(&svc.host, h))
                .map(|(h, vi)| (hosts::specificity(h), *vi))
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        });
        let routes_out = match chosen {
            Some((_, vi)) => routes::build(&store.virtual_services[vi], &place, store, instance, clusters, notes),
            None => default_route(&svc.host, clusters),
        };
        let default_port = scope.port.or(svc.default_port()).unwrap_or(80);
        let mut names = hosts::aliases(&svc.host, ns, &instance.domain);
        names.extend(svc.vips.iter().cloned());
        add(
            &mut listener,
            names,
            VirtualHost {
                name: svc.host.as_str().into(),
                domains: Vec::new(),
                routes: routes_out,
                require_tls: false,
                default_port,
                service: Some(svc.host.as_str().into()),
            },
        );
    }
    for (vi, hs) in &mesh_vs {
        for h in hs {
            if listener.hosts.get_exact(h).is_some() {
                continue;
            }
            let routes_out = routes::build(&store.virtual_services[*vi], &place, store, instance, clusters, notes);
            add(
                &mut listener,
                hosts::aliases(h, ns, &instance.domain),
                VirtualHost {
                    name: h.as_str().into(),
                    domains: Vec::new(),
                    routes: routes_out,
                    require_tls: false,
                    default_port: 80,
                    service: None,
                },
            );
        }
    }
    // Hosts outside the registry (and outside every VirtualService): the outbound
    // traffic policy decides.
    let mode = egress::outbound_mode(store, instance);
    let passthrough = egress::passthrough_cluster(&mut clusters.clusters);
    if listener.hosts.get_exact("*").is_none() {
        add(&mut listener, vec!["*".to_string()], egress::catch_all(mode, passthrough));
    }
    if scope.port.is_none() {
        listener.tls = vec![mesh_tls(store, registry, instance, clusters, notes, mode, passthrough)];
    }
    listener
}

/// The mesh listener's TLS routes (a client that opens with a ClientHello): the mesh
/// VirtualServices' `tls` routes by SNI (their match `port`, when set, is taken as the
/// port 443 a TLS client dials), then each registry service with a TLS or HTTPS port by
/// its own name, then the outbound policy's catch-all.
fn mesh_tls(
    store: &Store,
    registry: &Registry,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
    mode: weir_model::types::OutboundMode,
    passthrough: weir_table::ClusterId,
) -> TlsServer {
    const TLS_PORT: u16 = 443;
    let ns = instance.namespace.as_str();
    let any = ["*".to_string()];
    let place = L4Place { gateway: &GatewayRef::Mesh, port: TLS_PORT, server_hosts: &any };
    let mut routes = Vec::new();
    for vs in &store.virtual_services {
        if vs.spec.tls.is_empty() || !routes::binds_to(vs, &GatewayRef::Mesh) {
            continue;
        }
        if !visible(&vs.spec.export_to, &vs.meta.namespace, ns) {
            continue;
        }
        routes.extend(l4::tls_routes(vs, &place, instance, clusters, notes));
    }
    for svc in registry.visible_services(ns) {
        let tls_ports = svc.ports.iter().filter(|p| p.protocol == "TLS" || p.protocol == "HTTPS");
        let Some(port) = tls_ports.min_by_key(|p| (p.number != TLS_PORT, p.number)) else { continue };
        let (cluster, name) = clusters.resolve(&svc.host, Some(port.number), "", PortContext::Listener(port.number));
        routes.push(L4Route {
            origin: svc.origin.as_str().into(),
            sni_hosts: vec![svc.host.as_str().into()],
            destination_subnets: Vec::new(),
            port: None,
            destinations: Box::new([WeightedCluster {
                cluster,
                name: name.into(),
                weight: 1,
                cumulative: 1,
                headers: HeaderOps::default(),
                authority: None,
            }]),
            total_weight: 1,
        });
    }
    egress::mesh_tls(routes, mode, passthrough)
}

/// A service without VirtualService: everything to the service, with the default
/// retry policy and no timeout.
fn default_route(host: &str, clusters: &mut Clusters<'_>) -> Vec<Route> {
    let (cluster, name) = clusters.resolve(host, None, "", PortContext::AnyPort);
    let fwd = Forward {
        destinations: vec![WeightedCluster {
            cluster,
            name: name.into(),
            weight: 1,
            cumulative: 1,
            headers: HeaderOps::default(),
            authority: None,
        }]
        .into(),
        total_weight: 1,
        rewrite: None,
        authority: None,
        headers: HeaderOps::default(),
        timeout: None,
        retry: Some(route_policy::default_retry()),
        fault: None,
        mirrors: Box::new([]),
        cors: None,
    };
    vec![Route {
        name: "default".into(),
        origin: "".into(),
        matcher: HttpMatch::default(),
        action: Arc::new(Action::Forward(fwd)),
    }]
}
