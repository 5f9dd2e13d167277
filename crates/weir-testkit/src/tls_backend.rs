//! [`TlsBackend`]: an HTTPS upstream for tests of TLS origination. It serves HTTP/1.1
//! with keep-alive and, when ALPN picks `h2` (or the client opens with the HTTP/2
//! preface), HTTP/2; and it records what each TLS session carried (SNI, ALPN, the
//! client certificate), so a test can check what the proxy sent. With a client CA it
//! requires client certificates signed by it, as an upstream wanting MUTUAL does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::header::HOST;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;

use crate::backend::protocol_name;
use crate::body::{TestBody, full_body};
use crate::tls::Pem;

/// What one TLS session carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSeen {
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// The ALPN protocol agreed.
    pub alpn: Option<String>,
    /// The client's leaf certificate (DER), if it sent one.
    pub client_cert: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Seen {
    sessions: Mutex<Vec<TlsSeen>>,
    failed: AtomicU64,
    hits: AtomicU64,
}

/// Configures a [`TlsBackend`].
#[derive(Debug)]
pub struct TlsBackendBuilder {
    name: String,
    leaf: Pem,
    client_ca: Option<RootCertStore>,
    alpn: Vec<Vec<u8>>,
}

impl TlsBackendBuilder {
    /// Requires a client certificate signed by a CA in `roots`.
    pub fn client_ca(mut self, roots: RootCertStore) -> Self {
        self.client_ca = Some(roots);
        self
    }

    /// The ALPN protocols accepted, in preference order (default `h2`, `http/1.1`).
    pub fn alpn(mut self, alpn: &[&str]) -> Self {
        self.alpn = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> TlsBackend {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.leaf.cert.as_bytes()).collect::<Result<_, _>>().expect("leaf PEM");
        let key = PrivateKeyDer::from_pem_slice(self.leaf.key.as_bytes()).expect("key PEM");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions");
        let builder = match self.client_ca {
            None => builder.with_no_client_auth(),
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().expect("verifier"),
            ),
        };
        let mut config = builder.with_single_cert(chain, key).expect("server config");
        config.alpn_protocols = self.alpn;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let task = tokio::spawn(accept_loop(listener, acceptor, self.name, seen.clone()));
        TlsBackend { addr, seen, task }
    }
}

/// An HTTPS echo server on `127.0.0.1:<ephemeral>`. Every response carries
/// `x-backend-name` and a JSON body: `{"service", "protocol" ("HTTP/1.1" | "HTTP/2"),
/// "authority", "path", "sni", "alpn", "client_cert" (true when one was sent)}`.
/// Stops when dropped.
#[derive(Debug)]
pub struct TlsBackend {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsBackend {
    /// A backend named `name` serving certificate `leaf`.
    pub fn builder(name: &str, leaf: &Pem) -> TlsBackendBuilder {
        TlsBackendBuilder {
            name: name.to_string(),
            leaf: leaf.clone(),
            client_ca: None,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    /// Starts one with the defaults (no client certificates asked for).
    pub async fn start(name: &str, leaf: &Pem) -> TlsBackend {
        Self::builder(name, leaf).start().await
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Completed handshakes, in order.
    pub fn sessions(&self) -> Vec<TlsSeen> {
        self.seen.sessions.lock().expect("sessions lock").clone()
    }

    /// Handshakes that failed (the client refused the certificate, or sent none or a
    /// bad one when one is required).
    pub fn failed_handshakes(&self) -> u64 {
        self.seen.failed.load(Ordering::SeqCst)
    }

    /// Requests answered.
    pub fn hits(&self) -> u64 {
        self.seen.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, name: String, seen: Arc<Seen>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let (acceptor, name, seen) = (acceptor.clone(), name.clone(), seen.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(_) => {
                    seen.failed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            };
            let conn = tls.get_ref().1;
            let session = TlsSeen {
                sni: conn.server_name().map(str::to_string),
                alpn: conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
                client_cert: conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()),
            };
            seen.sessions.lock().expect("sessions lock").push(session.clone());
            let service = service_fn(move |req| {
                seen.hits.fetch_add(1, Ordering::SeqCst);
                let resp = describe(&name, &session, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

fn describe(name: &str, session: &TlsSeen, req: &Request<Incoming>) -> Response<TestBody> {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| req.headers().get(HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()));
    let doc = json!({
        "service": name,
        "protocol": protocol_name(req.version()),
        "authority": authority,
        "path": req.uri().path_and_query().map_or("/", |p| p.as_str()),
        "sni": session.sni,
        "alpn": session.alpn,
        "client_cert": session.client_cert.is_some(),
    });
    let mut resp = Response::new(full_body(serde_json::to_vec(&doc).expect("serialize JSON")));
    let h = resp.headers_mut();
    h.insert("content-type", http::HeaderValue::from_static("application/json"));
    h.insert("x-backend-name", http::HeaderValue::from_str(name).expect("backend name is a header value"));
    resp
}
