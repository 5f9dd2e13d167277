//! The Kubernetes API server as a configuration source: one reflector (list, then
//! watch, with bookmarks, relisting on `410 Gone` and retrying with backoff when the
//! API server is away) per kind — the Istio networking kinds (`v1`, or `v1beta1` when
//! the cluster serves only that), Services, EndpointSlices, Pods, Nodes, Namespaces
//! and Secrets — and a snapshot that folds the stores into one [`LoadReport`] through
//! the same loader and validation as files. An object that does not validate is left
//! out alone (its diagnostics name kind, namespace and name); the rest keeps working.
//!
//! The reflectors run on a runtime of their own, on a thread of their own, so that a
//! snapshot can block until the first full sync without holding up the caller's
//! runtime, and the proxy's workers never run them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use weir_model::{LoadReport, check_duplicates, load_json};

use crate::source::{Snapshot, Source, Subscription};

/// How to reach the API server and what to read.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// A kubeconfig file; none: `KUBECONFIG`, `~/.kube/config`, then in-cluster, as
    /// client-go does.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (none: its current context).
    pub context: Option<String>,
    /// Only these namespaces (none: all). Cluster-scoped kinds are always read.
    pub namespaces: Vec<String>,
    /// Where gateway credentials go: each TLS Secret of `credentials_namespace` (the
    /// gateway's own, as Istio looks them up) is written as `DIR/<name>/tls.crt`,
    /// `tls.key` and `ca.crt`, the layout `weir run --credentials DIR` serves and
    /// watches, so a rotated Secret is a rotated certificate.
    pub credentials: Option<PathBuf>,
    /// The namespace whose Secrets are gateway credentials.
    pub credentials_namespace: String,
}

/// One watched kind.
struct Watched {
    resource: ApiResource,
    stores: Vec<Store<DynamicObject>>,
}

struct Shared {
    watched: Vec<Watched>,
    /// Bumped on every applied watch event.
    generation: AtomicU64,
    synced: (Mutex<bool>, Condvar),
    subscribers: Mutex<Vec<Box<dyn Fn() + Send>>>,
}

/// The Kubernetes source. Dropping it stops the reflectors.
pub struct KubernetesSource {
    shared: Arc<Shared>,
    describe: String,
    credentials: Option<(PathBuf, String)>,
    /// Credential directories this source wrote, to remove when their Secret goes.
    written: Mutex<std::collections::BTreeSet<String>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for KubernetesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

const ISTIO_KINDS: [(&str, &str); 6] = [
    ("VirtualService", "virtualservices"),
    ("DestinationRule", "destinationrules"),
    ("Gateway", "gateways"),
    ("ServiceEntry", "serviceentries"),
    ("WorkloadEntry", "workloadentries"),
    ("Sidecar", "sidecars"),
];

/// `(group, version, kind, plural, namespaced)` of the Kubernetes kinds read.
const CORE_KINDS: [(&str, &str, &str, &str, bool); 7] = [
    ("", "v1", "Service", "services", true),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "Node", "nodes", false),
    ("", "v1", "Namespace", "namespaces", false),
    ("security.istio.io", "v1", "RequestAuthentication", "requestauthentications", true),
];

