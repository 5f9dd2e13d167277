//! Istio routing semantics through a real proxy: match kinds and order, weighted
//! splits, rewrites, redirects, direct responses, header edits, CORS, delegation, and
//! the mesh listener's host forms.

mod common;

use common::{GATEWAY, Harness, service};
use weir_testkit::{Backend, HttpClient, http1_client, http2_client};

const MATCHES: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: matches, namespace: ns}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - match: [{uri: {exact: /exact}}]
    directResponse: {status: 201}
  - match: [{uri: {prefix: /pre}}]
    directResponse: {status: 202}
  - match: [{uri: {regex: '/re/[0-9]+'}}]
    directResponse: {status: 203}
  - match: [{uri: {exact: /CaSe}, ignoreUriCase: true}]
    directResponse: {status: 204}
  - match: [{method: {exact: DELETE}}]
    directResponse: {status: 205}
  - match: [{headers: {x-user: {exact: jason}}}]
    directResponse: {status: 206}
  - match: [{headers: {x-user: {prefix: ad}}}]
    directResponse: {status: 207}
  - match: [{headers: {x-user: {regex: 'b[0-9]+'}}}]
    directResponse: {status: 208}
  - match: [{headers: {x-present: {}}}]
    directResponse: {status: 209}
  - match: [{queryParams: {debug: {exact: ''}}}]
    directResponse: {status: 210}
  - match: [{queryParams: {id: {regex: '\\d+'}}}]
    directResponse: {status: 211}
  - match: [{authority: {prefix: api.}}]
    directResponse: {status: 212}
  - match: [{withoutHeaders: {x-keep: {}}, uri: {prefix: /without}}]
    directResponse: {status: 213}
  - match:
    - {uri: {prefix: /or-a}}
    - {uri: {prefix: /or-b}}
    directResponse: {status: 214}
  - match: [{uri: {prefix: /and}, headers: {x-and: {exact: '1'}}}]
    directResponse: {status: 215}
  - match: [{headers: {':method': {exact: PATCH}}}]
    directResponse: {status: 216}
  - directResponse: {status: 299, body: {string: fallthrough}}
";

async fn status(c: &HttpClient, url: &str, host: &str, headers: &[(&str, &str)]) -> u16 {
    c.get(url, host, headers).await.status.as_u16()
}

#[tokio::test]
async fn every_match_kind_and_first_match_wins_over_http1_and_http2() {
    let h = Harness::start(&format!("{GATEWAY}{MATCHES}"), None).await;
    for c in [http1_client(), http2_client()] {
        let u = |p: &str| h.gw_url(8080, p);
        assert_eq!(status(&c, &u("/exact"), "a.com", &[]).await, 201);
        assert_eq!(status(&c, &u("/exact/no"), "a.com", &[]).await, 299);
        assert_eq!(status(&c, &u("/prefix-anything"), "a.com", &[]).await, 202);
        assert_eq!(status(&c, &u("/re/123"), "a.com", &[]).await, 203);
        assert_eq!(status(&c, &u("/re/12a"), "a.com", &[]).await, 299);
        assert_eq!(status(&c, &u("/case"), "a.com", &[]).await, 204);
        let del = c.request(http::Method::DELETE, &u("/x"), "a.com", &[], "").await;
        assert_eq!(del.status.as_u16(), 205);
        assert_eq!(status(&c, &u("/x"), "a.com", &[("x-user", "jason")]).await, 206);
        assert_eq!(status(&c, &u("/x"), "a.com", &[("x-user", "admin")]).await, 207);
        assert_eq!(status(&c, &u("/x"), "a.com", &[("x-user", "b42")]).await, 208);
        assert_eq!(status(&c, &u("/x"), "a.com", &[("x-user", "b42x")]).await, 299);
        assert_eq!(status(&c, &u("/x"), "a.com", &[("x-present", "")]).await, 209);
        assert_eq!(status(&c, &u("/x?debug"), "a.com", &[]).await, 210);
        assert_eq!(status(&c, &u("/x?id=123"), "a.com", &[]).await, 211);
        assert_eq!(status(&c, &u("/x?id=a123"), "a.com", &[]).await, 299);
        assert_eq!(status(&c, &u("/x"), "api.a.com", &[]).await, 212);
        assert_eq!(status(&c, &u("/without"), "a.com", &[]).await, 213);
        assert_eq!(status(&c, &u("/without"), "a.com", &[("x-keep", "1")]).await, 299);
        assert_eq!(status(&c, &u("/or-b"), "a.com", &[]).await, 214);
        assert_eq!(status(&c, &u("/and"), "a.com", &[("x-and", "1")]).await, 215);
        assert_eq!(status(&c, &u("/and"), "a.com", &[]).await, 299);
        let patch = c.request(http::Method::PATCH, &u("/x"), "a.com", &[], "").await;
        assert_eq!(patch.status.as_u16(), 216);
        let fall = c.get(&u("/nothing"), "a.com", &[]).await;
        assert_eq!(fall.text(), "fallthrough");
    }
}

