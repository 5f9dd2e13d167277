//! The policy blocks of a VirtualService HTTP route (VS-15 .. VS-26 and neighbours):
//! header operations, CORS, faults, redirects, retries and rewrites, each checked on its
//! own. `virtual_service` walks the routes and calls these.

use super::{Report, rules};
use crate::diag::{Severity, codes};
use crate::path::FieldPath;
use crate::types::{CorsPolicy, Headers, HttpFaultInjection, HttpRedirect, HttpRetry, HttpRewrite, HttpRoute};

fn header_ops(ops: &crate::types::HeaderOperations, request: bool, p: &FieldPath, rep: &mut Report) {
    for (field, map) in [("set", &ops.set), ("add", &ops.add)] {
        for (name, value) in map {
            let hp = p.key(field).key(name);
            let name_ok =
                if request { rules::request_set_header_name(name) } else { rules::header_operation_name(name) };
            if let Err(e) = name_ok {
                rep.error_at_key(&hp, e);
            } else if let Err(w) = rules::header_operation_token(name) {
                rep.warn(&hp, w);
            }
            rep.check(&hp, rules::header_value(value));
        }
    }
    for (i, name) in ops.remove.iter().enumerate() {
        let ip = p.key("remove").index(i);
        match rules::header_operation_name(name) {
            Err(e) => rep.error(&ip, e),
            Ok(()) => {
                if let Err(w) = rules::header_operation_token(name) {
                    rep.warn(&ip, w);
                }
            }
        }
    }
}

pub(super) fn headers(h: &Headers, p: &FieldPath, rep: &mut Report) {
    if let Some(req) = &h.request {
        header_ops(req, true, &p.key("request"), rep);
    }
    if let Some(resp) = &h.response {
        header_ops(resp, false, &p.key("response"), rep);
    }
}

fn is_authority_header(h: &str) -> bool {
    h.eq_ignore_ascii_case("host") || h == ":authority"
}

/// VS-20: the authority may be rewritten in one place only.
pub(super) fn authority_rewrite(r: &HttpRoute, p: &FieldPath, rep: &mut Report) {
    let mut current = r.rewrite.as_ref().map(|rw| rw.authority.as_str()).unwrap_or("");
    let Some(req) = r.headers.as_ref().and_then(|h| h.request.as_ref()) else {
        return;
    };
    for (field, map) in [("set", &req.set), ("add", &req.add)] {
        for (k, v) in map.iter().filter(|(k, _)| is_authority_header(k)) {
            if !current.is_empty() {
                rep.error(
                    &p.key("headers").key("request").key(field).key(k),
                    format!("the authority is rewritten more than once: have {current:?}, attempting to set {v:?}"),
                );
            }
            current = v;
        }
    }
}

pub(super) fn cors(c: &CorsPolicy, p: &FieldPath, rep: &mut Report) {
    for (i, o) in c.allow_origins.iter().enumerate() {
        let op = p.key("allowOrigins").index(i);
        let value = o.exact.as_deref().or(o.prefix.as_deref()).or(o.regex.as_deref()).unwrap_or("");
        if value.is_empty() {
            rep.error(&op, "an allowOrigins entry needs a non-empty exact, prefix or regex value");
        } else if let Some(re) = &o.regex {
            rep.check(&op.key("regex"), rules::regex(re));
        }
        if o.set_count() > 1 {
            rep.error(&op, "only one of exact, prefix and regex may be set");
        }
    }
    const METHODS: [&str; 10] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"];
    for (i, m) in c.allow_methods.iter().enumerate() {
        if !METHODS.contains(&m.as_str()) {
            rep.error(
                &p.key("allowMethods").index(i),
                format!("{m:?} is not a valid CORS method; expected one of {}", METHODS.join(", ")),
            );
        }
    }
    for (field, list) in [("allowHeaders", &c.allow_headers), ("exposeHeaders", &c.expose_headers)] {
        for (i, h) in list.iter().enumerate() {
            if h != "*" && !rules::is_token(h) {
                rep.error(&p.key(field).index(i), format!("{h:?} is not a valid header name"));
            }
        }
    }
    if let Some(age) = &c.max_age {
        rep.check(&p.key("maxAge"), rules::duration(age));
        if !age.is_whole_seconds() {
            rep.error(&p.key("maxAge"), format!("maxAge \"{age}\" must be a whole number of seconds"));
        }
    }
}

