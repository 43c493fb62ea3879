//! The Redis session store over fred: one pool of multiplexed connections
//! (standalone, Cluster or Sentinel), reconnecting with backoff capped at
//! 5 s, every command bounded by `timeout`.
//!
//! Layout under `prefix` (every key is one hash slot, so Cluster needs no
//! multi-key commands):
//! - `<prefix>s:<public id>`: a hash with `data` (the session's JSON), `v`
//!   (a version bumped on every write), `user`, `created`, `last_seen`,
//!   `ip`, `ua`; its TTL follows `max_age` and never outlives the session's
//!   `max_lifetime`;
//! - `<prefix>u:<user>`: the set of that user's public ids, for listing and
//!   revoking (stale members are dropped as they are found);
//! - `<prefix>l:<bucket>`: a sign-in leaky bucket, drained by Redis's own
//!   clock so replicas with skewed clocks share one limit.
//!
//! A backend write is a compare-and-set on `v` (a Lua script): the patch is
//! re-applied to the newest fields until it lands, so two requests that
//! write at once both count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fred::prelude::{
    ClientLike, Config as FredConfig, ConnectionConfig, HashesInterface, KeysInterface, LuaInterface,
    PerformanceConfig, Pool, ReconnectPolicy, ServerConfig, SetsInterface,
};
use fred::types::config::{ClusterDiscoveryPolicy, TlsConnector};
use serde_json::{Map, Value};
use tracing::warn;

use super::{StoreError, is_public_id, new_sid, public_id};
use crate::config::store::{Redis, RedisMode, RedisUrl};
use crate::metrics::Metrics;

/// Connections in the pool: commands are pipelined on each, so a few carry
/// a replica's whole load; more than one keeps a reconnect from stalling all.
const POOL_SIZE: usize = 4;
/// Reconnect backoff: from 100 ms, doubling, capped at 5 s (SPEC §7).
const BACKOFF_MIN_MS: u32 = 100;
const BACKOFF_MAX_MS: u32 = 5_000;
/// Concurrent writes to one session retried at most this often (each
/// round one writer wins, so this many writers at once all land; the
/// store timeout bounds the whole loop anyway).
const CAS_ATTEMPTS: usize = 256;

const CREATE: &str = r"
redis.call('HSET', KEYS[1], 'v', '1', 'data', ARGV[1], 'user', ARGV[2], 'created', ARGV[3],
  'last_seen', ARGV[3], 'ip', ARGV[4], 'ua', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1";

/// Write `data` only if the version is still `ARGV[1]`: 1 written, 0 lost
/// the race, -1 gone.
const CAS: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 'data', ARGV[2], 'last_seen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1";

const TOUCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1";

/// A leaky bucket of `ARGV[1]` a minute; `ARGV[2]` = '1' adds one. Returns
/// the milliseconds until one more would fit (0: it fits now).
const BUCKET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local rate = cap / 60000
local level = 0
local stored = redis.call('HMGET', KEYS[1], 'l', 't')
if stored[1] and stored[2] then
  level = math.max(0, tonumber(stored[1]) - (now - tonumber(stored[2])) * rate)
end
if ARGV[2] == '1' then
  level = math.min(level + 1, cap)
  redis.call('HSET', KEYS[1], 'l', tostring(level), 't', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(level / rate) + 1000)
end
local over = level + 1 - cap
if over <= 0 then return 0 end
return math.ceil(over / rate)";

/// What a request knows about the browser a session is made for.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// The `user` field ("" for a session without one).
    pub user: &'a str,
    /// The real client address.
    pub ip: IpAddr,
    /// `User-Agent`, cut to 256 bytes.
    pub user_agent: &'a str,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The fields.
    pub data: Map<String, Value>,
    /// Bumped on every write (the compare-and-set token).
    pub version: String,
    /// The `user` it was indexed under.
    pub user: String,
}

/// What [`RedisStore::update`] did.
#[derive(Debug, PartialEq)]
pub enum Updated {
    /// Written: the fields now stored.
    Written(Map<String, Value>),
    /// The change applied to the newest fields asked for no write.
    Unchanged,
    /// The session was deleted meanwhile (logout, revoke, expiry).
    Gone,
}

/// One session in `GET /sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// [`super::public_id`] of the session id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last refresh or write.
    pub last_seen: u64,
    /// The client that signed in.
    pub client_ip: String,
    /// Its `User-Agent`.
    pub user_agent: String,
}

