//! `weir run`: load, compile, serve, watch, reload, drain.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use std::sync::Arc;

use weir_compile::Instance;
use weir_model::k8s::CoreObject;
use weir_model::place::{Unplaced, place_all};
use weir_model::{Diagnostic, Resource, Severity};
use weir_proxy::telemetry::{Format, SourceLabels};
use weir_proxy::{Proxy, ProxyConfig};
use weir_source::{FileSource, KubeOptions, KubernetesSource, Source};

/// How long the watcher waits for a burst of file events to end before a reload.
/// Editors and ConfigMap updates write, rename and swap within a millisecond or two;
/// a longer wait only delays the change (a reload that starts mid-burst is followed
/// by another, and reloads never overlap).
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(10);

/// Access-log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Istio's default text format.
    Text,
    /// One JSON object per line.
    Json,
    /// No access log.
    Off,
}

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    /// Configuration files or directories (watched for changes).
    #[arg(short = 'c', long = "config", required_unless_present = "kubernetes", num_args = 1.., value_name = "PATH")]
    pub(crate) config: Vec<PathBuf>,
    /// Read the configuration from the Kubernetes API server instead: the Istio
    /// networking resources, Services, EndpointSlices, Pods, Nodes and Secrets, watched.
    /// The kubeconfig as client-go finds it (`KUBECONFIG`, `~/.kube/config`), else the
    /// in-cluster service account.
    #[arg(long, conflicts_with = "config")]
    pub(crate) kubernetes: bool,
    /// The kubeconfig file (with --kubernetes).
    #[arg(long, value_name = "PATH", requires = "kubernetes")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (with --kubernetes).
    #[arg(long, value_name = "NAME", requires = "kubernetes")]
    pub(crate) context: Option<String>,
    /// Only these namespaces (with --kubernetes; default: all).
    #[arg(long, value_name = "NS,...", value_delimiter = ',', requires = "kubernetes")]
    pub(crate) namespaces: Vec<String>,
    /// This instance's workload labels (Gateway `selector`, match `sourceLabels`).
    #[arg(long, value_name = "K=V,...", default_value = "istio=ingressgateway", value_parser = parse_labels)]
    pub(crate) labels: BTreeMap<String, String>,
    /// This instance's namespace (visibility, short names, `sourceNamespace`).
    #[arg(long, default_value = "istio-system")]
    pub(crate) namespace: String,
    /// Serve the mesh (sidecar outbound) routes on this address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) mesh_listener: Option<SocketAddr>,
    /// Admin API address (`/ready`, `/config_dump`, `/stats/prometheus`, `/clusters`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15000")]
    pub(crate) admin: SocketAddr,
    /// IP that Gateway servers without `bind` listen on.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    pub(crate) listen_address: IpAddr,
    /// Access-log format (lines go to stdout).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) access_log_format: LogFormat,
    /// How long in-flight requests may take to finish on shutdown.
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    pub(crate) drain_seconds: u64,
    /// Worker threads (default: the CPUs this process may run on).
    #[arg(long, value_name = "N")]
    pub(crate) concurrency: Option<usize>,
    /// Seed the per-request random draws (weighted splits, load balancing, retry
    /// back-off), so a run can be reproduced.
    #[arg(long, value_name = "N", env = "WEIR_SEED")]
    pub(crate) seed: Option<u64>,
    /// Mirror requests with Envoy's `-shadow` suffix on their Host, as Istio did before
    /// 1.28 (current Istio keeps the Host as it is).
    #[arg(long)]
    pub(crate) shadow_host_suffix: bool,
    /// Directory of TLS credentials for Gateway and DestinationRule `credentialName`s:
    /// DIR/<name>/ holds tls.crt and tls.key (a Kubernetes TLS secret's keys; also cert
    /// and key) and ca.crt (or cacert, or DIR/<name>-cacert/ca.crt): the CA for MUTUAL
    /// servers' clients, or for the upstreams weir originates TLS to. Files are watched:
    /// a rotated certificate serves new connections without a restart. With
    /// --kubernetes, weir writes the TLS Secrets of its --namespace there itself.
    #[arg(long, value_name = "DIR")]
    pub(crate) credentials: Option<PathBuf>,
}

pub(crate) fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("label {pair:?} must be key=value"))?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

