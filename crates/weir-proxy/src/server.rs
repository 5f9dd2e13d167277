//! Listeners and connections: bind the sockets the table asks for (one per worker),
//! accept on each worker, and serve HTTP/1.1 (weir's own codec) and HTTP/2 (h2c prior
//! knowledge, hyper) on each connection. Every connection watches a drain token: when
//! its listener goes away or the proxy stops, it finishes in-flight requests and
//! closes gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_table::ListenerRole;

use crate::entry::Shared;

/// Largest request head accepted.
const MAX_HEAD: usize = crate::h1::head::MAX_HEAD;

/// Binds one listening socket (SO_REUSEADDR, a deep backlog) on the caller's runtime.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Binds one listening socket per worker on `addr`, each with SO_REUSEPORT when there
/// is more than one: the kernel spreads new connections over the workers' own accept
/// queues (as nginx's `reuseport` and Envoy's default on Linux), so no thread accepts
/// for the others and no connection is handed between threads. Port 0 is resolved by
/// the first socket; the rest bind the port it got. Another process can join the group
/// only if it runs as the same user and also sets SO_REUSEPORT.
pub(crate) fn bind_per_worker(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let shared = workers > 1;
    let mut out: Vec<std::net::TcpListener> = Vec::with_capacity(workers.max(1));
    let mut at = addr;
    for _ in 0..workers.max(1) {
        let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if shared {
            socket.set_reuse_port(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&at.into())?;
        socket.listen(4096)?;
        let listener = std::net::TcpListener::from(socket);
        if out.is_empty() {
            at = listener.local_addr()?;
        }
        out.push(listener);
    }
    Ok(out)
}

/// What an accept loop serves.
#[derive(Debug, Clone)]
pub(crate) struct Serving {
    pub(crate) name: Arc<str>,
    pub(crate) role: ListenerRole,
    pub(crate) port: u16,
}

/// One worker's accept loop (run on that worker): accepts from its own socket until
/// `stop` fires and serves each connection to the end on the same event loop; each
/// connection drains when `drain` fires.
pub(crate) async fn accept_loop(
    listener: std::net::TcpListener,
    serving: Serving,
    shared: Arc<Shared>,
    stop: CancellationToken,
    drain: CancellationToken,
    tracker: TaskTracker,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listener = %serving.name, error = %e, "cannot register the listening socket");
            return;
        }
    };
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
        let conn = crate::transport::Accepted { stream, peer, local };
        let (h2, drain, shared, serving) = (h2.clone(), drain.clone(), shared.clone(), serving.clone());
        tracker.spawn(async move { crate::transport::serve(conn, &serving, shared, drain, h2).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn workers_share_one_port_and_the_kernel_spreads_connections_over_them() {
        let listeners = bind_per_worker(SocketAddr::from(([127, 0, 0, 1], 0)), 3).unwrap();
        let addr = listeners[0].local_addr().unwrap();
        assert!(listeners.iter().all(|l| l.local_addr().unwrap() == addr));
        let clients: Vec<_> = (0..60).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        // Each connection waits in the accept queue of the socket the kernel chose;
        // collect them all (bounded wait: the last ACKs may still be in flight).
        let mut per_socket = vec![0usize; listeners.len()];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while per_socket.iter().sum::<usize>() < clients.len() && std::time::Instant::now() < deadline {
            for (l, n) in listeners.iter().zip(per_socket.iter_mut()) {
                while l.accept().is_ok() {
                    *n += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(per_socket.iter().sum::<usize>(), clients.len(), "{per_socket:?}");
        assert!(per_socket.iter().all(|&n| n > 0), "every worker gets connections: {per_socket:?}");
    }

    #[test]
    fn a_port_held_by_another_socket_is_still_refused() {
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = bind_per_worker(other.local_addr().unwrap(), 2).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        let one = bind_per_worker(other.local_addr().unwrap(), 1).unwrap_err();
        assert_eq!(one.kind(), ErrorKind::AddrInUse);
    }
}