/// Paths are normalized before routing, as Istio's default has Envoy do it: dot
/// segments and encoded unreserved characters cannot route around `/admin`, and the
/// upstream sees the normalized path (the query untouched).
#[tokio::test]
async fn paths_are_normalized_before_routing() {
    let (public, admin) = (Backend::start("svc", "public").await, Backend::start("svc", "admin").await);
    let yaml = format!(
        "{}{}",
        service("svc", "ns", "HTTP", &[&public, &admin]),
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: ns}
spec:
  host: svc
  subsets: [{name: public, labels: {version: public}}, {name: admin, labels: {version: admin}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {exact: /admin}}]
    route: [{destination: {host: svc, subset: admin}}]
  - route: [{destination: {host: svc, subset: public}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    for c in [http1_client(), http2_client()] {
        for (path, upstream) in [
            ("/public/../admin", "/admin"),
            ("/./admin", "/admin"),
            ("/%61dmin?x=%2e%2e", "/admin?x=%2e%2e"),
            ("/a/%2E%2E/admin", "/admin"),
        ] {
            let r = c.get(&h.mesh_url(path), "svc", &[]).await;
            assert_eq!(r.backend_version(), Some("admin"), "{path}");
            assert_eq!(r.json()["path"], upstream, "{path}");
        }
        let r = c.get(&h.mesh_url("/admin/../public/./x"), "svc", &[]).await;
        assert_eq!((r.backend_version(), r.json()["path"].as_str()), (Some("public"), Some("/public/x")));
    }
}

#[tokio::test]
async fn weighted_split_follows_relative_weights() {
    let (v1, v2) = (Backend::start("svc", "v1").await, Backend::start("svc", "v2").await);
    let yaml = format!(
        "{}{}",
        service("svc", "ns", "HTTP", &[&v1, &v2]),
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: ns}
spec:
  host: svc
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - route:
    - {destination: {host: svc, subset: v1}, weight: 3}
    - {destination: {host: svc, subset: v2}, weight: 1}
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let n = 2000;
    let mut v2_count = 0;
    for _ in 0..n {
        let r = c.get(&h.mesh_url("/"), "svc", &[]).await;
        assert_eq!(r.status, 200);
        if r.backend_version() == Some("v2") {
            v2_count += 1;
        }
    }
    // Expected 500 (weight 1 of 4); sigma is about 19: six sigma of slack.
    assert!((385..=615).contains(&v2_count), "v2 got {v2_count} of {n}");
    assert_eq!(v1.hits() + v2.hits(), n);
}

#[tokio::test]
async fn rewrites_change_path_and_authority_and_keep_the_original_path() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!(
        "{}{}",
        service("svc", "ns", "HTTP", &[&b]),
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {prefix: /api/v1}}]
    rewrite: {uri: /v2}
    route: [{destination: {host: svc}}]
  - match: [{uri: {exact: /old}}]
    rewrite: {uri: /new, authority: new.example.com}
    route: [{destination: {host: svc}}]
  - match: [{uri: {prefix: /rx}}]
    rewrite: {uriRegexRewrite: {match: '^/rx/([^/]+)/(.*)$', rewrite: '/\\2/\\1'}}
    route: [{destination: {host: svc}}]
  - route: [{destination: {host: svc}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    for c in [http1_client(), http2_client()] {
        let j = c.get(&h.mesh_url("/api/v1/users?x=1"), "svc", &[]).await.json();
        assert_eq!(j["path"], "/v2/users?x=1");
        assert_eq!(j["headers"]["x-envoy-original-path"], "/api/v1/users?x=1");
        let j = c.get(&h.mesh_url("/old"), "svc", &[]).await.json();
        assert_eq!(j["path"], "/new");
        assert_eq!(j["authority"], "new.example.com");
        let j = c.get(&h.mesh_url("/rx/a/b/c"), "svc", &[]).await.json();
        assert_eq!(j["path"], "/b/c/a");
        let j = c.get(&h.mesh_url("/plain"), "svc", &[]).await.json();
        assert_eq!(j["path"], "/plain");
        assert!(j["headers"].get("x-envoy-original-path").is_none());
    }
}

#[tokio::test]
async fn redirects_in_every_form() {
    let yaml = format!(
        "{GATEWAY}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: r, namespace: ns}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - match: [{{uri: {{prefix: /uri}}}}]
    redirect: {{uri: /elsewhere}}
  - match: [{{uri: {{prefix: /host}}}}]
    redirect: {{authority: other.example.com, redirectCode: 302}}
  - match: [{{uri: {{prefix: /https}}}}]
    redirect: {{scheme: https, redirectCode: 308}}
  - match: [{{uri: {{prefix: /port}}}}]
    redirect: {{port: 9443}}
  - match: [{{uri: {{prefix: /default-port}}}}]
    redirect: {{scheme: https, derivePort: FROM_PROTOCOL_DEFAULT}}
  - match: [{{uri: {{prefix: /request-port}}}}]
    redirect: {{authority: x.example.com, derivePort: FROM_REQUEST_PORT}}
  - match: [{{uri: {{prefix: /pfx}}}}]
    redirect: {{prefixRewrite: /moved}}
"
    );
    let h = Harness::start(&yaml, None).await;
    let c = http1_client();
    let loc = |r: &weir_testkit::TestResponse| r.header("location").unwrap_or("").to_string();
    let r = c.get(&h.gw_url(8080, "/uri?q=1"), "a.com", &[]).await;
    assert_eq!((r.status.as_u16(), loc(&r)), (301, "http://a.com/elsewhere?q=1".into()));
    let r = c.get(&h.gw_url(8080, "/host/x"), "a.com:8080", &[]).await;
    assert_eq!((r.status.as_u16(), loc(&r)), (302, "http://other.example.com/host/x".into()));
    let r = c.get(&h.gw_url(8080, "/https"), "a.com", &[]).await;
    assert_eq!((r.status.as_u16(), loc(&r)), (308, "https://a.com/https".into()));
    let r = c.get(&h.gw_url(8080, "/port"), "a.com", &[]).await;
    assert_eq!(loc(&r), "http://a.com:9443/port");
    let r = c.get(&h.gw_url(8080, "/default-port"), "a.com:8080", &[]).await;
    assert_eq!(loc(&r), "https://a.com/default-port");
    let r = c.get(&h.gw_url(8080, "/request-port"), "a.com", &[]).await;
    assert_eq!(loc(&r), "http://x.example.com:8080/request-port");
    let r = c.get(&h.gw_url(8080, "/pfx/a/b"), "a.com", &[]).await;
    assert_eq!(loc(&r), "http://a.com/moved/a/b");
}

#[tokio::test]
async fn header_operations_at_route_and_destination_level() {
    let b =
        Backend::builder("svc", "v1").header("x-upstream-secret", "s").header("x-from-backend", "yes").start().await;
    let yaml = format!(
        "{}{}",
        service("svc", "ns", "HTTP", &[&b]),
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - name: main
    headers:
      request:
        set: {x-route-set: route, x-overwritten: route, x-vars: '%ROUTE_NAME% %UPSTREAM_CLUSTER%'}
        add: {x-route-add: added}
        remove: [x-drop-me]
      response:
        set: {x-resp-set: r, x-code: '%RESPONSE_CODE%', x-echo: 'backend said %RESP(x-from-backend)%'}
        add: {x-resp-add: a}
        remove: [x-upstream-secret]
    route:
    - destination: {host: svc}
      headers:
        request:
          set: {x-overwritten: destination, x-client: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%'}
        response:
          set: {x-dest: d}
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/"), "svc", &[("x-drop-me", "1"), ("x-route-add", "original")]).await;
    let j = r.json();
    assert_eq!(j["headers"]["x-route-set"], "route");
    assert_eq!(j["headers"]["x-overwritten"], "destination");
    assert_eq!(j["headers"]["x-route-add"], "original,added");
    assert!(j["headers"].get("x-drop-me").is_none());
    assert_eq!(j["headers"]["x-client"], "127.0.0.1");
    assert_eq!(j["headers"]["x-vars"], "main outbound|80||svc.ns.svc.cluster.local");
    assert_eq!(r.header("x-code"), Some("200"));
    assert_eq!(r.header("x-echo"), Some("backend said yes"));
    assert_eq!(r.header("x-resp-set"), Some("r"));
    assert_eq!(r.header("x-resp-add"), Some("a"));
    assert_eq!(r.header("x-dest"), Some("d"));
    assert_eq!(r.header("x-from-backend"), Some("yes"));
    assert!(r.header("x-upstream-secret").is_none());
}

/// Route and destination response edits also apply to replies the proxy makes itself
/// on a matched route: a direct response (the usual way to give it a content type), a
/// redirect, and a 503 when the destination has no endpoint (Envoy's router applies
/// them to its local replies).
#[tokio::test]
async fn response_header_edits_apply_to_local_replies() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: empty, namespace: ns}
spec:
  hosts: [empty.ns.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {exact: /json}}]
    directResponse: {status: 200, body: {string: '{\"a\":1}'}}
    headers:
      response:
        set: {content-type: application/json, x-direct: '1'}
  - match: [{uri: {exact: /moved}}]
    redirect: {uri: /new}
    headers:
      response:
        set: {x-redirect: '1'}
  - route:
    - destination: {host: empty}
      headers:
        response:
          add: {x-dest: d}
    headers:
      response:
        set: {x-route: r}
";
    let h = Harness::start(yaml, Some("ns")).await;
    let c = http1_client();
    let r = c.get(&h.mesh_url("/json"), "svc", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.header("content-type"), r.header("x-direct")),
        (200, Some("application/json"), Some("1"))
    );
    assert_eq!(r.text(), "{\"a\":1}");
    let r = c.get(&h.mesh_url("/moved"), "svc", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.header("location"), r.header("x-redirect")),
        (301, Some("http://svc/new"), Some("1"))
    );
    let r = c.get(&h.mesh_url("/"), "svc", &[]).await;
    assert_eq!((r.status.as_u16(), r.header("x-route"), r.header("x-dest")), (503, Some("r"), Some("d")));
    assert_eq!(r.text(), "no healthy upstream");
}