impl KubernetesSource {
    /// Connects and starts the reflectors; returns at once (a snapshot waits for the
    /// first full sync). `debounce`: how long events must be quiet before a change is
    /// reported.
    pub fn start(options: KubeOptions, debounce: Duration) -> Result<KubernetesSource, String> {
        let credentials = options.credentials.clone();
        let credentials_namespace = options.credentials_namespace.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Arc<Shared>, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let describe = match &options.kubeconfig {
            Some(p) => format!("the Kubernetes API server of {}", p.display()),
            None => "the Kubernetes API server".to_string(),
        };
        std::thread::Builder::new()
            .name("weir-kube".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot start the Kubernetes runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    match connect(options, debounce).await {
                        Ok(shared) => {
                            let _ = ready_tx.send(Ok(shared));
                            let _ = stop_rx.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| format!("cannot start the Kubernetes thread: {e}"))?;
        let shared = ready_rx.recv().map_err(|_| "the Kubernetes thread ended".to_string())??;
        Ok(KubernetesSource {
            shared,
            describe,
            credentials: credentials.map(|dir| (dir, credentials_namespace)),
            written: Mutex::new(Default::default()),
            _stop: stop_tx,
        })
    }
}

async fn client_for(options: &KubeOptions) -> Result<kube::Client, String> {
    // kube builds its TLS client with the process-default provider; weir compiles two
    // (ring and aws-lc-rs), so there is none until one is chosen. Everything else in
    // weir names its provider explicitly, so this default is kube's alone.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match &options.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let opts = kube::config::KubeConfigOptions { context: options.context.clone(), ..Default::default() };
            kube::Config::from_custom_kubeconfig(kc, &opts).await.map_err(|e| format!("{}: {e}", path.display()))?
        }
        None if options.context.is_some() => {
            let opts = kube::config::KubeConfigOptions { context: options.context.clone(), ..Default::default() };
            kube::Config::from_kubeconfig(&opts).await.map_err(|e| e.to_string())?
        }
        None => kube::Config::infer().await.map_err(|e| e.to_string())?,
    };
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

async fn connect(options: KubeOptions, debounce: Duration) -> Result<Arc<Shared>, String> {
    let client = client_for(&options).await?;
    // networking.istio.io/v1, or v1beta1 on clusters that serve only that.
    let istio_version = match client.list_api_group_resources("networking.istio.io/v1").await {
        Ok(_) => "v1",
        Err(_) => "v1beta1",
    };
    let mut kinds: Vec<(ApiResource, bool)> = ISTIO_KINDS
        .iter()
        .map(|(kind, plural)| {
            let gvk = GroupVersionKind::gvk("networking.istio.io", istio_version, kind);
            (ApiResource::from_gvk_with_plural(&gvk, plural), true)
        })
        .collect();
    for (group, version, kind, plural, namespaced) in CORE_KINDS {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        kinds.push((ApiResource::from_gvk_with_plural(&gvk, plural), namespaced));
    }
    // Only what the cluster serves: a kind without its CRD (no Istio security API, say)
    // would never finish its first list and keep weir from ever becoming ready.
    let mut served: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (r, _) in &kinds {
        if served.contains_key(&r.api_version) {
            continue;
        }
        let list = if r.group.is_empty() {
            client.list_core_api_resources(&r.version).await
        } else {
            client.list_api_group_resources(&r.api_version).await
        };
        let names = list.map(|l| l.resources.into_iter().map(|x| x.name).collect()).unwrap_or_default();
        served.insert(r.api_version.clone(), names);
    }
    kinds.retain(|(r, _)| {
        let ok = served.get(&r.api_version).is_some_and(|names| names.contains(&r.plural));
        if !ok {
            tracing::warn!("the API server does not serve {} {}: not watched", r.api_version, r.kind);
        }
        ok
    });
    // Every applied watch event (not the initial list, not bookmarks) pokes this.
    let events = Arc::new(tokio::sync::Notify::new());
    let shared_watched: Vec<Watched> = kinds
        .iter()
        .map(|(resource, namespaced)| {
            let apis: Vec<Api<DynamicObject>> = if *namespaced && !options.namespaces.is_empty() {
                options.namespaces.iter().map(|ns| Api::namespaced_with(client.clone(), ns, resource)).collect()
            } else {
                vec![Api::all_with(client.clone(), resource)]
            };
            (resource.clone(), apis)
        })
        .map(|(resource, apis)| {
            let mut stores = Vec::new();
            for api in apis {
                let writer = reflector::store::Writer::new(resource.clone());
                stores.push((writer.as_reader(), writer, api));
            }
            (resource, stores)
        })
        .map(|(resource, stores)| {
            let mut readers = Vec::new();
            for (reader, writer, api) in stores {
                readers.push(reader);
                let kind = resource.kind.clone();
                let trimmed_kind = kind.clone();
                let events_in = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .modify(move |o: &mut DynamicObject| trim(&trimmed_kind, o));
                let stream = reflector::reflector(writer, events_in);
                let events = events.clone();
                // Applying events to the store is the reflector's work; this drains it
                // and says when the stores changed.
                tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(ev) = stream.next().await {
                        match ev {
                            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                                events.notify_one();
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(kind, "watch: {e} (retrying; the last good configuration keeps serving)")
                            }
                        }
                    }
                });
            }
            Watched { resource, stores: readers }
        })
        .collect();
    Ok(finish(shared_watched, events, debounce))
}

