//! `weir demo`: the bookinfo example end to end on this machine. Sample backends
//! (productpage, reviews v1/v2/v3, ratings) answer with their name and version on the
//! loopback ports that `examples/bookinfo/services.yaml` registers; weir serves the
//! embedded bookinfo configuration as the ingress gateway (port 8080) and as the mesh
//! (127.0.0.1:15001).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

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
pub(crate) const BOOKINFO: [(&str, &str); 4] = [
    ("examples/bookinfo/services.yaml", include_str!("../../../examples/bookinfo/services.yaml")),
    ("examples/bookinfo/destination-rules.yaml", include_str!("../../../examples/bookinfo/destination-rules.yaml")),
    ("examples/bookinfo/gateway.yaml", include_str!("../../../examples/bookinfo/gateway.yaml")),
    ("examples/bookinfo/mesh.yaml", include_str!("../../../examples/bookinfo/mesh.yaml")),
];

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

async fn backend(name: &'static str, version: &'static str, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| async move {
                    let body = format!(
                        "{{\"service\":\"{name}\",\"version\":\"{version}\",\"path\":{:?}}}\n",
                        req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
                    );
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(r)
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(())
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
        let mut resources = Vec::new();
        for (file, text) in BOOKINFO {
            let report = weir_model::load_str(file, text);
            if report.has_errors() {
                tracing::error!("the embedded configuration {file} does not validate");
                return ExitCode::from(1);
            }
            resources.extend(report.resources);
        }
        let run_args = run::Args {
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
        };
        print_guide();
        run::serve(run_args, Some(resources)).await
    })
}

#[allow(clippy::print_stdout)]
fn print_guide() {
    println!(
        r#"weir demo: bookinfo behind an Istio ingress gateway, from examples/bookinfo/.

Backends: productpage v1 :19081, reviews v1 :19082 v2 :19083 v3 :19084, ratings v1 :19085
Gateway:  http://127.0.0.1:8080   Mesh listener: http://127.0.0.1:15001   Admin: http://127.0.0.1:15000

Try, in another terminal:

  # the default route at the gateway: productpage
  curl -s http://127.0.0.1:8080/productpage

  # header routing: the user "jason" always gets reviews v2
  curl -s -H 'end-user: jason' http://127.0.0.1:8080/reviews/1

  # a 90/10 canary: reviews v1 against v3
  for i in $(seq 100); do curl -s http://127.0.0.1:8080/reviews/1; done | sort | uniq -c

  # the same rules inside the mesh, addressed by Istio's short names
  curl -s -H 'Host: reviews' -H 'end-user: jason' http://127.0.0.1:15001/
  curl -s -H 'Host: ratings.bookinfo:9080' http://127.0.0.1:15001/ratings/0

  # what weir compiled, and its Istio metrics
  curl -s http://127.0.0.1:15000/config_dump | head -40
  curl -s http://127.0.0.1:15000/stats/prometheus | grep istio_requests_total

Access log lines follow. Ctrl-C stops.
"#
    );
}
