//! `decide` without sockets: a small hand-built table and requests made of parts.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::*;
use crate::action::{ClusterRef, HeaderOps, RedirectPath, RedirectPort};
use crate::cluster::{Cluster, ConnectionLimits, UpstreamProtocol};
use crate::hosts::HostMap;
use crate::matcher::{HeaderKey, HeaderMatch, HttpMatch, PathMatch, StrMatch};
use crate::route::{ListenerRole, Route, VirtualHost};

fn cluster(name: &str, lb: LbPolicy) -> Cluster {
    Cluster {
        name: name.into(),
        service: "svc.ns.svc.cluster.local".into(),
        namespace: "ns".into(),
        port: 80,
        subset: "".into(),
        port_protocol: "HTTP".into(),
        endpoints: Vec::new(),
        lb,
        protocol: UpstreamProtocol::Http1,
        limits: ConnectionLimits::default().into(),
        outlier: None,
        upstream_tls: None,
    }
}

fn dest(id: usize, weight: u32, cumulative: u32) -> WeightedCluster {
    WeightedCluster {
        cluster: ClusterRef::Fixed(ClusterId(id)),
        name: format!("c{id}").into(),
        weight,
        cumulative,
        headers: HeaderOps::default(),
        authority: None,
    }
}

fn forward(destinations: Vec<WeightedCluster>, timeout: Option<Duration>, retry: Option<RetryPolicy>) -> Action {
    let total_weight = destinations.last().map_or(0, |d| d.cumulative);
    Action::Forward(Forward {
        destinations: destinations.into(),
        total_weight,
        rewrite: None,
        authority: None,
        headers: HeaderOps::default(),
        timeout,
        retry,
        fault: None,
        mirrors: Box::new([]),
        cors: None,
    })
}

fn route(name: &str, matcher: HttpMatch, action: Action) -> Route {
    Route { name: name.into(), origin: "ns/vs".into(), matcher, action: Arc::new(action) }
}

fn prefix(p: &str) -> HttpMatch {
    HttpMatch {
        path: Some(PathMatch { matcher: StrMatch::Prefix(p.into()), ignore_case: false }),
        ..HttpMatch::default()
    }
}

fn default_retry() -> RetryPolicy {
    RetryPolicy::with_defaults(
        2,
        RetryOn::CONNECT_FAILURE
            | RetryOn::REFUSED_STREAM
            | RetryOn::GRPC_UNAVAILABLE
            | RetryOn::GRPC_CANCELLED
            | RetryOn::RETRIABLE_STATUS_CODES,
    )
}

