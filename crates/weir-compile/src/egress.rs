//! Egress control on the mesh listener: what happens to a request for a host outside
//! the registry, by the `outboundTrafficPolicy` of the Sidecar that applies to this
//! instance. `ALLOW_ANY` (Istio's default) sends it on to the host it names through
//! `PassthroughCluster` (the name resolved when connecting, no route timeout, no
//! retries), as Istio's `allow_any` virtual host does; `REGISTRY_ONLY` answers 502 from
//! the `block_all` virtual host, and telemetry names `BlackHoleCluster`.

use std::sync::Arc;

use weir_model::types::{OutboundMode, Sidecar};
use weir_table::{
    Action, Cluster, ClusterId, ClusterRef, ConnectionLimits, DirectResponse, Forward, HeaderOps, HttpMatch, L4Route,
    LbPolicy, Route, Serve, TlsMode, TlsServer, UpstreamProtocol, VirtualHost, WeightedCluster,
};

use crate::Instance;
use crate::store::{Item, Store, selects};

use weir_table::cluster::{BLACKHOLE_CLUSTER as BLACKHOLE, PASSTHROUGH_CLUSTER as PASSTHROUGH};

/// The Sidecar that applies to this instance: the one selecting it in its namespace,
/// else the namespace's selector-less one, else the root namespace's.
pub(crate) fn sidecar<'s>(store: &'s Store, instance: &Instance) -> Option<&'s Item<Sidecar>> {
    let applies = |s: &&Item<Sidecar>| match &s.spec.workload_selector {
        Some(sel) => s.meta.namespace == instance.namespace && selects(&sel.labels, &instance.labels),
        None => false,
    };
    let namespace_default = |ns: &str| {
        let ns = ns.to_string();
        move |s: &&Item<Sidecar>| s.spec.workload_selector.is_none() && s.meta.namespace == ns
    };
    store
        .sidecars
        .iter()
        .find(applies)
        .or_else(|| store.sidecars.iter().find(namespace_default(&instance.namespace)))
        .or_else(|| store.sidecars.iter().find(namespace_default(&instance.root_namespace)))
}

/// The outbound policy in force: the applying Sidecar's, `ALLOW_ANY` when none sets one
/// (MeshConfig's default).
pub(crate) fn outbound_mode(store: &Store, instance: &Instance) -> OutboundMode {
    sidecar(store, instance)
        .and_then(|s| s.spec.outbound_traffic_policy.as_ref())
        .and_then(|p| p.mode)
        .unwrap_or(OutboundMode::AllowAny)
}

/// `PassthroughCluster`: no endpoints; each request goes to the host and port it names.
pub(crate) fn passthrough_cluster(clusters: &mut Vec<Cluster>) -> ClusterId {
    let id = ClusterId(clusters.len());
    clusters.push(Cluster {
        name: PASSTHROUGH.into(),
        service: PASSTHROUGH.into(),
        namespace: "".into(),
        // 0: the port comes from the request (80 when it names none).
        port: 0,
        subset: "".into(),
        port_protocol: "TCP".into(),
        endpoints: Vec::<weir_table::Endpoint>::new(),
        lb: LbPolicy::Passthrough,
        protocol: UpstreamProtocol::Http1,
        limits: ConnectionLimits::default().into(),
        outlier: None,
        upstream_tls: None,
    });
    id
}

fn to(id: ClusterId) -> Box<[WeightedCluster]> {
    Box::new([WeightedCluster {
        cluster: ClusterRef::Fixed(id),
        name: PASSTHROUGH.into(),
        weight: 1,
        cumulative: 1,
        headers: HeaderOps::default(),
        authority: None,
    }])
}

/// The catch-all virtual host for hosts outside the registry.
pub(crate) fn catch_all(mode: OutboundMode, passthrough: ClusterId) -> VirtualHost {
    let (name, action) = match mode {
        // ALLOW_ANY_DYNAMIC_DNS: also passes through by name here, as weir resolves the
        // name of a passthrough destination when it connects.
        OutboundMode::AllowAny | OutboundMode::AllowAnyDynamicDns => (
            "allow_any",
            Action::Forward(Forward {
                destinations: to(passthrough),
                total_weight: 1,
                rewrite: None,
                authority: None,
                headers: HeaderOps::default(),
                timeout: None,
                retry: None,
                fault: None,
                mirrors: Box::new([]),
                cors: None,
            }),
        ),
        OutboundMode::RegistryOnly => (
            "block_all",
            Action::Direct(DirectResponse {
                status: http::StatusCode::BAD_GATEWAY,
                body: bytes::Bytes::new(),
                headers: HeaderOps::default(),
            }),
        ),
    };
    VirtualHost {
        name: name.into(),
        domains: vec!["*".into()],
        routes: vec![Route {
            name: name.into(),
            origin: "".into(),
            matcher: HttpMatch::default(),
            action: Arc::new(action),
        }],
        require_tls: false,
        default_port: 80,
        service: Some(if mode == OutboundMode::RegistryOnly { BLACKHOLE } else { PASSTHROUGH }.into()),
    }
}

