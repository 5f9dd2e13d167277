//! Request matchers, compiled from `HTTPMatchRequest`: everything is decided before the
//! first request (regexes built and anchored, header names parsed and lower-cased).

use http::HeaderName;
use regex::Regex;
use serde::Serialize;

use crate::route::RequestView;

/// A string condition.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrMatch {
    /// Equality (case-sensitive).
    Exact(Box<str>),
    /// Prefix (case-sensitive).
    Prefix(Box<str>),
    /// RE2 over the whole string (compiled with `^(?:...)$`). Boxed: a compiled regex
    /// is several words, and most conditions of a large mesh are exact or prefix.
    Regex(#[serde(serialize_with = "crate::ser::regex")] Box<Regex>),
    /// Presence only (`{}` or `regex: "*"`).
    Present,
}

impl StrMatch {
    /// True when `value` satisfies the condition.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StrMatch::Exact(e) => value == &**e,
            StrMatch::Prefix(p) => value.starts_with(&**p),
            StrMatch::Regex(r) => r.is_match(value),
            StrMatch::Present => true,
        }
    }

    /// How the condition is written, for dumps and traces.
    pub fn describe(&self) -> String {
        match self {
            StrMatch::Exact(e) => format!("exact {e:?}"),
            StrMatch::Prefix(p) => format!("prefix {p:?}"),
            StrMatch::Regex(r) => {
                let s = r.as_str();
                let inner = s.strip_prefix("^(?:").and_then(|s| s.strip_suffix(")$")).unwrap_or(s);
                format!("regex {inner:?}")
            }
            StrMatch::Present => "present".into(),
        }
    }

    /// True for the forms that match every value (`prefix ""`, `regex ".*"`, presence).
    pub fn is_catch_all(&self) -> bool {
        match self {
            StrMatch::Prefix(p) => p.is_empty(),
            StrMatch::Regex(r) => r.as_str() == "^(?:.*)$",
            StrMatch::Present => true,
            StrMatch::Exact(_) => false,
        }
    }
}

/// The path condition (`uri`), with Istio's `ignoreUriCase`.
#[derive(Debug, Clone, Serialize)]
pub struct PathMatch {
    /// The condition; for `ignore_case` exact/prefix values are stored lower-case.
    pub matcher: StrMatch,
    /// Case-insensitive exact/prefix.
    pub ignore_case: bool,
}

impl PathMatch {
    /// True when `path` (without the query) satisfies the condition.
    pub fn matches(&self, path: &str) -> bool {
        if !self.ignore_case {
            return self.matcher.matches(path);
        }
        match &self.matcher {
            StrMatch::Exact(e) => path.eq_ignore_ascii_case(e),
            StrMatch::Prefix(p) => {
                path.len() >= p.len() && path.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            other => other.matches(path),
        }
    }

    /// The matched prefix length, for prefix rewrites.
    pub fn prefix(&self) -> Option<&str> {
        match &self.matcher {
            StrMatch::Prefix(p) => Some(p),
            _ => None,
        }
    }
}

/// Which value a header condition reads.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderKey {
    /// A regular header.
    Name(#[serde(serialize_with = "crate::ser::header_name")] HeaderName),
    /// `:method`.
    Method,
    /// `:authority`.
    Authority,
    /// `:path` (with the query string).
    Path,
    /// `:scheme`.
    Scheme,
}

/// A header condition (`headers` or, inverted, `withoutHeaders`).
#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatch {
    /// Header to read.
    #[serde(skip)]
    pub key: HeaderKey,
    /// Name as written (for dumps).
    pub name: Box<str>,
    /// Value condition.
    pub matcher: StrMatch,
    /// `withoutHeaders`: satisfied when the condition is false; a missing header reads
    /// as "" for value conditions.
    pub invert: bool,
}

impl HeaderMatch {
    fn value<'a>(&self, req: &'a RequestView<'a>, joined: &'a mut String) -> Option<&'a str> {
        match &self.key {
            HeaderKey::Method => Some(req.method.as_str()),
            HeaderKey::Authority => Some(req.authority),
            HeaderKey::Scheme => Some(req.scheme),
            HeaderKey::Path => Some(req.path_and_query),
            HeaderKey::Name(n) => {
                let mut all = req.headers.get_all(n).iter();
                let first = all.next()?;
                let Some(second) = all.next() else { return first.to_str().ok() };
                // Envoy matches several values joined with ','.
                for v in [first, second].into_iter().chain(all) {
                    if !joined.is_empty() {
                        joined.push(',');
                    }
                    joined.push_str(v.to_str().unwrap_or(""));
                }
                Some(joined.as_str())
            }
        }
    }

    /// True when the request satisfies this condition.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let mut joined = String::new();
        let value = self.value(req, &mut joined);
        if self.invert {
            match (value, &self.matcher) {
                (None, StrMatch::Present) => true,
                (None, m) => !m.matches(""),
                (Some(v), m) => !m.matches(v),
            }
        } else {
            value.is_some_and(|v| self.matcher.matches(v))
        }
    }
}

