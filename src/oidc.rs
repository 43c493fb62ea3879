//! Sign-in with OpenID Connect providers (SPEC §6): discovery, keys, the
//! authorization code flow with PKCE, ID-token and bearer-token checks.
//!
//! Each provider is discovered in the background, retried with backoff
//! capped at [`RETRY_CAP`] until it answers, then re-read every
//! [`REFRESH`]; a failed re-read keeps what was known (an outage neither
//! signs anyone in nor out). Its JWKS is fetched again when a token names
//! an unknown `kid` (key rotation), at most once per [`REFETCH_GAP`], one
//! fetch at a time. This module speaks to providers and checks tokens; the
//! pages and redirects around it are `auth::oidc`'s.

pub mod claims;
pub mod discovery;
pub mod fetch;
pub mod flow;
pub mod token;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use crate::config::oidc::Provider as Config;
use crate::metrics::Metrics;
use crate::tls::TlsError;
use claims::{Person, Refused};
use discovery::Metadata;
use fetch::{ClientAuth, FetchError, Fetcher};
use flow::Flow;
use token::{Expect, KeySet, TokenError};

/// Longest wait between discovery attempts of a provider not yet reached.
pub const RETRY_CAP: Duration = Duration::from_secs(10);
/// How often a reached provider's metadata and keys are read again.
pub const REFRESH: Duration = Duration::from_secs(15 * 60);
/// Shortest time between two JWKS fetches caused by unknown `kid`s.
pub const REFETCH_GAP: Duration = Duration::from_secs(5);

/// Every configured provider.
#[derive(Default)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

/// One provider and what usher knows of it.
pub struct Provider {
    /// Its `[[oidc]]` table.
    pub config: Config,
    fetcher: Fetcher,
    known: ArcSwapOption<Known>,
    /// When an unknown `kid` last caused a JWKS fetch.
    last_refetch: Mutex<Option<Instant>>,
    /// One unknown-`kid` fetch at a time.
    refetching: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

/// A provider's metadata and keys, once discovered.
#[derive(Debug)]
pub struct Known {
    pub metadata: Metadata,
    pub keys: KeySet,
}

/// Why a sign-in through a provider did not end signed in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Not discovered yet (or never reachable).
    #[error("the provider has not been reached yet")]
    Unavailable,
    /// The token endpoint refused the code or failed.
    #[error("the token request failed: {0}")]
    Token(FetchError),
    /// The token response held no ID token.
    #[error("the token response has no id_token")]
    NoIdToken,
    /// The ID token failed a check.
    #[error("the ID token was refused: {0}")]
    IdToken(TokenError),
    /// The userinfo endpoint failed or described someone else.
    #[error("the userinfo request failed: {0}")]
    Userinfo(String),
    /// No claim names a user.
    #[error("no claim names the user")]
    NoUser,
    /// The allow lists refused this person.
    #[error("refused by the allow lists")]
    Refused(Refused),
}

impl SignInError {
    /// The metric label.
    pub fn result(&self) -> &'static str {
        match self {
            SignInError::Unavailable => "unavailable",
            SignInError::Token(FetchError::Status { .. }) => "code_refused",
            SignInError::Token(_) | SignInError::Userinfo(_) => "provider_error",
            SignInError::NoIdToken | SignInError::NoUser => "bad_response",
            SignInError::IdToken(_) => "bad_id_token",
            SignInError::Refused(_) => "denied",
        }
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// The provider is not discovered yet: the token cannot be checked.
    Unavailable,
    /// The token failed a check.
    Invalid(TokenError),
    /// Good token, no user claim.
    NoUser,
    /// Good token, refused by the allow lists.
    Refused(Refused),
}

impl Providers {
    /// Clients for every provider; nothing is fetched until [`start`](Self::start).
    pub fn new(configs: &[Config], metrics: &Arc<Metrics>) -> Result<Providers, TlsError> {
        let list = configs
            .iter()
            .map(|c| {
                let fetcher = Fetcher::new(&c.id, c.timeout, c.ca_file.as_deref(), Arc::clone(metrics))?;
                Ok(Arc::new(Provider {
                    config: c.clone(),
                    fetcher,
                    known: ArcSwapOption::empty(),
                    last_refetch: Mutex::new(None),
                    refetching: tokio::sync::Mutex::new(()),
                    metrics: Arc::clone(metrics),
                }))
            })
            .collect::<Result<_, TlsError>>()?;
        Ok(Providers { list })
    }

    /// Start discovering each provider in the background (on the current
    /// tokio runtime; without one, nothing starts). The tasks end when
    /// their provider is dropped.
    pub fn start(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for p in &self.list {
            runtime.spawn(watch(Arc::downgrade(p)));
        }
    }

