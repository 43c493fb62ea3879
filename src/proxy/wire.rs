//! usher's own HTTP/1.1 exchange for a request without a body (most GETs
//! and HEADs): the request head written straight from the request's parts,
//! the response head parsed with httparse, and the response body decoded as
//! the client's side reads it, all in the request's own task. No connection
//! task, no channel between two tasks, no second dispatcher: hyper's client
//! connection still carries requests with a body and upgrades.
//!
//! It reads strictly and fails closed (the request gets a 502, the
//! connection is closed): a malformed head, more than 100 header fields, a
//! head over hyper's own limit, `Transfer-Encoding` beside
//! `Content-Length`, a transfer coding other than a final `chunked`,
//! differing `Content-Length` values, a bad chunk line (a bare LF in a
//! chunk extension included), a connection that closes before the framing
//! says the body ends.
//!
//! A connection is used again only when its response was HTTP/1.1, had no
//! `Connection: close`, had its length in its framing, ended exactly there
//! with no byte after it, and nothing arrived on it while it sat idle.
//! Whatever else an upstream sends cannot carry over into the next
//! request's response.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version, request};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

use crate::hop::Added;

/// A connection made by the pool's connector.
pub(super) type Io = TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>;

/// The most a response head may take: hyper's own default read limit.
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Header fields in a response head, at most (hyper's default too).
const MAX_HEADERS: usize = 100;
/// Trailer fields after a chunked body, at most.
const MAX_TRAILERS: usize = 32;
/// The longest chunk-size line (with its extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Interim (1xx) responses skipped before the final one, at most.
const MAX_INTERIM: usize = 8;
/// A read buffer is grown when less than this is left free in it ...
const READ_AT_LEAST: usize = 1024;
/// ... by this much at first ...
const READ_FIRST: usize = 8192;
/// ... doubling after each read that fills what it was given, up to this
/// (large bodies come in few reads, as with hyper's adaptive buffer).
const READ_MOST: usize = 128 * 1024;
/// A request-head buffer larger than this is not kept while idle.
const WRITE_KEPT: usize = 4096;
/// Remembered response field names whose bytes take more than this are
/// not kept while idle (an upstream's usual names take a few hundred).
const NAMES_KEPT: usize = 2048;

/// Why an exchange or its body failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Reading or writing the connection failed.
    #[error("upstream connection failed")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before its response ended.
    #[error("connection closed before message completed")]
    Closed,
    /// The upstream's bytes are not an HTTP/1.1 response usher accepts.
    #[error("malformed upstream response: {0}")]
    Malformed(&'static str),
}

impl WireError {
    /// The connection closed or was reset: what a pooled connection the
    /// upstream had already given up on looks like.
    fn connection_lost(&self) -> bool {
        match self {
            WireError::Closed => true,
            WireError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
            ),
            WireError::Malformed(_) => false,
        }
    }
}

/// One upstream connection and its buffers (reused from one request to the
/// next).
pub struct Conn {
    io: Io,
    read: BytesMut,
    write: Vec<u8>,
    /// Whether the current exchange has read any byte yet.
    heard: bool,
    /// How much a read buffer is grown by (`READ_FIRST` to `READ_MOST`).
    read_size: usize,
    /// The last response's field names, in order: a name read again in
    /// the same place is taken from here instead of parsed again.
    names: Names,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.read.len())
            .finish_non_exhaustive()
    }
}

/// The field names of a connection's last response head, each as
/// received and as parsed. Upstreams send the same names in the same order
/// response after response: one whose bytes are those of the name in the
/// same place is not parsed again.
#[derive(Debug, Default)]
struct Names {
    /// Each name, and where its bytes as received sit in `raw`.
    parsed: Vec<(HeaderName, usize, usize)>,
    raw: Vec<u8>,
}

impl Names {
    /// Make field `i`'s name, whose bytes are `bytes`, the `i`th known
    /// one (the names before it must be this head's already).
    fn learn(&mut self, i: usize, bytes: &[u8]) -> Result<(), WireError> {
        if let Some((_, start, end)) = self.parsed.get(i)
            && self.raw.get(*start..*end) == Some(bytes)
        {
            return Ok(());
        }
        let name = HeaderName::from_bytes(bytes).map_err(|_| WireError::Malformed("bad response head"))?;
        // Only the names before `i` are known to match: the rest go.
        self.parsed.truncate(i);
        let start = self.parsed.last().map_or(0, |(_, _, end)| *end);
        self.raw.truncate(start);
        self.raw.extend_from_slice(bytes);
        self.parsed.push((name, start, self.raw.len()));
        Ok(())
    }

