//! Building blocks shared by several kinds.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Labels and similar string maps, kept sorted so output is deterministic.
pub type Labels = BTreeMap<String, String>;

/// `StringMatch`: a oneof of `exact`, `prefix` and `regex`. Several set at once is a
/// validation error (the CRD's oneOf), so all three are kept as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StringMatch {
    /// Case-sensitive equality.
    pub exact: Option<String>,
    /// Case-sensitive prefix.
    pub prefix: Option<String>,
    /// RE2, whole-string.
    pub regex: Option<String>,
}

/// Which form a [`StringMatch`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchForm<'a> {
    /// `exact`.
    Exact(&'a str),
    /// `prefix`.
    Prefix(&'a str),
    /// `regex`.
    Regex(&'a str),
}

impl StringMatch {
    /// The form in effect (first of exact, prefix, regex), or `None` for `{}`.
    pub fn form(&self) -> Option<MatchForm<'_>> {
        if let Some(e) = &self.exact {
            Some(MatchForm::Exact(e))
        } else if let Some(p) = &self.prefix {
            Some(MatchForm::Prefix(p))
        } else {
            self.regex.as_deref().map(MatchForm::Regex)
        }
    }

    /// How many of the oneof fields are set.
    pub fn set_count(&self) -> usize {
        [self.exact.is_some(), self.prefix.is_some(), self.regex.is_some()].iter().filter(|b| **b).count()
    }
}

/// `Percent`: `{value: double}`. A bare number is accepted too (the `DoubleValue`
/// form some fields use).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percent {
    /// 0..=100.
    pub value: f64,
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping with `value`")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Percent, E> {
                Ok(Percent { value: v })
            }
            fn visit_u64<E>(self, v: u64) -> Result<Percent, E> {
                Ok(Percent { value: v as f64 })
            }
            fn visit_i64<E>(self, v: i64) -> Result<Percent, E> {
                Ok(Percent { value: v as f64 })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Percent, A::Error> {
                let mut value = 0.0;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "value" {
                        return Err(serde::de::Error::unknown_field(&key, &["value"]));
                    }
                    value = map.next_value()?;
                }
                Ok(Percent { value })
            }
        }
        d.deserialize_any(V)
    }
}

/// `PortSelector`: `{number}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// `Destination`: a service (and optionally subset and port) in the registry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Destination {
    /// Registry host; short names are relative to the config's namespace.
    pub host: String,
    /// DestinationRule subset name.
    pub subset: String,
    /// Port on the service.
    pub port: Option<PortSelector>,
}

/// `Headers`: request and response edits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Headers {
    /// Edits to the request sent upstream.
    pub request: Option<HeaderOperations>,
    /// Edits to the response sent downstream.
    pub response: Option<HeaderOperations>,
}

/// `HeaderOperations`: set (overwrite), add (append), remove.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeaderOperations {
    /// Overwrite or add.
    pub set: BTreeMap<String, String>,
    /// Append.
    pub add: BTreeMap<String, String>,
    /// Remove.
    pub remove: Vec<String>,
}

/// `WorkloadSelector` as used by ServiceEntry and Sidecar (`labels`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    /// Labels a workload must carry.
    pub labels: Labels,
}

/// `Port` as used by ServiceEntry, Gateway servers and Sidecar listeners.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Port {
    /// Port number.
    pub number: u32,
    /// Protocol name (HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS...), case-insensitive.
    pub protocol: String,
    /// Port name.
    pub name: String,
    /// Endpoint port (ServiceEntry); an error on Gateway and Sidecar ports.
    pub target_port: u32,
}
