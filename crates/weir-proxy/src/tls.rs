//! Server TLS: the rustls configurations of a table's TLS servers, built from the
//! certificates their [`CertSource`]s name, and rebuilt when those files change.
//! Client TLS (origination towards upstreams, DestinationRule `tls`) is in `origin`,
//! one per cluster, on the same PEM loading (`load`).
//!
//! Configurations are keyed by the server's [`Termination`] (certificate source plus
//! versions, suites, client checks, ALPN), not by listener and index, so a connection
//! that meets a table mid-swap still finds the right one; servers with identical
//! settings share one. A server whose certificate cannot be loaded has an error in
//! place of a configuration: its handshakes fail, and every other server keeps serving.

mod client_verify;
mod load;
mod origin;
mod server_verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use weir_table::{RouteTable, Termination, TlsMode, TlsServer, TlsVersion};

pub(crate) use load::Loaded;
pub(crate) use origin::{Alpn, Origin};

/// Why a server has no configuration.
pub(crate) type ConfigError = Arc<str>;

/// The configurations of one table's TLS servers, and the files they came from.
#[derive(Debug, Default)]
pub(crate) struct TlsConfigs {
    configs: HashMap<(Termination, TlsMode), Result<Arc<ServerConfig>, ConfigError>>,
    /// Every file read (or looked for), with its modification stamp then.
    files: Vec<(PathBuf, Option<Stamp>)>,
}

/// What tells that a file changed: modification time and length.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The crypto provider of every TLS configuration weir builds: aws-lc-rs, picked by
/// measurement (`bench/tls.sh`, one core beside nginx with the same certificates:
/// a full RSA 2048 handshake cost 0.81x nginx's CPU with aws-lc-rs against 1.23x with
/// ring, ECDSA P-256 0.60x with either, keep-alive HTTPS 0.93x against 1.02x). Always
/// passed explicitly, never the process default: ring is in the graph too (test
/// clients, digests), and with two providers rustls' defaults would panic.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

impl TlsConfigs {
    /// Builds the configurations of every terminating server in `table`; certificate
    /// credentials are read under `credentials`.
    pub(crate) fn build(table: &RouteTable, credentials: Option<&Path>) -> TlsConfigs {
        let servers = table.listeners.iter().flat_map(|l| l.tls.iter().map(move |s| (&*l.name, s)));
        Self::for_servers(servers, credentials)
    }

    /// Builds the configurations of `servers` (listener name, server).
    pub(crate) fn for_servers<'a>(
        servers: impl Iterator<Item = (&'a str, &'a TlsServer)>,
        credentials: Option<&Path>,
    ) -> TlsConfigs {
        let mut out = TlsConfigs::default();
        let mut loaded: HashMap<weir_table::CertSource, Result<Arc<Loaded>, ConfigError>> = HashMap::new();
        for (listener, server) in servers {
            let Some(t) = &server.termination else { continue };
            let key = (t.clone(), server.mode);
            if out.configs.contains_key(&key) {
                continue;
            }
            let built = match &t.certificate {
                None => Err(ConfigError::from("the server names no certificate (credentialName or serverCertificate)")),
                Some(src) => {
                    let material = loaded
                        .entry(src.clone())
                        .or_insert_with(|| {
                            let (r, files) = load::load(src, credentials);
                            out.files.extend(files.into_iter().map(|p| {
                                let s = stamp(&p);
                                (p, s)
                            }));
                            r.map(Arc::new)
                        })
                        .clone();
                    material.and_then(|m| server_config(t, server.mode, &m))
                }
            };
            if let Err(e) = &built {
                tracing::error!(
                    server = %server.origin,
                    listener,
                    error = %e,
                    "TLS server cannot serve: its handshakes fail until this is fixed; other servers keep serving"
                );
            }
            out.configs.insert(key, built);
        }
        out
    }

    /// The configuration for a server's settings; `None` when the table this was built
    /// from did not have them (a connection racing a reload).
    pub(crate) fn get(&self, t: &Termination, mode: TlsMode) -> Option<&Result<Arc<ServerConfig>, ConfigError>> {
        self.configs.get(&(t.clone(), mode))
    }

    /// Where this build failed for a server that `previous` could serve, keeps the
    /// previous configuration (the files are watched still: the next change is tried).
    pub(crate) fn keep_working(&mut self, previous: &TlsConfigs) {
        for (key, now) in self.configs.iter_mut() {
            if let (Err(e), Some(Ok(old))) = (&*now, previous.configs.get(key)) {
                tracing::warn!(error = %e, "the changed certificate files do not load; the previous certificate keeps serving");
                *now = Ok(old.clone());
            }
        }
    }

    /// True when a file these configurations were built from changed since.
    pub(crate) fn changed(&self) -> bool {
        self.files.iter().any(|(p, s)| stamp(p) != *s)
    }
}