    /// The first `count` names (all learnt).
    fn first(&self, count: usize) -> impl Iterator<Item = &HeaderName> {
        self.parsed.iter().take(count).map(|(name, _, _)| name)
    }
}

/// A final response head.
#[derive(Debug)]
pub(super) struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
}

impl Conn {
    pub(super) fn new(io: Io) -> Conn {
        Conn {
            io,
            read: BytesMut::with_capacity(READ_FIRST),
            write: Vec::with_capacity(WRITE_KEPT / 4),
            heard: false,
            read_size: READ_FIRST,
            names: Names::default(),
        }
    }

    /// Whether an idle connection can take a request: nothing buffered,
    /// and nothing (no byte, no close) waiting on the socket. Looks once
    /// without waiting; the socket is read only if it was reported
    /// readable since the last read.
    pub(super) fn looks_open(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_fill(&mut cx).is_pending()
    }

    /// Whether a failed exchange never saw a byte of its answer because
    /// the connection was gone: safe to try again elsewhere when the
    /// method is idempotent.
    pub(super) fn unanswered(&self, e: &WireError) -> bool {
        !self.heard && e.connection_lost()
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_AT_LEAST {
            self.read.reserve(self.read_size);
        }
        let n = ready!(poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read))?;
        if n >= self.read_size {
            self.read_size = (self.read_size * 2).min(READ_MOST);
        }
        Poll::Ready(Ok(n))
    }

    /// Let go of large buffers before the connection sits idle (a read
    /// buffer is made again, at the size this connection's reads have grown
    /// to, by the next read; a write buffer by the next request's head;
    /// forgotten names are parsed again).
    pub(super) fn trim(&mut self) {
        if self.read.is_empty() && self.read.capacity() > 2 * READ_FIRST {
            self.read = BytesMut::new();
        }
        if self.write.capacity() > WRITE_KEPT {
            self.write = Vec::new();
        }
        if self.names.raw.capacity() > NAMES_KEPT {
            self.names = Names::default();
        }
    }

    /// Send the request that `parts` describe (it has no body), with the
    /// fields in `added` after its own, and read the final response head;
    /// interim 1xx responses other than `101` are skipped. The request's
    /// header map, emptied, becomes the response's (its room is reused)
    /// once a head has arrived: by then the request cannot be tried again
    /// (see [`Conn::unanswered`]).
    pub(super) async fn exchange(&mut self, parts: &mut request::Parts, added: &Added) -> Result<Head, WireError> {
        self.heard = false;
        self.write.clear();
        encode(&mut self.write, parts, added);
        self.io.write_all(&self.write).await?;
        self.io.flush().await?;
        let mut interim = 0;
        loop {
            if let Some(head) = take_head(&mut self.read, &mut self.names, &mut parts.headers)? {
                if !head.status.is_informational() || head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Ok(head);
                }
                // An interim head's map serves the next head.
                parts.headers = head.headers;
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(WireError::Malformed("too many interim responses"));
                }
                continue;
            }
            if self.read.len() >= MAX_HEAD {
                return Err(WireError::Malformed("response head too large"));
            }
            match poll_fn(|cx| self.poll_fill(cx)).await? {
                0 => return Err(WireError::Closed),
                _ => self.heard = true,
            }
        }
    }
}

