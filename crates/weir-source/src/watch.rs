//! Watching configuration paths. Directories are watched (not single files): editors
//! save by rename and Kubernetes ConfigMaps swap a `..data` symlink, and both look like
//! changes to the directory. Events are debounced; the caller then re-reads everything.
//!
//! The debounce is a thread that blocks on the watcher's events: it wakes only when a
//! file changes (a ticking debouncer woke hundreds of times a second on the proxy's
//! core while nothing changed).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// Keeps the watch alive; dropping it stops watching (and ends the debounce thread).
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchHandle")
    }
}

/// Calls `on_change` (on a watcher thread) once files under `paths` have changed and
/// then been quiet for `debounce`. A file path is watched through its directory.
pub fn watch(
    paths: &[PathBuf],
    debounce: Duration,
    on_change: impl Fn() + Send + 'static,
) -> notify::Result<WatchHandle> {
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res
            && !e.kind.is_access()
        {
            let _ = tx.send(());
        }
    })?;
    for p in paths {
        if p.as_os_str() == "-" {
            continue;
        }
        let target: &Path =
            if p.is_dir() { p } else { p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")) };
        watcher.watch(target, RecursiveMode::Recursive)?;
    }
    std::thread::Builder::new().name("weir-watch".into()).spawn(move || {
        // Ends when the watcher (the only sender) is dropped.
        while rx.recv().is_ok() {
            // Files that never stop changing still reload, at most every 20 windows.
            let latest = std::time::Instant::now() + debounce * 20;
            while std::time::Instant::now() < latest {
                match rx.recv_timeout(debounce) {
                    Ok(()) => continue,
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            on_change();
        }
    })?;
    Ok(WatchHandle { _watcher: watcher })
}
