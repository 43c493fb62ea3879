//! A body that must keep moving: [`Paced`] fails with [`Stalled`] when its
//! source sends nothing for `idle` while someone waits for it (a client
//! upload that stops: `server.body_timeout`; an upstream response that
//! stops: `upstream.body_timeout`), and reports its progress and its end to
//! a shared [`Progress`], so that the response timer can start once the
//! request body has been sent.
//!
//! The timer runs only while the body is polled and has nothing: a reader
//! that stops reading is not the source's fault (that is
//! `server.write_timeout`'s, or the upstream's).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Sleep;

/// The error type of a paced body: its source's, boxed, or [`Stalled`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which side stopped sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client's request body.
    Client,
    /// The upstream's response body.
    Upstream,
}

/// No body bytes arrived for the idle limit.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{} body sent nothing for {idle:?}", match .side { Side::Client => "client request", Side::Upstream => "upstream response" })]
pub struct Stalled {
    /// Whose body it was.
    pub side: Side,
    /// The limit that passed.
    pub idle: Duration,
}

/// How far a body has come: frames read, and whether it has ended.
#[derive(Debug, Default)]
pub struct Progress {
    frames: AtomicU64,
    ended: AtomicBool,
    notify: Notify,
}

impl Progress {
    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Whether the body has been read to its end (or failed).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Completes once the body has ended (or failed).
    pub async fn wait_ended(&self) {
        loop {
            let notified = self.notify.notified();
            if self.ended() {
                return;
            }
            notified.await;
        }
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// A timer for "no progress for `limit`": started by the first wait,
/// stopped by progress, and kept between waits (reset, not rebuilt: a
/// streamed body or a busy socket waits often).
#[derive(Debug, Default)]
pub struct StallTimer {
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl StallTimer {
    /// Progress was made: the next wait starts a fresh count.
    pub fn progress(&mut self) {
        self.armed = false;
    }

    /// Still waiting: whether `limit` has passed since the wait began
    /// (registering `cx` to be woken when it does).
    pub fn expired(&mut self, cx: &mut Context<'_>, limit: Duration) -> bool {
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if !self.armed {
            timer.as_mut().reset(tokio::time::Instant::now() + limit);
            self.armed = true;
        }
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.armed = false;
        true
    }
}

/// `inner`, failing after `idle` without a frame while polled.
pub struct Paced<B> {
    inner: B,
    side: Side,
    idle: Duration,
    timer: StallTimer,
    progress: Option<Arc<Progress>>,
}

impl<B> Paced<B> {
    /// Pace `inner` (sent by `side`) to a frame every `idle` at least.
    pub fn new(inner: B, side: Side, idle: Duration) -> Self {
        Paced {
            inner,
            side,
            idle,
            timer: StallTimer::default(),
            progress: None,
        }
    }

    /// Report progress and the end into `progress` too.
    pub fn reporting(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn end(&mut self) {
        if let Some(p) = self.progress.take() {
            p.end();
        }
    }
}

impl<B> Drop for Paced<B> {
    fn drop(&mut self) {
        // Dropped unread (an early answer, a failure): nothing more will
        // come, so nobody may wait for it.
        self.end();
    }
}

impl<B> HttpBody for Paced<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if !this.timer.expired(cx, this.idle) {
                    return Poll::Pending;
                }
                this.end();
                let stalled = Stalled {
                    side: this.side,
                    idle: this.idle,
                };
                Poll::Ready(Some(Err(Box::new(stalled))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.timer.progress();
                if let Some(p) = &this.progress {
                    p.frames.fetch_add(1, Ordering::Relaxed);
                }
                if this.inner.is_end_stream() {
                    this.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn a_body_that_stops_fails_and_a_finished_one_reports_its_end() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
        let frames = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let stream = StreamBody::new(Box::pin(frames));
        let progress = Arc::new(Progress::default());
        let mut body = Paced::new(stream, Side::Client, Duration::from_millis(200)).reporting(Arc::clone(&progress));
        tx.send(Ok(Frame::data(Bytes::from_static(b"a")))).await.expect("send");
        assert!(body.frame().await.expect("frame").is_ok());
        assert_eq!(progress.frames(), 1);
        let err = body.frame().await.expect("an error").expect_err("stalled");
        let stalled = err.downcast_ref::<Stalled>().expect("Stalled");
        assert_eq!(stalled.side, Side::Client);
        assert!(progress.ended(), "a stalled body ends");
        drop(tx);

        let progress = Arc::new(Progress::default());
        let full = http_body_util::Full::new(Bytes::from_static(b"x"));
        let mut body = Paced::new(full, Side::Upstream, Duration::from_secs(5)).reporting(Arc::clone(&progress));
        assert!(!progress.ended());
        let _ = body.frame().await;
        assert!(progress.ended());
        progress.wait_ended().await;
    }
}
