//! `weir explain` as a user runs it on bookinfo and on configurations that cannot route.

use std::process::Command;

use weir_testkit::ConfigDir;

fn bookinfo() -> String {
    format!("{}/../../examples/bookinfo", env!("CARGO_MANIFEST_DIR"))
}

fn explain(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir")).arg("explain").args(args).args(["-o", "json"]).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_gateway_trace_names_each_route_tried_and_the_shares() {
    let b = bookinfo();
    let (code, t, err) =
        explain(&[&b, "--gateway", "bookinfo/bookinfo-gateway", "--host", "x", "--path", "/reviews/1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(t["listener"], "0.0.0.0_8080");
    assert_eq!(t["tried"][0]["matched"], false);
    assert_eq!(t["tried"][0]["reason"], "header end-user exact \"jason\"");
    assert_eq!((t["route"]["name"].as_str(), t["route"]["index"].as_u64()), (Some("reviews-canary"), Some(1)));
    let shares: Vec<(String, f64)> = t["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["subset"].as_str().unwrap().to_string(), d["weight"].as_f64().unwrap()))
        .collect();
    assert_eq!(shares, [("v1".to_string(), 90.0), ("v3".to_string(), 10.0)]);
    assert_eq!(t["cluster"], "outbound|9080|v1|reviews.bookinfo.svc.cluster.local");
    let (_, jason, _) = explain(&[
        &b,
        "--gateway",
        "bookinfo/bookinfo-gateway",
        "--host",
        "x",
        "--path",
        "/reviews/1",
        "-H",
        "end-user: jason",
    ]);
    assert_eq!(jason["route"]["name"], "reviews-for-jason");
    assert_eq!(jason["destinations"][0]["subset"], "v2");
}

#[test]
fn the_mesh_trace_resolves_short_names_and_policies() {
    let (code, t, err) =
        explain(&[&bookinfo(), "--namespace", "bookinfo", "--host", "ratings", "--path", "/ratings/0"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(t["listener"], "mesh");
    assert_eq!(t["virtual_host"], "ratings.bookinfo.svc.cluster.local");
    assert!(t["outcome"].as_str().unwrap().starts_with("forward to outbound|9080|"), "{t}");
    assert!(t["policies"]["retries"].is_object(), "{t}");
}

#[test]
fn what_cannot_route_names_its_flag() {
    let dir = ConfigDir::new();
    dir.write(
        "a.yaml",
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: svc, subset: v9}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.example.com]}]
",
    );
    let p = dir.path().to_str().unwrap().to_string();
    let (_, nc, _) = explain(&[&p, "--namespace", "ns", "--host", "svc", "--path", "/api/x"]);
    assert!(nc["outcome"].as_str().unwrap().starts_with("503 NC"), "{nc}");
    let (_, nr, _) = explain(&[&p, "--namespace", "ns", "--host", "svc", "--path", "/other"]);
    assert!(nr["outcome"].as_str().unwrap().starts_with("404 NR"), "{nr}");
    assert_eq!(nr["tried"][0]["reason"], "uri prefix \"/api\"");
    let (_, unknown, _) = explain(&[&p, "--gateway", "ns/gw", "--host", "other.example.com"]);
    assert!(unknown["outcome"].as_str().unwrap().starts_with("404 NR: no virtual host"), "{unknown}");
    let (code, _, err) = explain(&[&p, "--gateway", "ns/nope", "--host", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no Gateway ns/nope"), "{err}");
}

/// A mesh with what the partial read must not miss: a wildcard host, a delegate, a
/// destination in another namespace by FQDN, a mirror, a DestinationRule in the
/// destination's namespace, a WorkloadEntry selected by labels, and a Sidecar.
const TRICKY: &str = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: front, namespace: a}
spec:
  hosts: [front.a.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: back, namespace: b}
spec:
  hosts: [back.b.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: back}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: back-1, namespace: b}
spec: {address: 10.0.1.1, labels: {app: back, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: back, namespace: b}
spec:
  host: back.b.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets: [{name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: a}
spec:
  hosts: [front]
  http:
  - match: [{uri: {prefix: /api}}]
    delegate: {name: api, namespace: a}
  - route: [{destination: {host: front}}]
    mirror: {host: back.b.svc.cluster.local}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: a}
spec:
  http:
  - route: [{destination: {host: back.b.svc.cluster.local, subset: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild, namespace: a}
spec:
  hosts: ["*.example.com"]
  http: [{directResponse: {status: 418}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: a}
spec:
  egress: [{hosts: ["./*", "b/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"#;

/// Reading only the documents a request can meet gives the answer reading them all
/// gives, for routed, delegated, wildcard and unknown hosts.
#[test]
fn the_partial_read_answers_as_the_full_one() {
    let dir = weir_testkit::ConfigDir::new();
    // Many unrelated services around the ones that matter.
    let mut filler = String::new();
    for i in 0..50 {
        filler.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: other-{i}, namespace: c}}\nspec:\n  hosts: [other-{i}]\n  http: [{{route: [{{destination: {{host: other-{i}}}}}]}}]\n"
        ));
    }
    dir.write("tricky.yaml", TRICKY);
    dir.write("filler.yaml", &filler[4..]);
    let path = dir.path().to_str().unwrap();
    for args in [
        &["--host", "front", "--path", "/api/x"][..],
        &["--host", "front.a.svc.cluster.local", "--path", "/"],
        &["--host", "shop.example.com"],
        &["--host", "other-7.c"],
        &["--host", "back.b"],
        &["--host", "nowhere.example.org"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--namespace", "a", path]);
        let (code, fast, err) = explain(&all);
        all.push("--read-all");
        let (code_all, full, _) = explain(&all);
        assert_eq!((code, &fast), (code_all, &full), "{args:?}: {err}");
    }
    let (_, delegated, _) = explain(&["--host", "front", "--path", "/api/x", "--namespace", "a", path]);
    assert_eq!(delegated["cluster"], "outbound|80|v2|back.b.svc.cluster.local", "{delegated}");
}

/// The services the seed patterns route to, as a file-mode registry.
const SEED_REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: my-service, namespace: default}
spec:
  hosts: [my-service.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: stable}}
  - {address: 10.0.0.2, labels: {version: canary}}
  - {address: 10.0.0.3, labels: {version: v1}}
  - {address: 10.0.0.4, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.2.1, labels: {version: v1}}
  - {address: 10.0.2.2, labels: {version: v2}}
";

/// `weir explain` on each of the seven seed patterns, unchanged, with the services
/// they route to: the trace says what the pattern is for.
#[test]
fn explain_traces_each_seed_pattern() {
    let seed = format!("{}/../../../shared/examples/seed", env!("CARGO_MANIFEST_DIR"));
    let run = |pattern: &str, extra: &str, args: &[&str]| -> serde_json::Value {
        let dir = ConfigDir::new();
        dir.write("registry.yaml", &format!("{SEED_REGISTRY}{extra}"));
        let text = std::fs::read_to_string(format!("{seed}/{pattern}.yaml")).unwrap();
        dir.write("pattern.yaml", &text);
        let mut all = args.to_vec();
        all.push(dir.path().to_str().unwrap());
        let (code, trace, err) = explain(&all);
        assert_eq!(code, Some(0), "{pattern}: {err}");
        trace
    };
    let jason =
        run("1-basic-routing", "", &["--host", "reviews.bookinfo", "-H", "end-user: jason", "--namespace", "bookinfo"]);
    assert_eq!(jason["cluster"], "outbound|9080|v2|reviews.bookinfo.svc.cluster.local", "{jason}");
    let other = run("1-basic-routing", "", &["--host", "reviews.bookinfo", "--namespace", "bookinfo"]);
    assert_eq!(other["cluster"], "outbound|9080|v1|reviews.bookinfo.svc.cluster.local", "{other}");

    let canary = run("2-canary", "", &["--host", "my-service"]);
    let shares: Vec<(String, f64)> = canary["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["subset"].as_str().unwrap().to_string(), d["weight"].as_f64().unwrap()))
        .collect();
    assert_eq!(shares, [("stable".to_string(), 90.0), ("canary".to_string(), 10.0)]);

    let breaker = run("3-circuit-breaker", "", &["--host", "my-service"]);
    assert_eq!(breaker["policies"]["connection_pool"]["max_connections"], 100, "{breaker}");
    assert!(!breaker["policies"]["outlier_detection"].is_null(), "{breaker}");

    let retry = run("4-retry-timeout", "", &["--host", "ratings"]);
    assert_eq!(retry["policies"]["retries"]["attempts"], 3, "{retry}");
    assert_eq!(retry["policies"]["timeout"], "10s", "{retry}");

    let subsets = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: versions, namespace: default}\nspec:\n  host: my-service\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n";
    let mirror = run("5-mirroring", subsets, &["--host", "my-service"]);
    assert_eq!(mirror["cluster"], "outbound|80|v1|my-service.default.svc.cluster.local", "{mirror}");
    assert!(
        mirror["policies"]["mirrors"].to_string().contains("outbound|80|v2|my-service.default.svc.cluster.local"),
        "{mirror}"
    );

    let fault = run("6-fault-injection", "", &["--host", "ratings"]);
    assert_eq!(fault["policies"]["fault"]["delay"]["share"], 10.0, "{fault}");
    assert_eq!(fault["policies"]["fault"]["abort"]["status"]["http"], 503, "{fault}");

    // A gateway with no VirtualService bound: the request finds no route.
    let gateway = run(
        "7-ingress-gateway",
        "",
        &["--gateway", "default/my-gateway", "--host", "shop.example.com", "--scheme", "https"],
    );
    assert_eq!(gateway["listener"], "0.0.0.0_443", "{gateway}");
    assert!(gateway["outcome"].as_str().unwrap().contains("NR"), "{gateway}");
}
