//! Listeners and connections: bind the sockets the table asks for, accept, and serve
//! HTTP/1.1 and HTTP/2 (h2c prior knowledge) on each connection with hyper. Every
//! connection watches a drain token: when its listener goes away or the proxy stops,
//! it finishes in-flight requests and closes gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_table::ListenerRole;

use crate::entry::{ConnCtx, Shared, handle};
use crate::workers::Workers;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Binds a listening socket (SO_REUSEADDR, a deep backlog).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// What an accept loop serves.
#[derive(Debug, Clone)]
pub(crate) struct Serving {
    pub(crate) name: Arc<str>,
    pub(crate) role: ListenerRole,
    pub(crate) port: u16,
}

/// Accepts until `stop` fires and hands each connection to a worker, where it is
/// served to the end; each connection drains when `drain` fires.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    serving: Serving,
    shared: Arc<Shared>,
    workers: Arc<Workers>,
    stop: CancellationToken,
    drain: CancellationToken,
    tracker: TaskTracker,
) {
    let local = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Request heads over 64 KiB are refused (431), like Envoy's 60 KiB default.
    // No request-head timeout, as Envoy's default (a timer per request otherwise).
    builder.http1().timer(TokioTimer::new()).keep_alive(true).max_buf_size(MAX_HEAD).header_read_timeout(None);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(Some(1024)).max_header_list_size(MAX_HEAD as u32);
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                tracing::warn!(listener = %serving.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Move the socket to the worker's event loop.
        let Ok(std_stream) = stream.into_std() else { continue };
        let ctx = Arc::new(ConnCtx {
            shared: shared.clone(),
            listener: serving.name.clone(),
            role: serving.role,
            port: serving.port,
            local,
            peer,
        });
        let builder = builder.clone();
        let drain = drain.clone();
        tracker.spawn_on(
            async move {
                let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else { return };
                serve(stream, ctx, &builder, drain).await;
            },
            workers.next(),
        );
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    ctx: Arc<ConnCtx>,
    builder: &auto::Builder<TokioExecutor>,
    drain: CancellationToken,
) {
    let service = service_fn(move |req| handle(req, ctx.clone()));
    // With upgrades: a WebSocket handshake hands the socket to the tunnel.
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = drain.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
