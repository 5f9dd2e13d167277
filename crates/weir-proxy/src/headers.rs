//! Header work on the request path: hop-by-hop removal, the headers Envoy adds under
//! Istio (spec §10), and the VirtualService `headers` edits with `%VAR%` values.

use std::fmt::Write as _;
use std::net::SocketAddr;

use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use weir_table::{HeaderOps, HeaderTemplate, TemplatePart};

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
pub(crate) static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
pub(crate) static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
pub(crate) static X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop names (RFC 9110 §7.6.1 and the legacy ones), by bit.
fn hop_name(bit: u32) -> &'static HeaderName {
    match bit {
        0 => &header::CONNECTION,
        1 => &header::TE,
        2 => &KEEP_ALIVE,
        3 => &PROXY_CONNECTION,
        4 => &header::PROXY_AUTHENTICATE,
        5 => &header::TRANSFER_ENCODING,
        6 => &header::UPGRADE,
        _ => &header::TRAILER,
    }
}

/// The bit of a hop-by-hop name, if it is one.
fn hop_bit(name: &HeaderName) -> Option<u32> {
    (0..8).find(|&b| name == hop_name(b))
}

/// Removes hop-by-hop headers, including those named by `Connection`. `te` survives
/// only as `te: trailers` (gRPC needs it). One pass over the (few) header names,
/// comparing standard names by their tag; nothing is hashed or allocated unless
/// something must go (and a `Vec` only for custom names `Connection` lists).
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    let mut found = 0u32;
    let mut named: Vec<HeaderName> = Vec::new();
    for (name, value) in h.iter() {
        let Some(bit) = hop_bit(name) else { continue };
        if bit == 1 && value.as_bytes().eq_ignore_ascii_case(b"trailers") {
            continue;
        }
        found |= 1 << bit;
        if bit == 0 {
            for t in value.as_bytes().split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.is_empty() || t.eq_ignore_ascii_case(b"close") {
                    continue;
                }
                // `from_bytes` lowercases.
                let Ok(n) = HeaderName::from_bytes(t) else { continue };
                match hop_bit(&n) {
                    Some(1) => {}
                    Some(b) => found |= 1 << b,
                    None => named.push(n),
                }
            }
        }
    }
    for bit in 0..8 {
        if found & (1 << bit) != 0 {
            h.remove(hop_name(bit));
        }
    }
    for n in named {
        h.remove(n);
    }
}

/// The `Upgrade` value of a WebSocket upgrade request (`Connection: upgrade` and
/// `Upgrade: websocket`), the one upgrade Istio enables.
pub(crate) fn websocket_upgrade(h: &HeaderMap) -> Option<HeaderValue> {
    let up = h.get(header::UPGRADE)?;
    let asks = h
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| v.to_str().unwrap_or("").split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    (asks && up.as_bytes().eq_ignore_ascii_case(b"websocket")).then(|| up.clone())
}

/// Puts back the two headers that carry an upgrade across the proxy.
pub(crate) fn restore_upgrade(h: &mut HeaderMap, upgrade: HeaderValue) {
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, upgrade);
}

/// Removes Envoy control headers from a request arriving at the edge (a gateway treats
/// its clients as external), as Envoy does with `use_remote_address`.
pub(crate) fn strip_envoy_internal(h: &mut HeaderMap) {
    let names: Vec<HeaderName> = h.keys().filter(|k| k.as_str().starts_with("x-envoy-")).cloned().collect();
    for n in names {
        h.remove(n);
    }
}

/// A version-4 UUID for `x-request-id`.
pub(crate) fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&crate::dice::roll().to_le_bytes());
    b[8..].copy_from_slice(&crate::dice::roll().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = [0u8; 36];
    let mut j = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[j] = b'-';
            j += 1;
        }
        out[j] = HEX[(byte >> 4) as usize];
        out[j + 1] = HEX[(byte & 0xf) as usize];
        j += 2;
    }
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

/// `x-forwarded-for` and `x-forwarded-proto` (spec §10): at the edge (gateways) the
/// peer address is appended and the scheme overwritten; elsewhere both pass through
/// and `x-forwarded-proto` is only filled in when absent.
pub(crate) fn forwarded(h: &mut HeaderMap, peer: SocketAddr, scheme: &'static str, edge: bool) {
    if edge {
        let ip = peer.ip().to_string();
        let value = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prev) if !prev.is_empty() => format!("{prev},{ip}"),
            _ => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(X_FORWARDED_FOR.clone(), v);
        }
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
    } else if !h.contains_key(&X_FORWARDED_PROTO) {
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
    }
}

/// What `%VAR%` substitutions read.
#[derive(Clone, Copy)]
pub(crate) struct TemplateCtx<'a> {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) protocol: &'static str,
    /// `http` or `https` (the client's connection).
    pub(crate) scheme: &'static str,
    pub(crate) hostname: &'a str,
    pub(crate) start: std::time::SystemTime,
    /// The request headers (for `%REQ(x)%`), as they arrived.
    pub(crate) request: Option<&'a HeaderMap>,
    /// `%ROUTE_NAME%`.
    pub(crate) route_name: &'a str,
    /// `%UPSTREAM_CLUSTER%` (empty before a destination is chosen).
    pub(crate) cluster: &'a str,
}

