//! Decide: the pure half of the request path. From the table, the request head and what
//! is known of the connection, [`decide`] works out everything the proxy will do: the
//! route, the weighted destination, the cluster, the timeouts, the retry policy in
//! force and the consistent-hash key. The proxy then only executes the [`Plan`]; `weir
//! explain` prints the same plan without sending anything.
//!
//! Nothing here does I/O or reads a clock. Random draws (the weighted pick, a generated
//! affinity cookie) come from the caller's [`Dice`], so a test or `--seed` makes them
//! reproducible.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use xxhash_rust::xxh64::xxh64;

use crate::action::{AbortStatus, Action, DirectResponse, Forward, MirrorPolicy, Redirect, WeightedCluster};
use crate::cluster::{ClusterId, HashKey, LbPolicy};
use crate::retry::{RetryOn, RetryPolicy};
use crate::route::{Listener, NoRoute, RequestView, Route, RouteTable, VirtualHost};

/// A source of uniformly distributed random numbers.
pub trait Dice {
    /// The next draw.
    fn roll(&mut self) -> u64;
}

impl<F: FnMut() -> u64> Dice for F {
    fn roll(&mut self) -> u64 {
        self()
    }
}

/// What the proxy knows about the request beyond its head.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The downstream peer.
    pub peer: SocketAddr,
    /// The request arrived at the edge (a gateway): Envoy treats such clients as
    /// external and ignores (strips) their `x-envoy-*` control headers.
    pub edge: bool,
    /// `content-type: application/grpc...`.
    pub grpc: bool,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Decision<'t> {
    /// No virtual host or no route matched: 404 `NR`.
    NoRoute(NoRoute),
    /// The virtual host only takes TLS (Gateway `httpsRedirect`): 301 to `https`.
    RequireTls,
    /// Answer with a redirect.
    Redirect {
        /// The route.
        route: &'t Route,
        /// The redirect.
        redirect: &'t Redirect,
        /// The port routing saw.
        port: u16,
    },
    /// Answer with a fixed response.
    Direct {
        /// The route.
        route: &'t Route,
        /// The response.
        response: &'t DirectResponse,
    },
    /// Forward upstream.
    Forward(Plan<'t>),
}

/// How a forwarded request is to be carried.
#[derive(Debug)]
pub struct Plan<'t> {
    /// The virtual host.
    pub vhost: &'t VirtualHost,
    /// The route.
    pub route: &'t Route,
    /// Its forwarding action.
    pub forward: &'t Forward,
    /// The weighted destination drawn.
    pub destination: &'t WeightedCluster,
    /// Its cluster for this request's port (`None`: 503 `NC`).
    pub cluster: Option<ClusterId>,
    /// The service port routing saw.
    pub port: u16,
    /// Timeouts in force.
    pub timeouts: Timeouts,
    /// Retries in force (`None`: a single try).
    pub retry: Option<RetryPlan<'t>>,
    /// The consistent-hash input, when the cluster hashes.
    pub affinity: Affinity,
    /// The faults drawn for this request.
    pub fault: Fault,
    /// The mirrors drawn for this request.
    pub mirrors: Vec<&'t MirrorPolicy>,
    /// The request carries Envoy control headers (`x-envoy-retry-on`,
    /// `x-envoy-upstream-rq-timeout-ms`...) that must not go upstream.
    pub strip_control_headers: bool,
}

/// The faults a request gets, drawn from the route's fault policy (Envoy's fault
/// filter draws the delay, then the abort, each on its own share).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    /// Wait this long before going on (`DI`).
    pub delay: Option<Duration>,
    /// Then answer with this instead of going upstream (`FI`).
    pub abort: Option<AbortStatus>,
}

/// The timeouts of a forwarded request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Covers every try and the response body; starts when the request has been
    /// received whole (`None`: no limit).
    pub global: Option<Duration>,
    /// Covers one try until its response starts (`None`: no limit).
    pub per_try: Option<Duration>,
    /// gRPC request: rewrite `grpc-timeout` upstream to the expected timeout (Istio sets
    /// `max_grpc_timeout` on every route).
    pub rewrite_grpc_timeout: bool,
}

