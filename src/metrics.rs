//! Counters, gauges and histograms kept while serving, in a
//! prometheus-client registry that the admin listener renders as
//! OpenMetrics text. Recording is lock-free (atomics); nothing here does IO.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::session::Rejected;

/// Outcome of a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LoginResult {
    /// Signed in.
    success,
    /// Wrong password or unknown user.
    failure,
    /// Refused by a brute-force limit.
    rate_limited,
    /// The form's CSRF token was missing, stale or forged.
    bad_form,
    /// No turn to check the password in time (`login.concurrent_hashes`).
    busy,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: LoginResult,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderResult {
    provider: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderFetch {
    provider: String,
    kind: &'static str,
}

/// How a request ended, for `usher_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// Answered to the last byte.
    complete,
    /// The client went away before the answer was complete.
    client_abort,
    /// The upstream's body broke off (or stalled) part-way.
    upstream_abort,
    /// Refused before usher's pipeline saw it (a malformed head, a head too
    /// large, a head that did not arrive in time).
    refused,
}

/// Every outcome, in `by_class` order.
const OUTCOMES: [Outcome; 4] = [
    Outcome::complete,
    Outcome::client_abort,
    Outcome::upstream_abort,
    Outcome::refused,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
    outcome: Outcome,
}

/// Process-wide metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<ClassLabel, Counter>,
    /// The `requests` counters per class and outcome, fetched once: no
    /// lock per request.
    by_class: [[Counter; 4]; 6],
    duration: Histogram,
    upstream_duration: Histogram,
    connections: Gauge<i64, AtomicI64>,
    rejections: Family<ReasonLabel, Counter>,
    logins: Family<ResultLabel, Counter>,
    cookies_too_large: Counter,
    api_key_hashes: Counter,
    upstream_connects: Counter,
    accepted: Counter,
    evictions: Counter,
    oidc_sign_ins: Family<ProviderResult, Counter>,
    oidc_bearer: Family<ProviderResult, Counter>,
    oidc_fetches: Family<ProviderFetch, Histogram, fn() -> Histogram>,
    oidc_fetch_errors: Family<ProviderFetch, Counter>,
    store_commands: Family<StoreOp, Histogram, fn() -> Histogram>,
    store_errors: Family<StoreOp, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreOp {
    op: &'static str,
}

/// The session store's operations, for pre-registered labels.
pub const STORE_OPS: [&str; 8] = ["load", "create", "update", "touch", "delete", "list", "revoke", "limit"];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Status classes, in `by_class` order; "none" for a request that ended
/// before it had a status (the client left first).
const CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// Latency buckets: 100 µs to about 50 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.5, 15))
}

