//! A client connection as the HTTP codecs see it: the TCP socket itself, or the
//! decrypted side of a TLS session on it (a [`MaybeTls`]).

use std::task::{Context, Poll};

use crate::maybe_tls::MaybeTls;
use crate::prefixed::Prefixed;

/// A client's byte stream: plaintext, or TLS terminated here.
pub(crate) type Downstream = MaybeTls<tokio_rustls::server::TlsStream<Prefixed>>;

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
