//! Kubernetes mode at scale: `weir run --kubernetes` against the testkit's stand-in API
//! server (no cluster runs here) holding N Services, each with an EndpointSlice of 5
//! ready endpoints and their 5 Pods, a DestinationRule with two subsets and a
//! VirtualService. Reports the time to ready (first full list, load, compile, install),
//! the RSS once ready, and the time from an EndpointSlice change to the reloaded table.
//!
//!   cargo bench -p weir --bench kubernetes_scale            # 10,000 Services, 50,000 endpoints
//!   SERVICES=2000 cargo bench -p weir --bench kubernetes_scale
//!   REAL_PODS=1 cargo bench -p weir --bench kubernetes_scale   # Pods as an API server returns them
//!   WEIR=/path/to/weir cargo bench -p weir --bench kubernetes_scale   # another weir binary
//!
//! Under `cargo test` (no `--bench` argument) it runs a 20-Service smoke of the same path.

// A benchmark reports on stdout (the table row) and stderr (progress).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use weir_testkit::FakeApiServer;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn slice(i: usize, port: u16) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = (0..5)
        .map(|e| {
            json!({"addresses": [format!("10.{}.{}.{}", i / 250, i % 250, e + 1)], "conditions": {"ready": true},
                   "targetRef": {"kind": "Pod", "name": format!("svc-{i}-{e}"), "namespace": format!("team-{}", i / 100)}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": format!("svc-{i}-abcde"), "namespace": format!("team-{}", i / 100),
                        "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
           "addressType": "IPv4", "endpoints": endpoints,
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
}

/// What a real API server adds to a Pod that weir does not read: managed fields, the
/// `kubectl apply` annotation, containers and status (shapes from the Kubernetes API
/// reference; sizes typical of a small Deployment's Pod).
fn dress(pod: &mut serde_json::Value, app: &str, e: usize) {
    let image = format!("registry.example.com/team/{app}:1.4.{e}");
    pod["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&*pod).unwrap(),
        "kubectl.kubernetes.io/restartedAt": "2026-12-01T10:00:00Z"});
    pod["metadata"]["managedFields"] = json!([
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-12-01T10:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:version": {}},
         "f:ownerReferences": {".": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {},
         "f:name": {}, "f:ports": {}, "f:resources": {}}}}}},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-12-01T10:00:05Z",
         "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": {"f:status": {"f:conditions": {},
         "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}}]);
    pod["spec"]["containers"] = json!([{"name": "app", "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]);
    pod["spec"]["serviceAccountName"] = json!("default");
    pod["status"] = json!({"phase": "Running", "hostIP": "10.0.0.1", "podIP": format!("10.1.{}.{}", e, 7),
        "startTime": "2026-12-01T10:00:00Z", "qosClass": "Burstable",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                       {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": image,
                               "imageID": format!("{image}@sha256:{}", "0".repeat(64)),
                               "containerID": format!("containerd://{}", "1".repeat(64)),
                               "state": {"running": {"startedAt": "2026-12-01T10:00:03Z"}}}]});
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize =
        std::env::var("SERVICES").ok().and_then(|v| v.parse().ok()).unwrap_or(if full { 10_000 } else { 20 });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let real_pods = std::env::var_os("REAL_PODS").is_some();
    let api = rt.block_on(FakeApiServer::start());
    let built = Instant::now();
    for i in 0..n {
        let ns = format!("team-{}", i / 100);
        let name = format!("svc-{i}");
        api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                         "spec": {"selector": {"app": name}, "clusterIP": format!("10.96.{}.{}", i / 250, i % 250 + 1),
                                  "ports": [{"name": "http", "port": 8080}]}}));
        for e in 0..5 {
            let version = if e < 4 { "v1" } else { "v2" };
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": format!("svc-{i}-{e}"), "namespace": ns,
                                          "labels": {"app": name, "version": version}},
                             "spec": {"nodeName": "node-1"}});
            if real_pods {
                dress(&mut pod, &name, e);
            }
            api.apply(pod);
        }
        api.apply(slice(i, 8080));
        api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                         "metadata": {"name": name, "namespace": ns},
                         "spec": {"host": name, "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                             {"name": "v2", "labels": {"version": "v2"}}]}}));
        api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                         "metadata": {"name": name, "namespace": ns},
                         "spec": {"hosts": [name], "http": [
                             {"match": [{"headers": {"x-canary": {"exact": "true"}}}], "route": [{"destination": {"host": name, "subset": "v2"}}]},
                             {"route": [{"destination": {"host": name, "subset": "v1"}, "weight": 90},
                                        {"destination": {"host": name, "subset": "v2"}, "weight": 10}]}]}}));
    }
    eprintln!(
        "stand-in API server holds {n} Services, {} endpoints ({:.1} s to build)",
        n * 5,
        built.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("weir-kube-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();

    let started = Instant::now();
    let weir = std::env::var("WEIR").unwrap_or_else(|_| env!("CARGO_BIN_EXE_weir").to_string());
    let mut child = Command::new(weir)
        .args(["run", "--kubernetes", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--mesh-listener", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--namespace", "team-0"])
        .args(["--access-log-format", "off", "--concurrency", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"ready\":true"), "{line}");
    let ready = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_kb(child.id());
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if l.contains("configuration reloaded") {
                let _ = tx.send(l);
            }
        }
    });
    // Drain reloads the first list may have caused.
    while rx.recv_timeout(Duration::from_secs(1)).is_ok() {}
    let changed = Instant::now();
    api.apply(slice(n / 2, 9090));
    let reloaded = rx.recv_timeout(Duration::from_secs(120)).expect("the change is reloaded");
    let change = changed.elapsed();
    println!(
        "| {n} Services, {} endpoints | ready {:.2} s | RSS {} MB | EndpointSlice change to serving {:.0} ms |",
        n * 5,
        ready.as_secs_f64(),
        rss / 1024,
        change.as_secs_f64() * 1000.0
    );
    println!("{reloaded}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
