//! TLS origination: the rustls client configurations of one cluster with upstream TLS
//! (DestinationRule `tls` SIMPLE or MUTUAL), and the handshake a new upstream
//! connection makes with them.
//!
//! The configurations are built once per cluster state (one per ALPN a connection may
//! offer, sharing the verifier, the client certificate and the session cache), never
//! per connection, and rebuilt when a file they came from changes (rotation): new
//! connections use the new material, open ones keep theirs. A cluster whose material
//! cannot be loaded keeps the error instead: each of its connects fails with it (503
//! `UF`), and the error is logged when the configuration is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use weir_table::{Address, CaSource, CertSource, UpstreamTls};

use super::load::{self, CredentialFiles};
use super::server_verify::{NO_CA, UpstreamVerifier};
use super::{ConfigError, Stamp, provider, stamp};

/// Which protocol a connection will speak, hence the ALPN it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// An HTTP/1.1 connection (`http/1.1` when the cluster lists it).
    Http1,
    /// An HTTP/2 connection (`h2` when the cluster lists it).
    Http2,
    /// A TCP route's byte stream: no ALPN.
    None,
}

/// The configurations by ALPN.
struct Configs {
    http1: Arc<ClientConfig>,
    http2: Arc<ClientConfig>,
    bare: Arc<ClientConfig>,
}

/// What one build produced, and the files it read (or looked for) with their stamps.
struct Built {
    configs: Result<Configs, ConfigError>,
    files: Vec<(PathBuf, Option<Stamp>)>,
}

/// A cluster's TLS origination at run time.
pub(crate) struct Origin {
    spec: UpstreamTls,
    service: Box<str>,
    cluster: Box<str>,
    credentials: Option<PathBuf>,
    built: ArcSwap<Built>,
}

impl std::fmt::Debug for Origin {
    // The settings and whether they loaded; never the loaded key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.built.load();
        f.debug_struct("Origin")
            .field("cluster", &self.cluster)
            .field("spec", &self.spec)
            .field("error", &built.configs.as_ref().err())
            .finish_non_exhaustive()
    }
}

impl Origin {
    /// Loads the material `spec` names (credentials under `credentials`) and builds the
    /// configurations; errors are logged here, once.
    pub(crate) fn new(spec: &UpstreamTls, service: &str, cluster: &str, credentials: Option<&Path>) -> Origin {
        let o = Origin {
            spec: spec.clone(),
            service: service.into(),
            cluster: cluster.into(),
            credentials: credentials.map(Path::to_path_buf),
            built: ArcSwap::from_pointee(Built { configs: Err("not built".into()), files: Vec::new() }),
        };
        o.reload();
        o
    }

    /// The settings this was built from.
    pub(crate) fn spec(&self) -> &UpstreamTls {
        &self.spec
    }

    /// True when a file the configurations came from changed since they were built.
    pub(crate) fn changed(&self) -> bool {
        self.built.load().files.iter().any(|(p, s)| stamp(p) != *s)
    }

    /// Builds the configurations again from the files as they are now.
    pub(crate) fn reload(&self) {
        let mut seen = Vec::new();
        let configs = build(&self.spec, &self.service, self.credentials.as_deref(), &mut seen);
        match &configs {
            Err(e) => tracing::error!(
                cluster = %self.cluster,
                error = %e,
                "upstream TLS cannot be set up: connections to this cluster fail until this is fixed"
            ),
            Ok(_) if self.spec.ca.is_none() && !self.spec.insecure_skip_verify && load::system_roots().is_none() => {
                tracing::error!(
                    cluster = %self.cluster,
                    "upstream TLS has {NO_CA}; connections to this cluster fail"
                )
            }
            Ok(_) => {}
        }
        let files = seen
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect();
        self.built.store(Arc::new(Built { configs, files }));
    }