/// The response a response-side value reads (`%RESPONSE_CODE%`, `%RESP(x)%`).
type ResponseView<'h> = Option<(StatusCode, &'h HeaderMap)>;

fn render(t: &HeaderTemplate, ctx: &TemplateCtx<'_>, resp: ResponseView<'_>) -> Option<HeaderValue> {
    match t {
        HeaderTemplate::Literal(v) => Some(v.clone()),
        HeaderTemplate::Parts(parts) => {
            let mut s = String::new();
            for p in parts.iter() {
                match p {
                    TemplatePart::Text(t) => s.push_str(t),
                    TemplatePart::DownstreamRemoteAddress => {
                        let _ = write!(s, "{}", ctx.peer);
                    }
                    TemplatePart::DownstreamRemoteAddressWithoutPort => {
                        let _ = write!(s, "{}", ctx.peer.ip());
                    }
                    TemplatePart::DownstreamLocalAddress => {
                        let _ = write!(s, "{}", ctx.local);
                    }
                    TemplatePart::Hostname => s.push_str(ctx.hostname),
                    TemplatePart::Protocol => s.push_str(ctx.protocol),
                    TemplatePart::StartTime => s.push_str(&crate::telemetry::access_log::rfc3339(ctx.start)),
                    TemplatePart::Req(name) => {
                        if let Some(v) = ctx.request.and_then(|h| h.get(name)).and_then(|v| v.to_str().ok()) {
                            s.push_str(v);
                        }
                    }
                    TemplatePart::DownstreamLocalAddressWithoutPort => {
                        let _ = write!(s, "{}", ctx.local.ip());
                    }
                    TemplatePart::DownstreamLocalPort => {
                        let _ = write!(s, "{}", ctx.local.port());
                    }
                    TemplatePart::DownstreamRemotePort => {
                        let _ = write!(s, "{}", ctx.peer.port());
                    }
                    TemplatePart::UpstreamCluster => s.push_str(ctx.cluster),
                    TemplatePart::RouteName => s.push_str(ctx.route_name),
                    TemplatePart::ResponseCode => {
                        let _ = write!(s, "{}", resp.map_or(0, |(st, _)| st.as_u16()));
                    }
                    TemplatePart::Resp(name) => {
                        if let Some(v) = resp.and_then(|(_, h)| h.get(name)).and_then(|v| v.to_str().ok()) {
                            s.push_str(v);
                        }
                    }
                    TemplatePart::Unknown(raw) => s.push_str(raw),
                }
            }
            HeaderValue::from_str(&s).ok()
        }
    }
}

/// Applies the request half of `ops`: set, then add, then remove.
pub(crate) fn apply_request(h: &mut HeaderMap, ops: &HeaderOps, ctx: &TemplateCtx<'_>) {
    apply(h, None, &ops.request_set, &ops.request_add, &ops.request_remove, ctx);
}

/// Applies the response half of `ops` to a response with `status`.
pub(crate) fn apply_response(h: &mut HeaderMap, status: StatusCode, ops: &HeaderOps, ctx: &TemplateCtx<'_>) {
    apply(h, Some(status), &ops.response_set, &ops.response_add, &ops.response_remove, ctx);
}

fn apply(
    h: &mut HeaderMap,
    status: Option<StatusCode>,
    set: &[(HeaderName, HeaderTemplate)],
    add: &[(HeaderName, HeaderTemplate)],
    remove: &[HeaderName],
    ctx: &TemplateCtx<'_>,
) {
    for (n, t) in set {
        if let Some(v) = render(t, ctx, status.map(|s| (s, &*h))) {
            h.insert(n.clone(), v);
        }
    }
    for (n, t) in add {
        if let Some(v) = render(t, ctx, status.map(|s| (s, &*h))) {
            h.append(n.clone(), v);
        }
    }
    for n in remove {
        h.remove(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = request_id();
        let s = id.to_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(request_id(), id);
    }

    #[test]
    fn hop_by_hop_headers_go_including_those_named_by_connection() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-custom"));
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-custom").is_none() && h.get("keep-alive").is_none() && h.get("connection").is_none());
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert!(h.get("x-kept").is_some());
    }

    #[test]
    fn forwarded_headers_at_the_edge_and_inside() {
        let peer: SocketAddr = "10.1.2.3:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR.clone(), HeaderValue::from_static("1.1.1.1"));
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        forwarded(&mut h, peer, "http", true);
        assert_eq!(h.get(&X_FORWARDED_FOR).unwrap(), "1.1.1.1,10.1.2.3");
        assert_eq!(h.get(&X_FORWARDED_PROTO).unwrap(), "http");
        let mut h = HeaderMap::new();
        forwarded(&mut h, peer, "http", false);
        assert!(h.get(&X_FORWARDED_FOR).is_none());
        assert_eq!(h.get(&X_FORWARDED_PROTO).unwrap(), "http");
    }
}
