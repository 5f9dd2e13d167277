//! Listeners and connections: bind the sockets the table asks for, accept, and serve
//! HTTP/1.1 (weir's own codec) and HTTP/2 (h2c prior knowledge, hyper) on each
//! connection. Every
//! connection watches a drain token: when its listener goes away or the proxy stops,
//! it finishes in-flight requests and closes gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_table::ListenerRole;

use crate::entry::{ConnCtx, Shared};
use crate::workers::Workers;

/// Largest request head accepted.
const MAX_HEAD: usize = crate::h1::head::MAX_HEAD;

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
    // HTTP/1.1 is weir's own (`h1::server`, heads over 64 KiB are refused with 431,
    // like Envoy's 60 KiB default; no request-head timeout, as Envoy's default);
    // connections that open with the HTTP/2 preface go to hyper's HTTP/2 server.
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new()).max_concurrent_streams(Some(1024)).max_header_list_size(MAX_HEAD as u32);
    let h2 = Arc::new(h2);
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
        let h2 = h2.clone();
        let drain = drain.clone();
        tracker.spawn_on(
            async move {
                let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else { return };
                crate::h1::server::serve(stream, ctx, drain, h2).await;
            },
            workers.next(),
        );
    }
}
