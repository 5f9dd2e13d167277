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

/// The outbound policy in force: the Sidecar selecting this instance in its namespace,
/// else the namespace's selector-less Sidecar, else the root namespace's; `ALLOW_ANY`
/// when none sets one (MeshConfig's default).
pub(crate) fn outbound_mode(store: &Store, instance: &Instance) -> OutboundMode {
    let applies = |s: &&Item<Sidecar>| match &s.spec.workload_selector {
        Some(sel) => s.meta.namespace == instance.namespace && selects(&sel.labels, &instance.labels),
        None => false,
    };
    let namespace_default = |ns: &str| {
        let ns = ns.to_string();
        move |s: &&Item<Sidecar>| s.spec.workload_selector.is_none() && s.meta.namespace == ns
    };
    let chosen = store
        .sidecars
        .iter()
        .find(applies)
        .or_else(|| store.sidecars.iter().find(namespace_default(&instance.namespace)))
        .or_else(|| store.sidecars.iter().find(namespace_default(&instance.root_namespace)));
    chosen.and_then(|s| s.spec.outbound_traffic_policy.as_ref()).and_then(|p| p.mode).unwrap_or(OutboundMode::AllowAny)
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
        limits: ConnectionLimits::default(),
        outlier: None,
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
