//! Route lookup cost with 10, 1,000 and 10,000 hosts: the host is found by hash (and,
//! for wildcards, by hashing each dot-suffix), so the cost must stay flat as the table
//! grows. A naive scan over the hosts is measured beside it for contrast.

use std::sync::Arc;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use weir_table::{
    Action, ClusterId, ClusterRef, DirectResponse, Forward, HeaderKey, HeaderMatch, HeaderOps, HostMap, HttpMatch,
    Listener, ListenerRole, PathMatch, RequestView, Route, StrMatch, VirtualHost, WeightedCluster,
};

fn forward(id: usize) -> Arc<Action> {
    Arc::new(Action::Forward(Forward {
        destinations: vec![WeightedCluster {
            cluster: ClusterRef::Fixed(ClusterId(id)),
            name: "c".into(),
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
        retry: None,
        fault: None,
        mirrors: Box::new([]),
        cors: None,
    }))
}

/// `n` hosts, each with three routes (a header match, a prefix match, a catch-all),
/// plus a few wildcard hosts.
fn listener(n: usize) -> Listener {
    let mut l = Listener {
        name: "mesh".into(),
        role: ListenerRole::Mesh,
        bind: None,
        port: 0,
        protocol: "HTTP".into(),
        gateways: Vec::new(),
        hosts: HostMap::default(),
        virtual_hosts: Vec::new(),
        tls: Vec::new(),
        tcp: Vec::new(),
    };
    for i in 0..n {
        let host = format!("svc-{i}.ns-{}.svc.cluster.local", i % 100);
        let routes = vec![
            Route {
                name: "jason".into(),
                origin: "".into(),
                matcher: HttpMatch {
                    headers: vec![HeaderMatch {
                        key: HeaderKey::Name(HeaderName::from_static("end-user")),
                        name: "end-user".into(),
                        matcher: StrMatch::Exact("jason".into()),
                        invert: false,
                    }],
                    ..Default::default()
                },
                action: forward(i),
            },
            Route {
                name: "api".into(),
                origin: "".into(),
                matcher: HttpMatch {
                    path: Some(PathMatch { matcher: StrMatch::Prefix("/api".into()), ignore_case: false }),
                    ..Default::default()
                },
                action: forward(i),
            },
            Route {
                name: "default".into(),
                origin: "".into(),
                matcher: HttpMatch::default(),
                action: Arc::new(Action::Direct(DirectResponse {
                    status: http::StatusCode::OK,
                    body: Default::default(),
                    headers: Default::default(),
                })),
            },
        ];
        l.hosts.insert(&host, l.virtual_hosts.len());
        l.virtual_hosts.push(VirtualHost {
            name: host.as_str().into(),
            domains: vec![host.as_str().into()],
            routes,
            require_tls: false,
            default_port: 80,
            service: None,
        });
    }
    for w in ["*.example.com", "*.shop.example.com", "*.internal"] {
        l.hosts.insert(w, 0);
    }
    l
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_lookup");
    let method = Method::GET;
    let mut headers = HeaderMap::new();
    headers.insert("end-user", HeaderValue::from_static("bob"));
    headers.insert("user-agent", HeaderValue::from_static("bench"));
    for n in [10usize, 1_000, 10_000] {
        let l = listener(n);
        let host = format!("svc-{}.ns-{}.svc.cluster.local:9080", n / 2, (n / 2) % 100);
        let view = RequestView {
            method: &method,
            scheme: "http",
            authority: &host,
            path: "/api/items",
            path_and_query: "/api/items",
            query: None,
            headers: &headers,
            port: 0,
        };
        g.bench_with_input(BenchmarkId::new("exact_host", n), &view, |b, v| {
            b.iter(|| black_box(l.route(black_box(v)).is_ok()))
        });
        let wild = RequestView { authority: "a.b.shop.example.com", ..view };
        g.bench_with_input(BenchmarkId::new("wildcard_host", n), &wild, |b, v| {
            b.iter(|| black_box(l.route(black_box(v)).is_ok()))
        });
        let domains: Vec<String> = l.virtual_hosts.iter().map(|v| v.name.to_string()).collect();
        let target = host.split(':').next().unwrap().to_string();
        g.bench_with_input(BenchmarkId::new("naive_scan_baseline", n), &target, |b, t| {
            b.iter(|| black_box(domains.iter().position(|d| d == t)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
