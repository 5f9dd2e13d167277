//! What a configuration source is: something that can say what the whole
//! configuration is now ([`Source::snapshot`]) and tell when that may have changed
//! ([`Source::subscribe`]). The proxy's reload loop — debounce, load, compile, swap,
//! keep the last good table — is written once against this trait; files
//! ([`FileSource`]) and fixed resources ([`FixedSource`], the demo) are sources today,
//! and a Kubernetes source (reflector stores folded into one snapshot, watch events as
//! changes) is another.

use std::path::PathBuf;
use std::time::Duration;

use weir_model::k8s::CoreObject;
use weir_model::{LoadReport, Resource};

use crate::files::{SourceError, load_paths};

/// The whole configuration as a source holds it at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Resources (with their origins) and every finding about them.
    pub report: LoadReport,
    /// Parts of the source that could not be read at all (a file, an API call).
    pub unreadable: Vec<SourceError>,
    /// Objects that do not validate are left out alone and the rest is used (the
    /// Kubernetes source: one bad object must not stop a cluster's configuration);
    /// otherwise (files) any error rejects the whole snapshot, as `kubectl apply`
    /// of a bad file would.
    pub partial: bool,
}

impl Snapshot {
    /// The Istio resources and the Kubernetes objects (the registry's Services,
    /// EndpointSlices, Pods...), when the snapshot is whole and valid; otherwise why
    /// not, for a log line (the findings themselves are in `report`).
    pub fn usable(self) -> Result<(Vec<Resource>, Vec<CoreObject>), String> {
        if let Some(e) = self.unreadable.first() {
            return Err(format!("cannot read {e}"));
        }
        let errors = self.report.diagnostics.iter().filter(|d| d.is_error()).count();
        if errors > 0 && !self.partial {
            return Err(format!("{errors} error(s) in the configuration"));
        }
        Ok((self.report.resources, self.report.core))
    }
}

/// Keeps a subscription alive; dropping it stops the notifications.
pub type Subscription = Box<dyn std::any::Any + Send>;

/// A configuration source.
pub trait Source: Send + Sync + 'static {
    /// What it reads, for log lines (`files examples/bookinfo`).
    fn describe(&self) -> String;

    /// The whole configuration now. Blocking: call it off the serving threads.
    fn snapshot(&self) -> Snapshot;

    /// Calls `changed` (on a thread of the source's) each time the configuration may
    /// have changed, already debounced; the caller then takes a new snapshot. `None`
    /// when this source never changes.
    fn subscribe(&self, changed: Box<dyn Fn() + Send>) -> Result<Option<Subscription>, String>;
}

/// Files and directories, watched (see [`crate::watch`]).
#[derive(Debug, Clone)]
pub struct FileSource {
    paths: Vec<PathBuf>,
    debounce: Duration,
}

impl FileSource {
    /// Reads `paths` (files, directories, `-` for stdin); changes are reported once the
    /// files have been quiet for `debounce`.
    pub fn new(paths: Vec<PathBuf>, debounce: Duration) -> Self {
        FileSource { paths, debounce }
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        let paths: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("files {}", paths.join(" "))
    }

    fn snapshot(&self) -> Snapshot {
        let (report, unreadable) = load_paths(&self.paths);
        Snapshot { report, unreadable, partial: false }
    }

    fn subscribe(&self, changed: Box<dyn Fn() + Send>) -> Result<Option<Subscription>, String> {
        let handle = crate::watch(&self.paths, self.debounce, changed).map_err(|e| e.to_string())?;
        Ok(Some(Box::new(handle)))
    }
}

/// Resources given once (the demo's embedded configuration): never changes.
#[derive(Debug, Clone)]
pub struct FixedSource {
    resources: Vec<Resource>,
}

impl FixedSource {
    /// A source that always holds `resources`.
    pub fn new(resources: Vec<Resource>) -> Self {
        FixedSource { resources }
    }
}

impl Source for FixedSource {
    fn describe(&self) -> String {
        format!("{} embedded resources", self.resources.len())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            report: LoadReport { resources: self.resources.clone(), ..LoadReport::default() },
            unreadable: vec![],
            partial: false,
        }
    }

    fn subscribe(&self, _changed: Box<dyn Fn() + Send>) -> Result<Option<Subscription>, String> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// The file source's snapshot is what the files say now, and a change to them is
    /// reported (the wait is bounded and generous: it waits for the event, not a time).
    #[test]
    fn a_file_source_reports_changes_and_snapshots_the_new_state() {
        let dir = std::env::temp_dir().join(format!("weir-file-source-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let vs = |host: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r, namespace: ns}}\n\
                 spec:\n  hosts: [{host}]\n  http: [{{route: [{{destination: {{host: {host}}}}}]}}]\n"
            )
        };
        std::fs::write(dir.join("vs.yaml"), vs("a")).unwrap();
        let source = FileSource::new(vec![dir.clone()], Duration::from_millis(20));
        let hosts = |s: Snapshot| -> Vec<String> {
            s.usable()
                .unwrap()
                .0
                .iter()
                .flat_map(|r| match &r.spec {
                    weir_model::Spec::VirtualService(v) => v.hosts.clone(),
                    _ => vec![],
                })
                .collect()
        };
        assert_eq!(hosts(source.snapshot()), ["a"]);
        let (tx, rx) = mpsc::channel();
        let _sub = source
            .subscribe(Box::new(move || {
                let _ = tx.send(());
            }))
            .unwrap()
            .expect("files change");
        std::fs::write(dir.join("vs.yaml"), vs("b")).unwrap();
        rx.recv_timeout(Duration::from_secs(30)).expect("the change is reported");
        assert_eq!(hosts(source.snapshot()), ["b"]);
        std::fs::write(dir.join("vs.yaml"), "kind: [broken\n").unwrap();
        rx.recv_timeout(Duration::from_secs(30)).expect("the change is reported");
        assert!(source.snapshot().usable().unwrap_err().contains("error(s) in the configuration"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fixed_source_never_changes() {
        let s = FixedSource::new(vec![]);
        assert!(s.subscribe(Box::new(|| {})).unwrap().is_none());
        assert!(s.snapshot().usable().unwrap().0.is_empty());
    }
}
