//! Reading a body in its framing, from a connection's read buffer and then its socket:
//! a length, chunks (with trailers), or everything until the peer closes. Data comes
//! out as slices of the read buffer, not copies.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::Frame;
use tokio::io::AsyncRead;

use super::chunked::{self, Decoded};
use super::head::Framing;
use crate::body::BoxError;

/// Bytes read from a socket at a time (at least).
const READ_CHUNK: usize = 16 * 1024;

/// Reads what the socket has into `buf` (growing it when little room is left).
pub(crate) fn poll_read<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// How a body is being read.
#[derive(Debug)]
pub(crate) enum BodyState {
    Length(u64),
    Chunked(chunked::Decoder),
    Close,
    Done,
}

impl BodyState {
    pub(crate) fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(chunked::Decoder::new()),
            Framing::Close => BodyState::Close,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyState::Done)
    }

    pub(crate) fn remaining(&self) -> Option<u64> {
        match self {
            BodyState::Length(n) => Some(*n),
            BodyState::Done => Some(0),
            _ => None,
        }
    }
}

/// The next frame of a body framed as `state`, from `rbuf` and then `io`. A body that
/// ends early (the peer closed, or sent a malformed chunk) is an error; after any end
/// `state` is done.
pub(crate) fn poll_framed<R: AsyncRead + Unpin>(
    state: &mut BodyState,
    rbuf: &mut BytesMut,
    io: &mut R,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    loop {
        match state {
            BodyState::Done => return Poll::Ready(None),
            BodyState::Length(left) => {
                if !rbuf.is_empty() {
                    let n = (rbuf.len() as u64).min(*left) as usize;
                    let data = rbuf.split_to(n).freeze();
                    *left -= n as u64;
                    if *left == 0 {
                        *state = BodyState::Done;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
            }
            BodyState::Chunked(d) => match d.decode(rbuf) {
                Ok(Decoded::Data(b)) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                Ok(Decoded::Trailers(t)) => {
                    *state = BodyState::Done;
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
                Ok(Decoded::End) => {
                    *state = BodyState::Done;
                    return Poll::Ready(None);
                }
                Ok(Decoded::More) => {}
                Err(e) => {
                    *state = BodyState::Done;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            },
            BodyState::Close => {
                if !rbuf.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(rbuf.split().freeze()))));
                }
            }
        }
        match ready!(poll_read(io, rbuf, cx)) {
            Ok(0) => {
                let close = matches!(state, BodyState::Close);
                *state = BodyState::Done;
                return Poll::Ready(if close {
                    None
                } else {
                    Some(Err("the peer closed the connection before the body ended".into()))
                });
            }
            Ok(_) => {}
            Err(e) => {
                *state = BodyState::Done;
                return Poll::Ready(Some(Err(Box::new(e))));
            }
        }
    }
}
