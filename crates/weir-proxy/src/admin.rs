//! The admin endpoint (`--admin`, default 127.0.0.1:15000): `/ready`, `/config_dump`
//! (the installed table, serialized as it is), `/stats` (Envoy's cluster statistics as
//! text, `?filter=REGEX`), `/stats/prometheus` (Istio's metrics and Envoy's cluster
//! statistics) and `/clusters` (each endpoint's connections, requests and outlier state;
//! `?format=json`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Proxy;
use crate::body::ProxyBody;
use crate::respond::text;
use crate::stats::envoy_name;
use crate::upstream::{ClusterState, EndpointState};

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

/// A query parameter's value.
fn param<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    weir_table::matcher::query_param(req.uri().query()?, name)
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
            let mut out = proxy.shared.metrics.render();
            prometheus_clusters(&proxy, &mut out);
            proxy.config_metrics(&mut out);
            let mut r = text(StatusCode::OK, Bytes::from(out));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            r
        }
        "/stats" => match param(&req, "filter").map(|f| regex::Regex::new(&percent_decode(f))) {
            Some(Err(e)) => text(StatusCode::BAD_REQUEST, Bytes::from(format!("invalid filter: {e}\n"))),
            Some(Ok(re)) => text(StatusCode::OK, Bytes::from(stats_text(&proxy, Some(&re)))),
            None => text(StatusCode::OK, Bytes::from(stats_text(&proxy, None))),
        },
        "/clusters" => match param(&req, "format") {
            Some("json") => json_response(&clusters_json(&proxy)),
            _ => text(StatusCode::OK, Bytes::from(clusters_text(&proxy))),
        },
        "/" => text(
            StatusCode::OK,
            Bytes::from_static(b"/ready\n/config_dump\n/stats\n/stats/prometheus\n/clusters\n/clusters?format=json\n"),
        ),
        _ => text(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    };
    Ok(resp)
}

