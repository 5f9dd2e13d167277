//! Loading: document splitting, lists, JSON, kinds weir skips, unknown kinds and
//! versions, duplicates, namespace defaulting, and strict decoding errors.

use weir_model::{Kind, Severity, check_duplicates, load_str};

const VS: &str = "apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
";

#[test]
fn all_three_api_versions_load() {
    for version in ["v1alpha3", "v1beta1", "v1"] {
        let text = VS.replace("v1alpha3", version);
        let r = load_str("a.yaml", &text);
        assert!(r.diagnostics.is_empty(), "{version}: {:?}", r.diagnostics);
        assert_eq!(r.resources.len(), 1);
        assert_eq!(r.resources[0].kind(), Kind::VirtualService);
    }
}

#[test]
fn missing_namespace_means_default() {
    let r = load_str("a.yaml", VS);
    assert_eq!(r.resources[0].meta.namespace, "default");
}

#[test]
fn multi_document_streams_keep_going_past_a_bad_document() {
    let text = format!("{VS}---\nthis: [is broken\n---\n{}", VS.replace("name: reviews", "name: other"));
    let r = load_str("a.yaml", &text);
    assert_eq!(r.resources.len(), 2, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(r.diagnostics[0].code, "WEIR001");
    assert_eq!(r.diagnostics[0].line, 10);
}

#[test]
fn lists_are_unpacked_and_paths_name_the_item() {
    let text = "apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: a}
  spec: {host: a}
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: b}
  spec:
    host: b
    subsets:
    - name: Not_Valid
";
    let r = load_str("list.yaml", text);
    assert_eq!(r.resources.len(), 1);
    let d = &r.diagnostics[0];
    assert_eq!(d.path, "items[1].spec.subsets[0].name");
    assert_eq!(d.line, 14);
    assert_eq!(d.name.as_deref(), Some("b"));
}

#[test]
fn json_loads_with_positions() {
    let text = r#"{
  "apiVersion": "networking.istio.io/v1",
  "kind": "DestinationRule",
  "metadata": {"name": "a", "namespace": "ns"},
  "spec": {
    "host": "a",
    "trafficPolicy": {"outlierDetection": {"interval": "0s"}}
  }
}"#;
    let r = load_str("a.json", text);
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics[0].path, "spec.trafficPolicy.outlierDetection.interval");
    assert_eq!(r.diagnostics[0].line, 7);
}

#[test]
fn kinds_weir_does_not_use_are_skipped_with_info() {
    let text = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 3}
---
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef}
spec: {}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
";
    let r = load_str("a.yaml", text);
    assert_eq!(r.diagnostics.len(), 4);
    assert!(r.diagnostics.iter().all(|d| d.severity == Severity::Info && d.code == "WEIR005"), "{:?}", r.diagnostics);
}

#[test]
fn unknown_kinds_and_versions_in_the_group_are_errors() {
    let r = load_str("a.yaml", &VS.replace("kind: VirtualService", "kind: VirtualServise"));
    let d = &r.diagnostics[0];
    assert_eq!((d.severity, d.code, d.path.as_str(), d.line), (Severity::Error, "WEIR004", "kind", 2));
    assert!(d.message.contains("did you mean `VirtualService`"), "{}", d.message);

    let r = load_str("a.yaml", &VS.replace("v1alpha3", "v2"));
    let d = &r.diagnostics[0];
    assert_eq!((d.code, d.path.as_str(), d.line), ("WEIR004", "apiVersion", 1));
    assert!(d.message.contains("\"v2\""), "{}", d.message);
}

#[test]
fn documents_that_are_not_objects_are_errors() {
    for text in ["- a\n- b\n", "just a string\n", "kind: VirtualService\nspec: {}\n"] {
        let r = load_str("a.yaml", text);
        assert_eq!(r.diagnostics.len(), 1, "{text:?}: {:?}", r.diagnostics);
        assert_eq!(r.diagnostics[0].severity, Severity::Error);
    }
}

