//! A cluster's `trafficPolicy.tls` (already port- and subset-resolved by
//! [`crate::policy::effective`]) as the table's [`UpstreamTls`]: SIMPLE and MUTUAL are
//! executed; ISTIO_MUTUAL is not (it needs the mesh's workload certificates) and stays
//! out of the table with a warning, as does a `caCrl` (revocation is not checked).

use weir_model::types::{ClientTlsMode, ClientTlsSettings};
use weir_table::{CaSource, CertSource, UpstreamProtocol, UpstreamTls, UpstreamTlsMode};

/// Port protocols whose traffic is not HTTP: their connections offer no ALPN.
const NOT_HTTP: [&str; 5] = ["TCP", "TLS", "MONGO", "MYSQL", "REDIS"];

/// The table's TLS for a cluster whose merged policy has `tls`; `None` for DISABLE,
/// ISTIO_MUTUAL and no block. `service_sans` are the ServiceEntry's `subjectAltNames`,
/// which Istio uses when the DestinationRule lists none.
pub(crate) fn compile(
    tls: Option<&ClientTlsSettings>,
    service_sans: &[String],
    protocol: UpstreamProtocol,
    port_protocol: &str,
) -> Option<UpstreamTls> {
    let tls = tls?;
    let mode = match tls.mode? {
        ClientTlsMode::Simple => UpstreamTlsMode::Simple,
        ClientTlsMode::Mutual => UpstreamTlsMode::Mutual,
        ClientTlsMode::Disable | ClientTlsMode::IstioMutual => return None,
    };
    let credential = credential_name(tls);
    let ca = match credential {
        Some(name) => Some(CaSource::Credential { name: name.into() }),
        None => (!tls.ca_certificates.is_empty()).then(|| CaSource::File { path: tls.ca_certificates.as_str().into() }),
    };
    let client_certificate = match (mode, credential) {
        (UpstreamTlsMode::Simple, _) => None,
        (UpstreamTlsMode::Mutual, Some(name)) => Some(CertSource::Credential { name: name.into() }),
        (UpstreamTlsMode::Mutual, None) => Some(CertSource::Files {
            cert: tls.client_certificate.as_str().into(),
            key: tls.private_key.as_str().into(),
            ca: None,
        }),
    };
    Some(UpstreamTls {
        mode,
        sni: (!tls.sni.is_empty()).then(|| tls.sni.as_str().into()),
        subject_alt_names: if tls.subject_alt_names.is_empty() { service_sans } else { &tls.subject_alt_names }
            .iter()
            .map(|s| s.as_str().into())
            .collect(),
        ca,
        client_certificate,
        insecure_skip_verify: tls.insecure_skip_verify == Some(true),
        alpn: alpn(protocol, port_protocol),
    })
}

/// `credentialName` without a `kubernetes://` prefix; `None` when unset.
fn credential_name(tls: &ClientTlsSettings) -> Option<&str> {
    let name = tls.credential_name.strip_prefix("kubernetes://").unwrap_or(&tls.credential_name);
    (!name.is_empty()).then_some(name)
}

/// ALPN by the protocol a connection speaks: `h2` for HTTP/2 (as Istio advertises it
/// for HTTP/2 clusters), `http/1.1` for HTTP/1.1; both when the cluster follows the
/// client's protocol (each connection offers its own).
fn alpn(protocol: UpstreamProtocol, port_protocol: &str) -> Vec<Box<str>> {
    if NOT_HTTP.contains(&port_protocol) {
        return Vec::new();
    }
    let names: &[&str] = match protocol {
        UpstreamProtocol::Http1 => &["http/1.1"],
        UpstreamProtocol::Http2 => &["h2"],
        UpstreamProtocol::ClientProtocol => &["h2", "http/1.1"],
    };
    names.iter().map(|n| (*n).into()).collect()
}

/// Warnings for TLS settings the table leaves out.
pub(crate) fn not_executed(tls: Option<&ClientTlsSettings>, host: &str) -> Vec<String> {
    let Some(tls) = tls else { return Vec::new() };
    let mut out = Vec::new();
    match tls.mode {
        Some(ClientTlsMode::IstioMutual) => out.push(format!(
            "trafficPolicy.tls mode ISTIO_MUTUAL of host {host:?} is not executed by weir yet: upstream connections are plaintext"
        )),
        Some(ClientTlsMode::Simple | ClientTlsMode::Mutual) if !tls.ca_crl.is_empty() => out.push(format!(
            "trafficPolicy.tls.caCrl of host {host:?} is not executed by weir yet: upstream certificates are not checked for revocation"
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: ClientTlsMode) -> ClientTlsSettings {
        ClientTlsSettings { mode: Some(mode), ..ClientTlsSettings::default() }
    }

    #[test]
    fn simple_with_a_credential_takes_only_its_ca() {
        let mut s = settings(ClientTlsMode::Simple);
        s.credential_name = "kubernetes://api-ca".into();
        let t = compile(Some(&s), &[], UpstreamProtocol::Http1, "HTTP").unwrap();
        assert_eq!(t.ca, Some(CaSource::Credential { name: "api-ca".into() }));
        assert_eq!(t.client_certificate, None);
        assert_eq!(t.alpn, [Box::from("http/1.1")]);
    }

    #[test]
    fn mutual_from_files_and_alpn_by_protocol() {
        let mut s = settings(ClientTlsMode::Mutual);
        s.client_certificate = "/c.pem".into();
        s.private_key = "/k.pem".into();
        s.ca_certificates = "/ca.pem".into();
        let t = compile(Some(&s), &[], UpstreamProtocol::Http2, "GRPC").unwrap();
        assert_eq!(t.ca, Some(CaSource::File { path: "/ca.pem".into() }));
        assert_eq!(
            t.client_certificate,
            Some(CertSource::Files { cert: "/c.pem".into(), key: "/k.pem".into(), ca: None })
        );
        assert_eq!(t.alpn, [Box::from("h2")]);
        let both = compile(Some(&s), &[], UpstreamProtocol::ClientProtocol, "HTTP").unwrap();
        assert_eq!(both.alpn, [Box::from("h2"), Box::from("http/1.1")]);
        assert!(compile(Some(&s), &[], UpstreamProtocol::Http1, "TCP").unwrap().alpn.is_empty());
        // The ServiceEntry's SANs stand in for the rule's, never over them.
        let se = ["spiffe://se/api".to_string()];
        assert_eq!(
            compile(Some(&s), &se, UpstreamProtocol::Http1, "HTTP").unwrap().subject_alt_names,
            [Box::from("spiffe://se/api")]
        );
        s.subject_alt_names = vec!["dr.example.com".into()];
        assert_eq!(
            compile(Some(&s), &se, UpstreamProtocol::Http1, "HTTP").unwrap().subject_alt_names,
            [Box::from("dr.example.com")]
        );
    }

    #[test]
    fn disable_and_istio_mutual_compile_to_nothing() {
        assert!(compile(Some(&settings(ClientTlsMode::Disable)), &[], UpstreamProtocol::Http1, "HTTP").is_none());
        assert!(compile(Some(&settings(ClientTlsMode::IstioMutual)), &[], UpstreamProtocol::Http1, "HTTP").is_none());
        assert!(compile(Some(&ClientTlsSettings::default()), &[], UpstreamProtocol::Http1, "HTTP").is_none());
        assert_eq!(not_executed(Some(&settings(ClientTlsMode::IstioMutual)), "h").len(), 1);
        assert!(not_executed(Some(&settings(ClientTlsMode::Simple)), "h").is_empty());
    }
}