#[tokio::test]
async fn cors_preflight_and_actual_requests() {
    let b = Backend::start("svc", "v1").await;
    let yaml = format!(
        "{}{}",
        service("svc", "ns", "HTTP", &[&b]),
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: ns}
spec:
  hosts: [svc]
  http:
  - corsPolicy:
      allowOrigins: [{exact: 'https://good.example'}, {regex: 'https://.*\\.trusted\\.example'}]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom]
      exposeHeaders: [x-exposed]
      maxAge: 24h
      allowCredentials: true
    route: [{destination: {host: svc}}]
"
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let c = http1_client();
    let pre = c
        .request(
            http::Method::OPTIONS,
            &h.mesh_url("/"),
            "svc",
            &[("origin", "https://a.trusted.example"), ("access-control-request-method", "POST")],
            "",
        )
        .await;
    assert_eq!(pre.status, 200);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://a.trusted.example"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(pre.header("access-control-allow-headers"), Some("x-custom"));
    assert_eq!(pre.header("access-control-max-age"), Some("86400"));
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(b.hits(), 0, "an allowed preflight is answered by the proxy");

    let bad = c
        .request(
            http::Method::OPTIONS,
            &h.mesh_url("/"),
            "svc",
            &[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
            "",
        )
        .await;
    assert!(bad.header("access-control-allow-origin").is_none());
    assert_eq!(b.hits(), 1, "a preflight from an origin not allowed is forwarded");

    let actual = c.get(&h.mesh_url("/"), "svc", &[("origin", "https://good.example")]).await;
    assert_eq!(actual.header("access-control-allow-origin"), Some("https://good.example"));
    assert_eq!(actual.header("access-control-expose-headers"), Some("x-exposed"));
    let other = c.get(&h.mesh_url("/"), "svc", &[("origin", "https://evil.example")]).await;
    assert!(other.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn mesh_host_forms_default_routes_and_unknown_hosts() {
    let b = Backend::start("reviews", "v1").await;
    let p = Backend::start("ratings", "v1").await;
    let yaml = format!(
        "{}{}{}",
        service("reviews", "bookinfo", "HTTP", &[&b]),
        service("ratings", "bookinfo", "HTTP", &[&p]),
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match: [{port: 80, uri: {prefix: /port80}}]
    directResponse: {status: 280}
  - route: [{destination: {host: reviews}}]
"
    );
    let h = Harness::start(&yaml, Some("bookinfo")).await;
    let c = http1_client();
    for host in
        ["reviews", "reviews:80", "reviews.bookinfo", "reviews.bookinfo.svc", "reviews.bookinfo.svc.cluster.local:80"]
    {
        let r = c.get(&h.mesh_url("/"), host, &[]).await;
        assert_eq!(r.backend(), Some("reviews"), "{host}");
    }
    assert_eq!(c.get(&h.mesh_url("/port80"), "reviews", &[]).await.status, 280);
    // No VirtualService for ratings: the default route.
    assert_eq!(c.get(&h.mesh_url("/x"), "ratings.bookinfo", &[]).await.backend(), Some("ratings"));
    // A host outside the registry: blocked under REGISTRY_ONLY (ALLOW_ANY, the
    // default, would send it to the name it gives).
    h.reload(&format!("{yaml}{}", common::registry_only("bookinfo")));
    let r = c.get(&h.mesh_url("/"), "unknown.example", &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.header("server"), Some("envoy"));
}

#[tokio::test]
async fn gateway_unknown_host_and_no_route_are_404() {
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs, namespace: ns}}
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http:
  - match: [{{uri: {{prefix: /only}}}}]
    directResponse: {{status: 200}}
",
        GATEWAY
    );
    let h = Harness::start(&yaml, None).await;
    let c = http1_client();
    assert_eq!(c.get(&h.gw_url(8080, "/only"), "shop.example.com", &[]).await.status, 200);
    assert_eq!(c.get(&h.gw_url(8080, "/other"), "shop.example.com", &[]).await.status, 404);
    let r = c.get(&h.gw_url(8080, "/only"), "elsewhere.example.com", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("server"), Some("istio-envoy"));
}

