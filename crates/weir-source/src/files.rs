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
        for file in files {
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    report.extend(load_str(&file.display().to_string(), &text));
                }
                Err(error) => errors.push(SourceError { path: file, error }),
            }
        }
    }
    let dups = check_duplicates(&mut report.resources);
    report.diagnostics.extend(dups);
    (report, errors)
}

/// Loads configuration text from stdin (named `-` in diagnostics).
pub fn load_stdin() -> Result<LoadReport, SourceError> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).map_err(|error| SourceError { path: PathBuf::from("-"), error })?;
    Ok(load_str("-", &String::from_utf8_lossy(&bytes)))
}
