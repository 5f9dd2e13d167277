//! TLS that weir originates towards a cluster's endpoints: a DestinationRule's
//! `trafficPolicy.tls` (or its port-level or subset-level form, merged as spec §3.2
//! says) in mode SIMPLE or MUTUAL. ISTIO_MUTUAL needs the mesh's workload certificates
//! and is not compiled into the table.
//!
//! As for gateway servers ([`crate::transport`]), certificates are named here, never
//! held: the proxy loads them, so `/config_dump` shows paths and credential names and
//! no key material.

use std::net::IpAddr;

use serde::Serialize;

use crate::cluster::Address;
use crate::transport::CertSource;

/// SIMPLE (verify the server) or MUTUAL (and present a client certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpstreamTlsMode {
    /// TLS; the server's certificate is verified.
    Simple,
    /// TLS with a client certificate.
    Mutual,
}

/// Where the CA bundle that verifies the upstream's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaSource {
    /// `caCertificates`: a PEM bundle.
    File {
        /// Its path.
        path: Box<str>,
    },
    /// `credentialName`: `<credentials>/<name>/ca.crt` (or `cacert`), else
    /// `<credentials>/<name>-cacert/ca.crt` (or `cacert`), as Istio reads the secret.
    Credential {
        /// The credential's name (without a `kubernetes://` prefix).
        name: Box<str>,
    },
}

/// A cluster's upstream TLS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UpstreamTls {
    /// SIMPLE or MUTUAL.
    pub mode: UpstreamTlsMode,
    /// `sni` as written; `None` when unset (see [`UpstreamTls::sni_for`]).
    pub sni: Option<Box<str>>,
    /// `subjectAltNames`: the server certificate must carry one of them (DNS, IP or
    /// URI SAN); empty = it must be valid for [`UpstreamTls::verify_name_for`].
    pub subject_alt_names: Vec<Box<str>>,
    /// The CA that verifies the server; `None` when neither `caCertificates` nor a
    /// `credentialName` names one (the proxy then fails verification unless
    /// `insecure_skip_verify`).
    pub ca: Option<CaSource>,
    /// MUTUAL only: the client certificate and key (`clientCertificate` and
    /// `privateKey`, as [`CertSource::Files`] with no `ca`, or a `credentialName`'s
    /// `tls.crt`/`tls.key`, else `cert`/`key`).
    pub client_certificate: Option<CertSource>,
    /// `insecureSkipVerify`: neither the CA nor the names are checked.
    pub insecure_skip_verify: bool,
    /// ALPN an HTTP connection offers: each connection offers the entry of the protocol
    /// it speaks (`h2` for HTTP/2, `http/1.1` for HTTP/1.1), so a cluster that follows
    /// the client's protocol lists both. Empty for ports that do not carry HTTP; TCP
    /// routes offer no ALPN.
    pub alpn: Vec<Box<str>>,
}

impl UpstreamTls {
    /// The SNI sent on a connection to `address`: the `sni` set, else the endpoint's
    /// host name when it is resolved by DNS (Istio sets SNI to the host for DNS
    /// ServiceEntries), else none.
    pub fn sni_for<'a>(&'a self, address: &'a Address) -> Option<&'a str> {
        if let Some(s) = &self.sni {
            return Some(s);
        }
        match address {
            Address::Dns(host, _) => Some(host),
            Address::Socket(_) => None,
        }
    }

    /// The name the server certificate must be valid for when no `subjectAltNames` are
    /// set: the SNI sent, else the cluster's service host (the name requests to the
    /// cluster carry as their authority, which Envoy's automatic SAN validation under
    /// Istio checks), else, for a wildcard service, the endpoint's IP.
    pub fn verify_name_for<'a>(&'a self, address: &'a Address, service: &'a str) -> VerifyName<'a> {
        if let Some(s) = self.sni_for(address) {
            return match s.parse::<IpAddr>() {
                Ok(ip) => VerifyName::Ip(ip),
                Err(_) => VerifyName::Dns(s),
            };
        }
        match address {
            Address::Socket(sa) if service.starts_with('*') || service.is_empty() => VerifyName::Ip(sa.ip()),
            _ => VerifyName::Dns(service),
        }
    }
}

/// A name a certificate is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyName<'a> {
    /// A DNS name.
    Dns(&'a str),
    /// An IP address.
    Ip(IpAddr),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(sni: Option<&str>) -> UpstreamTls {
        UpstreamTls {
            mode: UpstreamTlsMode::Simple,
            sni: sni.map(Into::into),
            subject_alt_names: Vec::new(),
            ca: None,
            client_certificate: None,
            insecure_skip_verify: false,
            alpn: Vec::new(),
        }
    }

    #[test]
    fn sni_is_explicit_else_the_dns_name_else_none() {
        let ip = Address::Socket(([10, 0, 0, 1], 443).into());
        let dns = Address::Dns("api.example.com".into(), 443);
        assert_eq!(tls(Some("x.example.com")).sni_for(&ip), Some("x.example.com"));
        assert_eq!(tls(Some("x.example.com")).sni_for(&dns), Some("x.example.com"));
        assert_eq!(tls(None).sni_for(&dns), Some("api.example.com"));
        assert_eq!(tls(None).sni_for(&ip), None);
    }

    #[test]
    fn names_verified_follow_the_sni_then_the_service() {
        let ip = Address::Socket(([10, 0, 0, 1], 443).into());
        let dns = Address::Dns("api.example.com".into(), 443);
        assert_eq!(tls(None).verify_name_for(&dns, "svc.example.com"), VerifyName::Dns("api.example.com"));
        assert_eq!(tls(None).verify_name_for(&ip, "svc.example.com"), VerifyName::Dns("svc.example.com"));
        assert_eq!(tls(None).verify_name_for(&ip, "*.example.com"), VerifyName::Ip([10, 0, 0, 1].into()));
        assert_eq!(tls(Some("10.9.9.9")).verify_name_for(&dns, "s"), VerifyName::Ip([10, 9, 9, 9].into()));
    }
}