/// Write the request head: request line, fields as they are, the map's
/// and then usher's added ones (names are lower case, values hold no CR
/// or LF: `http` checks both), and
/// `Content-Length: 0` for a method whose body means something (hyper does
/// the same). The request has no body, so its own length and transfer
/// fields are not written.
fn encode(out: &mut Vec<u8>, parts: &request::Parts, added: &Added) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in parts.headers.iter().chain(added.iter()) {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE | Method::CONNECT
    ) {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Where a part of a head sits in it: `part` is a slice of `buf` (httparse
/// hands out slices of its input; an empty one may be any empty slice).
fn span(buf: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    if part.is_empty() {
        return Some((0, 0));
    }
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= buf.len()).then_some((start, end))
}

/// Take a complete response head off the front of `read`, if there is one.
/// The header values share the head's bytes (no copy). `names` holds the
/// previous head's field names and is left holding this one's; `room` is a
/// map whose allocation the head's fields go into (emptied first; left
/// empty when a head is taken).
fn take_head(read: &mut BytesMut, names: &mut Names, room: &mut HeaderMap) -> Result<Option<Head>, WireError> {
    const BAD: WireError = WireError::Malformed("bad response head");
    if read.is_empty() {
        return Ok(None);
    }
    // Left uninitialised: zeroing room for 100 fields cost more than
    // parsing the usual eight.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, read, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::Malformed("too many header fields")),
        Err(_) => return Err(BAD),
    };
    let status = res.code.and_then(|c| StatusCode::from_u16(c).ok()).ok_or(BAD)?;
    let version = match res.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(BAD),
    };
    // The fields borrow `read`, which must be split to share its bytes:
    // resolve each name and note where each value sits, then split.
    let count = res.headers.len();
    let mut values = [(0u32, 0u32); MAX_HEADERS];
    for (i, (field, slot)) in res.headers.iter().zip(values.iter_mut()).enumerate() {
        names.learn(i, field.name.as_bytes())?;
        let (start, end) = span(read, field.value).ok_or(BAD)?;
        let offset = |at: usize| u32::try_from(at).map_err(|_| BAD);
        *slot = (offset(start)?, offset(end)?);
    }
    let head = read.split_to(len).freeze();
    let mut headers = std::mem::take(room);
    headers.clear();
    headers.reserve(count);
    for (name, &(start, end)) in names.first(count).zip(&values) {
        let value = HeaderValue::from_maybe_shared(head.slice(start as usize..end as usize)).map_err(|_| BAD)?;
        headers.append(name.clone(), value);
    }
    Ok(Some(Head {
        status,
        version,
        headers,
    }))
}

/// How the response body's end is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes (none for HEAD, 1xx, 204 and 304).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the upstream closes the connection.
    Close,
}

/// The response's framing. A length given more than once (the same value:
/// anything else is refused) is passed on once.
fn framing(method: &Method, head: &mut Head) -> Result<Framing, WireError> {
    let status = head.status;
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    let headers = &head.headers;
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(WireError::Malformed("both Transfer-Encoding and Content-Length"));
        }
        let mut chunked = 0;
        let mut last_chunked = false;
        each_token(headers.get_all(header::TRANSFER_ENCODING), |token| {
            last_chunked = token.eq_ignore_ascii_case("chunked");
            chunked += usize::from(last_chunked);
            Ok(())
        })?;
        if !(last_chunked && chunked == 1) {
            return Err(WireError::Malformed("transfer coding other than one final chunked"));
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    let mut given = 0;
    each_token(headers.get_all(header::CONTENT_LENGTH), |token| {
        given += 1;
        let n = token
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| token.parse::<u64>().ok())
            .flatten()
            .ok_or(WireError::Malformed("bad Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(WireError::Malformed("differing Content-Length values"));
        }
        length = Some(n);
        Ok(())
    })?;
    match length {
        Some(n) => {
            if given > 1 {
                head.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            Ok(Framing::Length(n))
        }
        None if headers.contains_key(header::CONTENT_LENGTH) => Err(WireError::Malformed("bad Content-Length")),
        None => Ok(Framing::Close),
    }
}

/// Call `f` with each comma-separated, trimmed, non-empty token of a
/// field's values.
fn each_token(
    values: header::GetAll<'_, HeaderValue>,
    mut f: impl FnMut(&str) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for value in values {
        let text = value
            .to_str()
            .map_err(|_| WireError::Malformed("non-ASCII framing field"))?;
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            f(token)?;
        }
    }
    Ok(())
}

/// Whether the connection may carry another request after this response.
fn reusable(head: &Head, framing: Framing) -> bool {
    let closes = head.headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    });
    head.version == Version::HTTP_11
        && !closes
        && framing != Framing::Close
        && head.status != StatusCode::SWITCHING_PROTOCOLS
}

/// Where a connection goes once its response has ended cleanly.
pub trait Keep {
    /// Take the connection back for the next request.
    fn keep(self, conn: Box<Conn>);
}

/// The response to `method`'s request whose head `head` is, its body to be
/// read from `conn`; `keep` takes the connection back at the body's end
/// (at once when the body is empty).
pub(super) fn respond<K: Keep>(
    conn: Box<Conn>,
    mut head: Head,
    method: &Method,
    keep: K,
) -> Result<Response<Body<K>>, WireError> {
    let framing = framing(method, &mut head)?;
    let reusable = reusable(&head, framing);
    let state = match framing {
        Framing::Length(n) => State::Length(n),
        Framing::Chunked => State::ChunkSize,
        Framing::Close => State::Close,
    };
    let mut body = Body {
        home: Some((conn, keep)),
        state,
        reusable,
    };
    if body.state == State::Length(0) {
        body.finish();
    }
    let mut res = Response::new(body);
    *res.status_mut() = head.status;
    *res.version_mut() = head.version;
    *res.headers_mut() = head.headers;
    Ok(res)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many bytes are left.
    Length(u64),
    /// A chunk-size line comes next.
    ChunkSize,
    /// This many bytes of the current chunk are left.
    ChunkData(u64),
    /// The CRLF after a chunk's data comes next.
    ChunkEnd,
    /// The trailer section after the last chunk comes next.
    Trailers,
    /// Data until the upstream closes.
    Close,
    /// Ended (or failed).
    Done,
}

