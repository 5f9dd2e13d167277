//! `explain` and the proxy agree: for many generated requests, the destination the
//! trace names (from `weir_table::explain` on the table the proxy serves) is the
//! backend that answers the same request sent through the proxy.

mod common;

use common::{Harness, service};
use weir_table::RequestView;
use weir_testkit::{Backend, http1_client};

#[tokio::test]
async fn explain_names_the_backend_that_answers() {
    let backends = [
        Backend::start("svc", "v1").await,
        Backend::start("svc", "v2").await,
        Backend::start("svc", "v3").await,
        Backend::start("svc", "v4").await,
    ];
    let refs: Vec<&Backend> = backends.iter().collect();
    let yaml = format!(
        "{}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc, namespace: ns}}
spec:
  host: svc
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}, {{name: v3, labels: {{version: v3}}}}, {{name: v4, labels: {{version: v4}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc, namespace: ns}}
spec:
  hosts: [svc]
  http:
  - name: beta-users
    match: [{{headers: {{x-user: {{prefix: beta-}}}}, uri: {{prefix: /api}}}}]
    route: [{{destination: {{host: svc, subset: v2}}}}]
  - name: posts
    match: [{{method: {{exact: POST}}}}, {{queryParams: {{debug: {{exact: \"1\"}}}}}}]
    route: [{{destination: {{host: svc, subset: v3}}}}]
  - name: static
    match: [{{uri: {{regex: \"/static/.*[.](css|js)\"}}}}]
    route: [{{destination: {{host: svc, subset: v4}}}}]
  - name: rest
    route: [{{destination: {{host: svc, subset: v1}}}}]
",
        service("svc", "ns", "HTTP", &refs)
    );
    let h = Harness::start(&yaml, Some("ns")).await;
    let table = h.proxy.table();
    let listener = table.mesh().unwrap();
    let paths = ["/", "/api", "/api/v1/items", "/apix", "/static/a.css", "/static/a.png", "/static/x/y.js", "/API"];
    let users = [None, Some("beta-1"), Some("alpha"), Some("beta")];
    let methods = [http::Method::GET, http::Method::POST];
    let queries = [None, Some("debug=1"), Some("debug=0")];
    let c = http1_client();
    let mut n = 0;
    for path in paths {
        for user in users {
            for method in &methods {
                for query in queries {
                    let mut headers = http::HeaderMap::new();
                    if let Some(u) = user {
                        headers.insert("x-user", u.parse().unwrap());
                    }
                    let pq = match query {
                        Some(q) => format!("{path}?{q}"),
                        None => path.to_string(),
                    };
                    let view = RequestView {
                        method,
                        scheme: "http",
                        authority: "svc",
                        path,
                        path_and_query: &pq,
                        query,
                        headers: &headers,
                        port: 0,
                    };
                    let trace = weir_table::explain::explain(&table, listener, &view);
                    let predicted = trace.destinations.first().map(|d| d.subset.clone()).expect("every request routes");
                    let extra: Vec<(&str, &str)> = user.iter().map(|u| ("x-user", *u)).collect();
                    let r =
                        weir_testkit::request(&c, method.clone(), &h.mesh_url(&pq), "svc", &extra, bytes::Bytes::new())
                            .await;
                    assert_eq!(r.backend_version(), Some(predicted.as_str()), "{method} {pq} user {user:?}: {trace:?}");
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 192);
    // Every route was reached by some request (the generated set covers the table).
    for b in &backends {
        assert!(b.hits() > 0, "{} never answered", b.version());
    }
}