    /// The TLS handshake on a new connection to `address`, offering `alpn`'s protocol.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        address: &Address,
        alpn: Alpn,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let config = {
            let built = self.built.load();
            let configs = built.configs.as_ref().map_err(|e| std::io::Error::other(e.to_string()))?;
            match alpn {
                Alpn::Http1 => configs.http1.clone(),
                Alpn::Http2 => configs.http2.clone(),
                Alpn::None => configs.bare.clone(),
            }
        };
        let name = self.server_name(address)?;
        tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
    }

    /// The name given to rustls: the SNI to send (a DNS name), or the endpoint's IP when
    /// no SNI is sent (rustls sends none for an IP; the verifier then checks the
    /// service host).
    fn server_name(&self, address: &Address) -> std::io::Result<ServerName<'static>> {
        match (self.spec.sni_for(address), address) {
            (Some(name), _) => ServerName::try_from(name.to_string())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("SNI {name:?}: {e}"))),
            (None, Address::Socket(sa)) => Ok(ServerName::IpAddress(sa.ip().into())),
            (None, Address::Dns(host, _)) => Err(std::io::Error::other(format!("no SNI for {host:?}"))),
        }
    }
}

/// The configurations for `spec`; every path looked at goes to `seen`.
fn build(
    spec: &UpstreamTls,
    service: &str,
    credentials: Option<&Path>,
    seen: &mut Vec<PathBuf>,
) -> Result<Configs, ConfigError> {
    if let Some(sni) = &spec.sni {
        ServerName::try_from(&**sni).map_err(|e| ConfigError::from(format!("sni {sni:?} is not a host name: {e}")))?;
    }
    // No CA configured: the operating system's trust store, as Istio does.
    let roots = match &spec.ca {
        None => load::system_roots(),
        Some(CaSource::File { path }) => {
            seen.push(PathBuf::from(&**path));
            Some(Arc::new(load::roots(Path::new(&**path))?))
        }
        Some(CaSource::Credential { name }) => match credential(credentials, name, seen)?.ca {
            Some(p) => Some(Arc::new(load::roots(&p)?)),
            // A credential without a CA: the system trust store, as without one.
            None => load::system_roots(),
        },
    };
    let client = match &spec.client_certificate {
        None => None,
        Some(src) => Some(client_certificate(src, credentials, seen)?),
    };
    let verifier = UpstreamVerifier { roots, spec: spec.clone(), service: service.into(), provider: provider() };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::from(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let base = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| ConfigError::from(format!("the client certificate does not fit its key: {e}")))?,
    };
    let offering = |wanted: &str| {
        let mut c = base.clone();
        c.alpn_protocols = spec.alpn.iter().filter(|p| &***p == wanted).map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(c)
    };
    Ok(Configs { http1: offering("http/1.1"), http2: offering("h2"), bare: offering("") })
}

/// A credential's files; it needs the credentials directory.
fn credential(credentials: Option<&Path>, name: &str, seen: &mut Vec<PathBuf>) -> Result<CredentialFiles, ConfigError> {
    let Some(dir) = credentials else {
        return Err(format!(
            "credentialName {name:?} needs a credentials directory: `weir run --credentials DIR` reads DIR/{name}/"
        )
        .into());
    };
    load::credential_files(dir, name, seen)
}

/// The client certificate chain and key of MUTUAL.
fn client_certificate(
    src: &CertSource,
    credentials: Option<&Path>,
    seen: &mut Vec<PathBuf>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let (cert, key) = match src {
        CertSource::Files { cert, key, .. } => (PathBuf::from(&**cert), PathBuf::from(&**key)),
        CertSource::Credential { name } => {
            let files = credential(credentials, name, seen)?;
            match (files.cert, files.key) {
                (Some(c), Some(k)) => (c, k),
                _ => {
                    return Err(format!(
                        "credential {name:?}: {} holds no tls.crt and tls.key (or cert and key) for the client certificate",
                        files.dir.display()
                    )
                    .into());
                }
            }
        }
    };
    seen.push(cert.clone());
    seen.push(key.clone());
    Ok((load::certs(&cert)?, load::private_key(&key)?))
}
