//! A YAML/JSON document as a tree of nodes that remember where they were written.
//!
//! The pure-Rust event parser under serde-saphyr (granit-parser) does the parsing; the
//! tree is built straight from its events (`node/parse.rs`), with a position on every node, and alias
//! expansion is bounded against "billion laughs" inputs. Typed decoding then runs over
//! this tree (see [`crate::de`]), and validation findings — which only know a field path —
//! are placed back at a line and column by walking the same tree ([`Node::locate`]).

use std::fmt;

use crate::path::{FieldPath, Seg};

mod parse;

pub(crate) use parse::{Builder, MAX_NODES, scalar};
pub use parse::{Document, SyntaxError, documents, parse_stream};
#[cfg(test)]
pub(crate) use parse::{parse_full, split_documents};

/// A 1-based line and column in a source text. `line == 0` means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
}

impl Pos {
    /// Builds a position.
    pub const fn new(line: u32, column: u32) -> Self {
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One node of a parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A floating point number.
    Float(f64),
    /// A string (quoted or plain).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are always strings here: a non-string key is
    /// turned into its text, since Istio's schema only has string keys.
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its own position (unknown-field errors point at the key).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Where the key is written.
    pub pos: Pos,
    /// The key text.
    pub name: String,
}

impl Value {
    /// How this value is described in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Int(i) => format!("integer `{i}`"),
            Value::UInt(u) => format!("integer `{u}`"),
            Value::Float(x) => format!("number `{x}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

impl Node {
    /// A tree from a decoded JSON value (an object the Kubernetes API served), for the
    /// same decoding and checks as parsed text. There is no text, so every position is
    /// unknown (line 0); diagnostics still name the field path.
    pub fn from_json(v: serde_json::Value) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Value::UInt(u),
                (None, Some(i)) => Value::Int(i),
                (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s),
            J::Array(items) => Value::Seq(items.into_iter().map(Node::from_json).collect()),
            J::Object(map) => Value::Map(
                map.into_iter().map(|(name, v)| (Key { pos: Pos::default(), name }, Node::from_json(v))).collect(),
            ),
        };
        Node { pos: Pos::default(), value }
    }

    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key entry (with its position) for `key` in a mapping node.
    pub fn key(&self, key: &str) -> Option<&Key> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(k, _)| k),
            _ => None,
        }
    }

    /// The string value, if this is a string node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Finds the best position for a field path: the node itself when it exists, the
    /// key when the path ends on a map key, otherwise the deepest existing ancestor
    /// (a finding about a missing field points at its parent).
    pub fn locate(&self, path: &FieldPath) -> Pos {
        let mut node = self;
        // The position of the key we arrived through, if the last step was a key.
        let mut via_key: Option<Pos> = None;
        for seg in path.segs() {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    entries.iter().find(|(key, _)| key.name == *k).map(|(key, v)| (Some(key.pos), v))
                }
                (Seg::Index(i), Value::Seq(items)) => items.get(*i).map(|v| (None, v)),
                _ => None,
            };
            match next {
                Some((key, child)) => {
                    via_key = key;
                    node = child;
                }
                None => return via_key.unwrap_or(node.pos),
            }
        }
        // A null value has no position of its own, and a block list or mapping starts
        // on the line after its key: point at the key for both.
        match (&node.value, via_key) {
            (Value::Null | Value::Seq(_) | Value::Map(_), Some(k)) if k.line != node.pos.line => k,
            (Value::Null, Some(k)) => k,
            _ => node.pos,
        }
    }

    /// Like [`Node::locate`] but for a map key named by the last segment: points at the
    /// key itself rather than at its value.
    pub fn locate_key(&self, path: &FieldPath) -> Pos {
        let segs = path.segs();
        if let Some((Seg::Key(last), parent)) = segs.split_last() {
            let parent_path = FieldPath::from_segs(parent.to_vec());
            let mut node = self;
            for seg in parent_path.segs() {
                let next = match (seg, &node.value) {
                    (Seg::Key(k), Value::Map(_)) => node.get(k),
                    (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                    _ => None,
                };
                match next {
                    Some(n) => node = n,
                    None => return node.pos,
                }
            }
            if let Some(k) = node.key(last) {
                return k.pos;
            }
            return node.pos;
        }
        self.locate(path)
    }
}
