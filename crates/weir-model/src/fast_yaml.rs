//! A fast path for the YAML that configuration is written in: block mappings and
//! sequences, single-line plain and quoted scalars, flow collections and comments,
//! in ASCII without tabs.
//!
//! The complete parser ([`crate::node::parse_full`]) reads about 20 MB/s; a mesh of
//! 10,000 services is 13 MB, so parsing alone took most of `weir run`'s start-up. This
//! parser reads that subset an order of magnitude faster and builds the very same tree,
//! positions included, through the same [`Builder`] (so duplicate keys, merge keys and
//! limits behave the same). Anything outside the subset — anchors, aliases, tags, block
//! scalars, multi-line scalars, explicit keys, directives, tabs, non-ASCII text — and
//! anything that might be an error makes it give up on the document, which is then
//! parsed by the complete parser: errors and their messages always come from there.
//! The tests compare both parsers' trees on every input the fast one accepts.

use crate::node::{Builder, MAX_NODES, Node, Pos, Value, scalar};
use serde_saphyr::granit_parser::ScalarStyle;

/// Parses `text` (one document; `line_offset` lines precede it in its file), or `None`
/// when it is outside the subset or might not be valid.
pub(crate) fn parse(text: &str, line_offset: u32) -> Option<Node> {
    let s = text.as_bytes();
    if !s.iter().all(|&b| (b' '..=b'~').contains(&b) || b == b'\n') {
        return None;
    }
    let mut p = Fast { s, i: 0, line: 1, bol: 0, line_offset, nodes: 0, depth: 0, b: Builder::new(line_offset) };
    p.document().ok()?;
    Some(p.b.finish())
}

/// Giving up: the complete parser takes the document.
struct Bail;

type R<T = ()> = Result<T, Bail>;

struct Fast<'a> {
    s: &'a [u8],
    i: usize,
    /// 1-based line of `i` within the document.
    line: u32,
    /// Byte offset where that line starts.
    bol: usize,
    line_offset: u32,
    nodes: usize,
    /// Open collections: deep nesting is left to the complete parser (and its limits).
    depth: usize,
    b: Builder,
}

/// Nesting the fast path takes (far below the complete parser's limits).
const MAX_DEPTH: usize = 64;

/// Longest key the fast path takes (YAML limits implicit keys to 1024 characters).
const MAX_KEY: usize = 512;

/// Why a plain scalar ended.
#[derive(PartialEq)]
enum Stop {
    /// `: ` or `:` at the end of the line: it was a key.
    Colon,
    /// End of line, end of text or a comment.
    Line,
    /// A flow indicator (flow context only).
    Flow,
}

