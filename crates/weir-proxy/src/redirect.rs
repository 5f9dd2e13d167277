//! Redirects (spec §2.8) and the `httpsRedirect` of Gateway servers: building the
//! `Location` a route asks for.

use http::{HeaderValue, Response, StatusCode, header};
use weir_table::{Redirect, RedirectPath, RedirectPort};

use crate::body::ProxyBody;

pub(crate) fn redirect_response(status: StatusCode, location: &str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::empty());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

/// Builds a redirect's `Location` (spec §2.8): the scheme's default port is omitted.
pub(crate) fn redirect_location(
    rd: &Redirect,
    scheme: &str,
    authority: &str,
    path: &str,
    query: Option<&str>,
    route_port: u16,
    local_port: u16,
) -> String {
    let new_scheme = rd.scheme.as_deref().unwrap_or(scheme);
    let req_host = weir_table::hosts::strip_port(authority);
    let req_port = weir_table::hosts::port_of(authority);
    let host = rd.authority.as_deref().map(weir_table::hosts::strip_port).unwrap_or(req_host);
    let explicit_in_authority = rd.authority.as_deref().and_then(weir_table::hosts::port_of);
    let port = match rd.port {
        RedirectPort::Explicit(p) => Some(p),
        RedirectPort::ProtocolDefault => None,
        RedirectPort::RequestPort => Some(if route_port != 0 { route_port } else { local_port }),
        RedirectPort::Keep => {
            explicit_in_authority.or(if rd.authority.is_some() || rd.scheme.is_some() { None } else { req_port })
        }
    };
    let default = if new_scheme == "https" { 443 } else { 80 };
    let port = port.filter(|p| *p != default);
    let new_path = match &rd.path {
        RedirectPath::Keep => path.to_string(),
        RedirectPath::Full(p) => p.to_string(),
        RedirectPath::Prefix { matched, replacement } => match path.strip_prefix(&**matched) {
            Some(rest) => format!("{replacement}{rest}"),
            None => path.to_string(),
        },
    };
    let mut out = format!("{new_scheme}://{host}");
    if let Some(p) = port {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(&new_path);
    // A new uri with its own query replaces the query; otherwise it is kept.
    if let (Some(q), false) = (query, new_path.contains('?')) {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(scheme: Option<&str>, authority: Option<&str>, port: RedirectPort, path: RedirectPath) -> Redirect {
        Redirect {
            scheme: scheme.map(Into::into),
            authority: authority.map(Into::into),
            port,
            path,
            status: StatusCode::MOVED_PERMANENTLY,
            headers: Default::default(),
        }
    }

    #[test]
    fn redirect_locations() {
        let keep = RedirectPath::Keep;
        let l = |r: &Redirect, auth: &str, path: &str, q: Option<&str>| {
            redirect_location(r, "http", auth, path, q, 8080, 8080)
        };
        assert_eq!(
            l(&rd(Some("https"), None, RedirectPort::Keep, keep.clone()), "a.com", "/x", Some("y=1")),
            "https://a.com/x?y=1"
        );
        assert_eq!(
            l(&rd(None, Some("b.com"), RedirectPort::Keep, keep.clone()), "a.com:8080", "/x", None),
            "http://b.com/x"
        );
        assert_eq!(
            l(&rd(None, None, RedirectPort::Keep, RedirectPath::Full("/new".into())), "a.com:8080", "/x", None),
            "http://a.com:8080/new"
        );
        assert_eq!(
            l(&rd(None, None, RedirectPort::Explicit(80), keep.clone()), "a.com:8080", "/x", None),
            "http://a.com/x"
        );
        assert_eq!(
            l(&rd(Some("https"), None, RedirectPort::Explicit(8443), keep.clone()), "a.com", "/", None),
            "https://a.com:8443/"
        );
        assert_eq!(
            l(&rd(None, None, RedirectPort::RequestPort, keep.clone()), "a.com", "/", None),
            "http://a.com:8080/"
        );
        assert_eq!(
            l(&rd(Some("https"), None, RedirectPort::ProtocolDefault, keep.clone()), "a.com:8080", "/", None),
            "https://a.com/"
        );
        let prefix = RedirectPath::Prefix { matched: "/old".into(), replacement: "/new".into() };
        assert_eq!(l(&rd(None, None, RedirectPort::Keep, prefix), "a.com", "/old/x", None), "http://a.com/new/x");
    }
}
