//! `weir new PATTERN`: the seven seed patterns as YAML from flags. Valid by
//! construction: every output is loaded and validated before it is printed, and flags
//! that would make it invalid (a weight over 100, a bad host) are refused with the
//! validator's own message and exit 64, as for any usage error.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(subcommand)]
    pattern: Pattern,
}

/// Where the resources live.
#[derive(Debug, ClapArgs)]
struct Common {
    /// The service (a short name, `name.namespace`, or an FQDN).
    #[arg(long)]
    host: String,
    /// Namespace of the resources (omitted: the file's reader decides, `default` for weir).
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Pattern {
    /// A weighted split between a stable and a canary subset (seed pattern 2).
    Canary {
        #[command(flatten)]
        c: Common,
        /// The stable subset.
        #[arg(long, default_value = "stable")]
        stable: String,
        /// The canary subset.
        #[arg(long, default_value = "canary")]
        canary: String,
        /// Percent of requests to the canary.
        #[arg(long, default_value_t = 10)]
        weight: u32,
        /// The pod label that tells the subsets apart.
        #[arg(long, default_value = "version")]
        label: String,
    },
    /// Requests with a header value to one subset, the rest to another (seed pattern 1).
    HeaderRoute {
        #[command(flatten)]
        c: Common,
        /// The header to match.
        #[arg(long, default_value = "end-user")]
        header: String,
        /// Its exact value.
        #[arg(long, default_value = "jason")]
        value: String,
        /// The subset matching requests go to.
        #[arg(long, default_value = "v2")]
        subset: String,
        /// The subset everyone else goes to.
        #[arg(long, default_value = "v1")]
        default_subset: String,
    },
    /// Connection-pool limits and outlier detection (seed pattern 3).
    CircuitBreaker {
        #[command(flatten)]
        c: Common,
        /// `tcp.maxConnections`.
        #[arg(long, default_value_t = 100)]
        max_connections: u32,
        /// `http.http1MaxPendingRequests`.
        #[arg(long, default_value_t = 100)]
        max_pending: u32,
        /// `http.http2MaxRequests`.
        #[arg(long, default_value_t = 1000)]
        max_requests: u32,
        /// `outlierDetection.consecutive5xxErrors`.
        #[arg(long, default_value_t = 5)]
        consecutive_errors: u32,
        /// `outlierDetection.baseEjectionTime`.
        #[arg(long, default_value = "30s")]
        ejection_time: String,
        /// `outlierDetection.maxEjectionPercent`.
        #[arg(long, default_value_t = 50)]
        max_ejection_percent: u32,
    },
    /// A route timeout with retries (seed pattern 4).
    Retry {
        #[command(flatten)]
        c: Common,
        /// The route timeout.
        #[arg(long, default_value = "10s")]
        timeout: String,
        /// Retry attempts.
        #[arg(long, default_value_t = 3)]
        attempts: u32,
        /// Per-try timeout.
        #[arg(long, default_value = "3s")]
        per_try_timeout: String,
        /// Retry conditions.
        #[arg(long, default_value = "connect-failure,refused-stream,unavailable,cancelled,retriable-4xx,503")]
        retry_on: String,
    },
    /// Traffic to one subset and a copy to another (seed pattern 5).
    Mirror {
        #[command(flatten)]
        c: Common,
        /// The subset that answers.
        #[arg(long, default_value = "v1")]
        subset: String,
        /// The subset that gets the copies.
        #[arg(long, default_value = "v2")]
        mirror_subset: String,
        /// Percent of requests copied.
        #[arg(long, default_value_t = 100.0)]
        percent: f64,
    },
    /// Delay some requests and abort others (seed pattern 6).
    Fault {
        #[command(flatten)]
        c: Common,
        /// The delay.
        #[arg(long, default_value = "5s")]
        delay: String,
        /// Percent of requests delayed.
        #[arg(long, default_value_t = 10.0)]
        delay_percent: f64,
        /// The abort status.
        #[arg(long, default_value_t = 503)]
        abort_status: u16,
        /// Percent of requests aborted.
        #[arg(long, default_value_t = 5.0)]
        abort_percent: f64,
    },
    /// An HTTPS ingress gateway with its certificate from a credential (seed pattern 7),
    /// and a VirtualService sending its hosts to a service.
    Gateway {
        /// The hosts the gateway serves (`*.example.com`, `shop.example.com`).
        #[arg(long, required = true)]
        host: Vec<String>,
        /// Namespace of the resources.
        #[arg(long)]
        namespace: Option<String>,
        /// The Gateway's name.
        #[arg(long, default_value = "my-gateway")]
        name: String,
        /// The credential holding tls.crt and tls.key.
        #[arg(long, default_value = "my-tls-secret")]
        credential: String,
        /// The HTTPS port.
        #[arg(long, default_value_t = 443)]
        port: u16,
        /// A service to route the hosts to (a VirtualService bound to the gateway).
        #[arg(long)]
        route_to: Option<String>,
    },
}

/// A YAML scalar for any text: plain when it reads back as the same string (names,
/// hosts, durations), else quoted (JSON strings are YAML): `*.example.com` (an alias
/// in YAML), `"1"`, `"true"`, anything with spaces or punctuation.
fn q(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { s.to_string() } else { serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()) }
}

