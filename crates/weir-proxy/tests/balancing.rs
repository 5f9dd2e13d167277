//! Each load balancer through a real proxy and real backends.

mod common;

use std::collections::HashMap;

use common::{Harness, service};
use weir_testkit::{Backend, TestResponse, http1_client};

async fn backends(n: usize) -> Vec<Backend> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(Backend::start("svc", &format!("v{i}")).await);
    }
    v
}

fn config(bs: &[Backend], lb: &str) -> String {
    let refs: Vec<&Backend> = bs.iter().collect();
    format!(
        "{}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  trafficPolicy:
    loadBalancer:
{lb}
",
        service("svc", "ns", "HTTP", &refs)
    )
}

fn version(r: &TestResponse) -> String {
    r.backend_version().unwrap_or("?").to_string()
}

#[tokio::test]
async fn round_robin_visits_every_endpoint_in_turn() {
    let bs = backends(3).await;
    let h = Harness::start(&config(&bs, "      simple: ROUND_ROBIN"), Some("ns")).await;
    let c = http1_client();
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(version(&c.get(&h.mesh_url("/"), "svc", &[]).await));
    }
    // Every window of three consecutive requests covers the three endpoints.
    for w in seen.chunks(3) {
        let mut w = w.to_vec();
        w.sort();
        assert_eq!(w, ["v0", "v1", "v2"], "{seen:?}");
    }
}

#[tokio::test]
async fn random_reaches_every_endpoint() {
    let bs = backends(3).await;
    let h = Harness::start(&config(&bs, "      simple: RANDOM"), Some("ns")).await;
    let c = http1_client();
    for _ in 0..300 {
        c.get(&h.mesh_url("/"), "svc", &[]).await;
    }
    // Expected 100 each; 100 +- 6 sigma (~49).
    for b in &bs {
        assert!((45..=155).contains(&b.hits()), "{} got {}", b.version(), b.hits());
    }
}

#[tokio::test]
async fn least_request_avoids_a_busy_endpoint() {
    let bs = backends(2).await;
    let h = Harness::start(&config(&bs, "      simple: LEAST_REQUEST"), Some("ns")).await;
    // Occupy v0 with a long gated stream, then send sequential requests: each compares
    // both endpoints (P2C over two) and picks the idle one.
    let c = http1_client();
    let mut held = None;
    for _ in 0..20 {
        let req = weir_testkit::build_request(
            http::Method::GET,
            &h.mesh_url("/stream?chunks=1&size=1&gated=1"),
            "svc",
            &[],
            weir_testkit::full_body(""),
        );
        let resp = c.send(req).await.unwrap();
        if resp.headers().get("x-backend-version").unwrap() == "v0" {
            held = Some(resp);
            break;
        }
        let b = resp.headers().get("x-backend-version").unwrap().to_str().unwrap().to_string();
        bs.iter().find(|x| x.version() == b).unwrap().release_chunks(1);
    }
    let held = held.expect("v0 was picked at least once in 20 tries");
    // Earlier streams to v1 were released and dropped: wait until the proxy counts v1
    // idle and v0 busy, so the comparison below is deterministic.
    let v1_idle = format!("127.0.0.1:{}::rq_active::0", bs[1].port());
    let v0_busy = format!("127.0.0.1:{}::rq_active::1", bs[0].port());
    let admin = h.admin_url("/clusters");
    weir_testkit::wait_for_async(
        || {
            let (admin, v1_idle, v0_busy) = (admin.clone(), v1_idle.clone(), v0_busy.clone());
            async move {
                let t = http1_client().get(&admin, "", &[]).await.text();
                t.contains(&v1_idle) && t.contains(&v0_busy)
            }
        },
        weir_testkit::TEST_TIMEOUT,
    )
    .await;
    let other = http1_client();
    for _ in 0..20 {
        assert_eq!(version(&other.get(&h.mesh_url("/"), "svc", &[]).await), "v1");
    }
    bs[0].release_chunks(1);
    drop(held);
}

#[tokio::test]
async fn consistent_hash_by_header_is_sticky_and_spreads() {
    for algo in ["", "\n        maglev: {tableSize: 65537}", "\n        ringHash: {minimumRingSize: 2048}"] {
        let bs = backends(4).await;
        let lb = format!("      consistentHash:\n        httpHeaderName: x-user{algo}");
        let h = Harness::start(&config(&bs, &lb), Some("ns")).await;
        let c = http1_client();
        let mut owner: HashMap<String, String> = HashMap::new();
        for round in 0..3 {
            for u in 0..40 {
                let user = format!("user-{u}");
                let v = version(&c.get(&h.mesh_url("/"), "svc", &[("x-user", &user)]).await);
                match owner.get(&user) {
                    Some(prev) => assert_eq!(prev, &v, "{algo}: round {round}: {user} moved"),
                    None => {
                        owner.insert(user, v);
                    }
                }
            }
        }
        let distinct: std::collections::HashSet<&String> = owner.values().collect();
        assert!(distinct.len() >= 3, "{algo}: 40 keys landed on {distinct:?}");
    }
}

