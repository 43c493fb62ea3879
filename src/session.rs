//! Sessions carried in a signed cookie that usher owns.
//!
//! Three pure leaves, no IO and no clock (callers pass `now`):
//! - [`key`]: secret keys, their length rules, rotation order and redaction;
//! - [`codec`]: usher's wire format (`v1.<time>.<json>.<tag>`), HMAC-SHA256
//!   over cookie name, version, issue time and payload, and the age checks;
//! - [`cookie`]: finding, stripping and setting the cookie in HTTP headers;
//! - [`verified`]: a bounded memory of verified values and their payloads
//!   (never of their times).
//!
//! What a session *means* (typed fields, access rules, upstream writes) lives
//! with the callers in `service` and `auth`, not here.

pub mod codec;
pub mod compat;
pub mod cookie;
pub mod format;
pub mod key;
pub mod patch;
pub mod sealed;
pub mod verified;

pub use codec::{Limits, Opened, Rejected, needs_refresh, open, seal};
pub use cookie::{AttrError, CookieAttrs, SameSite, SetCookieError};
pub use key::{Key, KeyError, Keys};
