//! Analyzer rule table: for each check, a multi-document input that fires it and the
//! nearest input that does not, with the exact findings expected (`CODE Kind ns/name`),
//! as Istio's analyzer tests are written. Inputs mix Istio resources with the
//! Kubernetes Services, Pods, Namespaces and Secrets they refer to.

use weir_compile::analyze::{self, Inputs, Skipped};

/// Loads `yaml` (valid and invalid resources alike, as `weir analyze` does) plus
/// istioctl's offline defaults, and analyzes it.
fn analyze(yaml: &str) -> analyze::Analysis {
    let report = weir_model::load_str("case.yaml", yaml);
    let mut resources = report.resources;
    resources.extend(report.rejected);
    let mut core = report.core;
    core.extend(analyze::default_ingress());
    analyze::analyze(&Inputs { resources, core, dns_auto_allocate: false })
}

fn codes(yaml: &str) -> Vec<String> {
    let mut got: Vec<String> = analyze(yaml).findings.iter().map(|f| format!("{} {}", f.code, f.resource())).collect();
    got.sort();
    got
}

fn check(name: &str, yaml: &str, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(codes(yaml), want, "case {name}:\n{yaml}");
}

const REVIEWS_SERVICE: &str = "
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
";

fn vs_to(destination: &str) -> String {
    format!(
        "{REVIEWS_SERVICE}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: route, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {destination}
"
    )
}

#[test]
fn destination_hosts_ports_and_subsets() {
    check("known host, port and subset", &vs_to("{host: reviews, subset: v1, port: {number: 9080}}"), &[]);
    check("short, namespaced and FQDN hosts are one", &vs_to("{host: reviews.default.svc.cluster.local}"), &[]);
    check("unknown host", &vs_to("{host: ratings}"), &["IST0101 VirtualService default/route"]);
    check(
        "host in another namespace",
        &vs_to("{host: reviews.other.svc.cluster.local}"),
        &["IST0101 VirtualService default/route"],
    );
    check("unknown port", &vs_to("{host: reviews, port: {number: 9999}}"), &["IST0101 VirtualService default/route"]);
    check("unknown subset", &vs_to("{host: reviews, subset: v9}"), &["IST0101 VirtualService default/route"]);

    let two_ports =
        vs_to("{host: reviews}").replace("ports: [{name: http, port: 9080}]", "ports: [{port: 9080}, {port: 9443}]");
    check("several ports and none chosen", &two_ports, &["IST0112 VirtualService default/route"]);
    check(
        "several ports, one chosen",
        &two_ports.replace("{host: reviews}", "{host: reviews, port: {number: 9443}}"),
        &[],
    );

    let mirror = vs_to("{host: reviews}").replace(
        "    - destination: {host: reviews}\n",
        "    - destination: {host: reviews}\n    mirror: {host: shadow}\n",
    );
    check("unknown mirror host", &mirror, &["IST0101 VirtualService default/route"]);
    check("known mirror host", &mirror.replace("{host: shadow}", "{host: reviews}"), &[]);
}

#[test]
fn a_missing_subset_is_found_even_without_the_services_and_the_host_checks_say_they_were_skipped() {
    let yaml = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v9}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
";
    let a = analyze(yaml);
    let got: Vec<String> = a.findings.iter().map(|f| format!("{} {} {}", f.code, f.resource(), f.path)).collect();
    assert_eq!(got, ["IST0101 VirtualService default/reviews spec.http[0].route[0].destination.subset"]);
    assert!(a.findings[0].message.contains("\"reviews+v9\""), "{}", a.findings[0].message);
    assert_eq!(a.skipped, [Skipped::Registry]);
    check("defined subset", &yaml.replace("subset: v9", "subset: v1"), &[]);
}

const GATEWAY: &str = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.example.com]}]
";