/// A pool of connections to Redis and the store's key layout.
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    timeout: Duration,
    /// How long a user's index set is kept after its newest session.
    index_ttl: Duration,
    metrics: Arc<Metrics>,
    /// What it was built from (a reload with the same keeps the pool).
    config: Redis,
    /// Whether a connection was ever up (see [`RedisStore::client`]).
    ever_connected: AtomicBool,
    /// Whether [`RedisStore::start`] ran.
    started: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("servers", &self.config.servers)
            .field("mode", &self.config.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        // The connections' tasks outlive the handle: close them.
        if !self.started.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                let _ = pool.quit().await;
            });
        }
    }
}

impl RedisStore {
    /// Build the pool from validated settings (no connection yet: see
    /// [`RedisStore::start`]). `index_ttl` is the longest a session can live.
    pub fn new(cfg: &Redis, index_ttl: Duration, metrics: Arc<Metrics>) -> Result<RedisStore, StoreError> {
        let config = fred_config(cfg)?;
        let timeout = cfg.timeout;
        let connection = ConnectionConfig {
            connection_timeout: timeout,
            internal_command_timeout: timeout,
            // A command is tried once: a retry would wait behind a reconnect.
            max_command_attempts: 1,
            ..ConnectionConfig::default()
        };
        let pool = fred::types::Builder::from_config(config)
            .set_connection_config(connection)
            .set_performance_config(PerformanceConfig {
                default_command_timeout: timeout,
                ..PerformanceConfig::default()
            })
            .set_policy(ReconnectPolicy::new_exponential(0, BACKOFF_MIN_MS, BACKOFF_MAX_MS, 2))
            .build_pool(POOL_SIZE)
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(RedisStore {
            pool,
            prefix: cfg.prefix.clone(),
            timeout,
            index_ttl,
            metrics,
            config: cfg.clone(),
            ever_connected: AtomicBool::new(false),
            started: AtomicBool::new(false),
        })
    }

    /// Start connecting in the background (a task per connection, which
    /// reconnects on its own). Once; nothing without a tokio runtime (as
    /// in `usher check`, which only builds the service).
    pub fn start(&self) {
        if tokio::runtime::Handle::try_current().is_err() || self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        drop(self.pool.connect_pool());
    }

    /// Wait until a connection is up, at most `within` (the command line).
    pub async fn wait_connected(&self, within: Duration) -> Result<(), StoreError> {
        tokio::time::timeout(within, self.pool.wait_for_connect())
            .await
            .map_err(|_| StoreError::Timeout(within))?
            .map_err(|e| StoreError::Failed(e.to_string()))
    }

    /// Whether a connection is up now (`/readyz`).
    pub fn connected(&self) -> bool {
        self.pool.clients().iter().any(ClientLike::is_connected)
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &Redis {
        &self.config
    }

    /// A connected client, or [`StoreError::Down`] at once: a command never
    /// waits behind a reconnect. Only before the first connection was ever
    /// made (usher just started) does it wait for one, within the command's
    /// timeout, so the first requests are not refused for being early.
    async fn client(&self) -> Result<&fred::prelude::Client, StoreError> {
        let client = self.pool.next_connected();
        if client.is_connected() {
            self.ever_connected.store(true, Ordering::Relaxed);
            return Ok(client);
        }
        if !self.ever_connected.load(Ordering::Relaxed) {
            self.pool.wait_for_connect().await.map_err(failed)?;
            let client = self.pool.next_connected();
            if client.is_connected() {
                self.ever_connected.store(true, Ordering::Relaxed);
                return Ok(client);
            }
        }
        Err(StoreError::Down)
    }

    /// Run one operation under the timeout, timed and counted.
    async fn run<T>(
        &self,
        op: &'static str,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        self.metrics.store(op, started.elapsed(), result.is_ok());
        result
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}u:{user}", self.prefix)
    }

