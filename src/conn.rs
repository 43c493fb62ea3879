//! What one client connection shares between the layers: its byte stream
//! ([`ClientIo`]), the request cycle's bookkeeping ([`Exchanges`], and the
//! request body that reports its end, [`RequestBody`]), the hand-off of the
//! stream to an upgrade tunnel ([`HandOff`]) and the per-request access
//! line ([`account`]). Below `proxy` (which forwards a `RequestBody` and
//! takes the stream for a tunnel) and `server` (which drives the
//! connection); imports neither.

pub mod account;
pub mod exchange;
pub mod io;

pub use exchange::{Exchanges, HandOff, RequestBody};
pub use io::ClientIo;
