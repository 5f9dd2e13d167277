//! The measuring half of `bench/scale.sh`: runs `weir run` on a generated mesh and
//! reports, as one JSON line on stdout, the time from spawning weir to its `ready` line,
//! its steady RSS, and the reload latency of one change observed through traffic.
//!
//! ```text
//! scale_probe mesh WEIR CONFIG_DIR PORT_V1 PORT_V2 [FLIPS]
//! scale_probe ready WEIR CONFIG_DIR NAMESPACE [RUNS]
//! ```
//!
//! `ready` only times start-up (the median of RUNS starts, for `examples/bookinfo`).
//!
//! Service `svc-00000` (namespace `team-000`, first in `CONFIG_DIR/team-000.yaml`) has its
//! v1 endpoint on `127.0.0.1:PORT_V1` and its v2 endpoint on `127.0.0.1:PORT_V2`; this
//! program answers on both, naming the version. Its VirtualService sends
//! `x-canary: true` to one subset; each flip rewrites that subset in the file (a write
//! to a temporary file and a rename, as editors and ConfigMaps do) and times how long
//! until a request through weir's mesh listener reaches the other backend. Every
//! address is on loopback.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use weir_testkit::http1_client;

const FILE: &str = "team-000.yaml";
const HOST: &str = "svc-00000.team-000.svc.cluster.local";
const MARK: &str = "  - name: canary-testers\n";

/// Answers every request with `version` as body and `x-backend-version` header.
async fn backend(port: u16, version: &'static str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                    let mut resp = Response::new(Full::new(Bytes::from_static(version.as_bytes())));
                    resp.headers_mut().insert("x-backend-version", http::HeaderValue::from_static(version));
                    Ok::<_, Infallible>(resp)
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(())
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Rewrites the subset of svc-00000's canary route to `to`, by rename.
fn flip(dir: &Path, to: &str) -> Instant {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).expect("read the probed file");
    let at = text.find(MARK).expect("svc-00000's canary route");
    let rel = text[at..].find("subset: v").expect("its subset") + at + "subset: ".len();
    let mut new = text.clone();
    new.replace_range(rel..rel + 2, to);
    let tmp = dir.join(format!(".{FILE}.tmp"));
    std::fs::write(&tmp, new).expect("write the temporary file");
    let t0 = Instant::now();
    std::fs::rename(&tmp, &path).expect("rename over the probed file");
    t0
}

/// A started weir: the process, its ready line, and how long it took to print it.
struct Started {
    child: Child,
    ready: serde_json::Value,
    ready_ms: f64,
}

/// Spawns `weir run` with one worker and waits for its ready line.
fn start(weir: &Path, dir: &Path, namespace: &str) -> Started {
    let t0 = Instant::now();
    let mut child = Command::new(weir)
        .args(["run", "-c"])
        .arg(dir)
        .args(["--namespace", namespace, "--mesh-listener", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--listen-address", "127.0.0.1", "--access-log-format", "off", "--concurrency", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let ready = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("\"ready\":true") => break l,
            Some(Ok(_)) => continue,
            _ => {
                let _ = child.kill();
                panic!("weir exited before it was ready");
            }
        }
    };
    let ready_ms = t0.elapsed().as_secs_f64() * 1e3;
    // Keep reading stdout so weir never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Started { child, ready: serde_json::from_str(&ready).expect("a JSON ready line"), ready_ms }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn usage() -> ! {
    eprintln!("usage: scale_probe mesh WEIR CONFIG_DIR PORT_V1 PORT_V2 [FLIPS]");
    eprintln!("       scale_probe ready WEIR CONFIG_DIR NAMESPACE [RUNS]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        usage();
    }
    let weir = PathBuf::from(&args[2]);
    let dir = PathBuf::from(&args[3]);
    match args[1].as_str() {
        "mesh" if args.len() >= 6 => mesh(&weir, &dir, &args[4..]),
        "ready" => {
            let runs: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(5);
            let times = (0..runs.max(1))
                .map(|_| {
                    let mut s = start(&weir, &dir, &args[4]);
                    let _ = s.child.kill();
                    let _ = s.child.wait();
                    s.ready_ms
                })
                .collect::<Vec<_>>();
            println!("{}", serde_json::json!({"ready_ms": round1(median(times))}));
        }
        _ => usage(),
    }
}

fn mesh(weir: &Path, dir: &Path, args: &[String]) {
    let (p1, p2): (u16, u16) = (args[0].parse().expect("PORT_V1"), args[1].parse().expect("PORT_V2"));
    let flips: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async {
        backend(p1, "v1").await.expect("bind PORT_V1");
        backend(p2, "v2").await.expect("bind PORT_V2");
    });
    let Started { mut child, ready, ready_ms } = start(weir, dir, "team-000");
    let mesh = ready["listeners"]["mesh"].as_str().expect("a mesh listener").to_string();
    let pid = child.id();

    let url = format!("http://{mesh}/");
    let client = http1_client();
    let get = |client: &weir_testkit::HttpClient| {
        let url = url.clone();
        let client = client.clone();
        rt.block_on(async move {
            let r = client.get(&url, HOST, &[("x-canary", "true")]).await;
            r.header("x-backend-version").unwrap_or("").to_string()
        })
    };
    let first = get(&client);
    if first != "v2" {
        let _ = child.kill();
        panic!("expected the canary route to reach v2 before any change, got {first:?}");
    }
    std::thread::sleep(Duration::from_secs(2));
    let (rss, hwm) = memory(pid);

    let mut reloads = Vec::new();
    for k in 0..flips {
        let to = if k % 2 == 0 { "v1" } else { "v2" };
        let t0 = flip(dir, to);
        loop {
            if get(&client) == to {
                reloads.push(t0.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("the change to {to} was not served within 30 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        // Let the watcher settle so flips are not coalesced.
        std::thread::sleep(Duration::from_millis(700));
    }
    // Leave the file as generated (canary to v2).
    if flips % 2 == 1 {
        flip(dir, "v2");
    }
    let (rss_after, hwm_after) = memory(pid);
    let _ = child.kill();
    let _ = child.wait();
    let max = reloads.iter().copied().fold(0.0, f64::max);
    println!(
        "{}",
        serde_json::json!({
            "ready_ms": round1(ready_ms),
            "rss_kb": rss,
            "hwm_kb": hwm,
            "reload_ms": reloads.iter().copied().map(round1).collect::<Vec<_>>(),
            "reload_median_ms": round1(median(reloads.clone())),
            "reload_max_ms": round1(max),
            "rss_after_reloads_kb": rss_after,
            "hwm_after_reloads_kb": hwm_after,
        })
    );
}
