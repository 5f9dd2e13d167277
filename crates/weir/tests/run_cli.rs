//! `weir run` as a real process: the ready line, serving, live reload under load with
//! zero failed requests, an invalid change rejected while the old table serves, and a
//! clean drain on SIGTERM.

mod common;

use std::ffi::OsStr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::Weir;

use weir_testkit::{Backend, ConfigDir, TEST_TIMEOUT, http1_client, http2_client, wait_for_async};

/// `weir run -c DIR` with the mesh listener, access-log format `log`, `extra`
/// arguments and `env`.
fn start_env(dir: &ConfigDir, ns: &str, log: &str, extra: &[&str], env: &[(&str, &str)]) -> Weir {
    let mut args: Vec<&OsStr> = vec!["-c".as_ref(), dir.path().as_os_str()];
    args.extend(["--mesh-listener", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--namespace", ns].map(OsStr::new));
    args.extend(["--access-log-format", log].map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    Weir::spawn(&args, env)
}

fn start_with(dir: &ConfigDir, ns: &str, log: &str, extra: &[&str]) -> Weir {
    start_env(dir, ns, log, extra, &[])
}

fn start(dir: &ConfigDir, ns: &str) -> Weir {
    start_with(dir, ns, "off", &[])
}

fn services(v1: &Backend, v2: &Backend) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
",
        v1.port(),
        v2.port()
    )
}

fn route_to(subset: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - route: [{{destination: {{host: svc, subset: {subset}}}}}]
"
    )
}