impl Timeouts {
    /// What `x-envoy-expected-rq-timeout-ms` advertises upstream: the per-try timeout,
    /// else what is left of the global one.
    pub fn expected(&self, elapsed: Duration) -> Option<Duration> {
        match (self.per_try, self.global) {
            (Some(p), Some(g)) => Some(p.min(g.saturating_sub(elapsed)).max(Duration::from_millis(1))),
            (Some(p), None) => Some(p),
            (None, Some(g)) => Some(g.saturating_sub(elapsed).max(Duration::from_millis(1))),
            (None, None) => None,
        }
    }
}

/// The retry policy in force for one request: the route's, with what the request's own
/// `x-envoy-retry-on`/`x-envoy-max-retries`/`x-envoy-retriable-*` headers add (mesh
/// requests only, as Envoy honours them only from internal clients).
#[derive(Debug, Clone)]
pub struct RetryPlan<'t> {
    /// Retries allowed after the first try.
    pub attempts: u32,
    /// Conditions in force (`retriable-status-codes` without codes and
    /// `retriable-headers` without names removed: they never fire).
    pub retry_on: RetryOn,
    /// The route's retriable status codes.
    pub status_codes: &'t [u16],
    /// Codes from `x-envoy-retriable-status-codes`.
    pub extra_status_codes: Vec<u16>,
    /// Names from `x-envoy-retriable-header-names`.
    pub header_names: Vec<HeaderName>,
    /// Base and cap of the back-off.
    pub backoff: (Duration, Duration),
    /// Prefer hosts not tried yet.
    pub previous_hosts: bool,
    /// Picks a retry makes to find such a host.
    pub host_selection_attempts: u32,
}

impl RetryPlan<'_> {
    /// True when `code` is one of the retriable status codes.
    pub fn retriable_code(&self, code: u16) -> bool {
        self.status_codes.contains(&code) || self.extra_status_codes.contains(&code)
    }
}

/// The consistent-hash input of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Affinity {
    /// xxHash64 of the key's value (`None`: the key is absent, the balancer picks at
    /// random as Envoy does).
    pub hash: Option<u64>,
    /// A `Set-Cookie` value to send back: the cookie key was missing and has a `ttl`.
    pub new_cookie: Option<HeaderValue>,
}

/// Chooses what happens to a request on `listener` (a listener of `table`).
pub fn decide<'t>(
    table: &'t RouteTable,
    listener: &'t Listener,
    req: &RequestView<'_>,
    facts: &Facts,
    dice: &mut impl Dice,
) -> Decision<'t> {
    let routed = match listener.route(req) {
        Ok(r) => r,
        Err(e) => return Decision::NoRoute(e),
    };
    if routed.vhost.require_tls {
        return Decision::RequireTls;
    }
    let route = routed.route;
    let forward = match &*route.action {
        Action::Redirect(redirect) => return Decision::Redirect { route, redirect, port: routed.view.port },
        Action::Direct(response) => return Decision::Direct { route, response },
        Action::Forward(f) => f,
    };
    let destination = forward.pick((dice.roll() >> 32) as u32);
    let port = routed.view.port;
    let cluster = destination.cluster.resolve(port);
    let control = if facts.edge { Control::default() } else { Control::read(req.headers) };
    let affinity = match cluster.map(|id| &table.cluster(id).lb) {
        Some(LbPolicy::RingHash { key, .. } | LbPolicy::Maglev { key, .. }) => affinity(key, req, facts.peer, dice),
        _ => Affinity::default(),
    };
    let fault = match &forward.fault {
        None => Fault::default(),
        Some(f) => Fault {
            delay: f.delay.as_ref().filter(|d| d.share.hit(dice.roll())).map(|d| d.duration),
            abort: f.abort.as_ref().filter(|a| a.share.hit(dice.roll())).map(|a| a.status),
        },
    };
    let mirrors = forward.mirrors.iter().filter(|m| m.share.hit(dice.roll())).collect();
    Decision::Forward(Plan {
        vhost: routed.vhost,
        route,
        forward,
        destination,
        cluster,
        port,
        timeouts: timeouts(forward, req.headers, facts, &control),
        retry: retry_plan(forward.retry.as_ref(), &control),
        affinity,
        fault,
        mirrors,
        strip_control_headers: control.seen,
    })
}

