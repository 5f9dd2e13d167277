//! A client connection as the HTTP codecs see it: the TCP socket itself, or the
//! decrypted side of a TLS session on it. One enum rather than a generic parameter, so
//! that the HTTP/1.1 server is compiled once and plaintext connections pay nothing.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::prefixed::Prefixed;

/// A client's byte stream.
#[derive(Debug)]
pub(crate) enum Downstream {
    /// Plaintext.
    Plain(TcpStream),
    /// Terminated TLS (boxed: the session state is large, plaintext stays small).
    Tls(Box<tokio_rustls::server::TlsStream<Prefixed>>),
}

impl Downstream {
    /// Ready when a read may make progress. A plain socket waits for the kernel (so an
    /// idle connection holds no buffer); TLS may hold decrypted bytes already, so it
    /// is always ready and the read itself waits.
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Downstream::Plain(s) => s.poll_read_ready(cx),
            Downstream::Tls(_) => Poll::Ready(Ok(())),
        }
    }

    /// The negotiated ALPN protocol, if any.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Downstream::Plain(_) => None,
            Downstream::Tls(t) => t.get_ref().1.alpn_protocol(),
        }
    }
}

impl AsyncRead for Downstream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Downstream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Downstream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Downstream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Downstream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Downstream::Plain(s) => s.is_write_vectored(),
            Downstream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_flush(cx),
            Downstream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Downstream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
