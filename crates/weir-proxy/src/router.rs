//! The router stage: the route timeout around the retry loop around the tries
//! ([`crate::attempt`]). It keeps what it needs to send the request again: the request
//! itself when only failures before sending can be retried (the connection hands it
//! back), or its head and a [`Replay`] body when responses and resets can be; past the
//! body buffer the request is not retried.

use std::sync::{Arc, Mutex};

use http::header::HeaderValue;
use http::{HeaderMap, Method, Request, Uri, Version};
use weir_table::Plan;

use crate::attempt::{self, Failed, Mode, Sent, Try};
use crate::body::ProxyBody;
use crate::failure::Failure;
use crate::headers;
use crate::limit::limited;
use crate::outlier::Outcome;
use crate::replay::{BUFFER_LIMIT, Replay};
use crate::retry::{RetryState, Verdict, retriable_failure, retriable_response};
use crate::stats::ClusterStats;
use crate::telemetry::Flags;
use crate::timeout::{self, RequestEnd};
use crate::upstream::{ClusterState, EndpointState};

/// What the router got.
pub(crate) struct Routed {
    /// The response head of the last try, or why there is none.
    pub(crate) result: Result<Sent, Failure>,
    /// `URX` or `UO` when a retriable outcome could not be retried.
    pub(crate) flags: Flags,
    /// Some try was a retry.
    pub(crate) retried: bool,
    /// The host of the last try.
    pub(crate) host: Option<Arc<EndpointState>>,
}

/// The request as each try sends it.
pub(crate) enum Outgoing {
    /// The request itself; a try that failed before writing it gives it back.
    Once(Option<Request<ProxyBody>>),
    /// Its head and a replayable body (`None`: the request has no body).
    Replay { method: Method, uri: Uri, version: Version, headers: HeaderMap, body: Option<Replay> },
}

impl Outgoing {
    /// What `job` needs kept of `req` to send it again: the request alone when only
    /// failures before sending can be retried, else its head and a replayable body.
    /// Mirrors also read the kept body, so a mirrored request always keeps it.
    pub(crate) fn new(job: &Job<'_>, req: Request<ProxyBody>) -> Self {
        let replay = job.mode != Mode::Upgrade
            && (!job.plan.mirrors.is_empty()
                || job.plan.retry.as_ref().is_some_and(|p| p.retry_on.needs_replay(job.grpc, job.mode == Mode::H2)));
        if !replay {
            return Outgoing::Once(Some(req));
        }
        let (p, body) = req.into_parts();
        let body = (!hyper::body::Body::is_end_stream(&body)).then(|| Replay::new(body, BUFFER_LIMIT));
        Outgoing::Replay { method: p.method, uri: p.uri, version: p.version, headers: p.headers, body }
    }

    fn next(&mut self) -> Option<Request<ProxyBody>> {
        match self {
            Outgoing::Once(r) => r.take(),
            Outgoing::Replay { method, uri, version, headers, body } => {
                let body = match body {
                    Some(b) => ProxyBody::replay(b.next_try()?),
                    None => ProxyBody::empty(),
                };
                let mut r = Request::new(body);
                *r.method_mut() = method.clone();
                *r.uri_mut() = uri.clone();
                *r.version_mut() = *version;
                *r.headers_mut() = headers.clone();
                Some(r)
            }
        }
    }

    /// A copy of the request for a mirror: its head and the body as the request sends
    /// it (`None` for a request that cannot be mirrored: a WebSocket upgrade).
    pub(crate) fn mirror(&self) -> Option<Request<ProxyBody>> {
        let Outgoing::Replay { method, uri, version, headers, body } = self else { return None };
        let body = match body {
            Some(b) => ProxyBody::mirror(b.mirror()),
            None => ProxyBody::empty(),
        };
        let mut r = Request::new(body);
        *r.method_mut() = method.clone();
        *r.uri_mut() = uri.clone();
        *r.version_mut() = *version;
        *r.headers_mut() = headers.clone();
        Some(r)
    }

    fn give_back(&mut self, req: Request<ProxyBody>) {
        if let Outgoing::Once(slot) = self {
            *slot = Some(req);
        }
    }

    fn resendable(&self) -> bool {
        match self {
            Outgoing::Once(r) => r.is_some(),
            Outgoing::Replay { body, .. } => body.as_ref().is_none_or(Replay::replayable),
        }
    }

    fn commit(&self) {
        if let Outgoing::Replay { body: Some(body), .. } = self {
            body.commit();
        }
    }
}

/// Everything the router needs for one request.
pub(crate) struct Job<'a> {
    pub(crate) cluster: &'a Arc<ClusterState>,
    pub(crate) plan: &'a Plan<'a>,
    pub(crate) mode: Mode,
    pub(crate) end: &'a RequestEnd,
    pub(crate) grpc: bool,
    pub(crate) authority: &'a str,
    /// When the router got the request (after any injected delay).
    pub(crate) started: tokio::time::Instant,
}