/// Logs the compiler's notes at their fields: the files they name are read again (only
/// those) to find the line and column.
pub(crate) fn log_compile_notes(mut notes: Vec<weir_compile::CompileNote>) {
    if notes.is_empty() {
        return;
    }
    let mut items: Vec<Unplaced<'_>> =
        notes.iter_mut().map(|n| Unplaced { diagnostic: &mut n.diagnostic, path: &n.field }).collect();
    place_all(&mut items, |file| std::fs::read_to_string(file).ok());
    for n in &notes {
        if n.diagnostic.file.is_empty() {
            tracing::warn!("{}[{}]: {}", n.diagnostic.severity, n.diagnostic.code, n.diagnostic.message);
        } else {
            log_diagnostic(&n.diagnostic);
        }
    }
}

fn log_diagnostic(d: &Diagnostic) {
    let first = d.to_string().lines().next().unwrap_or("").to_string();
    match d.severity {
        Severity::Error => tracing::error!("{first}"),
        Severity::Warning => tracing::warn!("{first}"),
        Severity::Info => tracing::debug!("{first}"),
    }
}

/// A snapshot's resources when it is whole and valid; every finding is logged.
fn load(source: &dyn Source) -> Result<Loaded, String> {
    let snapshot = source.snapshot();
    for d in &snapshot.report.diagnostics {
        log_diagnostic(d);
    }
    // Resources with an error: left out when the source serves the rest (Kubernetes).
    let rejected: std::collections::HashSet<(&str, &str, &str)> = snapshot
        .report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .filter_map(|d| Some((d.kind.as_deref()?, d.namespace.as_deref().unwrap_or(""), d.name.as_deref()?)))
        .collect();
    let rejected = rejected.len() as u64;
    snapshot.usable().map(|(resources, core)| Loaded { resources, core, rejected })
}

/// A usable snapshot.
struct Loaded {
    resources: Vec<Resource>,
    core: Vec<CoreObject>,
    /// Resources left out for not validating.
    rejected: u64,
}

pub(crate) fn instance(args: &Args) -> Instance {
    Instance {
        labels: args.labels.clone(),
        namespace: args.namespace.clone(),
        mesh: args.mesh_listener.is_some(),
        ..Instance::default()
    }
}

pub(crate) fn proxy_config(args: &Args) -> ProxyConfig {
    // The workload name Istio reports for a gateway is its deployment's,
    // `istio-ingressgateway` for the default `istio=ingressgateway` labels.
    let app = match (args.labels.get("app"), args.labels.get("istio")) {
        (Some(app), _) => app.clone(),
        (None, Some(istio)) => format!("istio-{istio}"),
        (None, None) => "unknown".into(),
    };
    let canonical = weir_proxy::telemetry::canonical(|k| args.labels.get(k).map(String::as_str), &app);
    ProxyConfig {
        mesh_listener: args.mesh_listener,
        gateway_address: args.listen_address,
        access_log: match args.access_log_format {
            LogFormat::Text => Format::Text,
            LogFormat::Json => Format::Json,
            LogFormat::Off => Format::Off,
        },
        source: SourceLabels {
            workload: app.clone(),
            namespace: args.namespace.clone(),
            canonical_service: canonical.0.to_string(),
            canonical_revision: canonical.1.to_string(),
            version: args.labels.get("version").cloned().unwrap_or_else(|| "unknown".into()),
            app,
        },
        hostname: std::env::var("HOSTNAME").unwrap_or_else(|_| "weir".into()),
        workers: args.concurrency.unwrap_or(0),
        seed: args.seed,
        shadow_host_suffix: args.shadow_host_suffix,
        credentials: args.credentials.clone(),
    }
}

/// The `ready` line on stdout: JSON with the bound addresses, for scripts and tests.
fn ready_line(proxy: &Proxy, admin: Option<SocketAddr>) {
    let listeners: serde_json::Map<String, serde_json::Value> =
        proxy.addresses().into_iter().map(|(n, a)| (n, serde_json::Value::String(a.to_string()))).collect();
    let line = serde_json::json!({"ready": true, "admin": admin.map(|a| a.to_string()), "listeners": listeners});
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Runs until SIGINT/SIGTERM.
pub(crate) fn run(args: Args) -> ExitCode {
    init_logging();
    // This runtime only reloads and serves the admin API; the proxy's worker threads
    // (`--concurrency`) accept and serve the traffic.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let source: Arc<dyn Source> = if args.kubernetes {
        let options = KubeOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            namespaces: args.namespaces.clone(),
            credentials: args.credentials.clone(),
            credentials_namespace: args.namespace.clone(),
        };
        match KubernetesSource::start(options, RELOAD_DEBOUNCE) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!("cannot read from Kubernetes: {e}; not starting");
                return ExitCode::from(1);
            }
        }
    } else {
        Arc::new(FileSource::new(args.config.clone(), RELOAD_DEBOUNCE))
    };
    rt.block_on(serve(args, source))
}

