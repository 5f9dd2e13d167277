//! Field paths such as `spec.http[0].route[1].weight`, the way diagnostics name a place.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key (a field name, or a key of a user map such as `labels`).
    Key(String),
    /// A list index.
    Index(usize),
}

/// A path from the document root to a field, built while decoding or validating.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldPath {
    segs: Vec<Seg>,
}

impl FieldPath {
    /// The empty path (the document root).
    pub fn root() -> Self {
        FieldPath::default()
    }

    /// A path from its segments.
    pub fn from_segs(segs: Vec<Seg>) -> Self {
        FieldPath { segs }
    }

    /// The segments, root first.
    pub fn segs(&self) -> &[Seg] {
        &self.segs
    }

    /// This path extended by a key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segs = Vec::with_capacity(self.segs.len() + 1);
        segs.extend_from_slice(&self.segs);
        segs.push(Seg::Key(key.to_string()));
        FieldPath { segs }
    }

    /// This path extended by an index.
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut segs = Vec::with_capacity(self.segs.len() + 1);
        segs.extend_from_slice(&self.segs);
        segs.push(Seg::Index(i));
        FieldPath { segs }
    }

    /// Appends a key in place.
    pub fn push_key(&mut self, key: &str) {
        self.segs.push(Seg::Key(key.to_string()));
    }

    /// Appends an index in place.
    pub fn push_index(&mut self, i: usize) {
        self.segs.push(Seg::Index(i));
    }

    /// Removes the last segment.
    pub fn pop(&mut self) {
        self.segs.pop();
    }

    /// True for the root path.
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }
}

fn plain_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'@')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Key(k) if plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_field_reference() {
        let p = FieldPath::root().key("spec").key("http").index(0).key("route").index(1).key("weight");
        assert_eq!(p.to_string(), "spec.http[0].route[1].weight");
        let q = FieldPath::root().key("metadata").key("labels").key("app.kubernetes.io/name");
        assert_eq!(q.to_string(), "metadata.labels[\"app.kubernetes.io/name\"]");
        let h = FieldPath::root().key("headers").key(":authority");
        assert_eq!(h.to_string(), "headers[\":authority\"]");
    }
}