/// A query-parameter condition.
#[derive(Debug, Clone, Serialize)]
pub struct QueryMatch {
    /// Parameter name.
    pub name: Box<str>,
    /// Value condition (`exact: ""` matches `?key`).
    pub matcher: StrMatch,
}

/// The first value of `name` in a query string: `Some("")` for `?name` or `?name=`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// One compiled `HTTPMatchRequest`: every present condition must hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpMatch {
    /// Match name (for route names).
    pub name: Box<str>,
    /// `uri`.
    pub path: Option<PathMatch>,
    /// `method`.
    pub method: Option<StrMatch>,
    /// `scheme`.
    pub scheme: Option<StrMatch>,
    /// `authority`.
    pub authority: Option<StrMatch>,
    /// `headers` and `withoutHeaders`.
    pub headers: Vec<HeaderMatch>,
    /// `queryParams`.
    pub query: Vec<QueryMatch>,
    /// `port`, checked at request time on the mesh listener (gateway listeners drop
    /// non-matching entries when the table is compiled).
    pub port: Option<u16>,
}

/// The condition of an [`HttpMatch`] a request failed (what `explain` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// `port`.
    Port,
    /// `uri`.
    Path,
    /// `method`.
    Method,
    /// `scheme`.
    Scheme,
    /// `authority`.
    Authority,
    /// `headers[i]` / `withoutHeaders`.
    Header(usize),
    /// `queryParams[i]`.
    Query(usize),
}

