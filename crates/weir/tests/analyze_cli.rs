//! `weir analyze` as a user runs it: findings placed at file:line:column and field,
//! the JSON shape, thresholds, suppressions, stdin, and istioctl's exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

use weir_testkit::ConfigDir;

const REGISTRY: &str = "apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: shop, labels: {app: reviews, version: v1}}
";

const ROUTES: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v9
";

fn analyze(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir")).arg("analyze").args(args).output().expect("weir runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config() -> ConfigDir {
    let dir = ConfigDir::new();
    dir.write("registry.yaml", REGISTRY);
    dir.write("routes.yaml", ROUTES);
    dir
}

#[test]
fn a_missing_subset_is_an_error_at_its_line_and_field_in_json() {
    let dir = config();
    let (code, out, err) = analyze(&["-o", "json", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(79), "{err}");
    let findings: serde_json::Value = serde_json::from_str(&out).expect("JSON array");
    let list = findings.as_array().unwrap();
    assert_eq!(list.len(), 1, "{out}");
    let f = &list[0];
    assert_eq!(f["code"], "IST0101");
    assert_eq!(f["level"], "Error");
    assert_eq!(f["resource"], "VirtualService shop/reviews");
    assert_eq!(f["message"], "Referenced host+subset in destinationrule not found: \"reviews+v9\"");
    assert!(f["file"].as_str().unwrap().ends_with("routes.yaml"), "{f}");
    // `subset: v9` is line 17 of routes.yaml; the value starts at column 17.
    assert_eq!((f["line"].as_u64(), f["column"].as_u64()), (Some(17), Some(17)), "{f}");
    assert_eq!(f["path"], "spec.http[0].route[0].destination.subset");
}

#[test]
fn text_output_names_the_place_and_shows_the_source_line() {
    let dir = config();
    let (code, out, _) = analyze(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(79));
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("Error [IST0101] (VirtualService shop/reviews "), "{out}");
    assert!(first.contains("routes.yaml:17:17 spec.http[0].route[0].destination.subset)"), "{out}");
    assert!(out.contains("subset: v9"), "{out}");
}

#[test]
fn clean_input_exits_0_and_says_so() {
    let dir = config();
    dir.write("routes.yaml", &ROUTES.replace("subset: v9", "subset: v1"));
    let (code, out, err) = analyze(&["-o", "json", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.trim(), "[]");
    assert!(err.contains("No validation issues found"), "{err}");
}

#[test]
fn thresholds_decide_what_is_shown_and_what_fails() {
    let dir = config();
    // A DestinationRule for an unknown host is a warning (IST0174).
    dir.write("routes.yaml", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x, namespace: shop}\nspec: {host: ratings}\n");
    let path = dir.path().to_str().unwrap();
    let (code, out, _) = analyze(&["-o", "json", path]);
    assert_eq!(code, Some(0), "a warning is below the default failure threshold: {out}");
    assert!(out.contains("IST0174"));
    let (code, _, _) = analyze(&["--failure-threshold", "Warning", path]);
    assert_eq!(code, Some(79));
    let (code, out, _) = analyze(&["-o", "json", "--output-threshold", "Error", path]);
    assert_eq!((code, out.trim()), (Some(0), "[]"));
}

#[test]
fn suppressions_by_flag_and_annotation() {
    let dir = config();
    let path = dir.path().to_str().unwrap();
    let (code, out, _) = analyze(&["-o", "json", "-S", "IST0101=VirtualService shop/*", path]);
    assert_eq!((code, out.trim()), (Some(0), "[]"));
    let (code, _, _) = analyze(&["-S", "IST0101=VirtualService other/*", path]);
    assert_eq!(code, Some(79), "a pattern for another namespace does not suppress");
    dir.write(
        "routes.yaml",
        &ROUTES.replace(
            "kind: VirtualService\nmetadata: {name: reviews, namespace: shop}",
            "kind: VirtualService\nmetadata: {name: reviews, namespace: shop, annotations: {galley.istio.io/analyze-suppress: IST0101}}",
        ),
    );
    let (code, out, _) = analyze(&["-o", "json", path]);
    assert_eq!((code, out.trim()), (Some(0), "[]"));
}

#[test]
fn validation_findings_are_analysis_findings() {
    let dir = config();
    dir.write("bad.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: t, namespace: shop}\nspec:\n  hosts: [reviews.shop.svc.cluster.local]\n  exportTo: [.]\n  http: [{timeout: 0s, route: [{destination: {host: reviews}}]}]\n");
    let (code, out, _) =
        analyze(&["-o", "json", dir.file("bad.yaml").to_str().unwrap(), dir.file("registry.yaml").to_str().unwrap()]);
    assert_eq!(code, Some(79));
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let schema: Vec<_> = list.iter().filter(|f| f["code"] == "IST0106").collect();
    assert_eq!(schema.len(), 1, "{out}");
    assert!(schema[0]["message"].as_str().unwrap().starts_with("Schema validation error: "), "{out}");
    assert_eq!(schema[0]["path"], "spec.http[0].timeout");
}

#[test]
fn stdin_and_yaml_output() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["analyze", "-o", "yaml", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{REGISTRY}---\n{ROUTES}").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(79));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("code: IST0101") && text.contains("file: '-'")
            || text.contains("file: \"-\"")
            || text.contains("file: -"),
        "{text}"
    );
}

#[test]
fn usage_and_input_errors_have_their_own_exit_codes() {
    assert_eq!(analyze(&[]).0, Some(64), "no paths");
    assert_eq!(analyze(&["-o", "xml", "x.yaml"]).0, Some(64), "bad format");
    assert_eq!(analyze(&["--failure-threshold", "Fatal", "x.yaml"]).0, Some(64));
    assert_eq!(analyze(&["--no-such-flag", "x.yaml"]).0, Some(64));
    let dir = ConfigDir::new();
    dir.write("broken.yaml", "kind: [unclosed\n");
    let (code, _, err) = analyze(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(65), "{err}");
    assert_eq!(analyze(&["/no/such/path.yaml"]).0, Some(65));
}

/// Each seed pattern alone analyzes clean, except that the mirroring pattern routes
/// to subsets `v1` and `v2` of my-service, which no DestinationRule in it (or in the
/// other patterns) defines: istioctl reports those two, and so does weir.
#[test]
fn each_seed_pattern_alone_analyzes_clean_but_mirroring_names_undefined_subsets() {
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples/seed");
    let mut files: Vec<_> = std::fs::read_dir(&seed).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    assert_eq!(files.len(), 7);
    for f in files {
        let (code, out, err) = analyze(&["-o", "json", f.to_str().unwrap()]);
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let got: Vec<String> = list.iter().map(|f| format!("{} {}", f["code"], f["message"])).collect();
        if f.ends_with("5-mirroring.yaml") {
            assert_eq!(code, Some(79));
            assert_eq!(
                got,
                [
                    r#""IST0101" "Referenced host+subset in destinationrule not found: \"my-service+v1\"""#,
                    r#""IST0101" "Referenced mirror+subset in destinationrule not found: \"my-service+v2\"""#,
                ]
            );
        } else {
            assert_eq!((code, got.len()), (Some(0), 0), "{}: {out}{err}", f.display());
        }
    }
}

/// `--proxy-notes` adds what weir's compiler notes (as `weir run` logs it), placed on
/// the field like every other finding; without it the codes are istioctl's only.
#[test]
fn proxy_notes_are_placed_findings_too() {
    let dir = ConfigDir::new();
    dir.write(
        "gw.yaml",
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: mtls, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: ISTIO_MUTUAL}
",
    );
    let path = dir.path().to_str().unwrap();
    let (code, out, _) = analyze(&["-o", "json", path]);
    assert_eq!((code, out.trim()), (Some(0), "[]"));
    let (code, out, _) = analyze(&["-o", "json", "--proxy-notes", path]);
    assert_eq!(code, Some(0), "a note is a warning");
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["code"], "WEIR101");
    assert_eq!(list[0]["resource"], "Gateway edge/gw");
    assert_eq!((list[0]["line"].as_u64(), list[0]["column"].as_u64()), (Some(9), Some(17)));
    assert_eq!(list[0]["path"], "spec.servers[0].tls.mode");
}
