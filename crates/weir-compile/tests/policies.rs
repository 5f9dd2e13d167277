//! Resilience policies compiled as Istio translates them (spec §2.9, §3.6, §3.7): what
//! the table holds is what the proxy executes, so these are the semantics' first line.

use std::time::Duration;

use weir_compile::{Instance, compile};
use weir_model::load_str;
use weir_table::{Action, ConnectionLimits, OutlierPolicy, RetryOn, RetryPolicy, RouteTable};

const SERVICE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
";

fn compiled(extra: &str) -> (RouteTable, Vec<String>) {
    let r = load_str("t.yaml", &format!("{SERVICE}{extra}"));
    assert!(!r.has_errors(), "{:#?}", r.diagnostics);
    let c = compile(r.resources, &Instance { namespace: "ns".into(), mesh: true, ..Instance::default() }, 1);
    (c.table, c.diagnostics.into_iter().map(|d| d.diagnostic.message).collect())
}

/// The retry policy of the mesh route for `svc` with `retries` (YAML flow mapping, or
/// nothing for a route without it).
fn retry(retries: &str) -> Option<RetryPolicy> {
    let field = if retries.is_empty() { String::new() } else { format!("    retries: {retries}\n") };
    let (t, _) = compiled(&format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - route: [{{destination: {{host: svc}}}}]
{field}"
    ));
    let mesh = t.mesh().unwrap();
    let vh = mesh.virtual_host("svc").unwrap();
    match &*vh.routes[0].action {
        Action::Forward(f) => f.retry.clone(),
        _ => panic!("not a forward"),
    }
}

fn tokens(p: &RetryPolicy) -> Vec<&'static str> {
    p.retry_on.tokens().collect()
}

#[test]
fn retries_as_istio_converts_them() {
    // No `retries`: Istio's default (1.24+: no 503).
    let d = retry("").unwrap();
    assert_eq!(d.attempts, 2);
    assert_eq!(tokens(&d), ["connect-failure", "refused-stream", "retriable-status-codes", "cancelled", "unavailable"]);
    assert!(d.retriable_status_codes.is_empty());
    assert_eq!((d.backoff_base, d.backoff_max), (Duration::from_millis(25), Duration::from_millis(250)));
    assert!(d.previous_hosts);
    assert_eq!(d.host_selection_attempts, 5);
    // attempts 0: no policy at all.
    assert!(retry("{attempts: 0}").is_none());
    // attempts alone keep the default conditions.
    let p = retry("{attempts: 4}").unwrap();
    assert_eq!((p.attempts, tokens(&p)), (4, tokens(&d)));
    // A retryOn list replaces them; bare codes become retriable status codes.
    let p = retry("{attempts: 3, retryOn: \"5xx,503,gateway-error,409\"}").unwrap();
    assert_eq!(tokens(&p), ["5xx", "gateway-error", "retriable-status-codes"]);
    assert_eq!(&*p.retriable_status_codes, [409, 503]);
    // Every token of the vocabulary.
    let all = "5xx,gateway-error,reset,reset-before-request,connect-failure,envoy-ratelimited,retriable-4xx,refused-stream,retriable-status-codes,retriable-headers,http3-post-connect-failure,cancelled,deadline-exceeded,internal,resource-exhausted,unavailable";
    let p = retry(&format!("{{attempts: 1, retryOn: \"{all}\"}}")).unwrap();
    assert_eq!(tokens(&p).join(","), all);
    // perTryTimeout, backoff (cap 10x), previous hosts off.
    let p = retry("{attempts: 2, perTryTimeout: 1.5s, backoff: 100ms, retryIgnorePreviousHosts: false}").unwrap();
    assert_eq!(p.per_try_timeout, Some(Duration::from_millis(1500)));
    assert_eq!((p.backoff_base, p.backoff_max), (Duration::from_millis(100), Duration::from_secs(1)));
    assert!(!p.previous_hosts);
    assert!(p.retry_on.any(RetryOn::CONNECT_FAILURE));
}

