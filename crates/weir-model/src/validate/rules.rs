//! The shared building blocks of Istio validation (C-1 .. C-15 in
//! `validation-rules.md`). Each check returns the message to report, so callers decide
//! where it points.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::duration::Duration;

/// C-1: at least 1ms and a whole number of milliseconds.
pub(crate) fn duration(d: &Duration) -> Result<(), String> {
    if d.as_nanos() < 1_000_000 {
        return Err(format!("duration \"{d}\" must be at least 1ms"));
    }
    if !d.is_whole_millis() {
        return Err(format!("duration \"{d}\" must be a whole number of milliseconds"));
    }
    Ok(())
}

/// C-2: 1..=65535.
pub(crate) fn port(n: u32) -> Result<(), String> {
    if (1..=65535).contains(&n) { Ok(()) } else { Err(format!("port number {n} must be in the range 1..65535")) }
}

/// A DNS-1123 label: letters, digits and `-`, alphanumeric at both ends, at most 63.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// C-5 with a message.
pub(crate) fn dns1123_label(s: &str, what: &str) -> Result<(), String> {
    if is_dns1123_label(s) {
        Ok(())
    } else {
        Err(format!(
            "{what} {s:?} is not a DNS-1123 label (letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
        ))
    }
}

fn preconditions(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty domain name is not allowed".into());
    }
    if name.len() > 255 {
        return Err(format!("domain name {name:?} is too long (max 255 characters)"));
    }
    Ok(())
}

/// The labels after the first one: DNS-1123 labels, a trailing dot allowed, and the
/// last label not all digits.
fn dns1123_labels(full: &str, rest: &str) -> Result<(), String> {
    let parts: Vec<&str> = rest.split('.').collect();
    let tld = parts[parts.len() - 1];
    if !tld.is_empty() && tld.parse::<i64>().is_ok() {
        return Err(format!("domain name {full:?} is invalid (top-level domain {tld:?} cannot be all-numeric)"));
    }
    for (i, label) in parts.iter().enumerate() {
        if i == parts.len() - 1 && label.is_empty() {
            return Ok(());
        }
        if !is_dns1123_label(label) {
            return Err(format!("domain name {full:?} is invalid (label {label:?} is not a DNS-1123 label)"));
        }
    }
    Ok(())
}

fn is_wildcard_label(label: &str) -> bool {
    if label == "*" {
        return true;
    }
    let rest = label.strip_prefix("*-").or_else(|| label.strip_prefix('*')).unwrap_or(label);
    label.len() <= 63 && is_dns1123_label(rest)
}

/// C-3: a host name where only the first label may be a wildcard (`*`, `*foo`, `*-foo`).
pub(crate) fn wildcard_domain(name: &str) -> Result<(), String> {
    preconditions(name)?;
    let (first, rest) = match name.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (name, None),
    };
    if !is_wildcard_label(first) {
        return Err(format!("domain name {name:?} is invalid (label {first:?} is not a DNS-1123 label or a wildcard)"));
    }
    match rest {
        Some(r) => dns1123_labels(name, r),
        None => Ok(()),
    }
}

/// C-4: a host name without wildcards.
pub(crate) fn fqdn(name: &str) -> Result<(), String> {
    preconditions(name)?;
    dns1123_labels(name, name)
}

/// An IPv4 or IPv6 address.
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// An IP address or a CIDR block.
pub(crate) fn ip_or_subnet(s: &str) -> Result<(), String> {
    if let Some((ip, bits)) = s.split_once('/') {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            return Err(format!("{s:?} is not a valid CIDR block"));
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        match bits.parse::<u32>() {
            Ok(n) if n <= max && !bits.starts_with('+') => Ok(()),
            _ => Err(format!("{s:?} is not a valid CIDR block (prefix length must be 0..{max})")),
        }
    } else if is_ip(s) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid IP address or CIDR block"))
    }
}

/// A partial wildcard such as `*foo.com` (only `*` or `*.` prefixes are whole-label).
pub(crate) fn partial_wildcard(host: &str) -> Result<(), String> {
    if host.starts_with('*') && host.len() > 1 && !host[1..].starts_with('.') {
        Err(format!("partial wildcard {host:?} is not allowed (use \"*\" or a \"*.\" prefix)"))
    } else {
        Ok(())
    }
}

