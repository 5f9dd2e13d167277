//! `weir diff` as a user runs it: edited fixtures, the changes it names, its exit codes.

use std::process::Command;

use weir_testkit::ConfigDir;

const BASE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v3, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - name: canary
    route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
";

fn diff(old: &ConfigDir, new: &ConfigDir, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("diff")
        .arg(old.path())
        .arg(new.path())
        .args(["--namespace", "shop"])
        .args(extra)
        .output()
        .expect("weir runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dir(text: &str) -> ConfigDir {
    let d = ConfigDir::new();
    d.write("shop.yaml", text);
    d
}

#[test]
fn equal_configurations_exit_0() {
    let (a, b) = (dir(BASE), dir(BASE));
    let (code, out, _) = diff(&a, &b, &[]);
    assert_eq!((code, out.as_str()), (Some(0), "no change\n"));
}

#[test]
fn shifted_weights_are_shown_as_shares_and_exit_1() {
    let (a, b) = (dir(BASE), dir(&BASE.replace("weight: 90", "weight: 75").replace("weight: 10", "weight: 25")));
    let (code, out, _) = diff(&a, &b, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "mesh reviews.shop.svc.cluster.local: route canary changed: reviews v1 90% → 75%, reviews v3 10% → 25%"
        ),
        "{out}"
    );
    let (_, json, _) = diff(&a, &b, &["-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["changed"], true);
    let item = &v["items"][0];
    assert_eq!((item["route"].as_str(), item["change"].as_str()), (Some("canary"), Some("changed")));
    assert_eq!(item["shares"][0]["reviews v1"], 90.0);
    assert_eq!(item["shares"][1]["reviews v1"], 75.0);
}

#[test]
fn policies_hosts_and_listeners_that_change_are_named() {
    let extra = "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.9}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]
";
    let edited = BASE.replace(
        "  subsets: [{name: v1",
        "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}\n  subsets: [{name: v1",
    );
    let (a, b) = (dir(BASE), dir(&format!("{edited}{extra}")));
    let (code, out, _) = diff(&a, &b, &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("listener 0.0.0.0_8080: added"), "{out}");
    assert!(out.contains("mesh ratings.shop.svc.cluster.local: host added"), "{out}");
    assert!(out.contains("cluster outbound|9080|v1|reviews.shop.svc.cluster.local: changed"), "{out}");
    // The other way round, the same things go away.
    let (_, back, _) = diff(&b, &a, &[]);
    assert!(back.contains("listener 0.0.0.0_8080: removed") && back.contains("host removed"), "{back}");
}

#[test]
fn an_invalid_side_is_exit_2_with_a_reason() {
    let (a, b) = (dir(BASE), dir(&BASE.replace("weight: 90", "weight: -5")));
    let (code, _, err) = diff(&a, &b, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("does not validate") && err.contains("weir validate"), "{err}");
}
