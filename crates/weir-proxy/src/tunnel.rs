//! WebSocket tunnels: once both sides have switched protocols, bytes are copied both
//! ways until either side closes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::pool::H1Conn;

/// Copies bytes between the client and the upstream after a `101`; the upstream
/// connection stays counted against its pool's limits until the tunnel ends.
pub(crate) async fn run(down: hyper::upgrade::OnUpgrade, up: Box<H1Conn>) {
    let (stream, rest, _slot) = up.into_upgraded();
    let Ok(down) = down.await else { return };
    let mut down = hyper_util::rt::TokioIo::new(down);
    let mut up = Prefixed { rest, io: stream };
    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
}

/// A socket whose first bytes were already read (they came with the `101`).
struct Prefixed {
    rest: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.rest.is_empty() {
            let n = self.rest.len().min(buf.remaining());
            buf.put_slice(&self.rest[..n]);
            self.rest.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
