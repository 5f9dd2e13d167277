//! Host-name lookup with Istio's precedence: an exact name, else the matching wildcard
//! with the longest suffix, else `*`.
//!
//! Wildcards of the usual form (`*.example.com`) are kept in a hash map by suffix, and
//! a lookup tries each dot-suffix of the name (`.b.example.com`, `.example.com`, `.com`),
//! longest first: the cost depends on the number of labels in the name, not on the
//! number of hosts in the table. Partial wildcards (`*foo.com`) are rare and scanned.

use std::collections::HashMap;

use foldhash::fast::RandomState;

/// Maps host names (and wildcards) to values of `T`.
#[derive(Debug, Clone)]
pub struct HostMap<T> {
    exact: HashMap<Box<str>, T, RandomState>,
    /// `*.example.com` stored under `.example.com`.
    dot_wildcards: HashMap<Box<str>, T, RandomState>,
    /// `*foo.com` (suffix `foo.com`), longest suffix first.
    partial: Vec<(Box<str>, T)>,
    any: Option<T>,
}

impl<T> Default for HostMap<T> {
    fn default() -> Self {
        HostMap { exact: HashMap::default(), dot_wildcards: HashMap::default(), partial: Vec::new(), any: None }
    }
}

/// Longest host name we look up; longer names never match (DNS caps names at 253).
const MAX_HOST: usize = 255;

impl<T> HostMap<T> {
    /// Inserts `host` (already lower-case, no port). Returns the previous value.
    pub fn insert(&mut self, host: &str, value: T) -> Option<T> {
        if host == "*" {
            return self.any.replace(value);
        }
        if let Some(suffix) = host.strip_prefix('*') {
            if suffix.starts_with('.') {
                return self.dot_wildcards.insert(suffix.into(), value);
            }
            let pos = self.partial.iter().position(|(s, _)| **s == *suffix);
            if let Some(i) = pos {
                return Some(std::mem::replace(&mut self.partial[i].1, value));
            }
            self.partial.push((suffix.into(), value));
            self.partial.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
            return None;
        }
        self.exact.insert(host.into(), value)
    }

    /// The value stored for exactly this key (`*.a.com` finds the wildcard entry).
    pub fn get_exact(&self, host: &str) -> Option<&T> {
        if host == "*" {
            return self.any.as_ref();
        }
        match host.strip_prefix('*') {
            Some(s) if s.starts_with('.') => self.dot_wildcards.get(s),
            Some(s) => self.partial.iter().find(|(p, _)| **p == *s).map(|(_, v)| v),
            None => self.exact.get(host),
        }
    }

    /// Mutable access to the value stored for exactly this key.
    pub fn get_exact_mut(&mut self, host: &str) -> Option<&mut T> {
        if host == "*" {
            return self.any.as_mut();
        }
        match host.strip_prefix('*') {
            Some(s) if s.starts_with('.') => self.dot_wildcards.get_mut(s),
            Some(s) => self.partial.iter_mut().find(|(p, _)| **p == *s).map(|(_, v)| v),
            None => self.exact.get_mut(host),
        }
    }

    /// Finds the most specific entry for `authority`: case-insensitive, a `:port` and
    /// a trailing dot ignored. No allocation.
    pub fn lookup(&self, authority: &str) -> Option<&T> {
        let host = strip_port(authority);
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() > MAX_HOST {
            return self.any.as_ref();
        }
        let mut buf = [0u8; MAX_HOST];
        let lower = &mut buf[..host.len()];
        lower.copy_from_slice(host.as_bytes());
        lower.make_ascii_lowercase();
        // Lower-casing ASCII bytes keeps UTF-8 valid.
        let Ok(host) = std::str::from_utf8(lower) else { return self.any.as_ref() };
        self.lookup_lower(host)
    }

