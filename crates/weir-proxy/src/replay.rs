//! A request body that can be sent more than once. The body streams upstream as the
//! client sends it, and a bounded copy of what went by is kept, so a retry sends the
//! same bytes again: first the copy, then whatever the client is still sending. Past the
//! bound (Envoy's default 1 MiB connection buffer limit) the copy is dropped and the
//! request can no longer be retried, as in Envoy; the try in flight keeps streaming.
//!
//! Each try reads through its own [`ReplayBody`]; only the newest may read on. A try
//! that was abandoned (timed out, answered with a retriable status) may still be held
//! by its connection for a moment: it gives the client's stream back when dropped, and
//! the next try waits for that instead of failing.
//!
//! The copy costs no byte copying: frames are reference-counted [`Bytes`].

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};

use crate::body::{BoxError, ProxyBody};

/// Envoy's default per-connection buffer limit, which also bounds retry buffering.
pub(crate) const BUFFER_LIMIT: usize = 1024 * 1024;

struct State {
    /// The client's body, while no try holds it.
    source: Option<Box<ProxyBody>>,
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
    /// The current try waiting for the source to be given back.
    waiting: Option<Waker>,
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
            source: Some(Box::new(source)),
            frames: Vec::new(),
            buffered: 0,
            limit,
            overflowed: false,
            committed: false,
            trailers: None,
            ended: false,
            current: 0,
            waiting: None,
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
        Some(ReplayBody { shared: self.clone(), generation: st.current, frame: 0, trailers_sent: false, source: None })
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
    /// The client's body, while this try reads it.
    source: Option<Box<ProxyBody>>,
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

impl ReplayBody {
    fn give_back(&mut self, st: &mut State) {
        if let Some(src) = self.source.take() {
            st.source = Some(src);
            if let Some(w) = st.waiting.take() {
                w.wake();
            }
        }
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let shared = this.shared.clone();
        let mut st = shared.lock();
        if st.current != this.generation {
            this.give_back(&mut st);
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        // What an earlier try already read (a copy that is dropped on overflow, and
        // after a commit once this try has sent it).
        if this.source.is_none() && this.frame < st.frames.len() {
            let data = st.frames[this.frame].clone();
            this.frame += 1;
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if st.committed && !st.frames.is_empty() {
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
        if this.source.is_none() {
            match st.source.take() {
                Some(src) => this.source = Some(src),
                None => {
                    // An earlier try still holds it; it gives it back when dropped.
                    st.waiting = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        let keep = !st.overflowed && !st.committed;
        drop(st);
        let Some(src) = this.source.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(&mut **src).poll_frame(cx);
        let mut st = shared.lock();
        match polled {
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
                    this.frame = st.frames.len();
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
            && self.source.is_none()
            && self.frame >= st.frames.len()
            && (self.trailers_sent || st.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        // Every try sends the whole body.
        self.shared.lock().size_hint
    }
}

impl Drop for ReplayBody {
    fn drop(&mut self) {
        if self.source.is_some() {
            let shared = self.shared.clone();
            let mut st = shared.lock();
            self.give_back(&mut st);
        }
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
        // The first try is abandoned while holding the client's stream.
        let second = r.next_try().unwrap();
        let reader = tokio::spawn(read_all(second));
        tokio::task::yield_now().await;
        // The old try may not read on, and gives the stream back when dropped.
        assert!(first.frame().await.unwrap().is_err());
        drop(first);
        assert_eq!(reader.await.unwrap().unwrap(), b"abc");
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
