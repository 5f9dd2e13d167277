//! Istio's host-name matching (`host.Name.Matches` and `SubsetOf`), shared by
//! validation and the compiler.

/// True when the two patterns can match a common name: equal, or one side's wildcard
/// covers the other (`*.foo.com` and `a.foo.com`, `*.foo.bar` and `*.bar`).
pub fn overlaps(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => sa.ends_with(sb) || sb.ends_with(sa),
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// True when every name `a` matches is matched by `b` (`app.example.com` is a subset
/// of `*.example.com`; `*.example.com` is not a subset of `app.example.com`).
pub fn subset_of(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => sa.ends_with(sb),
        (Some(_), None) => false,
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_subset() {
        assert!(overlaps("*.foo.bar", "*.bar"));
        assert!(overlaps("*.example.com", "shop.example.com"));
        assert!(!overlaps("*.example.com", "example.com"));
        assert!(overlaps("a.com", "a.com"));
        assert!(subset_of("app.example.com", "*.example.com"));
        assert!(!subset_of("*.example.com", "app.example.com"));
        assert!(subset_of("a.com", "*"));
    }
}