async fn version_is(url: String, want: &'static str) -> bool {
    http1_client().get(&url, "svc", &[]).await.backend_version() == Some(want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_reloads_under_load_without_failures_and_rejects_invalid_changes() {
    let (v1, v2) = (Backend::start("svc", "v1").await, Backend::start("svc", "v2").await);
    let dir = ConfigDir::new();
    dir.write("services.yaml", &services(&v1, &v2));
    dir.write("routes.yaml", &route_to("v1"));
    let weir = start(&dir, "ns");
    assert_eq!(http1_client().get(&weir.url("/"), "svc", &[]).await.backend_version(), Some("v1"));
    let ready = http1_client().get(&format!("http://{}/ready", weir.admin), "", &[]).await;
    assert_eq!(ready.status, 200);

    // Load: four keep-alive clients (HTTP/1.1 and HTTP/2) sending without pause.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for i in 0..4 {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), weir.url("/"));
        load.push(tokio::spawn(async move {
            let c = if i % 2 == 0 { http1_client() } else { http2_client() };
            while !stop.load(Ordering::Relaxed) {
                let req = weir_testkit::build_request(http::Method::GET, &url, "svc", &[], weir_testkit::full_body(""));
                match c.fetch(req).await {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for round in 0..6 {
        let (subset, want) = if round % 2 == 0 { ("v2", "v2") } else { ("v1", "v1") };
        dir.write("routes.yaml", &route_to(subset));
        wait_for_async(|| version_is(weir.url("/"), want), TEST_TIMEOUT).await;
    }
    // An invalid change is rejected: the last good table keeps serving.
    let invalid = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - route:
    - destination: {host: svc, subset: v2}
      weight: -1
";
    dir.write("routes.yaml", invalid);
    wait_for_async(
        || {
            let s = weir.stderr();
            async move { s.contains("rejected") }
        },
        TEST_TIMEOUT,
    )
    .await;
    assert!(weir.stderr().contains("spec.http[0].route[0].weight"), "{}", weir.stderr());
    assert!(version_is(weir.url("/"), "v1").await);
    // And a fixed change is picked up again.
    dir.write("routes.yaml", &route_to("v2"));
    wait_for_async(|| version_is(weir.url("/"), "v2"), TEST_TIMEOUT).await;

    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 0);
    assert_eq!(failed, 0, "{failed} of {} requests failed during reloads", ok + failed);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_cleanly() {
    let slow = Backend::builder("svc", "v1").delay(std::time::Duration::from_millis(500)).start().await;
    let other = Backend::start("svc", "v2").await;
    let dir = ConfigDir::new();
    dir.write("services.yaml", &services(&slow, &other));
    dir.write("routes.yaml", &route_to("v1"));
    let mut weir = start(&dir, "ns");
    let url = weir.url("/");
    let in_flight = tokio::spawn(async move { http1_client().get(&url, "svc", &[]).await });
    weir_testkit::wait_for(|| slow.hits() == 1, TEST_TIMEOUT).await;
    let status = Command::new("kill").args(["-TERM", &weir.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200);
    let exit = weir.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}: {}", weir.stderr());
}

#[test]
fn an_invalid_configuration_at_start_is_refused_with_its_diagnostics() {
    let dir = ConfigDir::new();
    dir.write("bad.yaml", &route_to("v1").replace("hosts: [svc]", "hosts: [svc]\n  gateways: ['*/gw']"));
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-c"])
        .arg(dir.path())
        .args(["--mesh-listener", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.gateways[0]") && err.contains("not starting"), "{err}");
}

/// Multi-threaded: reading the log blocks a thread while the backends run here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_in_json_carry_istio_fields() {
    let (v1, v2) = (Backend::start("svc", "v1").await, Backend::start("svc", "v2").await);
    let dir = ConfigDir::new();
    dir.write("services.yaml", &services(&v1, &v2));
    dir.write(
        "routes.yaml",
        &route_to("v2").replace("  - route:", "  - name: to-v2\n    rewrite: {authority: svc.internal}\n    route:"),
    );
    // Hosts outside the registry are blocked (the default, ALLOW_ANY, would pass them
    // through to the name they give).
    dir.write(
        "sidecar.yaml",
        "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ns}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
",
    );
    let weir = start_with(&dir, "ns", "json", &[]);
    let mesh = weir.mesh;
    let r = http1_client()
        .get(&format!("http://{mesh}/items?x=1"), "svc", &[("x-request-id", "abc-123"), ("x-forwarded-for", "1.2.3.4")])
        .await;
    assert_eq!(r.status, 200);
    let blocked = http1_client().get(&format!("http://{mesh}/"), "nowhere", &[]).await;
    assert_eq!(blocked.status, 502);
    let a = weir.next_json();
    assert_eq!(a["method"], "GET");
    assert_eq!(a["path"], "/items?x=1");
    assert_eq!(a["protocol"], "HTTP/1.1");
    assert_eq!(a["response_code"], 200);
    assert_eq!(a["response_flags"], "-");
    assert_eq!(a["request_id"], "abc-123");
    // As Envoy logs them: the authority after the route's rewrite, the forwarded chain.
    assert_eq!(a["authority"], "svc.internal");
    assert_eq!(a["x_forwarded_for"], "1.2.3.4");
    assert_eq!(a["upstream_host"], format!("127.0.0.1:{}", v2.port()));
    assert_eq!(a["upstream_cluster"], "outbound|80|v2|svc.ns.svc.cluster.local");
    assert_eq!(a["route_name"], "to-v2");
    let b = weir.next_json();
    assert_eq!((b["response_code"].as_u64(), b["route_name"].as_str()), (Some(502), Some("block_all")));
    // The default labels (istio=ingressgateway) name the workload as Istio's gateway.
    let stats = http1_client().get(&format!("http://{}/stats/prometheus", weir.admin), "", &[]).await.text();
    assert!(stats.contains("source_workload=\"istio-ingressgateway\""), "{stats}");
}

/// Faults and mirrors in the JSON access log of a real `weir run`: an injected abort
/// logs `FI`, an injected delay `DI`, and each mirror copy is a line of its own naming
/// the mirror cluster and (with `--shadow-host-suffix`) the `-shadow` authority.
/// Multi-threaded: reading the log blocks a thread, and the mirror's backend (on this
/// runtime) must still answer the copy meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_shows_faults_and_mirror_copies() {
    let (v1, v2) = (Backend::start("svc", "v1").await, Backend::start("svc", "v2").await);
    let dir = ConfigDir::new();
    dir.write("services.yaml", &services(&v1, &v2));
    dir.write(
        "routes.yaml",
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: svc, subset: v1}}]
  - match: [{uri: {prefix: /slow}}]
    fault: {delay: {fixedDelay: 10ms, percentage: {value: 100}}}
    route: [{destination: {host: svc, subset: v1}}]
  - route: [{destination: {host: svc, subset: v1}}]
    mirror: {host: svc, subset: v2}
",
    );
    let weir = start_with(&dir, "ns", "json", &["--shadow-host-suffix", "--seed", "7"]);
    let (mesh, next) = (weir.mesh, || weir.next_json());
    let r = http1_client().get(&format!("http://{mesh}/productpage"), "svc", &[("end-user", "jason")]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "fault filter abort"));
    let a = next();
    assert_eq!((a["response_code"].as_u64(), a["response_flags"].as_str()), (Some(503), Some("FI")));
    assert_eq!(a["upstream_host"], serde_json::Value::Null);

    let r = http1_client().get(&format!("http://{mesh}/slow"), "svc", &[]).await;
    assert_eq!(r.status, 200);
    let d = next();
    assert_eq!((d["response_code"].as_u64(), d["response_flags"].as_str()), (Some(200), Some("DI")));
    assert_eq!(d["upstream_host"], format!("127.0.0.1:{}", v1.port()));

    let r = http1_client().get(&format!("http://{mesh}/items"), "svc", &[("x-request-id", "m-1")]).await;
    assert_eq!(r.backend_version(), Some("v1"));
    // The primary's line and the copy's come in either order.
    let (x, y) = (next(), next());
    let (primary, copy) =
        if x["upstream_cluster"] == "outbound|80|v1|svc.ns.svc.cluster.local" { (x, y) } else { (y, x) };
    assert_eq!(primary["upstream_cluster"], "outbound|80|v1|svc.ns.svc.cluster.local");
    assert_eq!(primary["authority"], "svc");
    assert_eq!(copy["upstream_cluster"], "outbound|80|v2|svc.ns.svc.cluster.local");
    assert_eq!(copy["upstream_host"], format!("127.0.0.1:{}", v2.port()));
    assert_eq!(copy["authority"], "svc-shadow");
    assert_eq!((copy["path"].as_str(), copy["request_id"].as_str()), (Some("/items"), Some("m-1")));
    assert_eq!(copy["response_code"], 200);
    assert_eq!(copy["x_forwarded_for"], primary["x_forwarded_for"]);
    assert_eq!(v2.last_authority().as_deref(), Some("svc-shadow"));
}

/// TLS origination without `caCertificates` verifies against the system trust store, as
/// Istio does: with `SSL_CERT_FILE` naming a bundle that holds the backend's CA the
/// request goes through; with the machine's own bundle (which does not) it is 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_origination_without_a_ca_uses_the_system_trust_store() {
    let ca = weir_testkit::TestCa::new("private-root");
    let backend = weir_testkit::TlsNamed::start("secure-backend", &ca.leaf(&["secure.example.com"])).await;
    let dir = ConfigDir::new();
    dir.write(
        "egress.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: ns}}
spec:
  hosts: [secure.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP, targetPort: {}}}]
  endpoints: [{{address: 127.0.0.1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure, namespace: ns}}
spec:
  host: secure.example.com
  trafficPolicy:
    tls: {{mode: SIMPLE, sni: secure.example.com}}
",
            backend.port()
        ),
    );
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, &ca.cert).unwrap();
    let trusted = start_env(&dir, "ns", "off", &[], &[("SSL_CERT_FILE", bundle.to_str().unwrap())]);
    let r = http1_client().get(&trusted.url("/"), "secure.example.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "secure-backend");
    drop(trusted);
    let system = start_env(&dir, "ns", "off", &[], &[("SSL_CERT_FILE", "/nonexistent")]);
    let r = http1_client().get(&system.url("/"), "secure.example.com", &[]).await;
    assert_eq!(r.status, 503, "the machine's bundle does not hold the private root");
}

