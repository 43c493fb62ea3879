//! Counters kept while serving. Plain atomics: the admin endpoint that
//! exposes them in Prometheus text reads them; nothing here does IO.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::session::Rejected;

/// Outcome of a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// Signed in.
    Success,
    /// Wrong password or unknown user.
    Failure,
    /// Refused by a brute-force limit.
    RateLimited,
    /// The form's CSRF token was missing, stale or forged.
    BadForm,
}

impl LoginResult {
    /// Every result, for metric labels.
    pub const ALL: [LoginResult; 4] = [
        LoginResult::Success,
        LoginResult::Failure,
        LoginResult::RateLimited,
        LoginResult::BadForm,
    ];

    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Success => "success",
            LoginResult::Failure => "failure",
            LoginResult::RateLimited => "rate_limited",
            LoginResult::BadForm => "bad_form",
        }
    }
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    rejections: [AtomicU64; Rejected::ALL.len()],
    cookies_too_large: AtomicU64,
    logins: [AtomicU64; LoginResult::ALL.len()],
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

    /// Count a sign-in attempt.
    pub fn login(&self, result: LoginResult) {
        if let Some(i) = LoginResult::ALL.iter().position(|r| *r == result) {
            self.logins[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sign-in attempts so far, by result.
    pub fn logins(&self) -> impl Iterator<Item = (LoginResult, u64)> + '_ {
        LoginResult::ALL
            .iter()
            .zip(&self.logins)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
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
