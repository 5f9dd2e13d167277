//! A YAML/JSON document as a tree of nodes that remember where they were written.
//!
//! serde-saphyr does the parsing (pure Rust, budgets against alias bombs); we keep its
//! output as an untyped tree with a position on every node. Typed decoding then runs over
//! this tree (see [`crate::de`]), and validation findings — which only know a field path —
//! are placed back at a line and column by walking the same tree ([`Node::locate`]).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::path::{FieldPath, Seg};

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

// === parsing ===

/// A failure to parse YAML text at all.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What the parser said, without its own position suffix.
    pub message: String,
}

/// One `---`-separated document of a stream: either its tree or why it did not parse.
#[derive(Debug, Clone)]
pub struct Document {
    /// The line the document's text starts on (1-based).
    pub first_line: u32,
    /// The parsed tree.
    pub root: Result<Node, SyntaxError>,
}

/// Splits a YAML stream into documents and parses each one on its own, so that a
/// syntax error in one document never hides the others. Empty documents (only
/// comments or blank lines) are dropped.
pub fn parse_stream(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    for chunk in split_documents(text) {
        if chunk.is_blank() {
            continue;
        }
        docs.push(Document { first_line: chunk.first_line, root: parse_one(chunk.text, chunk.first_line - 1) });
    }
    docs
}

struct Chunk<'a> {
    first_line: u32,
    text: &'a str,
}

impl Chunk<'_> {
    fn is_blank(&self) -> bool {
        self.text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || is_separator(l) || l.starts_with("%")
        })
    }
}

fn marker_line(line: &str, marker: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    matches!(line.strip_prefix(marker), Some(r) if r.is_empty() || r.starts_with([' ', '\t']))
}

fn is_separator(line: &str) -> bool {
    marker_line(line, "---") || marker_line(line, "...")
}

/// Cuts the stream at lines that start with `---` (a new document; the line stays with
/// it, since YAML allows `--- {a: 1}`) or `...` (end of document; the line is dropped).
/// Line numbers are kept by remembering where each chunk starts.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let (mut start, mut start_line) = (0usize, 1u32);
    let (mut offset, mut line_no) = (0usize, 1u32);
    for line in text.split_inclusive('\n') {
        if marker_line(line, "---") {
            if offset > start {
                chunks.push(Chunk { first_line: start_line, text: &text[start..offset] });
            }
            (start, start_line) = (offset, line_no);
        } else if marker_line(line, "...") {
            chunks.push(Chunk { first_line: start_line, text: &text[start..offset] });
            (start, start_line) = (offset + line.len(), line_no + 1);
        }
        offset += line.len();
        line_no += 1;
    }
    if start < text.len() {
        chunks.push(Chunk { first_line: start_line, text: &text[start..] });
    }
    chunks
}

fn parse_one(text: &str, line_offset: u32) -> Result<Node, SyntaxError> {
    let shift = |line: usize, column: usize| {
        if line == 0 { Pos::default() } else { Pos::new(line as u32 + line_offset, column as u32) }
    };
    // YAML 1.2 booleans only: `y`, `yes`, `on` stay strings (a subset named `on`, a
    // label value `y`), as Kubernetes users expect.
    let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
    match serde_saphyr::from_str_with_options::<Spanned<RawValue>>(text, options) {
        Ok(spanned) => {
            let mut node = from_raw(spanned);
            shift_lines(&mut node, line_offset);
            Ok(node)
        }
        Err(err) => {
            let inner = err.without_snippet();
            let pos = err.location().map(|l| shift(l.line() as usize, l.column() as usize)).unwrap_or_default();
            Err(SyntaxError { pos, message: strip_position(&inner.to_string()) })
        }
    }
}

fn shift_lines(node: &mut Node, by: u32) {
    if node.pos.line != 0 {
        node.pos.line += by;
    }
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| shift_lines(n, by)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            if k.pos.line != 0 {
                k.pos.line += by;
            }
            shift_lines(v, by)
        }),
        _ => {}
    }
}