/// One gateway listener for `example.com` (and a TLS-only host) with routes for every
/// kind of action, and four clusters.
fn table() -> (RouteTable, usize) {
    let canary = route("canary", prefix("/canary"), forward(vec![dest(0, 90, 90), dest(1, 10, 100)], None, None));
    let slow = route(
        "slow",
        prefix("/slow"),
        forward(vec![dest(0, 1, 1)], Some(Duration::from_secs(2)), {
            let mut r = default_retry();
            r.per_try_timeout = Some(Duration::from_millis(500));
            Some(r)
        }),
    );
    let redirect = route(
        "moved",
        prefix("/old"),
        Action::Redirect(Redirect {
            scheme: None,
            authority: Some("new.example.com".into()),
            port: RedirectPort::Keep,
            path: RedirectPath::Keep,
            status: StatusCode::MOVED_PERMANENTLY,
            headers: HeaderOps::default(),
        }),
    );
    let direct = route(
        "teapot",
        prefix("/teapot"),
        Action::Direct(DirectResponse {
            status: StatusCode::IM_A_TEAPOT,
            body: Bytes::from_static(b"short and stout"),
            headers: HeaderOps::default(),
        }),
    );
    let sticky = route("sticky", prefix("/sticky"), forward(vec![dest(2, 1, 1)], None, Some(default_retry())));
    let cookie = route("cookie", prefix("/cookie"), forward(vec![dest(3, 1, 1)], None, Some(default_retry())));
    let jason = route(
        "jason",
        HttpMatch {
            headers: vec![HeaderMatch {
                key: HeaderKey::Name(http::HeaderName::from_static("end-user")),
                name: "end-user".into(),
                matcher: StrMatch::Exact("jason".into()),
                invert: false,
            }],
            ..HttpMatch::default()
        },
        forward(vec![dest(1, 1, 1)], None, None),
    );
    let rest = route("rest", HttpMatch::default(), forward(vec![dest(0, 1, 1)], None, Some(default_retry())));
    let vhost = VirtualHost {
        name: "example.com:8080".into(),
        domains: vec!["example.com".into()],
        routes: vec![canary, slow, redirect, direct, sticky, cookie, jason, rest],
        require_tls: false,
        default_port: 8080,
        service: None,
    };
    let tls_only = VirtualHost {
        name: "secure.example.com:8080".into(),
        domains: vec!["secure.example.com".into()],
        routes: vec![route("any", HttpMatch::default(), forward(vec![dest(0, 1, 1)], None, None))],
        require_tls: true,
        default_port: 8080,
        service: None,
    };
    let mut hosts = HostMap::default();
    hosts.insert("example.com", 0);
    hosts.insert("secure.example.com", 1);
    let listener = Listener {
        name: "0.0.0.0_8080".into(),
        role: ListenerRole::Gateway,
        bind: None,
        port: 8080,
        protocol: "HTTP".into(),
        gateways: Vec::new(),
        hosts,
        virtual_hosts: vec![vhost, tls_only],
        tls: Vec::new(),
        tcp: Vec::new(),
    };
    let key = HashKey::Header(http::HeaderName::from_static("x-user"));
    let cookie_key = HashKey::Cookie { name: "sess".into(), set_cookie_suffix: Some("; Max-Age=60; HttpOnly".into()) };
    let clusters = vec![
        cluster("c0", LbPolicy::LeastRequest),
        cluster("c1", LbPolicy::RoundRobin),
        cluster("c2", LbPolicy::RingHash { key, min_ring_size: 1024 }),
        cluster("c3", LbPolicy::Maglev { key: cookie_key, table_size: 65537 }),
    ];
    (RouteTable { version: 1, listeners: vec![listener], clusters }, 0)
}

struct Req {
    method: Method,
    authority: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: HeaderMap,
}

fn req(authority: &'static str, path: &'static str) -> Req {
    Req { method: Method::GET, authority, path, query: None, headers: HeaderMap::new() }
}

impl Req {
    fn header(mut self, k: &'static str, v: &'static str) -> Req {
        self.headers.append(k, HeaderValue::from_static(v));
        self
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: "http",
            authority: self.authority,
            path: self.path,
            path_and_query: self.path,
            query: self.query,
            headers: &self.headers,
            port: 8080,
        }
    }
}

fn facts(edge: bool, grpc: bool) -> Facts {
    Facts { peer: "10.1.2.3:5555".parse().unwrap(), edge, grpc }
}

/// Dice that always roll `v`.
fn fixed(v: u64) -> impl FnMut() -> u64 {
    move || v
}

