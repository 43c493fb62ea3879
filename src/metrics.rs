//! Counters kept while serving. Plain atomics: the admin endpoint that
//! exposes them in Prometheus text reads them; nothing here does IO.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::session::Rejected;

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    rejections: [AtomicU64; Rejected::ALL.len()],
    cookies_too_large: AtomicU64,
}

impl Metrics {
    /// Count a session cookie that gave no session.
    pub fn session_rejected(&self, reason: Rejected) {
        if let Some(i) = Rejected::ALL.iter().position(|r| *r == reason) {
            self.rejections[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count a session cookie that was not set because it was too large.
    pub fn cookie_too_large(&self) {
        self.cookies_too_large.fetch_add(1, Ordering::Relaxed);
    }

    /// Rejections so far, by reason.
    pub fn rejections(&self) -> impl Iterator<Item = (Rejected, u64)> + '_ {
        Rejected::ALL
            .iter()
            .zip(&self.rejections)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
    }

    /// Cookies not set because too large, so far.
    pub fn cookies_too_large(&self) -> u64 {
        self.cookies_too_large.load(Ordering::Relaxed)
    }
}
