//! `weir demo`: the bookinfo example end to end on this machine. Sample backends
//! (productpage, reviews v1/v2/v3, ratings) answer with their name and version on the
//! loopback ports that `examples/bookinfo/services.yaml` registers; an httpbin-like
//! backend that fails on command shows retries, timeouts and circuit breaking
//! (`examples/bookinfo/resilience.yaml`); faults and mirroring are on the bookinfo
//! services (`examples/bookinfo/chaos.yaml`); weir serves the embedded configuration as the
//! ingress gateway (HTTP on port 8080, HTTPS on 8443 with a certificate made at start)
//! and as the mesh (127.0.0.1:15001).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Args as ClapArgs;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::run::{self, LogFormat};

/// The bookinfo configuration, built into the binary.
pub(crate) const BOOKINFO: [(&str, &str); 6] = [
    ("examples/bookinfo/services.yaml", include_str!("../../../examples/bookinfo/services.yaml")),
    ("examples/bookinfo/destination-rules.yaml", include_str!("../../../examples/bookinfo/destination-rules.yaml")),
    ("examples/bookinfo/gateway.yaml", include_str!("../../../examples/bookinfo/gateway.yaml")),
    ("examples/bookinfo/mesh.yaml", include_str!("../../../examples/bookinfo/mesh.yaml")),
    ("examples/bookinfo/resilience.yaml", include_str!("../../../examples/bookinfo/resilience.yaml")),
    ("examples/bookinfo/chaos.yaml", include_str!("../../../examples/bookinfo/chaos.yaml")),
];

/// The httpbin-like backend of `resilience.yaml`.
const HTTPBIN_PORT: u16 = 19086;

/// The sample backends: (service, version, port), as in services.yaml.
const BACKENDS: [(&str, &str, u16); 5] = [
    ("productpage", "v1", 19081),
    ("reviews", "v1", 19082),
    ("reviews", "v2", 19083),
    ("reviews", "v3", 19084),
    ("ratings", "v1", 19085),
];

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    /// Access-log format (lines go to stdout).
    #[arg(long, value_enum, default_value = "text")]
    access_log_format: LogFormat,
}

/// A sample backend: answers every request with its name, version and path, and
/// `GET /_hits` with how many other requests it has answered (how the demo shows a
/// mirror receiving its copies).
async fn backend(name: &'static str, version: &'static str, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let hits = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let hits = hits.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
                    let body = if path == "/_hits" {
                        let n = hits.load(Ordering::Relaxed);
                        format!("{{\"service\":\"{name}\",\"version\":\"{version}\",\"requests\":{n}}}\n")
                    } else {
                        hits.fetch_add(1, Ordering::Relaxed);
                        format!("{{\"service\":\"{name}\",\"version\":\"{version}\",\"path\":{path:?}}}\n")
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(())
}

/// An httpbin-like backend that fails on command: `POST /fail/N` makes the next N
/// requests answer 503; `/status/CODE` answers CODE; `/delay/S` answers after S
/// seconds; anything else echoes the path and the try number weir sent
/// (`x-envoy-attempt-count`).
async fn httpbin(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let failing = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let failing = failing.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let failing = failing.clone();
                    async move { Ok::<_, Infallible>(httpbin_answer(&req, &failing).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(())
}

async fn httpbin_answer(req: &Request<Incoming>, failing: &AtomicU64) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let reply = |status: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
        r
    };
    if let Some(n) = path.strip_prefix("/fail/").and_then(|n| n.parse().ok()) {
        failing.store(n, Ordering::SeqCst);
        return reply(200, format!("{{\"failing_next\":{n}}}\n"));
    }
    if failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return reply(503, "{\"service\":\"httpbin\",\"failed\":\"on command\"}\n".into());
    }
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
        return reply(code, format!("{{\"status\":{code}}}\n"));
    }
    if let Some(secs) = path.strip_prefix("/delay/").and_then(|s| s.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_secs(secs.min(60))).await;
    }
    let attempt = req.headers().get("x-envoy-attempt-count").and_then(|v| v.to_str().ok()).unwrap_or("-");
    reply(200, format!("{{\"service\":\"httpbin\",\"path\":{path:?},\"attempt\":\"{attempt}\"}}\n"))
}

pub(crate) fn run(args: Args) -> ExitCode {
    run::init_logging();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async move {
        for (name, version, port) in BACKENDS {
            if let Err(e) = backend(name, version, port).await {
                tracing::error!("cannot start the sample backend {name} {version} on 127.0.0.1:{port}: {e}");
                return ExitCode::from(2);
            }
        }
        if let Err(e) = httpbin(HTTPBIN_PORT).await {
            tracing::error!("cannot start the sample backend httpbin on 127.0.0.1:{HTTPBIN_PORT}: {e}");
            return ExitCode::from(2);
        }
        let mut resources = Vec::new();
        for (file, text) in BOOKINFO {
            let report = weir_model::load_str(file, text);
            if report.has_errors() {
                tracing::error!("the embedded configuration {file} does not validate");
                return ExitCode::from(1);
            }
            resources.extend(report.resources);
        }
        // The HTTPS gateway's certificate, made now; it lives as long as the demo.
        let tls_dir = std::env::temp_dir().join(format!("weir-demo-{}", std::process::id()));
        let material = match crate::demo_tls::generate(&tls_dir) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        };
        let run_args = run::Args {
            kubernetes: false,
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            config: BOOKINFO.iter().map(|(f, _)| f.into()).collect(),
            labels: BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]),
            namespace: "bookinfo".into(),
            mesh_listener: Some(SocketAddr::from(([127, 0, 0, 1], 15001))),
            admin: SocketAddr::from(([127, 0, 0, 1], 15000)),
            listen_address: [127, 0, 0, 1].into(),
            access_log_format: args.access_log_format,
            drain_seconds: 5,
            concurrency: None,
            seed: None,
            shadow_host_suffix: false,
            credentials: Some(material.credentials.clone()),
        };
        print_guide(&material.ca);
        let code = run::serve(run_args, std::sync::Arc::new(weir_source::FixedSource::new(resources))).await;
        let _ = std::fs::remove_dir_all(&tls_dir);
        code
    })
}