    /// Like [`HostMap::lookup`] for a name already lower-case without port.
    pub fn lookup_lower(&self, host: &str) -> Option<&T> {
        if let Some(v) = self.exact.get(host) {
            return Some(v);
        }
        if !self.dot_wildcards.is_empty() || !self.partial.is_empty() {
            // Suffixes from longest to shortest: at each '.', the rest (with the dot).
            let bytes = host.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b != b'.' {
                    continue;
                }
                let suffix = &host[i..];
                // Partial wildcards longer than this suffix match first.
                if let Some(v) = self.partial_longer_than(host, suffix.len()) {
                    return Some(v);
                }
                if let Some(v) = self.dot_wildcards.get(suffix) {
                    return Some(v);
                }
            }
            if let Some(v) = self.partial_longer_than(host, 0) {
                return Some(v);
            }
        }
        self.any.as_ref()
    }

    /// A partial wildcard whose suffix is longer than `min` and matches `host` (which
    /// must be strictly longer than the suffix: `*foo.com` does not match `foo.com`...
    /// it does in Istio, since `*` may match the empty string; we follow Istio).
    fn partial_longer_than(&self, host: &str, min: usize) -> Option<&T> {
        self.partial.iter().take_while(|(s, _)| s.len() > min).find(|(s, _)| host.ends_with(&**s)).map(|(_, v)| v)
    }

    /// Every (key, value), for dumps: exact names, then wildcards, then `*`.
    pub fn iter(&self) -> impl Iterator<Item = (String, &T)> {
        let mut exact: Vec<_> = self.exact.iter().map(|(k, v)| (k.to_string(), v)).collect();
        exact.sort_by(|a, b| a.0.cmp(&b.0));
        let mut wild: Vec<_> = self.dot_wildcards.iter().map(|(k, v)| (format!("*{k}"), v)).collect();
        wild.sort_by(|a, b| a.0.cmp(&b.0));
        let partial = self.partial.iter().map(|(k, v)| (format!("*{k}"), v));
        exact.into_iter().chain(wild).chain(partial).chain(self.any.iter().map(|v| ("*".to_string(), v)))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.exact.len() + self.dot_wildcards.len() + self.partial.len() + usize::from(self.any.is_some())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `host:port` -> `host`; `[v6]:port` -> `[v6]`; a bare IPv6 address is left whole.
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(i) if authority[..i].contains(':') => authority,
        Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &authority[..i],
        _ => authority,
    }
}

/// The port of an authority, if it has one.
pub fn port_of(authority: &str) -> Option<u16> {
    let host = strip_port(authority);
    authority.get(host.len() + 1..).and_then(|p| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> HostMap<&'static str> {
        let mut m = HostMap::default();
        m.insert("reviews.bookinfo.svc.cluster.local", "exact");
        m.insert("*.example.com", "wild");
        m.insert("*.shop.example.com", "wild-long");
        m.insert("*-foo.baz", "partial");
        m
    }

    #[test]
    fn exact_beats_wildcards_and_longest_suffix_wins() {
        let m = map();
        assert_eq!(m.lookup("reviews.bookinfo.svc.cluster.local"), Some(&"exact"));
        assert_eq!(m.lookup("REVIEWS.bookinfo.svc.cluster.local:9080"), Some(&"exact"));
        assert_eq!(m.lookup("a.example.com"), Some(&"wild"));
        assert_eq!(m.lookup("a.b.example.com"), Some(&"wild"));
        assert_eq!(m.lookup("a.shop.example.com"), Some(&"wild-long"));
        assert_eq!(m.lookup("example.com"), None);
        assert_eq!(m.lookup("bar-foo.baz"), Some(&"partial"));
        assert_eq!(m.lookup("other.org"), None);
    }

    #[test]
    fn star_catches_the_rest() {
        let mut m = map();
        m.insert("*", "any");
        assert_eq!(m.lookup("other.org"), Some(&"any"));
        assert_eq!(m.lookup("a.example.com."), Some(&"wild"));
    }

    #[test]
    fn ports_and_ipv6() {
        assert_eq!(strip_port("a.com:80"), "a.com");
        assert_eq!(strip_port("a.com"), "a.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(port_of("a.com:8080"), Some(8080));
        assert_eq!(port_of("[::1]:80"), Some(80));
        assert_eq!(port_of("a.com"), None);
    }
}
