//! The one response body type: a streamed upstream body or a small body
//! usher wrote itself. An enum rather than a boxed trait object, so the
//! proxied path allocates nothing for it.

use bytes::Bytes;
use http_body_util::{Either, Full};

use crate::proxy::ResponseBody;

/// Body of every response usher sends.
pub type Body = Either<ResponseBody, Full<Bytes>>;

/// A body usher wrote itself.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Right(Full::new(bytes.into()))
}

/// An empty body.
pub fn empty() -> Body {
    Either::Right(Full::new(Bytes::new()))
}

/// A streamed body from the upstream.
pub fn streamed(upstream: ResponseBody) -> Body {
    Either::Left(upstream)
}