#[allow(clippy::print_stdout)]
fn print_guide(ca: &std::path::Path) {
    let ca = ca.display();
    let host = crate::demo_tls::HOST;
    println!(
        r#"weir demo: bookinfo behind an Istio ingress gateway, from examples/bookinfo/.

Backends: productpage v1 :19081, reviews v1 :19082 v2 :19083 v3 :19084, ratings v1 :19085,
          httpbin :19086 (fails on command)
Gateway:  http://127.0.0.1:8080, https://{host}:8443   Mesh listener: http://127.0.0.1:15001   Admin: http://127.0.0.1:15000

Try, in another terminal:

  # the default route at the gateway: productpage
  curl -s http://127.0.0.1:8080/productpage

  # the same routes over HTTPS (seed pattern 7: the certificate comes from the
  # credential bookinfo-credential, made at start; curl trusts its CA), HTTP/2 by ALPN
  curl -s --cacert {ca} --resolve {host}:8443:127.0.0.1 https://{host}:8443/productpage
  curl -s -o /dev/null -w '%{{http_version}}\n' --http2 --cacert {ca} \
    --resolve {host}:8443:127.0.0.1 https://{host}:8443/productpage

  # header routing: the user "jason" always gets reviews v2
  curl -s -H 'end-user: jason' http://127.0.0.1:8080/reviews/1

  # a 90/10 canary: reviews v1 against v3
  for i in $(seq 100); do curl -s http://127.0.0.1:8080/reviews/1; done | sort | uniq -c

  # the same rules inside the mesh, addressed by Istio's short names
  curl -s -H 'Host: reviews' -H 'end-user: jason' http://127.0.0.1:15001/
  curl -s -H 'Host: ratings.bookinfo:9080' http://127.0.0.1:15001/ratings/0

  # retries (examples/bookinfo/resilience.yaml): httpbin fails the next 2 requests,
  # weir retries them and the client gets 200 on the third try ("attempt":"3")
  curl -s -X POST http://127.0.0.1:19086/fail/2
  curl -s -H 'Host: httpbin.example' http://127.0.0.1:8080/get

  # a route timeout: /delay/5 under `timeout: 1s` is 504 after a second
  curl -s -i -H 'Host: httpbin.example' http://127.0.0.1:8080/delay/5

  # circuit breaking (maxConnections 1, http1MaxPendingRequests 1): of 20 concurrent
  # requests two get through, the rest are 503 with x-envoy-overloaded (flag UO)
  seq 20 | xargs -P 20 -I{{}} curl -s -o /dev/null -w '%{{http_code}}\n' \
    -H 'Host: httpbin-cb.example' http://127.0.0.1:8080/delay/1 | sort | uniq -c
  curl -s http://127.0.0.1:15000/stats | grep -E 'httpbin-cb.*(pending_overflow|rq_total)'

  # outlier detection: one 500 ejects the only host for 10s: 503 "no healthy upstream"
  curl -s -H 'Host: httpbin-cb.example' http://127.0.0.1:8080/status/500
  curl -s -H 'Host: httpbin-cb.example' http://127.0.0.1:8080/get
  curl -s http://127.0.0.1:15000/clusters | grep httpbin-cb | grep -E 'health_flags|ejected'

  # fault injection (examples/bookinfo/chaos.yaml), for the user "jason" only:
  # a 2 s delay (flag DI), and a 503 abort that never reaches ratings (flag FI)
  curl -s -w '%{{time_total}}s\n' -H 'Host: ratings-delay.example' -H 'end-user: jason' http://127.0.0.1:8080/ratings/0
  curl -s -w '%{{time_total}}s\n' -H 'Host: ratings-delay.example' http://127.0.0.1:8080/ratings/0
  curl -s -i -H 'Host: ratings-abort.example' -H 'end-user: jason' http://127.0.0.1:8080/ratings/0
  curl -s -H 'Host: ratings-abort.example' http://127.0.0.1:8080/ratings/0

  # mirroring: reviews v1 answers, reviews v2 gets a copy of each request (see the
  # access log: one line per copy, upstream cluster outbound|9080|v2|reviews...)
  curl -s http://127.0.0.1:19083/_hits
  for i in 1 2 3; do curl -s -H 'Host: reviews-mirror.example' http://127.0.0.1:8080/reviews/1; done
  curl -s http://127.0.0.1:19083/_hits

  # what weir compiled, and its Istio metrics
  curl -s http://127.0.0.1:15000/config_dump | head -40
  curl -s http://127.0.0.1:15000/stats/prometheus | grep istio_requests_total

Access log lines follow. Ctrl-C stops.
"#
    );
}
