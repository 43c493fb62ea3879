//! usher's own endpoints under the reserved prefix (SPEC §4): sign-in,
//! sign-out and the session document. They create and destroy sessions and
//! are never forwarded.
//!
//! Sign-in checks, in order: the form's CSRF token, the brute-force limits
//! for the client and for the user name from that client (`limit`: only
//! failed credential checks count), the per-user brake, then the password
//! (off the async executor). Every failure after the CSRF check looks the
//! same to the client, whatever the reason. Password hashes run a few at a time
//! (`login.concurrent_hashes`, default one per CPU): each Argon2 check
//! takes some 19 MiB and a core for tens of milliseconds, so a flood of
//! sign-ins from many addresses waits in line instead of starting a thread
//! and a buffer each. A sign-in that waits longer than [`HASH_WAIT`] is
//! answered 503.

pub mod csrf;
pub mod limit;
pub mod machine;
mod oidc;
pub mod page;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::assertion::Signer;
use crate::config::Config;
use crate::conn::RequestBody;
use crate::metrics::{LoginResult, Metrics};
use crate::oidc::Providers;
use crate::redirect::AllowedHosts;
use crate::respond;
use crate::respond::Body;
use crate::session::codec::{AUTH_METHOD_FIELD, AUTH_TIME_FIELD, BY_PASSWORD};
use crate::session::cookie;
use crate::store::{Meta, RedisStore, StoreError};
use crate::users;

/// Largest form body accepted by the endpoints.
const FORM_LIMIT: usize = 16 * 1024;
/// The one message for every failed sign-in.
const FAILED: &str = "Invalid username or password.";
/// How long a sign-in waits for its turn to check a password.
pub const HASH_WAIT: Duration = Duration::from_secs(10);

/// The endpoints and the state they keep (brute-force buckets).
pub struct Auth {
    config: Arc<Config>,
    limits: limit::Limiter,
    /// The Redis session store, when configured.
    store: Option<Arc<RedisStore>>,
    /// The identity assertion's signer, for `<prefix>/jwks.json`.
    signer: Option<Arc<Signer>>,
    /// `[[api_keys]]` and the ones verified since the last reload.
    api_keys: machine::ApiKeys,
    metrics: Arc<Metrics>,
    /// Turns at checking a password, and how many there are.
    hashing: (Arc<Semaphore>, usize),
    /// `[[oidc]]` providers.
    providers: Arc<Providers>,
}

/// How a password check ended.
enum Checked {
    /// The new session's payload.
    SignedIn(Map<String, Value>),
    /// Wrong password or unknown user.
    Failed,
    /// No turn to check it within [`HASH_WAIT`].
    Busy,
}

/// What the pipeline already knows about the request.
pub struct Context<'a> {
    /// The real client: the TCP peer, or the address a trusted proxy
    /// names in `X-Forwarded-For`.
    pub ip: IpAddr,
    /// The request id (`X-Request-Id`), for log lines.
    pub request_id: &'a str,
    /// The verified session, if any.
    pub session: Option<&'a Map<String, Value>>,
    /// Redis store: the session's id and indexed user.
    pub stored: Option<(&'a str, &'a str)>,
    /// Redis store: a session cookie came but the store could not be asked.
    pub unavailable: bool,
    /// When that session was issued.
    pub issued_at: u64,
    /// Unix seconds.
    pub now: u64,
    /// Browser (HTML) or API (JSON) answers.
    pub html: bool,
    /// The host, when the request came over plain HTTP to a host that is
    /// not loopback while the cookies are `Secure`: the browser will drop
    /// them, and signing in cannot work.
    pub insecure_host: Option<&'a str>,
}