    /// Keep what `previous` learnt of providers whose endpoint is the
    /// same (a reload does not make a provider unavailable).
    pub fn carry_over(&self, previous: &Providers) {
        for p in &self.list {
            let old = previous.list.iter().find(|o| o.config.same_endpoint(&p.config));
            if let Some(known) = old.and_then(|o| o.known.load_full())
                && p.known.load().is_none()
            {
                p.known.store(Some(known));
            }
        }
    }

    /// The provider with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.config.id == id)
    }

    /// Every provider, in the order of the file.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.list.iter()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether any provider accepts bearer tokens.
    pub fn accept_bearer(&self) -> bool {
        self.list.iter().any(|p| p.config.accept_bearer)
    }

    /// The provider with `accept_bearer` whose issuer is `iss`.
    pub fn bearer_issuer(&self, iss: &str) -> Option<&Arc<Provider>> {
        self.list
            .iter()
            .find(|p| p.config.accept_bearer && p.config.issuer == iss)
    }
}

/// Discover `provider` until it answers, then keep it fresh.
async fn watch(provider: Weak<Provider>) {
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let Some(p) = provider.upgrade() else { return };
        let wait = match p.discover().await {
            Ok(known) => {
                if failing || p.known.load().is_none() {
                    info!(
                        provider = %p.config.id,
                        keys = known.keys.len(),
                        "identity provider discovered"
                    );
                }
                p.known.store(Some(Arc::new(known)));
                failing = false;
                backoff = Duration::from_secs(1);
                REFRESH
            }
            Err(why) => {
                if !failing {
                    warn!(provider = %p.config.id, issuer = %p.config.issuer, error = %why,
                        "identity provider unreachable; its sign-in answers 503 until it is discovered, retrying");
                } else {
                    debug!(provider = %p.config.id, error = %why, "identity provider still unreachable");
                }
                failing = true;
                let wait = backoff;
                backoff = (backoff * 2).min(RETRY_CAP);
                // Once known, a failed re-read keeps the old metadata and
                // keys and tries again soon.
                wait
            }
        };
        drop(p);
        tokio::time::sleep(wait).await;
    }
}

impl Provider {
    /// Its metadata and keys, once discovered.
    pub fn known(&self) -> Option<Arc<Known>> {
        self.known.load_full()
    }

