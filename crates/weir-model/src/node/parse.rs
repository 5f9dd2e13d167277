//! From text to a [`Node`] tree: the stream split into `---` documents, each parsed by
//! granit-parser's events into nodes with positions, scalars resolved as YAML's core
//! schema does, aliases expanded within a bound.

use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle};

use super::{Key, Node, Pos, Value};

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
    documents(text).collect()
}

/// Like [`parse_stream`], one document at a time (each parsed when it is reached).
pub fn documents(text: &str) -> impl Iterator<Item = Document> + '_ {
    split_documents(text)
        .into_iter()
        .filter(|chunk| !chunk.is_blank())
        .map(|chunk| Document { first_line: chunk.first_line, root: parse_one(chunk.text, chunk.first_line - 1) })
}

pub(crate) struct Chunk<'a> {
    pub(crate) first_line: u32,
    pub(crate) text: &'a str,
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
pub(crate) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
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

/// Most nodes one document may expand to (aliases included): a bound on "billion
/// laughs" alias bombs, far above any real configuration.
pub(crate) const MAX_NODES: usize = 1_000_000;

fn parse_one(text: &str, line_offset: u32) -> Result<Node, SyntaxError> {
    if let Some(node) = crate::fast_yaml::parse(text, line_offset) {
        return Ok(node);
    }
    parse_full(text, line_offset)
}

/// Parses one document with the complete YAML parser (every construct, every error).
pub(crate) fn parse_full(text: &str, line_offset: u32) -> Result<Node, SyntaxError> {
    let mut b = Builder::new(line_offset);
    for ev in Parser::new_from_str(text) {
        let (event, span) =
            ev.map_err(|e| SyntaxError { pos: b.pos(e.marker()), message: strip_position(&e.to_string()) })?;
        b.event(event, span)?;
    }
    Ok(b.finish())
}

/// A collection being built.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    /// `merged`: keys that came from a merge key (`<<`), which explicit keys override.
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
        merged: Vec<String>,
    },
}

/// Builds a [`Node`] tree from the parser's events (or from [`crate::fast_yaml`]'s).
pub(crate) struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes by anchor id (for aliases).
    anchors: Vec<Option<Node>>,
    nodes: usize,
    root: Option<Node>,
    line_offset: u32,
}

impl Builder {
    pub(crate) fn new(line_offset: u32) -> Self {
        Builder { stack: Vec::new(), anchors: Vec::new(), nodes: 0, root: None, line_offset }
    }

    fn pos(&self, m: &granit_parser::Marker) -> Pos {
        Pos::new(m.line() as u32 + self.line_offset, m.col() as u32 + 1)
    }

    fn error(&self, m: &granit_parser::Marker, message: impl Into<String>) -> SyntaxError {
        SyntaxError { pos: self.pos(m), message: message.into() }
    }

