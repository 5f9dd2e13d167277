//! Client certificates for MUTUAL and OPTIONAL_MUTUAL servers: the chain is verified
//! by webpki against the server's CA, then the leaf must carry one of the accepted
//! `subjectAltNames` and match one of the `verifyCertificateSpki`/`verifyCertificateHash`
//! pins, as Envoy checks them (exact names, any SAN type; either pin kind may match).

use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use weir_table::Termination;

use super::ConfigError;

/// The verifier for a server; `optional`: a client without a certificate is let in.
pub(crate) fn verifier(
    roots: Arc<RootCertStore>,
    optional: bool,
    t: &Termination,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let mut b = WebPkiClientVerifier::builder_with_provider(roots, provider);
    if optional {
        b = b.allow_unauthenticated();
    }
    let inner = b.build().map_err(|e| ConfigError::from(format!("client certificate verifier: {e}")))?;
    if t.subject_alt_names.is_empty() && t.spki_pins.is_empty() && t.hash_pins.is_empty() {
        return Ok(inner);
    }
    let hashes = t
        .hash_pins
        .iter()
        .map(|h| {
            let hex: String = h.chars().filter(|c| *c != ':').collect();
            decode_hex(&hex).ok_or_else(|| ConfigError::from(format!("verifyCertificateHash {h:?} is not hex")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spki = t
        .spki_pins
        .iter()
        .map(|p| {
            base64::engine::general_purpose::STANDARD
                .decode(p.as_bytes())
                .map_err(|_| ConfigError::from(format!("verifyCertificateSpki {p:?} is not base64")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Pinned { inner, sans: t.subject_alt_names.clone(), spki, hashes }))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// webpki's verdict, then names and pins.
#[derive(Debug)]
struct Pinned {
    inner: Arc<dyn ClientCertVerifier>,
    sans: Vec<Box<str>>,
    spki: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

impl Pinned {
    /// True when the leaf passes the name and pin checks.
    fn accepts(&self, leaf: &CertificateDer<'_>) -> bool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else { return false };
        if !self.hashes.is_empty() || !self.spki.is_empty() {
            let hash = ring::digest::digest(&ring::digest::SHA256, leaf);
            let spki = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
            let pinned = self.hashes.iter().any(|h| h.as_slice() == hash.as_ref())
                || self.spki.iter().any(|p| p.as_slice() == spki.as_ref());
            if !pinned {
                return false;
            }
        }
        if self.sans.is_empty() {
            return true;
        }
        let Ok(Some(ext)) = cert.subject_alternative_name() else { return false };
        ext.value.general_names.iter().any(|n| {
            let text = match n {
                x509_parser::extensions::GeneralName::DNSName(s) | x509_parser::extensions::GeneralName::URI(s) => {
                    (*s).to_string()
                }
                x509_parser::extensions::GeneralName::RFC822Name(s) => (*s).to_string(),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string(),
                    16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string(),
                    _ => return false,
                },
                _ => return false,
            };
            self.sans.iter().any(|s| **s == text)
        })
    }
}

impl ClientCertVerifier for Pinned {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if self.accepts(end_entity) {
            Ok(verified)
        } else {
            Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