impl<'a> Fast<'a> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn pos(&self) -> Pos {
        Pos::new(self.line + self.line_offset, (self.i - self.bol) as u32 + 1)
    }

    fn col(&self) -> usize {
        self.i - self.bol
    }

    fn count(&mut self) -> R {
        self.nodes += 1;
        if self.nodes > MAX_NODES { Err(Bail) } else { Ok(()) }
    }

    fn emit(&mut self, pos: Pos, text: &str, style: ScalarStyle) -> R {
        self.count()?;
        let v = scalar(text, style, None);
        self.b.scalar(pos, v, 0).map_err(|_| Bail)
    }

    fn null(&mut self, pos: Pos) -> R {
        self.count()?;
        self.b.scalar(pos, Value::Null, 0).map_err(|_| Bail)
    }

    fn start_seq(&mut self, pos: Pos) -> R {
        self.count()?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bail);
        }
        self.b.start_seq(pos, 0);
        Ok(())
    }

    fn start_map(&mut self, pos: Pos) -> R {
        self.count()?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bail);
        }
        self.b.start_map(pos, 0);
        Ok(())
    }

    fn end(&mut self) -> R {
        self.depth -= 1;
        let pos = self.pos();
        self.b.end(pos).map_err(|_| Bail)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == b' ' {
            self.i += 1;
        }
    }

    /// Whether a `#` at `i` starts a comment (it follows a space or starts the line).
    fn comment_here(&self) -> bool {
        self.peek() == b'#' && (self.i == self.bol || self.s[self.i - 1] == b' ')
    }

    /// After a value: only spaces and a comment may follow on the line.
    fn end_of_line(&mut self) -> R {
        self.skip_spaces();
        match self.peek() {
            0 | b'\n' => Ok(()),
            b'#' if self.comment_here() => {
                self.skip_comment();
                Ok(())
            }
            _ => Err(Bail),
        }
    }

    fn skip_comment(&mut self) {
        while !matches!(self.peek(), 0 | b'\n') {
            self.i += 1;
        }
    }

    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.bol = self.i;
    }

    /// From the end of a line to the first content of the next line that has any
    /// (blank and comment-only lines skipped). Returns its column, `None` at the end.
    fn next_line(&mut self) -> Option<usize> {
        loop {
            match self.peek() {
                0 => return None,
                b'\n' => self.newline(),
                // Only reached through `end_of_line`, which stops at '\n' or the end.
                _ => return None,
            }
            self.skip_spaces();
            match self.peek() {
                b'\n' => continue,
                b'#' => {
                    self.skip_comment();
                    continue;
                }
                0 => return None,
                _ => return Some(self.col()),
            }
        }
    }

    fn document(&mut self) -> R {
        // The chunk may begin with its `---` line; nothing may follow the marker.
        if self.s.starts_with(b"---") {
            self.i = 3;
            self.end_of_line()?;
        }
        let col = loop {
            self.skip_spaces();
            match self.peek() {
                b'#' => self.skip_comment(),
                b'\n' => self.newline(),
                0 => return Err(Bail),
                _ => break self.col(),
            }
        };
        if col == 0 && (self.s[self.i..].starts_with(b"---") || self.s[self.i..].starts_with(b"...")) {
            return Err(Bail);
        }
        let next = self.block_node(col)?;
        if next.is_some() {
            return Err(Bail);
        }
        Ok(())
    }

    /// A `-` that starts a sequence entry.
    fn is_entry(&self) -> bool {
        self.peek() == b'-' && matches!(self.at(self.i + 1), b' ' | b'\n' | 0)
    }

    /// A node in block context starting at `i` (column `col`). Returns the column of the
    /// next content line (with `i` on it), or `None` at the end of the text.
    fn block_node(&mut self, col: usize) -> R<Option<usize>> {
        if self.is_entry() {
            return self.block_seq(col, false);
        }
        match self.peek() {
            b'[' | b'{' => {
                self.flow_node(col as isize - 1)?;
                self.after_inline(col as isize - 1)
            }
            _ => {
                if self.key_ahead()? {
                    self.block_map(col)
                } else {
                    self.inline_scalar()?;
                    self.after_inline(col as isize - 1)
                }
            }
        }
    }

    /// After an inline value inside a collection indented at `indent`: the rest of the
    /// line, then the next content line, which must not be indented deeper (that would
    /// be a multi-line scalar or an error).
    fn after_inline(&mut self, indent: isize) -> R<Option<usize>> {
        self.end_of_line()?;
        match self.next_line() {
            Some(c) if c as isize > indent => Err(Bail),
            next => Ok(next),
        }
    }

    /// Whether the line from `i` is `key: ...` (a plain or quoted key and a colon).
    fn key_ahead(&self) -> R<bool> {
        let mut j = self.i;
        match self.at(j) {
            b'"' | b'\'' => {
                let q = self.at(j);
                j += 1;
                loop {
                    match self.at(j) {
                        0 | b'\n' => return Err(Bail),
                        b'\\' if q == b'"' => j += 2,
                        c if c == q => {
                            if q == b'\'' && self.at(j + 1) == b'\'' {
                                j += 2;
                                continue;
                            }
                            j += 1;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                while self.at(j) == b' ' {
                    j += 1;
                }
                Ok(self.at(j) == b':' && matches!(self.at(j + 1), b' ' | b'\n' | 0))
            }
            _ => {
                if !self.plain_start(j, false) {
                    return Err(Bail);
                }
                loop {
                    match self.at(j) {
                        0 | b'\n' => return Ok(false),
                        b':' if matches!(self.at(j + 1), b' ' | b'\n' | 0) => return Ok(true),
                        b' ' if self.at(j + 1) == b'#' => return Ok(false),
                        _ => j += 1,
                    }
                }
            }
        }
    }

    /// Whether a plain scalar may start at `j`.
    fn plain_start(&self, j: usize, flow: bool) -> bool {
        match self.at(j) {
            0 | b'\n' | b' ' => false,
            b'-' | b'?' | b':' => {
                let n = self.at(j + 1);
                !(matches!(n, b' ' | b'\n' | 0) || (flow && matches!(n, b',' | b'[' | b']' | b'{' | b'}')))
            }
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@'
            | b'`' => false,
            _ => true,
        }
    }

    /// A plain scalar from `i`; returns its text (trailing spaces trimmed) and why it
    /// ended, with `i` at the stop.
    fn plain(&mut self, flow: bool) -> R<(&'a str, Stop)> {
        if !self.plain_start(self.i, flow) {
            return Err(Bail);
        }
        let start = self.i;
        let stop = loop {
            match self.peek() {
                0 | b'\n' => break Stop::Line,
                b':' => {
                    let n = self.at(self.i + 1);
                    if matches!(n, b' ' | b'\n' | 0) {
                        break Stop::Colon;
                    }
                    if flow && matches!(n, b',' | b'[' | b']' | b'{' | b'}') {
                        // `a:[`, `a:}`...: errors or rare forms.
                        return Err(Bail);
                    }
                    self.i += 1;
                }
                b' ' if self.at(self.i + 1) == b'#' => break Stop::Line,
                b',' | b'[' | b']' | b'{' | b'}' if flow => break Stop::Flow,
                _ => self.i += 1,
            }
        };
        let mut end = self.i;
        while end > start && self.s[end - 1] == b' ' {
            end -= 1;
        }
        // ASCII was checked for the whole document.
        let text = std::str::from_utf8(&self.s[start..end]).map_err(|_| Bail)?;
        if self.i - start > MAX_KEY && stop == Stop::Colon {
            return Err(Bail);
        }
        Ok((text, stop))
    }

    /// A quoted scalar from `i` (at its quote), on one line.
    fn quoted(&mut self) -> R<(String, ScalarStyle)> {
        let q = self.peek();
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            match self.peek() {
                0 | b'\n' => return Err(Bail),
                b'\\' if q == b'"' => {
                    out.push_str(self.text(run, self.i)?);
                    let c = match self.at(self.i + 1) {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'0' => '\0',
                        b'u' => {
                            let hex = self.s.get(self.i + 2..self.i + 6).ok_or(Bail)?;
                            let hex = std::str::from_utf8(hex).map_err(|_| Bail)?;
                            let n = u32::from_str_radix(hex, 16).map_err(|_| Bail)?;
                            self.i += 4;
                            char::from_u32(n).ok_or(Bail)?
                        }
                        _ => return Err(Bail),
                    };
                    out.push(c);
                    self.i += 2;
                    run = self.i;
                }
                c if c == q => {
                    out.push_str(self.text(run, self.i)?);
                    if q == b'\'' && self.at(self.i + 1) == b'\'' {
                        out.push('\'');
                        self.i += 2;
                        run = self.i;
                        continue;
                    }
                    self.i += 1;
                    let style = if q == b'"' { ScalarStyle::DoubleQuoted } else { ScalarStyle::SingleQuoted };
                    return Ok((out, style));
                }
                _ => self.i += 1,
            }
        }
    }

    fn text(&self, from: usize, to: usize) -> R<&'a str> {
        std::str::from_utf8(&self.s[from..to]).map_err(|_| Bail)
    }

    /// A scalar value in block context that must end its line.
    fn inline_scalar(&mut self) -> R {
        let pos = self.pos();
        match self.peek() {
            b'"' | b'\'' => {
                let (text, style) = self.quoted()?;
                self.emit(pos, &text, style)
            }
            _ => {
                let (text, stop) = self.plain(false)?;
                if stop != Stop::Line {
                    return Err(Bail);
                }
                self.emit(pos, text, ScalarStyle::Plain)
            }
        }
    }

    /// A key up to and including its colon; emits it and returns the colon's position.
    fn key(&mut self) -> R<Pos> {
        let (pos, start) = (self.pos(), self.i);
        match self.peek() {
            b'"' | b'\'' => {
                let (text, style) = self.quoted()?;
                if self.i - start > MAX_KEY {
                    return Err(Bail);
                }
                self.skip_spaces();
                if self.peek() != b':' || !matches!(self.at(self.i + 1), b' ' | b'\n' | 0) {
                    return Err(Bail);
                }
                self.emit(pos, &text, style)?;
            }
            _ => {
                let (text, stop) = self.plain(false)?;
                if stop != Stop::Colon {
                    return Err(Bail);
                }
                self.emit(pos, text, ScalarStyle::Plain)?;
            }
        }
        let colon = self.pos();
        self.i += 1;
        Ok(colon)
    }

    /// A block mapping whose keys sit at column `indent`.
    fn block_map(&mut self, indent: usize) -> R<Option<usize>> {
        let pos = self.pos();
        self.start_map(pos)?;
        loop {
            let colon = self.key()?;
            self.skip_spaces();
            let next = match self.peek() {
                0 | b'\n' | b'#' => {
                    self.end_of_line()?;
                    match self.next_line() {
                        Some(c) if c > indent => self.block_node(c)?,
                        Some(c) if c == indent && self.is_entry() => self.block_seq(c, true)?,
                        next => {
                            self.null(colon)?;
                            next
                        }
                    }
                }
                b'[' | b'{' => {
                    self.flow_node(indent as isize)?;
                    self.after_inline(indent as isize)?
                }
                _ if self.is_entry() => return Err(Bail),
                _ => {
                    self.inline_scalar()?;
                    self.after_inline(indent as isize)?
                }
            };
            match next {
                Some(c) if c == indent && !self.is_entry() => continue,
                Some(c) if c < indent => break,
                None => break,
                Some(_) => return Err(Bail),
            }
        }
        self.end()?;
        Ok(self.current())
    }

    /// The column of the current content line, or `None` at the end.
    fn current(&self) -> Option<usize> {
        if self.i >= self.s.len() { None } else { Some(self.col()) }
    }

    /// A block sequence whose `-` sit at column `indent`; `indentless` when it is a
    /// mapping value at the mapping's own indentation.
    fn block_seq(&mut self, indent: usize, indentless: bool) -> R<Option<usize>> {
        let mut first = true;
        loop {
            let dash = self.pos();
            self.i += 1;
            self.skip_spaces();
            let next = match self.peek() {
                0 | b'\n' | b'#' => {
                    if indentless && first {
                        return Err(Bail);
                    }
                    self.end_of_line()?;
                    match self.next_line() {
                        Some(c) if c > indent => {
                            if first {
                                self.start_seq(dash)?;
                            }
                            self.block_node(c)?
                        }
                        _ => return Err(Bail),
                    }
                }
                _ => {
                    if first {
                        let at = if indentless { self.pos() } else { dash };
                        self.start_seq(at)?;
                    }
                    let col = self.col();
                    self.block_node(col)?
                }
            };
            first = false;
            match next {
                Some(c) if c == indent && self.is_entry() => continue,
                Some(c) if c == indent && indentless => break,
                Some(c) if c < indent => break,
                None => break,
                Some(_) => return Err(Bail),
            }
        }
        self.end()?;
        Ok(self.current())
    }

    /// Spaces, line breaks and comments inside a flow collection. Continuation lines
    /// must be indented deeper than the block collection around it.
    fn flow_space(&mut self, indent: isize) -> R {
        loop {
            self.skip_spaces();
            match self.peek() {
                b'\n' => {
                    self.newline();
                    self.skip_spaces();
                    if !matches!(self.peek(), b'\n' | b'#' | 0) && (self.col() as isize) <= indent {
                        return Err(Bail);
                    }
                    if self.col() == 0 && (self.s[self.i..].starts_with(b"---") || self.s[self.i..].starts_with(b"..."))
                    {
                        return Err(Bail);
                    }
                }
                b'#' if self.comment_here() => self.skip_comment(),
                b'#' => {
                    // `#` right after a token is not a comment.
                    return Err(Bail);
                }
                _ => return Ok(()),
            }
        }
    }

    /// A flow node (`[...]`, `{...}` or a scalar inside one).
    fn flow_node(&mut self, indent: isize) -> R {
        let pos = self.pos();
        match self.peek() {
            b'[' => {
                self.i += 1;
                self.start_seq(pos)?;
                loop {
                    self.flow_space(indent)?;
                    if self.peek() == b']' {
                        self.i += 1;
                        break;
                    }
                    self.flow_node(indent)?;
                    self.flow_space(indent)?;
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(Bail),
                    }
                }
                self.end()
            }
            b'{' => {
                self.i += 1;
                self.start_map(pos)?;
                loop {
                    self.flow_space(indent)?;
                    if self.peek() == b'}' {
                        self.i += 1;
                        break;
                    }
                    self.flow_scalar(indent, true)?;
                    self.flow_space(indent)?;
                    if self.peek() != b':' {
                        return Err(Bail);
                    }
                    self.i += 1;
                    self.flow_space(indent)?;
                    if matches!(self.peek(), b',' | b'}') {
                        return Err(Bail);
                    }
                    self.flow_node(indent)?;
                    self.flow_space(indent)?;
                    match self.peek() {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(Bail),
                    }
                }
                self.end()
            }
            _ => self.flow_scalar(indent, false),
        }
    }

    /// A scalar in a flow collection (`key`: a mapping key, which a colon must follow).
    fn flow_scalar(&mut self, indent: isize, key: bool) -> R {
        let pos = self.pos();
        match self.peek() {
            b'"' | b'\'' => {
                let (text, style) = self.quoted()?;
                self.emit(pos, &text, style)
            }
            _ => {
                let (text, stop) = self.plain(true)?;
                match stop {
                    Stop::Colon if !key => return Err(Bail),
                    Stop::Line => {
                        // A plain scalar may go on over the next line: leave that
                        // to the complete parser.
                        self.flow_space(indent)?;
                        if !matches!(self.peek(), b',' | b']' | b'}') {
                            return Err(Bail);
                        }
                    }
                    _ => {}
                }
                if key && text.len() > MAX_KEY {
                    return Err(Bail);
                }
                self.emit(pos, text, ScalarStyle::Plain)
            }
        }
    }
}

#[cfg(test)]
mod tests;
