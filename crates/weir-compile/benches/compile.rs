//! Compiling a configuration of 10, 1,000 and 10,000 services (a ServiceEntry, a
//! DestinationRule with two subsets and a VirtualService each) into a routing table.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use weir_compile::{Instance, compile};
use weir_model::{Resource, load_str};

fn resources(n: usize) -> Vec<Resource> {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc{i}, namespace: ns}}
spec:
  hosts: [svc{i}.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: 10.0.{}.{}, labels: {{version: v1}}}}
  - {{address: 10.1.{}.{}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc{i}, namespace: ns}}
spec:
  host: svc{i}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc{i}, namespace: ns}}
spec:
  hosts: [svc{i}]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    route: [{{destination: {{host: svc{i}, subset: v2}}}}]
  - route:
    - {{destination: {{host: svc{i}, subset: v1}}, weight: 90}}
    - {{destination: {{host: svc{i}, subset: v2}}, weight: 10}}
---
",
            i / 250 % 250,
            i % 250,
            i / 250 % 250,
            i % 250
        ));
    }
    let r = load_str("bench.yaml", &text);
    assert!(!r.has_errors());
    r.resources
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    let instance = Instance { namespace: "ns".into(), mesh: true, ..Instance::default() };
    for n in [10usize, 1_000, 10_000] {
        let rs = resources(n);
        g.bench_with_input(BenchmarkId::new("services", n), &rs, |b, rs| b.iter(|| compile(rs.clone(), &instance, 1)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
