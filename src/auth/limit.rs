//! Brute-force limits on sign-in: per client IP and per canonical user
//! name, each a token bucket (governor). A refused attempt reports how long
//! to wait, for `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The two limiters.
pub struct Limits {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_user: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    quotas: (NonZeroU32, NonZeroU32),
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits { .. }")
    }
}

impl Limits {
    /// Allow `per_ip` and `per_user` attempts a minute (as bursts, refilled
    /// evenly over the minute).
    pub fn new(per_ip: NonZeroU32, per_user: NonZeroU32) -> Limits {
        Limits {
            by_ip: RateLimiter::keyed(Quota::per_minute(per_ip)),
            by_user: RateLimiter::keyed(Quota::per_minute(per_user)),
            clock: DefaultClock::default(),
            quotas: (per_ip, per_user),
        }
    }

    /// The attempts a minute these buckets allow: per IP, per user.
    pub fn quotas(&self) -> (NonZeroU32, NonZeroU32) {
        self.quotas
    }

    /// Count an attempt from `ip`; `Err(wait)` when over the limit.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.by_ip
            .check_key(&ip.to_canonical())
            .map_err(|n| n.wait_time_from(self.clock.now()))
    }

    /// Count an attempt for `user` (canonical name); `Err(wait)` when over.
    pub fn check_user(&self, user: &str) -> Result<(), Duration> {
        self.by_user
            .check_key(&user.to_string())
            .map_err(|n| n.wait_time_from(self.clock.now()))
    }

    /// Forget keys whose buckets are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.by_ip.retain_recent();
        self.by_user.retain_recent();
    }
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_per_key() {
        let n = |v| NonZeroU32::new(v).expect("non-zero");
        let l = Limits::new(n(3), n(2));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!((0..3).all(|_| l.check_ip(ip).is_ok()));
        let wait = l.check_ip(ip).expect_err("fourth attempt refused");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(
            l.check_ip("192.0.2.2".parse().expect("ip")).is_ok(),
            "other IPs unaffected"
        );
        assert!(l.check_user("alice").is_ok() && l.check_user("alice").is_ok());
        assert!(l.check_user("alice").is_err());
        assert!(l.check_user("bob").is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(19_500)), 20);
        assert_eq!(retry_after_secs(Duration::from_secs(20)), 20);
    }
}
