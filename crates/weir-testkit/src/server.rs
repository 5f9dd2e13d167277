//! The accept loop shared by the test servers: one loopback port serving
//! HTTP/1.1 and HTTP/2 prior knowledge, stoppable deterministically.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::Request;
use hyper::Response;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::body::TestBody;

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Request<Incoming>) -> HandlerFuture + Send + Sync>;

/// A running server; stops when [`ServerTask::stop`] is awaited or on drop.
#[derive(Debug)]
pub(crate) struct ServerTask {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    shutdown: watch::Sender<bool>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl ServerTask {
    /// Binds `127.0.0.1:0`, builds the handler knowing the bound address, and
    /// starts accepting.
    pub(crate) async fn start(make_handler: impl FnOnce(SocketAddr) -> Handler) -> ServerTask {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind 127.0.0.1:0");
        ServerTask::serve(listener, make_handler)
    }

    /// Like [`ServerTask::start`] on a given address (a restarted server keeps its port).
    pub(crate) async fn start_at(addr: SocketAddr, make_handler: impl FnOnce(SocketAddr) -> Handler) -> ServerTask {
        let listener = TcpListener::bind(addr).await.expect("bind the address again");
        ServerTask::serve(listener, make_handler)
    }

    fn serve(listener: TcpListener, make_handler: impl FnOnce(SocketAddr) -> Handler) -> ServerTask {
        let addr = listener.local_addr().expect("local_addr");
        let handler = make_handler(addr);
        let connections = Arc::new(AtomicU64::new(0));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let join = tokio::spawn(accept_loop(listener, handler, Arc::clone(&connections), shutdown_rx));
        ServerTask { addr, connections, shutdown, join: Mutex::new(Some(join)) }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Closes the listener and every open connection, and returns once they
    /// are closed. Idempotent.
    pub(crate) async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let join = self.join.lock().await.take();
        if let Some(join) = join {
            let _ = join.await;
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        // The accept loop notices and closes everything on its own.
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    connections: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.fetch_add(1, Ordering::SeqCst);
        let handler = Arc::clone(&handler);
        conns.spawn(async move {
            let service = service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
    drop(listener);
    conns.shutdown().await;
}