/// A unix socket address after `unix://`: an absolute path not ending in `/`, or `@abstract`.
pub(crate) fn unix_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("unix address must not be empty".into());
    }
    if addr.starts_with('@') {
        return Ok(());
    }
    if !addr.starts_with('/') {
        return Err(format!("unix address {addr:?} must be an absolute path"));
    }
    if addr.ends_with('/') {
        return Err(format!("unix address {addr:?} must not end in '/'"));
    }
    Ok(())
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// C-6 key: a Kubernetes qualified name with an optional DNS-subdomain prefix.
pub(crate) fn label_key(k: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "label key {k:?} is invalid: expected an optional DNS prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    };
    match k.split_once('/') {
        Some((prefix, name)) => {
            if !is_dns1123_subdomain(prefix) || !is_label_name(name) {
                return Err(bad());
            }
        }
        None => {
            if !is_label_name(k) {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// C-6 value: empty, or at most 63 of `[A-Za-z0-9._-]` starting and ending alphanumeric.
pub(crate) fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_label_name(v) {
        Ok(())
    } else {
        Err(format!(
            "label value {v:?} is invalid: expected at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// C-6 over a whole map: each problem with its key and whether it is about the key.
pub(crate) fn labels(map: &BTreeMap<String, String>) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    for (k, v) in map {
        if let Err(e) = label_key(k) {
            out.push((k.clone(), true, e));
        }
        if let Err(e) = label_value(v) {
            out.push((k.clone(), false, e));
        }
    }
    out
}

/// C-8 for integer percents.
pub(crate) fn int_percent(v: i32) -> Result<(), String> {
    if (0..=100).contains(&v) { Ok(()) } else { Err(format!("percentage {v} must be in the range 0..100")) }
}

/// C-8 for `Percent` in fault injection: 0 or in [0.0001, 100].
pub(crate) fn fault_percentage(v: f64) -> Result<(), String> {
    if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) || v.is_nan() {
        Err(format!("percentage {v} must be 0 or in the range [0.0001, 100]"))
    } else {
        Ok(())
    }
}

/// RFC 7230 token characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

const PSEUDO_HEADERS: [&str; 5] = [":method", ":scheme", ":authority", ":path", ":status"];

/// True for `@request.auth.claims.x` or `@request.auth.claims[a][b]` keys.
pub(crate) fn is_jwt_claim_key(name: &str) -> bool {
    name.strip_prefix("@request.auth.claims").is_some_and(|rest| {
        (rest.starts_with('.') && rest.len() > 1) || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2)
    })
}

/// C-9 for match keys (`headers`, `withoutHeaders`).
pub(crate) fn match_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".into());
    }
    if PSEUDO_HEADERS.contains(&name) || is_jwt_claim_key(name) || is_token(name) {
        return Ok(());
    }
    Err(format!(
        "header name {name:?} is not a valid HTTP header name (an RFC 7230 token or one of :method, :scheme, :authority, :path, :status)"
    ))
}

/// C-9 for request `set`/`add` names: `:authority` and `host` allowed, other `:` names not.
pub(crate) fn request_set_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".into());
    }
    if name.starts_with(':') && name != ":authority" {
        return Err(format!("pseudo-header {name:?} cannot be set (only :authority)"));
    }
    Ok(())
}

/// C-9 for request `remove` and every response operation: no `:` names and no `host`.
pub(crate) fn header_operation_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".into());
    }
    if name.starts_with(':') {
        return Err(format!("pseudo-header {name:?} cannot be modified"));
    }
    if name.eq_ignore_ascii_case("host") {
        return Err("header \"host\" cannot be modified here".into());
    }
    Ok(())
}

