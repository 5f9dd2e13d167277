//! The transport stage, first on every accepted connection: what the listener's table
//! entry says to do with the bytes before any HTTP. A plain HTTP listener goes straight
//! to the HTTP codecs; a plain TCP listener to its TCP routes. A TLS listener reads the
//! ClientHello (bounded in size and time), picks the server by SNI, then either
//! forwards the untouched stream by its TLS routes (PASSTHROUGH) or terminates with
//! the server's certificate and serves HTTP (ALPN `h2` or HTTP/1.1) or TCP routes on
//! the decrypted stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use weir_table::{ConnView, ListenerRole, Serve, TlsServer};

use crate::downstream::Downstream;
use crate::entry::{ConnCtx, Shared};
use crate::h1::server::H2Server;
use crate::prefixed::Prefixed;
use crate::server::Serving;
use crate::upstream::Snapshot;

/// Largest ClientHello read before giving up (a hello with many extensions is a few
/// KB; 16 KB covers post-quantum key shares).
const MAX_HELLO: usize = 64 * 1024;

/// Where TLS passed through to a host outside the registry goes (`PassthroughCluster`).
const PASSTHROUGH_TLS_PORT: u16 = 443;

/// How long a client may take to send its ClientHello and finish the handshake
/// (Envoy's listener filter timeout is 15 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// An accepted connection, before its transport is known.
pub(crate) struct Accepted {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve(
    conn: Accepted,
    serving: &Serving,
    shared: Arc<Shared>,
    drain: CancellationToken,
    h2: Arc<H2Server>,
) {
    let snapshot = shared.snapshot.load_full();
    let listener = snapshot.listener(&serving.name);
    let ctx = |secure| {
        Arc::new(ConnCtx {
            shared: shared.clone(),
            listener: serving.name.clone(),
            role: serving.role,
            port: serving.port,
            local: conn.local,
            peer: conn.peer,
            secure,
        })
    };
    match listener {
        Some(l) if l.expects_tls() || (l.sniffs_tls() && opens_with_tls(&conn.stream).await) => {
            let secure = ctx(true);
            Box::pin(tls(conn, &snapshot, l, secure, drain, h2)).await;
        }
        Some(l) if !l.tcp.is_empty() => {
            let view = ConnView { sni: None, local: conn.local.ip(), port: serving.port };
            match crate::tcp_proxy::choose(&l.tcp, &view, &snapshot) {
                // Boxed: inline, the TCP proxy's state made every HTTP connection's
                // future 2 KB instead of 0.7 KB.
                Ok(cluster) => {
                    Box::pin(crate::tcp_proxy::forward(conn.stream, &cluster, &shared.metrics, &serving.name, None))
                        .await
                }
                Err(r) => {
                    tracing::debug!(listener = %serving.name, ?r, "TCP connection refused");
                    crate::tcp_proxy::refused(&shared.metrics, "", r);
                }
            }
        }
        _ => {
            let plain = ctx(false);
            drop(snapshot);
            crate::h1::server::serve(Downstream::Plain(conn.stream), plain, drain, h2).await;
        }
    }
}

/// True when the first byte is a TLS handshake record (0x16); plaintext HTTP never
/// starts with it. Waits for the first byte (bounded by the handshake timeout).
async fn opens_with_tls(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await, Ok(Ok(1)) if first[0] == 0x16)
}

/// What the ClientHello told.
struct Hello {
    /// Everything read so far (the hello and whatever followed it).
    bytes: BytesMut,
    sni: Option<String>,
}

/// Reads until rustls has a whole ClientHello; `None` when the client sent something
/// else, too much, or closed.
async fn read_hello(stream: &mut TcpStream) -> Option<Hello> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut bytes = BytesMut::with_capacity(4096);
    loop {
        let before = bytes.len();
        if bytes.len() >= MAX_HELLO || stream.read_buf(&mut bytes).await.ok()? == 0 {
            return None;
        }
        let mut fresh = &bytes[before..];
        while !fresh.is_empty() {
            acceptor.read_tls(&mut fresh).ok()?;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_ascii_lowercase);
                return Some(Hello { bytes, sni });
            }
            Ok(None) => {}
            Err(_) => return None,
        }
    }
}

async fn tls(
    mut conn: Accepted,
    snapshot: &Arc<Snapshot>,
    listener: &weir_table::Listener,
    ctx: Arc<ConnCtx>,
    drain: CancellationToken,
    h2: Arc<H2Server>,
) {
    let Ok(Some(hello)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_hello(&mut conn.stream)).await else {
        tracing::debug!(listener = %listener.name, peer = %conn.peer, "no TLS ClientHello");
        return;
    };
    let Some(server) = listener.tls_server(hello.sni.as_deref()) else {
        // Envoy finds no filter chain: the connection closes.
        tracing::debug!(listener = %listener.name, sni = ?hello.sni, "no TLS server for this SNI");
        return;
    };
    let rest = hello.bytes.freeze();
    let view = ConnView { sni: hello.sni.as_deref(), local: conn.local.ip(), port: ctx.port };
    let Some(termination) = &server.termination else {
        // PASSTHROUGH: the ClientHello and all after it go to the chosen host untouched.
        if let Serve::Tcp(routes) = &server.serve {
            match crate::tcp_proxy::choose(routes, &view, snapshot) {
                Ok(cluster) => {
                    let down = Prefixed { rest, io: conn.stream };
                    // A passthrough destination is the name the client asked for.
                    let target = hello.sni.as_deref().map(|s| (s, PASSTHROUGH_TLS_PORT));
                    crate::tcp_proxy::forward(down, &cluster, &ctx.shared.metrics, &listener.name, target).await;
                }
                Err(r) => {
                    tracing::debug!(listener = %listener.name, sni = ?hello.sni, ?r, "TLS connection refused");
                    let blackhole = listener.role == ListenerRole::Mesh;
                    let service = if blackhole { weir_table::cluster::BLACKHOLE_CLUSTER } else { "" };
                    crate::tcp_proxy::refused(&ctx.shared.metrics, service, r);
                }
            }
        }
        return;
    };
    let Some(config) = tls_config(&ctx.shared, server, termination) else { return };
    let prefixed = Prefixed { rest, io: conn.stream };
    let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), prefixed);
    let handshake = async { start.await?.into_stream(config).await };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(listener = %listener.name, peer = %conn.peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    match &server.serve {
        Serve::Http => crate::h1::server::serve(Downstream::Tls(Box::new(stream)), ctx, drain, h2).await,
        Serve::Tcp(routes) => match crate::tcp_proxy::choose(routes, &view, snapshot) {
            Ok(cluster) => crate::tcp_proxy::forward(stream, &cluster, &ctx.shared.metrics, &listener.name, None).await,
            Err(r) => {
                tracing::debug!(listener = %listener.name, ?r, "TLS-terminated TCP connection refused");
                crate::tcp_proxy::refused(&ctx.shared.metrics, "", r);
            }
        },
    }
}

/// The server's rustls configuration: from the installed set, or built now when the
/// connection raced a reload.
fn tls_config(shared: &Shared, server: &TlsServer, t: &weir_table::Termination) -> Option<Arc<rustls::ServerConfig>> {
    let configs = shared.tls.load();
    match configs.get(t, server.mode) {
        Some(Ok(c)) => Some(c.clone()),
        Some(Err(_)) => None,
        None => {
            let built =
                crate::tls::TlsConfigs::for_servers(std::iter::once(("", server)), shared.credentials.as_deref());
            built.get(t, server.mode).and_then(|r| r.as_ref().ok().cloned())
        }
    }
}
