//! The admin endpoint (`--admin`, default 127.0.0.1:15000): `/ready`, `/config_dump`
//! (the installed table as JSON), `/stats/prometheus` and `/clusters`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_table::{Action, Address, ClusterRef, HeaderOps, HeaderTemplate, LbPolicy, Listener, RouteTable};

use crate::Proxy;
use crate::body::ProxyBody;
use crate::respond::text;

/// Serves the admin API until `stop` fires.
pub(crate) async fn serve(listener: TcpListener, proxy: Arc<Proxy>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(_) => continue,
            },
            () = stop.cancelled() => return,
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| route(req, proxy.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn route(req: Request<Incoming>, proxy: Arc<Proxy>) -> Result<Response<ProxyBody>, Infallible> {
    let resp = match req.uri().path() {
        "/ready" => {
            if proxy.is_ready() {
                text(StatusCode::OK, Bytes::from_static(b"LIVE\n"))
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"PRE_INITIALIZING\n"))
            }
        }
        "/config_dump" => json_response(&config_dump(&proxy)),
        "/stats/prometheus" => {
            let mut r = text(StatusCode::OK, Bytes::from(proxy.shared.metrics.render()));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            r
        }
        "/clusters" => text(StatusCode::OK, Bytes::from(clusters(&proxy))),
        "/" => text(StatusCode::OK, Bytes::from_static(b"/ready\n/config_dump\n/stats/prometheus\n/clusters\n")),
        _ => text(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    };
    Ok(resp)
}