/// The mesh listener's TLS side: a ClientHello is routed by SNI through `routes` (the
/// mesh VirtualServices' `tls` routes, then registry services by name), and under
/// `ALLOW_ANY` any other name passes through to itself on port 443.
pub(crate) fn mesh_tls(mut routes: Vec<L4Route>, mode: OutboundMode, passthrough: ClusterId) -> TlsServer {
    if mode != OutboundMode::RegistryOnly {
        routes.push(L4Route {
            origin: "".into(),
            sni_hosts: Vec::new(),
            destination_subnets: Vec::new(),
            port: None,
            destinations: to(passthrough),
            total_weight: 1,
        });
    }
    TlsServer {
        origin: "mesh".into(),
        hosts: vec!["*".into()],
        mode: TlsMode::Passthrough,
        termination: None,
        serve: Serve::Tcp(routes),
    }
}

/// What one mesh listener serves: its name and address, its port (`None`: every port,
/// by Host), and the hosts it imports (`None`: every visible host).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) name: String,
    pub(crate) bind: Option<String>,
    pub(crate) port: Option<u16>,
    /// `(namespace, host)` patterns from a Sidecar egress listener's `hosts`.
    imports: Option<Vec<(String, String)>>,
    /// The Sidecar's namespace (for `./host`).
    own_namespace: String,
}

impl Scope {
    /// True when the listener imports `host` (an FQDN or wildcard) of namespace `ns`.
    pub(crate) fn imports(&self, ns: &str, host: &str) -> bool {
        let Some(list) = &self.imports else { return true };
        list.iter().any(|(pns, phost)| {
            let ns_ok = match pns.as_str() {
                "*" => true,
                "." => ns == self.own_namespace,
                "~" => false,
                other => other == ns,
            };
            ns_ok && (phost == "*" || crate::hosts::subset_of(host, phost))
        })
    }
}

/// The mesh listeners the applying Sidecar asks for. Without a Sidecar (or without
/// `egress`), one listener importing everything. Otherwise the main listener imports
/// what the port-less egress listener lists (nothing when there is none, as in Istio),
/// and each egress listener with a port and `captureMode: NONE` or a `bind` becomes a
/// local listener on `bind` (127.0.0.1 by default) and that port. Egress listeners with
/// a port that rely on capture are not served (weir does not capture yet): noted.
pub(crate) fn scopes(store: &Store, instance: &Instance, notes: &mut crate::notes::Notes) -> Vec<Scope> {
    let all =
        Scope { name: "mesh".into(), bind: None, port: None, imports: None, own_namespace: instance.namespace.clone() };
    let Some(sc) = sidecar(store, instance) else { return vec![all] };
    if sc.spec.egress.is_empty() {
        return vec![all];
    }
    let own = sc.meta.namespace.clone();
    let parse = |hosts: &[String]| -> Vec<(String, String)> {
        hosts
            .iter()
            .filter_map(|h| h.split_once('/'))
            .map(|(ns, host)| (ns.to_string(), host.to_ascii_lowercase()))
            .collect()
    };
    let main_imports = sc.spec.egress.iter().find(|e| e.port.is_none()).map(|e| parse(&e.hosts)).unwrap_or_default();
    let mut out = vec![Scope { imports: Some(main_imports), own_namespace: own.clone(), ..all }];
    let target = crate::notes::Target::of(weir_model::Kind::Sidecar, sc);
    for (i, e) in sc.spec.egress.iter().enumerate() {
        let at = weir_model::FieldPath::root().key("spec").key("egress").index(i);
        let Some(port) = &e.port else { continue };
        let Ok(number) = u16::try_from(port.number) else { continue };
        let explicit = e.capture_mode == Some(weir_model::types::CaptureMode::None) || !e.bind.is_empty();
        if !explicit {
            let m = format!(
                "egress listener on port {number} relies on traffic capture, which weir does not do yet; \
                 give it captureMode: NONE (or a bind address) to serve it as a local listener"
            );
            notes.push(crate::notes::Note::not_served(Some(target.clone()), at, m));
            continue;
        }
        if e.bind.starts_with("unix://") {
            let m = format!("egress listener bind {} (a unix socket) is not served", e.bind);
            notes.push(crate::notes::Note::not_served(Some(target.clone()), at.key("bind"), m));
            continue;
        }
        let bind = if e.bind.is_empty() { "127.0.0.1".to_string() } else { e.bind.clone() };
        out.push(Scope {
            name: format!("{bind}_{number}"),
            bind: Some(bind),
            port: Some(number),
            imports: Some(parse(&e.hosts)),
            own_namespace: own.clone(),
        });
    }
    out
}