impl Auth {
    /// Build the endpoints for `config`.
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        providers: Arc<Providers>,
        store: Option<Arc<RedisStore>>,
        signer: Option<Arc<Signer>>,
    ) -> Auth {
        let quotas = (config.login.per_ip, config.login.per_user);
        let limits = match &store {
            // One limit across replicas: the buckets live in the store.
            Some(store) => limit::Limiter::Shared {
                store: Arc::clone(store),
                quotas,
            },
            None => limit::Limiter::Local(Arc::new(limit::Limits::new(quotas.0, quotas.1))),
        };
        let turns = crate::per_cpu(config.login.concurrent_hashes);
        let api_keys = machine::ApiKeys::new(&config.api_keys);
        Auth {
            api_keys,
            config,
            limits,
            store,
            signer,
            metrics,
            hashing: (Arc::new(Semaphore::new(turns)), turns),
            providers,
        }
    }

    /// `rd` checked against this configuration's allowed hosts.
    pub(crate) fn rd(&self, rd: &str) -> String {
        safe_rd(rd, &self.config.forward_auth.allowed_hosts)
    }

    /// Keep counting sign-in attempts in `previous`'s buckets when the
    /// limits did not change, so a reload does not hand an attacker a
    /// fresh allowance.
    pub fn carry_over(&mut self, previous: &Auth) {
        if let (limit::Limiter::Local(old), limit::Limiter::Local(new)) = (&previous.limits, &self.limits)
            && old.quotas() == new.quotas()
        {
            self.limits = limit::Limiter::Local(Arc::clone(old));
        }
        // Checks still running under the old generation hold its turns.
        if previous.hashing.1 == self.hashing.1 {
            self.hashing.0 = Arc::clone(&previous.hashing.0);
        }
    }

    /// Use `store` (the previous generation's, same settings) instead of
    /// the one this generation made.
    pub fn use_store(&mut self, store: Arc<RedisStore>) {
        if let limit::Limiter::Shared { store: s, .. } = &mut self.limits {
            *s = Arc::clone(&store);
        }
        self.store = Some(store);
    }

    /// Forget idle brute-force buckets (called periodically; the store's
    /// expire by themselves).
    pub fn forget_idle(&self) {
        if let limit::Limiter::Local(l) = &self.limits {
            l.forget_idle(Instant::now());
        }
    }

    /// The session phases' view at `now`.
    fn sessions(&self, now: u64) -> crate::carrier::Sessions<'_> {
        crate::carrier::Sessions::new(&self.config, self.store.as_deref(), &self.metrics, now)
    }

    /// Answer a request for `<prefix><endpoint>`.
    pub async fn handle(&self, req: Request<RequestBody>, endpoint: &str, cx: Context<'_>) -> Response<Body> {
        if let Some(rest) = endpoint.strip_prefix("/oidc/")
            && matches!(req.method(), &Method::GET | &Method::HEAD)
        {
            return self.oidc(rest, req.uri().query(), req.headers(), &cx).await;
        }
        match (endpoint, req.method()) {
            ("/login", &Method::GET | &Method::HEAD) => {
                let auto = self.config.login.auto_redirect.as_deref();
                if let Some(provider) = auto.and_then(|id| self.providers.get(id)) {
                    // Straight to the provider, unless someone is signed in
                    // (the page then offers to continue or switch).
                    if cx.session.and_then(crate::carrier::identity).is_none() {
                        return self.oidc_start(provider, req.uri().query(), &cx);
                    }
                }
                self.login_page(req.headers(), self.rd(&rd_param(req.uri().query())), None, "", &cx)
            }
            ("/login", &Method::POST) => self.login(req, &cx).await,
            ("/logout", &Method::GET | &Method::HEAD) => self.logout_page(self.rd(&rd_param(req.uri().query())), &cx),
            ("/logout", &Method::POST) => self.logout(req, &cx).await,
            ("/session", &Method::GET | &Method::HEAD) => self.session_doc(&cx),
            ("/jwks.json", &Method::GET | &Method::HEAD) if self.signer.is_some() => self.jwks(),
            ("/login" | "/logout" | "/session", _) => {
                let mut res = respond::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "Method not allowed.",
                    cx.html,
                );
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
                res
            }
            _ => respond::error(StatusCode::NOT_FOUND, "not_found", "No such page.", cx.html),
        }
    }

    /// The sign-in page with a CSRF token, reusing a fresh form cookie.
    fn login_page(
        &self,
        headers: &HeaderMap,
        rd: String,
        error: Option<&str>,
        username: &str,
        cx: &Context<'_>,
    ) -> Response<Body> {
        let s = &self.config.session;
        let existing = cookie::find(headers, s.csrf_cookie.name())
            .ok()
            .filter(|c| csrf::is_fresh(&s.keys, c, cx.now));
        let (form_cookie, new) = match existing {
            Some(c) => (c.to_string(), false),
            None => (csrf::cookie_value(&s.keys, cx.now, &nonce()), true),
        };
        let login = &self.config.login;
        let action = format!("{}/login", self.config.server.prefix);
        let signed_in = cx
            .session
            .and_then(crate::carrier::identity)
            .map(|who| (who.user().to_string(), format!("{}/logout", self.config.server.prefix)));
        let html = page::login(&page::LoginForm {
            app_name: &login.app_name,
            action: &action,
            csrf: &csrf::token(&s.keys, &form_cookie),
            rd: &rd,
            username,
            error,
            hint: login.hint.as_deref(),
            notice: cx.insecure_host.map(insecure_notice).as_deref(),
            signed_in: signed_in.as_ref().map(|(u, l)| (u.as_str(), l.as_str())),
            providers: &self.buttons(&rd),
            password: !login.users.is_empty(),
        });
        let status = if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        let mut res = html_response(status, html);
        if let (true, Ok(v)) = (new, cookie::set_cookie(&s.csrf_cookie, &form_cookie)) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        res
    }

    /// One (start URL, label) per provider, carrying `rd`.
    fn buttons(&self, rd: &str) -> Vec<(String, String)> {
        let rd: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        self.providers
            .iter()
            .map(|p| {
                let href = format!("{}/oidc/{}/start?rd={rd}", self.config.server.prefix, p.config.id);
                (href, p.config.display_name.clone())
            })
            .collect()
    }

    async fn login(&self, req: Request<RequestBody>, cx: &Context<'_>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let form = match read_form(body).await {
            Ok(f) => f,
            Err(status) => return respond::error(status, "bad_form", "The form could not be read.", cx.html),
        };
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        let rd = self.rd(field("rd"));
        let username = field("username").to_string();
        let s = &self.config.session;
        let form_cookie = cookie::find(&parts.headers, s.csrf_cookie.name()).unwrap_or("");
        if !csrf::verify(&s.keys, form_cookie, field("csrf"), cx.now) {
            self.metrics.login(LoginResult::bad_form);
            let msg = match cx.insecure_host {
                // The likely cause: the browser dropped the Secure cookie.
                Some(_) if form_cookie.is_empty() => {
                    "Your browser did not send the sign-in cookie back: this page was reached over plain HTTP \
                     and the cookies are Secure (see the note above)."
                }
                _ => "The sign-in form expired. Please try again.",
            };
            if !cx.html {
                return respond::error(StatusCode::FORBIDDEN, "bad_form", msg, false);
            }
            let mut res = self.login_page(&HeaderMap::new(), rd, Some(msg), &username, cx);
            *res.status_mut() = StatusCode::FORBIDDEN;
            return res;
        }
        let canonical = users::canonical(&username);
        let allowed = match self.limits.allowed(cx.ip, &canonical).await {
            Ok(allowed) => allowed,
            Err(e) => {
                // A limit that cannot be read does not hold: no check runs.
                warn!(error = %e, "sign-in refused: the shared rate limit cannot be read");
                return store_down(cx.html);
            }
        };
        if let Err(wait) = allowed {
            let mut res = self.too_many(wait, cx);
            if cx.html {
                // A browser gets the sign-in form again, saying when to retry.
                let secs = limit::retry_after_secs(wait);
                let msg = format!("Too many sign-in attempts. Please wait {secs} seconds and try again.");
                let retry = res.headers_mut().remove(header::RETRY_AFTER);
                res = self.login_page(&parts.headers, rd, Some(&msg), &username, cx);
                *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                if let Some(retry) = retry {
                    res.headers_mut().insert(header::RETRY_AFTER, retry);
                }
            }
            return res;
        }
        if self.limits.braked(&canonical).await.unwrap_or(true) {
            // Guesses for this user come from many clients: slow every
            // check down, refuse none.
            tokio::time::sleep(limit::BRAKE_DELAY).await;
        }
        match self.check_password(&username, field("password")).await {
            Checked::SignedIn(payload) => self.signed_in(payload, &username, &rd, &parts.headers, cx).await,
            Checked::Failed => {
                if let Err(e) = self.limits.failed(cx.ip, &canonical).await {
                    warn!(error = %e, "a failed sign-in could not be counted in the shared rate limit");
                }
                self.metrics.login(LoginResult::failure);
                info!(user = %username, client = %cx.ip, request_id = cx.request_id, "sign-in failed");
                self.login_page(&parts.headers, rd, Some(FAILED), &username, cx)
            }
            Checked::Busy => {
                self.metrics.login(LoginResult::busy);
                warn!(
                    turns = self.hashing.1,
                    "sign-in waited too long for a password check (login.concurrent_hashes)"
                );
                let msg = "Too many sign-ins at once. Please try again in a moment.";
                try_again_after(1, StatusCode::SERVICE_UNAVAILABLE, "busy", msg, cx.html)
            }
        }
    }

    /// Run a hash check on a blocking thread once one of the
    /// `login.concurrent_hashes` turns is free; `None` when no turn came
    /// within [`HASH_WAIT`]. A check that panicked counts as failed
    /// (`T::default()`).
    pub(crate) async fn hash_turn<T: Default + Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let turn = Arc::clone(&self.hashing.0).acquire_owned();
        let Ok(Ok(turn)) = tokio::time::timeout(HASH_WAIT, turn).await else {
            return None;
        };
        let checked = tokio::task::spawn_blocking(move || {
            // The turn is given back when the check ends, even if the
            // client has gone: a dropped request cannot free it early.
            let _turn = turn;
            check()
        })
        .await;
        Some(checked.unwrap_or_default())
    }

    /// Verify on a blocking thread, once a turn is free.
    async fn check_password(&self, username: &str, password: &str) -> Checked {
        let config = Arc::clone(&self.config);
        let (username, password) = (username.to_string(), password.to_string());
        let checked = self
            .hash_turn(move || {
                config
                    .login
                    .users
                    .verify(&username, &password)
                    .map(|u| (u.name.clone(), u.email.clone(), u.groups.clone()))
            })
            .await;
        let Some(checked) = checked else {
            return Checked::Busy;
        };
        let Some((name, email, groups)) = checked else {
            return Checked::Failed;
        };
        let mut payload = Map::new();
        payload.insert("user".into(), Value::from(name));
        // Ends when this user is removed from the configuration.
        payload.insert(AUTH_METHOD_FIELD.into(), Value::from(BY_PASSWORD));
        if let Some(email) = email {
            payload.insert("email".into(), Value::from(email));
        }
        payload.insert("groups".into(), Value::from(groups));
        Checked::SignedIn(payload)
    }

    /// A fresh session (never the old one: no fixation) and a 303 to `rd`.
    async fn signed_in(
        &self,
        mut payload: Map<String, Value>,
        username: &str,
        rd: &str,
        headers: &HeaderMap,
        cx: &Context<'_>,
    ) -> Response<Body> {
        let now = cx.now;
        payload.insert(AUTH_TIME_FIELD.into(), Value::from(now));
        let mut res = redirect(StatusCode::SEE_OTHER, rd);
        if let Err(e) = self.new_session(&mut res, &payload, headers, cx).await {
            warn!(error = %e, user = %username, request_id = cx.request_id, "sign-in could not store the session");
            return store_down(cx.html);
        }
        self.metrics.login(LoginResult::success);
        info!(user = %username, client = %cx.ip, request_id = cx.request_id, "signed in");
        res.headers_mut().append(
            header::SET_COOKIE,
            cookie::clear_cookie(&self.config.session.csrf_cookie),
        );
        res
    }

    /// Store a new session for this browser and set its cookie; the old
    /// session (if any) ends, so a sign-in never keeps an id someone else
    /// may know. `Ok(false)` when the cookie would be too large.
    pub(crate) async fn new_session(
        &self,
        res: &mut Response<Body>,
        payload: &Map<String, Value>,
        headers: &HeaderMap,
        cx: &Context<'_>,
    ) -> Result<bool, StoreError> {
        let sessions = self.sessions(cx.now);
        if let (Some(store), Some((sid, user))) = (&self.store, cx.stored) {
            store.delete(sid, user).await?;
        }
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let meta = Meta {
            user: payload.get("user").and_then(Value::as_str).unwrap_or(""),
            ip: cx.ip,
            user_agent,
        };
        crate::carrier::create(res.headers_mut(), payload, meta, &sessions).await
    }

    fn too_many(&self, wait: Duration, cx: &Context<'_>) -> Response<Body> {
        self.metrics.login(LoginResult::rate_limited);
        let secs = limit::retry_after_secs(wait);
        warn!(retry_after = secs, client = %cx.ip, request_id = cx.request_id, "sign-in rate limit reached");
        let msg = "Too many sign-in attempts. Please wait a little and try again.";
        try_again_after(secs, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", msg, cx.html)
    }

    fn logout_page(&self, rd: String, cx: &Context<'_>) -> Response<Body> {
        let action = format!("{}/logout", self.config.server.prefix);
        let user = cx.session.and_then(|s| s.get("user")).and_then(Value::as_str);
        html_response(
            StatusCode::OK,
            page::logout(&self.config.login.app_name, &action, &rd, user),
        )
    }

    async fn logout(&self, req: Request<RequestBody>, cx: &Context<'_>) -> Response<Body> {
        let rd = match read_form(req.into_body()).await {
            Ok(form) => self.rd(form.get("rd").map(String::as_str).unwrap_or("/")),
            Err(_) => "/".to_string(),
        };
        // RP-initiated logout: the provider that signed this session in
        // ends its own session too, then sends the browser back.
        let idp = cx.session.and_then(|s| s.get("idp")).and_then(Value::as_str);
        let provider_end = idp
            .filter(|_| self.config.login.provider_logout)
            .and_then(|id| self.providers.get(id))
            .and_then(|p| p.end_session_url());
        if cx.unavailable {
            // The stored session cannot be ended now: say so, clear nothing.
            return store_down(cx.html);
        }
        let mut res = redirect(StatusCode::SEE_OTHER, provider_end.as_deref().unwrap_or(&rd));
        if let Err(e) = crate::carrier::end(res.headers_mut(), cx.stored, &self.sessions(cx.now)).await {
            warn!(error = %e, request_id = cx.request_id, "sign-out could not end the stored session");
            return store_down(cx.html);
        }
        res
    }

    /// Every public key the identity assertion is signed with (SPEC §8).
    fn jwks(&self) -> Response<Body> {
        let Some(signer) = &self.signer else {
            return respond::error(StatusCode::NOT_FOUND, "not_found", "No such page.", false);
        };
        let mut res = Response::new(respond::full(signer.jwks()));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        );
        // Backends may cache it; rotation keeps old keys listed for longer.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
        res
    }

    /// The signed-in user's session fields and expiry; 401 when signed out.
    fn session_doc(&self, cx: &Context<'_>) -> Response<Body> {
        if cx.unavailable {
            return store_down(cx.html);
        }
        let Some(session) = cx.session.filter(|s| crate::carrier::identity(s).is_some()) else {
            return unauthenticated(&self.config);
        };
        let s = &self.config.session;
        let mut doc = session.clone();
        doc.insert("issued_at".into(), Value::from(cx.issued_at));
        doc.insert(
            "expires_at".into(),
            Value::from(cx.issued_at.saturating_add(s.max_age.as_secs())),
        );
        if let (Some(life), Some(auth)) = (s.max_lifetime, session.get(AUTH_TIME_FIELD).and_then(Value::as_u64)) {
            doc.insert(
                "lifetime_ends_at".into(),
                Value::from(auth.saturating_add(life.as_secs())),
            );
        }
        json_response(StatusCode::OK, &Value::Object(doc))
    }
}

