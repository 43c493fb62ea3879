//! Errors on the request path and the one table that maps them to statuses.
//!
//! Every variant is classified by whose fault it was (client, upstream,
//! usher) and mapped to exactly one status in an exhaustive `match` with no
//! catch-all arm: adding a variant does not compile until it has a status.
//! Messages hold no request data, cookie or secret.

use http::StatusCode;

use crate::target::BadTarget;

/// Why a request could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request target is malformed or ambiguous.
    #[error("bad request target ({0})")]
    BadTarget(BadTarget),
    /// A forward-auth check did not describe a request usher can read.
    #[error("forward-auth check without a readable X-Forwarded-Uri / X-Original-URL")]
    BadForwardedRequest,
    /// A method with a lower-case letter: backends that upper-case it
    /// would run a method the rules did not judge.
    #[error("request method is not all upper-case")]
    BadMethod,
    /// Two `Host` headers, or none on HTTP/1.1.
    #[error("missing or repeated Host header")]
    BadHost,
    /// The client's request body broke off or was malformed (chunked
    /// framing) while it was being forwarded.
    #[error("client request body malformed or cut short")]
    BadRequestBody,
    /// The client's request body sent nothing for `server.body_timeout`.
    #[error("client request body stalled (server.body_timeout)")]
    ClientBodyTimeout,
    /// The request body is larger than `server.max_body_bytes`.
    #[error("request body over the configured limit")]
    PayloadTooLarge,
    /// No TCP connection to the upstream could be made.
    #[error("upstream refused or unreachable: {0}")]
    UpstreamConnect(String),
    /// The upstream did not send a response head in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The TLS connection to the upstream failed (the reason is rustls's:
    /// certificate, name, protocol).
    #[error("upstream TLS failed: {0}")]
    UpstreamTls(String),
    /// The upstream answered `101` to a request that asked for no
    /// permitted upgrade, or named another protocol.
    #[error("upstream switched protocols without a permitted upgrade")]
    UpstreamUpgrade,
    /// The upstream connection broke or spoke invalid HTTP.
    #[error("upstream connection failed: {0}")]
    UpstreamProtocol(String),
    /// usher could not build the upstream request (a bug, not input).
    #[error("internal error building the upstream request")]
    Internal,
}

/// Whose fault an error was: decides the log level and the status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something unacceptable (4xx).
    Client,
    /// The upstream failed (502/504).
    Upstream,
    /// usher itself failed (500).
    Usher,
}

impl RequestError {
    /// The status, the stable code and the human sentence for this error.
    pub fn describe(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            RequestError::BadTarget(_) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request path is malformed or ambiguous.",
            ),
            RequestError::BadForwardedRequest => (
                StatusCode::BAD_REQUEST,
                "bad_forwarded_request",
                "The forward-auth check did not describe a readable request.",
            ),
            RequestError::BadMethod => (
                StatusCode::BAD_REQUEST,
                "bad_method",
                "The request method must be written in upper case.",
            ),
            RequestError::BadHost => (
                StatusCode::BAD_REQUEST,
                "bad_host",
                "The request must name its host exactly once.",
            ),
            RequestError::BadRequestBody => (
                StatusCode::BAD_REQUEST,
                "bad_request_body",
                "The request body was malformed or cut short.",
            ),
            RequestError::ClientBodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request body stopped arriving.",
            ),
            RequestError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            RequestError::UpstreamConnect(_) => (
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "The application behind this proxy is unreachable.",
            ),
            RequestError::UpstreamTls(_) => (
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "The proxy could not make a secure connection to the application.",
            ),
            RequestError::UpstreamUpgrade => (
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "The application switched protocols without being asked to.",
            ),
            RequestError::UpstreamProtocol(_) => (
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "The application behind this proxy failed to answer.",
            ),
            RequestError::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                "The application behind this proxy took too long.",
            ),
            RequestError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The proxy failed to handle this request.",
            ),
        }
    }

    /// Whose fault it was.
    pub fn fault(&self) -> Fault {
        match self {
            RequestError::BadTarget(_)
            | RequestError::BadForwardedRequest
            | RequestError::BadMethod
            | RequestError::BadHost
            | RequestError::BadRequestBody
            | RequestError::ClientBodyTimeout
            | RequestError::PayloadTooLarge => Fault::Client,
            RequestError::UpstreamConnect(_)
            | RequestError::UpstreamTimeout
            | RequestError::UpstreamTls(_)
            | RequestError::UpstreamUpgrade
            | RequestError::UpstreamProtocol(_) => Fault::Upstream,
            RequestError::Internal => Fault::Usher,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_follow_fault() {
        let all = [
            RequestError::BadTarget(BadTarget::Nul),
            RequestError::BadForwardedRequest,
            RequestError::BadMethod,
            RequestError::BadHost,
            RequestError::BadRequestBody,
            RequestError::ClientBodyTimeout,
            RequestError::PayloadTooLarge,
            RequestError::UpstreamTls("invalid peer certificate: UnknownIssuer".into()),
            RequestError::UpstreamUpgrade,
            RequestError::UpstreamConnect("refused".into()),
            RequestError::UpstreamTimeout,
            RequestError::UpstreamProtocol("closed".into()),
            RequestError::Internal,
        ];
        for e in all {
            let status = e.describe().0;
            match e.fault() {
                Fault::Client => assert!(status.is_client_error(), "{e}"),
                Fault::Upstream => assert!(matches!(status.as_u16(), 502 | 504), "{e}"),
                Fault::Usher => assert_eq!(status, 500, "{e}"),
            }
        }
    }
}
