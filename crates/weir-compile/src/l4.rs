//! TCP and TLS routes of VirtualServices, and the TLS settings of Gateway servers, for
//! one gateway server: what [`weir_table::L4Route`]s and [`weir_table::Termination`]
//! the table carries below HTTP.

use weir_model::types::{Destination, RouteDestination, ServerTlsMode, ServerTlsSettings, TlsProtocol, VirtualService};
use weir_table::{
    CertSource, ClusterRef, HeaderOps, L4Route, Subnet, Termination, TlsMode, TlsVersion, WeightedCluster,
};

use crate::Instance;
use crate::clusters::{Clusters, PortContext};
use crate::hosts::{self, GatewayRef};
use crate::notes::{Note, Notes, Target};
use crate::store::{Item, selects};

/// Where L4 routes are built: a gateway server's port and the gateway itself.
pub(crate) struct L4Place<'a> {
    pub(crate) gateway: &'a GatewayRef,
    pub(crate) port: u16,
    /// The server's hosts (DNS part, lower case), which SNI routes must fall under.
    pub(crate) server_hosts: &'a [String],
}

/// True when a route match entry's `gateways` (when set) names this gateway.
fn for_gateway(gateways: &[String], ns: &str, gw: &GatewayRef) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| hosts::gateway_ref(g, ns) == *gw)
}

/// True when a match entry's instance conditions hold at `place`: its `port` (0 = any),
/// `gateways`, `sourceLabels` and `sourceNamespace` (the same fields in TCP and TLS
/// matches).
fn applies(
    port: u32,
    gateways: &[String],
    source_labels: &std::collections::BTreeMap<String, String>,
    source_namespace: &str,
    vs_ns: &str,
    place: &L4Place<'_>,
    instance: &Instance,
) -> bool {
    (port == 0 || u16::try_from(port).is_ok_and(|p| p == place.port))
        && (source_namespace.is_empty() || source_namespace == instance.namespace)
        && for_gateway(gateways, vs_ns, place.gateway)
        && selects(source_labels, &instance.labels)
}

/// The `tcp` routes of `vs` that apply at `place`, in order.
pub(crate) fn tcp_routes(
    vs: &Item<VirtualService>,
    place: &L4Place<'_>,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
) -> Vec<L4Route> {
    let ns = vs.meta.namespace.as_str();
    let mut out = Vec::new();
    for route in &vs.spec.tcp {
        let mut subnets_per_match: Vec<Vec<Subnet>> = Vec::new();
        if route.matches.is_empty() {
            subnets_per_match.push(Vec::new());
        }
        for m in &route.matches {
            if !applies(m.port, &m.gateways, &m.source_labels, &m.source_namespace, ns, place, instance) {
                continue;
            }
            subnets_per_match.push(subnets(&m.destination_subnets, vs, notes));
        }
        if subnets_per_match.is_empty() {
            continue;
        }
        let Some((destinations, total_weight)) = weighted(&route.route, ns, place.port, clusters) else { continue };
        for destination_subnets in subnets_per_match {
            out.push(L4Route {
                origin: vs.id().into(),
                sni_hosts: Vec::new(),
                destination_subnets,
                port: None,
                destinations: destinations.clone(),
                total_weight,
            });
        }
    }
    out
}

/// The `tls` routes of `vs` that apply at a PASSTHROUGH server `place`, in order; each
/// match's `sniHosts` are kept where they fall under the server's hosts.
pub(crate) fn tls_routes(
    vs: &Item<VirtualService>,
    place: &L4Place<'_>,
    instance: &Instance,
    clusters: &mut Clusters<'_>,
    notes: &mut Notes,
) -> Vec<L4Route> {
    let ns = vs.meta.namespace.as_str();
    let mut out = Vec::new();
    for route in &vs.spec.tls {
        let Some((destinations, total_weight)) = weighted(&route.route, ns, place.port, clusters) else { continue };
        for m in &route.matches {
            if !applies(m.port, &m.gateways, &m.source_labels, &m.source_namespace, ns, place, instance) {
                continue;
            }
            let sni_hosts: Vec<Box<str>> = m
                .sni_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .filter_map(|h| place.server_hosts.iter().find_map(|s| hosts::intersect(&h, s)))
                .map(Into::into)
                .collect();
            if sni_hosts.is_empty() {
                continue;
            }
            out.push(L4Route {
                origin: vs.id().into(),
                sni_hosts,
                destination_subnets: subnets(&m.destination_subnets, vs, notes),
                port: None,
                destinations: destinations.clone(),
                total_weight,
            });
        }
    }
    out
}

fn subnets(list: &[String], vs: &Item<VirtualService>, notes: &mut Notes) -> Vec<Subnet> {
    list.iter()
        .filter_map(|s| {
            let parsed = Subnet::parse(s);
            if parsed.is_none() {
                let m = format!("destinationSubnets entry {s:?} is not an address block");
                let target = Target::of(weir_model::Kind::VirtualService, vs);
                notes.push(Note::not_served(Some(target), weir_model::FieldPath::root().key("spec"), m));
            }
            parsed
        })
        .collect()
}