    /// Fetch and check the discovery document, then the JWKS.
    pub async fn discover(&self) -> Result<Known, String> {
        let url = discovery::url(&self.config.issuer);
        let doc = self
            .fetcher
            .get_json("discovery", &url, None)
            .await
            .map_err(|e| format!("discovery at {url}: {e}"))?;
        let metadata = discovery::parse(doc, &self.config)?;
        let keys = self.fetch_keys(&metadata.jwks_uri).await?;
        Ok(Known { metadata, keys })
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<KeySet, String> {
        let doc = self
            .fetcher
            .get_json("jwks", jwks_uri, None)
            .await
            .map_err(|e| format!("JWKS at {jwks_uri}: {e}"))?;
        KeySet::from_jwks(&doc)
    }

    /// The authorization request for `flow` (code flow, PKCE S256).
    pub fn authorization_url(&self, known: &Known, flow: &Flow) -> String {
        let c = &self.config;
        let scope = c.scopes.join(" ");
        let challenge = flow.challenge();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs([
            ("response_type", "code"),
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_url.as_str()),
            ("scope", scope.as_str()),
            ("state", flow.state.as_str()),
            ("nonce", flow.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let endpoint = &known.metadata.authorization_endpoint;
        let join = if endpoint.contains('?') { '&' } else { '?' };
        format!("{endpoint}{join}{}", query.finish())
    }

    /// Where the browser ends the provider's session (RP-initiated
    /// logout), when the provider offers it.
    pub fn end_session_url(&self) -> Option<String> {
        let known = self.known()?;
        let endpoint = known.metadata.end_session_endpoint.as_deref()?;
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs([
            ("client_id", self.config.client_id.as_str()),
            (
                "post_logout_redirect_uri",
                self.config.post_logout_redirect_url.as_str(),
            ),
        ]);
        let join = if endpoint.contains('?') { '&' } else { '?' };
        Some(format!("{endpoint}{join}{}", query.finish()))
    }

    /// Finish a sign-in: exchange `code`, verify the ID token against the
    /// flow's nonce, read userinfo for missing claims, map them and apply
    /// the allow lists.
    pub async fn complete(&self, code: &str, flow: &Flow, now: u64) -> Result<Person, SignInError> {
        let known = self.known().ok_or(SignInError::Unavailable)?;
        let c = &self.config;
        let auth = match &c.client_secret {
            Some(s) if known.metadata.secret_in_form => ClientAuth::Post {
                id: &c.client_id,
                secret: s.expose(),
            },
            Some(s) => ClientAuth::Basic {
                id: &c.client_id,
                secret: s.expose(),
            },
            None => ClientAuth::Public { id: &c.client_id },
        };
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", c.redirect_url.as_str()),
            ("code_verifier", flow.verifier.as_str()),
        ];
        let tokens = self
            .fetcher
            .post_form("token", &known.metadata.token_endpoint, &fields, &auth)
            .await
            .map_err(SignInError::Token)?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(SignInError::NoIdToken)?;
        let expect = Expect {
            issuer: &c.issuer,
            audiences: std::slice::from_ref(&c.client_id),
            client_id: Some(&c.client_id),
            nonce: Some(&flow.nonce),
            skew: c.clock_skew.as_secs(),
            now,
        };
        let mut claims = self.verify(id_token, &expect).await.map_err(SignInError::IdToken)?;
        let access = tokens.get("access_token").and_then(Value::as_str);
        if let (true, Some(url), Some(access)) = (
            claims::missing(&claims, c),
            known.metadata.userinfo_endpoint.as_deref(),
            access,
        ) {
            self.merge_userinfo(&mut claims, url, access).await?;
        }
        let person = claims::person(&claims, c).ok_or(SignInError::NoUser)?;
        claims::allowed(&person, c).map_err(SignInError::Refused)?;
        Ok(person)
    }

    /// Add the userinfo claims the ID token lacks; its `sub` must be the
    /// ID token's (OpenID Connect Core §5.3.2).
    async fn merge_userinfo(
        &self,
        claims: &mut Map<String, Value>,
        url: &str,
        access: &str,
    ) -> Result<(), SignInError> {
        let info = self
            .fetcher
            .get_json("userinfo", url, Some(access))
            .await
            .map_err(|e| SignInError::Userinfo(e.to_string()))?;
        let Value::Object(info) = info else {
            return Err(SignInError::Userinfo("not an object".into()));
        };
        if info.get("sub") != claims.get("sub") {
            return Err(SignInError::Userinfo("it describes another subject".into()));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
        Ok(())
    }

    /// A bearer token from an API client: the provider's keys, its
    /// `audiences`, then the same claim mapping and allow lists as a
    /// browser sign-in.
    pub async fn verify_bearer(&self, token: &str, now: u64) -> Result<Person, BearerError> {
        if self.known().is_none() {
            return Err(BearerError::Unavailable);
        }
        let c = &self.config;
        let claims = self
            .verify(
                token,
                &Expect {
                    issuer: &c.issuer,
                    audiences: &c.audiences,
                    client_id: None,
                    nonce: None,
                    skew: c.clock_skew.as_secs(),
                    now,
                },
            )
            .await
            .map_err(BearerError::Invalid)?;
        let person = claims::person(&claims, c).ok_or(BearerError::NoUser)?;
        claims::allowed(&person, c).map_err(BearerError::Refused)?;
        Ok(person)
    }

    /// Verify with the known keys; on an unknown `kid`, fetch the JWKS
    /// again (rate-limited) and try once more.
    async fn verify(&self, token: &str, expect: &Expect<'_>) -> Result<Map<String, Value>, TokenError> {
        let known = self.known().ok_or(TokenError::UnknownKey)?;
        match token::verify(token, &known.keys, &known.metadata.algorithms, expect) {
            Err(TokenError::UnknownKey) => {}
            other => return other,
        }
        let fresh = self.refetch_keys(&known).await.ok_or(TokenError::UnknownKey)?;
        token::verify(token, &fresh.keys, &fresh.metadata.algorithms, expect)
    }

    /// New keys after an unknown `kid`, unless another request just
    /// fetched them or the last such fetch was under [`REFETCH_GAP`] ago.
    async fn refetch_keys(&self, seen: &Arc<Known>) -> Option<Arc<Known>> {
        let _one = self.refetching.lock().await;
        let current = self.known()?;
        if !Arc::ptr_eq(&current, seen) {
            // Someone fetched while this request waited for its turn.
            return Some(current);
        }
        {
            let mut last = self.last_refetch.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < REFETCH_GAP) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match self.fetch_keys(&current.metadata.jwks_uri).await {
            Ok(keys) => {
                info!(provider = %self.config.id, kids = ?keys.kids(), "identity provider keys fetched again (unknown kid)");
                let known = Arc::new(Known {
                    metadata: current.metadata.clone(),
                    keys,
                });
                self.known.store(Some(Arc::clone(&known)));
                Some(known)
            }
            Err(why) => {
                warn!(provider = %self.config.id, error = %why, "identity provider keys could not be fetched again");
                None
            }
        }
    }

    /// Count a sign-in's end.
    pub fn count(&self, result: &'static str) {
        self.metrics.oidc_sign_in(&self.config.id, result);
    }

    /// Count a bearer token judged.
    pub fn count_bearer(&self, result: &'static str) {
        self.metrics.oidc_bearer(&self.config.id, result);
    }
}
