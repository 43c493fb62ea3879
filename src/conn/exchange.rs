//! What the HTTP/1.1 request cycle (plain or TLS) must know to drop hyper's connection state
//! between requests without breaking the byte stream: how many requests
//! began and how many responses were written to their end, whether the
//! latest request leaves the connection at a clean message boundary, whether
//! the socket last refused a write, whether the latest request's body was
//! read to its end, and whether a `101` handed the connection to a tunnel.
//!
//! Everything here is touched from the one task that owns the connection,
//! except the end of a request body, which whoever reads the body reports
//! (usually the upstream connection's task); a report names its request, so
//! a late one cannot speak for the next request.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONNECTION, UPGRADE};
use http::{Method, Request, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;

use super::account::Account;
use super::io::ClientIo;
use crate::body::{AtEnd, Watched};

/// One request cycle's bookkeeping (see the module docs).
#[derive(Debug, Default)]
pub struct Exchanges {
    started: AtomicU32,
    finished: AtomicU32,
    last_clean: AtomicBool,
    /// The number (1, 2, …) of the latest request when its body has not
    /// yet been read to its end; 0 when there is no such body.
    body_pending: AtomicU32,
    write_stalled: AtomicBool,
    tunnel: Mutex<Option<oneshot::Sender<ClientIo>>>,
}

impl Exchanges {
    /// A request reached the service; `clean` says whether, once it is
    /// answered, the next byte on the connection starts a new request.
    /// Returns the request's number in this cycle.
    pub fn begin<B: HttpBody>(&self, req: &Request<B>) -> u32 {
        let number = self.started.fetch_add(1, Relaxed).wrapping_add(1);
        self.last_clean.store(leaves_clean_boundary(req), Relaxed);
        let pending = if req.body().is_end_stream() { 0 } else { number };
        self.body_pending.store(pending, Relaxed);
        number
    }

    /// Request `number`'s body was read to its end: hyper has parsed it
    /// whole (it moves past a body before handing out its last frame). An
    /// earlier request's body read late (after an early answer, hyper may
    /// already be on the next request) changes nothing.
    fn body_read(&self, number: u32) {
        let _ = self.body_pending.compare_exchange(number, 0, Relaxed, Relaxed);
    }

    fn finish(&self) {
        self.finished.fetch_add(1, Relaxed);
    }

    /// Requests that reached the service so far.
    pub fn started(&self) -> u32 {
        self.started.load(Relaxed)
    }

    pub fn write_stalled(&self, stalled: bool) {
        self.write_stalled.store(stalled, Relaxed);
    }

    /// True when every request seen was answered to its last byte, nothing
    /// waits to be written, the latest request left a clean boundary, its
    /// body (if any) was read to the end, and no tunnel claimed the
    /// connection: hyper's state can then be dropped without losing or
    /// misreading a byte.
    pub fn settled(&self) -> bool {
        let started = self.started.load(Relaxed);
        started > 0
            && started == self.finished.load(Relaxed)
            && self.last_clean.load(Relaxed)
            && self.body_pending.load(Relaxed) == 0
            && !self.write_stalled.load(Relaxed)
            && !self.tunnel_claimed()
    }

    /// Whether a `101` claimed the connection for a tunnel.
    pub fn tunnel_claimed(&self) -> bool {
        self.tunnel.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// The sender a `101` left for the connection, if any.
    pub fn take_tunnel(&self) -> Option<oneshot::Sender<ClientIo>> {
        self.tunnel.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `keep-alive`; no
/// upgrade. Anything else is left to hyper's own keep-alive handling. (A
/// request body must also be read to its end; see [`RequestBody`].)
fn leaves_clean_boundary<B: HttpBody>(req: &Request<B>) -> bool {
    let tokens = || {
        req.headers()
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    let keep_alive = match req.version() {
        Version::HTTP_11 => !tokens().any(|t| t.eq_ignore_ascii_case("close")),
        Version::HTTP_10 => tokens().any(|t| t.eq_ignore_ascii_case("keep-alive")),
        _ => false,
    };
    keep_alive && !req.headers().contains_key(UPGRADE)
}

/// Put in an upgrade request's extensions on HTTP/1.1 connections:
/// the proxy claims the client side of a tunnel through it.
#[derive(Clone, Debug)]
pub struct HandOff(Arc<Exchanges>);

impl HandOff {
    pub fn new(exchanges: Arc<Exchanges>) -> Self {
        HandOff(exchanges)
    }

    /// Claim the connection: once hyper has written the `101`, the stream
    /// (with any bytes the client sent after its request) arrives here.
    pub fn claim(self) -> oneshot::Receiver<ClientIo> {
        let (tx, rx) = oneshot::channel();
        *self.0.tunnel.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }
}

/// The body of every request usher receives. On HTTP/1.1 it tells
/// the request cycle when it has been read to its end, so that a
/// connection whose last request had a body can still drop hyper's state
/// between requests. A body not read to its end (the upstream answered
/// early, the client stopped sending) leaves the connection to hyper.
pub type RequestBody = Watched<BodyRead>;

/// The request cycle to tell, and the request's number in it.
#[derive(Debug)]
pub struct BodyRead(Arc<Exchanges>, u32);

impl BodyRead {
    pub fn new(exchanges: Arc<Exchanges>, number: u32) -> Self {
        BodyRead(exchanges, number)
    }
}

impl AtEnd for BodyRead {
    type Error = crate::body::ClientBodyError;

    fn reached(self) {
        self.0.body_read(self.1);
    }
}

/// A response body that counts its exchange finished when hyper drops it
/// after its last byte (or at once for responses that carry no body).
pub struct Tracked<B: HttpBody> {
    inner: B,
    exchanges: Arc<Exchanges>,
    ended: bool,
    bodiless: bool,
    account: Option<Account>,
}

/// Whether a response with `status` to `method` carries no body (hyper
/// drops such a body without polling it).
pub fn is_bodiless(method: &Method, status: StatusCode) -> bool {
    *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

impl<B: HttpBody> Tracked<B> {
    /// Wrap `inner`, the body of a response with `status` to `method`.
    pub fn new(inner: B, exchanges: Arc<Exchanges>, method: &Method, status: StatusCode) -> Self {
        Tracked {
            inner,
            exchanges,
            ended: false,
            bodiless: is_bodiless(method, status),
            account: None,
        }
    }

    /// Count the request in `account` when this body ends.
    pub fn accounted(mut self, account: Account) -> Self {
        self.account = Some(account);
        self
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended = true,
            Poll::Ready(Some(Err(_))) => {
                if let Some(a) = &mut self.account {
                    a.upstream_failed();
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: HttpBody> Drop for Tracked<B> {
    fn drop(&mut self) {
        if self.ended || self.bodiless || self.inner.is_end_stream() {
            self.exchanges.finish();
            if let Some(a) = &mut self.account {
                a.ended();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    fn full(text: &'static str) -> http_body_util::Full<Bytes> {
        http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
    }

    use super::*;
    use http_body_util::BodyExt;

    fn req(version: Version, connection: Option<&str>, body: &'static str) -> Request<http_body_util::Full<Bytes>> {
        let mut b = Request::builder().version(version).uri("/");
        if let Some(c) = connection {
            b = b.header(CONNECTION, c);
        }
        b.body(http_body_util::Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request")
    }

    /// A response that hyper drops without polling its body (as it does for
    /// HEAD, 204 and 304 answers).
    fn dropped_unpolled(ex: &Arc<Exchanges>, method: Method, status: StatusCode) {
        drop(Tracked::new(full("x"), Arc::clone(ex), &method, status));
    }

    #[test]
    fn clean_boundary_needs_keep_alive_and_no_upgrade() {
        assert!(leaves_clean_boundary(&req(Version::HTTP_11, None, "")));
        assert!(leaves_clean_boundary(&req(Version::HTTP_11, Some("keep-alive"), "")));
        assert!(!leaves_clean_boundary(&req(Version::HTTP_11, Some("foo, Close"), "")));
        assert!(!leaves_clean_boundary(&req(Version::HTTP_10, None, "")));
        assert!(leaves_clean_boundary(&req(Version::HTTP_10, Some("Keep-Alive"), "")));
        assert!(leaves_clean_boundary(&req(Version::HTTP_11, None, "a body")));
        let mut up = req(Version::HTTP_11, Some("upgrade"), "");
        up.headers_mut().insert(UPGRADE, "websocket".parse().expect("value"));
        assert!(!leaves_clean_boundary(&up));
        assert!(!leaves_clean_boundary(&req(Version::HTTP_2, None, "")));
    }

    #[tokio::test]
    async fn an_exchange_settles_only_when_its_body_was_sent_to_the_end() {
        let ex = Arc::new(Exchanges::default());
        assert!(!ex.settled(), "nothing started yet");
        ex.begin(&req(Version::HTTP_11, None, ""));
        let body = Tracked::new(full("hello"), Arc::clone(&ex), &Method::GET, StatusCode::OK);
        assert!(!ex.settled(), "response not written yet");
        let collected = body.collect().await.expect("body").to_bytes();
        assert_eq!(&collected[..], b"hello");
        assert!(ex.settled(), "body ran to its end and was dropped");

        // A body dropped half-way (client gone) never settles.
        ex.begin(&req(Version::HTTP_11, None, ""));
        let mut body = Tracked::new(full("x"), Arc::clone(&ex), &Method::GET, StatusCode::OK);
        body.ended = false;
        drop(std::mem::replace(&mut body.inner, full("unsent")));
        drop(body);
        assert!(!ex.settled());
    }

    #[test]
    fn a_request_body_must_be_read_to_its_end_to_settle() {
        let ex = Arc::new(Exchanges::default());
        let answer = |ex: &Arc<Exchanges>| dropped_unpolled(ex, Method::HEAD, StatusCode::OK);
        let first = ex.begin(&req(Version::HTTP_11, None, "a body"));
        answer(&ex);
        assert!(!ex.settled(), "answered, but the request body is unread");
        ex.body_read(first);
        assert!(ex.settled());
        // The next request starts with its own body state, and the end of
        // an earlier body, read late, does not count for it.
        let second = ex.begin(&req(Version::HTTP_11, None, "another"));
        answer(&ex);
        assert!(!ex.settled());
        ex.body_read(first);
        assert!(!ex.settled(), "an earlier body's end released a later request");
        ex.body_read(second);
        assert!(ex.settled());
    }

    #[test]
    fn head_and_no_content_answers_settle_unpolled() {
        let ex = Arc::new(Exchanges::default());
        ex.begin(&req(Version::HTTP_11, None, ""));
        dropped_unpolled(&ex, Method::HEAD, StatusCode::OK);
        assert!(ex.settled());
        ex.begin(&req(Version::HTTP_11, None, ""));
        dropped_unpolled(&ex, Method::GET, StatusCode::NO_CONTENT);
        assert!(ex.settled());
    }

    #[test]
    fn a_stalled_write_or_a_claimed_tunnel_keeps_the_connection() {
        let ex = Arc::new(Exchanges::default());
        ex.begin(&req(Version::HTTP_11, None, ""));
        drop(Tracked::new(full(""), Arc::clone(&ex), &Method::GET, StatusCode::OK));
        assert!(ex.settled());
        ex.write_stalled(true);
        assert!(!ex.settled());
        ex.write_stalled(false);
        let _rx = HandOff::new(Arc::clone(&ex)).claim();
        assert!(!ex.settled());
        assert!(ex.take_tunnel().is_some());
        assert!(ex.settled());
    }
}
