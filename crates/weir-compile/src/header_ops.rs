//! VirtualService `headers` edits compiled: names parsed, `host`/`:authority` turned
//! into an authority rewrite, values into Envoy `%VARIABLE%` templates.

use http::{HeaderName, HeaderValue};
use weir_model::types::{HeaderOperations, Headers};
use weir_table::{HeaderOps, HeaderTemplate, TemplatePart};

/// Envoy header value templates: `%%` is a literal `%`, `%NAME%` and `%NAME(arg)%`
/// are variables.
pub(crate) fn template(value: &str) -> HeaderTemplate {
    if !value.contains('%')
        && let Ok(v) = HeaderValue::from_str(value)
    {
        return HeaderTemplate::Literal(v);
    }
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            text.push('%');
            rest = r;
            continue;
        }
        let Some(end) = rest.find('%') else {
            text.push('%');
            continue;
        };
        let var = &rest[..end];
        rest = &rest[end + 1..];
        let part = match var {
            "DOWNSTREAM_REMOTE_ADDRESS" => TemplatePart::DownstreamRemoteAddress,
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => TemplatePart::DownstreamRemoteAddressWithoutPort,
            "DOWNSTREAM_LOCAL_ADDRESS" => TemplatePart::DownstreamLocalAddress,
            "HOSTNAME" => TemplatePart::Hostname,
            "PROTOCOL" => TemplatePart::Protocol,
            "START_TIME" => TemplatePart::StartTime,
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => TemplatePart::DownstreamLocalAddressWithoutPort,
            "DOWNSTREAM_LOCAL_PORT" => TemplatePart::DownstreamLocalPort,
            "DOWNSTREAM_REMOTE_PORT" => TemplatePart::DownstreamRemotePort,
            "UPSTREAM_CLUSTER" => TemplatePart::UpstreamCluster,
            "ROUTE_NAME" => TemplatePart::RouteName,
            "RESPONSE_CODE" => TemplatePart::ResponseCode,
            v => function_part(v).unwrap_or_else(|| TemplatePart::Unknown(format!("%{var}%").into())),
        };
        if !text.is_empty() {
            parts.push(TemplatePart::Text(std::mem::take(&mut text).into()));
        }
        parts.push(part);
    }
    text.push_str(rest);
    if parts.is_empty()
        && let Ok(v) = HeaderValue::from_str(&text)
    {
        return HeaderTemplate::Literal(v);
    }
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text.into()));
    }
    HeaderTemplate::Parts(parts.into())
}

/// `REQ(name)`, `RESP(name)` and `ENVIRONMENT(NAME)` (read once, here).
fn function_part(v: &str) -> Option<TemplatePart> {
    let (func, arg) = v.strip_suffix(')')?.split_once('(')?;
    let header = || HeaderName::from_bytes(arg.to_ascii_lowercase().as_bytes()).ok();
    match func {
        "REQ" => header().map(TemplatePart::Req),
        "RESP" => header().map(TemplatePart::Resp),
        "ENVIRONMENT" => Some(TemplatePart::Text(std::env::var(arg).unwrap_or_else(|_| "-".into()).into())),
        _ => None,
    }
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case("host") || name == ":authority"
}

/// Header edits, with `host`/`:authority` set or add turned into an authority rewrite.
pub(crate) fn header_ops(h: Option<&Headers>) -> (HeaderOps, Option<HeaderValue>) {
    let mut ops = HeaderOps::default();
    let mut authority = None;
    let Some(h) = h else { return (ops, None) };
    let pairs = |m: &std::collections::BTreeMap<String, String>, authority: &mut Option<HeaderValue>, request: bool| {
        let mut v = Vec::new();
        for (k, val) in m {
            if request && is_authority(k) {
                if authority.is_none() {
                    *authority = HeaderValue::from_str(val).ok();
                }
                continue;
            }
            if let Ok(n) = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()) {
                v.push((n, template(val)));
            }
        }
        v
    };
    let names = |l: &[String]| -> Vec<HeaderName> {
        l.iter().filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok()).collect()
    };
    let empty = HeaderOperations::default();
    let req = h.request.as_ref().unwrap_or(&empty);
    let resp = h.response.as_ref().unwrap_or(&empty);
    ops.request_set = pairs(&req.set, &mut authority, true);
    ops.request_add = pairs(&req.add, &mut authority, true);
    ops.request_remove = names(&req.remove);
    ops.response_set = pairs(&resp.set, &mut authority, false);
    ops.response_add = pairs(&resp.add, &mut authority, false);
    ops.response_remove = names(&resp.remove);
    (ops, authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(matches!(template("plain"), HeaderTemplate::Literal(v) if v == "plain"));
        assert!(matches!(template("100%%"), HeaderTemplate::Literal(v) if v == "100%"));
        let HeaderTemplate::Parts(p) = template("ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%;id=%REQ(X-Id)%") else {
            panic!()
        };
        assert_eq!(p.len(), 4);
        assert!(matches!(&p[1], TemplatePart::DownstreamRemoteAddressWithoutPort));
        assert!(matches!(&p[3], TemplatePart::Req(n) if n == "x-id"));
        let HeaderTemplate::Parts(p) = template("%RESP(X-A)%%ENVIRONMENT(WEIR_TEST_UNSET_VAR)%%NOT_A_VAR%") else {
            panic!()
        };
        assert!(matches!(&p[0], TemplatePart::Resp(n) if n == "x-a"));
        assert!(matches!(&p[1], TemplatePart::Text(t) if &**t == "-"));
        assert!(matches!(&p[2], TemplatePart::Unknown(t) if &**t == "%NOT_A_VAR%"));
    }
}
