//! `weir validate` run as a real process: exit codes, output formats, stdin, directories.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    weir().args(args).output().expect("weir runs")
}

const GOOD: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good, namespace: ns}
spec:
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
";

const BAD: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: ns}
spec:
  hosts: [a]
  http:
  - route:
    - destination: {host: a}
      weight: -5
";

const WARN_ONLY: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: warn, namespace: ns}
spec:
  host: a
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 5}
";

#[test]
fn every_example_validates_with_zero_errors() {
    let out = run(&["validate", repo().join("examples").to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}");
}

#[test]
fn every_seed_pattern_validates_on_its_own() {
    let dir = repo().join("examples/seed");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = run(&["validate", path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), String::from_utf8_lossy(&out.stdout));
        }
    }
}

#[test]
fn exit_codes_are_0_for_clean_or_warnings_1_for_errors_2_for_io_or_usage() {
    let dir = temp_dir("codes");
    std::fs::write(dir.join("good.yaml"), GOOD).unwrap();
    std::fs::write(dir.join("bad.yaml"), BAD).unwrap();
    std::fs::write(dir.join("warn.yaml"), WARN_ONLY).unwrap();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    assert_eq!(run(&["validate", &p("good.yaml")]).status.code(), Some(0));
    assert_eq!(run(&["validate", &p("warn.yaml")]).status.code(), Some(0));
    assert_eq!(run(&["validate", &p("bad.yaml")]).status.code(), Some(1));
    assert_eq!(run(&["validate", &p("good.yaml"), &p("bad.yaml")]).status.code(), Some(1));
    assert_eq!(run(&["validate", &p("missing.yaml")]).status.code(), Some(2));
    assert_eq!(run(&["validate"]).status.code(), Some(2));
    assert_eq!(run(&["validate", "-o", "xml", &p("good.yaml")]).status.code(), Some(2));
}

#[test]
fn a_missing_path_does_not_hide_the_other_files() {
    let dir = temp_dir("missing");
    std::fs::write(dir.join("bad.yaml"), BAD).unwrap();
    let out = run(&["validate", dir.join("nope").to_str().unwrap(), dir.join("bad.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("weight -5"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn json_output_is_an_array_with_the_documented_keys() {
    let dir = temp_dir("json");
    std::fs::write(dir.join("bad.yaml"), BAD).unwrap();
    let out = run(&["validate", "-o", "json", dir.join("bad.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let arr = v.as_array().expect("an array");
    assert_eq!(arr.len(), 1);
    let d = arr[0].as_object().unwrap();
    let mut keys: Vec<_> = d.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "column", "file", "kind", "line", "message", "name", "namespace", "path", "severity"]);
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "IST0106");
    assert_eq!(d["line"], 9);
    assert_eq!(d["column"], 15);
    assert_eq!(d["kind"], "VirtualService");
    assert_eq!(d["namespace"], "ns");
    assert_eq!(d["name"], "bad");
    assert_eq!(d["path"], "spec.http[0].route[0].weight");
    assert!(d["file"].as_str().unwrap().ends_with("bad.yaml"));
}

#[test]
fn json_output_of_a_clean_run_is_an_empty_array() {
    let dir = temp_dir("json-clean");
    std::fs::write(dir.join("good.yaml"), GOOD).unwrap();
    let out = run(&["validate", "-o", "json", dir.join("good.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn yaml_output_lists_the_same_diagnostics() {
    let dir = temp_dir("yaml");
    std::fs::write(dir.join("bad.yaml"), BAD).unwrap();
    let out = run(&["validate", "-o", "yaml", dir.join("bad.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("path: spec.http[0].route[0].weight"), "{text}");
    assert!(text.contains("code: IST0106"), "{text}");
}

#[test]
fn human_output_names_file_line_column_code_resource_path_and_shows_the_line() {
    let dir = temp_dir("human");
    std::fs::write(dir.join("bad.yaml"), BAD).unwrap();
    let file = dir.join("bad.yaml");
    let out = run(&["validate", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}:9:15: error[IST0106] VirtualService ns/bad: spec.http[0].route[0].weight: weight -5 must not be negative",
            file.display()
        )
    );
    assert!(text.contains("      weight: -5"), "{text}");
}

#[test]
fn stdin_is_read_for_dash() {
    let mut child =
        weir().args(["validate", "-o", "json", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(BAD.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["file"], "-");
}

#[test]
fn directories_are_searched_recursively_for_yaml_yml_and_json_only() {
    let dir = temp_dir("tree");
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("a/b/deep.yml"), BAD).unwrap();
    std::fs::write(dir.join("a/one.json"), r#"{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "bad.name"}, "spec": {"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}"#).unwrap();
    std::fs::write(dir.join("notes.txt"), "not: [yaml").unwrap();
    std::fs::create_dir_all(dir.join("..data")).unwrap();
    std::fs::write(dir.join("..data/copy.yaml"), BAD).unwrap();
    let out = run(&["validate", "-o", "json", dir.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = v.as_array().unwrap().iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("deep.yml")));
    assert!(files.iter().any(|f| f.ends_with("one.json")));
}

#[test]
fn duplicates_across_files_are_reported_with_both_locations() {
    let dir = temp_dir("dups");
    std::fs::write(dir.join("a.yaml"), GOOD).unwrap();
    std::fs::write(dir.join("b.yaml"), GOOD).unwrap();
    let out = run(&["validate", "-o", "json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(v[0]["file"].as_str().unwrap().ends_with("b.yaml"));
    assert!(v[0]["message"].as_str().unwrap().contains("a.yaml:1:1"));
}