#[test]
fn virtual_service_gateways() {
    let vs = |gateways: &str, hosts: &str| {
        format!(
            "{GATEWAY}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: {hosts}
  gateways: {gateways}
  http: [{{directResponse: {{status: 200}}}}]
"
        )
    };
    check("gateway and host match", &vs("[gw]", "[shop.example.com]"), &[]);
    check("namespaced reference", &vs("[default/gw]", "[\"*.example.com\"]"), &[]);
    check(
        "no such gateway",
        &vs("[nope]", "[shop.example.com]"),
        &["IST0101 VirtualService default/shop", "IST0132 VirtualService default/shop"],
    );
    check(
        "host the gateway does not serve",
        &vs("[gw]", "[other.example.org]"),
        &["IST0132 VirtualService default/shop"],
    );
    check(
        "internal gateway",
        &vs("[\"istio-system/gw~istio-autogenerated-k8s-gateway~http\"]", "[shop.example.com]"),
        &["IST0165 VirtualService default/shop"],
    );
}

#[test]
fn mesh_virtual_services_claiming_one_host() {
    let two = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec: {hosts: [reviews], http: [{directResponse: {status: 200}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec: {hosts: [reviews.default.svc.cluster.local], http: [{directResponse: {status: 200}}]}
";
    check("two mesh VirtualServices", two, &["IST0109 VirtualService default/a", "IST0109 VirtualService default/b"]);
    check(
        "one bound to a gateway",
        &format!("{GATEWAY}---{}", two.replace("spec: {hosts: [reviews],", "spec: {gateways: [gw], hosts: [reviews],")),
        &["IST0132 VirtualService default/a"],
    );
    check(
        "exported to different namespaces",
        &two.replace("spec: {hosts: [reviews],", "spec: {exportTo: [.], hosts: [reviews],")
            .replace("spec: {hosts: [reviews.default", "spec: {exportTo: [other], hosts: [reviews.default"),
        &[],
    );
}

#[test]
fn gateways_selectors_ports_and_conflicts() {
    check("selector matches the default ingress pod", GATEWAY, &[]);
    check(
        "selector matches no pod",
        &GATEWAY.replace("istio: ingressgateway", "istio: egress"),
        &["IST0101 Gateway default/gw"],
    );
    check(
        "port not on the gateway Service",
        &GATEWAY.replace("number: 80", "number: 8080"),
        &["IST0162 Gateway default/gw"],
    );
    let second = GATEWAY.replace("name: gw,", "name: gw2,");
    check(
        "two gateways, same port and host",
        &format!("{GATEWAY}---{second}"),
        &["IST0145 Gateway default/gw", "IST0145 Gateway default/gw2"],
    );
    check(
        "same port, other host",
        &format!("{GATEWAY}---{}", second.replace("shop.example.com", "admin.example.com")),
        &[],
    );
}

fn pem_cert() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["shop.example.com".into()]).unwrap().self_signed(&key).unwrap().pem()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn gateway_credentials_and_shared_certificates() {
    let gw = |name: &str, cred: &str| {
        format!(
            "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [{name}.example.com]
    tls: {{mode: SIMPLE, credentialName: {cred}}}
"
        )
    };
    let secret = |name: &str, cert: &str| {
        format!(
            "
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: istio-system}}
type: kubernetes.io/tls
data: {{tls.crt: {}, tls.key: {}}}
",
            b64(cert),
            b64("key")
        )
    };
    let good = secret("shop-cert", &pem_cert());
    check("secret beside the gateway pods", &format!("{}---{good}", gw("shop", "shop-cert")), &[]);
    check("no such secret", &format!("{}---{good}", gw("shop", "other-cert")), &["IST0101 Gateway default/shop"]);
    check(
        "secret without a certificate",
        &format!("{}---{}", gw("shop", "bad"), secret("bad", "not a certificate")),
        &["IST0161 Gateway default/shop"],
    );
    check(
        "two gateways share a credential",
        &format!("{}---{}---{good}", gw("shop", "shop-cert"), gw("admin", "shop-cert")),
        &["IST0138 Gateway default/admin", "IST0138 Gateway default/shop"],
    );
}

