//! A stand-in for a Kubernetes API server, on loopback: no real cluster can run on these
//! machines, so tests point the real kube client at this. It speaks the wire protocol
//! as the API reference describes it: lists (`{kind}List` with
//! `metadata.resourceVersion`), chunked watch streams of newline-delimited
//! `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}` events starting after
//! the `resourceVersion` asked for, `410 Gone` (an ERROR event with a `Status`) when
//! that version is too old, and discovery (`/api`, `/apis`, `/apis/{group}/{version}`).
//!
//! Objects are JSON values; tests put, replace and delete them and every open watch
//! hears of it. [`FakeApiServer::expire_history`] makes older versions Gone (a relist),
//! and [`FakeApiServer::restart`] drops every connection and the listener, then serves
//! again on the same port (an API-server restart).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::body::{TestBody, channel_body, full_body};
use crate::server::{Handler, ServerTask};

/// A resource collection: where it is served and what its objects are called.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Collection {
    /// `""` for core, else the API group.
    pub group: String,
    /// `v1`, `v1beta1`...
    pub version: String,
    /// Lower-case plural (`services`).
    pub plural: String,
    /// Kind (`Service`).
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Collection {
    fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

/// Every collection weir reads.
pub fn collections() -> Vec<Collection> {
    let c = |group: &str, version: &str, plural: &str, kind: &str, namespaced: bool| Collection {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        kind: kind.into(),
        namespaced,
    };
    let mut out = vec![
        c("", "v1", "services", "Service", true),
        c("", "v1", "pods", "Pod", true),
        c("", "v1", "secrets", "Secret", true),
        c("", "v1", "namespaces", "Namespace", false),
        c("", "v1", "nodes", "Node", false),
        c("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true),
    ];
    for (plural, kind) in [
        ("virtualservices", "VirtualService"),
        ("destinationrules", "DestinationRule"),
        ("gateways", "Gateway"),
        ("serviceentries", "ServiceEntry"),
        ("workloadentries", "WorkloadEntry"),
        ("sidecars", "Sidecar"),
    ] {
        out.push(c("networking.istio.io", "v1", plural, kind, true));
    }
    out
}

#[derive(Debug, Clone)]
struct Change {
    version: u64,
    plural: String,
    kind: &'static str,
    object: Value,
}

#[derive(Debug, Default)]
struct State {
    version: u64,
    /// Versions older than this are Gone.
    oldest: u64,
    /// plural -> "ns/name" -> object.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    history: Vec<Change>,
}

/// The stand-in API server.
#[derive(Debug)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Change>,
    server: Mutex<Option<Arc<ServerTask>>>,
    addr: SocketAddr,
}

impl FakeApiServer {
    /// Starts serving every collection of [`collections`], empty.
    pub async fn start() -> FakeApiServer {
        let state = Arc::new(Mutex::new(State { version: 1, ..State::default() }));
        let (events, _) = broadcast::channel(4096);
        let server = serve(state.clone(), events.clone(), None).await;
        let addr = server.addr();
        FakeApiServer { state, events, server: Mutex::new(Some(Arc::new(server))), addr }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds or replaces an object (ADDED or MODIFIED to watchers). `object` carries its
    /// `apiVersion`, `kind` and `metadata`; it is given a new `resourceVersion`.
    pub fn apply(&self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let Some(col) = collections().into_iter().find(|c| c.kind == kind && object["apiVersion"] == c.api_version())
        else {
            panic!("the fake API server does not serve {kind} {}", object["apiVersion"]);
        };
        let key = key_of(&object);
        let mut st = self.state.lock().unwrap();
        st.version += 1;
        let version = st.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let existed = st.objects.entry(col.plural.clone()).or_default().insert(key, object.clone()).is_some();
        let change = Change { version, plural: col.plural, kind: if existed { "MODIFIED" } else { "ADDED" }, object };
        st.history.push(change.clone());
        drop(st);
        let _ = self.events.send(change);
    }

    /// Deletes an object (DELETED to watchers).
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        let Some(mut object) = st.objects.get_mut(plural).and_then(|m| m.remove(&format!("{namespace}/{name}"))) else {
            return;
        };
        st.version += 1;
        let version = st.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let change = Change { version, plural: plural.into(), kind: "DELETED", object };
        st.history.push(change.clone());
        drop(st);
        let _ = self.events.send(change);
    }

    /// Makes every version up to now too old: a watch from one of them gets `410 Gone`
    /// and must list again.
    pub fn expire_history(&self) {
        let mut st = self.state.lock().unwrap();
        st.oldest = st.version + 1;
        st.history.clear();
        drop(st);
        // Open watches are told too (as an API server compacting its history does).
        let _ = self.events.send(Change { version: 0, plural: String::new(), kind: "ERROR", object: gone() });
    }

    /// Stops serving (closing every connection), then serves the same objects again on
    /// the same port: an API-server restart.
    pub async fn restart(&self) {
        let old = self.server.lock().unwrap().take();
        if let Some(old) = old {
            old.stop().await;
        }
        let server = serve(self.state.clone(), self.events.clone(), Some(self.addr)).await;
        *self.server.lock().unwrap() = Some(Arc::new(server));
    }

    /// A kubeconfig file's text pointing at this server, for `--kubeconfig`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: default}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url()
        )
    }
}

