//! Go duration syntax (`10s`, `1.5s`, `250ms`, `1m30s`, `-5s`), as Istio decodes it.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A signed duration as written in a resource. Kept signed and exact (nanoseconds)
/// because validation must reject `-5s` and `1.5ms` rather than round them away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    nanos: i128,
}

const NS: i128 = 1;
const US: i128 = 1_000;
const MS: i128 = 1_000_000;
const S: i128 = 1_000_000_000;
const M: i128 = 60 * S;
const H: i128 = 60 * M;

impl Duration {
    /// From whole milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Duration { nanos: ms as i128 * MS }
    }

    /// From whole seconds.
    pub const fn from_secs(s: i64) -> Self {
        Duration { nanos: s as i128 * S }
    }

    /// The exact value in nanoseconds.
    pub const fn as_nanos(&self) -> i128 {
        self.nanos
    }

    /// True when the value is a whole number of milliseconds.
    pub const fn is_whole_millis(&self) -> bool {
        self.nanos % MS == 0
    }

    /// True when the value is a whole number of seconds.
    pub const fn is_whole_seconds(&self) -> bool {
        self.nanos % S == 0
    }

    /// The value as a std duration; negative values become zero.
    pub fn to_std(&self) -> StdDuration {
        if self.nanos <= 0 {
            StdDuration::ZERO
        } else {
            let n = self.nanos.min(u64::MAX as i128 * S) as u128;
            StdDuration::new((n / S as u128) as u64, (n % S as u128) as u32)
        }
    }

    /// Parses Go's `time.ParseDuration` syntax.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("{text:?} is not a duration; expected Go syntax such as \"10s\", \"1.5s\", \"250ms\" or \"1m30s\"")
        };
        let mut s = text;
        let neg = if let Some(r) = s.strip_prefix('-') {
            s = r;
            true
        } else {
            s = s.strip_prefix('+').unwrap_or(s);
            false
        };
        if s == "0" {
            return Ok(Duration { nanos: 0 });
        }
        if s.is_empty() {
            return Err(bad());
        }
        let mut total: i128 = 0;
        while !s.is_empty() {
            let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let int_part = &s[..int_end];
            s = &s[int_end..];
            let mut frac_part = "";
            if let Some(r) = s.strip_prefix('.') {
                let fe = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                frac_part = &r[..fe];
                s = &r[fe..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(bad());
            }
            let unit_end = s.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(s.len());
            let unit = match &s[..unit_end] {
                "ns" => NS,
                "us" | "µs" | "μs" => US,
                "ms" => MS,
                "s" => S,
                "m" => M,
                "h" => H,
                _ => return Err(bad()),
            };
            s = &s[unit_end..];
            let whole: i128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| bad())? };
            let mut value = whole.checked_mul(unit).ok_or_else(bad)?;
            if !frac_part.is_empty() {
                let digits = frac_part.len().min(30) as u32;
                let frac: i128 = frac_part[..digits as usize].parse().map_err(|_| bad())?;
                value += frac * unit / 10i128.pow(digits);
            }
            total = total.checked_add(value).ok_or_else(bad)?;
            if total > i64::MAX as i128 {
                return Err(format!("{text:?} is too long a duration"));
            }
        }
        Ok(Duration { nanos: if neg { -total } else { total } })
    }
}

impl fmt::Display for Duration {
    /// Go's canonical form for whole units (`1m30s`, `250ms`, `10s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.nanos;
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 0 {
            f.write_str("-")?;
            n = -n;
        }
        if n < S {
            return if n % MS == 0 {
                write!(f, "{}ms", n / MS)
            } else if n % US == 0 {
                write!(f, "{}us", n / US)
            } else {
                write!(f, "{n}ns")
            };
        }
        let (h, rest) = (n / H, n % H);
        let (m, rest) = (rest / M, rest % M);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        let (secs, frac) = (rest / S, rest % S);
        if frac == 0 {
            write!(f, "{secs}s")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{secs}.{}s", digits.trim_end_matches('0'))
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"10s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        let ms = |t: &str| Duration::parse(t).unwrap().as_nanos() / MS;
        assert_eq!(ms("10s"), 10_000);
        assert_eq!(ms("1.5s"), 1_500);
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("-5s"), -5_000);
        assert_eq!(ms("0"), 0);
        assert_eq!(Duration::parse("500us").unwrap().as_nanos(), 500_000);
        assert_eq!(Duration::parse("1.5ms").unwrap().as_nanos(), 1_500_000);
        assert_eq!(Duration::parse(".5s").unwrap().as_nanos(), 500_000_000);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for t in ["", "10", "s", "1x", "1.s.", "--1s", "1 s", "abc", "1e3s"] {
            assert!(Duration::parse(t).is_err(), "{t:?} should not parse");
        }
    }

    #[test]
    fn displays_canonically() {
        for (t, want) in
            [("90s", "1m30s"), ("250ms", "250ms"), ("10s", "10s"), ("1.5s", "1.5s"), ("2h", "2h0m0s"), ("-5s", "-5s")]
        {
            assert_eq!(Duration::parse(t).unwrap().to_string(), want);
        }
    }

    #[test]
    fn precision_helpers() {
        assert!(Duration::parse("1.5s").unwrap().is_whole_millis());
        assert!(!Duration::parse("1.5ms").unwrap().is_whole_millis());
        assert!(!Duration::parse("1.5s").unwrap().is_whole_seconds());
    }
}