/// Istio accepts any other operation name, but one that is not an HTTP token cannot
/// be sent: a warning (weir skips the edit; Envoy would reject the route).
pub(crate) fn header_operation_token(name: &str) -> Result<(), String> {
    let bare = name.strip_prefix(':').unwrap_or(name);
    if bare.is_empty() || is_token(bare) {
        return Ok(());
    }
    Err(format!("header name {name:?} is not a valid HTTP header name; this edit is skipped"))
}

/// C-10: header values: no control characters but tab, and every `%` either `%%` or
/// part of a complete `%VARIABLE%` / `%VARIABLE(args)%`, parsed as Envoy's header parser
/// (and Istio's port of it) parses them: any text between two `%` is a variable name.
pub(crate) fn header_value(v: &str) -> Result<(), String> {
    if let Some(c) = v.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!("header value {v:?} contains the control character {c:?}"));
    }
    #[derive(PartialEq)]
    enum St {
        Literal,
        Name,
        ExpectArray,
        ExpectString,
        Str,
        ArrayDelimiterOrEnd,
        ArgsEnd,
        VariableEnd,
    }
    let b = v.as_bytes();
    let mut st = St::Literal;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        st = match st {
            St::Literal if c == b'%' => match b.get(i + 1) {
                None => {
                    return Err(format!(
                        "header value {v:?} ends with an unescaped '%' (write \"%%\" for a literal '%')"
                    ));
                }
                Some(b'%') => {
                    i += 1;
                    St::Literal
                }
                Some(_) => St::Name,
            },
            St::Literal => St::Literal,
            St::Name => match c {
                b'%' => St::Literal,
                b'(' => St::ExpectArray,
                _ => St::Name,
            },
            St::ExpectArray => match c {
                b'[' => St::ExpectString,
                b' ' => St::ExpectArray,
                _ => St::Str,
            },
            St::ArrayDelimiterOrEnd => match c {
                b',' => St::ExpectString,
                b']' => St::ArgsEnd,
                b' ' => St::ArrayDelimiterOrEnd,
                _ => {
                    return Err(format!(
                        "header value {v:?}: expected ',', ']' or a space in the variable's arguments"
                    ));
                }
            },
            St::ExpectString => match c {
                b'"' => St::Str,
                b' ' => St::ExpectString,
                _ => return Err(format!("header value {v:?}: expected '\"' in the variable's arguments")),
            },
            St::Str => match c {
                b'\\' if i + 1 >= b.len() => {
                    return Err(format!("header value {v:?}: unterminated backslash in the variable's arguments"));
                }
                b'\\' => {
                    i += 1;
                    St::Str
                }
                b')' => St::VariableEnd,
                b'"' => St::ArrayDelimiterOrEnd,
                _ => St::Str,
            },
            St::ArgsEnd => match c {
                b')' => St::VariableEnd,
                b' ' => St::ArgsEnd,
                _ => return Err(format!("header value {v:?}: expected ')' after the variable's arguments")),
            },
            St::VariableEnd => match c {
                b'%' => St::Literal,
                b' ' => St::VariableEnd,
                _ => return Err(format!("header value {v:?}: expected '%' to close the variable")),
            },
        };
        i += 1;
    }
    if st != St::Literal {
        return Err(format!(
            "header value {v:?} has an unterminated variable starting at '%' (write \"%%\" for a literal '%')"
        ));
    }
    Ok(())
}

/// C-11: compiles as RE2, non-empty, at most 1024 characters.
pub(crate) fn regex(re: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err("regex must not be empty".into());
    }
    if re.len() > 1024 {
        return Err(format!("regex is {} characters long; the limit is 1024", re.len()));
    }
    crate::re2::compile(re, false).map(|_| ()).map_err(|e| format!("regex {re:?} does not compile as RE2: {e}"))
}

/// C-13: the protocol names Istio knows (case-insensitive).
pub(crate) const PROTOCOLS: [&str; 12] =
    ["HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY", "TCP", "TLS", "UDP", "MONGO", "REDIS", "MYSQL"];

/// The protocol family of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    /// HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-WEB.
    Http,
    /// HTTPS, TLS.
    Tls,
    /// Anything else (TCP, MONGO, REDIS, MYSQL, UDP) or unknown.
    Other,
}