/// The annotation `kubectl apply` writes: a copy of the whole object as applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what weir never reads from an object before the reflector stores it, as
/// informers' transform functions do: `managedFields` and `kubectl apply`'s copy of
/// the object on every kind, and for Pods everything but `spec.nodeName` (their status
/// and containers), for Nodes and Namespaces everything but metadata. On a real
/// cluster these are most of each object's bytes, and the stores are weir's largest
/// memory in Kubernetes mode.
fn trim(kind: &str, o: &mut DynamicObject) {
    o.metadata.managed_fields = None;
    if let Some(a) = o.metadata.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    match kind {
        "Pod" => {
            let node = o.data.pointer("/spec/nodeName").cloned();
            o.data = match node {
                Some(n) => serde_json::json!({"spec": {"nodeName": n}}),
                None => serde_json::json!({}),
            };
        }
        "Node" | "Namespace" => o.data = serde_json::json!({}),
        _ => {}
    }
}

fn finish(watched: Vec<Watched>, events: Arc<tokio::sync::Notify>, debounce: Duration) -> Arc<Shared> {
    let shared = Arc::new(Shared {
        watched,
        generation: AtomicU64::new(0),
        synced: (Mutex::new(false), Condvar::new()),
        subscribers: Mutex::new(Vec::new()),
    });
    let sync = shared.clone();
    tokio::spawn(async move {
        for w in &sync.watched {
            for s in &w.stores {
                let _ = s.wait_until_ready().await;
            }
        }
        let (lock, cv) = &sync.synced;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    });
    // Changes: woken by the watch events, reported once they have been quiet for
    // `debounce` (at most every 20 windows while they never stop). A relist after
    // `410 Gone` replays the objects: reported once, and only if something differs.
    let watch = shared.clone();
    tokio::spawn(async move {
        let mut seen = fingerprint(&watch);
        loop {
            events.notified().await;
            let latest = tokio::time::Instant::now() + debounce * 20;
            while tokio::time::Instant::now() < latest {
                if tokio::time::timeout(debounce, events.notified()).await.is_err() {
                    break;
                }
            }
            let now = fingerprint(&watch);
            if now == seen {
                continue;
            }
            seen = now;
            watch.generation.fetch_add(1, Ordering::SeqCst);
            for s in watch.subscribers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                s();
            }
        }
    });
    shared
}

/// What the stores hold, in brief: every object's kind, namespace, name and
/// resourceVersion. Equal fingerprints mean nothing changed.
fn fingerprint(shared: &Shared) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for w in &shared.watched {
        for s in &w.stores {
            let mut keys: Vec<(String, String, String)> = s
                .state()
                .iter()
                .map(|o| {
                    (
                        o.metadata.namespace.clone().unwrap_or_default(),
                        o.metadata.name.clone().unwrap_or_default(),
                        o.metadata.resource_version.clone().unwrap_or_default(),
                    )
                })
                .collect();
            keys.sort();
            w.resource.kind.hash(&mut h);
            keys.hash(&mut h);
        }
    }
    h.finish()
}

impl Source for KubernetesSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn snapshot(&self) -> Snapshot {
        let (lock, cv) = &self.shared.synced;
        let mut synced = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*synced {
            let (guard, timeout) = cv.wait_timeout(synced, Duration::from_secs(10)).unwrap_or_else(|e| e.into_inner());
            synced = guard;
            if timeout.timed_out() && !*synced {
                tracing::warn!("waiting for the first full list from the Kubernetes API server");
            }
        }
        drop(synced);
        let mut report = LoadReport::default();
        for w in &self.shared.watched {
            for store in &w.stores {
                for obj in store.state() {
                    let Ok(mut value) = serde_json::to_value(&*obj) else { continue };
                    // List items carry no apiVersion and kind of their own.
                    value["apiVersion"] = serde_json::Value::String(w.resource.api_version.clone());
                    value["kind"] = serde_json::Value::String(w.resource.kind.clone());
                    let name = format!(
                        "kubernetes:{} {}/{}",
                        w.resource.kind,
                        obj.metadata.namespace.as_deref().unwrap_or(""),
                        obj.metadata.name.as_deref().unwrap_or("")
                    );
                    report.extend(load_json(&name, value));
                }
            }
        }
        let dups = check_duplicates(&mut report.resources);
        report.diagnostics.extend(dups);
        if let Some((dir, ns)) = &self.credentials {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            write_credentials(dir, ns, &report.core, &mut written);
        }
        Snapshot { report, unreadable: Vec::new(), partial: true }
    }

    fn subscribe(&self, changed: Box<dyn Fn() + Send>) -> Result<Option<Subscription>, String> {
        self.shared.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(changed);
        Ok(Some(Box::new(())))
    }
}