/// An upstream response body read by [`respond`]'s exchange.
pub struct Body<K: Keep> {
    /// The connection and where it goes at the end; `None` once ended.
    home: Option<(Box<Conn>, K)>,
    state: State,
    reusable: bool,
}

impl<K: Keep> fmt::Debug for Body<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("wire::Body")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<K: Keep> Body<K> {
    /// The body has ended: its connection goes back if it can carry the
    /// next request, and is closed otherwise.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some((conn, keep)) = self.home.take()
            && self.reusable
            && conn.read.is_empty()
        {
            keep.keep(conn);
        }
    }

    /// The body failed: the connection is closed.
    fn fail(&mut self, e: WireError) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        self.state = State::Done;
        self.home = None;
        Poll::Ready(Some(Err(e)))
    }
}

/// What [`State::step`] found in the buffered bytes.
#[derive(Debug)]
enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields after the last chunk.
    Trailers(HeaderMap),
    /// The body ended here.
    End,
    /// More bytes are needed; `at_close`: the body would end if the
    /// connection closed now.
    More { at_close: bool },
}

impl State {
    /// Decode what `read` holds, taking what is decoded off its front.
    /// Pure: no IO, so that the decoder can be driven by tests and the fuzz
    /// target.
    fn step(&mut self, read: &mut BytesMut) -> Result<Step, WireError> {
        loop {
            match *self {
                State::Done | State::Length(0) => {
                    *self = State::Done;
                    return Ok(Step::End);
                }
                State::Length(left) => {
                    let Some(data) = take_data(read, left) else {
                        return Ok(Step::More { at_close: false });
                    };
                    *self = State::Length(left - data.len() as u64);
                    return Ok(Step::Data(data));
                }
                State::ChunkData(left) => {
                    let Some(data) = take_data(read, left) else {
                        return Ok(Step::More { at_close: false });
                    };
                    let left = left - data.len() as u64;
                    *self = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return Ok(Step::Data(data));
                }
                State::ChunkSize => match httparse::parse_chunk_size(read) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        // httparse lets any byte into an extension; a bare LF
                        // there is a line end to some other parser.
                        if used > MAX_CHUNK_LINE || memchr::memchr(b'\n', &read[..used - 1]).is_some() {
                            return Err(WireError::Malformed("bad chunk-size line"));
                        }
                        read.advance(used);
                        *self = if size == 0 {
                            State::Trailers
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if read.len() <= MAX_CHUNK_LINE => {
                        return Ok(Step::More { at_close: false });
                    }
                    _ => return Err(WireError::Malformed("bad chunk-size line")),
                },
                State::ChunkEnd => {
                    if read.len() < 2 {
                        return Ok(Step::More { at_close: false });
                    }
                    if read[..2] != *b"\r\n" {
                        return Err(WireError::Malformed("chunk data longer than its size"));
                    }
                    read.advance(2);
                    *self = State::ChunkSize;
                }
                State::Trailers => match trailers(read)? {
                    Some(fields) => {
                        *self = State::Done;
                        return Ok(fields.map_or(Step::End, Step::Trailers));
                    }
                    None if read.len() <= MAX_HEAD => return Ok(Step::More { at_close: false }),
                    None => return Err(WireError::Malformed("trailer section too large")),
                },
                State::Close => {
                    if read.is_empty() {
                        return Ok(Step::More { at_close: true });
                    }
                    return Ok(Step::Data(read.split().freeze()));
                }
            }
        }
    }
}

/// Up to `left` bytes of what is buffered, if any.
fn take_data(read: &mut BytesMut, left: u64) -> Option<Bytes> {
    if read.is_empty() {
        return None;
    }
    let n = usize::try_from(left).unwrap_or(usize::MAX).min(read.len());
    Some(read.split_to(n).freeze())
}

