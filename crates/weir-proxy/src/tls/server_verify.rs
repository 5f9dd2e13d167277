//! Verifying an upstream's certificate when weir originates TLS (DestinationRule
//! `tls` SIMPLE or MUTUAL), as Envoy under Istio does: the chain must lead to the
//! configured CA; then the leaf must carry one of `subjectAltNames` (any SAN type, a
//! wildcard DNS SAN covering a listed name), or, when none are listed, be valid for
//! the name the connection is for (the SNI sent, else the service host; see
//! [`weir_table::UpstreamTls::verify_name_for`]). `insecureSkipVerify` skips both
//! checks; the handshake's signatures are still verified.
//!
//! Without `caCertificates`, the operating system's CA bundle is the trust store (as
//! Istio falls back to it: `SSL_CERT_FILE`, else the distribution's bundle path); on a
//! machine without one, a cluster with no CA (and no `insecureSkipVerify`) fails every
//! verification with an error that says so.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use weir_table::{Address, UpstreamTls, VerifyName};

/// The verifier of one cluster's upstream certificates.
#[derive(Debug)]
pub(crate) struct UpstreamVerifier {
    /// The CA; `None` when none is configured.
    pub(crate) roots: Option<Arc<RootCertStore>>,
    pub(crate) spec: UpstreamTls,
    /// The cluster's service host (the name checked for IP endpoints without SNI).
    pub(crate) service: Box<str>,
    pub(crate) provider: Arc<CryptoProvider>,
}

/// Why a cluster without a CA fails its handshakes.
pub(crate) const NO_CA: &str = "no CA to verify the upstream certificate: set caCertificates (or a credentialName \
    with ca.crt or cacert), or insecureSkipVerify: true (this machine has no system CA bundle; SSL_CERT_FILE names one)";

impl UpstreamVerifier {
    /// The name to check the leaf against, for a connection made to `server_name`.
    fn expected_name(&self, server_name: &ServerName<'_>) -> Result<ServerName<'static>, Error> {
        let name = match server_name {
            // An IP connection: the SNI was an IP, or there was none (then the
            // service host is the name, as for a request's authority).
            ServerName::IpAddress(ip) => {
                let addr = Address::Socket(std::net::SocketAddr::new((*ip).into(), 0));
                match self.spec.verify_name_for(&addr, &self.service) {
                    VerifyName::Ip(ip) => return Ok(ServerName::IpAddress(ip.into())),
                    VerifyName::Dns(d) => d.to_string(),
                }
            }
            other => return Ok(other.to_owned()),
        };
        ServerName::try_from(name).map_err(|e| Error::General(format!("service host is not a DNS name: {e}")))
    }

    /// True when the leaf carries one of `subjectAltNames`.
    fn carries_listed_san(&self, leaf: &CertificateDer<'_>, cert: &ParsedCertificate<'_>) -> bool {
        let mut uris: Option<Vec<String>> = None;
        self.spec.subject_alt_names.iter().any(|san| match ServerName::try_from(&**san) {
            // DNS and IP names as webpki matches them (wildcard certificates included).
            Ok(name) => verify_server_name(cert, &name).is_ok(),
            // URI SANs (`spiffe://...`), exactly.
            Err(_) => uris.get_or_insert_with(|| uri_sans(leaf)).iter().any(|u| u == &**san),
        })
    }
}

/// The URI SANs of a certificate.
fn uri_sans(leaf: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else { return Vec::new() };
    let Ok(Some(ext)) = cert.subject_alternative_name() else { return Vec::new() };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Some((*u).to_string()),
            _ => None,
        })
        .collect()
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.spec.insecure_skip_verify {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(roots) = &self.roots else {
            return Err(Error::General(NO_CA.into()));
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        let algs = self.provider.signature_verification_algorithms.all;
        verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, algs)?;
        if self.spec.subject_alt_names.is_empty() {
            verify_server_name(&cert, &self.expected_name(server_name)?)?;
        } else if !self.carries_listed_san(end_entity, &cert) {
            return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