fn metadata(name: &str, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("metadata:\n  name: {}\n  namespace: {}\n", q(name), q(ns)),
        None => format!("metadata:\n  name: {}\n", q(name)),
    }
}

/// A resource name from a host: its first label.
fn base(host: &str) -> String {
    let first = host.trim_start_matches("*.").split('.').next().unwrap_or(host);
    let clean: String =
        first.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.is_empty() { "service".into() } else { clean }
}

fn subsets_rule(c: &Common, name: &str, label: &str, subsets: &[&str], policy: &str) -> String {
    let mut s = format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n{}spec:\n  host: {}\n{policy}  subsets:\n",
        metadata(name, c.namespace.as_deref()),
        q(&c.host)
    );
    for sub in subsets {
        s.push_str(&format!("  - name: {}\n    labels:\n      {}: {}\n", q(sub), q(label), q(sub)));
    }
    s
}

fn virtual_service(c: &Common, name: &str, http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n{}spec:\n  hosts:\n  - {}\n  http:\n{http}",
        metadata(name, c.namespace.as_deref()),
        q(&c.host)
    )
}

fn render(p: &Pattern) -> Result<String, String> {
    Ok(match p {
        Pattern::Canary { c, stable, canary, weight, label } => {
            if *weight > 100 {
                return Err(format!("--weight {weight}: a percentage, 0 to 100"));
            }
            let b = base(&c.host);
            let http = format!(
                "  - route:\n    - destination:\n        host: {h}\n        subset: {s}\n      weight: {ws}\n    - destination:\n        host: {h}\n        subset: {k}\n      weight: {weight}\n",
                h = q(&c.host),
                s = q(stable),
                k = q(canary),
                ws = 100 - weight,
            );
            format!(
                "# {weight}% of requests to {host} go to its {canary} subset, the rest to {stable}.\n{}---\n{}",
                virtual_service(c, &format!("{b}-canary"), &http),
                subsets_rule(c, &b, label, &[stable, canary], ""),
                host = c.host,
            )
        }
        Pattern::HeaderRoute { c, header, value, subset, default_subset } => {
            let b = base(&c.host);
            let http = format!(
                "  - match:\n    - headers:\n        {hd}:\n          exact: {v}\n    route:\n    - destination:\n        host: {h}\n        subset: {s}\n  - route:\n    - destination:\n        host: {h}\n        subset: {d}\n",
                hd = q(&header.to_ascii_lowercase()),
                v = q(value),
                h = q(&c.host),
                s = q(subset),
                d = q(default_subset),
            );
            format!(
                "# Requests to {host} with {header}: {value} go to {subset}, everyone else to {default_subset}.\n{}---\n{}",
                virtual_service(c, &format!("{b}-route"), &http),
                subsets_rule(c, &b, "version", &[default_subset, subset], ""),
                host = c.host,
            )
        }
        Pattern::CircuitBreaker {
            c,
            max_connections,
            max_pending,
            max_requests,
            consecutive_errors,
            ejection_time,
            max_ejection_percent,
        } => {
            if *max_ejection_percent > 100 {
                return Err(format!("--max-ejection-percent {max_ejection_percent}: a percentage, 0 to 100"));
            }
            format!(
                "# Connection-pool limits and outlier detection for {host}.\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n{}spec:\n  host: {}\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: {max_connections}\n      http:\n        http1MaxPendingRequests: {max_pending}\n        http2MaxRequests: {max_requests}\n    outlierDetection:\n      consecutive5xxErrors: {consecutive_errors}\n      interval: 10s\n      baseEjectionTime: {}\n      maxEjectionPercent: {max_ejection_percent}\n",
                metadata(&format!("{}-circuit-breaker", base(&c.host)), c.namespace.as_deref()),
                q(&c.host),
                q(ejection_time),
                host = c.host,
            )
        }
        Pattern::Retry { c, timeout, attempts, per_try_timeout, retry_on } => {
            let http = format!(
                "  - route:\n    - destination:\n        host: {}\n    timeout: {}\n    retries:\n      attempts: {attempts}\n      perTryTimeout: {}\n      retryOn: {}\n",
                q(&c.host),
                q(timeout),
                q(per_try_timeout),
                q(retry_on),
            );
            format!(
                "# Requests to {host}: {timeout} in all, up to {attempts} retries of {per_try_timeout} each.\n{}",
                virtual_service(c, &format!("{}-retry", base(&c.host)), &http),
                host = c.host,
            )
        }
        Pattern::Mirror { c, subset, mirror_subset, percent } => {
            if !(0.0..=100.0).contains(percent) {
                return Err(format!("--percent {percent}: a percentage, 0 to 100"));
            }
            let b = base(&c.host);
            let http = format!(
                "  - route:\n    - destination:\n        host: {h}\n        subset: {s}\n    mirror:\n      host: {h}\n      subset: {m}\n    mirrorPercentage:\n      value: {percent:?}\n",
                h = q(&c.host),
                s = q(subset),
                m = q(mirror_subset),
            );
            format!(
                "# Requests to {host} go to {subset}; {percent}% are copied to {mirror_subset}.\n{}---\n{}",
                virtual_service(c, &format!("{b}-mirror"), &http),
                subsets_rule(c, &b, "version", &[subset, mirror_subset], ""),
                host = c.host,
            )
        }
        Pattern::Fault { c, delay, delay_percent, abort_status, abort_percent } => {
            for (flag, v) in [("--delay-percent", delay_percent), ("--abort-percent", abort_percent)] {
                if !(0.0..=100.0).contains(v) {
                    return Err(format!("{flag} {v}: a percentage, 0 to 100"));
                }
            }
            let http = format!(
                "  - fault:\n      delay:\n        percentage:\n          value: {delay_percent:?}\n        fixedDelay: {}\n      abort:\n        percentage:\n          value: {abort_percent:?}\n        httpStatus: {abort_status}\n    route:\n    - destination:\n        host: {}\n",
                q(delay),
                q(&c.host),
            );
            format!(
                "# Requests to {host}: {delay_percent}% delayed by {delay}, {abort_percent}% answered {abort_status}.\n{}",
                virtual_service(c, &format!("{}-fault", base(&c.host)), &http),
                host = c.host,
            )
        }
        Pattern::Gateway { host, namespace, name, credential, port, route_to } => {
            let hosts: String = host.iter().map(|h| format!("    - {}\n", q(h))).collect();
            let mut s = format!(
                "# HTTPS on port {port} for {}, the certificate from the credential {credential:?}\n# (`weir run --credentials DIR` reads DIR/{credential}/tls.crt and tls.key).\napiVersion: networking.istio.io/v1\nkind: Gateway\n{}spec:\n  selector:\n    istio: ingressgateway\n  servers:\n  - port:\n      number: {port}\n      name: https\n      protocol: HTTPS\n    tls:\n      mode: SIMPLE\n      credentialName: {}\n    hosts:\n{hosts}",
                host.join(", "),
                metadata(name, namespace.as_deref()),
                q(credential),
            );
            if let Some(svc) = route_to {
                let vs_hosts: String = host.iter().map(|h| format!("  - {}\n", q(h))).collect();
                s.push_str(&format!(
                    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n{}spec:\n  hosts:\n{vs_hosts}  gateways:\n  - {}\n  http:\n  - route:\n    - destination:\n        host: {}\n",
                    metadata(&format!("{}-{}", name, base(svc)), namespace.as_deref()),
                    q(name),
                    q(svc),
                ));
            }
            s
        }
    })
}

pub(crate) fn run(args: &Args) -> ExitCode {
    #[allow(clippy::print_stderr, clippy::print_stdout)]
    match render(&args.pattern) {
        Err(e) => {
            eprintln!("weir new: {e}");
            ExitCode::from(64)
        }
        Ok(text) => {
            // Valid by construction: what would not validate is not printed.
            let report = weir_model::load_str("weir-new.yaml", &text);
            if report.diagnostics.iter().any(|d| d.severity != weir_model::Severity::Info) {
                for d in &report.diagnostics {
                    eprintln!("weir new: {}: {}", d.path, d.message);
                }
                eprintln!("weir new: these flags do not make a valid configuration");
                return ExitCode::from(64);
            }
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}