/// Kubernetes Services, EndpointSlices and Pods (as `kubectl get -o yaml` writes
/// them) are a registry too: the Service is `svc.ns.svc.cluster.local`, its endpoints
/// the ready slice endpoints, labelled by their Pods, so subsets select them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_services_and_endpoint_slices_in_files_are_the_registry() {
    let v1 = Backend::start("svc", "v1").await;
    let v2 = Backend::start("svc", "v2").await;
    let slice = |name: &str, pod: &str, port: u16, ready: bool| {
        format!(
            "---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: ns
  labels: {{kubernetes.io/service-name: svc}}
addressType: IPv4
endpoints:
- addresses: [127.0.0.1]
  conditions: {{ready: {ready}}}
  targetRef: {{kind: Pod, name: {pod}, namespace: ns}}
ports:
- {{name: http, port: {port}, protocol: TCP}}
"
        )
    };
    let kube = format!(
        "apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: ns}}
spec:
  selector: {{app: svc}}
  clusterIP: 10.96.0.10
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: svc-v1, namespace: ns, labels: {{app: svc, version: v1}}}}
spec: {{nodeName: node-a}}
---
apiVersion: v1
kind: Pod
metadata: {{name: svc-v2, namespace: ns, labels: {{app: svc, version: v2}}}}
spec: {{nodeName: node-a}}
{}{}{}",
        slice("svc-a", "svc-v1", v1.port(), true),
        slice("svc-b", "svc-v2", v2.port(), true),
        // Not ready: never sent traffic.
        slice("svc-c", "svc-v2", 1, false),
    );
    let dir = ConfigDir::new();
    dir.write("cluster.yaml", &kube);
    dir.write(
        "dr.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc, namespace: ns}\nspec:\n  host: svc\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n",
    );
    dir.write("vs.yaml", &route_to("v2"));
    let weir = start(&dir, "ns");
    for _ in 0..20 {
        assert_eq!(http1_client().get(&weir.url("/"), "svc", &[]).await.backend_version(), Some("v2"));
    }
    // The subset follows the Pod's labels; the whole Service splits over both Pods.
    dir.write("vs.yaml", &route_to("v1"));
    wait_for_async(|| version_is(weir.url("/"), "v1"), TEST_TIMEOUT).await;
    dir.remove("vs.yaml");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let r = http1_client().get(&weir.url("/"), "svc.ns", &[]).await;
        assert_eq!(r.status.as_u16(), 200);
        seen.insert(r.backend_version().map(str::to_string));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// A compile warning is logged on its resource and field, at the field's line and
/// column in the file (here a Sidecar egress listener that needs traffic capture).
#[tokio::test]
async fn compile_warnings_are_logged_at_their_field() {
    let dir = ConfigDir::new();
    dir.write(
        "sidecar.yaml",
        "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ns}
spec:
  egress:
  - port: {number: 9080, name: http, protocol: HTTP}
    hosts: [\"./*\"]
",
    );
    let weir = start(&dir, "ns");
    let want = "sidecar.yaml:6:5: warning[WEIR101] Sidecar ns/default: spec.egress[0]: egress listener on port 9080";
    // stderr is read by a thread of its own: wait for the line, boundedly.
    weir_testkit::wait_for(|| weir.stderr().contains(want), TEST_TIMEOUT).await;
}