fn plan_of<'t>(t: &'t RouteTable, r: &Req, facts: Facts, roll: u64) -> Plan<'t> {
    match decide(t, &t.listeners[0], &r.view(), &facts, &mut fixed(roll)) {
        Decision::Forward(p) => p,
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn the_weighted_destination_follows_the_draw() {
    let (t, _) = table();
    let r = req("example.com", "/canary");
    // The draw is taken from the top 32 bits: below 90% of the range -> the first.
    let low = plan_of(&t, &r, facts(true, false), 0);
    assert_eq!((low.route.name.as_ref(), low.cluster), ("canary", Some(ClusterId(0))));
    let high = plan_of(&t, &r, facts(true, false), u64::MAX);
    assert_eq!(high.cluster, Some(ClusterId(1)));
    assert_eq!(high.destination.weight, 10);
}

#[test]
fn non_forwarding_decisions() {
    let (t, _) = table();
    let d = |r: &Req| decide(&t, &t.listeners[0], &r.view(), &facts(true, false), &mut fixed(0));
    assert!(matches!(d(&req("nowhere.example", "/")), Decision::NoRoute(NoRoute::UnknownHost)));
    assert!(matches!(d(&req("secure.example.com", "/")), Decision::RequireTls));
    match d(&req("example.com", "/old/page")) {
        Decision::Redirect { route, redirect, port } => {
            assert_eq!(
                (route.name.as_ref(), redirect.authority.as_deref(), port),
                ("moved", Some("new.example.com"), 8080)
            );
        }
        other => panic!("{other:?}"),
    }
    match d(&req("example.com", "/teapot")) {
        Decision::Direct { response, .. } => assert_eq!(response.status, StatusCode::IM_A_TEAPOT),
        other => panic!("{other:?}"),
    }
    let jason = plan_of(&t, &req("example.com", "/x").header("end-user", "jason"), facts(true, false), 0);
    assert_eq!(jason.route.name.as_ref(), "jason");
}

#[test]
fn timeouts_follow_envoys_final_timeout() {
    let (t, _) = table();
    let slow = req("example.com", "/slow");
    let p = plan_of(&t, &slow, facts(true, false), 0);
    assert_eq!(p.timeouts.global, Some(Duration::from_secs(2)));
    assert_eq!(p.timeouts.per_try, Some(Duration::from_millis(500)));
    assert!(!p.timeouts.rewrite_grpc_timeout);

    // gRPC: the client's deadline, capped by the route timeout.
    let g = req("example.com", "/slow").header("grpc-timeout", "300m");
    assert_eq!(plan_of(&t, &g, facts(true, true), 0).timeouts.global, Some(Duration::from_millis(300)));
    let g = req("example.com", "/slow").header("grpc-timeout", "10S");
    let p = plan_of(&t, &g, facts(true, true), 0);
    assert_eq!(p.timeouts.global, Some(Duration::from_secs(2)));
    assert!(p.timeouts.rewrite_grpc_timeout);
    // Without a route timeout the client's deadline stands alone.
    let g = req("example.com", "/elsewhere").header("grpc-timeout", "1500u");
    assert_eq!(plan_of(&t, &g, facts(true, true), 0).timeouts.global, Some(Duration::from_millis(2)));
    // Not gRPC: the header means nothing.
    assert_eq!(plan_of(&t, &g, facts(true, false), 0).timeouts.global, None);

    // Mesh requests may set their own; gateways ignore them (the client is external).
    let h = req("example.com", "/slow")
        .header("x-envoy-upstream-rq-timeout-ms", "700")
        .header("x-envoy-upstream-rq-per-try-timeout-ms", "100");
    let mesh = plan_of(&t, &h, facts(false, false), 0);
    assert_eq!(mesh.timeouts.global, Some(Duration::from_millis(700)));
    assert_eq!(mesh.timeouts.per_try, Some(Duration::from_millis(100)));
    assert!(mesh.strip_control_headers);
    let edge = plan_of(&t, &h, facts(true, false), 0);
    assert_eq!(edge.timeouts.global, Some(Duration::from_secs(2)));
    assert!(!edge.strip_control_headers);
    // 0 means no timeout; a per-try timeout not below the global one is dropped.
    let h = req("example.com", "/slow").header("x-envoy-upstream-rq-timeout-ms", "0");
    assert_eq!(plan_of(&t, &h, facts(false, false), 0).timeouts.global, None);
    let h = req("example.com", "/slow").header("x-envoy-upstream-rq-timeout-ms", "400");
    let p = plan_of(&t, &h, facts(false, false), 0);
    assert_eq!((p.timeouts.global, p.timeouts.per_try), (Some(Duration::from_millis(400)), None));
}

#[test]
fn expected_timeout_advertises_per_try_else_what_is_left() {
    let t = Timeouts {
        global: Some(Duration::from_secs(2)),
        per_try: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    assert_eq!(t.expected(Duration::ZERO), Some(Duration::from_millis(500)));
    assert_eq!(t.expected(Duration::from_millis(1800)), Some(Duration::from_millis(200)));
    let g = Timeouts { global: Some(Duration::from_secs(2)), ..Default::default() };
    assert_eq!(g.expected(Duration::from_millis(500)), Some(Duration::from_millis(1500)));
    assert_eq!(g.expected(Duration::from_secs(5)), Some(Duration::from_millis(1)));
    assert_eq!(Timeouts::default().expected(Duration::ZERO), None);
}

#[test]
fn retry_plans() {
    let (t, _) = table();
    // Istio's default: retriable-status-codes without codes is dropped (it never fires).
    let p = plan_of(&t, &req("example.com", "/x"), facts(true, false), 0);
    let r = p.retry.expect("default policy");
    assert_eq!(r.attempts, 2);
    assert_eq!(
        r.retry_on.tokens().collect::<Vec<_>>(),
        ["connect-failure", "refused-stream", "cancelled", "unavailable"]
    );
    assert!(r.previous_hosts && r.host_selection_attempts == 5);
    assert_eq!(r.backoff, (Duration::from_millis(25), Duration::from_millis(250)));

    // A mesh request adds conditions, codes and a retry count of its own.
    let h = req("example.com", "/x")
        .header("x-envoy-retry-on", "5xx,retriable-status-codes")
        .header("x-envoy-retriable-status-codes", "409, 418")
        .header("x-envoy-max-retries", "4");
    let r = plan_of(&t, &h, facts(false, false), 0).retry.unwrap();
    assert!(r.retry_on.any(RetryOn::FIVE_XX) && r.retry_on.any(RetryOn::RETRIABLE_STATUS_CODES));
    assert!(r.retriable_code(418) && !r.retriable_code(503));
    assert_eq!(r.attempts, 4);
    // At the edge the same headers change nothing.
    let r = plan_of(&t, &h, facts(true, false), 0).retry.unwrap();
    assert!(!r.retry_on.any(RetryOn::FIVE_XX) && r.attempts == 2);

    // No policy on the route (attempts: 0): none, unless a mesh request asks.
    assert!(plan_of(&t, &req("example.com", "/canary"), facts(false, false), 0).retry.is_none());
    let h = req("example.com", "/canary").header("x-envoy-retry-on", "gateway-error");
    let r = plan_of(&t, &h, facts(false, false), 0).retry.unwrap();
    assert_eq!((r.attempts, r.retry_on), (1, RetryOn::GATEWAY_ERROR));
}

#[test]
fn affinity_hashes_the_clusters_key() {
    let (t, _) = table();
    let p = plan_of(&t, &req("example.com", "/sticky").header("x-user", "alice"), facts(true, false), 0);
    assert_eq!(p.affinity, Affinity { hash: Some(hash_value(b"alice")), new_cookie: None });
    let p = plan_of(&t, &req("example.com", "/sticky"), facts(true, false), 0);
    assert_eq!(p.affinity.hash, None, "no key: the balancer picks at random");
    // Not a hashing cluster: nothing computed.
    let p = plan_of(&t, &req("example.com", "/x").header("x-user", "alice"), facts(true, false), 0);
    assert_eq!(p.affinity, Affinity::default());

    // A cookie key: an existing cookie is hashed; a missing one is generated from the dice.
    let p = plan_of(&t, &req("example.com", "/cookie").header("cookie", "a=1; sess=\"abc\""), facts(true, false), 7);
    assert_eq!(p.affinity, Affinity { hash: Some(hash_value(b"abc")), new_cookie: None });
    let p = plan_of(&t, &req("example.com", "/cookie"), facts(true, false), 0xff);
    assert_eq!(p.affinity.hash, Some(hash_value(b"00000000000000ff")));
    assert_eq!(p.affinity.new_cookie.unwrap(), "sess=\"00000000000000ff\"; Max-Age=60; HttpOnly");
}

#[test]
fn grpc_timeout_header_forms() {
    let parse = |v: &'static str| {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", HeaderValue::from_static(v));
        grpc_timeout(&h)
    };
    assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
    assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
    assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
    assert_eq!(parse("1u"), Some(Duration::from_millis(1)), "rounded up");
    assert_eq!(parse("2000001n"), Some(Duration::from_millis(3)));
    for bad in ["", "S", "5", "5x", "123456789S", "-1S", "0m"] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
    assert_eq!(grpc_timeout_text(Duration::from_millis(1500)), "1500m");
    assert_eq!(grpc_timeout_text(Duration::from_secs(200_000)), "200000S");
}

#[test]
fn faults_and_mirrors_are_drawn_on_their_shares() {
    use crate::action::{AbortStatus, FaultAbort, FaultDelay, FaultPolicy, MirrorPolicy, Share};
    let (mut t, _) = table();
    let chaotic = Action::Forward(Forward {
        fault: Some(Box::new(FaultPolicy {
            delay: Some(FaultDelay { duration: Duration::from_secs(5), share: Share::percent(50.0) }),
            abort: Some(FaultAbort { status: AbortStatus::Http(503), share: Share::percent(10.0) }),
        })),
        mirrors: vec![
            MirrorPolicy { cluster: ClusterRef::Fixed(ClusterId(1)), name: "m1".into(), share: Share::ALL },
            MirrorPolicy { cluster: ClusterRef::Fixed(ClusterId(2)), name: "m2".into(), share: Share::percent(25.0) },
        ]
        .into(),
        ..match forward(vec![dest(0, 1, 1)], None, None) {
            Action::Forward(f) => f,
            _ => unreachable!(),
        }
    });
    t.listeners[0].virtual_hosts[0].routes.insert(0, route("chaos", prefix("/chaos"), chaotic));
    let r = req("example.com", "/chaos");
    // Rolls in order: destination, delay, abort, each mirror. A draw hits a share when
    // `draw % 10^6` is below it.
    let mut rolls = [0u64, 100_000, 50_000, 0, 900_000].into_iter();
    let p = match decide(&t, &t.listeners[0], &r.view(), &facts(true, false), &mut || rolls.next().unwrap()) {
        Decision::Forward(p) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(p.fault, Fault { delay: Some(Duration::from_secs(5)), abort: Some(AbortStatus::Http(503)) });
    assert_eq!(p.mirrors.iter().map(|m| &*m.name).collect::<Vec<_>>(), ["m1"]);
    let mut rolls = [0u64, 600_000, 100_000, 5, 249_999].into_iter();
    let p = match decide(&t, &t.listeners[0], &r.view(), &facts(true, false), &mut || rolls.next().unwrap()) {
        Decision::Forward(p) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(p.fault, Fault::default(), "50% and 10%: both missed");
    assert_eq!(p.mirrors.len(), 2);
    // A route without faults or mirrors draws nothing more than its destination.
    let mut n = 0;
    let _ = decide(&t, &t.listeners[0], &req("example.com", "/x").view(), &facts(true, false), &mut || {
        n += 1;
        0
    });
    assert_eq!(n, 1);
}

#[test]
fn shares_follow_envoys_fractional_percent() {
    use crate::action::Share;
    assert!(Share::percent(100.0).hit(999_999) && Share::ALL.hit(u64::MAX));
    assert!(!Share::percent(0.0).hit(0) && Share::percent(0.0).is_none());
    let tenth = Share::percent(0.1);
    assert!(tenth.hit(999) && !tenth.hit(1000));
    assert!(Share::percent(150.0).hit(999_999), "clamped to 100");
}