/// `%XX` escapes in a query value (a filter like `rq%7Ccx`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(v: &Value) -> Response<ProxyBody> {
    let mut r = text(StatusCode::OK, Bytes::from(serde_json::to_vec_pretty(v).unwrap_or_default()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The installed table as JSON: the table itself through serde, and where its listeners
/// are bound.
pub(crate) fn config_dump(proxy: &Proxy) -> Value {
    let snap = proxy.shared.snapshot.load();
    let mut v = serde_json::to_value(&*snap.table).unwrap_or_else(|e| json!({"error": e.to_string()}));
    v["bound"] =
        proxy.addresses().iter().map(|(n, a)| json!({"listener": n, "address": a.to_string()})).collect::<Value>();
    v
}

/// One value of a cluster: a counter, or a gauge read now.
struct ClusterValue {
    name: String,
    value: u64,
    gauge: bool,
}

/// Every statistic of a cluster, by Envoy name (without the `cluster.<name>.` prefix).
fn cluster_values(c: &ClusterState) -> Vec<ClusterValue> {
    let mut v = Vec::with_capacity(48);
    let counter = |name: String, value: u64| ClusterValue { name, value, gauge: false };
    let gauge = |name: &str, value: u64| ClusterValue { name: name.to_string(), value, gauge: true };
    v.push(counter("upstream_rq_total".into(), c.rq_total.get()));
    c.stats.each(|n, value| v.push(counter(envoy_name(n), value)));
    let cx: u64 = c.endpoints.iter().map(|e| u64::from(e.connections())).sum();
    let rq: u64 = c.endpoints.iter().map(|e| u64::from(e.active.load(Ordering::Relaxed))).sum();
    let b = &c.breakers;
    let l = &c.spec.limits;
    let pending = u64::from(b.pending.load(Ordering::Relaxed));
    let retries = u64::from(b.retries.load(Ordering::Relaxed));
    v.push(gauge("upstream_cx_active", cx));
    v.push(gauge("upstream_rq_active", rq));
    v.push(gauge("upstream_rq_pending_active", pending));
    let open = |cur: u64, max: u32| u64::from(cur >= u64::from(max));
    let left = |cur: u64, max: u32| u64::from(max).saturating_sub(cur);
    v.push(gauge("circuit_breakers.default.cx_open", open(cx, l.max_connections)));
    v.push(gauge("circuit_breakers.default.rq_pending_open", open(pending, l.max_pending_requests)));
    v.push(gauge("circuit_breakers.default.rq_open", open(rq, l.max_requests)));
    v.push(gauge("circuit_breakers.default.rq_retry_open", open(retries, l.max_retries)));
    v.push(gauge("circuit_breakers.default.remaining_cx", left(cx, l.max_connections)));
    v.push(gauge("circuit_breakers.default.remaining_pending", left(pending, l.max_pending_requests)));
    v.push(gauge("circuit_breakers.default.remaining_rq", left(rq, l.max_requests)));
    v.push(gauge("circuit_breakers.default.remaining_retries", left(retries, l.max_retries)));
    if c.spec.outlier.is_some() {
        v.push(gauge("outlier_detection.ejections_active", c.ejected() as u64));
    }
    v
}

/// A cluster worth listing: it has seen traffic, or it has limits or outlier detection
/// of its own (the clusters Istio's circuit-breaking task looks at).
fn listed(c: &ClusterState) -> bool {
    c.rq_total.get() > 0 || c.spec.outlier.is_some() || *c.spec.limits != weir_table::ConnectionLimits::default()
}

/// Envoy's `/stats` text: `cluster.<name>.<stat>: <value>`.
fn stats_text(proxy: &Proxy, filter: Option<&regex::Regex>) -> String {
    let snap = proxy.shared.snapshot.load();
    let mut out = String::new();
    // A listed cluster has state: made at install, or by its traffic.
    for c in snap.clusters.made().filter(|c| listed(c)) {
        for v in cluster_values(c) {
            let line = format!("cluster.{}.{}", c.name, v.name);
            if filter.is_none_or(|f| f.is_match(&line)) {
                let _ = writeln!(out, "{line}: {}", v.value);
            }
        }
    }
    out
}

/// The cluster statistics as Istio's bootstrap exposes them to Prometheus:
/// `envoy_cluster_<stat>{cluster_name="<name>"}`, dots turned into underscores.
fn prometheus_clusters(proxy: &Proxy, out: &mut String) {
    let snap = proxy.shared.snapshot.load();
    let clusters: Vec<(&ClusterState, Vec<ClusterValue>)> =
        snap.clusters.made().filter(|c| listed(c)).map(|c| (&**c, cluster_values(c))).collect();
    let Some((_, first)) = clusters.first() else { return };
    for (i, v) in first.iter().enumerate() {
        let metric = format!("envoy_cluster_{}", v.name.replace('.', "_"));
        let _ = writeln!(out, "# TYPE {metric} {}", if v.gauge { "gauge" } else { "counter" });
        for (c, values) in &clusters {
            if let Some(x) = values.get(i) {
                let _ = writeln!(out, "{metric}{{cluster_name=\"{}\"}} {}", c.name, x.value);
            }
        }
    }
}

/// An endpoint's `health_flags`, as Envoy writes them.
fn health_flags(e: &EndpointState) -> &'static str {
    if e.ejected.load(Ordering::Acquire) { "/failed_outlier_check" } else { "healthy" }
}

/// Milliseconds until an ejected endpoint may return (the sweep brings it back).
fn ejected_for_ms(c: &ClusterState, e: &EndpointState, now: Instant) -> Option<u64> {
    let policy = c.spec.outlier.as_ref()?;
    let until = e.health().ejected_until(policy)?;
    Some(until.saturating_duration_since(now).as_millis() as u64)
}

/// `/clusters` in Envoy's text form, with weir's pool and outlier lines.
fn clusters_text(proxy: &Proxy) -> String {
    let snap = proxy.shared.snapshot.load();
    let now = Instant::now();
    let mut out = String::new();
    for c in snap.clusters.iter() {
        let n = &c.name;
        let l = &c.spec.limits;
        if c.spec.outlier.is_some() {
            for k in ["success_rate_average", "success_rate_ejection_threshold"] {
                let _ = writeln!(out, "{n}::outlier::{k}::-1");
            }
            let _ = writeln!(out, "{n}::outlier::ejections_active::{}", c.ejected());
        }
        let _ = writeln!(out, "{n}::default_priority::max_connections::{}", l.max_connections);
        let _ = writeln!(out, "{n}::default_priority::max_pending_requests::{}", l.max_pending_requests);
        let _ = writeln!(out, "{n}::default_priority::max_requests::{}", l.max_requests);
        let _ = writeln!(out, "{n}::default_priority::max_retries::{}", l.max_retries);
        let _ = writeln!(out, "{n}::rq_pending_active::{}", c.breakers.pending.load(Ordering::Relaxed));
        let _ =
            writeln!(out, "{n}::rq_pending_overflow::{}", c.stats.upstream_rq_pending_overflow.load(Ordering::Relaxed));
        let _ = writeln!(out, "{n}::added_via_api::true");
        for e in &c.endpoints {
            let h = &e.host;
            let (region, zone, sub) = locality(c, e);
            let _ = writeln!(out, "{n}::{h}::cx_active::{}", e.connections());
            let _ = writeln!(out, "{n}::{h}::cx_idle::{}", e.idle());
            let _ = writeln!(out, "{n}::{h}::rq_active::{}", e.active.load(Ordering::Relaxed));
            let _ = writeln!(out, "{n}::{h}::rq_pending::{}", e.waiting());
            let _ = writeln!(out, "{n}::{h}::hostname::");
            let _ = writeln!(out, "{n}::{h}::health_flags::{}", health_flags(e));
            let _ = writeln!(out, "{n}::{h}::weight::{}", e.weight);
            let _ = writeln!(out, "{n}::{h}::region::{region}");
            let _ = writeln!(out, "{n}::{h}::zone::{zone}");
            let _ = writeln!(out, "{n}::{h}::sub_zone::{sub}");
            if c.spec.outlier.is_some() {
                let _ = writeln!(out, "{n}::{h}::times_ejected::{}", e.health().times_ejected);
                if let Some(ms) = ejected_for_ms(c, e, now) {
                    let _ = writeln!(out, "{n}::{h}::ejected_for_ms::{ms}");
                }
            }
            let _ = writeln!(out, "{n}::{h}::success_rate::-1");
        }
    }
    out
}

/// The endpoint's `region/zone/subzone` from the table.
fn locality<'a>(c: &'a ClusterState, e: &EndpointState) -> (&'a str, &'a str, &'a str) {
    let loc = c.spec.endpoints.iter().find(|s| s.address == e.address).map_or("", |s| &*s.locality);
    let mut parts = loc.splitn(3, '/');
    (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

/// `/clusters?format=json`.
fn clusters_json(proxy: &Proxy) -> Value {
    let snap = proxy.shared.snapshot.load();
    let now = Instant::now();
    let clusters: Vec<Value> = snap
        .clusters
        .iter()
        .map(|c| {
            let hosts: Vec<Value> = c
                .endpoints
                .iter()
                .map(|e| {
                    let health = e.health();
                    json!({
                        "address": &*e.host,
                        "weight": e.weight,
                        "cx_active": e.connections(),
                        "cx_idle": e.idle(),
                        "rq_active": e.active.load(Ordering::Relaxed),
                        "rq_pending": e.waiting(),
                        "health_flags": health_flags(e),
                        "times_ejected": health.times_ejected,
                        "ejected_for_ms": drop_then(health, || ejected_for_ms(c, e, now)),
                    })
                })
                .collect();
            let stats: serde_json::Map<String, Value> =
                cluster_values(c).into_iter().map(|v| (v.name, json!(v.value))).collect();
            json!({
                "name": &*c.name,
                "limits": &c.spec.limits,
                "outlier_detection": &c.spec.outlier,
                "stats": stats,
                "hosts": hosts,
            })
        })
        .collect();
    json!({ "clusters": clusters })
}

/// Releases a lock before computing what needs it again.
fn drop_then<G, T>(guard: G, f: impl FnOnce() -> T) -> T {
    drop(guard);
    f()
}
