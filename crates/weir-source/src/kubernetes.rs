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
use weir_model::{LoadReport, check_duplicates, load_str};

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
        Ok(KubernetesSource { shared, describe, _stop: stop_tx })
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
                let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
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
                    report.extend(load_str(&name, &value.to_string()));
                }
            }
        }
        let dups = check_duplicates(&mut report.resources);
        report.diagnostics.extend(dups);
        Snapshot { report, unreadable: Vec::new(), partial: true }
    }

    fn subscribe(&self, changed: Box<dyn Fn() + Send>) -> Result<Option<Subscription>, String> {
        self.shared.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(changed);
        Ok(Some(Box::new(())))
    }
}
