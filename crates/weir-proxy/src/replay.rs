//! A request body that can be sent more than once. The body streams upstream as the
//! client sends it, and a bounded copy of what went by is kept, so a retry sends the
//! same bytes again: first the copy, then whatever the client is still sending. Past the
//! bound (Envoy's default 1 MiB connection buffer limit) the copy is dropped and the
//! request can no longer be retried, as in Envoy; the try in flight keeps streaming.
//!
//! Each try reads through its own [`ReplayBody`]; only the newest may read on. The
//! client's stream stays in the shared state and is polled by whichever try is
//! current, so a try that was abandoned (timed out, answered with a retriable status)
//! never has to hand it back: an HTTP/2 connection may hold an abandoned try's body
//! for as long as it likes, and reading it only says it was superseded.
//!
//! The copy costs no byte copying: frames are reference-counted [`Bytes`].

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};

use crate::body::{BoxError, ProxyBody};

/// Envoy's default per-connection buffer limit, which also bounds retry buffering.
pub(crate) const BUFFER_LIMIT: usize = 1024 * 1024;

struct State {
    /// The client's body.
    source: ProxyBody,
    /// Data frames read so far (empty once overflowed or committed).
    frames: Vec<Bytes>,
    buffered: usize,
    limit: usize,
    /// More than `limit` went by: no replay.
    overflowed: bool,
    /// No further try will start: stop keeping a copy.
    committed: bool,
    trailers: Option<HeaderMap>,
    /// The client's body ended.
    ended: bool,
    /// The try that may read.
    current: u64,
    size_hint: SizeHint,
}

/// The shared body of one request; hands out one [`ReplayBody`] per try.
#[derive(Clone)]
pub(crate) struct Replay(Arc<Mutex<State>>);

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").finish_non_exhaustive()
    }
}