/// Sends the request (its head ready for the upstream, kept as [`Outgoing::new`] says)
/// within the route timeout, retrying as the plan's retry policy says.
pub(crate) async fn route(job: &Job<'_>, mut outgoing: Outgoing) -> Routed {
    let plan = job.plan;
    let retry_plan = plan.retry.as_ref();
    let mut retry = RetryState::new(retry_plan);
    // The host the current try went to (set by the try as soon as it picks one): the
    // route timeout reports it to outlier detection and the access log names it.
    let current: Mutex<Option<Arc<EndpointState>>> = Mutex::new(None);
    let started = std::time::Instant::now();
    let cluster = job.cluster;
    let timer = plan.timeouts.global.map(|g| timeout::global(job.end.clone(), g, job.started));
    let raced = limited(
        async {
            let mut tried: Vec<Arc<EndpointState>> = Vec::new();
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let t = Try {
                    cluster,
                    mode: job.mode,
                    hash: plan.affinity.hash,
                    avoid: &tried,
                    host_selection_attempts: retry_plan
                        .filter(|p| p.previous_hosts)
                        .map_or(1, |p| p.host_selection_attempts),
                    passthrough_host: job.authority,
                    per_try: plan.timeouts.per_try,
                    end: job.end,
                    grpc: job.grpc,
                    current: &current,
                    no_wait: false,
                };
                // The request is made in a block of its own: only the try's future is
                // kept across the wait.
                let outcome = {
                    let Some(mut req) = outgoing.next() else {
                        // Nothing left to send: only reachable if a retry was decided without a
                        // request, which `resendable` rules out.
                        return (Err(Failure::ConnectionTerminated { before_request: false }), Flags::NONE);
                    };
                    // Envoy advertises the whole timeout on the first try, what is left on retries.
                    let elapsed = if attempt == 1 { std::time::Duration::ZERO } else { started.elapsed() };
                    set_try_headers(req.headers_mut(), job, attempt, elapsed);
                    attempt::run(&t, req)
                }
                .await;
                let (would, host) = match (&outcome, retry.plan()) {
                    (Ok(sent), Some(p)) => (
                        retriable_response(p, sent.resp.status(), sent.resp.headers(), job.grpc),
                        Some(sent.lease.endpoint.clone()),
                    ),
                    (Err(f), Some(p)) => (retriable_failure(p, f.failure), f.endpoint.clone()),
                    (Ok(sent), None) => (false, Some(sent.lease.endpoint.clone())),
                    (Err(f), None) => (false, f.endpoint.clone()),
                };
                let outcome = match outcome {
                    Ok(sent) => Ok(sent),
                    Err(Failed { failure, request, .. }) => {
                        if let Some(r) = request {
                            outgoing.give_back(*r);
                        }
                        Err(failure)
                    }
                };
                let limits = &cluster.spec.limits;
                match retry.decide(would, outgoing.resendable(), &cluster.breakers, limits, &cluster.stats) {
                    Verdict::Retry(backoff) => {
                        if let Some(h) = host {
                            tried.push(h);
                        }
                        drop(outcome);
                        // A route timeout during the back-off blames no host.
                        *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        tokio::time::sleep(backoff).await;
                    }
                    Verdict::Final => return (outcome, Flags::NONE),
                    Verdict::LimitExceeded => return (outcome, Flags::UPSTREAM_RETRY_LIMIT),
                    Verdict::Overflow => return (outcome, Flags::UPSTREAM_OVERFLOW),
                }
            }
        },
        timer,
    )
    .await;
    let (result, flags) = match raced {
        Ok(r) => r,
        Err(_) => {
            ClusterStats::inc(&cluster.stats.upstream_rq_timeout);
            let last = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(ep) = last {
                cluster.report(&ep, Outcome::Timeout);
            }
            (Err(Failure::Timeout), Flags::NONE)
        }
    };
    outgoing.commit();
    let host = current.into_inner().unwrap_or_else(|e| e.into_inner());
    Routed { result, flags, retried: retry.retried(), host }
}

/// The headers that change from one try to the next: `x-envoy-attempt-count`, and the
/// timeout the upstream may expect (`x-envoy-expected-rq-timeout-ms`, and `grpc-timeout`
/// for gRPC, as Envoy rewrites it when `max_grpc_timeout` is set).
fn set_try_headers(h: &mut HeaderMap, job: &Job<'_>, attempt: u32, elapsed: std::time::Duration) {
    h.insert(headers::X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(attempt));
    let timeouts = &job.plan.timeouts;
    if let Some(expected) = timeouts.expected(elapsed) {
        h.insert(headers::X_ENVOY_EXPECTED_RQ_TIMEOUT_MS.clone(), HeaderValue::from(expected.as_millis() as u64));
        if timeouts.rewrite_grpc_timeout
            && let Ok(v) = HeaderValue::from_str(&weir_table::plan::grpc_timeout_text(expected))
        {
            h.insert("grpc-timeout", v);
        }
    }
}
