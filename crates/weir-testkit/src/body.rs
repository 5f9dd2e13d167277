//! Body types shared by the servers and clients.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

use crate::BoxError;

/// The body type every testkit server answers with and every testkit client
/// sends.
pub type TestBody = BoxBody<Bytes, BoxError>;

/// A whole body from bytes.
pub fn full_body(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty_body() -> TestBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

/// A streaming body fed by a [`BodySender`]. Capacity is one frame, so the
/// sender feels backpressure and every frame is handed to hyper separately.
pub fn channel_body() -> (BodySender, TestBody) {
    let (tx, body) = ChannelBody::new(1);
    (tx, body.boxed())
}

type Item = Result<Frame<Bytes>, BoxError>;

/// A [`Body`] that yields the frames sent through its [`BodySender`]; it ends
/// when every sender is dropped.
#[derive(Debug)]
pub struct ChannelBody {
    rx: mpsc::Receiver<Item>,
}

impl ChannelBody {
    /// A channel body holding at most `capacity` (at least 1) frames.
    pub fn new(capacity: usize) -> (BodySender, ChannelBody) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (BodySender { tx }, ChannelBody { rx })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

/// Feeds a [`ChannelBody`]. Dropping it ends the body cleanly.
#[derive(Debug, Clone)]
pub struct BodySender {
    tx: mpsc::Sender<Item>,
}

/// The receiving side of a body is gone (the peer or hyper dropped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyClosed;

impl std::fmt::Display for BodyClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body receiver dropped")
    }
}

impl std::error::Error for BodyClosed {}

impl BodySender {
    /// Sends one data frame; waits while the previous frame is unconsumed.
    pub async fn send_data(&self, data: impl Into<Bytes>) -> Result<(), BodyClosed> {
        self.tx.send(Ok(Frame::data(data.into()))).await.map_err(|_| BodyClosed)
    }

    /// Sends a trailers frame (the body should end after it: drop the sender).
    pub async fn send_trailers(&self, trailers: HeaderMap) -> Result<(), BodyClosed> {
        self.tx.send(Ok(Frame::trailers(trailers))).await.map_err(|_| BodyClosed)
    }

    /// Fails the body with an error: hyper resets the HTTP/2 stream or closes
    /// the HTTP/1.1 connection mid-message.
    pub async fn abort(self, reason: &str) {
        let _ = self.tx.send(Err(reason.to_owned().into())).await;
    }

    /// Whether the receiving side is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
