//! Files and directories: `*.yaml`, `*.yml` and `*.json`, recursively, in a stable order.

use std::io::Read;
use std::path::{Path, PathBuf};

use weir_model::{LoadReport, check_duplicates, load_str};

/// A path that could not be read.
#[derive(Debug)]
pub struct SourceError {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

fn is_config_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Lists the configuration files under `path`: the path itself when it is a file (any
/// extension), else every `*.yaml|*.yml|*.json` below it, sorted. Entries whose name
/// starts with `.` are skipped inside directories: Kubernetes ConfigMap mounts keep a
/// second copy of every file under `..data`.
pub fn collect_files(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let err = |error| SourceError { path: path.to_path_buf(), error };
    let meta = std::fs::metadata(path).map_err(err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, &mut out, 0)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), SourceError> {
    // Symlinked directories could loop; real configuration trees are shallow.
    if depth > 32 {
        return Ok(());
    }
    let err = |error| SourceError { path: dir.to_path_buf(), error };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            // A dangling symlink: nothing to read.
            Err(_) => continue,
        };
        if meta.is_dir() {
            walk(&path, out, depth + 1)?;
        } else if is_config_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every file under every path (`-` reads stdin), then drops duplicates across
/// the whole set. Unreadable paths are returned apart; the rest is still loaded.
pub fn load_paths(paths: &[PathBuf]) -> (LoadReport, Vec<SourceError>) {
    let mut report = LoadReport::default();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            match load_stdin() {
                Ok(r) => report.extend(r),
                Err(e) => errors.push(e),
            }
            continue;
        }
        let files = match collect_files(path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for loaded in load_files(files) {
            match loaded {
                Ok(r) => report.extend(r),
                Err(e) => errors.push(e),
            }
        }
    }
    let dups = check_duplicates(&mut report.resources);
    report.diagnostics.extend(dups);
    (report, errors)
}

/// One configuration file's text, kept by callers that place findings afterwards.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// The name diagnostics use (the path as given, or `-`).
    pub name: String,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
}

/// Like [`load_paths`], and also returns each file's text, for commands that place
/// findings made after loading (`weir analyze`).
pub fn load_paths_with_text(paths: &[PathBuf]) -> (LoadReport, Vec<SourceText>, Vec<SourceError>) {
    let (texts, errors) = read_texts(paths);
    let mut report = LoadReport::default();
    for r in in_parallel(&texts, |t| load_str(&t.name, &t.text)) {
        report.extend(r);
    }
    let dups = check_duplicates(&mut report.resources);
    report.diagnostics.extend(dups);
    (report, texts, errors)
}

/// The text of every configuration file under `paths` (`-` is stdin), in order.
pub(crate) fn read_texts(paths: &[PathBuf]) -> (Vec<SourceText>, Vec<SourceError>) {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            match std::io::stdin().read_to_end(&mut bytes) {
                Ok(_) => {
                    texts.push(SourceText { name: "-".into(), text: String::from_utf8_lossy(&bytes).into_owned() })
                }
                Err(error) => errors.push(SourceError { path: PathBuf::from("-"), error }),
            }
            continue;
        }
        match collect_files(path) {
            Ok(files) => {
                for file in files {
                    match std::fs::read(&file) {
                        Ok(bytes) => texts.push(SourceText {
                            name: file.display().to_string(),
                            text: String::from_utf8_lossy(&bytes).into_owned(),
                        }),
                        Err(error) => errors.push(SourceError { path: file, error }),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (texts, errors)
}

/// What checking a configuration found, without the resources themselves.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Every finding, in file order, duplicates last.
    pub diagnostics: Vec<weir_model::Diagnostic>,
    /// How many resources are usable.
    pub valid: usize,
}

/// Validates every file under `paths` without keeping the resources: each file's
/// resources are dropped once checked, so the peak memory is a few files' trees
/// rather than the whole configuration's (`weir validate` of 10,000 services).
pub fn check_paths(paths: &[PathBuf]) -> (CheckReport, Vec<SourceError>) {
    let (texts, errors) = read_texts(paths);
    let parts = in_parallel(&texts, |t| {
        let r = load_str(&t.name, &t.text);
        let keys: Vec<_> = r.resources.iter().map(|x| (x.key(), x.origin.clone())).collect();
        (r.diagnostics, keys)
    });
    let mut report = CheckReport::default();
    let mut keys = Vec::new();
    for (diags, k) in parts {
        report.diagnostics.extend(diags);
        keys.extend(k);
    }
    let dups = weir_model::check_duplicate_keys(keys.iter().cloned());
    report.valid = keys.len() - dups.len();
    report.diagnostics.extend(dups);
    (report, errors)
}

/// Files per thread below which loading stays on the calling thread.
const FILES_PER_THREAD: usize = 8;

/// Reads and loads `files`, in their order. Files are independent until the duplicate
/// check, so a large configuration is parsed and validated on every core (measured with
/// `bench/scale.sh`, 10,000 services in 100 files on 2 cores: `weir validate` 490 ms
/// on one thread).
fn load_files(files: Vec<PathBuf>) -> Vec<Result<LoadReport, SourceError>> {
    in_parallel(&files, |f| load_file(f.clone()))
}

/// `f` over `items` on every core, results in the items' order: contiguous shares,
/// joined in order, so diagnostics come out as a serial load gives them.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len() / FILES_PER_THREAD);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let share = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(share).map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

fn load_file(file: PathBuf) -> Result<LoadReport, SourceError> {
    match std::fs::read(&file) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Ok(load_str(&file.display().to_string(), &text))
        }
        Err(error) => Err(SourceError { path: file, error }),
    }
}

/// Loads configuration text from stdin (named `-` in diagnostics).
pub fn load_stdin() -> Result<LoadReport, SourceError> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).map_err(|error| SourceError { path: PathBuf::from("-"), error })?;
    Ok(load_str("-", &String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// A directory of many files loads on several threads and comes out exactly as a
    /// serial load: resources and diagnostics in file order.
    #[test]
    fn many_files_load_in_order_as_one_thread_would() {
        let dir = std::env::temp_dir().join(format!("weir-source-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let n = 64;
        for i in 0..n {
            // Each file: one valid VirtualService and one finding (an unknown field).
            let yaml = format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs{i:03}, namespace: ns}}\n\
                 spec:\n  hosts: [h{i:03}]\n  http:\n  - route: [{{destination: {{host: h{i:03}}}}}]\n---\n\
                 apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr{i:03}, namespace: ns}}\n\
                 spec:\n  host: h{i:03}\n  bogus: 1\n"
            );
            std::fs::write(dir.join(format!("f{i:03}.yaml")), yaml).unwrap();
        }
        let (report, io) = super::load_paths(std::slice::from_ref(&dir));
        assert!(io.is_empty());
        let names: Vec<&str> = report.resources.iter().map(|r| r.meta.name.as_str()).collect();
        let want: Vec<String> = (0..n).map(|i| format!("vs{i:03}")).collect();
        assert_eq!(names, want.iter().map(String::as_str).collect::<Vec<_>>());
        let files: Vec<PathBuf> = report.diagnostics.iter().map(|d| PathBuf::from(&*d.file)).collect();
        let want: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("f{i:03}.yaml"))).collect();
        assert_eq!(files, want, "one finding per file, in file order");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
