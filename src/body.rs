//! The body parts every layer builds on: [`Watched`], hyper's body with
//! something to do once it has been read to its end, and [`Paced`], a body
//! that fails when it stalls. The bottom layer: imports no other module of
//! usher's (the response body type that names the upstream's body is
//! `respond::Body`, above `proxy`).

pub mod paced;

pub use paced::{Paced, Progress, StallTimer, Stalled};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

/// What to do once a body has been read to its end.
pub trait AtEnd {
    /// What the body's read errors become: a request body's say that the
    /// client is at fault, a response body's stay hyper's.
    type Error: From<hyper::Error> + std::error::Error + Send + Sync + 'static;

    /// The body's last frame was read (or it was dropped with nothing left).
    fn reached(self);
}

/// A client's request body failed while usher read it (bad chunked
/// framing, a connection closed part-way): the client's fault, told apart
/// from the upstream's when the forwarding fails.
#[derive(Debug, thiserror::Error)]
#[error("client request body failed")]
pub struct ClientBodyError(#[source] hyper::Error);

impl From<hyper::Error> for ClientBodyError {
    fn from(e: hyper::Error) -> Self {
        ClientBodyError(e)
    }
}

/// hyper's body, telling `H` when it has been read to its end: after the
/// frame that leaves nothing to read, at the end of the stream, or when
/// dropped with nothing left to read. A body that fails, or is dropped
/// part-way, drops `H` unused.
#[derive(Debug)]
pub struct Watched<H: AtEnd> {
    inner: Incoming,
    at_end: Option<H>,
}

impl<H: AtEnd> Watched<H> {
    /// Watch `inner`; `at_end: None` for a body nobody needs to hear of.
    pub fn new(inner: Incoming, at_end: Option<H>) -> Self {
        Watched { inner, at_end }
    }

    fn reached(&mut self) {
        if let Some(at_end) = self.at_end.take() {
            at_end.reached();
        }
    }
}

impl<H: AtEnd + Unpin> HttpBody for Watched<H> {
    type Data = Bytes;
    type Error = H::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, H::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.reached(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.reached(),
            Poll::Ready(Some(Err(_))) => this.at_end = None,
            _ => {}
        }
        polled.map(|frame| frame.map(|r| r.map_err(H::Error::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<H: AtEnd> Drop for Watched<H> {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.reached();
        }
    }
}