/// Classifies a protocol name.
pub(crate) fn proto_family(p: &str) -> Proto {
    match p.to_ascii_uppercase().as_str() {
        "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB" => Proto::Http,
        "HTTPS" | "TLS" => Proto::Tls,
        _ => Proto::Other,
    }
}

/// C-13; empty allowed only where `allow_empty` (protocol sniffing on SE and Sidecar).
pub(crate) fn protocol(p: &str, allow_empty: bool) -> Result<(), String> {
    if p.is_empty() {
        return if allow_empty { Ok(()) } else { Err("protocol is required".into()) };
    }
    if PROTOCOLS.iter().any(|k| k.eq_ignore_ascii_case(p)) {
        Ok(())
    } else {
        Err(format!("unknown protocol {p:?}; expected one of {}", PROTOCOLS.join(", ")))
    }
}

/// True for the status codes Go's `net/http` knows (what `retryOn` accepts as numbers).
pub(crate) fn is_known_http_status(code: i64) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451
        | 500..=508 | 510 | 511)
}

/// gRPC status names accepted by fault injection, indexed by their code.
pub const GRPC_STATUSES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Envoy's retry conditions accepted in `retryOn`.
pub(crate) const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Decoded length of a base64 text, or an error when it is not base64.
pub(crate) fn base64_len(s: &str) -> Result<usize, String> {
    let t = s.trim_end_matches('=');
    let pad = s.len() - t.len();
    let ok = t.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_'));
    if !ok || pad > 2 || (pad > 0 && !s.len().is_multiple_of(4)) || t.len() % 4 == 1 {
        return Err("body.bytes is not valid base64".into());
    }
    Ok(t.len() * 3 / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_parse_like_envoy() {
        for ok in [
            "plain",
            "100%%",
            "%HOSTNAME%",
            "a %REQ(x-id)% b",
            "/a%2Fb%2Fc",
            "%hostname%",
            "%START_TIME(%s)%",
            "%PER_REQUEST_STATE([\"a\", \"b\"])%",
            "",
        ] {
            assert!(header_value(ok).is_ok(), "{ok}: {:?}", header_value(ok));
        }
        for bad in ["50%off", "100%", "%HOSTNAME", "%X([\"a\" x])%", "%X([a])%", "%X(a) b%", "a\nb"] {
            assert!(header_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcard_domain_follows_istio() {
        for ok in
            ["reviews", "reviews.bookinfo", "*.example.com", "*", "*foo.baz", "*-foo.baz", "istio.io.", "123", "A.B.c"]
        {
            assert!(wildcard_domain(ok).is_ok(), "{ok}");
        }
        for bad in ["", "10.0.0.1", "foo.*.com", "-a.com", "a..b", "a_b.com", "default/reviews", "foo.123"] {
            assert!(wildcard_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fqdn_rejects_wildcards() {
        assert!(fqdn("a.b.com").is_ok());
        assert!(fqdn("reviews").is_ok());
        assert!(fqdn("*.b.com").is_err());
        assert!(fqdn("*").is_err());
    }

    #[test]
    fn header_values() {
        for ok in ["plain", "100%%", "%HOSTNAME%", "%REQ(x-id)%", "a%%b%DOWNSTREAM_REMOTE_ADDRESS%c", "tab\there"] {
            assert!(header_value(ok).is_ok(), "{ok}");
        }
        for bad in ["50%off", "trailing%", "%UNTERMINATED", "%REQ(x-id", "bell\u{7}"] {
            assert!(header_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_follow_kubernetes() {
        assert!(label_key("app").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("Bad/x").is_err());
        assert!(label_key("-x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3-x").is_ok());
        assert!(label_value("bad value").is_err());
        assert!(label_value(&"a".repeat(64)).is_err());
    }

    #[test]
    fn regexes_are_re2() {
        assert!(regex("^/api/v[0-9]+").is_ok());
        assert!(regex("(?=x)").is_err());
        assert!(regex("(a)\\1").is_err());
        assert!(regex("").is_err());
        assert!(regex(&"x".repeat(1024)).is_ok());
        assert!(regex(&"x".repeat(1025)).is_err());
    }
}