pub(super) fn fault(f: &HttpFaultInjection, p: &FieldPath, rep: &mut Report) {
    if f.abort.is_none() && f.delay.is_none() {
        rep.error(p, "fault injection needs an abort, a delay, or both");
    }
    if let Some(a) = &f.abort {
        let ap = p.key("abort");
        if let Some(pct) = a.percentage {
            rep.check(&ap.key("percentage").key("value"), rules::fault_percentage(pct.value));
        }
        let kinds = [a.http_status.is_some(), a.grpc_status.is_some(), a.http2_error.is_some()];
        if kinds.iter().filter(|b| **b).count() > 1 {
            rep.error(&ap, "only one of httpStatus, grpcStatus and http2Error may be set");
        }
        if let Some(s) = a.http_status {
            if !(200..=600).contains(&s) {
                rep.error(&ap.key("httpStatus"), format!("HTTP status {s} must be in the range 200..600"));
            }
        } else if let Some(g) = &a.grpc_status {
            if !rules::GRPC_STATUSES.contains(&g.as_str()) {
                rep.error(
                    &ap.key("grpcStatus"),
                    format!("gRPC status {g:?} is not a gRPC status name (such as \"UNAVAILABLE\" or \"NOT_FOUND\")"),
                );
            }
        } else if a.http2_error.is_some() {
            rep.error(&ap.key("http2Error"), "HTTP/2 error abort injection is not supported");
        } else {
            rep.warn(&ap, "abort is configured but sets no error type (httpStatus or grpcStatus)");
        }
    }
    if let Some(d) = &f.delay {
        let dp = p.key("delay");
        if let Some(pct) = d.percent {
            rep.check(&dp.key("percent"), rules::int_percent(pct));
            rep.push(
                Severity::Warning,
                codes::DEPRECATED,
                &dp.key("percent"),
                "\"percent\" is deprecated; use \"percentage\" instead",
            );
        }
        if let Some(pct) = d.percentage {
            rep.check(&dp.key("percentage").key("value"), rules::fault_percentage(pct.value));
        }
        if d.fixed_delay.is_some() && d.exponential_delay.is_some() {
            rep.error(&dp, "only one of fixedDelay and exponentialDelay may be set");
        }
        if let Some(fd) = &d.fixed_delay {
            rep.check(&dp.key("fixedDelay"), rules::duration(fd));
        } else if let Some(ed) = &d.exponential_delay {
            rep.check(&dp.key("exponentialDelay"), rules::duration(ed));
            rep.error(&dp.key("exponentialDelay"), "exponentialDelay is not supported");
        }
    }
}

pub(super) fn redirect(rd: &HttpRedirect, route: &HttpRoute, p: &FieldPath, rep: &mut Report) {
    let has_port = rd.port != 0 || rd.derive_port.is_some();
    if rd.uri.is_empty() && rd.prefix_rewrite.is_none() && rd.authority.is_empty() && !has_port && rd.scheme.is_empty()
    {
        rep.error(p, "a redirect must set at least one of uri, prefixRewrite, authority, scheme or port");
    }
    if !rd.uri.is_empty() && rd.prefix_rewrite.is_some() {
        rep.error(&p.key("prefixRewrite"), "uri and prefixRewrite are mutually exclusive");
    }
    if rd.prefix_rewrite.is_some() {
        let all_prefix = route.matches.iter().all(|m| m.uri.as_ref().is_some_and(|u| u.prefix.is_some()));
        if !all_prefix {
            rep.error(
                &p.key("prefixRewrite"),
                "prefixRewrite requires every match of the rule to use a uri prefix match",
            );
        }
    }
    if rd.port != 0 && rd.derive_port.is_some() {
        rep.error(&p.key("derivePort"), "only one of port and derivePort may be set");
    }
    if rd.redirect_code != 0 && !(300..=399).contains(&rd.redirect_code) {
        rep.error(
            &p.key("redirectCode"),
            format!("redirect code {} must be a 3xx status (300..399)", rd.redirect_code),
        );
    }
    if !rd.scheme.is_empty() && rd.scheme != "http" && rd.scheme != "https" {
        rep.error(&p.key("scheme"), format!("redirect scheme {:?} must be \"http\" or \"https\"", rd.scheme));
    }
    if rd.port != 0 {
        rep.check(&p.key("port"), rules::port(rd.port));
    }
}

pub(super) fn retries(rt: &HttpRetry, p: &FieldPath, rep: &mut Report) {
    if rt.attempts < 0 {
        rep.error(&p.key("attempts"), format!("attempts {} must not be negative", rt.attempts));
    }
    if rt.attempts == 0
        && (rt.per_try_timeout.is_some() || !rt.retry_on.is_empty() || rt.retry_remote_localities.is_some())
    {
        rep.error(p, "retry policy settings (perTryTimeout, retryOn, retryRemoteLocalities) are set while attempts is 0 (retries disabled)");
    }
    if let Some(t) = &rt.per_try_timeout {
        rep.check(&p.key("perTryTimeout"), rules::duration(t));
    }
    if !rt.retry_on.is_empty() {
        for policy in rt.retry_on.split(',') {
            let ok = match policy.parse::<i64>() {
                Ok(code) => rules::is_known_http_status(code),
                Err(_) => rules::RETRY_ON.contains(&policy),
            };
            if !ok {
                rep.error(
                    &p.key("retryOn"),
                    format!("{policy:?} is not a valid retryOn policy: expected an Envoy retry condition ({}...) or an HTTP status code", rules::RETRY_ON[..4].join(", ")),
                );
            }
        }
    }
    if let Some(b) = &rt.backoff {
        rep.check(&p.key("backoff"), rules::duration(b));
    }
}

pub(super) fn rewrite(rw: &HttpRewrite, p: &FieldPath, rep: &mut Report) {
    if !rw.uri.is_empty() && rw.uri_regex_rewrite.is_some() {
        rep.error(p, "rewrite may set only one of uri and uriRegexRewrite");
    }
    if rw.uri.is_empty() && rw.uri_regex_rewrite.is_none() && rw.authority.is_empty() {
        rep.error(p, "rewrite must set at least one of uri, uriRegexRewrite or authority");
    }
    if let Some(rr) = &rw.uri_regex_rewrite {
        let rp = p.key("uriRegexRewrite");
        if rr.pattern.is_empty() || rr.rewrite.is_empty() {
            rep.error(&rp, "uriRegexRewrite needs both match and rewrite");
        } else {
            rep.check(&rp.key("match"), rules::regex(&rr.pattern));
        }
    }
}