#[tokio::test]
async fn delegates_serve_their_routes_under_the_root() {
    let b = Backend::start("api", "v1").await;
    let yaml = format!(
        "{}{GATEWAY}{}",
        service("api", "ns", "HTTP", &[&b]),
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: ns}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /api}}]
    delegate: {name: api}
  - directResponse: {status: 404}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: ns}
spec:
  http:
  - match: [{uri: {prefix: /api/v1}}]
    route: [{destination: {host: api}}]
"
    );
    let h = Harness::start(&yaml, None).await;
    let c = http1_client();
    assert_eq!(c.get(&h.gw_url(8080, "/api/v1/x"), "a", &[]).await.backend(), Some("api"));
    assert_eq!(c.get(&h.gw_url(8080, "/api/v2/x"), "a", &[]).await.status, 404);
}

#[tokio::test]
async fn https_redirect_on_a_gateway_server() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ['*']
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: ns}
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http:
  - directResponse: {status: 200}
";
    let h = Harness::start(yaml, None).await;
    let r = http1_client().get(&h.gw_url(8080, "/cart?id=1"), "shop.example.com", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://shop.example.com/cart?id=1"));
    // The Host is kept as sent, port included, as Envoy's TLS redirect does.
    let r = http1_client().get(&h.gw_url(8080, "/cart"), "shop.example.com:8080", &[]).await;
    assert_eq!(r.header("location"), Some("https://shop.example.com:8080/cart"));
}
