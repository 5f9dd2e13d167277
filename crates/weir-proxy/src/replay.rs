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
//! Mirrors read the same copy through a [`MirrorBody`] as it grows (a tee): they get
//! the body as the primary request sends it, never slow it down, and fail (the mirror
//! is dropped) if the body outgrows the buffer or the primary request goes away first.
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
    /// Mirror readers alive: the copy is kept for them.
    mirrors: usize,
    /// Mirror readers waiting for more of the copy.
    mirror_wakers: Vec<Waker>,
    /// The primary request is gone (no try nor router holds the body any more).
    closed: bool,
}

impl State {
    fn wake_mirrors(&mut self) {
        for w in self.mirror_wakers.drain(..) {
            w.wake();
        }
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by the primary side (the router and each try): when the last one goes, the
/// body will not be read further and mirrors still waiting for it give up.
struct Owner(Shared);

impl Drop for Owner {
    fn drop(&mut self) {
        let mut st = lock(&self.0);
        st.closed = true;
        st.wake_mirrors();
    }
}

/// The shared body of one request; hands out one [`ReplayBody`] per try.
#[derive(Clone)]
pub(crate) struct Replay {
    shared: Shared,
    /// Dropped with the last primary-side handle.
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").finish_non_exhaustive()
    }
}

impl Replay {
    /// Wraps the client's body, keeping up to `limit` bytes for replays.
    pub(crate) fn new(source: ProxyBody, limit: usize) -> Replay {
        let size_hint = source.size_hint();
        let shared = Arc::new(Mutex::new(State {
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
            mirrors: 0,
            mirror_wakers: Vec::new(),
            closed: false,
        }));
        Replay { shared: shared.clone(), _owner: Arc::new(Owner(shared)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// A reader for a mirror: the body as the primary request sends it.
    pub(crate) fn mirror(&self) -> MirrorBody {
        let mut st = self.lock();
        st.mirrors += 1;
        MirrorBody { shared: self.shared.clone(), frame: 0, trailers_sent: false, size_hint: st.size_hint }
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
    /// Also keeps the primary side's [`Owner`] alive while the try reads.
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
        if st.committed && st.mirrors == 0 && !st.frames.is_empty() {
            // No try will start again, no mirror reads, and this try has sent the copy:
            // release it.
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
        let keep = !st.overflowed && (!st.committed || st.mirrors > 0);
        let polled = Pin::new(&mut st.source).poll_frame(cx);
        if polled.is_ready() {
            st.wake_mirrors();
        }
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

/// A mirror's view of the body: the copy, as it grows.
pub(crate) struct MirrorBody {
    shared: Shared,
    frame: usize,
    trailers_sent: bool,
    size_hint: SizeHint,
}

impl std::fmt::Debug for MirrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorBody").field("frame", &self.frame).finish()
    }
}

/// Why a mirror cannot have the whole body.
#[derive(Debug)]
struct Unmirrorable(&'static str);

impl std::fmt::Display for Unmirrorable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Unmirrorable {}

impl Body for MirrorBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut st = lock(&this.shared);
        if st.overflowed {
            return Poll::Ready(Some(Err(Box::new(Unmirrorable("the body outgrew the mirror buffer")))));
        }
        if this.frame < st.frames.len() {
            let data = st.frames[this.frame].clone();
            this.frame += 1;
            return Poll::Ready(Some(Ok(Frame::data(data))));
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
        if st.closed {
            return Poll::Ready(Some(Err(Box::new(Unmirrorable("the request went away before its body ended")))));
        }
        st.mirror_wakers.push(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let st = lock(&self.shared);
        st.ended && self.frame >= st.frames.len() && (self.trailers_sent || st.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        self.size_hint
    }
}

impl Drop for MirrorBody {
    fn drop(&mut self) {
        lock(&self.shared).mirrors -= 1;
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

    async fn read_mirror(mut b: MirrorBody) -> Result<Vec<u8>, BoxError> {
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            if let Ok(d) = f?.into_data() {
                out.extend_from_slice(&d);
            }
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_mirror_reads_the_body_as_the_primary_sends_it() {
        let r = Replay::new(chunks(&[b"he", b"llo"]), 1024);
        let mirror = tokio::spawn(read_mirror(r.mirror()));
        tokio::task::yield_now().await;
        assert!(!mirror.is_finished(), "nothing sent yet");
        let first = r.next_try().unwrap();
        r.commit();
        assert_eq!(read_all(first).await.unwrap(), b"hello");
        assert_eq!(mirror.await.unwrap().unwrap(), b"hello", "the copy is kept for the mirror after the commit");
    }

    #[tokio::test]
    async fn a_mirror_gives_up_when_the_primary_goes_away_or_the_body_is_too_big() {
        let r = Replay::new(chunks(&[b"abc", b"def"]), 1024);
        let mirror = r.mirror();
        let mut first = r.next_try().unwrap();
        first.frame().await.unwrap().unwrap();
        drop((first, r));
        assert!(read_mirror(mirror).await.is_err(), "half a body is not mirrored");
        let r = Replay::new(chunks(&[b"0123456789", b"0123456789"]), 15);
        let mirror = r.mirror();
        read_all(r.next_try().unwrap()).await.unwrap();
        assert!(read_mirror(mirror).await.is_err());
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
