//! The resource envelope: kind, apiVersion, metadata and the typed spec, plus where
//! the resource was written.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::node::Pos;
use crate::types::{DestinationRule, Gateway, ServiceEntry, Sidecar, VirtualService, WorkloadEntry};

/// The API group weir reads.
pub const GROUP: &str = "networking.istio.io";
/// The versions of that group, all with one schema.
pub const VERSIONS: [&str; 3] = ["v1alpha3", "v1beta1", "v1"];
/// The namespace of a resource that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The kinds weir reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `VirtualService`.
    VirtualService,
    /// `DestinationRule`.
    DestinationRule,
    /// `Gateway`.
    Gateway,
    /// `ServiceEntry`.
    ServiceEntry,
    /// `WorkloadEntry`.
    WorkloadEntry,
    /// `Sidecar`.
    Sidecar,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 6] = [
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::Gateway,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::Sidecar,
    ];

    /// The `kind:` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::Gateway => "Gateway",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::Sidecar => "Sidecar",
        }
    }

    /// Parses a `kind:` string.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes `ObjectMeta`, the parts weir reads; the rest is accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    /// Name.
    pub name: String,
    /// Namespace (`default` when absent).
    pub namespace: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Creation time (the "older wins" tie-breaker).
    pub creation_timestamp: Option<String>,
    /// Accepted and ignored.
    pub generate_name: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub uid: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub resource_version: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub generation: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub deletion_timestamp: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub deletion_grace_period_seconds: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub owner_references: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub finalizers: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub managed_fields: Option<IgnoredAny>,
    /// Accepted and ignored.
    pub self_link: Option<IgnoredAny>,
}

/// The typed spec of a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// A VirtualService.
    VirtualService(VirtualService),
    /// A DestinationRule.
    DestinationRule(DestinationRule),
    /// A Gateway.
    Gateway(Gateway),
    /// A ServiceEntry.
    ServiceEntry(ServiceEntry),
    /// A WorkloadEntry.
    WorkloadEntry(WorkloadEntry),
    /// A Sidecar (boxed: it is the largest spec and the rarest).
    Sidecar(Box<Sidecar>),
}

impl Spec {
    /// The kind of this spec.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::VirtualService(_) => Kind::VirtualService,
            Spec::DestinationRule(_) => Kind::DestinationRule,
            Spec::Gateway(_) => Kind::Gateway,
            Spec::ServiceEntry(_) => Kind::ServiceEntry,
            Spec::WorkloadEntry(_) => Kind::WorkloadEntry,
            Spec::Sidecar(_) => Kind::Sidecar,
        }
    }
}

/// Where a resource came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// File name (`-` for stdin), or another source's name.
    pub file: Arc<str>,
    /// Position of the object in the file.
    pub pos: Pos,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            // No text (an object from the Kubernetes API): the source names it.
            return f.write_str(&self.file);
        }
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.column)
    }
}

/// A loaded, decoded resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// `apiVersion` as written.
    pub api_version: String,
    /// Metadata (namespace already defaulted).
    pub meta: ObjectMeta,
    /// Typed spec.
    pub spec: Spec,
    /// Where it was written.
    pub origin: Origin,
    /// `status.addresses` is not empty: Istio allocated addresses to this
    /// ServiceEntry (analysis then does not ask for `spec.addresses`).
    pub status_addresses: bool,
}

impl Resource {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// `namespace/name`.
    pub fn key(&self) -> ResourceKey {
        ResourceKey { kind: self.kind(), namespace: self.meta.namespace.clone(), name: self.meta.name.clone() }
    }
}

/// The identity of a resource: two resources with the same key are duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// Kind.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// The object as decoded, generic over the spec type. `apiVersion`, `kind` and
/// `status` are declared so that they count as known fields; their values were
/// already read from the tree (or are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Object<S> {
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) api_version: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) metadata: ObjectMeta,
    #[serde(default = "Option::default")]
    pub(crate) spec: Option<S>,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) status: Option<IgnoredAny>,
}