    /// Store a new session; its secret id (for the cookie).
    pub async fn create(
        &self,
        data: &Map<String, Value>,
        meta: Meta<'_>,
        now: u64,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let sid = new_sid()?;
        let id = public_id(&sid);
        let json = serde_json::to_string(data).map_err(|e| StoreError::Failed(e.to_string()))?;
        let ua: String = meta.user_agent.chars().take(256).collect();
        let args = vec![
            json,
            meta.user.to_string(),
            now.to_string(),
            meta.ip.to_canonical().to_string(),
            ua,
            millis(ttl),
        ];
        self.run("create", async {
            let c = self.client().await?;
            let _: i64 = c
                .eval(CREATE, vec![self.session_key(&id)], args)
                .await
                .map_err(failed)?;
            if !meta.user.is_empty() {
                let key = self.user_key(meta.user);
                let _: i64 = c.sadd(&key, id.as_str()).await.map_err(failed)?;
                let _: i64 = c.expire(&key, secs(self.index_ttl), None).await.map_err(failed)?;
            }
            Ok(())
        })
        .await?;
        Ok(sid)
    }

    /// The session a cookie's id names; `None` when there is none (never
    /// made, expired, logged out, revoked) or its record is damaged.
    pub async fn load(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        let key = self.session_key(&public_id(sid));
        let fields: HashMap<String, String> = self
            .run("load", async {
                self.client().await?.hgetall(&key).await.map_err(failed)
            })
            .await?;
        Ok(record(fields))
    }

    /// Slide the session's TTL and note the time; false when it is gone.
    pub async fn touch(&self, sid: &str, user: &str, now: u64, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.session_key(&public_id(sid));
        self.run("touch", async {
            let c = self.client().await?;
            let alive: i64 = c
                .eval(TOUCH, vec![key], vec![now.to_string(), millis(ttl)])
                .await
                .map_err(failed)?;
            if alive == 1 && !user.is_empty() {
                let _: i64 = c
                    .expire(self.user_key(user), secs(self.index_ttl), None)
                    .await
                    .map_err(failed)?;
            }
            Ok(alive == 1)
        })
        .await
    }

    /// Apply `change` to the newest stored fields and write the result,
    /// retrying when another request wrote in between (no lost update).
    /// `change` returns `None` when there is nothing to write.
    pub async fn update(
        &self,
        sid: &str,
        mut current: Record,
        mut change: impl FnMut(&Map<String, Value>) -> Option<Map<String, Value>>,
        now: u64,
        ttl: Duration,
    ) -> Result<Updated, StoreError> {
        let key = self.session_key(&public_id(sid));
        self.run("update", async {
            for _ in 0..CAS_ATTEMPTS {
                let Some(next) = change(&current.data) else {
                    return Ok(Updated::Unchanged);
                };
                let json = serde_json::to_string(&next).map_err(|e| StoreError::Failed(e.to_string()))?;
                let args = vec![current.version.clone(), json, now.to_string(), millis(ttl)];
                let c = self.client().await?;
                let written: i64 = c.eval(CAS, vec![key.clone()], args).await.map_err(failed)?;
                match written {
                    1 => return Ok(Updated::Written(next)),
                    -1 => return Ok(Updated::Gone),
                    _ => {
                        let fields: HashMap<String, String> = c.hgetall(&key).await.map_err(failed)?;
                        match record(fields) {
                            Some(newer) => current = newer,
                            None => return Ok(Updated::Gone),
                        }
                    }
                }
            }
            Err(StoreError::Failed(format!(
                "a session write lost {CAS_ATTEMPTS} races in a row to concurrent writes"
            )))
        })
        .await
    }

    /// End one session (logout).
    pub async fn delete(&self, sid: &str, user: &str) -> Result<(), StoreError> {
        let id = public_id(sid);
        self.run("delete", async {
            let c = self.client().await?;
            let _: i64 = c.del(self.session_key(&id)).await.map_err(failed)?;
            if !user.is_empty() {
                let _: i64 = c.srem(self.user_key(user), id.as_str()).await.map_err(failed)?;
            }
            Ok(())
        })
        .await
    }

