//! Host names as Istio reads them (spec §1.1): short-name expansion relative to the
//! config's namespace, wildcard matching, and gateway references.

use std::net::IpAddr;

/// The cluster domain (`svc.<domain>`).
pub const DEFAULT_DOMAIN: &str = "cluster.local";

/// Expands a host written in a resource of namespace `ns`: `*`, IPs and names with a
/// dot are kept; a short name becomes `<name>.<ns>.svc.<domain>`. Lower-cased.
pub fn expand(host: &str, ns: &str, domain: &str) -> String {
    let host = host.to_ascii_lowercase();
    if host == "*" || host.contains('.') || host.parse::<IpAddr>().is_ok() {
        return host;
    }
    format!("{host}.{ns}.svc.{domain}")
}

pub use weir_model::host::{overlaps, subset_of};

/// How specific a host pattern is: exact names beat wildcards, longer suffixes beat
/// shorter ones. Larger is more specific.
pub fn specificity(pattern: &str) -> (bool, usize) {
    match pattern.strip_prefix('*') {
        Some(s) => (false, s.len()),
        None => (true, pattern.len()),
    }
}

/// The intersection of a VirtualService host and a Gateway server host: the more
/// specific of the two when one lies within the other.
pub fn intersect(vs_host: &str, server_host: &str) -> Option<String> {
    if subset_of(vs_host, server_host) {
        Some(vs_host.to_string())
    } else if subset_of(server_host, vs_host) {
        Some(server_host.to_string())
    } else {
        None
    }
}

/// The names a mesh client may use for a service: the FQDN and, for a
/// `<name>.<ns>.svc.<domain>` host, `<name>.<ns>.svc`, `<name>.<ns>` and (from the same
/// namespace only) `<name>`.
pub fn aliases(fqdn: &str, client_ns: &str, domain: &str) -> Vec<String> {
    let mut out = vec![fqdn.to_string()];
    let suffix = format!(".svc.{domain}");
    if let Some(stem) = fqdn.strip_suffix(&suffix)
        && let Some((name, ns)) = stem.split_once('.')
        && !name.is_empty()
        && !ns.contains('.')
        && !name.starts_with('*')
    {
        out.push(format!("{name}.{ns}.svc"));
        out.push(format!("{name}.{ns}"));
        if ns == client_ns {
            out.push(name.to_string());
        }
    }
    out
}

/// A reference to where routes are installed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GatewayRef {
    /// All sidecars (the mesh listener).
    Mesh,
    /// A Gateway by namespace and name.
    Gateway {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
}

/// Reads a `gateways:` entry of a resource in namespace `ns`: `mesh`, `ns/name`,
/// `./name`, `name` (same namespace) or the legacy `name.ns[.svc.cluster.local]`.
pub fn gateway_ref(entry: &str, ns: &str) -> GatewayRef {
    if entry == "mesh" {
        return GatewayRef::Mesh;
    }
    if let Some((gns, name)) = entry.split_once('/') {
        let gns = if gns == "." { ns } else { gns };
        return GatewayRef::Gateway { namespace: gns.to_string(), name: name.to_string() };
    }
    if let Some((name, rest)) = entry.split_once('.') {
        let gns = rest.split('.').next().unwrap_or(ns);
        return GatewayRef::Gateway { namespace: gns.to_string(), name: name.to_string() };
    }
    GatewayRef::Gateway { namespace: ns.to_string(), name: entry.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_uses_the_config_namespace() {
        assert_eq!(expand("reviews", "bookinfo", DEFAULT_DOMAIN), "reviews.bookinfo.svc.cluster.local");
        assert_eq!(expand("reviews.bookinfo", "other", DEFAULT_DOMAIN), "reviews.bookinfo");
        assert_eq!(expand("*", "x", DEFAULT_DOMAIN), "*");
        assert_eq!(expand("10.0.0.1", "x", DEFAULT_DOMAIN), "10.0.0.1");
        assert_eq!(expand("Reviews", "x", DEFAULT_DOMAIN), "reviews.x.svc.cluster.local");
    }

    #[test]
    fn aliases_follow_kubernetes_service_names() {
        let a = aliases("reviews.bookinfo.svc.cluster.local", "bookinfo", DEFAULT_DOMAIN);
        assert_eq!(a, ["reviews.bookinfo.svc.cluster.local", "reviews.bookinfo.svc", "reviews.bookinfo", "reviews"]);
        let b = aliases("reviews.bookinfo.svc.cluster.local", "other", DEFAULT_DOMAIN);
        assert_eq!(b.len(), 3);
        assert_eq!(aliases("api.example.com", "x", DEFAULT_DOMAIN), ["api.example.com"]);
    }

    #[test]
    fn intersections() {
        assert_eq!(intersect("dev.example.com", "*.example.com").as_deref(), Some("dev.example.com"));
        assert_eq!(intersect("*", "*.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(intersect("example.com", "*.example.com"), None);
        assert_eq!(intersect("a.com", "*").as_deref(), Some("a.com"));
    }

    #[test]
    fn gateway_references() {
        let gw = |ns: &str, n: &str| GatewayRef::Gateway { namespace: ns.into(), name: n.into() };
        assert_eq!(gateway_ref("mesh", "a"), GatewayRef::Mesh);
        assert_eq!(gateway_ref("gw", "a"), gw("a", "gw"));
        assert_eq!(gateway_ref("b/gw", "a"), gw("b", "gw"));
        assert_eq!(gateway_ref("./gw", "a"), gw("a", "gw"));
        assert_eq!(gateway_ref("gw.b.svc.cluster.local", "a"), gw("b", "gw"));
    }
}
