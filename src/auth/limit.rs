//! Brute-force limits on sign-in (SPEC §4), counted in failures only.
//!
//! Three leaky buckets, each filled by one failed credential check (a wrong
//! password or an unknown user; never a success, a CSRF failure or a
//! malformed form) and drained evenly over a minute:
//!
//! - per client (`login.ip_attempts_per_minute`): the real client address,
//!   read from `X-Forwarded-For` when the peer is a trusted proxy, so that
//!   users behind one front proxy do not share one bucket;
//! - per user name *and* client (`login.user_attempts_per_minute`): one
//!   client guessing one user's password is stopped, while the same user
//!   signing in from elsewhere is not locked out by it;
//! - per user name across all clients: a *brake*, never a refusal. Once a
//!   user has more failures in a minute than [`BRAKE_FACTOR`] times the
//!   per-user limit (a guess spread over many addresses), every check for
//!   that user waits [`BRAKE_DELAY`] first. A correct password from a
//!   client that has not failed still signs in.
//!
//! A full bucket refuses further attempts (429) and says how long until one
//! more would be accepted, for `Retry-After`. Pure apart from the lock:
//! every method takes `now`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::store::{RedisStore, StoreError};

/// The per-user brake engages past this many times the per-user limit.
pub const BRAKE_FACTOR: u32 = 4;
/// How long a braked check waits before it runs.
pub const BRAKE_DELAY: Duration = Duration::from_secs(1);

/// The three buckets of every client and user name seen recently.
pub struct Limits {
    by_client: Buckets<IpAddr>,
    by_user_client: Buckets<(String, IpAddr)>,
    by_user: Buckets<String>,
    quotas: (NonZeroU32, NonZeroU32),
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits { .. }")
    }
}

impl Limits {
    /// Allow `per_client` failures a minute from one client and `per_user`
    /// for one user name from one client.
    pub fn new(per_client: NonZeroU32, per_user: NonZeroU32) -> Limits {
        let brake = brake(per_user);
        Limits {
            by_client: Buckets::new(per_client),
            by_user_client: Buckets::new(per_user),
            by_user: Buckets::new(brake),
            quotas: (per_client, per_user),
        }
    }

    /// The failures a minute these buckets allow: per client, per user.
    pub fn quotas(&self) -> (NonZeroU32, NonZeroU32) {
        self.quotas
    }

    /// Whether `client` may try a password for `user` (canonical name)
    /// now, without counting anything; `Err(wait)` when a bucket is full.
    pub fn allowed(&self, client: IpAddr, user: &str, now: Instant) -> Result<(), Duration> {
        let client = client.to_canonical();
        let by_client = self.by_client.wait(&client, now);
        let by_user = self.by_user_client.wait(&(user.to_string(), client), now);
        match by_client.max(by_user) {
            Duration::ZERO => Ok(()),
            wait => Err(wait),
        }
    }

    /// Whether checks for `user` are braked now (see the module docs).
    pub fn braked(&self, user: &str, now: Instant) -> bool {
        self.by_user.wait(&user.to_string(), now) > Duration::ZERO
    }

    /// Count one failed check of `user`'s password from `client`.
    pub fn failed(&self, client: IpAddr, user: &str, now: Instant) {
        let client = client.to_canonical();
        self.by_client.fill(client, now);
        self.by_user_client.fill((user.to_string(), client), now);
        self.by_user.fill(user.to_string(), now);
    }

    /// Forget buckets that have drained empty, bounding memory.
    pub fn forget_idle(&self, now: Instant) {
        self.by_client.forget_empty(now);
        self.by_user_client.forget_empty(now);
        self.by_user.forget_empty(now);
    }
}

/// Leaky buckets by key: each failure adds one, `per_minute` drain away
/// each minute, a bucket holding `per_minute` is full.
struct Buckets<K> {
    per_minute: f64,
    levels: Mutex<HashMap<K, Level>>,
}

/// A bucket's level as of `at`.
#[derive(Clone, Copy)]
struct Level {
    failures: f64,
    at: Instant,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new(per_minute: NonZeroU32) -> Self {
        Buckets {
            per_minute: f64::from(per_minute.get()),
            levels: Mutex::new(HashMap::new()),
        }
    }