fn cluster_policy(traffic_policy: &str) -> (ConnectionLimits, Option<OutlierPolicy>, Vec<String>) {
    let (t, notes) = compiled(&format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  trafficPolicy:
{traffic_policy}
"
    ));
    let c = t.clusters.iter().find(|c| &*c.name == "outbound|80||svc.ns.svc.cluster.local").unwrap();
    ((*c.limits).clone(), c.outlier.as_deref().cloned(), notes)
}

#[test]
fn connection_pool_settings_map_to_limits() {
    let (l, _, _) =
        cluster_policy("    connectionPool: {tcp: {maxConnections: 0}, http: {http1MaxPendingRequests: 0}}");
    assert_eq!(l, ConnectionLimits::default(), "zero keeps the defaults");
    let (l, _, _) = cluster_policy(
        "    connectionPool:
      tcp:
        maxConnections: 7
        connectTimeout: 250ms
        idleTimeout: 30s
        maxConnectionDuration: 10m
        tcpKeepalive: {time: 60s, interval: 10s, probes: 3}
      http:
        http1MaxPendingRequests: 5
        http2MaxRequests: 9
        maxRequestsPerConnection: 2
        maxRetries: 4
        maxConcurrentStreams: 16
        http2KeepAlive: {interval: 5s, timeout: 2s}",
    );
    assert_eq!((l.max_connections, l.max_pending_requests, l.max_requests, l.max_retries), (7, 5, 9, 4));
    assert_eq!((l.max_requests_per_connection, l.max_concurrent_streams), (2, 16));
    assert_eq!(l.connect_timeout, Duration::from_millis(250));
    assert_eq!(l.idle_timeout, Some(Duration::from_secs(30)), "tcp.idleTimeout when http sets none");
    assert_eq!(l.max_connection_duration, Some(Duration::from_secs(600)));
    let k = l.tcp_keepalive.unwrap();
    assert_eq!((k.time, k.interval, k.probes), (Some(Duration::from_secs(60)), Some(Duration::from_secs(10)), Some(3)));
    let h = l.http2_keepalive.unwrap();
    assert_eq!((h.interval, h.timeout), (Duration::from_secs(5), Duration::from_secs(2)));
    // http.idleTimeout wins.
    let (l, _, _) = cluster_policy("    connectionPool: {tcp: {idleTimeout: 30s}, http: {idleTimeout: 5s}}");
    assert_eq!(l.idle_timeout, Some(Duration::from_secs(5)));
    // A retry budget with its defaults.
    let (l, _, notes) = cluster_policy("    retryBudget: {}");
    let b = l.retry_budget.unwrap();
    assert_eq!((b.percent, b.min_concurrency), (20.0, 3));
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn outlier_detection_over_envoys_defaults() {
    let (_, o, _) = cluster_policy("    outlierDetection: {}");
    let o = o.expect("an empty block installs the detector");
    assert_eq!(o.consecutive_5xx, Some(5));
    assert_eq!(o.consecutive_gateway_errors, None);
    assert_eq!((o.interval, o.base_ejection_time), (Duration::from_secs(10), Duration::from_secs(30)));
    assert_eq!((o.max_ejection_percent, o.min_health_percent), (10, 0));
    assert!(!o.split_local_origin && o.consecutive_local_origin_failures.is_none());
    let (_, o, _) = cluster_policy(
        "    outlierDetection:
      consecutive5xxErrors: 0
      consecutiveGatewayErrors: 3
      splitExternalLocalOriginErrors: true
      interval: 1s
      baseEjectionTime: 2m
      maxEjectionPercent: 50
      minHealthPercent: 30",
    );
    let o = o.unwrap();
    assert_eq!(o.consecutive_5xx, None, "explicit 0 disables");
    assert_eq!(o.consecutive_gateway_errors, Some(3));
    assert_eq!(o.consecutive_local_origin_failures, Some(5), "split: Envoy's default of 5");
    assert_eq!((o.interval, o.base_ejection_time), (Duration::from_secs(1), Duration::from_secs(120)));
    assert_eq!((o.max_ejection_percent, o.min_health_percent), (50, 30));
    let (_, none, _) = cluster_policy("    loadBalancer: {simple: RANDOM}");
    assert!(none.is_none(), "no block, no detector");
}

#[test]
fn destination_rule_settings_not_executed_stay_out_of_the_table_with_a_warning() {
    let (_, _, notes) = cluster_policy(
        "    tls: {mode: ISTIO_MUTUAL}
    loadBalancer:
      warmupDurationSecs: 30s
      localityLbSetting: {failover: [{from: us-east, to: us-west}]}",
    );
    let all = notes.join("\n");
    assert!(all.contains("tls mode ISTIO_MUTUAL") && all.contains("plaintext"), "{all}");
    assert!(all.contains("localityLbSetting"), "{all}");
    assert!(all.contains("warm-up"), "{all}");
}

/// The route of `svc` with the given extra fields.
fn forward_of(fields: &str) -> weir_table::Forward {
    let (t, _) = compiled(&format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  subsets: [{{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - route: [{{destination: {{host: svc}}}}]
{fields}"
    ));
    let vh = t.mesh().unwrap().virtual_host("svc").unwrap();
    match &*vh.routes[0].action {
        Action::Forward(f) => f.clone(),
        _ => panic!("not a forward"),
    }
}

#[test]
fn faults_as_istio_translates_them() {
    use weir_table::{AbortStatus, Share};
    let f = forward_of("    fault: {delay: {fixedDelay: 5s, percentage: {value: 10}}, abort: {httpStatus: 503, percentage: {value: 5}}}
");
    let fault = f.fault.unwrap();
    let d = fault.delay.unwrap();
    assert_eq!((d.duration, d.share), (Duration::from_secs(5), Share::percent(10.0)));
    let a = fault.abort.unwrap();
    assert_eq!((a.status, a.share), (AbortStatus::Http(503), Share::percent(5.0)));
    // The deprecated integer percent; an abort without a share aborts nothing.
    let f = forward_of(
        "    fault: {delay: {fixedDelay: 1s, percent: 30}, abort: {grpcStatus: UNAVAILABLE}}
",
    );
    let fault = f.fault.unwrap();
    assert_eq!(fault.delay.unwrap().share, Share::percent(30.0));
    let a = fault.abort.unwrap();
    assert_eq!((a.status, a.share.is_none()), (AbortStatus::Grpc(14), true));
    // Neither percentage nor percent: no delay at all.
    let f = forward_of(
        "    fault: {delay: {fixedDelay: 1s}}
",
    );
    assert!(f.fault.unwrap().delay.unwrap().share.is_none());
}

#[test]
fn mirrors_as_istio_translates_them() {
    use weir_table::Share;
    let f = forward_of(
        "    mirror: {host: svc, subset: v2}
",
    );
    assert_eq!(f.mirrors.len(), 1);
    assert_eq!((&*f.mirrors[0].name, f.mirrors[0].share), ("outbound|80|v2|svc.ns.svc.cluster.local", Share::ALL));
    let f = forward_of(
        "    mirror: {host: svc}
    mirrorPercentage: {value: 12.5}
",
    );
    assert_eq!(f.mirrors[0].share, Share::percent(12.5));
    let f = forward_of(
        "    mirror: {host: svc}
    mirrorPercentage: {value: 0}
",
    );
    assert!(f.mirrors.is_empty(), "0% mirrors nothing");
    let f = forward_of(
        "    mirrors:
    - {destination: {host: svc, subset: v2}, percentage: {value: 50}}
    - {destination: {host: svc}}
",
    );
    let shares: Vec<_> = f.mirrors.iter().map(|m| (m.name.to_string(), m.share)).collect();
    assert_eq!(
        shares,
        [
            ("outbound|80|v2|svc.ns.svc.cluster.local".to_string(), Share::percent(50.0)),
            ("outbound|80||svc.ns.svc.cluster.local".to_string(), Share::ALL)
        ]
    );
}