/// What the sign-in page says, and what the log says once, when cookies
/// are `Secure` but the browser reached `host` over plain HTTP.
fn insecure_notice(host: &str) -> String {
    warn_insecure_once(host);
    format!(
        "this page was reached over plain HTTP at {host}, but usher's cookies are Secure, so the browser will not \
         send them back and signing in will fail. Serve it over HTTPS (server.tls_cert and server.tls_key, or a \
         TLS proxy listed in server.trusted_proxies), or for a trial set secure = false under [session]."
    )
}

fn warn_insecure_once(host: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        warn!(
            host,
            "sign-in page served over plain HTTP to a non-loopback host while session.secure = true: browsers drop \
             Secure cookies there and every sign-in fails; use HTTPS, or secure = false for a trial"
        );
    }
}

/// 401 with the JSON body SPEC §3.4 names.
pub fn unauthenticated(config: &Config) -> Response<Body> {
    let prefix = &config.server.prefix;
    let mut res = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "unauthenticated", "login": format!("{prefix}/login")}),
    );
    let h = res.headers_mut();
    h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Cookie"));
    // A client learns the other schemes usher accepts here, and only those
    // (browsers are sent to sign in instead, so never see a Basic prompt).
    if !config.api_keys.is_empty() || config.oidc.iter().any(|p| p.accept_bearer) {
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(machine::BEARER_CHALLENGE),
        );
    }
    if config.login.basic_auth && !config.login.users.is_empty() {
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(machine::BASIC_CHALLENGE),
        );
    }
    res
}