#[test]
fn destination_rules_tls_hosts_and_subsets() {
    let dr = |tls: &str| {
        format!(
            "{REVIEWS_SERVICE}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: tls, namespace: default}}
spec:
  host: reviews
  trafficPolicy:
    tls: {tls}
    portLevelSettings: [{{port: {{number: 9080}}, tls: {tls}}}]
"
        )
    };
    check(
        "SIMPLE without caCertificates",
        &dr("{mode: SIMPLE}"),
        &["IST0128 DestinationRule default/tls", "IST0129 DestinationRule default/tls"],
    );
    check("with caCertificates", &dr("{mode: SIMPLE, caCertificates: /etc/ca.pem}"), &[]);
    check("ISTIO_MUTUAL", &dr("{mode: ISTIO_MUTUAL}"), &[]);
    check(
        "unknown host",
        &format!(
            "{REVIEWS_SERVICE}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: x, namespace: default}}\nspec: {{host: ratings}}\n"
        ),
        &["IST0174 DestinationRule default/x"],
    );
    check(
        "subset selecting no pod",
        &REVIEWS_SERVICE
            .replace("labels: {version: v1}}]", "labels: {version: v1}}, {name: v2, labels: {version: v2}}]"),
        &["IST0173 DestinationRule default/reviews"],
    );
    // In file mode the registry is ServiceEntries: their endpoints are the workloads.
    let entry = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec: {host: ratings, subsets: [{name: v1, labels: {version: v1}}]}
";
    check("subset selecting a ServiceEntry endpoint", entry, &[]);
    check(
        "subset selecting none",
        &entry.replace("subsets: [{name: v1, labels: {version: v1}}]", "subsets: [{name: v3, labels: {version: v3}}]"),
        &["IST0173 DestinationRule default/ratings"],
    );
}

#[test]
fn service_entries_addresses_and_protocols() {
    let se = |name: &str, protocol: &str, extra: &str| {
        format!(
            "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [db.example.com]
  {extra}
  resolution: DNS
  ports: [{{number: 5432, name: db, protocol: {protocol}}}]
"
        )
    };
    check("TCP without addresses", &se("db", "TCP", ""), &["IST0134 ServiceEntry default/db"]);
    check("TCP with addresses", &se("db", "TCP", "addresses: [10.1.0.1]"), &[]);
    check("HTTP needs none", &se("db", "HTTP", ""), &[]);
    let allocated =
        format!("{}status: {{addresses: [{{host: db.example.com, value: 240.240.0.1}}]}}\n", se("db", "TCP", ""));
    check("addresses allocated by Istio (status)", &allocated, &[]);
    check(
        "conflicting protocols",
        &format!("{}---{}", se("a", "HTTP", ""), se("b", "HTTPS", "")),
        &["IST0177 ServiceEntry default/a", "IST0177 ServiceEntry default/b"],
    );
    check("same protocol", &format!("{}---{}", se("a", "HTTP", ""), se("b", "HTTP", "")), &[]);
}