#[test]
fn duplicates_name_both_locations_and_keep_the_first() {
    let mut r = load_str("one.yaml", VS);
    r.extend(load_str("two.yaml", &format!("# a comment\n{VS}")));
    let diags = check_duplicates(&mut r.resources);
    assert_eq!(r.resources.len(), 1);
    assert_eq!(&*r.resources[0].origin.file, "one.yaml");
    assert_eq!(diags.len(), 1);
    assert_eq!(&*diags[0].file, "two.yaml");
    assert_eq!(diags[0].line, 2);
    assert!(diags[0].message.contains("one.yaml:1:1"), "{}", diags[0].message);
}

#[test]
fn unknown_fields_are_all_reported_with_suggestions() {
    let text = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec:
  host: a
  trafficPolicy:
    outlierDetection:
      maxEjectPercent: 50
      consecutive5xxError: 3
  subsetz: []
";
    let r = load_str("a.yaml", text);
    let got: Vec<_> = r.diagnostics.iter().map(|d| (d.code, d.path.as_str(), d.line)).collect();
    assert_eq!(
        got,
        [
            ("WEIR002", "spec.trafficPolicy.outlierDetection.maxEjectPercent", 8),
            ("WEIR002", "spec.trafficPolicy.outlierDetection.consecutive5xxError", 9),
            ("WEIR002", "spec.subsetz", 10),
        ]
    );
    assert!(r.diagnostics[0].message.contains("did you mean `maxEjectionPercent`"));
    assert!(r.diagnostics[1].message.contains("did you mean `consecutive5xxErrors`"));
    assert!(r.diagnostics[2].message.contains("did you mean `subsets`"));
    assert!(r.resources.is_empty(), "a resource with errors is not used");
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    let text = VS.replace("hosts: [reviews]", "hosts: reviews");
    let r = load_str("a.yaml", &text);
    let d = &r.diagnostics[0];
    assert_eq!((d.code, d.path.as_str(), d.line, d.column), ("WEIR003", "spec.hosts", 6, 10));
    assert_eq!(d.message, "expected a list, found string \"reviews\"");
}

#[test]
fn bad_durations_are_decode_errors_with_the_value() {
    let text = VS.replace("  - route:", "  - timeout: 10\n    route:");
    let r = load_str("a.yaml", &text);
    let d = &r.diagnostics[0];
    assert_eq!((d.code, d.path.as_str()), ("WEIR003", "spec.http[0].timeout"));
    assert!(d.message.contains("duration"), "{}", d.message);
    let text = VS.replace("  - route:", "  - timeout: 10sec\n    route:");
    let d = &load_str("a.yaml", &text).diagnostics[0];
    assert!(d.message.contains("\"10sec\""), "{}", d.message);
}

#[test]
fn deprecated_fields_map_to_their_replacements() {
    let text = "apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirror: {host: b}
    mirrorPercent: 30
    fault:
      delay: {fixedDelay: 1s, percent: 20}
    corsPolicy:
      allowOrigin: [https://a.com]
";
    let r = load_str("a.yaml", text);
    let weir_model::Spec::VirtualService(vs) = &r.resources[0].spec else { panic!() };
    let route = &vs.http[0];
    assert_eq!(route.effective_mirror_percentage(), Some(30.0));
    assert_eq!(route.fault.as_ref().unwrap().delay.as_ref().unwrap().effective_percentage(), 20.0);
    let origins = route.cors_policy.as_ref().unwrap().effective_origins();
    assert_eq!(origins[0].exact.as_deref(), Some("https://a.com"));
}

#[test]
fn human_rendering_has_location_identity_path_and_source_line() {
    let text = VS.replace("  - route:", "  - timeout: 0s\n    route:");
    let d = &load_str("vs.yaml", &text).diagnostics[0];
    let shown = d.to_string();
    let first = shown.lines().next().unwrap();
    assert_eq!(
        first,
        "vs.yaml:8:14: error[IST0106] VirtualService default/reviews: spec.http[0].timeout: timeout: duration \"0s\" must be at least 1ms (omit the field to disable the timeout)"
    );
    assert!(shown.contains(" 8 |   - timeout: 0s"), "{shown}");
}
