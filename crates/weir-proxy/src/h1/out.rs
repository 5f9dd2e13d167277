//! The write side of a connection, both directions: bytes queued as framing before a
//! data chunk, the chunk itself (not copied), and framing after it, written with one
//! vectored write when the socket takes them; and the framing of body frames (a
//! length, or chunks and trailers).

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Frame;
use tokio::io::AsyncWrite;

use super::chunked;
use super::head::Framing;

/// What waits to be written.
#[derive(Default)]
pub(crate) struct Out {
    /// Bytes before `data`: a head, a chunk size line.
    pub(crate) pre: BytesMut,
    pre_at: usize,
    pub(crate) data: Bytes,
    /// Bytes after `data` (a chunk's CRLF, perhaps the last chunk).
    pub(crate) post: &'static [u8],
    /// Some byte was written since the last [`Out::reset_wrote`].
    pub(crate) wrote: bool,
}

impl Out {
    pub(crate) fn is_empty(&self) -> bool {
        self.pre_at >= self.pre.len() && self.data.is_empty() && self.post.is_empty()
    }

    pub(crate) fn reset_wrote(&mut self) {
        self.wrote = false;
    }

    /// Clears what is queued (the buffer's memory is kept).
    pub(crate) fn clear(&mut self) {
        self.pre.clear();
        self.pre_at = 0;
        self.data = Bytes::new();
        self.post = b"";
    }

    /// Writes everything queued, through to the socket.
    pub(crate) fn poll_flush<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        while !self.is_empty() {
            let slices = [IoSlice::new(&self.pre[self.pre_at..]), IoSlice::new(&self.data), IoSlice::new(self.post)];
            let mut n = match ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices)) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => n,
                Err(e) => return Poll::Ready(Err(e)),
            };
            self.wrote = true;
            let p = (self.pre.len() - self.pre_at).min(n);
            self.pre_at += p;
            n -= p;
            let d = self.data.len().min(n);
            self.data.advance(d);
            n -= d;
            self.post = &self.post[n.min(self.post.len())..];
        }
        self.pre.clear();
        self.pre_at = 0;
        // A TLS stream may have taken the bytes into its session without writing them
        // all out (the socket was full): they must reach the peer. (A TCP socket's
        // flush does nothing.)
        Pin::new(&mut *io).poll_flush(cx)
    }
}

/// A body being written in the framing its head announced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framer {
    pub(crate) framing: Framing,
    /// Data bytes written so far.
    pub(crate) sent: u64,
    /// The body's end (last chunk, trailers) is queued.
    pub(crate) ended: bool,
}

/// Why a body could not be written as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// More data than the announced length.
    TooLong,
    /// The body ended short of the announced length.
    TooShort,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::TooLong => "body longer than its length",
            FrameError::TooShort => "body shorter than its length",
        })
    }
}

impl std::error::Error for FrameError {}

impl Framer {
    pub(crate) fn new(framing: Framing) -> Self {
        Framer { framing, sent: 0, ended: framing == Framing::Empty }
    }

    /// Queues `frame`; `end` when the body says it has no more frames.
    pub(crate) fn frame(&mut self, frame: Frame<Bytes>, end: bool, out: &mut Out) -> Result<(), FrameError> {
        let chunked = self.framing == Framing::Chunked;
        match frame.into_data() {
            Ok(d) => {
                if let Framing::Length(n) = self.framing
                    && self.sent + d.len() as u64 > n
                {
                    return Err(FrameError::TooLong);
                }
                self.sent += d.len() as u64;
                if chunked && !d.is_empty() {
                    chunked::size_line(d.len(), &mut out.pre);
                    out.post = if end { b"\r\n0\r\n\r\n" } else { b"\r\n" };
                } else if chunked && end {
                    out.post = chunked::LAST_CHUNK;
                }
                if self.framing != Framing::Empty {
                    out.data = d;
                }
                if end {
                    self.check_length()?;
                    self.ended = true;
                }
                Ok(())
            }
            Err(frame) => {
                // Trailers go only where the framing can carry them.
                if let (true, Ok(t)) = (chunked, frame.into_trailers()) {
                    chunked::last_chunk_with(&t, &mut out.pre);
                    self.ended = true;
                }
                Ok(())
            }
        }
    }

    /// Queues the end of the body.
    pub(crate) fn end(&mut self, out: &mut Out) -> Result<(), FrameError> {
        if self.framing == Framing::Chunked && !self.ended {
            out.pre.extend_from_slice(chunked::LAST_CHUNK);
        }
        self.ended = true;
        self.check_length()
    }

    fn check_length(&self) -> Result<(), FrameError> {
        match self.framing {
            Framing::Length(n) if self.sent != n => Err(FrameError::TooShort),
            _ => Ok(()),
        }
    }
}
