//! An upstream connection as the HTTP clients and the TCP proxy see it: the TCP socket
//! itself, or a TLS session weir originated on it (DestinationRule `tls`): a
//! [`MaybeTls`], as [`crate::downstream::Downstream`] is for clients.
//!
//! [`open`] makes one: TCP connect, then the TLS handshake when the cluster
//! originates TLS, both within the cluster's connect timeout (Envoy counts a TLS
//! upstream as connected once its handshake is done). A failed handshake is a failed
//! connect: 503 `UF`, `upstream_cx_connect_fail`, a local-origin failure for outlier
//! detection.

use std::pin::Pin;
use std::task::Context;
use std::time::Instant;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use weir_table::{Address, ConnectionLimits};

use crate::maybe_tls::MaybeTls;
use crate::tls::{Alpn, Origin};

/// An upstream byte stream: plaintext, or TLS weir originated.
pub(crate) type UpstreamIo = MaybeTls<tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens a connection to `address`: TCP, then TLS with `tls` when given. The error
/// says whether the connect timeout fired.
pub(crate) async fn open(
    address: &Address,
    limits: &ConnectionLimits,
    tls: Option<(&Origin, Alpn)>,
) -> Result<UpstreamIo, (std::io::Error, bool)> {
    let start = Instant::now();
    let tcp = crate::pool::connect(address, limits.connect_timeout, limits.tcp_keepalive.as_ref()).await?;
    let Some((origin, alpn)) = tls else { return Ok(UpstreamIo::Plain(tcp)) };
    let left = limits.connect_timeout.saturating_sub(start.elapsed());
    match tokio::time::timeout(left, origin.handshake(tcp, address, alpn)).await {
        Ok(Ok(s)) => Ok(UpstreamIo::Tls(Box::new(s))),
        Ok(Err(e)) => Err((std::io::Error::new(e.kind(), format!("TLS handshake: {e}")), false)),
        Err(_) => Err((std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timeout"), true)),
    }
}

impl UpstreamIo {
    /// Checks an idle connection without blocking: false when the peer closed it, sent
    /// bytes nobody asked for, or it failed. A plain socket costs no system call unless
    /// it became readable while idle. A TLS session is read through without waiting:
    /// rustls looks at the TCP socket only when it is readable (tokio knows without a
    /// system call), and what an idle session may legitimately receive (TLS 1.3 session
    /// tickets) is consumed there, while a close_notify, a FIN or stray data shows.
    pub(crate) fn probe_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self {
            UpstreamIo::Plain(s) => {
                if s.poll_read_ready(&mut cx).is_pending() {
                    return true;
                }
                let mut probe = [0u8; 1];
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
            UpstreamIo::Tls(t) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                Pin::new(&mut **t).poll_read(&mut cx, &mut buf).is_pending()
            }
        }
    }

    /// The ALPN protocol the upstream chose, if any.
    #[cfg(test)]
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            UpstreamIo::Plain(_) => None,
            UpstreamIo::Tls(t) => t.get_ref().1.alpn_protocol(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::AsyncWriteExt;
    use weir_table::{CaSource, UpstreamTls, UpstreamTlsMode};
    use weir_testkit::{TEST_TIMEOUT, TestCa, wait_for};

    use super::*;
    use std::net::SocketAddr;

    /// A TLS server offering `h2` and `http/1.1` that closes each session (close_notify,
    /// FIN) when told to.
    async fn closing_server(ca: &TestCa) -> (SocketAddr, tokio::sync::mpsc::Sender<()>) {
        let leaf = ca.leaf(&["api.example.test"]);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.cert.as_bytes()).collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (close, mut closes) = tokio::sync::mpsc::channel::<()>(8);
        tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                tokio::select! {
                    Ok((tcp, _)) = listener.accept() => {
                        if let Ok(s) = acceptor.accept(tcp).await {
                            open.push(s);
                        }
                    }
                    Some(()) = closes.recv() => {
                        for mut s in open.drain(..) {
                            let _ = s.shutdown().await;
                        }
                    }
                }
            }
        });
        (addr, close)
    }

    #[tokio::test]
    async fn connections_offer_their_protocols_alpn_and_an_idle_probe_sees_the_close() {
        let ca = TestCa::new("ca");
        let dir = std::env::temp_dir().join(format!("weir-upstream-io-{}", std::process::id()));
        ca.write_ca(&dir.join("ca.pem"));
        let spec = UpstreamTls {
            mode: UpstreamTlsMode::Simple,
            sni: None,
            subject_alt_names: Vec::new(),
            ca: Some(CaSource::File { path: dir.join("ca.pem").display().to_string().into() }),
            client_certificate: None,
            insecure_skip_verify: false,
            alpn: vec!["h2".into(), "http/1.1".into()],
        };
        let origin = Origin::new(&spec, "api.example.test", "test", None);
        let (addr, close) = closing_server(&ca).await;
        let address = Address::Socket(addr);
        let limits = ConnectionLimits { connect_timeout: Duration::from_secs(10), ..ConnectionLimits::default() };

        let mut h2 = open(&address, &limits, Some((&origin, Alpn::Http2))).await.unwrap();
        assert_eq!(h2.alpn(), Some(&b"h2"[..]));
        let h1 = open(&address, &limits, Some((&origin, Alpn::Http1))).await.unwrap();
        assert_eq!(h1.alpn(), Some(&b"http/1.1"[..]));
        let bare = open(&address, &limits, Some((&origin, Alpn::None))).await.unwrap();
        assert_eq!(bare.alpn(), None);
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = open(&Address::Socket(other.local_addr().unwrap()), &limits, None).await.unwrap();
        assert!(matches!(plain, UpstreamIo::Plain(_)), "no TLS asked for, none made");

        // Idle and open: the probe says so (session tickets, if any, are consumed).
        assert!(h2.probe_idle());
        close.send(()).await.unwrap();
        wait_for(|| !h2.probe_idle(), TEST_TIMEOUT).await;
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_fails_the_connect() {
        let ca = TestCa::new("ca");
        let dir = std::env::temp_dir().join(format!("weir-upstream-io-name-{}", std::process::id()));
        ca.write_ca(&dir.join("ca.pem"));
        let spec = UpstreamTls {
            mode: UpstreamTlsMode::Simple,
            sni: None,
            subject_alt_names: Vec::new(),
            ca: Some(CaSource::File { path: dir.join("ca.pem").display().to_string().into() }),
            client_certificate: None,
            insecure_skip_verify: false,
            alpn: Vec::new(),
        };
        // The server's certificate is for api.example.test; the service is another.
        let origin = Origin::new(&spec, "other.example.test", "test", None);
        let (addr, _close) = closing_server(&ca).await;
        let limits = ConnectionLimits::default();
        let (e, timeout) = open(&Address::Socket(addr), &limits, Some((&origin, Alpn::Http1))).await.unwrap_err();
        assert!(!timeout);
        assert!(e.to_string().contains("TLS handshake") && e.to_string().contains("not valid for name"), "{e}");
    }
}
