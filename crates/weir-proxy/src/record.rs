//! The outcome of a request, recorded once: what telemetry learns as the request goes
//! ([`Record`]), and the completion that runs when the response body ends (or the client
//! goes away): it gives the upstream connection back, tells outlier detection a gRPC
//! status from the trailers, and writes the Istio metrics and the access-log line.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::Version;

use crate::attempt::Lease;
use crate::body::{Completion, Finished};
use crate::entry::ConnCtx;
use crate::telemetry::{DestLabels, Entry, Flags, Observation};
use crate::timeout::RequestEnd;

/// Everything telemetry needs, filled in as the request goes.
pub(crate) struct Record {
    pub(crate) started: Instant,
    pub(crate) start: SystemTime,
    pub(crate) grpc: bool,
    pub(crate) code: u16,
    pub(crate) flags: Flags,
    pub(crate) details: Cow<'static, str>,
    pub(crate) dest: Option<Arc<DestLabels>>,
    pub(crate) upstream_host: Option<Arc<str>>,
    pub(crate) upstream_service_time: Option<u64>,
    /// gRPC status from response headers (trailers-only responses).
    pub(crate) grpc_status: Option<u16>,
    /// When the request was complete, and its body bytes.
    pub(crate) end: RequestEnd,
    /// Access-log fields (only when the access log is on).
    pub(crate) log: Option<LogFields>,
}

/// What only the access log reads.
pub(crate) struct LogFields {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) protocol: &'static str,
    pub(crate) authority: String,
    pub(crate) xff: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) route_name: Option<String>,
    pub(crate) upstream_cluster: Option<String>,
}

/// `%PROTOCOL%`.
pub(crate) fn protocol_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Finishes a request when its response body ends.
pub(crate) struct Done {
    pub(crate) conn: Arc<ConnCtx>,
    pub(crate) rec: Record,
    pub(crate) lease: Option<Lease>,
}

impl Completion for Done {
    fn finish(self: Box<Self>, mut how: Finished) {
        let Done { conn, mut rec, lease } = *self;
        if let Some(mut lease) = lease {
            if let Some(c) = how.conn.take() {
                lease.conn = Some(c);
            }
            lease.finish(how.complete);
        }
        if how.timed_out {
            // The route timeout ran out while the response streamed: reset, `UT`.
            rec.flags.insert(Flags::UPSTREAM_REQUEST_TIMEOUT);
        } else if !how.complete {
            // The response did not reach its end: the upstream body failed (UC), or the
            // client went away and the body was dropped (DC).
            rec.flags.insert(if how.failed {
                Flags::UPSTREAM_CONNECTION_TERMINATION
            } else {
                Flags::DOWNSTREAM_CONNECTION_TERMINATION
            });
        }
        emit(&conn, rec, &how);
    }
}

/// A request whose response was never produced because the client went away while it
/// waited (hyper drops the handler): recorded with response code 0 and `DC`, as Envoy
/// logs it.
pub(crate) struct Abandoned {
    pub(crate) conn: Arc<ConnCtx>,
    pub(crate) rec: Option<Record>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(mut rec) = self.rec.take() {
            rec.code = 0;
            rec.flags.insert(Flags::DOWNSTREAM_CONNECTION_TERMINATION);
            rec.details = Cow::Borrowed("downstream_remote_disconnect");
            emit(&self.conn, rec, &Finished::default());
        }
    }
}

/// Metrics and the access log line for a finished (or abandoned) request.
fn emit(conn: &ConnCtx, rec: Record, how: &Finished) {
    let duration = rec.started.elapsed();
    let shared = &conn.shared;
    let dest = rec.dest.clone().unwrap_or_else(|| DestLabels::unknown_shared(""));
    let request_bytes = rec.end.bytes();
    shared.metrics.record(&Observation {
        dest,
        code: rec.code,
        flags: rec.flags,
        grpc: rec.grpc,
        grpc_status: how.grpc_status.or(rec.grpc_status),
        duration_ms: duration.as_secs_f64() * 1000.0,
        request_bytes,
        response_bytes: how.bytes,
    });
    if let Some(l) = rec.log {
        shared.access_log.log(&Entry {
            start: Some(rec.start),
            method: l.method,
            path: l.path,
            protocol: l.protocol,
            code: rec.code,
            flags: rec.flags.render(),
            details: rec.details,
            bytes_received: request_bytes,
            bytes_sent: how.bytes,
            duration_ms: duration.as_millis() as u64,
            upstream_service_time: rec.upstream_service_time,
            xff: l.xff,
            user_agent: l.user_agent,
            request_id: l.request_id,
            authority: l.authority,
            upstream_host: rec.upstream_host.map(|h| h.to_string()),
            upstream_cluster: l.upstream_cluster,
            downstream_local: conn.local.to_string(),
            downstream_remote: conn.peer.to_string(),
            route_name: l.route_name,
        });
    }
}