/// Serves `args` from `source`, reloading whenever the source says it changed: a
/// snapshot that does not validate is rejected and the last good table keeps serving.
/// The one reload loop for every source (files, the demo's fixed resources).
pub(crate) async fn serve(args: Args, source: Arc<dyn Source>) -> ExitCode {
    let proxy = Proxy::new(proxy_config(&args));
    // The admin port carries readiness: without it the instance cannot report ready, so
    // it does not start (like a listener port that cannot be bound). It is up before
    // the first load, answering `/ready` with 503 until the table is installed (a
    // Kubernetes source's first full list may take a while; probes see it alive).
    let admin = match proxy.serve_admin(args.admin) {
        Ok(a) => {
            tracing::info!(address = %a, "admin");
            Some(a)
        }
        Err(e) => {
            tracing::error!(
                "cannot bind the admin address {}: {e} (another weir may hold it; choose one with --admin ADDR)",
                args.admin
            );
            return ExitCode::from(2);
        }
    };
    // Off the runtime: a source may block until its first full read (Kubernetes).
    let first = source.clone();
    let Loaded { resources, core, rejected } = match tokio::task::spawn_blocking(move || load(first.as_ref())).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!("{e}; not starting");
            return ExitCode::from(1);
        }
        Err(e) => {
            tracing::error!("loading failed: {e}; not starting");
            return ExitCode::from(1);
        }
    };
    if resources.is_empty() && core.is_empty() {
        tracing::warn!(
            "no Istio resources found in the configuration (looked for *.yaml, *.yml and *.json); \
             every request gets 404 until some are added"
        );
    }
    let inst = instance(&args);
    let mut version = 1;
    let weir_compile::Compiled { table, diagnostics, inputs } =
        weir_compile::compile_with(resources, &core, &inst, version);
    log_compile_notes(diagnostics);
    let errors = proxy.install(table);
    proxy.record_config(errors.is_empty(), rejected);
    if !errors.is_empty() {
        for e in &errors {
            tracing::error!("{e}");
        }
        return ExitCode::from(2);
    }
    ready_line(&proxy, admin);
    // Freed once the table serves (see `Compiled::inputs`).
    drop(inputs);
    crate::memory::release_unused();

    // Reloads: the source's thread pokes a channel; reloads run one at a time.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let _subscription = match source.subscribe(Box::new(move || {
        let _ = tx.try_send(());
    })) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("not watching {} for changes: {e}", source.describe());
            None
        }
    };
    let reload_proxy = proxy.clone();
    let reload_args = args.clone();
    let reloader = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            let source = source.clone();
            let started = std::time::Instant::now();
            let loaded = tokio::task::spawn_blocking(move || {
                let r = load(source.as_ref());
                crate::memory::release_unused();
                r
            })
            .await;
            match loaded {
                Ok(Ok(Loaded { resources, core, rejected })) => {
                    version += 1;
                    let loaded_at = started.elapsed();
                    let inst = instance(&reload_args);
                    let weir_compile::Compiled { table, diagnostics, inputs } =
                        weir_compile::compile_with(resources, &core, &inst, version);
                    let compiled_at = started.elapsed();
                    log_compile_notes(diagnostics);
                    let errors = reload_proxy.install(table);
                    let installed_at = started.elapsed();
                    // The new table serves from here; the compile's inputs go now.
                    drop(inputs);
                    reload_proxy.record_config(errors.is_empty(), rejected);
                    for e in &errors {
                        tracing::error!("{e}");
                    }
                    crate::memory::release_unused();
                    crate::memory::release_startup_code();
                    // Where a reload spends its time, for whoever tunes a large mesh.
                    tracing::info!(
                        version,
                        load_ms = loaded_at.as_millis() as u64,
                        compile_ms = (compiled_at - loaded_at).as_millis() as u64,
                        install_ms = (installed_at - compiled_at).as_millis() as u64,
                        "configuration reloaded"
                    );
                }
                Ok(Err(e)) => {
                    reload_proxy.record_config(false, 0);
                    tracing::error!("{e}; the change is rejected and the previous configuration keeps serving")
                }
                Err(e) => tracing::error!("reload failed: {e}"),
            }
        }
    });

    // Start-up is over: its code need not stay resident.
    crate::memory::release_startup_code();
    wait_for_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    reloader.abort();
    proxy.shutdown(Duration::from_secs(args.drain_seconds)).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
