//! `weir new`: every pattern's output validates with no finding, says what the flags
//! say (checked on the compiled table), and bad flags are a usage error (64).

use std::process::Command;

fn new(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir")).arg("new").args(args).output().expect("weir runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn clean(yaml: &str) -> Vec<weir_model::Resource> {
    let report = weir_model::load_str("new.yaml", yaml);
    let findings: Vec<_> = report.diagnostics.iter().filter(|d| d.severity != weir_model::Severity::Info).collect();
    assert!(findings.is_empty(), "{findings:#?}\n{yaml}");
    report.resources
}

#[test]
fn every_pattern_validates_with_no_finding() {
    for args in [
        &["canary", "--host", "my-service"][..],
        &["header-route", "--host", "reviews", "--namespace", "bookinfo"],
        &["circuit-breaker", "--host", "my-service", "--max-connections", "7"],
        &["retry", "--host", "ratings", "--attempts", "5"],
        &["mirror", "--host", "my-service", "--percent", "25"],
        &["fault", "--host", "ratings", "--abort-status", "500"],
        &["gateway", "--host", "*.example.com", "--host", "shop.example.org", "--route-to", "httpbin"],
    ] {
        let (code, out, err) = new(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(!clean(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn the_canary_split_is_what_the_flags_say() {
    let (code, out, _) =
        new(&["canary", "--host", "my-service", "--stable", "stable", "--canary", "canary", "--weight", "10"]);
    assert_eq!(code, Some(0));
    let entry = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: my-service}
spec:
  hosts: [my-service.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: stable}}, {address: 10.0.0.2, labels: {version: canary}}]
";
    let mut resources = clean(&out);
    resources.extend(clean(entry));
    let instance =
        weir_compile::Instance { namespace: "default".into(), mesh: true, ..weir_compile::Instance::default() };
    let compiled = weir_compile::compile(resources, &instance, 1);
    assert!(compiled.diagnostics.is_empty(), "{:?}", compiled.diagnostics);
    let mesh = compiled.table.mesh().unwrap();
    let vh = mesh.virtual_host("my-service").unwrap();
    let shares = weir_table::diff::shares(&vh.routes[0]).unwrap();
    assert_eq!(shares.get("my-service stable"), Some(&90.0));
    assert_eq!(shares.get("my-service canary"), Some(&10.0));
}

#[test]
fn flags_that_would_not_validate_are_refused() {
    let (code, out, err) = new(&["canary", "--host", "x", "--weight", "150"]);
    assert_eq!((code, out.as_str()), (Some(64), ""));
    assert!(err.contains("--weight 150"), "{err}");
    let (code, out, err) = new(&["retry", "--host", "bad host!"]);
    assert_eq!((code, out.as_str()), (Some(64), ""));
    assert!(err.contains("spec.hosts[0]") && err.contains("do not make a valid configuration"), "{err}");
    let (code, _, _) = new(&["retry", "--host", "ratings", "--timeout", "soon"]);
    assert_eq!(code, Some(64), "a duration that is not one");
}

/// Every pattern's output also passes `weir analyze` with no finding (checks that need
/// the services the output routes to are skipped, as istioctl skips them offline).
#[test]
fn every_pattern_analyzes_with_no_finding() {
    use std::io::Write;
    for args in [
        &["canary", "--host", "my-service"][..],
        &["header-route", "--host", "reviews", "--namespace", "bookinfo"],
        &["circuit-breaker", "--host", "my-service"],
        &["retry", "--host", "ratings"],
        &["mirror", "--host", "my-service"],
        &["fault", "--host", "ratings"],
        &["gateway", "--host", "*.example.com", "--route-to", "httpbin"],
    ] {
        let (code, yaml, _) = new(args);
        assert_eq!(code, Some(0));
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["analyze", "-o", "json", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!((out.status.code(), stdout.trim()), (Some(0), "[]"), "{args:?}\n{yaml}");
    }
}