#[test]
fn sidecars() {
    let sc = |name: &str, selector: &str| {
        format!(
            "
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}, namespace: shop}}
spec:
  {selector}
  egress: [{{hosts: [./*]}}]
"
        )
    };
    let pod = "\napiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop, labels: {app: web}}\n";
    let sel = "workloadSelector: {labels: {app: web}}";
    check("one per workload", &format!("{pod}---{}", sc("a", sel)), &[]);
    check(
        "selector matching no pod",
        &format!("{pod}---{}", sc("a", "workloadSelector: {labels: {app: api}}")),
        &["IST0101 Sidecar shop/a"],
    );
    check(
        "two selecting one pod",
        &format!("{pod}---{}---{}", sc("a", sel), sc("b", sel)),
        &["IST0110 Sidecar shop/a", "IST0110 Sidecar shop/b"],
    );
    check(
        "two without selectors",
        &format!("{}---{}", sc("a", ""), sc("b", "")),
        &["IST0111 Sidecar shop/a", "IST0111 Sidecar shop/b"],
    );
}

#[test]
fn ingress_route_rules_and_jwt_claims() {
    let yaml = format!(
        "{REVIEWS_SERVICE}---{GATEWAY}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: mesh-split, namespace: default}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: v1}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edge, namespace: default}}
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http: [{{route: [{{destination: {{host: reviews}}}}]}}]
"
    );
    check("gateway route without the subset split", &yaml, &["IST0140 VirtualService default/edge"]);

    let claims = yaml.replace(
        "  http: [{route: [{destination: {host: reviews}}]}]",
        "  http: [{match: [{headers: {\"@request.auth.claims.group\": {exact: admin}}}], route: [{destination: {host: reviews, subset: v1}}]}]",
    );
    check("claim routing without RequestAuthentication", &claims, &["IST0149 VirtualService default/edge"]);
    let authn = "
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: issuer}]
";
    check("claim routing with RequestAuthentication", &format!("{claims}---{authn}"), &[]);
}

#[test]
fn annotations_on_kubernetes_objects() {
    let pod = |annotations: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: default, annotations: {annotations}}}\n")
    };
    check("known", &pod("{sidecar.istio.io/proxyCPU: 100m}"), &[]);
    check("not Istio's", &pod("{example.com/anything: x}"), &[]);
    check("unknown", &pod("{sidecar.istio.io/proxyCPUs: 100m}"), &["IST0108 Pod default/p"]);
    check("misplaced", &pod("{networking.istio.io/exportTo: \".\"}"), &["IST0107 Pod default/p"]);
    check("invalid value", &pod("{readiness.status.sidecar.istio.io/periodSeconds: soon}"), &["IST0125 Pod default/p"]);
    check("deprecated", &pod("{sidecar.istio.io/statsInclusionPrefixes: x}"), &["IST0135 Pod default/p"]);
}

#[test]
fn suppression_annotation_silences_codes_on_its_resource_only() {
    let yaml = vs_to("{host: ratings}");
    let suppressed = yaml.replace(
        "metadata: {name: route, namespace: default}",
        "metadata: {name: route, namespace: default, annotations: {galley.istio.io/analyze-suppress: \"IST0102,IST0101\"}}",
    );
    check("suppressed", &suppressed, &[]);
    check("suppress all", &suppressed.replace("IST0102,IST0101", "*"), &[]);
    check("another code", &suppressed.replace("IST0102,IST0101", "IST0109"), &["IST0101 VirtualService default/route"]);
}

#[test]
fn a_list_and_an_invalid_resource_are_analyzed_too() {
    let yaml = "
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: reviews, namespace: default}
  spec: {ports: [{port: 9080}]}
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata: {name: route, namespace: default}
  spec:
    hosts: [reviews]
    http: [{timeout: 0s, route: [{destination: {host: ratings}}]}]
";
    let report = weir_model::load_str("case.yaml", yaml);
    assert!(report.has_errors(), "timeout: 0s is a schema error");
    let a = analyze(yaml);
    let got: Vec<(String, u32)> =
        a.findings.iter().map(|f| (format!("{} {}", f.code, f.resource()), f.origin.pos.line)).collect();
    assert_eq!(got, [("IST0101 VirtualService default/route".to_string(), 9)]);
}

/// Objects read from the Kubernetes API (decoded JSON, no positions) count as the
/// registry as text does: a Service given that way enables the host checks, and the
/// offline defaults alone do not.
#[test]
fn objects_from_the_api_are_the_registry_too() {
    let objects = [
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "shop"},
            "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}}"#,
        r#"{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "r", "namespace": "shop"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "nosuch"}}]}]}}"#,
    ];
    let mut report = weir_model::LoadReport::default();
    for o in objects {
        report.extend(weir_model::load_json("kubernetes:object", serde_json::from_str(o).unwrap()));
    }
    let mut core = report.core;
    core.extend(analyze::default_ingress());
    let got = analyze::analyze(&Inputs { resources: report.resources, core, dns_auto_allocate: false });
    let codes: Vec<String> = got.findings.iter().map(|f| format!("{} {}", f.code, f.resource())).collect();
    assert_eq!(codes, ["IST0101 VirtualService shop/r"], "{:?}", got.skipped);
    assert!(got.skipped.iter().all(|s| !matches!(s, Skipped::Registry)), "{:?}", got.skipped);
}