/// A refusal the client may retry after `secs` seconds (`Retry-After`).
/// 503 when the session store cannot be reached.
fn store_down(html: bool) -> Response<Body> {
    crate::respond::store_unavailable(html)
}

fn try_again_after(secs: u64, status: StatusCode, code: &str, message: &str, html: bool) -> Response<Body> {
    let mut res = respond::error(status, code, message, html);
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// The validated `rd`: a same-origin path, or an absolute URL on an
/// allowed host; anything else is `/`.
pub fn safe_rd(rd: &str, allowed: &AllowedHosts) -> String {
    let ok = crate::redirect::same_origin_path(rd).or_else(|| allowed.check(rd));
    ok.map_or_else(|| "/".to_string(), str::to_string)
}

fn rd_param(query: Option<&str>) -> String {
    let rd = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    rd.unwrap_or_else(|| "/".to_string())
}

async fn read_form(body: RequestBody) -> Result<HashMap<String, String>, StatusCode> {
    let bytes: Bytes = match Limited::new(body, FORM_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => return Err(StatusCode::BAD_REQUEST),
    };
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn nonce() -> String {
    // A key is 32 random bytes; a failure of the OS RNG leaves a token that
    // still verifies only under our key.
    crate::session::key::generate().unwrap_or_default()
}

/// A redirect to a validated same-origin target.
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut res = Response::new(respond::empty());
    *res.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut res = Response::new(respond::full(html));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    res
}

fn json_response(status: StatusCode, doc: &Value) -> Response<Body> {
    let mut res = Response::new(respond::full(doc.to_string()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
