//! One access-log line per request on stdout, in Istio's default text format or as
//! JSON, written by a dedicated thread so request tasks never block on stdout.

use std::io::Write;
use std::sync::mpsc;
use std::time::SystemTime;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Istio's default text format.
    Text,
    /// One JSON object per line.
    Json,
    /// No access log.
    Off,
}

/// The fields of one line.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Request start.
    pub start: Option<SystemTime>,
    /// Method.
    pub method: String,
    /// Original path (before rewrites).
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    /// Status (0 = none).
    pub code: u16,
    /// Response flags, rendered.
    pub flags: String,
    /// Why the proxy answered as it did (`via_upstream`, `route_not_found`...).
    pub details: std::borrow::Cow<'static, str>,
    /// Request body bytes.
    pub bytes_received: u64,
    /// Response body bytes.
    pub bytes_sent: u64,
    /// Total duration, ms.
    pub duration_ms: u64,
    /// Upstream service time, ms.
    pub upstream_service_time: Option<u64>,
    /// `x-forwarded-for`.
    pub xff: Option<String>,
    /// `user-agent`.
    pub user_agent: Option<String>,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// `:authority`.
    pub authority: String,
    /// Upstream host (`ip:port`).
    pub upstream_host: Option<String>,
    /// Upstream cluster.
    pub upstream_cluster: Option<String>,
    /// Listener address.
    pub downstream_local: String,
    /// Client address.
    pub downstream_remote: String,
    /// Route name.
    pub route_name: Option<String>,
}

/// Formats `t` as Envoy's `%START_TIME%` (`2026-11-26T07:31:46.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

impl Entry {
    /// Istio's default text format.
    pub fn text(&self) -> String {
        let start = self.start.map(rfc3339).unwrap_or_else(|| "-".into());
        let ust = self.upstream_service_time.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        format!(
            "[{start}] \"{} {} {}\" {} {} {} - \"-\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} - {} {} - {}\n",
            self.method,
            self.path,
            self.protocol,
            self.code,
            self.flags,
            self.details,
            self.bytes_received,
            self.bytes_sent,
            self.duration_ms,
            ust,
            dash(&self.xff),
            dash(&self.user_agent),
            dash(&self.request_id),
            self.authority,
            dash(&self.upstream_host),
            dash(&self.upstream_cluster),
            self.downstream_local,
            self.downstream_remote,
            dash(&self.route_name),
        )
    }

    /// Istio's JSON format.
    pub fn json(&self) -> String {
        let v = serde_json::json!({
            "start_time": self.start.map(rfc3339),
            "method": self.method,
            "path": self.path,
            "protocol": self.protocol,
            "response_code": self.code,
            "response_flags": self.flags,
            "response_code_details": self.details,
            "connection_termination_details": null,
            "upstream_transport_failure_reason": null,
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "duration": self.duration_ms,
            "upstream_service_time": self.upstream_service_time.map(|v| v.to_string()),
            "x_forwarded_for": self.xff,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
            "authority": self.authority,
            "upstream_host": self.upstream_host,
            "upstream_cluster": self.upstream_cluster,
            "upstream_local_address": null,
            "downstream_local_address": self.downstream_local,
            "downstream_remote_address": self.downstream_remote,
            "requested_server_name": null,
            "route_name": self.route_name,
        });
        let mut s = v.to_string();
        s.push('\n');
        s
    }
}

/// Sends lines to the writer thread.
#[derive(Debug, Clone)]
pub struct AccessLog {
    format: Format,
    tx: Option<mpsc::Sender<String>>,
}

impl AccessLog {
    /// Starts the writer thread (none for `Off`).
    pub fn new(format: Format) -> Self {
        if format == Format::Off {
            return AccessLog { format, tx: None };
        }
        let (tx, rx) = mpsc::channel::<String>();
        let spawned = std::thread::Builder::new().name("access-log".into()).spawn(move || {
            // Not `stdout.lock()` for the thread's lifetime: other writers (the ready
            // line, the demo's guide) must still get through. Each flush locks briefly.
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
            while let Ok(line) = rx.recv() {
                let _ = out.write_all(line.as_bytes());
                while let Ok(more) = rx.try_recv() {
                    let _ = out.write_all(more.as_bytes());
                }
                let _ = out.flush();
            }
        });
        AccessLog { format, tx: spawned.ok().map(|_| tx) }
    }

    /// True when lines are written.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Writes one line.
    pub fn log(&self, e: &Entry) {
        if let Some(tx) = &self.tx {
            let line = match self.format {
                Format::Json => e.json(),
                _ => e.text(),
            };
            let _ = tx.send(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn start_time_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_679_506_123);
        assert_eq!(rfc3339(t), "2026-11-26T07:51:46.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn text_line_has_istio_fields_in_order() {
        let e = Entry {
            method: "GET".into(),
            path: "/reviews/1".into(),
            protocol: "HTTP/1.1",
            code: 404,
            flags: "NR".into(),
            details: "route_not_found".into(),
            authority: "a.com".into(),
            downstream_local: "127.0.0.1:8080".into(),
            downstream_remote: "127.0.0.1:5555".into(),
            ..Default::default()
        };
        let line = e.text();
        assert!(line.starts_with("[-] \"GET /reviews/1 HTTP/1.1\" 404 NR route_not_found - \"-\" 0 0 0 - "), "{line}");
        assert!(line.contains("\"a.com\" \"-\" - - 127.0.0.1:8080 127.0.0.1:5555 - -"), "{line}");
    }
}
