//! How a table reads when serialized (`/config_dump`): durations in the protobuf JSON form
//! Envoy prints (`"10s"`, `"0.025s"`), header names and values as text, regexes as
//! written. The dump is the table itself through serde, never `Debug` text, so what it
//! shows is exactly what the proxy executes.

use std::fmt::Write as _;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};
use regex::Regex;
use serde::Serializer;
use serde::ser::{SerializeMap, SerializeSeq};

/// A duration as protobuf JSON writes it: seconds with 0, 3, 6 or 9 fractional digits.
pub fn duration_text(d: Duration) -> String {
    let (s, n) = (d.as_secs(), d.subsec_nanos());
    let mut out = String::new();
    if n == 0 {
        let _ = write!(out, "{s}s");
    } else if n % 1_000_000 == 0 {
        let _ = write!(out, "{s}.{:03}s", n / 1_000_000);
    } else if n % 1_000 == 0 {
        let _ = write!(out, "{s}.{:06}s", n / 1_000);
    } else {
        let _ = write!(out, "{s}.{n:09}s");
    }
    out
}

/// [`duration_text`] for serde.
pub fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&duration_text(*d))
}

/// An optional duration (`null` when absent).
pub fn opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => duration(d, s),
        None => s.serialize_none(),
    }
}

/// A header name.
pub fn header_name<S: Serializer>(n: &HeaderName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(n.as_str())
}

/// A list of header names.
pub fn header_names<S: Serializer>(l: &[HeaderName], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(l.len()))?;
    for n in l {
        seq.serialize_element(n.as_str())?;
    }
    seq.end()
}

/// A header value (lossy when it is not text).
pub fn header_value<S: Serializer>(v: &HeaderValue, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v.as_bytes()))
}

/// An optional header value.
pub fn opt_header_value<S: Serializer>(v: &Option<HeaderValue>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => header_value(v, s),
        None => s.serialize_none(),
    }
}

/// A status code as its number.
pub fn status<S: Serializer>(c: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(c.as_u16())
}

/// A regex as written (without the anchors the compiler added).
pub fn regex<S: Serializer>(r: &Regex, s: S) -> Result<S::Ok, S::Error> {
    let p = r.as_str();
    s.serialize_str(p.strip_prefix("^(?:").and_then(|p| p.strip_suffix(")$")).unwrap_or(p))
}

/// Label pairs as a map.
pub fn labels<S: Serializer>(l: &[(Box<str>, Box<str>)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(l.len()))?;
    for (k, v) in l {
        m.serialize_entry(&**k, &**v)?;
    }
    m.end()
}

/// Anything with `Display`, as its text.
pub fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The length of a body.
pub fn byte_len<S: Serializer>(b: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(b.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_protobuf_json() {
        assert_eq!(duration_text(Duration::from_secs(10)), "10s");
        assert_eq!(duration_text(Duration::from_millis(25)), "0.025s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1.500s");
        assert_eq!(duration_text(Duration::from_micros(1500)), "0.001500s");
        assert_eq!(duration_text(Duration::from_nanos(7)), "0.000000007s");
    }
}