    /// Failures drained per second.
    fn rate(&self) -> f64 {
        self.per_minute / 60.0
    }

    fn level_now(&self, level: Level, now: Instant) -> f64 {
        let drained = now.saturating_duration_since(level.at).as_secs_f64() * self.rate();
        (level.failures - drained).max(0.0)
    }

    /// How long until one more failure fits; zero when it fits now.
    fn wait(&self, key: &K, now: Instant) -> Duration {
        let levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(level) = levels.get(key) else {
            return Duration::ZERO;
        };
        let over = self.level_now(*level, now) + 1.0 - self.per_minute;
        if over <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(over / self.rate())
        }
    }

    fn fill(&self, key: K, now: Instant) {
        let mut levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        let level = levels.get(&key).map_or(0.0, |l| self.level_now(*l, now));
        let failures = (level + 1.0).min(self.per_minute);
        levels.insert(key, Level { failures, at: now });
    }

    fn forget_empty(&self, now: Instant) {
        let mut levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        levels.retain(|_, level| {
            let drained = now.saturating_duration_since(level.at).as_secs_f64() * self.per_minute / 60.0;
            drained < level.failures
        });
    }
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Where the buckets live: in this process, or in the Redis session store,
/// where every replica fills and reads the same ones (SPEC §7).
pub enum Limiter {
    /// This process's buckets.
    Local(Arc<Limits>),
    /// Buckets in Redis, drained by its clock.
    Shared {
        /// The store.
        store: Arc<RedisStore>,
        /// Failures a minute: per client, per user from one client.
        quotas: (NonZeroU32, NonZeroU32),
    },
}

impl Limiter {
    /// [`Limits::allowed`]; an error when the store cannot be asked (the
    /// caller refuses: a limit that cannot be read does not hold).
    pub async fn allowed(&self, client: IpAddr, user: &str) -> Result<Result<(), Duration>, StoreError> {
        match self {
            Limiter::Local(l) => Ok(l.allowed(client, user, Instant::now())),
            Limiter::Shared { store, quotas } => {
                let (by_client, by_user) = shared_names(client, user);
                let (a, b) = tokio::join!(
                    store.bucket(&by_client, quotas.0.get(), false),
                    store.bucket(&by_user, quotas.1.get(), false)
                );
                Ok(match a?.max(b?) {
                    Duration::ZERO => Ok(()),
                    wait => Err(wait),
                })
            }
        }
    }

    /// [`Limits::braked`].
    pub async fn braked(&self, user: &str) -> Result<bool, StoreError> {
        match self {
            Limiter::Local(l) => Ok(l.braked(user, Instant::now())),
            Limiter::Shared { store, quotas } => {
                let wait = store.bucket(&format!("b:{user}"), brake(quotas.1).get(), false).await?;
                Ok(wait > Duration::ZERO)
            }
        }
    }

    /// [`Limits::failed`].
    pub async fn failed(&self, client: IpAddr, user: &str) -> Result<(), StoreError> {
        match self {
            Limiter::Local(l) => {
                l.failed(client, user, Instant::now());
                Ok(())
            }
            Limiter::Shared { store, quotas } => {
                let (by_client, by_user) = shared_names(client, user);
                let brake_name = format!("b:{user}");
                let (a, b, c) = tokio::join!(
                    store.bucket(&by_client, quotas.0.get(), true),
                    store.bucket(&by_user, quotas.1.get(), true),
                    store.bucket(&brake_name, brake(quotas.1).get(), true)
                );
                a.and(b).and(c).map(|_| ())
            }
        }
    }
}

/// The brake's allowance for a per-user limit.
fn brake(per_user: NonZeroU32) -> NonZeroU32 {
    per_user.saturating_mul(NonZeroU32::new(BRAKE_FACTOR).unwrap_or(NonZeroU32::MIN))
}

/// Bucket names in the store: the address first (it holds no space), so
/// no user name can make two buckets one.
fn shared_names(client: IpAddr, user: &str) -> (String, String) {
    let client = client.to_canonical();
    (format!("c:{client}"), format!("uc:{client} {user}"))
}

#[cfg(test)]
mod tests;
