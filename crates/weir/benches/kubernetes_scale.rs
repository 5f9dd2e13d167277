//! Kubernetes mode at scale: `weir run --kubernetes` against the testkit's stand-in API
//! server (no cluster runs here) holding N Services, each with an EndpointSlice of 5
//! ready endpoints and their 5 Pods, a DestinationRule with two subsets and a
//! VirtualService. Reports the time to ready (first full list, load, compile, install),
//! the RSS once ready, and the time from an EndpointSlice change to the reloaded table.
//!
//!   cargo bench -p weir --bench kubernetes_scale            # 10,000 Services, 50,000 endpoints
//!   SERVICES=2000 cargo bench -p weir --bench kubernetes_scale
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

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize =
        std::env::var("SERVICES").ok().and_then(|v| v.parse().ok()).unwrap_or(if full { 10_000 } else { 20 });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
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
            api.apply(json!({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": format!("svc-{i}-{e}"), "namespace": ns,
                                          "labels": {"app": name, "version": version}},
                             "spec": {"nodeName": "node-1"}}));
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
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