    fn count(&mut self, n: usize, at: &granit_parser::Marker) -> Result<(), SyntaxError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(self.error(at, format!("document expands to more than {MAX_NODES} nodes (alias expansion?)")));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some(node.clone());
    }

    fn event(&mut self, event: Event<'_>, span: granit_parser::Span) -> Result<(), SyntaxError> {
        let at = span.start;
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                self.count(1, &at)?;
                let pos = self.pos(&at);
                self.scalar(pos, scalar(&value, style, tag.as_deref()), anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                self.count(1, &at)?;
                self.start_seq(self.pos(&at), anchor);
                Ok(())
            }
            Event::MappingStart(_, anchor, _) => {
                self.count(1, &at)?;
                self.start_map(self.pos(&at), anchor);
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => self.end(self.pos(&at)),
            Event::Alias(id) => {
                let Some(Some(target)) = self.anchors.get(id) else {
                    return Err(self.error(&at, "alias references an unknown anchor"));
                };
                let mut node = target.clone();
                self.count(size(&node), &at)?;
                node.pos = self.pos(&at);
                self.push(node)
            }
            _ => Ok(()),
        }
    }

    /// A scalar node at `pos`.
    pub(crate) fn scalar(&mut self, pos: Pos, value: Value, anchor: usize) -> Result<(), SyntaxError> {
        let node = Node { pos, value };
        self.remember(anchor, &node);
        self.push(node)
    }

    /// A sequence starts at `pos`.
    pub(crate) fn start_seq(&mut self, pos: Pos, anchor: usize) {
        self.stack.push(Frame::Seq { pos, anchor, items: Vec::new() });
    }

    /// A mapping starts at `pos`.
    pub(crate) fn start_map(&mut self, pos: Pos, anchor: usize) {
        self.stack.push(Frame::Map { pos, anchor, entries: Vec::new(), key: None, merged: Vec::new() });
    }

    /// The innermost collection ends (`at`: where, for the error when none is open).
    pub(crate) fn end(&mut self, at: Pos) -> Result<(), SyntaxError> {
        let (node, anchor) = match self.stack.pop() {
            Some(Frame::Seq { pos, anchor, items }) => (Node { pos, value: Value::Seq(items) }, anchor),
            Some(Frame::Map { pos, anchor, entries, .. }) => (Node { pos, value: Value::Map(entries) }, anchor),
            None => return Err(SyntaxError { pos: at, message: "unbalanced collection end".into() }),
        };
        self.remember(anchor, &node);
        self.push(node)
    }

    /// The finished tree: the root, or null at the document's first line.
    pub(crate) fn finish(self) -> Node {
        let line_offset = self.line_offset;
        self.root.unwrap_or(Node { pos: Pos::new(1 + line_offset, 1), value: Value::Null })
    }

    fn push(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, merged, .. }) => match key.take() {
                None => {
                    let name = match node.value {
                        Value::Str(s) => s,
                        Value::Null => "null".into(),
                        Value::Bool(b) => b.to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::UInt(u) => u.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: "a mapping key must be a scalar".into(),
                            });
                        }
                    };
                    *key = Some(Key { pos: node.pos, name });
                    Ok(())
                }
                Some(k) if k.name == "<<" => {
                    // A merge key: entries of the merged mapping(s) not already present.
                    let sources = match node.value {
                        Value::Map(m) => vec![m],
                        Value::Seq(items) => items
                            .into_iter()
                            .filter_map(|n| match n.value {
                                Value::Map(m) => Some(m),
                                _ => None,
                            })
                            .collect(),
                        _ => {
                            return Err(SyntaxError { pos: k.pos, message: "a merge key (<<) needs a mapping".into() });
                        }
                    };
                    for m in sources {
                        for (k2, v2) in m {
                            if !entries.iter().any(|(e, _)| e.name == k2.name) {
                                merged.push(k2.name.clone());
                                entries.push((k2, v2));
                            }
                        }
                    }
                    Ok(())
                }
                Some(k) => match entries.iter().position(|(e, _)| e.name == k.name) {
                    // An explicit key overrides one that came from a merge.
                    Some(i) if merged.contains(&k.name) => {
                        merged.retain(|m| *m != k.name);
                        entries[i] = (k, node);
                        Ok(())
                    }
                    Some(_) => Err(SyntaxError { pos: k.pos, message: format!("duplicate mapping key: {}", k.name) }),
                    None => {
                        entries.push((k, node));
                        Ok(())
                    }
                },
            },
        }
    }
}

