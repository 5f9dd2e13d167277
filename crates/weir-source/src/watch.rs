//! Watching configuration paths. Directories are watched (not single files): editors
//! save by rename and Kubernetes ConfigMaps swap a `..data` symlink, and both look like
//! changes to the directory. Events are debounced; the caller then re-reads everything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

/// Keeps the watch alive; dropping it stops watching.
pub struct WatchHandle {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchHandle")
    }
}

/// Calls `on_change` (on a watcher thread) after files under `paths` change, at most
/// once per `debounce` window. A file path is watched through its directory.
pub fn watch(
    paths: &[PathBuf],
    debounce: Duration,
    on_change: impl Fn() + Send + 'static,
) -> notify::Result<WatchHandle> {
    let mut debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| {
        if let Ok(events) = res
            && events.iter().any(|e| !e.kind.is_access())
        {
            on_change();
        }
    })?;
    for p in paths {
        if p.as_os_str() == "-" {
            continue;
        }
        let target: &Path =
            if p.is_dir() { p } else { p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")) };
        debouncer.watch(target, RecursiveMode::Recursive)?;
    }
    Ok(WatchHandle { _debouncer: debouncer })
}
