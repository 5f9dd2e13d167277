//! Typed decoding of a [`Node`] tree through serde, with field paths and positions.
//!
//! Types derive `Deserialize` as usual (without `deny_unknown_fields`): this deserializer
//! learns each struct's field list from `deserialize_struct` and reports every unknown
//! key itself — all of them, not just the first — with the nearest valid name. Type
//! errors stop the document (serde cannot continue past them) and carry the path and
//! position of the offending value.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use crate::node::{Key, Node, Pos, Value};
use crate::path::FieldPath;

/// A decoding failure: what went wrong, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// Path of the offending field.
    pub path: FieldPath,
    /// Position of the offending key or value.
    pub pos: Pos,
    /// Human message (quotes the value, says what was expected).
    pub message: String,
    /// True when the key is not part of the schema (as opposed to a bad value).
    pub unknown_field: bool,
    located: bool,
    /// Set by `missing_field`: the path gets this key appended when located.
    missing: Option<&'static str>,
}

impl DecodeError {
    fn new(message: String) -> Self {
        DecodeError {
            path: FieldPath::root(),
            pos: Pos::default(),
            message,
            unknown_field: false,
            located: false,
            missing: None,
        }
    }

    fn locate(mut self, link: &Link<'_>, pos: Pos) -> Self {
        if !self.located {
            let mut path = link.path();
            if let Some(field) = self.missing.take() {
                path.push_key(field);
            }
            self.path = path;
            self.pos = pos;
            self.located = true;
        }
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Turns serde's "expected" wording into what a YAML author reads.
fn expected_text(exp: &dyn de::Expected) -> String {
    let raw = exp.to_string();
    match raw.as_str() {
        "u8" | "u16" | "u32" | "u64" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "a string" => raw,
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        s if s.starts_with("struct ") => format!("a mapping ({})", &s[7..]),
        s if s.starts_with("a sequence") => "a list".into(),
        _ => raw,
    }
}

fn unexpected_text(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(b) => format!("boolean `{b}`"),
        Unexpected::Unsigned(n) => format!("integer `{n}`"),
        Unexpected::Signed(n) => format!("integer `{n}`"),
        Unexpected::Float(x) => format!("number `{x}`"),
        Unexpected::Str(s) => format!("string {s:?}"),
        Unexpected::Unit => "null".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// The closest candidate to `name`, if any is close enough to be a plausible typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
    let n = norm(name);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.starts_with("__") {
            continue;
        }
        let d = if norm(c) == n { 0 } else { strsim::levenshtein(&n, &norm(c)) };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let limit = (n.len() / 3).max(2);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

fn list(names: &[&str]) -> String {
    names.iter().filter(|n| !n.starts_with("__")).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let expected = expected_text(exp);
        let hint = match unexp {
            Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) | Unexpected::Bool(_)
                if expected == "a string" =>
            {
                " (quote it to make it a string)"
            }
            _ => "",
        };
        DecodeError::new(format!("expected {expected}, found {}{hint}", unexpected_text(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let exp_raw = exp.to_string();
        let msg = match exp_raw.as_str() {
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => {
                format!("{} is out of range for {}", unexpected_text(&unexp), int_range(&exp_raw))
            }
            _ => format!("{} is not valid: expected {}", unexpected_text(&unexp), expected_text(exp)),
        };
        DecodeError::new(msg)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let msg = match nearest(variant, expected.iter().copied()) {
            Some(s) => format!("unknown value {variant:?}, did you mean `{s}`? (expected one of {})", list(expected)),
            None => format!("unknown value {variant:?}; expected one of {}", list(expected)),
        };
        DecodeError::new(msg)
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DecodeError::new(unknown_field_message(field, expected));
        e.unknown_field = true;
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = DecodeError::new(format!("missing required field `{field}`"));
        e.missing = Some(field);
        e
    }
}

fn int_range(ty: &str) -> &'static str {
    match ty {
        "u8" => "0..=255",
        "u16" => "0..=65535",
        "u32" => "0..=4294967295 (a 32-bit unsigned integer)",
        "u64" => "a 64-bit unsigned integer",
        "i32" => "-2147483648..=2147483647 (a 32-bit integer)",
        _ => "a 64-bit integer",
    }
}

fn unknown_field_message(field: &str, expected: &[&str]) -> String {
    match nearest(field, expected.iter().copied()) {
        Some(s) => format!("unknown field `{field}`, did you mean `{s}`?"),
        None if expected.is_empty() => {
            format!("unknown field `{field}`: no fields are allowed here")
        }
        None => format!("unknown field `{field}`; expected one of {}", list(expected)),
    }
}

// === path links ===

/// A path as a linked list on the stack: free to extend while decoding, turned into a
/// [`FieldPath`] only when an error needs it.
#[derive(Clone, Copy)]
enum Link<'a> {
    Root(&'a FieldPath),
    Key(&'a Link<'a>, &'a str),
    Index(&'a Link<'a>, usize),
}

impl Link<'_> {
    fn path(&self) -> FieldPath {
        match self {
            Link::Root(base) => (*base).clone(),
            Link::Key(parent, k) => parent.path().key(k),
            Link::Index(parent, i) => parent.path().index(*i),
        }
    }
}

// === entry points ===

/// Decodes `node` as `T`. Unknown fields are collected (all of them) and returned
/// beside the value; a type error ends decoding and is returned last in the error list.
pub fn decode<T: DeserializeOwned>(node: &Node, base: &FieldPath) -> Decoded<T> {
    let sink = RefCell::new(Vec::new());
    let link = Link::Root(base);
    let result = T::deserialize(NodeDe { node, link: &link, sink: &sink });
    let mut errors = sink.into_inner();
    match result {
        Ok(v) => Decoded { value: Some(v), errors },
        Err(e) => {
            errors.push(e.locate(&link, node.pos));
            Decoded { value: None, errors }
        }
    }
}

/// The outcome of [`decode`].
#[derive(Debug)]
pub struct Decoded<T> {
    /// The value, unless a type error stopped decoding.
    pub value: Option<T>,
    /// Unknown fields and the stopping error, in source order.
    pub errors: Vec<DecodeError>,
}

// === the deserializer ===

struct NodeDe<'a, 'l> {
    node: &'a Node,
    link: &'l Link<'l>,
    sink: &'l RefCell<Vec<DecodeError>>,
}

impl<'a, 'l> NodeDe<'a, 'l> {
    fn fail<T>(&self, e: DecodeError) -> Result<T, DecodeError> {
        Err(e.locate(self.link, self.node.pos))
    }

    fn wrap<T>(&self, r: Result<T, DecodeError>) -> Result<T, DecodeError> {
        r.map_err(|e| e.locate(self.link, self.node.pos))
    }
}

impl<'de, 'a, 'l> de::Deserializer<'de> for NodeDe<'a, 'l> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe { items, next: 0, link: self.link, sink: self.sink }),
            Value::Map(entries) => {
                visitor.visit_map(MapDe { entries, next: 0, fields: None, link: self.link, sink: self.sink })
            }
        };
        self.wrap(r)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.node.value {
            Value::Null => self.wrap(visitor.visit_none()),
            _ => {
                let (link, sink, node) = (self.link, self.sink, self.node);
                let r = visitor.visit_some(NodeDe { node, link, sink });
                r.map_err(|e| e.locate(link, node.pos))
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let r = match &self.node.value {
            Value::Map(entries) => {
                visitor.visit_map(MapDe { entries, next: 0, fields: Some(fields), link: self.link, sink: self.sink })
            }
            Value::Null => {
                visitor.visit_map(MapDe { entries: &[], next: 0, fields: None, link: self.link, sink: self.sink })
            }
            _ => return self.deserialize_any(visitor),
        };
        self.wrap(r)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let r = match &self.node.value {
            Value::Null => {
                visitor.visit_map(MapDe { entries: &[], next: 0, fields: None, link: self.link, sink: self.sink })
            }
            _ => return self.deserialize_any(visitor),
        };
        self.wrap(r)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_seq(SeqDe { items: &[], next: 0, link: self.link, sink: self.sink }),
            _ => return self.deserialize_any(visitor),
        };
        self.wrap(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match &self.node.value {
            Value::Str(s) => {
                let r = visitor.visit_enum(IntoDeserializer::<DecodeError>::into_deserializer(s.as_str()));
                self.wrap(r)
            }
            other => self.fail(DecodeError::new(format!(
                "expected one of the names listed for this field, found {}",
                other.describe()
            ))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let (link, sink, node) = (self.link, self.sink, self.node);
        visitor.visit_newtype_struct(NodeDe { node, link, sink }).map_err(|e| e.locate(link, node.pos))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit_struct tuple tuple_struct identifier
    }
}

struct SeqDe<'a, 'l> {
    items: &'a [Node],
    next: usize,
    link: &'l Link<'l>,
    sink: &'l RefCell<Vec<DecodeError>>,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DecodeError> {
        let Some(node) = self.items.get(self.next) else {
            return Ok(None);
        };
        let link = Link::Index(self.link, self.next);
        self.next += 1;
        seed.deserialize(NodeDe { node, link: &link, sink: self.sink }).map(Some).map_err(|e| e.locate(&link, node.pos))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

struct MapDe<'a, 'l> {
    entries: &'a [(Key, Node)],
    next: usize,
    /// The struct's field names, when decoding a struct (unknown keys are reported).
    fields: Option<&'static [&'static str]>,
    link: &'l Link<'l>,
    sink: &'l RefCell<Vec<DecodeError>>,
}

impl<'de> de::MapAccess<'de> for MapDe<'_, '_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        let link = Link::Key(self.link, &key.name);
        seed.deserialize(IntoDeserializer::<DecodeError>::into_deserializer(key.name.as_str()))
            .map(Some)
            .map_err(|e| e.locate(&link, key.pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DecodeError> {
        let (key, node) = &self.entries[self.next];
        self.next += 1;
        let link = Link::Key(self.link, &key.name);
        if let Some(fields) = self.fields
            && !fields.contains(&key.name.as_str())
        {
            let mut e = DecodeError::new(unknown_field_message(&key.name, fields));
            e.unknown_field = true;
            self.sink.borrow_mut().push(e.locate(&link, key.pos));
        }
        seed.deserialize(NodeDe { node, link: &link, sink: self.sink }).map_err(|e| e.locate(&link, node.pos))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_stream;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Outlier {
        max_ejection_percent: Option<u32>,
        interval: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Spec {
        outlier_detection: Option<Outlier>,
        hosts: Vec<String>,
        labels: BTreeMap<String, String>,
        weight: Option<i32>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[allow(clippy::upper_case_acronyms)]
    enum Mode {
        SIMPLE,
        MUTUAL,
    }

    fn run(text: &str) -> Decoded<Spec> {
        let node = parse_stream(text).remove(0).root.unwrap();
        decode(&node, &FieldPath::root().key("spec"))
    }

    #[test]
    fn every_unknown_field_is_reported_with_a_suggestion() {
        let d = run("outlierDetection:\n  maxEjectPercent: 5\n  intervall: 1s\nhostz: [a]\n");
        assert!(d.value.is_some());
        let msgs: Vec<_> = d.errors.iter().map(|e| (e.path.to_string(), e.pos, e.message.clone())).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert_eq!(msgs[0].0, "spec.outlierDetection.maxEjectPercent");
        assert_eq!(msgs[0].1, Pos::new(2, 3));
        assert!(msgs[0].2.contains("did you mean `maxEjectionPercent`"), "{}", msgs[0].2);
        assert!(msgs[1].2.contains("did you mean `interval`"));
        assert_eq!(msgs[2].0, "spec.hostz");
        assert!(msgs[2].2.contains("did you mean `hosts`"));
    }

    #[test]
    fn wrong_types_name_expected_and_found() {
        let d = run("hosts:\n  - a\n  - [b]\n");
        assert!(d.value.is_none());
        let e = &d.errors[0];
        assert_eq!(e.path.to_string(), "spec.hosts[1]");
        assert_eq!(e.pos, Pos::new(3, 5));
        assert_eq!(e.message, "expected a string, found a list");

        let d = run("weight: \"ten\"\n");
        assert_eq!(d.errors[0].message, "expected an integer, found string \"ten\"");
        let d = run("weight: 3000000000\n");
        assert!(d.errors[0].message.contains("out of range"), "{}", d.errors[0].message);
        let d = run("outlierDetection: 5\n");
        assert_eq!(d.errors[0].path.to_string(), "spec.outlierDetection");
        assert!(d.errors[0].message.starts_with("expected a mapping"), "{}", d.errors[0].message);
    }

    #[test]
    fn unknown_enum_values_suggest_the_nearest() {
        let d = run("mode: SIMPEL\n");
        let e = &d.errors[0];
        assert_eq!(e.path.to_string(), "spec.mode");
        assert!(e.message.contains("did you mean `SIMPLE`"), "{}", e.message);
    }

    #[test]
    fn null_means_absent_for_lists_maps_and_options() {
        let d = run("hosts:\nlabels:\noutlierDetection:\n");
        assert_eq!(d.value.unwrap(), Spec::default());
    }

    #[test]
    fn user_maps_accept_any_key() {
        let d = run("labels:\n  anything: goes\n");
        assert!(d.errors.is_empty());
        assert_eq!(d.value.unwrap().labels["anything"], "goes");
    }

    #[test]
    fn nearest_handles_case_and_snake_case() {
        let c = ["maxEjectionPercent", "interval"];
        assert_eq!(nearest("max_ejection_percent", c), Some("maxEjectionPercent"));
        assert_eq!(nearest("MaxEjectionPercent", c), Some("maxEjectionPercent"));
        assert_eq!(nearest("totallyDifferent", c), None);
    }
}
