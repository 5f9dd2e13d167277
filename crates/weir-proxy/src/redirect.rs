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

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Builds a redirect's `Location` (spec §2.8). With `port` or `derivePort` the host
/// loses its port and the new one is written unless it is the scheme's default. Without
/// them the host is kept as Envoy keeps it: a new `authority` verbatim, else the
/// request's Host with its port, which is dropped only when the scheme changes and the
/// port was the old scheme's default (`http://a:80` -> `https://a`).
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
    let host_of = |a: &str| weir_table::hosts::strip_port(a).to_string();
    let given = rd.authority.as_deref();
    let with_port = |p: u16| {
        let host = host_of(given.unwrap_or(authority));
        if p == default_port(new_scheme) { host } else { format!("{host}:{p}") }
    };
    let host = match rd.port {
        RedirectPort::Explicit(p) => with_port(p),
        RedirectPort::RequestPort => with_port(if route_port != 0 { route_port } else { local_port }),
        RedirectPort::ProtocolDefault => host_of(given.unwrap_or(authority)),
        RedirectPort::Keep => match given {
            Some(a) => a.to_string(),
            None => match weir_table::hosts::port_of(authority) {
                Some(p) if new_scheme != scheme && p == default_port(scheme) => host_of(authority),
                _ => authority.to_string(),
            },
        },
    };
    let new_path = match &rd.path {
        RedirectPath::Keep => path.to_string(),
        RedirectPath::Full(p) => p.to_string(),
        RedirectPath::Prefix { matched, replacement } => match path.strip_prefix(&**matched) {
            Some(rest) => format!("{replacement}{rest}"),
            None => path.to_string(),
        },
    };
    let mut out = format!("{new_scheme}://{host}");
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
        // Envoy keeps the Host's port unless the scheme changes away from its default.
        assert_eq!(
            l(&rd(Some("https"), None, RedirectPort::Keep, keep.clone()), "a.com:8080", "/x", None),
            "https://a.com:8080/x"
        );
        assert_eq!(
            l(&rd(Some("https"), None, RedirectPort::Keep, keep.clone()), "a.com:80", "/x", None),
            "https://a.com/x"
        );
        assert_eq!(
            l(&rd(None, None, RedirectPort::Keep, RedirectPath::Full("/n".into())), "a.com:80", "/x", None),
            "http://a.com:80/n"
        );
        // A new authority is used as written.
        assert_eq!(
            l(&rd(None, Some("b.com"), RedirectPort::Keep, keep.clone()), "a.com:8080", "/x", None),
            "http://b.com/x"
        );
        assert_eq!(
            l(&rd(None, Some("b.com:80"), RedirectPort::Keep, keep.clone()), "a.com", "/x", None),
            "http://b.com:80/x"
        );
        assert_eq!(
            l(&rd(None, Some("b.com:9"), RedirectPort::Explicit(8443), keep.clone()), "a.com", "/x", None),
            "http://b.com:8443/x"
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
