//! The mirror stage (Envoy's request mirror policies, spec §2.11): for each mirror
//! drawn for the request, a copy goes to the mirror's cluster (subset and port as for
//! any destination) on a task of its own, with the request's body as the request sends
//! it. Fire and forget: nobody waits for the copy, its answer is read and dropped, and
//! its latency or failure never reaches the client. A copy gets one try, no retries,
//! within the route timeout, and is dropped (not queued) when its cluster is at its
//! connection limits. It is counted in the mirror cluster's `upstream_rq_total` and
//! written to the access log as its own request.
//!
//! The copy carries the `Host` the primary request carries; with `--shadow-host-suffix`
//! it gets Envoy's `-shadow` suffix (`reviews:9080` becomes `reviews-shadow:9080`), as
//! Istio before 1.28 had it.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::{Request, Uri, Version};
use http_body_util::BodyExt as _;
use weir_table::UpstreamProtocol;

use crate::attempt::{self, Lease, Mode, Sent, Try};
use crate::body::{Completion, Finished, ProxyBody};
use crate::entry::ConnCtx;
use crate::limit::limited;
use crate::record::Record;
use crate::router::{Job, Outgoing};
use crate::telemetry::{Entry, Flags};
use crate::timeout::{self, RequestEnd};
use crate::upstream::{ClusterState, Snapshot};

/// What the access log says of a copy.
struct Log {
    start: SystemTime,
    started: Instant,
    method: String,
    path: String,
    protocol: &'static str,
    authority: String,
    xff: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    route_name: Option<String>,
    cluster: String,
}

/// Sends a copy of the request to each mirror drawn in `plan`.
pub(crate) fn start(
    conn: &Arc<ConnCtx>,
    snapshot: &Snapshot,
    job: &Job<'_>,
    outgoing: &Outgoing,
    rec: &Record,
    downstream_h2: bool,
) {
    let plan = job.plan;
    if plan.mirrors.is_empty() {
        return;
    }
    for m in &plan.mirrors {
        // A mirror naming nothing (no such service, port or subset) sends nothing.
        let Some(id) = m.cluster.resolve(plan.port) else { continue };
        let Some(mut req) = outgoing.mirror() else { return };
        let cluster = snapshot.clusters[id.0].clone();
        let authority = shadow_authority(job.authority, conn.shared.shadow_host_suffix);
        let mode = match cluster.spec.protocol {
            UpstreamProtocol::Http2 => Mode::H2,
            UpstreamProtocol::Http1 => Mode::H1,
            UpstreamProtocol::ClientProtocol if downstream_h2 => Mode::H2,
            UpstreamProtocol::ClientProtocol => Mode::H1,
        };
        for_mode(&mut req, mode, &authority);
        let log = rec.log.as_ref().map(|l| Log {
            start: SystemTime::now(),
            started: Instant::now(),
            method: l.method.clone(),
            path: l.path.clone(),
            protocol: l.protocol,
            authority: authority.clone(),
            xff: l.xff.clone(),
            user_agent: l.user_agent.clone(),
            request_id: l.request_id.clone(),
            route_name: l.route_name.clone(),
            cluster: m.name.to_string(),
        });
        let task = Copy {
            conn: conn.clone(),
            cluster,
            mode,
            grpc: rec.grpc,
            end: rec.end.clone(),
            global: plan.timeouts.global,
            router_start: job.started,
            authority,
            log,
        };
        tokio::spawn(task.run(req));
    }
}

/// The primary's authority, with Envoy's `-shadow` suffix on the host when asked for.
fn shadow_authority(authority: &str, suffix: bool) -> String {
    if !suffix {
        return authority.to_string();
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') && authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            authority.split_at(i)
        }
        _ => (authority, ""),
    };
    format!("{host}-shadow{port}")
}

/// Sets the copy's version, URI and `Host` for the protocol it goes on.
fn for_mode(req: &mut Request<ProxyBody>, mode: Mode, authority: &str) {
    let pq = req.uri().path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    if mode == Mode::H2 {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = authority.parse().ok();
        parts.path_and_query = Some(pq);
        *req.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
        *req.version_mut() = Version::HTTP_2;
        req.headers_mut().remove(header::HOST);
    } else {
        *req.uri_mut() = Uri::from(pq);
        *req.version_mut() = Version::HTTP_11;
        if let Ok(v) = HeaderValue::from_str(authority) {
            req.headers_mut().insert(header::HOST, v);
        }
    }
}

