//! Placing findings made after loading — by the compiler or by cross-resource
//! analysis, which know a resource's position and a field path but not the tree, since
//! the loader drops it — at the line and column of that field.
//!
//! The file is parsed again, once, and only the documents holding a finding are kept
//! in memory while they are placed, so a clean 10 MB configuration costs nothing.

use std::collections::HashMap;

use crate::diag::{Diagnostic, excerpt};
use crate::node::{Node, Pos, Value, documents};
use crate::path::FieldPath;

/// A finding to place: the diagnostic (at its resource's position) and its field.
#[derive(Debug)]
pub struct Unplaced<'a> {
    /// The diagnostic; its line and column are the resource's position on entry.
    pub diagnostic: &'a mut Diagnostic,
    /// The field at fault, relative to the resource.
    pub path: &'a FieldPath,
}

/// Moves each diagnostic of `items` (all from the file whose text is `text`) to its
/// field's position, with the source line as excerpt. A resource not found in the
/// text (the file changed) keeps its position.
pub fn place(text: &str, items: &mut [Unplaced<'_>]) {
    let wanted: std::collections::HashSet<Pos> =
        items.iter().map(|u| Pos::new(u.diagnostic.line, u.diagnostic.column)).collect();
    let mut objects: HashMap<Pos, Node> = HashMap::new();
    for doc in documents(text) {
        let Ok(root) = doc.root else { continue };
        if root.get("kind").and_then(Node::as_str) == Some("List") {
            if let Some(Value::Seq(list)) = root.get("items").map(|n| &n.value) {
                for item in list.iter().filter(|i| wanted.contains(&i.pos)) {
                    objects.insert(item.pos, item.clone());
                }
            }
        } else if wanted.contains(&root.pos) {
            objects.insert(root.pos, root);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    for u in items.iter_mut() {
        let d = &mut *u.diagnostic;
        let at = objects.get(&Pos::new(d.line, d.column)).map(|n| n.locate(u.path));
        if let Some(pos) = at {
            d.line = pos.line;
            d.column = pos.column;
        }
        if let Some(line) = (d.line as usize).checked_sub(1).and_then(|i| lines.get(i)) {
            d.source_line = Some(excerpt(line.trim_end_matches('\r'), d.column));
        }
    }
}

/// Places findings from any number of files: each file's text is asked of `text_of`
/// once (a file it cannot give keeps its findings at their resources).
pub fn place_all(items: &mut [Unplaced<'_>], mut text_of: impl FnMut(&str) -> Option<String>) {
    let mut by_file: HashMap<std::sync::Arc<str>, Vec<usize>> = HashMap::new();
    for (i, u) in items.iter().enumerate() {
        if u.diagnostic.line > 0 {
            by_file.entry(u.diagnostic.file.clone()).or_default().push(i);
        }
    }
    for (file, idx) in by_file {
        let Some(text) = text_of(&file) else { continue };
        // Split the borrows: the group of this file, in place.
        let mut group: Vec<Unplaced<'_>> = Vec::with_capacity(idx.len());
        let mut rest = &mut items[..];
        let mut offset = 0;
        for i in idx {
            let (_, tail) = rest.split_at_mut(i - offset);
            let (one, tail) = tail.split_at_mut(1);
            group.push(Unplaced { diagnostic: &mut *one[0].diagnostic, path: one[0].path });
            rest = tail;
            offset = i + 1;
        }
        place(&text, &mut group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;

    fn diag(line: u32, column: u32) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code: "IST0101",
            file: "f.yaml".into(),
            line,
            column,
            kind: None,
            namespace: None,
            name: None,
            path: String::new(),
            message: "m".into(),
            source_line: None,
        }
    }

    #[test]
    fn a_finding_moves_from_its_resource_to_its_field_in_documents_and_lists() {
        let text =
            "kind: A\nspec:\n  host: x\n---\nkind: List\nitems:\n- kind: B\n  spec:\n    subsets:\n    - name: v1\n";
        let (mut a, mut b) = (diag(1, 1), diag(7, 3));
        let pa = FieldPath::root().key("spec").key("host");
        let pb = FieldPath::root().key("spec").key("subsets").index(0).key("name");
        place(text, &mut [Unplaced { diagnostic: &mut a, path: &pa }, Unplaced { diagnostic: &mut b, path: &pb }]);
        assert_eq!((a.line, a.column), (3, 9));
        assert_eq!(a.source_line.as_deref(), Some("  host: x"));
        assert_eq!((b.line, b.column), (10, 13));
    }

    #[test]
    fn a_resource_no_longer_in_the_text_keeps_its_position() {
        let mut d = diag(40, 1);
        place("kind: A\n", &mut [Unplaced { diagnostic: &mut d, path: &FieldPath::root().key("spec") }]);
        assert_eq!((d.line, d.column, d.source_line.is_none()), (40, 1, true));
    }
}