/// The rustls configuration for one terminating server.
fn server_config(t: &Termination, mode: TlsMode, m: &Loaded) -> Result<Arc<ServerConfig>, ConfigError> {
    let base = provider();
    let suites = cipher_suites(&t.cipher_suites, &base)?;
    let provider = Arc::new(CryptoProvider { cipher_suites: suites, ..(*base).clone() });
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(TlsVersion::V1_2, &rustls::version::TLS12), (TlsVersion::V1_3, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| *v >= t.min_version && *v <= t.max_version)
            .map(|(_, p)| p)
            .collect();
    if versions.is_empty() {
        return Err("minProtocolVersion is above maxProtocolVersion".into());
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| ConfigError::from(format!("TLS versions and cipher suites do not fit: {e}")))?;
    let builder = match mode {
        TlsMode::Mutual | TlsMode::OptionalMutual => {
            let Some(roots) = &m.client_ca else {
                return Err(format!("{mode:?} needs a CA for client certificates (ca.crt or caCertificates)").into());
            };
            let verifier = client_verify::verifier(roots.clone(), mode == TlsMode::OptionalMutual, t, provider)?;
            builder.with_client_cert_verifier(verifier)
        }
        TlsMode::Simple | TlsMode::Passthrough => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(m.chain.clone(), m.key.clone_key())
        .map_err(|e| ConfigError::from(format!("the certificate does not fit its key: {e}")))?;
    config.alpn_protocols = t.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The provider's suites allowed by `names` (OpenSSL or IANA names). TLS 1.3 suites
/// are always kept: as in Envoy, `cipherSuites` governs TLS 1.2 and below.
fn cipher_suites(
    names: &[Box<str>],
    provider: &CryptoProvider,
) -> Result<Vec<rustls::SupportedCipherSuite>, ConfigError> {
    if names.is_empty() {
        return Ok(provider.cipher_suites.clone());
    }
    let wanted: Vec<String> = names.iter().map(|n| iana_name(n)).collect();
    let kept: Vec<_> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.tls13().is_some() || wanted.iter().any(|w| *w == format!("{:?}", s.suite())))
        .copied()
        .collect();
    Ok(kept)
}

/// `ECDHE-ECDSA-AES128-GCM-SHA256` → `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`; IANA
/// names pass through.
fn iana_name(name: &str) -> String {
    let n = name.trim().to_ascii_uppercase();
    if n.starts_with("TLS_") {
        return n;
    }
    let known = [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    ];
    known.iter().find(|(o, _)| *o == n).map_or(n, |(_, i)| (*i).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_names_map_to_rustls_suites() {
        let p = provider();
        let only = cipher_suites(&["ECDHE-ECDSA-AES128-GCM-SHA256".into()], &p).unwrap();
        let tls12: Vec<String> =
            only.iter().filter(|s| s.tls13().is_none()).map(|s| format!("{:?}", s.suite())).collect();
        assert_eq!(tls12, ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
        assert!(only.iter().any(|s| s.tls13().is_some()), "TLS 1.3 suites stay");
        assert_eq!(cipher_suites(&[], &p).unwrap().len(), p.cipher_suites.len());
    }
}
