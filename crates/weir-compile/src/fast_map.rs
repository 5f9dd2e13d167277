//! Hash maps for the compiler's indexes. Their keys are host names, namespaces and
//! cluster keys from the configuration, never a client's input, so they use foldhash
//! (as the routing table does) instead of SipHash: SipHash was 6-8% of compiling a
//! 10,000-service mesh.

/// A `HashMap` with foldhash.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with foldhash.
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