/// Envoy's `finalTimeout`: the route timeout, or for gRPC the client's `grpc-timeout`
/// capped by it (Istio's `max_grpc_timeout` is the route timeout, 0 = uncapped); then the
/// request's `x-envoy-upstream-rq-timeout-ms` and `-per-try-timeout-ms` on mesh requests.
/// A per-try timeout not shorter than the global one is dropped.
fn timeouts(f: &Forward, headers: &HeaderMap, facts: &Facts, control: &Control) -> Timeouts {
    let route = f.timeout.filter(|t| !t.is_zero());
    let mut global = if facts.grpc {
        match (grpc_timeout(headers), route) {
            (Some(g), Some(r)) => Some(g.min(r)),
            (Some(g), None) => Some(g),
            (None, r) => r,
        }
    } else {
        route
    };
    if let Some(ms) = control.timeout_ms {
        global = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let mut per_try = f.retry.as_ref().and_then(|r| r.per_try_timeout).filter(|t| !t.is_zero());
    if let Some(ms) = control.per_try_timeout_ms {
        per_try = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let (Some(p), Some(g)) = (per_try, global)
        && p >= g
    {
        per_try = None;
    }
    Timeouts { global, per_try, rewrite_grpc_timeout: facts.grpc }
}

/// The `grpc-timeout` header (`<1-8 digits><H|M|S|m|u|n>`), rounded up to whole
/// milliseconds as Envoy does; absent, malformed or zero = none.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.as_bytes();
    let (digits, unit) = v.split_at_checked(v.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let d = match unit {
        b"H" => Duration::from_secs(n * 3600),
        b"M" => Duration::from_secs(n * 60),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_millis(n.div_ceil(1000)),
        b"n" => Duration::from_millis(n.div_ceil(1_000_000)),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// `grpc-timeout` text for `d` in whole milliseconds (larger units when the number would
/// not fit in eight digits).
pub fn grpc_timeout_text(d: Duration) -> String {
    let ms = d.as_millis().max(1) as u64;
    if ms < 100_000_000 {
        format!("{ms}m")
    } else if ms / 1000 < 100_000_000 {
        format!("{}S", ms / 1000)
    } else {
        format!("{}M", (ms / 60_000).min(99_999_999))
    }
}

/// The route's policy with the request's control headers applied.
fn retry_plan<'t>(policy: Option<&'t RetryPolicy>, control: &Control) -> Option<RetryPlan<'t>> {
    let mut plan = match policy {
        Some(p) => RetryPlan {
            attempts: p.attempts,
            retry_on: p.retry_on,
            status_codes: &p.retriable_status_codes,
            extra_status_codes: Vec::new(),
            header_names: Vec::new(),
            backoff: (p.backoff_base, p.backoff_max),
            previous_hosts: p.previous_hosts,
            host_selection_attempts: p.host_selection_attempts,
        },
        // A route without a policy retries only what the request asks for, with
        // Envoy's default of one retry.
        None if !control.retry_on.is_empty() => {
            let d = RetryPolicy::with_defaults(1, RetryOn::NONE);
            RetryPlan {
                attempts: 1,
                retry_on: RetryOn::NONE,
                status_codes: &[],
                extra_status_codes: Vec::new(),
                header_names: Vec::new(),
                backoff: (d.backoff_base, d.backoff_max),
                previous_hosts: false,
                host_selection_attempts: 1,
            }
        }
        None => return None,
    };
    plan.retry_on |= control.retry_on;
    if let Some(n) = control.max_retries
        && !plan.retry_on.is_empty()
    {
        plan.attempts = n;
    }
    plan.extra_status_codes.clone_from(&control.status_codes);
    plan.header_names.clone_from(&control.header_names);
    if plan.status_codes.is_empty() && plan.extra_status_codes.is_empty() {
        plan.retry_on = plan.retry_on.without(RetryOn::RETRIABLE_STATUS_CODES);
    }
    if plan.header_names.is_empty() {
        plan.retry_on = plan.retry_on.without(RetryOn::RETRIABLE_HEADERS);
    }
    (plan.attempts > 0 && !plan.retry_on.is_empty()).then_some(plan)
}

/// Envoy's control headers on a mesh request, read in one pass.
#[derive(Debug, Default)]
struct Control {
    seen: bool,
    timeout_ms: Option<u64>,
    per_try_timeout_ms: Option<u64>,
    retry_on: RetryOn,
    max_retries: Option<u32>,
    status_codes: Vec<u16>,
    header_names: Vec<HeaderName>,
}

impl Control {
    fn read(headers: &HeaderMap) -> Control {
        let mut c = Control::default();
        for (name, value) in headers {
            let Some(rest) = name.as_str().strip_prefix("x-envoy-") else { continue };
            let text = || std::str::from_utf8(value.as_bytes()).unwrap_or("").trim();
            match rest {
                "upstream-rq-timeout-ms" => c.timeout_ms = text().parse().ok(),
                "upstream-rq-per-try-timeout-ms" => c.per_try_timeout_ms = text().parse().ok(),
                "retry-on" | "retry-grpc-on" => c.retry_on |= RetryOn::parse_list(text()),
                "max-retries" => c.max_retries = text().parse().ok(),
                "retriable-status-codes" => {
                    c.status_codes.extend(text().split(',').filter_map(|t| t.trim().parse::<u16>().ok()))
                }
                "retriable-header-names" => c.header_names.extend(
                    text()
                        .split(',')
                        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok()),
                ),
                "hedge-on-per-try-timeout" => {}
                _ => continue,
            }
            c.seen = true;
        }
        c
    }
}

/// The names of the control headers Envoy removes before forwarding.
pub const CONTROL_HEADERS: [&str; 8] = [
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-hedge-on-per-try-timeout",
];

/// Envoy hashes header, cookie, query and source-IP keys with xxHash64, seed 0.
pub fn hash_value(v: &[u8]) -> u64 {
    xxh64(v, 0)
}

/// The consistent-hash input of a request (spec §3.5), and a cookie to set when the key
/// is a cookie that is absent and has a `ttl`.
fn affinity(key: &HashKey, req: &RequestView<'_>, peer: SocketAddr, dice: &mut impl Dice) -> Affinity {
    match key {
        HashKey::Header(name) => {
            Affinity { hash: req.headers.get(name).map(|v| hash_value(v.as_bytes())), new_cookie: None }
        }
        HashKey::SourceIp => Affinity { hash: Some(hash_value(peer.ip().to_string().as_bytes())), new_cookie: None },
        HashKey::QueryParameter(name) => Affinity {
            hash: req.query.and_then(|q| crate::matcher::query_param(q, name)).map(|v| hash_value(v.as_bytes())),
            new_cookie: None,
        },
        HashKey::Cookie { name, set_cookie_suffix } => {
            let found =
                req.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
                    c.split(';').map(str::trim).find_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        (k == &**name).then(|| v.trim_matches('"'))
                    })
                });
            match (found, set_cookie_suffix) {
                (Some(v), _) => Affinity { hash: Some(hash_value(v.as_bytes())), new_cookie: None },
                (None, Some(suffix)) => {
                    let value = format!("{:016x}", dice.roll());
                    let cookie = format!("{name}=\"{value}\"{suffix}");
                    Affinity {
                        hash: Some(hash_value(value.as_bytes())),
                        new_cookie: HeaderValue::from_str(&cookie).ok(),
                    }
                }
                (None, None) => Affinity::default(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