fn size(n: &Node) -> usize {
    match &n.value {
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + size(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Resolves a scalar by the YAML 1.2 core schema: only plain scalars are typed (null,
/// `true`/`false`, integers, floats); quoted and block scalars are strings; a
/// core-schema tag (`!!str`, `!!int`...) decides when present.
pub(crate) fn scalar(text: &str, style: ScalarStyle, tag: Option<&granit_parser::Tag>) -> Value {
    let string = || Value::Str(text.to_string());
    if let Some(t) = tag.and_then(|t| t.core_suffix()) {
        return match t {
            "null" => Value::Null,
            "bool" => core_bool(text).map(Value::Bool).unwrap_or_else(string),
            "int" => core_int(text).unwrap_or_else(string),
            "float" => core_float(text).or_else(|| core_int(text)).unwrap_or_else(string),
            _ => string(),
        };
    }
    if style != ScalarStyle::Plain {
        return string();
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = core_bool(text) {
        return Value::Bool(b);
    }
    // Numbers start with a digit, a sign or a dot (`.5`, `.inf`): most scalars are
    // names and skip both number parsers.
    if !matches!(text.as_bytes().first(), Some(b'0'..=b'9' | b'+' | b'-' | b'.')) {
        return string();
    }
    core_int(text).or_else(|| core_float(text)).unwrap_or_else(string)
}

fn core_bool(t: &str) -> Option<bool> {
    match t {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn core_int(t: &str) -> Option<Value> {
    if let Some(h) = t.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(Value::UInt);
    }
    if let Some(o) = t.strip_prefix("0o") {
        return u64::from_str_radix(o, 8).ok().map(Value::UInt);
    }
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    match (neg, digits.parse::<u64>()) {
        (false, Ok(v)) => Some(Value::UInt(v)),
        (true, Ok(0)) => Some(Value::UInt(0)),
        (true, Ok(v)) => match 0i64.checked_sub_unsigned(v) {
            Some(i) => Some(Value::Int(i)),
            None => t.parse::<f64>().ok().map(Value::Float),
        },
        // Too large for 64 bits: a float, as YAML loaders read it.
        (_, Err(_)) => t.parse::<f64>().ok().map(Value::Float),
    }
}

fn core_float(t: &str) -> Option<Value> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(Value::Float(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(Value::Float(f64::NAN)),
        _ => {}
    }
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    let ok_mantissa = (!int.is_empty() || !frac.is_empty())
        && digits(int)
        && digits(frac)
        && (mantissa.contains('.') || exp.is_some());
    let ok_exp = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if ok_mantissa && ok_exp { t.parse::<f64>().ok().map(Value::Float) } else { None }
}

/// The parser appends " at line N, column M"; we print positions ourselves.
fn strip_position(msg: &str) -> String {
    let msg = msg.trim();
    // The parser's own position ("at line L column C", "at char N line L column C")
    // counts from the start of the document, not the file: the diagnostic carries the
    // file position instead.
    let msg = match msg.rfind(" at line ").or_else(|| msg.rfind(" at char ")) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_positions_are_stripped_from_messages() {
        assert_eq!(
            strip_position("did not find expected ',' or '}' at char 166 line 11 column 9"),
            "did not find expected ',' or '}'"
        );
        assert_eq!(
            strip_position("mapping values are not allowed at line 3 column 2"),
            "mapping values are not allowed"
        );
        assert_eq!(strip_position("error: line 3 column 2: bad"), "bad");
    }

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
    fn the_core_schema_types_plain_scalars_only() {
        let n = root(
            "a: 0x1F\nb: 0o17\nc: 1e3\nd: .inf\ne: 'true'\nf: yes\ng: -0\nh: !!str 10\ni: 18446744073709551616\nj: NULL\nk: |\n  text\nl: 1.5.2\n",
        );
        let v = |k: &str| n.get(k).unwrap().value.clone();
        assert_eq!(v("a"), Value::UInt(31));
        assert_eq!(v("b"), Value::UInt(15));
        assert_eq!(v("c"), Value::Float(1000.0));
        assert_eq!(v("d"), Value::Float(f64::INFINITY));
        assert_eq!(v("e"), Value::Str("true".into()));
        assert_eq!(v("f"), Value::Str("yes".into()));
        assert_eq!(v("g"), Value::UInt(0));
        assert_eq!(v("h"), Value::Str("10".into()));
        assert!(matches!(v("i"), Value::Float(_)));
        assert_eq!(v("j"), Value::Null);
        assert_eq!(v("k"), Value::Str("text\n".into()));
        assert_eq!(v("l"), Value::Str("1.5.2".into()));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = root("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n");
        assert_eq!(n.get("use").unwrap().get("x").unwrap().value, Value::UInt(1));
        let m = n.get("merged").unwrap();
        assert_eq!(m.get("x").unwrap().value, Value::UInt(1));
        assert_eq!(m.get("y").unwrap().value, Value::UInt(3));
        // The alias node sits where it is used.
        assert_eq!(n.get("use").unwrap().pos.line, 2);
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