fn key_of(object: &Value) -> String {
    let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    format!("{ns}/{name}")
}

fn gone() -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Expired", "code": 410,
           "message": "too old resource version"})
}

async fn serve(state: Arc<Mutex<State>>, events: broadcast::Sender<Change>, at: Option<SocketAddr>) -> ServerTask {
    let make = move |_addr: SocketAddr| -> Handler {
        Arc::new(move |req: Request<Incoming>| {
            let state = state.clone();
            let events = events.clone();
            Box::pin(async move { handle(req, state, events).await })
        })
    };
    match at {
        None => ServerTask::start(make).await,
        Some(addr) => ServerTask::start_at(addr, make).await,
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response<TestBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full_body(Bytes::from(v.to_string())))
        .expect("valid response")
}

/// `/api/v1/...`, `/apis/{group}/{version}/...`: the collection, the namespace, and
/// whether the path names one object.
fn route(path: &str) -> Option<(Collection, Option<String>, Option<String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (ns, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(ns.to_string()), *plural, None),
        ["namespaces", ns, plural, name] => (Some(ns.to_string()), *plural, Some(name.to_string())),
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(name.to_string())),
        _ => return None,
    };
    let col = collections().into_iter().find(|c| c.group == group && c.version == version && c.plural == plural)?;
    Some((col, ns, name))
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Change>,
) -> Response<TestBody> {
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = req.into_body().collect().await;
    if path == "/api" {
        return json_response(StatusCode::OK, &json!({"kind": "APIVersions", "versions": ["v1"]}));
    }
    if path == "/apis" {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in collections().into_iter().filter(|c| !c.group.is_empty()) {
            groups.entry(c.group).or_default().push(c.version);
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(g, mut v)| {
                v.dedup();
                let versions: Vec<Value> =
                    v.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
                json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
            })
            .collect();
        return json_response(StatusCode::OK, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
    }
    let Some((col, ns, name)) = route(&path) else {
        // Discovery of one group version.
        let gv = path.trim_start_matches("/apis/").trim_start_matches("/api/");
        let resources: Vec<Value> = collections()
            .into_iter()
            .filter(|c| c.api_version() == gv)
            .map(|c| {
                json!({"name": c.plural, "kind": c.kind, "namespaced": c.namespaced,
                            "verbs": ["get", "list", "watch"]})
            })
            .collect();
        if resources.is_empty() {
            return json_response(StatusCode::NOT_FOUND, &json!({"kind": "Status", "code": 404, "status": "Failure"}));
        }
        return json_response(
            StatusCode::OK,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        );
    };
    let scope = ns.clone();
    let in_scope = move |o: &Value| scope.as_deref().is_none_or(|n| o["metadata"]["namespace"] == n);
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let from: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| b == "true");
        let (tx, body) = channel_body();
        let mut rx = events.subscribe();
        let (backlog, expired) = {
            let st = state.lock().unwrap();
            let backlog: Vec<Change> =
                st.history.iter().filter(|c| c.version > from && c.plural == col.plural).cloned().collect();
            (backlog, from != 0 && from < st.oldest)
        };
        tokio::spawn(async move {
            let line =
                |kind: &str, object: &Value| Bytes::from(format!("{}\n", json!({"type": kind, "object": object})));
            if expired {
                let _ = tx.send_data(line("ERROR", &gone())).await;
                return;
            }
            let mut last = from;
            for c in backlog.iter().filter(|c| in_scope(&c.object)) {
                last = c.version;
                if tx.send_data(line(c.kind, &c.object)).await.is_err() {
                    return;
                }
            }
            if bookmarks {
                let mark = json!({"apiVersion": col.api_version(), "kind": col.kind,
                                  "metadata": {"resourceVersion": last.max(from).to_string()}});
                let _ = tx.send_data(line("BOOKMARK", &mark)).await;
            }
            while let Ok(c) = rx.recv().await {
                if c.kind == "ERROR" {
                    let _ = tx.send_data(line("ERROR", &c.object)).await;
                    return;
                }
                if c.plural != col.plural || c.version <= last || !in_scope(&c.object) {
                    continue;
                }
                last = c.version;
                if tx.send_data(line(c.kind, &c.object)).await.is_err() {
                    return;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(body)
            .expect("valid response");
    }
    let st = state.lock().unwrap();
    let objects = st.objects.get(&col.plural);
    if let Some(name) = name {
        let key = format!("{}/{name}", ns.as_deref().unwrap_or(""));
        return match objects.and_then(|m| m.get(&key)) {
            Some(o) => json_response(StatusCode::OK, o),
            None => json_response(StatusCode::NOT_FOUND, &json!({"kind": "Status", "code": 404, "status": "Failure"})),
        };
    }
    let items: Vec<Value> = objects.into_iter().flat_map(|m| m.values()).filter(|o| in_scope(o)).cloned().collect();
    json_response(
        StatusCode::OK,
        &json!({"apiVersion": col.api_version(), "kind": format!("{}List", col.kind),
                "metadata": {"resourceVersion": st.version.to_string()}, "items": items}),
    )
}
