//! `Gateway` (spec §4).

use serde::Deserialize;

use super::common::{Labels, Port};

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    /// Servers (listeners).
    pub servers: Vec<Server>,
    /// Labels of the gateway workloads this applies to.
    pub selector: Labels,
}

/// `Server`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Server {
    /// Port to listen on.
    pub port: Option<Port>,
    /// Listen address or unix socket.
    pub bind: String,
    /// `ns/host` selectors.
    pub hosts: Vec<String>,
    /// TLS settings.
    pub tls: Option<ServerTlsSettings>,
    /// Deprecated; accepted and ignored.
    pub default_endpoint: String,
    /// Optional server name.
    pub name: String,
}

/// `ServerTLSSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTlsSettings {
    /// 301 plain HTTP to HTTPS.
    pub https_redirect: bool,
    /// Mode (default PASSTHROUGH).
    pub mode: Option<ServerTlsMode>,
    /// Certificate path.
    pub server_certificate: String,
    /// Key path.
    pub private_key: String,
    /// Client CA path.
    pub ca_certificates: String,
    /// CRL path.
    pub ca_crl: String,
    /// Secret name.
    pub credential_name: String,
    /// One or two secret names.
    pub credential_names: Vec<String>,
    /// One or two certificate pairs.
    pub tls_certificates: Vec<TlsCertificate>,
    /// Client-CA secret.
    pub ca_cert_credential_name: String,
    /// Allowed client SANs.
    pub subject_alt_names: Vec<String>,
    /// SPKI pins.
    pub verify_certificate_spki: Vec<String>,
    /// Certificate hash pins.
    pub verify_certificate_hash: Vec<String>,
    /// Minimum TLS version.
    pub min_protocol_version: Option<TlsProtocol>,
    /// Maximum TLS version.
    pub max_protocol_version: Option<TlsProtocol>,
    /// OpenSSL cipher names.
    pub cipher_suites: Vec<String>,
    /// Accept client certificates that fail validation.
    pub insecure_skip_verify: Option<bool>,
}

impl ServerTlsSettings {
    /// The mode in effect: PASSTHROUGH when unset.
    pub fn effective_mode(&self) -> ServerTlsMode {
        self.mode.unwrap_or(ServerTlsMode::Passthrough)
    }
}

/// `ServerTLSSettings.TLSmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Route by SNI without terminating.
    Passthrough,
    /// Terminate.
    Simple,
    /// Terminate and require a client certificate.
    Mutual,
    /// SNI names the cluster.
    AutoPassthrough,
    /// mTLS with the Istio certificate.
    IstioMutual,
    /// Client certificate optional.
    OptionalMutual,
}

impl ServerTlsMode {
    /// The mode as Istio's YAML spells it (`ISTIO_MUTUAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTlsMode::Passthrough => "PASSTHROUGH",
            ServerTlsMode::Simple => "SIMPLE",
            ServerTlsMode::Mutual => "MUTUAL",
            ServerTlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
            ServerTlsMode::IstioMutual => "ISTIO_MUTUAL",
            ServerTlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
        }
    }
}

/// `ServerTLSSettings.TLSCertificate`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsCertificate {
    /// Certificate path.
    pub server_certificate: String,
    /// Key path.
    pub private_key: String,
    /// CA path.
    pub ca_certificates: String,
}

/// `ServerTLSSettings.TLSProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsProtocol {
    /// Automatic.
    #[serde(rename = "TLS_AUTO")]
    Auto,
    /// TLS 1.0.
    #[serde(rename = "TLSV1_0")]
    V1_0,
    /// TLS 1.1.
    #[serde(rename = "TLSV1_1")]
    V1_1,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    V1_3,
}