impl Replay {
    /// Wraps the client's body, keeping up to `limit` bytes for replays.
    pub(crate) fn new(source: ProxyBody, limit: usize) -> Replay {
        let size_hint = source.size_hint();
        Replay(Arc::new(Mutex::new(State {
            source,
            frames: Vec::new(),
            buffered: 0,
            limit,
            overflowed: false,
            committed: false,
            trailers: None,
            ended: false,
            current: 0,
            size_hint,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body for the next try; earlier tries stop reading. `None` when the body
    /// cannot be sent again (it outgrew the buffer).
    pub(crate) fn next_try(&self) -> Option<ReplayBody> {
        let mut st = self.lock();
        if st.overflowed || st.committed {
            return None;
        }
        st.current += 1;
        Some(ReplayBody { shared: self.clone(), generation: st.current, frame: 0, trailers_sent: false, live: false })
    }

    /// True while another try could still send the whole body.
    pub(crate) fn replayable(&self) -> bool {
        let st = self.lock();
        !st.overflowed && !st.committed
    }

    /// No more tries: nothing more is copied, and the copy is released once the current
    /// try has sent it; the try streams on.
    pub(crate) fn commit(&self) {
        self.lock().committed = true;
    }
}

/// One try's view of the body.
pub(crate) struct ReplayBody {
    shared: Replay,
    generation: u64,
    /// Next buffered frame to send.
    frame: usize,
    trailers_sent: bool,
    /// Past the copy: reading the client's stream itself.
    live: bool,
}

impl std::fmt::Debug for ReplayBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayBody").field("try", &self.generation).finish()
    }
}

/// A try that is no longer the newest tried to read on.
#[derive(Debug)]
struct Superseded;

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body taken by a later try")
    }
}

impl std::error::Error for Superseded {}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let shared = this.shared.clone();
        let mut st = shared.lock();
        if st.current != this.generation {
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        if !this.live {
            // What an earlier try already read.
            if this.frame < st.frames.len() {
                let data = st.frames[this.frame].clone();
                this.frame += 1;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            this.live = true;
        }
        if st.committed && !st.frames.is_empty() {
            // No try will start again, and this one has sent the copy: release it.
            st.frames = Vec::new();
            st.buffered = 0;
        }
        if st.ended {
            if !this.trailers_sent {
                this.trailers_sent = true;
                if let Some(t) = st.trailers.clone() {
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
            }
            return Poll::Ready(None);
        }
        let keep = !st.overflowed && !st.committed;
        match Pin::new(&mut st.source).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                st.ended = true;
                this.trailers_sent = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    if keep {
                        st.buffered += d.len();
                        if st.buffered > st.limit {
                            st.overflowed = true;
                            st.frames = Vec::new();
                        } else {
                            st.frames.push(d.clone());
                        }
                    }
                } else if let Some(t) = frame.trailers_ref() {
                    st.trailers = Some(t.clone());
                    st.ended = true;
                    this.trailers_sent = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        let st = self.shared.lock();
        st.current == self.generation
            && st.ended
            && (self.live || self.frame >= st.frames.len())
            && (self.trailers_sent || st.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        // Every try sends the whole body.
        self.shared.lock().size_hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn chunks(parts: &[&'static [u8]]) -> ProxyBody {
        ProxyBody::chunks(parts.iter().map(|p| Bytes::from_static(p)).collect(), None)
    }

    async fn read_all(mut b: ReplayBody) -> Result<Vec<u8>, BoxError> {
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            if let Ok(d) = f?.into_data() {
                out.extend_from_slice(&d);
            }
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_second_try_sends_the_same_bytes() {
        let r = Replay::new(chunks(&[b"hello ", b"world"]), 1024);
        let first = r.next_try().unwrap();
        assert_eq!(read_all(first).await.unwrap(), b"hello world");
        let second = r.next_try().unwrap();
        assert_eq!(read_all(second).await.unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn a_try_cut_short_is_resumed_by_the_next() {
        let r = Replay::new(chunks(&[b"a", b"b", b"c"]), 1024);
        let mut first = r.next_try().unwrap();
        let f = first.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "a");
        // The first try is abandoned, still held (by its connection, say): the next
        // one reads on without waiting for it.
        let second = r.next_try().unwrap();
        assert_eq!(read_all(second).await.unwrap(), b"abc");
        // The old try may not read on.
        assert!(first.frame().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn past_the_limit_there_is_no_replay() {
        let r = Replay::new(chunks(&[b"0123456789", b"0123456789"]), 15);
        let first = r.next_try().unwrap();
        assert_eq!(read_all(first).await.unwrap().len(), 20, "the try in flight streams on");
        assert!(!r.replayable());
        assert!(r.next_try().is_none());
    }

    #[tokio::test]
    async fn trailers_are_replayed_too() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "0".parse().unwrap());
        let r = Replay::new(ProxyBody::chunks(vec![Bytes::from_static(b"x")], Some(t)), 1024);
        for _ in 0..2 {
            let collected = r.next_try().unwrap().collect().await.unwrap();
            assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
            assert_eq!(collected.to_bytes(), "x");
        }
    }

    #[tokio::test]
    async fn a_commit_during_a_replay_keeps_what_the_try_has_not_sent() {
        let r = Replay::new(chunks(&[b"a", b"b", b"c"]), 1024);
        let mut first = r.next_try().unwrap();
        first.frame().await.unwrap().unwrap();
        first.frame().await.unwrap().unwrap();
        drop(first);
        let mut second = r.next_try().unwrap();
        assert_eq!(second.frame().await.unwrap().unwrap().into_data().unwrap(), "a");
        r.commit();
        assert_eq!(read_all(second).await.unwrap(), b"bc");
    }

    #[tokio::test]
    async fn committing_releases_the_copy() {
        let r = Replay::new(chunks(&[b"abc"]), 1024);
        let first = r.next_try().unwrap();
        r.commit();
        assert_eq!(read_all(first).await.unwrap(), b"abc");
        assert!(r.next_try().is_none());
    }
}
