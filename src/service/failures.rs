//! Rate-limited upstream failure lines: when the upstream is down, every
//! request fails the same way, and a WARN per request would bury
//! everything else. The first failure in each interval is logged in full
//! (cause, method, path, client, request id); the rest are counted, and the
//! next line logged says how many were left out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a full upstream failure line may be written.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The interval in progress and what it left out.
#[derive(Debug)]
pub struct FailureLog {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the current interval began; `None` before the first failure.
    since: Option<Instant>,
    /// Failures not logged since the last line.
    left_out: u64,
}

impl Default for FailureLog {
    fn default() -> Self {
        FailureLog {
            state: Mutex::new(State {
                since: None,
                left_out: 0,
            }),
        }
    }
}

impl FailureLog {
    /// Whether to log a failure at `now`: `Some(n)` (log it, saying that
    /// `n` were left out before it) or `None` (count it only).
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match s.since {
            Some(since) if now.saturating_duration_since(since) < INTERVAL => {
                s.left_out += 1;
                None
            }
            _ => {
                s.since = Some(now);
                Some(std::mem::take(&mut s.left_out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_saying_how_many_were_left_out() {
        let log = FailureLog::default();
        let t = Instant::now();
        assert_eq!(log.admit(t), Some(0));
        for i in 1..=50 {
            assert_eq!(log.admit(t + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(log.admit(t + INTERVAL), Some(50));
        assert_eq!(log.admit(t + INTERVAL + Duration::from_secs(1)), None);
        assert_eq!(log.admit(t + INTERVAL * 5), Some(1));
    }
}