/// The certificate, key and CA of a Secret: `tls.crt`/`tls.key`/`ca.crt`
/// (`kubernetes.io/tls`), or Istio's generic `cert`/`key`/`cacert`.
fn credential_files(data: &std::collections::BTreeMap<String, Option<Vec<u8>>>) -> Option<Vec<(&'static str, &[u8])>> {
    let get = |k: &str| data.get(k).and_then(|v| v.as_deref()).filter(|v| !v.is_empty());
    let (cert, key, ca) = match (get("tls.crt"), get("tls.key"), get("cert"), get("key")) {
        (Some(c), Some(k), _, _) => (c, k, get("ca.crt")),
        (_, _, Some(c), Some(k)) => (c, k, get("cacert")),
        _ => return None,
    };
    let mut files = vec![("tls.crt", cert), ("tls.key", key)];
    files.extend(ca.map(|c| ("ca.crt", c)));
    Some(files)
}

/// Writes the credential Secrets of `ns` under `dir` (only files whose content
/// changed, each by a rename so a reader never sees half a file), and removes the
/// directories of Secrets that are gone.
fn write_credentials(
    dir: &std::path::Path,
    ns: &str,
    core: &[weir_model::k8s::CoreObject],
    written: &mut std::collections::BTreeSet<String>,
) {
    use weir_model::k8s::{CoreKind, CoreSpec};
    let mut now = std::collections::BTreeSet::new();
    for o in core.iter().filter(|o| o.kind == CoreKind::Secret && o.namespace == ns) {
        let CoreSpec::Secret { data, .. } = &o.spec else { continue };
        let Some(files) = credential_files(data) else { continue };
        // A Secret name is a DNS subdomain: no path separators to escape from `dir`.
        if o.name.is_empty() || o.name.contains('/') || o.name.starts_with('.') {
            continue;
        }
        let target = dir.join(&o.name);
        if let Err(e) = std::fs::create_dir_all(&target) {
            tracing::warn!("cannot write credential {}: {e}", o.name);
            continue;
        }
        for (file, bytes) in files {
            let path = target.join(file);
            if std::fs::read(&path).is_ok_and(|old| old == bytes) {
                continue;
            }
            let tmp = target.join(format!(".{file}.tmp"));
            let done = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = done {
                tracing::warn!("cannot write credential {}/{file}: {e}", o.name);
            }
        }
        now.insert(o.name.clone());
    }
    for gone in written.difference(&now) {
        let _ = std::fs::remove_dir_all(dir.join(gone));
    }
    *written = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;
    use weir_testkit::{FakeApiServer, TEST_TIMEOUT};

    fn secret(name: &str, ns: &str, cert: &str) -> serde_json::Value {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": name, "namespace": ns},
               "data": {"tls.crt": b64(cert), "tls.key": b64("KEY")}})
    }

    /// A Pod as a real API server returns it: managed fields, `kubectl apply`'s copy,
    /// containers and status.
    fn full_pod() -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "reviews-v1", "namespace": "shop", "resourceVersion": "7",
                            "labels": {"app": "reviews", "version": "v1"},
                            "annotations": {"sidecar.istio.io/inject": "true",
                                            "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": \"copy\"}"},
                            "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]},
               "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "reviews:v1"}]},
               "status": {"phase": "Running", "podIP": "10.0.0.7",
                          "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn stored_objects_keep_only_what_weir_reads() {
        let mut pod: DynamicObject = serde_json::from_value(full_pod()).unwrap();
        trim("Pod", &mut pod);
        assert!(pod.metadata.managed_fields.is_none());
        let annotations = pod.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["sidecar.istio.io/inject"]);
        assert_eq!(pod.metadata.labels.clone().unwrap().len(), 2);
        assert_eq!(pod.data, json!({"spec": {"nodeName": "node-1"}}));

        let mut node: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "z1"}},
            "status": {"images": [{"names": ["reviews:v1"], "sizeBytes": 1}]}}))
        .unwrap();
        trim("Node", &mut node);
        assert_eq!(node.data, json!({}));
        assert_eq!(node.metadata.labels.clone().unwrap()["topology.kubernetes.io/zone"], "z1");

        // Other kinds keep their data (a DestinationRule's spec is what weir reads).
        let mut dr: DynamicObject = serde_json::from_value(json!({"apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule", "metadata": {"name": "r", "namespace": "shop"},
            "spec": {"host": "reviews"}}))
        .unwrap();
        trim("DestinationRule", &mut dr);
        assert_eq!(dr.data, json!({"spec": {"host": "reviews"}}));
    }

    /// Against the stand-in API server: the trim runs on what the watch delivers, so a
    /// snapshot's Pod has its node and its own annotations, not `kubectl apply`'s copy.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watched_objects_are_trimmed_before_they_are_stored() {
        let api = FakeApiServer::start().await;
        api.apply(full_pod());
        let kubeconfig = std::env::temp_dir().join(format!("weir-kube-trim-{}.kubeconfig", std::process::id()));
        std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
        let options = KubeOptions { kubeconfig: Some(kubeconfig.clone()), ..KubeOptions::default() };
        let source = Arc::new(KubernetesSource::start(options, Duration::from_millis(10)).unwrap());
        let snap = source.clone();
        let report = tokio::task::spawn_blocking(move || snap.snapshot()).await.unwrap().report;
        let pod = report.core.iter().find(|o| o.name == "reviews-v1").expect("the Pod");
        assert_eq!(pod.spec, weir_model::k8s::CoreSpec::Pod { node_name: "node-1".into() });
        assert_eq!(pod.annotations.keys().collect::<Vec<_>>(), ["sidecar.istio.io/inject"]);
        let _ = std::fs::remove_file(&kubeconfig);
    }

    /// Against the testkit's stand-in API server (no cluster runs here): the gateway
    /// namespace's TLS Secrets become credential directories, follow rotations, and go
    /// when the Secret goes; other namespaces' Secrets are not written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_secrets_of_the_gateway_namespace_become_credential_files_and_follow_rotations() {
        let api = FakeApiServer::start().await;
        api.apply(secret("shop-cert", "edge", "CERT-1"));
        api.apply(secret("other-cert", "apps", "CERT-X"));
        let dir = std::env::temp_dir().join(format!("weir-kube-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kubeconfig = dir.with_extension("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
        let options = KubeOptions {
            kubeconfig: Some(kubeconfig.clone()),
            credentials: Some(dir.clone()),
            credentials_namespace: "edge".into(),
            ..KubeOptions::default()
        };
        let source = Arc::new(KubernetesSource::start(options, Duration::from_millis(10)).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let _sub = source
            .subscribe(Box::new(move || {
                let _ = tx.send(());
            }))
            .unwrap();
        let snap = source.clone();
        tokio::task::spawn_blocking(move || snap.snapshot()).await.unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("shop-cert/tls.crt")).unwrap(), "CERT-1");
        assert_eq!(std::fs::read_to_string(dir.join("shop-cert/tls.key")).unwrap(), "KEY");
        assert!(!dir.join("other-cert").exists());

        api.apply(secret("shop-cert", "edge", "CERT-2"));
        let wait = tokio::task::spawn_blocking(move || rx.recv_timeout(TEST_TIMEOUT).map(|_| rx));
        let rx = wait.await.unwrap().expect("the rotation is reported");
        let snap = source.clone();
        tokio::task::spawn_blocking(move || snap.snapshot()).await.unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("shop-cert/tls.crt")).unwrap(), "CERT-2");

        api.delete("secrets", "edge", "shop-cert");
        tokio::task::spawn_blocking(move || rx.recv_timeout(TEST_TIMEOUT))
            .await
            .unwrap()
            .expect("the deletion is reported");
        let snap = source.clone();
        tokio::task::spawn_blocking(move || snap.snapshot()).await.unwrap();
        assert!(!dir.join("shop-cert").exists());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&kubeconfig);
    }
}