impl HttpMatch {
    /// True when the request satisfies every condition.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.failing(req).is_none()
    }

    /// The first condition the request fails, checked in the order [`HttpMatch::matches`]
    /// checks them (it is the same function): `None` when the request matches.
    pub fn failing(&self, req: &RequestView<'_>) -> Option<Failed> {
        if let Some(p) = self.port
            && p != req.port
        {
            return Some(Failed::Port);
        }
        if let Some(m) = &self.path
            && !m.matches(req.path)
        {
            return Some(Failed::Path);
        }
        if let Some(m) = &self.method
            && !m.matches(req.method.as_str())
        {
            return Some(Failed::Method);
        }
        if let Some(m) = &self.scheme
            && !m.matches(req.scheme)
        {
            return Some(Failed::Scheme);
        }
        if let Some(m) = &self.authority
            && !m.matches(req.authority)
        {
            return Some(Failed::Authority);
        }
        if let Some(i) = self.headers.iter().position(|h| !h.matches(req)) {
            return Some(Failed::Header(i));
        }
        if !self.query.is_empty() {
            let q = req.query.unwrap_or("");
            for (i, qm) in self.query.iter().enumerate() {
                match query_param(q, &qm.name) {
                    Some(v) if qm.matcher.matches(v) => {}
                    _ => return Some(Failed::Query(i)),
                }
            }
        }
        None
    }

    /// A failed condition, in words (`header end-user exact "jason"`).
    pub fn describe_failure(&self, f: Failed) -> String {
        let opt = |what: &str, m: &Option<StrMatch>| m.as_ref().map(|m| format!("{what} {}", m.describe()));
        let text = match f {
            Failed::Port => self.port.map(|p| format!("port {p}")),
            Failed::Path => self
                .path
                .as_ref()
                .map(|p| format!("uri {}{}", p.matcher.describe(), if p.ignore_case { " (ignore case)" } else { "" })),
            Failed::Method => opt("method", &self.method),
            Failed::Scheme => opt("scheme", &self.scheme),
            Failed::Authority => opt("authority", &self.authority),
            Failed::Header(i) => self.headers.get(i).map(|h| {
                format!("{}header {} {}", if h.invert { "without " } else { "" }, h.name, h.matcher.describe())
            }),
            Failed::Query(i) => self.query.get(i).map(|q| format!("query {} {}", q.name, q.matcher.describe())),
        };
        text.unwrap_or_default()
    }

    /// True when this match accepts every request (no conditions, or only a catch-all
    /// path): routes after it can never be reached.
    pub fn is_catch_all(&self) -> bool {
        self.method.is_none()
            && self.scheme.is_none()
            && self.authority.is_none()
            && self.headers.is_empty()
            && self.query.is_empty()
            && self.port.is_none()
            && self.path.as_ref().is_none_or(|p| p.matcher.is_catch_all() || p.prefix() == Some("/"))
    }

    /// The conditions, in words (for `explain` and dumps).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.path {
            out.push(format!("uri {}{}", p.matcher.describe(), if p.ignore_case { " (ignore case)" } else { "" }));
        }
        for (what, m) in [("method", &self.method), ("scheme", &self.scheme), ("authority", &self.authority)] {
            if let Some(m) = m {
                out.push(format!("{what} {}", m.describe()));
            }
        }
        for h in &self.headers {
            out.push(format!("{}header {} {}", if h.invert { "without " } else { "" }, h.name, h.matcher.describe()));
        }
        for q in &self.query {
            out.push(format!("query {} {}", q.name, q.matcher.describe()));
        }
        if let Some(p) = self.port {
            out.push(format!("port {p}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn req<'a>(method: &'a Method, path: &'a str, query: Option<&'a str>, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView { method, scheme: "http", authority: "a.com", path, path_and_query: path, query, headers, port: 80 }
    }

    fn re(p: &str) -> StrMatch {
        StrMatch::Regex(Box::new(Regex::new(&format!("^(?:{p})$")).unwrap()))
    }

    #[test]
    fn path_forms() {
        let exact = PathMatch { matcher: StrMatch::Exact("/a".into()), ignore_case: false };
        assert!(exact.matches("/a") && !exact.matches("/a/") && !exact.matches("/A"));
        let prefix = PathMatch { matcher: StrMatch::Prefix("/foo".into()), ignore_case: false };
        assert!(prefix.matches("/foobar") && prefix.matches("/foo/x") && !prefix.matches("/fo"));
        let icase = PathMatch { matcher: StrMatch::Prefix("/foo".into()), ignore_case: true };
        assert!(icase.matches("/FOObar"));
        let regex = PathMatch { matcher: re("/v[0-9]+/.*"), ignore_case: false };
        assert!(regex.matches("/v1/x") && !regex.matches("/x/v1/x"));
    }

    #[test]
    fn headers_presence_exact_empty_and_inverted() {
        let m = Method::GET;
        let mut h = HeaderMap::new();
        h.insert("end-user", HeaderValue::from_static("jason"));
        h.insert("empty", HeaderValue::from_static(""));
        let r = req(&m, "/", None, &h);
        let hm = |name: &str, matcher: StrMatch, invert: bool| HeaderMatch {
            key: HeaderKey::Name(HeaderName::from_bytes(name.as_bytes()).unwrap()),
            name: name.into(),
            matcher,
            invert,
        };
        assert!(hm("end-user", StrMatch::Exact("jason".into()), false).matches(&r));
        assert!(!hm("end-user", StrMatch::Exact("Jason".into()), false).matches(&r));
        assert!(hm("empty", StrMatch::Exact("".into()), false).matches(&r));
        assert!(!hm("missing", StrMatch::Exact("".into()), false).matches(&r));
        assert!(hm("end-user", StrMatch::Present, false).matches(&r));
        assert!(!hm("missing", StrMatch::Present, false).matches(&r));
        // withoutHeaders
        assert!(hm("missing", StrMatch::Present, true).matches(&r));
        assert!(!hm("end-user", StrMatch::Present, true).matches(&r));
        assert!(hm("missing", StrMatch::Exact("x".into()), true).matches(&r));
        assert!(!hm("missing", StrMatch::Exact("".into()), true).matches(&r));
        assert!(!hm("end-user", StrMatch::Exact("jason".into()), true).matches(&r));
    }

    #[test]
    fn several_header_values_are_joined() {
        let m = Method::GET;
        let mut h = HeaderMap::new();
        h.append("x", HeaderValue::from_static("a"));
        h.append("x", HeaderValue::from_static("b"));
        let r = req(&m, "/", None, &h);
        let hm = HeaderMatch {
            key: HeaderKey::Name(HeaderName::from_static("x")),
            name: "x".into(),
            matcher: StrMatch::Exact("a,b".into()),
            invert: false,
        };
        assert!(hm.matches(&r));
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param("a=1&b=2", "b"), Some("2"));
        assert_eq!(query_param("a&b=2", "a"), Some(""));
        assert_eq!(query_param("a=1", "c"), None);
        let m = Method::GET;
        let h = HeaderMap::new();
        let r = req(&m, "/", Some("id=123&debug"), &h);
        let q = |name: &str, matcher| HttpMatch {
            query: vec![QueryMatch { name: name.into(), matcher }],
            ..Default::default()
        };
        assert!(q("id", re("\\d+")).matches(&r));
        assert!(!q("id", re("2")).matches(&r));
        assert!(q("debug", StrMatch::Exact("".into())).matches(&r));
        assert!(q("debug", StrMatch::Present).matches(&r));
        assert!(!q("nope", StrMatch::Present).matches(&r));
    }
}
