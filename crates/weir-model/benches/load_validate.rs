//! Load and validate 10,000 generated resources of mixed kinds from one text (the
//! issue's target: under one second on one core).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_model::load_str;

/// `n` resources cycling through VirtualService, DestinationRule, ServiceEntry, Gateway
/// and WorkloadEntry, each a realistic size.
fn generate(n: usize) -> String {
    let mut s = String::with_capacity(n * 600);
    for i in 0..n {
        let ns = format!("ns{}", i % 50);
        let doc = match i % 5 {
            0 => format!(
                "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs{i}, namespace: {ns}}}
spec:
  hosts: [svc{i}]
  http:
  - match:
    - headers: {{end-user: {{exact: jason}}}}
      uri: {{prefix: /api}}
    route:
    - destination: {{host: svc{i}, subset: v2}}
  - route:
    - destination: {{host: svc{i}, subset: v1}}
      weight: 90
    - destination: {{host: svc{i}, subset: v3}}
      weight: 10
    timeout: 10s
    retries: {{attempts: 3, perTryTimeout: 2s, retryOn: 'connect-failure,5xx'}}
"
            ),
            1 => format!(
                "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: dr{i}, namespace: {ns}}}
spec:
  host: svc{i}
  trafficPolicy:
    connectionPool:
      tcp: {{maxConnections: 100}}
      http: {{http1MaxPendingRequests: 10, maxRequestsPerConnection: 10}}
    outlierDetection: {{consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 30s}}
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
"
            ),
            2 => format!(
                "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: se{i}, namespace: {ns}}}
spec:
  hosts: [svc{i}.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: 10.0.{}.{}
    labels: {{version: v1}}
",
                (i / 250) % 250,
                i % 250
            ),
            3 => format!(
                "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw{i}, namespace: {ns}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: ['*.example{i}.com']
    tls: {{mode: SIMPLE, credentialName: cert{i}}}
"
            ),
            _ => format!(
                "apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: we{i}, namespace: {ns}}}
spec:
  address: 10.1.{}.{}
  labels: {{app: svc, version: v1}}
  ports: {{http: 8080}}
",
                (i / 250) % 250,
                i % 250
            ),
        };
        s.push_str(&doc);
        s.push_str("---\n");
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = generate(10_000);
    let report = load_str("bench.yaml", &text);
    assert_eq!(report.resources.len(), 10_000, "{:?}", report.diagnostics.first());
    assert!(report.diagnostics.is_empty());
    let mut g = c.benchmark_group("load_validate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("10k_mixed_resources", |b| b.iter(|| load_str("bench.yaml", &text)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