/// Weighted destinations as for HTTP: a single destination gets everything, weight-0
/// destinations of several get nothing. `None` when none is left.
fn weighted(
    route: &[RouteDestination],
    ns: &str,
    port: u16,
    clusters: &mut Clusters<'_>,
) -> Option<(Box<[WeightedCluster]>, u32)> {
    let several = route.len() > 1;
    let mut out = Vec::new();
    let mut cumulative = 0u32;
    for d in route {
        let Some(dest) = &d.destination else { continue };
        let weight = if several { d.weight.max(0) as u32 } else { 1 };
        if weight == 0 {
            continue;
        }
        cumulative += weight;
        let (cluster, name) = resolve(dest, ns, port, clusters);
        out.push(WeightedCluster { cluster, name, weight, cumulative, headers: HeaderOps::default(), authority: None });
    }
    (!out.is_empty()).then(|| (out.into_boxed_slice(), cumulative))
}

fn resolve(d: &Destination, ns: &str, port: u16, clusters: &mut Clusters<'_>) -> (ClusterRef, Box<str>) {
    let host = hosts::expand(&d.host, ns, clusters.domain());
    let dport = d.port.and_then(|p| u16::try_from(p.number).ok());
    let (r, name) = clusters.resolve(&host, dport, &d.subset, PortContext::Listener(port));
    (r, name.into())
}

/// The table's TLS mode for a server's mode; `None` for modes weir does not serve
/// (ISTIO_MUTUAL, AUTO_PASSTHROUGH need the mesh's own certificates).
pub(crate) fn mode(tls: &ServerTlsSettings) -> Option<TlsMode> {
    match tls.effective_mode() {
        ServerTlsMode::Passthrough => Some(TlsMode::Passthrough),
        ServerTlsMode::Simple => Some(TlsMode::Simple),
        ServerTlsMode::Mutual => Some(TlsMode::Mutual),
        ServerTlsMode::OptionalMutual => Some(TlsMode::OptionalMutual),
        ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual => None,
    }
}

/// Server TLS settings weir does not execute yet, named in one warning each (they are
/// not in the table: a setting in the table is a setting in force).
pub(crate) fn not_executed(tls: &ServerTlsSettings, server: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |what: &str| out.push(format!("{server}: tls.{what} is not executed by weir yet"));
    if !tls.ca_crl.is_empty() {
        say("caCrl (client certificates are not checked for revocation)");
    }
    if !tls.ca_cert_credential_name.is_empty() {
        say("caCertCredentialName (the client CA comes from the certificate's credential or caCertificates)");
    }
    if tls.insecure_skip_verify == Some(true) {
        say("insecureSkipVerify (client certificates are verified)");
    }
    if tls.credential_names.len() > 1 || tls.tls_certificates.len() > 1 {
        say("credentialNames/tlsCertificates beyond the first (one certificate is served)");
    }
    out
}

/// Terminating settings for a server; `alpn` is what the listener offers.
pub(crate) fn termination(tls: &ServerTlsSettings, alpn: &[&str]) -> Termination {
    let certificate = if !tls.credential_name.is_empty() {
        let name = tls.credential_name.strip_prefix("kubernetes://").unwrap_or(&tls.credential_name);
        Some(CertSource::Credential { name: name.into() })
    } else if let Some(name) = tls.credential_names.first() {
        let name = name.strip_prefix("kubernetes://").unwrap_or(name);
        Some(CertSource::Credential { name: name.into() })
    } else if !tls.server_certificate.is_empty() && !tls.private_key.is_empty() {
        Some(CertSource::Files {
            cert: tls.server_certificate.as_str().into(),
            key: tls.private_key.as_str().into(),
            ca: (!tls.ca_certificates.is_empty()).then(|| tls.ca_certificates.as_str().into()),
        })
    } else {
        tls.tls_certificates.first().map(|c| CertSource::Files {
            cert: c.server_certificate.as_str().into(),
            key: c.private_key.as_str().into(),
            ca: (!tls.ca_certificates.is_empty()).then(|| tls.ca_certificates.as_str().into()),
        })
    };
    let version = |v: Option<TlsProtocol>, default: TlsVersion| match v {
        None | Some(TlsProtocol::Auto) => default,
        Some(TlsProtocol::V1_3) => TlsVersion::V1_3,
        // rustls has nothing older than 1.2: an older minimum still means 1.2.
        Some(_) => TlsVersion::V1_2,
    };
    Termination {
        certificate,
        min_version: version(tls.min_protocol_version, TlsVersion::V1_2),
        max_version: version(tls.max_protocol_version, TlsVersion::V1_3),
        cipher_suites: tls.cipher_suites.iter().map(|s| s.as_str().into()).collect(),
        subject_alt_names: tls.subject_alt_names.iter().map(|s| s.as_str().into()).collect(),
        spki_pins: tls.verify_certificate_spki.iter().map(|s| s.as_str().into()).collect(),
        hash_pins: tls.verify_certificate_hash.iter().map(|s| s.as_str().into()).collect(),
        alpn: alpn.iter().map(|s| (*s).into()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_settings_not_executed_are_named() {
        let tls = ServerTlsSettings {
            ca_crl: "/crl.pem".into(),
            insecure_skip_verify: Some(true),
            credential_names: vec!["rsa".into(), "ecdsa".into()],
            ..ServerTlsSettings::default()
        };
        let notes = not_executed(&tls, "Gateway ns/gw");
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes.iter().all(|n| n.starts_with("Gateway ns/gw: tls.")));
        assert!(not_executed(&ServerTlsSettings::default(), "x").is_empty());
    }
}