#[tokio::test]
async fn consistent_hash_by_query_parameter_and_source_ip() {
    let bs = backends(4).await;
    let h = Harness::start(&config(&bs, "      consistentHash: {httpQueryParameterName: id}"), Some("ns")).await;
    let c = http1_client();
    for id in 0..10 {
        let first = version(&c.get(&h.mesh_url(&format!("/?id={id}")), "svc", &[]).await);
        for _ in 0..3 {
            assert_eq!(version(&c.get(&h.mesh_url(&format!("/?id={id}&x=1")), "svc", &[]).await), first);
        }
    }
    let bs = backends(4).await;
    let h = Harness::start(&config(&bs, "      consistentHash: {useSourceIp: true}"), Some("ns")).await;
    let first = version(&http1_client().get(&h.mesh_url("/"), "svc", &[]).await);
    for _ in 0..10 {
        // New clients (new source ports), same source IP: same endpoint.
        let c = weir_testkit::HttpClient::without_reuse(weir_testkit::Protocol::Http1);
        assert_eq!(version(&c.get(&h.mesh_url("/"), "svc", &[]).await), first);
    }
}

#[tokio::test]
async fn consistent_hash_by_cookie_generates_the_cookie_with_ttl() {
    let bs = backends(4).await;
    let lb = "      consistentHash:\n        httpCookie:\n          name: affinity\n          path: /\n          ttl: 60s\n          attributes: [{name: SameSite, value: Strict}, {name: Secure}]";
    let h = Harness::start(&config(&bs, lb), Some("ns")).await;
    let c = http1_client();
    let first = c.get(&h.mesh_url("/"), "svc", &[]).await;
    let set = first.header("set-cookie").expect("a generated cookie").to_string();
    // Envoy's layout: value quoted, Max-Age, Path, the attributes in order, HttpOnly.
    let (cookie, attrs) = set.split_once(';').unwrap();
    assert!(cookie.starts_with("affinity=\"") && cookie.ends_with('"') && cookie.len() == "affinity=\"\"".len() + 16);
    assert_eq!(attrs, " Max-Age=60; Path=/; SameSite=Strict; Secure; HttpOnly", "{set}");
    let value = set.split(';').next().unwrap().to_string();
    let owner = version(&first);
    for _ in 0..10 {
        let r = c.get(&h.mesh_url("/"), "svc", &[("cookie", &value)]).await;
        assert!(r.header("set-cookie").is_none(), "no new cookie when the client sends one");
        assert_eq!(version(&r), owner);
    }
}

#[tokio::test]
async fn endpoint_weights_shape_round_robin() {
    let (a, b) = (Backend::start("svc", "heavy").await, Backend::start("svc", "light").await);
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {}}}, weight: 3}}
  - {{address: 127.0.0.1, ports: {{http: {}}}, weight: 1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}
",
        a.port(),
        b.port()
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    for _ in 0..400 {
        c.get(&h.mesh_url("/"), "svc", &[]).await;
    }
    assert_eq!((a.hits(), b.hits()), (300, 100));
}

#[tokio::test]
async fn passthrough_sends_to_the_address_the_caller_named() {
    // With PASSTHROUGH the endpoints are ignored: the request goes to the host and port
    // the caller asked for (here `localhost:<port>`, resolved when connecting).
    let b = Backend::start("direct", "v1").await;
    let decoy = Backend::start("decoy", "v1").await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: local, namespace: ns}}
spec:
  hosts: [localhost]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {decoy}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: local, namespace: ns}}
spec:
  # A short DestinationRule host would expand to localhost.ns.svc.cluster.local and
  # miss this ServiceEntry; `*` covers every host.
  host: '*'
  trafficPolicy: {{loadBalancer: {{simple: PASSTHROUGH}}}}
",
        port = b.port(),
        decoy = decoy.port()
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let r = http1_client().get(&h.mesh_url("/"), &format!("localhost:{}", b.port()), &[]).await;
    assert_eq!(r.backend(), Some("direct"));
    assert_eq!(decoy.hits(), 0);
}
