//! Requests to an identity provider: discovery, JWKS, token and userinfo,
//! over usher's own hyper client. Every exchange (connect, send, the whole
//! body) is bounded by the provider's `timeout`, every body by
//! [`MAX_BODY`], and each one is timed into the metrics. Errors name what
//! failed, never a secret or a token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::metrics::Metrics;
use crate::tls::{self, TlsError};

/// Largest document accepted from a provider.
pub const MAX_BODY: usize = 512 * 1024;

/// Why a request to the provider gave no document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No answer within the provider's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or exchanging failed.
    #[error("cannot reach it: {0}")]
    Unreachable(String),
    /// It answered with an error status; `error` is the OAuth error code
    /// when the body carried one.
    #[error("it answered {status}{}", .error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status { status: u16, error: Option<String> },
    /// The body was not the JSON expected, or too large.
    #[error("its answer is not usable: {0}")]
    Body(String),
}

/// One provider's HTTP client.
pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    provider: String,
    metrics: Arc<Metrics>,
}

/// How the client proves itself at the token endpoint.
pub enum ClientAuth<'a> {
    /// `client_secret_basic`.
    Basic { id: &'a str, secret: &'a str },
    /// `client_secret_post`.
    Post { id: &'a str, secret: &'a str },
    /// A public client: only `client_id` in the form.
    Public { id: &'a str },
}

impl Fetcher {
    /// A client trusting the webpki roots and `ca_file`.
    pub fn new(
        provider: &str,
        timeout: Duration,
        ca_file: Option<&std::path::Path>,
        metrics: Arc<Metrics>,
    ) -> Result<Fetcher, TlsError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls = tls::client_config(ca_file)?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Fetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            provider: provider.to_string(),
            metrics,
        })
    }

    /// `GET url` for a JSON document, with a bearer token when given
    /// (userinfo).
    pub async fn get_json(&self, kind: &'static str, url: &str, bearer: Option<&str>) -> Result<Value, FetchError> {
        let mut req = request(Method::GET, url)?;
        if let Some(token) = bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| FetchError::Body("the access token is not a header value".into()))?;
            req = req.header(header::AUTHORIZATION, value);
        }
        self.exchange(kind, req.body(Full::default()).map_err(bad_request)?)
            .await
    }

    /// `POST url` with a form, authenticated as the client: the token
    /// request.
    pub async fn post_form(
        &self,
        kind: &'static str,
        url: &str,
        fields: &[(&str, &str)],
        auth: &ClientAuth<'_>,
    ) -> Result<Value, FetchError> {
        let req = post_request(url, fields, auth)?;
        self.exchange(kind, req).await
    }

    async fn exchange(&self, kind: &'static str, req: Request<Full<Bytes>>) -> Result<Value, FetchError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.send(req)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        };
        self.metrics
            .oidc_fetch(&self.provider, kind, started.elapsed(), result.is_ok());
        result
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Value, FetchError> {
        let res = self
            .client
            .request(req)
            .await
            .map_err(|e| FetchError::Unreachable(describe(&e)))?;
        let status = res.status();
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| FetchError::Body(format!("reading it failed: {e}")))?
            .to_bytes();
        let doc: Result<Value, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            // Only the OAuth error code is kept: a short token, never a
            // description that could echo what was sent.
            let error = doc
                .ok()
                .and_then(|d| d.get("error").and_then(Value::as_str).map(str::to_string))
                .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            return Err(FetchError::Status {
                status: status.as_u16(),
                error,
            });
        }
        match doc {
            Ok(doc @ Value::Object(_)) => Ok(doc),
            Ok(_) => Err(FetchError::Body("expected a JSON object".into())),
            Err(e) => Err(FetchError::Body(format!("not JSON ({e})"))),
        }
    }
}

/// The token request; built apart so no form serializer lives across an
/// await.
fn post_request(url: &str, fields: &[(&str, &str)], auth: &ClientAuth<'_>) -> Result<Request<Full<Bytes>>, FetchError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(fields);
    let mut req = request(Method::POST, url)?;
    match auth {
        ClientAuth::Basic { id, secret } => {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic.
            let pair = format!("{}:{}", form_encode(id), form_encode(secret));
            let value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
                .map_err(|_| FetchError::Body("the client credentials are not a header value".into()))?;
            req = req.header(header::AUTHORIZATION, value);
        }
        ClientAuth::Post { id, secret } => {
            form.append_pair("client_id", id);
            form.append_pair("client_secret", secret);
        }
        ClientAuth::Public { id } => {
            form.append_pair("client_id", id);
        }
    }
    let req = req
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .body(Full::new(Bytes::from(form.finish())))
        .map_err(bad_request)?;
    Ok(req)
}

fn request(method: Method, url: &str) -> Result<http::request::Builder, FetchError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| FetchError::Body(format!("{url:?} is not a URL")))?;
    Ok(Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, HeaderValue::from_static("application/json"))
        .header(header::USER_AGENT, HeaderValue::from_static("usher")))
}

fn bad_request(e: http::Error) -> FetchError {
    FetchError::Body(format!("the request could not be built: {e}"))
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The innermost cause of a client error, e.g. "connection refused".
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