/// serde-saphyr appends " at line N, column M"; we print positions ourselves.
fn strip_position(msg: &str) -> String {
    let msg = msg.trim();
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains("column") => &msg[..i],
        _ => msg,
    };
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    // "line 3 column 2: message" form.
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(i) = rest.find(": ")
    {
        return rest[i + 2..].to_string();
    }
    msg.to_string()
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos::new(s.referenced.line() as u32, s.referenced.column() as u32)
}

fn from_raw(s: Spanned<RawValue>) -> Node {
    let pos = pos_of(&s);
    let value = match s.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::UInt(u) => Value::UInt(u),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(from_raw).collect()),
        RawValue::Map(entries) => Value::Map(
            entries.into_iter().map(|(k, v)| (Key { pos: pos_of(&k), name: k.value.0 }, from_raw(v))).collect(),
        ),
    };
    Node { pos, value }
}

/// The shape serde-saphyr fills; converted to [`Node`] right after parsing.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<KeyText>, Spanned<RawValue>)>),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(if v >= 0 { RawValue::UInt(v as u64) } else { RawValue::Int(v) })
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::UInt(v))
    }
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<RawValue, E> {
        i64::try_from(v).map(RawValue::Int).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<RawValue, E> {
        u64::try_from(v).map(RawValue::UInt).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries: Vec<(Spanned<KeyText>, Spanned<RawValue>)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// A mapping key rendered as text, whatever scalar it was written as.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
            fn visit_none<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let docs = parse_stream(text);
        assert_eq!(docs.len(), 1);
        docs.into_iter().next().unwrap().root.unwrap()
    }

    #[test]
    fn positions_are_one_based_and_keys_keep_their_own() {
        let n = root("a: 1\nb:\n  c: [x, y]\n");
        assert_eq!(n.pos, Pos::new(1, 1));
        let b = n.get("b").unwrap();
        assert_eq!(b.pos, Pos::new(3, 3));
        assert_eq!(n.key("b").unwrap().pos, Pos::new(2, 1));
        let c = b.get("c").unwrap();
        match &c.value {
            Value::Seq(items) => assert_eq!(items[1].pos, Pos::new(3, 10)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scalars_keep_their_yaml_types() {
        let n = root("a: 10\nb: \"10\"\nc: true\nd: ~\ne: 1.5\nf: -3\n");
        assert_eq!(n.get("a").unwrap().value, Value::UInt(10));
        assert_eq!(n.get("b").unwrap().value, Value::Str("10".into()));
        assert_eq!(n.get("c").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("d").unwrap().value, Value::Null);
        assert_eq!(n.get("e").unwrap().value, Value::Float(1.5));
        assert_eq!(n.get("f").unwrap().value, Value::Int(-3));
    }

    #[test]
    fn documents_are_split_and_numbered_from_the_file_start() {
        let docs = parse_stream("# lead\na: 1\n---\nb: 2\n---\n# only a comment\n---\nc: [\n---\nd: 4\n");
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[1].root.as_ref().unwrap().get("b").unwrap().pos, Pos::new(4, 4));
        let err = docs[2].root.as_ref().unwrap_err();
        assert_eq!(err.pos.line, 8, "{err:?}");
        assert_eq!(docs[3].root.as_ref().unwrap().get("d").unwrap().pos, Pos::new(10, 4));
    }

    #[test]
    fn json_parses_with_positions() {
        let n = root("{\n  \"a\": {\"b\": [1, 2]}\n}\n");
        assert_eq!(n.get("a").unwrap().get("b").unwrap().pos.line, 2);
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        let docs = parse_stream("a: 1\na: 2\n");
        let err = docs[0].root.as_ref().unwrap_err();
        assert_eq!(err.pos.line, 2);
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }

    #[test]
    fn alias_bombs_are_refused_not_expanded() {
        let mut text = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h'] {
            text.push_str(&format!(
                "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = name;
        }
        let docs = parse_stream(&text);
        assert!(docs[0].root.is_err());
    }
}
