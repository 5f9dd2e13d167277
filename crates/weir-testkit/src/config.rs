//! [`ConfigDir`]: a temporary config directory with atomic writes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique directory under [`std::env::temp_dir`], removed (with its
/// contents) on drop.
///
/// [`ConfigDir::write`] is atomic: the text goes to a dot-prefixed temporary
/// file in the same directory, is flushed to disk, and is renamed over the
/// target, so a watcher sees either the old file or the complete new one.
/// Watchers should ignore dot-prefixed names.
#[derive(Debug)]
pub struct ConfigDir {
    path: PathBuf,
}

impl Default for ConfigDir {
    fn default() -> Self {
        ConfigDir::new()
    }
}

impl ConfigDir {
    /// Creates a fresh, empty directory.
    pub fn new() -> ConfigDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let path = base.join(format!("weir-testkit-{}-{nanos}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return ConfigDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("create {}: {e}", path.display()),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory (whether or not it exists).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Atomically creates or replaces `name` (a relative path; missing
    /// parent directories are created) with `text`; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let target = self.file(name);
        let parent = target.parent().expect("file has a parent").to_path_buf();
        fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        let file_name =
            target.file_name().unwrap_or_else(|| panic!("{name:?} names no file")).to_string_lossy().into_owned();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tmp = parent.join(format!(".{file_name}.tmp-{n}"));
        let mut f = fs::File::create(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        drop(f);
        fs::rename(&tmp, &target).unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), target.display()));
        target
    }

    /// Removes `name`; panics if it does not exist.
    pub fn remove(&self, name: &str) {
        let target = self.file(name);
        fs::remove_file(&target).unwrap_or_else(|e| panic!("remove {}: {e}", target.display()));
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