fn json_response(v: &Value) -> Response<ProxyBody> {
    let mut r = text(StatusCode::OK, Bytes::from(serde_json::to_vec_pretty(v).unwrap_or_default()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn ops(o: &HeaderOps) -> Value {
    let pairs = |l: &[(http::HeaderName, HeaderTemplate)]| -> Value {
        l.iter()
            .map(|(n, t)| {
                let v = match t {
                    HeaderTemplate::Literal(v) => v.to_str().unwrap_or("").to_string(),
                    HeaderTemplate::Parts(p) => format!("{p:?}"),
                };
                json!([n.as_str(), v])
            })
            .collect()
    };
    let names = |l: &[http::HeaderName]| -> Value { l.iter().map(|n| json!(n.as_str())).collect() };
    json!({
        "request_set": pairs(&o.request_set), "request_add": pairs(&o.request_add), "request_remove": names(&o.request_remove),
        "response_set": pairs(&o.response_set), "response_add": pairs(&o.response_add), "response_remove": names(&o.response_remove),
    })
}

fn cluster_ref(t: &RouteTable, r: &ClusterRef) -> Value {
    match r {
        ClusterRef::Missing => Value::Null,
        ClusterRef::Fixed(id) => json!(&*t.cluster(*id).name),
        ClusterRef::PerPort(l) => {
            l.iter().map(|(p, id)| json!({"port": p, "cluster": &*t.cluster(*id).name})).collect()
        }
    }
}

fn listener(t: &RouteTable, l: &Listener) -> Value {
    let vhosts: Vec<Value> = l
        .virtual_hosts
        .iter()
        .map(|vh| {
            let routes: Vec<Value> = vh
                .routes
                .iter()
                .map(|r| {
                    let action = match &*r.action {
                        Action::Forward(f) => json!({
                            "forward": f.destinations.iter().map(|d| json!({
                                "cluster": d.name.as_ref(),
                                "resolved": cluster_ref(t, &d.cluster),
                                "weight": d.weight,
                                "headers": ops(&d.headers),
                            })).collect::<Vec<_>>(),
                            "rewrite": f.rewrite.as_ref().map(|rw| format!("{rw:?}")),
                            "authority": f.authority.as_ref().and_then(|a| a.to_str().ok()),
                            "headers": ops(&f.headers),
                            "timeout_ms": f.timeout.map(|d| d.as_millis() as u64),
                            "retry": f.retry.as_ref().map(|r| json!({
                                "attempts": r.attempts,
                                "retry_on": r.retry_on.iter().map(|s| s.as_ref()).collect::<Vec<_>>(),
                                "retriable_status_codes": r.retriable_status_codes,
                                "per_try_timeout_ms": r.per_try_timeout.map(|d| d.as_millis() as u64),
                            })),
                            "mirrors": f.mirrors.iter().map(|m| json!({"cluster": m.name.as_ref(), "percentage": m.percentage})).collect::<Vec<_>>(),
                            "fault": f.fault.as_ref().map(|x| format!("{x:?}")),
                            "cors": f.cors.is_some(),
                        }),
                        Action::Redirect(rd) => json!({"redirect": format!("{rd:?}")}),
                        Action::Direct(d) => json!({"direct_response": {"status": d.status.as_u16(), "body_bytes": d.body.len()}}),
                    };
                    json!({"name": r.name.as_ref(), "from": r.origin.as_ref(), "match": r.matcher.describe(), "action": action})
                })
                .collect();
            json!({
                "name": vh.name.as_ref(),
                "domains": vh.domains.iter().map(|d| d.as_ref()).collect::<Vec<_>>(),
                "require_tls": vh.require_tls,
                "routes": routes,
            })
        })
        .collect();
    json!({
        "name": l.name.as_ref(),
        "role": format!("{:?}", l.role).to_lowercase(),
        "port": l.port,
        "bind": l.bind.as_deref(),
        "protocol": l.protocol.as_ref(),
        "virtual_hosts": vhosts,
    })
}

/// The installed table as JSON.
pub(crate) fn config_dump(proxy: &Proxy) -> Value {
    let snap = proxy.shared.snapshot.load();
    let t = &snap.table;
    let clusters: Vec<Value> = t
        .clusters
        .iter()
        .map(|c| {
            let lb = match &c.lb {
                LbPolicy::RingHash { key, min_ring_size } => json!({"ring_hash": {"key": format!("{key:?}"), "minimum_ring_size": min_ring_size}}),
                LbPolicy::Maglev { key, table_size } => json!({"maglev": {"key": format!("{key:?}"), "table_size": table_size}}),
                other => json!(format!("{other:?}")),
            };
            json!({
                "name": c.name.as_ref(),
                "service": c.service.as_ref(),
                "port": c.port,
                "subset": c.subset.as_ref(),
                "protocol": format!("{:?}", c.protocol),
                "lb": lb,
                "endpoints": c.endpoints.iter().map(|e| json!({
                    "address": e.address.to_string(),
                    "weight": e.weight,
                    "labels": e.labels.iter().map(|(k, v)| (k.to_string(), json!(v.as_ref()))).collect::<serde_json::Map<_, _>>(),
                })).collect::<Vec<_>>(),
                "limits": format!("{:?}", c.limits),
                "outlier_detection": c.outlier.as_ref().map(|o| format!("{o:?}")),
            })
        })
        .collect();
    json!({
        "version": t.version,
        "listeners": t.listeners.iter().map(|l| listener(t, l)).collect::<Vec<_>>(),
        "clusters": clusters,
        "bound": proxy.addresses().iter().map(|(n, a)| json!({"listener": n, "address": a.to_string()})).collect::<Vec<_>>(),
    })
}

fn clusters(proxy: &Proxy) -> String {
    let snap = proxy.shared.snapshot.load();
    let mut out = String::new();
    for c in &snap.clusters {
        for e in &c.endpoints {
            let host = match &e.address {
                Address::Socket(s) => s.to_string(),
                Address::Dns(h, p) => format!("{h}:{p}"),
            };
            let _ = writeln!(out, "{}::{host}::weight::{}", c.name, e.weight);
            let _ = writeln!(out, "{}::{host}::rq_active::{}", c.name, e.active.load(Ordering::Relaxed));
            let _ = writeln!(out, "{}::{host}::cx_active::{}", c.name, e.connections());
            let _ = writeln!(out, "{}::{host}::cx_idle::{}", c.name, e.idle());
            let _ = writeln!(out, "{}::{host}::health_flags::healthy", c.name);
        }
    }
    out
}
