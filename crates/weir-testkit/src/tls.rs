//! TLS material and peers for tests: a CA that signs server and client certificates
//! (rcgen), written to a credentials directory the way `weir run --credentials` reads
//! it; a TLS client that reports what it negotiated; a TLS server that names itself (a
//! passthrough backend whose certificate the client verifies end to end); and a TCP
//! server that names itself and echoes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

impl Pem {
    /// The (first) certificate in DER, to compare with what a peer presented.
    pub fn cert_der(&self) -> Vec<u8> {
        CertificateDer::pem_slice_iter(self.cert.as_bytes()).next().expect("a certificate").expect("PEM").to_vec()
    }

    /// Writes the certificate and key to `dir/<stem>.crt` and `dir/<stem>.key` (for
    /// settings that take file paths); returns both paths.
    pub fn write_files(&self, dir: &Path, stem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        std::fs::create_dir_all(dir).expect("dir");
        let (cert, key) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
        write_atomic(&cert, &self.cert);
        write_atomic(&key, &self.key);
        (cert, key)
    }
}

/// A test certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn san(name: &str) -> SanType {
    if let Ok(ip) = name.parse() {
        return SanType::IpAddress(ip);
    }
    if name.contains("://") {
        return SanType::URI(name.try_into().expect("URI SAN"));
    }
    SanType::DnsName(name.try_into().expect("DNS SAN"))
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA cert");
        TestCa { cert: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A leaf certificate for `names` (DNS names, IPs or URIs), ECDSA P-256.
    pub fn leaf(&self, names: &[&str]) -> Pem {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.subject_alt_names = names.iter().map(|n| san(n)).collect();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Pem { cert: cert.pem(), key: key.serialize_pem() }
    }

    /// Writes the CA certificate to `path` (a `caCertificates` file).
    pub fn write_ca(&self, path: &Path) {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("dir");
        }
        write_atomic(path, &self.cert);
    }

    /// Roots that trust this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.cert.as_bytes()) {
            roots.add(c.expect("CA PEM")).expect("CA cert");
        }
        roots
    }

    /// Writes `leaf` as a credential `dir/name/{tls.crt,tls.key}` (and `ca.crt` with
    /// this CA when `with_ca`), each file replaced atomically.
    pub fn write_credential(&self, dir: &Path, name: &str, leaf: &Pem, with_ca: bool) {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("credential dir");
        write_atomic(&d.join("tls.crt"), &leaf.cert);
        write_atomic(&d.join("tls.key"), &leaf.key);
        if with_ca {
            write_atomic(&d.join("ca.crt"), &self.cert);
        }
    }
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// What a TLS client saw.
#[derive(Debug)]
pub struct TlsSession {
    /// The stream.
    pub stream: tokio_rustls::client::TlsStream<TcpStream>,
    /// ALPN the server chose.
    pub alpn: Option<Vec<u8>>,
    /// The server's leaf certificate (DER).
    pub peer_cert: Option<Vec<u8>>,
    /// The protocol version negotiated (`TLSv1_3`...).
    pub version: Option<String>,
    /// The cipher suite negotiated (IANA name).
    pub suite: Option<String>,
}

/// Options of a TLS client.
#[derive(Debug, Default, Clone)]
pub struct TlsClient {
    /// SNI to send (`None`: none, connecting by IP).
    pub sni: Option<String>,
    /// ALPN to offer.
    pub alpn: Vec<Vec<u8>>,
    /// A client certificate.
    pub client_cert: Option<Pem>,
    /// Offer TLS 1.2 only.
    pub max_tls12: bool,
}

impl TlsClient {
    /// A client sending `sni`.
    pub fn new(sni: &str) -> TlsClient {
        TlsClient { sni: Some(sni.to_string()), ..TlsClient::default() }
    }

    /// Connects to `addr` and handshakes, trusting `roots`.
    pub async fn connect(&self, addr: SocketAddr, roots: RootCertStore) -> std::io::Result<TlsSession> {
        let versions: &[&rustls::SupportedProtocolVersion] =
            if self.max_tls12 { &[&rustls::version::TLS12] } else { rustls::DEFAULT_VERSIONS };
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(std::io::Error::other)?
            .with_root_certificates(roots);
        let mut config = match &self.client_cert {
            None => b.with_no_client_auth(),
            Some(p) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(p.cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(std::io::Error::other)?;
                let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).map_err(std::io::Error::other)?;
                b.with_client_auth_cert(chain, key).map_err(std::io::Error::other)?
            }
        };
        config.alpn_protocols = self.alpn.clone();
        config.enable_sni = self.sni.is_some();
        let name = match &self.sni {
            Some(s) => ServerName::try_from(s.clone()).map_err(std::io::Error::other)?,
            None => ServerName::IpAddress(addr.ip().into()),
        };
        let tcp = TcpStream::connect(addr).await?;
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
        // TLS 1.3 sends the verdict on a client certificate after the handshake: a
        // rejected one shows up on the first read. Flush so the server processes ours.
        stream.flush().await?;
        let (_, conn) = stream.get_ref();
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let peer_cert = conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        let version = conn.protocol_version().map(|v| format!("{v:?}"));
        let suite = conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
        Ok(TlsSession { stream, alpn, peer_cert, version, suite })
    }
}

/// Sends a minimal HTTP/1.1 GET over `s` and returns the whole response text
/// (`Connection: close`).
pub async fn https_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    path: &str,
) -> std::io::Result<String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out).await {
        Ok(_) => {}
        // A peer that closes without close_notify still gave a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A TLS server that answers every HTTP/1.1 request with `200` and body `name`, and
/// closes: a backend behind TLS passthrough.
#[derive(Debug)]
pub struct TlsNamed {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsNamed {
    /// Starts it on 127.0.0.1:0 with `leaf`.
    pub async fn start(name: &str, leaf: &Pem) -> TlsNamed {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.cert.as_bytes()).collect::<Result<_, _>>().expect("leaf PEM");
        let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let name = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (acceptor, name) = (acceptor.clone(), name.clone());
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else { return };
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{name}", name.len());
                    let _ = s.write_all(resp.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        TlsNamed { addr, task }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsNamed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP server that writes `name\n` on each connection, then echoes what it reads
/// until the client half-closes, then closes.
#[derive(Debug)]
pub struct TcpNamed {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TcpNamed {
    /// Starts it on 127.0.0.1:0.
    pub async fn start(name: &str) -> TcpNamed {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let name = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { continue };
                let name = name.clone();
                tokio::spawn(async move {
                    if s.write_all(format!("{name}\n").as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        TcpNamed { addr, task }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TcpNamed {
    fn drop(&mut self) {
        self.task.abort();
    }
}