impl<K: Keep + Unpin> HttpBody for Body<K> {
    type Data = Bytes;
    type Error = WireError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        let this = self.get_mut();
        loop {
            let Some((conn, _)) = this.home.as_mut() else {
                return Poll::Ready(None);
            };
            let at_close = match this.state.step(&mut conn.read) {
                Ok(Step::Data(data)) => {
                    if this.state == State::Length(0) {
                        // Nothing left to read: the connection goes back now.
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Trailers(fields)) => {
                    this.finish();
                    return Poll::Ready(Some(Ok(Frame::trailers(fields))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More { at_close }) => at_close,
                Err(e) => return this.fail(e),
            };
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) if at_close => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => return this.fail(WireError::Closed),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return this.fail(WireError::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Take the trailer section after a chunked body's last chunk off `read`:
/// `Some(None)` when it is empty, `None` while it is incomplete.
fn trailers(read: &mut BytesMut) -> Result<Option<Option<HeaderMap>>, WireError> {
    const BAD: WireError = WireError::Malformed("bad trailer section");
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
    let (used, parsed) = match httparse::parse_headers(read, &mut fields) {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BAD),
    };
    let mut map = HeaderMap::new();
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| BAD)?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| BAD)?;
        map.append(name, value);
    }
    read.advance(used);
    Ok(Some((!map.is_empty()).then_some(map)))
}

/// The fuzz target's body: `data` as an upstream's answer to a GET (a HEAD
/// when its first byte is odd), fed to the parser in two pieces split at a
/// point the data chooses. Must not panic; a body never yields more bytes
/// than arrived, nor more than its length, and ends only at its length; a
/// head reads the same whatever names its connection learnt before.
pub(crate) fn fuzz(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    same_with_learnt_names(rest);
    let method = if first % 2 == 1 { Method::HEAD } else { Method::GET };
    let split = usize::from(first / 2).min(rest.len());
    let mut read = BytesMut::from(&rest[..split]);
    let mut later = Some(&rest[split..]);
    let mut names = Names::default();
    let mut head = loop {
        match take_head(&mut read, &mut names, &mut HeaderMap::new()) {
            Ok(Some(head)) => break head,
            Ok(None) => match later.take() {
                Some(more) => read.extend_from_slice(more),
                None => return,
            },
            Err(_) => return,
        }
    };
    assert!(head.headers.len() <= MAX_HEADERS);
    let Ok(framing) = framing(&method, &mut head) else {
        return;
    };
    // A bodyless answer (HEAD, 1xx, 204, 304) may name both: no body is read.
    assert!(
        framing == Framing::Length(0)
            || !(head.headers.contains_key(header::TRANSFER_ENCODING)
                && head.headers.contains_key(header::CONTENT_LENGTH)),
        "both framings accepted"
    );
    let mut state = match framing {
        Framing::Length(n) => State::Length(n),
        Framing::Chunked => State::ChunkSize,
        Framing::Close => State::Close,
    };
    let mut decoded = 0u64;
    loop {
        match state.step(&mut read) {
            Ok(Step::Data(bytes)) => {
                assert!(!bytes.is_empty(), "an empty data frame");
                decoded += bytes.len() as u64;
            }
            Ok(Step::Trailers(_) | Step::End) => break,
            Ok(Step::More { .. }) => match later.take() {
                Some(more) => read.extend_from_slice(more),
                None => break,
            },
            Err(_) => return,
        }
    }
    assert!(decoded <= data.len() as u64, "more bytes out than in");
    if let Framing::Length(n) = framing {
        assert!(decoded <= n, "more than the length");
        assert!(state != State::Done || decoded == n, "ended short of the length");
    }
}

/// `raw`'s head parsed with no names known, with names learnt from another
/// head, and with its own names learnt: the same fields, or the same
/// refusal, each time.
fn same_with_learnt_names(raw: &[u8]) {
    fn read(raw: &[u8], names: &mut Names) -> Result<Option<Vec<(HeaderName, HeaderValue)>>, String> {
        match take_head(&mut BytesMut::from(raw), names, &mut HeaderMap::new()) {
            Ok(head) => Ok(head.map(|h| h.headers.iter().map(|(n, v)| (n.clone(), v.clone())).collect())),
            Err(e) => Err(e.to_string()),
        }
    }
    let fresh = read(raw, &mut Names::default());
    let mut names = Names::default();
    let other = b"HTTP/1.1 200 OK\r\nServer: a\r\nDate: b\r\nX-Custom: c\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(read(other, &mut names), Ok(Some(_))));
    assert_eq!(read(raw, &mut names), fresh, "names learnt from another head");
    assert_eq!(read(raw, &mut names), fresh, "its own names learnt");
}

#[cfg(test)]
mod tests;
