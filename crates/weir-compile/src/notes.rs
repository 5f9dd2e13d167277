//! What the compiler notices, in the same shape as validation's findings: a code, a
//! level, the resource and field it is about, and a message. The resource's position
//! is known here; the field's line and column are found afterwards from the source
//! text (`weir_model::place`), since the compiler never sees the YAML tree.

use weir_model::{Diagnostic, FieldPath, Kind, Origin, Severity};

use crate::store::Item;

/// The resource a note is about.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    kind: Kind,
    namespace: String,
    name: String,
    origin: Origin,
}

impl Target {
    /// The resource `item` of `kind`.
    pub(crate) fn of<T>(kind: Kind, item: &Item<T>) -> Target {
        Target {
            kind,
            namespace: item.meta.namespace.clone(),
            name: item.meta.name.clone(),
            origin: item.origin.clone(),
        }
    }
}

/// One compiler note.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Note {
    pub(crate) code: &'static str,
    pub(crate) target: Option<Target>,
    pub(crate) path: FieldPath,
    pub(crate) message: String,
}

/// Notes collected while compiling.
pub(crate) type Notes = Vec<Note>;

impl Note {
    /// Configuration weir accepts but does not serve or execute (WEIR101).
    pub(crate) fn not_served(target: Option<Target>, path: FieldPath, message: String) -> Note {
        Note { code: weir_model::diag::codes::NOT_SERVED, target, path, message }
    }

    /// A reference that names nothing (IST0101, as Istio's analyzer names it).
    pub(crate) fn unresolved(target: Option<Target>, path: FieldPath, message: String) -> Note {
        Note { code: weir_model::diag::codes::REFERENCE_NOT_FOUND, target, path, message }
    }
}

/// A compiler note as a diagnostic (a warning: the resource is still used), placed at
/// its resource; `field` is where to place it more exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileNote {
    /// The diagnostic, at the resource's position (line 0 when it concerns no one
    /// resource).
    pub diagnostic: Diagnostic,
    /// The field it is about, relative to the resource.
    pub field: FieldPath,
}

impl From<Note> for CompileNote {
    fn from(n: Note) -> CompileNote {
        let (file, pos, kind, namespace, name) = match n.target {
            Some(t) => (t.origin.file, t.origin.pos, Some(t.kind.to_string()), Some(t.namespace), Some(t.name)),
            None => ("".into(), weir_model::node::Pos::default(), None, None, None),
        };
        CompileNote {
            diagnostic: Diagnostic {
                severity: Severity::Warning,
                code: n.code,
                file,
                line: pos.line,
                column: pos.column,
                kind,
                namespace,
                name,
                path: n.path.to_string(),
                message: n.message,
                source_line: None,
            },
            field: n.path,
        }
    }
}