/// One copy in flight.
struct Copy {
    conn: Arc<ConnCtx>,
    cluster: Arc<ClusterState>,
    mode: Mode,
    grpc: bool,
    end: RequestEnd,
    global: Option<std::time::Duration>,
    router_start: tokio::time::Instant,
    authority: String,
    log: Option<Log>,
}

impl Copy {
    async fn run(self, req: Request<ProxyBody>) {
        let current = Mutex::new(None);
        let t = Try {
            cluster: &self.cluster,
            mode: self.mode,
            hash: None,
            avoid: &[],
            host_selection_attempts: 0,
            passthrough_host: &self.authority,
            per_try: None,
            end: &self.end,
            grpc: self.grpc,
            current: &current,
            no_wait: true,
        };
        let timer = self.global.map(|g| timeout::global(self.end.clone(), g, self.router_start));
        let outcome = limited(attempt::run(&t, req), timer).await;
        let host = current.into_inner().unwrap_or_else(|e| e.into_inner()).map(|e| e.host.clone());
        let (code, flags, details) = match outcome {
            Ok(Ok(sent)) => return self.drain(sent, host).await,
            Ok(Err(failed)) => {
                let l = failed.failure.reply(false);
                (l.status.as_u16(), l.flags, l.take_details())
            }
            Err(_) => (504, Flags::UPSTREAM_REQUEST_TIMEOUT, Cow::Borrowed("response_timeout")),
        };
        tracing::debug!(cluster = %self.cluster.name, code, "mirror failed");
        if let Some(log) = self.log {
            write(&self.conn, log, code, flags, details, 0, host);
        }
    }

    /// Reads the copy's answer to its end (so its connection can be reused) and logs it.
    async fn drain(self, sent: Sent, host: Option<Arc<str>>) {
        let (resp, lease) = sent.into_response();
        let code = resp.status().as_u16();
        let mut body = resp.into_body();
        if let Some(g) = self.global {
            body.set_deadline(Box::pin(timeout::global(self.end.clone(), g, self.router_start)));
        }
        body.set_on_finish(Box::new(Drained { conn: self.conn, lease: Some(lease), log: self.log, code, host }));
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    }
}

/// Gives the copy's connection back and logs it, once its answer is read.
struct Drained {
    conn: Arc<ConnCtx>,
    lease: Option<Lease>,
    log: Option<Log>,
    code: u16,
    host: Option<Arc<str>>,
}

impl Completion for Drained {
    fn finish(self: Box<Self>, mut how: Finished) {
        let Drained { conn, lease, log, code, host } = *self;
        if let Some(mut lease) = lease {
            if let Some(c) = how.conn.take() {
                lease.conn = Some(c);
            }
            lease.finish(how.complete);
        }
        let mut flags = Flags::NONE;
        if how.timed_out {
            flags.insert(Flags::UPSTREAM_REQUEST_TIMEOUT);
        } else if !how.complete {
            flags.insert(Flags::UPSTREAM_CONNECTION_TERMINATION);
        }
        if let Some(log) = log {
            write(&conn, log, code, flags, Cow::Borrowed("via_upstream"), how.bytes, host);
        }
    }
}

fn write(
    conn: &ConnCtx,
    log: Log,
    code: u16,
    flags: Flags,
    details: Cow<'static, str>,
    bytes_sent: u64,
    host: Option<Arc<str>>,
) {
    conn.shared.access_log.log(&Entry {
        start: Some(log.start),
        method: log.method,
        path: log.path,
        protocol: log.protocol,
        code,
        flags: flags.render(),
        details,
        bytes_received: 0,
        bytes_sent,
        duration_ms: log.started.elapsed().as_millis() as u64,
        upstream_service_time: None,
        xff: log.xff,
        user_agent: log.user_agent,
        request_id: log.request_id,
        authority: log.authority,
        upstream_host: host.map(|h| h.to_string()),
        upstream_cluster: Some(log.cluster),
        downstream_local: conn.local.to_string(),
        downstream_remote: conn.peer.to_string(),
        route_name: log.route_name,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shadow_suffix_goes_on_the_host() {
        assert_eq!(shadow_authority("reviews:9080", true), "reviews-shadow:9080");
        assert_eq!(shadow_authority("reviews", true), "reviews-shadow");
        assert_eq!(shadow_authority("[::1]:80", true), "[::1]-shadow:80");
        assert_eq!(shadow_authority("[::1]", true), "[::1]-shadow");
        assert_eq!(shadow_authority("reviews:9080", false), "reviews:9080");
    }
}
