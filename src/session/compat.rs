//! Sessions written by the Python apps usher fronts: verify, read, re-issue
//! and write the signed cookies of Starlette's `SessionMiddleware` (FastAPI)
//! and Flask's default session, with the app's own secret key.
//!
//! The byte formats are specified in `shared/vectors/FORMATS.md` and pinned by
//! the vectors beside it, which the real libraries produced:
//! - [`itsdangerous`]: the timestamp signature both frameworks share, each
//!   framework's key derivation, and the age rules;
//! - [`starlette`]: standard base64 of `json.dumps` text;
//! - [`flask`]: base64url of Flask's tagged JSON, zlib-compressed when that
//!   is shorter.
//!
//! Everything here is pure: no IO, no clock (callers pass `now`, in unix
//! seconds), no configuration. Keys are the bytes of the secret as the app
//! has it, of any length; where several are accepted the first one signs and
//! all of them verify (rotation). These cookies are only signed, not
//! encrypted: anyone holding the cookie can read the session.
//!
//! Deliberately not here: finding the cookie in a `Cookie` header and
//! building `Set-Cookie` (that is `session::cookie`; note that Starlette
//! keeps the last of two same-named cookies and Flask the first), and usher's
//! own cookie format (`session::codec`), whose MAC also covers the cookie
//! name. These formats do not, so a value is valid under any cookie name.

pub mod flask;
pub mod itsdangerous;
pub mod starlette;

mod pyjson;

#[cfg(test)]
mod vectors;

/// Longest cookie value accepted, in bytes: longer values are refused before
/// any decoding. Browsers keep about 4096 bytes per cookie (name and
/// attributes included), so neither framework can have set a longer one.
pub const MAX_VALUE_LEN: usize = 4096;

/// Why a cookie value gave no session. Not an error to show anyone: the
/// client gets the same answer as with no cookie at all, and this is for
/// logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CompatRejected {
    /// Not shaped like a signed value (no `.`, no timestamp, undecodable
    /// timestamp), or correctly signed but the payload does not decode to a
    /// JSON object. The frameworks themselves fail with HTTP 500 on the
    /// latter; usher just refuses it.
    #[error("python session cookie is malformed")]
    Malformed,
    /// No accepted key produced the signature (tampered, wrong key, or a
    /// signature that is not 27 canonical base64url characters). Checked
    /// before anything else about the value is trusted.
    #[error("python session cookie signature does not match any configured key")]
    BadSignature,
    /// Signed longer ago than `max_age`.
    #[error("python session cookie is older than max_age")]
    Expired,
    /// Signed after `now` while a `max_age` applies. Both frameworks reject
    /// this too (itsdangerous reports it as expired), even by one second.
    #[error("python session cookie is dated in the future")]
    Future,
    /// The value is longer than [`MAX_VALUE_LEN`], or a compressed Flask
    /// payload inflates past [`flask::MAX_INFLATED_LEN`].
    #[error("python session cookie is too large")]
    TooLarge,
    /// Correctly signed and readable by the app, but holds something this
    /// codec will not represent rather than guess: Flask `bytes` (in
    /// [`flask::open`]), or an integer this build's `serde_json` could keep
    /// only as a float.
    #[error("python session cookie holds a value usher cannot represent")]
    Unsupported,
}

impl CompatRejected {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [CompatRejected; 6] = [
        CompatRejected::Malformed,
        CompatRejected::BadSignature,
        CompatRejected::Expired,
        CompatRejected::Future,
        CompatRejected::TooLarge,
        CompatRejected::Unsupported,
    ];

    /// A stable snake_case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatRejected::Malformed => "malformed",
            CompatRejected::BadSignature => "bad_signature",
            CompatRejected::Expired => "expired",
            CompatRejected::Future => "future",
            CompatRejected::TooLarge => "too_large",
            CompatRejected::Unsupported => "unsupported",
        }
    }
}