impl Metrics {
    /// Register every metric, with every label value pre-created so that
    /// dashboards see zeros rather than gaps.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("usher");
        let requests = Family::<ClassLabel, Counter>::default();
        let by_class =
            CLASSES.map(|class| OUTCOMES.map(|outcome| requests.get_or_create(&ClassLabel { class, outcome }).clone()));
        let m = Metrics {
            requests,
            by_class,
            duration: latency(),
            upstream_duration: latency(),
            connections: Gauge::default(),
            rejections: Family::default(),
            logins: Family::default(),
            cookies_too_large: Counter::default(),
            api_key_hashes: Counter::default(),
            upstream_connects: Counter::default(),
            accepted: Counter::default(),
            evictions: Counter::default(),
            oidc_sign_ins: Family::default(),
            oidc_bearer: Family::default(),
            oidc_fetches: Family::new_with_constructor(latency as fn() -> Histogram),
            oidc_fetch_errors: Family::default(),
            store_commands: Family::new_with_constructor(latency as fn() -> Histogram),
            store_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests, each counted once when it ended: by status class and outcome",
            m.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request (head)",
            m.duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to its response head",
            m.upstream_duration.clone(),
        );
        registry.register("open_connections", "Client connections open now", m.connections.clone());
        registry.register(
            "session_rejections",
            "Session cookies that gave no session, by reason",
            m.rejections.clone(),
        );
        registry.register("logins", "Sign-in attempts, by result", m.logins.clone());
        registry.register(
            "cookies_too_large",
            "Session cookies not set because they would exceed 4096 bytes",
            m.cookies_too_large.clone(),
        );
        registry.register(
            "api_key_hash_checks",
            "argon2 checks of API keys (a verified key is remembered until reload, so this stays near the number of keys in use)",
            m.api_key_hashes.clone(),
        );
        registry.register(
            "upstream_connections_opened",
            "Connections opened to an HTTP/1.1 upstream; near the request count means keep-alive is not holding",
            m.upstream_connects.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted",
            m.accepted.clone(),
        );
        registry.register(
            "idle_connections_evicted",
            "Idle keep-alive connections closed at server.max_connections to make room for a new one",
            m.evictions.clone(),
        );
        registry.register(
            "oidc_sign_ins",
            "Sign-ins through an identity provider, by provider and result",
            m.oidc_sign_ins.clone(),
        );
        registry.register(
            "oidc_bearer_tokens",
            "Bearer tokens from an identity provider, by provider and result",
            m.oidc_bearer.clone(),
        );
        registry.register(
            "oidc_fetch_duration_seconds",
            "Requests to identity providers (discovery, jwks, token, userinfo), by provider and kind",
            m.oidc_fetches.clone(),
        );
        registry.register(
            "oidc_fetch_errors",
            "Failed requests to identity providers, by provider and kind",
            m.oidc_fetch_errors.clone(),
        );
        registry.register(
            "store_duration_seconds",
            "Session store (Redis) operations, by operation, failed ones included",
            m.store_commands.clone(),
        );
        registry.register(
            "store_errors",
            "Session store (Redis) operations that failed or timed out, by operation",
            m.store_errors.clone(),
        );
        for op in STORE_OPS {
            let _ = m.store_errors.get_or_create(&StoreOp { op });
        }
        for r in Rejected::ALL {
            let _ = m.rejections.get_or_create(&ReasonLabel { reason: r.as_str() });
        }
        for result in [
            LoginResult::success,
            LoginResult::failure,
            LoginResult::rate_limited,
            LoginResult::bad_form,
            LoginResult::busy,
        ] {
            let _ = m.logins.get_or_create(&ResultLabel { result });
        }
        Metrics { registry, ..m }
    }

    /// Record how long a request took to its response head.
    pub fn request(&self, took: Duration) {
        self.duration.observe(took.as_secs_f64());
    }

    /// Count a request that has ended: `status` 0 when it had none.
    pub fn request_ended(&self, status: u16, outcome: Outcome) {
        let class = if status == 0 {
            0
        } else {
            usize::from(status / 100).clamp(1, 5)
        };
        let outcome = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.by_class[class][outcome].inc();
    }

    /// Count a new HTTP/1.1 upstream connection.
    pub fn upstream_connected(&self) {
        self.upstream_connects.inc();
    }

    /// Record how long the upstream took to answer.
    pub fn upstream(&self, took: Duration) {
        self.upstream_duration.observe(took.as_secs_f64());
    }

    /// Count an accepted client connection.
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// Count an idle connection asked to close at the cap (when `asked`).
    pub fn evicted(&self, asked: bool) {
        if asked {
            self.evictions.inc();
        }
    }

    /// A client connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// Count a session cookie that gave no session.
    pub fn session_rejected(&self, reason: Rejected) {
        self.rejections
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Count a session cookie that was not set because it was too large.
    pub fn cookie_too_large(&self) {
        self.cookies_too_large.inc();
    }

    /// Count an argon2 check of an API key.
    pub fn api_key_hash(&self) {
        self.api_key_hashes.inc();
    }

    /// Count a sign-in attempt.
    pub fn login(&self, result: LoginResult) {
        self.logins.get_or_create(&ResultLabel { result }).inc();
    }

    /// Count a provider sign-in's end (`success`, `denied`, `failed`, ...).
    pub fn oidc_sign_in(&self, provider: &str, result: &'static str) {
        let labels = ProviderResult {
            provider: provider.to_string(),
            result,
        };
        self.oidc_sign_ins.get_or_create(&labels).inc();
    }

    /// Count a bearer token judged (`valid` or `invalid`).
    pub fn oidc_bearer(&self, provider: &str, result: &'static str) {
        let labels = ProviderResult {
            provider: provider.to_string(),
            result,
        };
        self.oidc_bearer.get_or_create(&labels).inc();
    }

    /// One session store operation: how long it took, and whether it failed.
    pub fn store(&self, op: &'static str, took: Duration, ok: bool) {
        let labels = StoreOp { op };
        self.store_commands.get_or_create(&labels).observe(took.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    /// Record a request to a provider: how long it took, and whether it
    /// failed.
    pub fn oidc_fetch(&self, provider: &str, kind: &'static str, took: Duration, ok: bool) {
        let labels = ProviderFetch {
            provider: provider.to_string(),
            kind,
        };
        self.oidc_fetches.get_or_create(&labels).observe(took.as_secs_f64());
        if !ok {
            self.oidc_fetch_errors.get_or_create(&labels).inc();
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections.get()
    }

    /// The registry in OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_zeros() {
        let m = Metrics::new();
        m.request(Duration::from_millis(3));
        m.request_ended(204, Outcome::complete);
        m.session_rejected(Rejected::BadMac);
        m.login(LoginResult::failure);
        let text = m.render();
        for needle in [
            "usher_requests_total{class=\"2xx\",outcome=\"complete\"} 1",
            "usher_requests_total{class=\"5xx\",outcome=\"upstream_abort\"} 0",
            "usher_requests_total{class=\"none\",outcome=\"client_abort\"} 0",
            "usher_session_rejections_total{reason=\"bad_mac\"} 1",
            "usher_session_rejections_total{reason=\"expired\"} 0",
            "usher_logins_total{result=\"failure\"} 1",
            "usher_cookies_too_large_total 0",
            "usher_open_connections 0",
            "usher_request_duration_seconds_count 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