    /// Every live session of `user`, oldest first.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let index = self.user_key(user);
        self.run("list", async {
            let c = self.client().await?;
            let ids: Vec<String> = c.smembers(&index).await.map_err(failed)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let fields: HashMap<String, String> = c.hgetall(self.session_key(&id)).await.map_err(failed)?;
                if fields.is_empty() {
                    // Expired: drop it from the index.
                    let _: i64 = c.srem(&index, id.as_str()).await.map_err(failed)?;
                    continue;
                }
                let num = |k: &str| fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
                let text = |k: &str| fields.get(k).cloned().unwrap_or_default();
                out.push(SessionInfo {
                    created: num("created"),
                    last_seen: num("last_seen"),
                    client_ip: text("ip"),
                    user_agent: text("ua"),
                    id,
                });
            }
            out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            Ok(out)
        })
        .await
    }

    /// End every session of `user`; how many there were.
    pub async fn revoke_user(&self, user: &str) -> Result<u64, StoreError> {
        let index = self.user_key(user);
        self.run("revoke", async {
            let c = self.client().await?;
            let ids: Vec<String> = c.smembers(&index).await.map_err(failed)?;
            let mut revoked = 0;
            for id in ids {
                let n: u64 = c.del(self.session_key(&id)).await.map_err(failed)?;
                revoked += n;
            }
            let _: i64 = c.del(&index).await.map_err(failed)?;
            Ok(revoked)
        })
        .await
    }

    /// End the session with public id `id`; 0 or 1.
    pub async fn revoke_id(&self, id: &str) -> Result<u64, StoreError> {
        if !is_public_id(id) {
            return Ok(0);
        }
        let key = self.session_key(id);
        self.run("revoke", async {
            let c = self.client().await?;
            let user: Option<String> = c.hget(&key, "user").await.map_err(failed)?;
            let n: u64 = c.del(&key).await.map_err(failed)?;
            if let Some(user) = user.filter(|u| !u.is_empty()) {
                let _: i64 = c.srem(self.user_key(&user), id).await.map_err(failed)?;
            }
            Ok(n)
        })
        .await
    }

    /// The sign-in bucket `name` of `per_minute`: how long until one more
    /// failure fits, after adding one when `add`.
    pub async fn bucket(&self, name: &str, per_minute: u32, add: bool) -> Result<Duration, StoreError> {
        let key = format!("{}l:{name}", self.prefix);
        let args = vec![per_minute.to_string(), if add { "1" } else { "0" }.to_string()];
        let wait: i64 = self
            .run("limit", async {
                self.client().await?.eval(BUCKET, vec![key], args).await.map_err(failed)
            })
            .await?;
        Ok(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
    }
}

/// A stored hash as a [`Record`]; `None` when absent or damaged.
fn record(mut fields: HashMap<String, String>) -> Option<Record> {
    if fields.is_empty() {
        return None;
    }
    let parsed = fields
        .get("data")
        .and_then(|d| serde_json::from_str::<Map<String, Value>>(d).ok());
    let (Some(data), Some(version)) = (parsed, fields.remove("v")) else {
        warn!("a stored session is damaged (no data or version); treated as signed out");
        return None;
    };
    Some(Record {
        data,
        version,
        user: fields.remove("user").unwrap_or_default(),
    })
}

fn failed(e: fred::error::Error) -> StoreError {
    if matches!(e.kind(), fred::error::ErrorKind::Timeout) {
        return StoreError::Failed("a command timed out".into());
    }
    StoreError::Failed(e.details().to_string())
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

/// fred's configuration for validated settings.
fn fred_config(cfg: &Redis) -> Result<FredConfig, StoreError> {
    let parse = |url: &RedisUrl| {
        FredConfig::from_url_centralized(url.expose()).map_err(|_| StoreError::Failed(format!("cannot use {url}")))
    };
    let first = cfg
        .servers
        .first()
        .ok_or_else(|| StoreError::Failed("no Redis server configured".into()))?;
    let mut config = parse(first)?;
    let server_of = |url: &RedisUrl| match parse(url)?.server {
        ServerConfig::Centralized { server } => Ok(server),
        _ => Err(StoreError::Failed(format!("cannot use {url}"))),
    };
    match cfg.mode {
        RedisMode::Standalone => {}
        RedisMode::Cluster => {
            let hosts = cfg.servers.iter().map(server_of).collect::<Result<_, _>>()?;
            config.server = ServerConfig::Clustered {
                hosts,
                policy: ClusterDiscoveryPolicy::default(),
            };
        }
        RedisMode::Sentinel => {
            let hosts = cfg.servers.iter().map(server_of).collect::<Result<_, _>>()?;
            config.server = ServerConfig::Sentinel {
                hosts,
                service_name: cfg.sentinel_service.clone().unwrap_or_default(),
            };
        }
    }
    config.tls = if first.tls() {
        // usher's TLS client (the aws-lc-rs provider, webpki roots, the
        // optional CA file), not fred's own defaults.
        let tls = crate::tls::client_config(cfg.ca_file.as_deref()).map_err(|e| StoreError::Failed(e.to_string()))?;
        Some(TlsConnector::from(tls).into())
    } else {
        None
    };
    Ok(config)
}
