//! [`AuthError`]: every way a request can be turned away, and how it is rendered.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use crate::challenge::{BearerError, Challenge, ChallengeError, DpopError};

/// What went wrong, independent of the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No credentials were sent (401).
    MissingCredentials,
    /// Credentials were sent but are wrong, expired or unverifiable (401).
    InvalidCredentials,
    /// The credential is syntactically broken or too large (400, RFC 6750 `invalid_request`).
    MalformedRequest,
    /// Two different credentials were sent in one request (400).
    ConflictingCredentials,
    /// Authenticated, but not allowed (403).
    Forbidden,
    /// Authenticated, but the token lacks a scope (403, RFC 6750 `insufficient_scope`).
    InsufficientScope,
    /// A cookie-authenticated request came from another site (403).
    CrossSiteRequest,
    /// Too many failed attempts; retry later (429).
    TooManyAttempts,
    /// A dependency (key server, session store) is unavailable (503).
    Unavailable,
    /// The layers are wired wrongly (500), e.g. a policy layer with no auth layer in
    /// front; the log says what to change.
    Misconfigured,
}

impl ErrorKind {
    /// HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::MissingCredentials | ErrorKind::InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ErrorKind::MalformedRequest | ErrorKind::ConflictingCredentials => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::Forbidden | ErrorKind::InsufficientScope | ErrorKind::CrossSiteRequest => {
                StatusCode::FORBIDDEN
            }
            ErrorKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code used in the JSON body.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::MissingCredentials => "unauthorized",
            ErrorKind::InvalidCredentials => "invalid_credentials",
            ErrorKind::MalformedRequest => "invalid_request",
            ErrorKind::ConflictingCredentials => "conflicting_credentials",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InsufficientScope => "insufficient_scope",
            ErrorKind::CrossSiteRequest => "cross_site_request",
            ErrorKind::TooManyAttempts => "too_many_attempts",
            ErrorKind::Unavailable => "temporarily_unavailable",
            ErrorKind::Misconfigured => "server_misconfigured",
        }
    }

    fn default_message(self) -> &'static str {
        match self {
            ErrorKind::MissingCredentials => "Authentication is required.",
            ErrorKind::InvalidCredentials => "The credentials are invalid.",
            ErrorKind::MalformedRequest => "The credentials are malformed.",
            ErrorKind::ConflictingCredentials => "Send one credential per request.",
            ErrorKind::Forbidden => "You are not allowed to do this.",
            ErrorKind::InsufficientScope => "The token lacks a required scope.",
            ErrorKind::CrossSiteRequest => "Cross-site request refused.",
            ErrorKind::TooManyAttempts => "Too many failed attempts. Try again later.",
            ErrorKind::Unavailable => "Authentication is temporarily unavailable.",
            ErrorKind::Misconfigured => "The server's authentication is misconfigured.",
        }
    }
}

/// A rejected request: kind, a terse public message, and the challenges to send.
///
/// Never carries secrets or library error text: the public message is chosen from a
/// fixed set and the internal reason only goes to `tracing`.
///
/// ```
/// use portcullis::{AuthError, ErrorKind};
/// let err = AuthError::forbidden();
/// assert_eq!(err.kind(), ErrorKind::Forbidden);
/// assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct AuthError {
    kind: ErrorKind,
    message: Cow<'static, str>,
    reason: &'static str,
    challenges: Vec<Challenge>,
    retry_after: Option<u64>,
    scope: Option<Arc<str>>,
    dpop: Option<DpopError>,
    /// A fresh server nonce for a `DPoP-Nonce` header.
    dpop_nonce: Option<Arc<str>>,
}

impl AuthError {
    /// A new error of `kind` with its default public message.
    pub fn new(kind: ErrorKind) -> Self {
        AuthError {
            kind,
            message: Cow::Borrowed(kind.default_message()),
            reason: "",
            challenges: Vec::new(),
            retry_after: None,
            scope: None,
            dpop: None,
            dpop_nonce: None,
        }
    }
    /// No credentials (401).
    pub fn missing() -> Self {
        Self::new(ErrorKind::MissingCredentials)
    }
    /// Invalid credentials (401); `reason` is logged, never sent.
    pub fn invalid(reason: &'static str) -> Self {
        Self::new(ErrorKind::InvalidCredentials).with_reason(reason)
    }
    /// Malformed credentials (400); `reason` is logged, never sent.
    pub fn malformed(reason: &'static str) -> Self {
        Self::new(ErrorKind::MalformedRequest).with_reason(reason)
    }
    /// Two credentials in one request (400).
    pub(crate) fn conflicting() -> Self {
        Self::new(ErrorKind::ConflictingCredentials).with_reason("more than one credential")
    }
    /// Known but not allowed (403).
    pub fn forbidden() -> Self {
        Self::new(ErrorKind::Forbidden)
    }
    /// Missing OAuth scope (403 with `insufficient_scope`).
    pub fn insufficient_scope(scope: impl Into<Arc<str>>) -> Self {
        let mut e = Self::new(ErrorKind::InsufficientScope);
        e.scope = Some(scope.into());
        e
    }
    /// A DPoP proof that does not verify (401, RFC 9449 `invalid_dpop_proof` in the
    /// DPoP challenge); `reason` is logged, never sent.
    pub fn invalid_dpop_proof(reason: &'static str) -> Self {
        let mut e = Self::invalid(reason);
        e.dpop = Some(DpopError::InvalidProof);
        e
    }
    /// A DPoP proof without the server nonce required (401, `use_dpop_nonce`), with a
    /// fresh nonce sent in the `DPoP-Nonce` header.
    pub fn use_dpop_nonce(nonce: impl Into<Arc<str>>) -> Self {
        let mut e = Self::invalid("dpop: nonce missing or stale")
            .with_message("Retry with the DPoP nonce in the DPoP-Nonce header.");
        e.dpop = Some(DpopError::UseNonce);
        e.dpop_nonce = Some(nonce.into());
        e
    }
    /// Dependency down (503); `reason` is logged, never sent.
    pub fn unavailable(reason: &'static str) -> Self {
        Self::new(ErrorKind::Unavailable).with_reason(reason)
    }
    /// Throttled (429) with `Retry-After` seconds.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut e = Self::new(ErrorKind::TooManyAttempts);
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }
    /// Cookie-authenticated request from another site (403).
    #[cfg_attr(not(any(feature = "jwt", feature = "session")), allow(dead_code))]
    pub(crate) fn cross_site() -> Self {
        Self::new(ErrorKind::CrossSiteRequest).with_reason("cross-site request")
    }

    /// Replace the public message (keep it terse and free of secrets).
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }
    /// Set the internal reason, logged at debug level and never sent to clients.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }
    /// Set the `Retry-After` seconds (at least 1), for 429 and 503 answers.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }
    /// Add a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        if !self.challenges.contains(&challenge) {
            self.challenges.push(challenge);
        }
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The internal reason (for logs).
    pub fn reason(&self) -> &'static str {
        self.reason
    }
    /// The challenges that will be sent.
    pub fn challenges(&self) -> &[Challenge] {
        &self.challenges
    }
    /// Seconds to put in `Retry-After`, for 429.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
    /// The scope that was required, for `insufficient_scope`.
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The `WWW-Authenticate` header values for this error.
    pub fn www_authenticate(&self) -> Vec<HeaderValue> {
        let bearer = match self.kind {
            ErrorKind::MissingCredentials => None,
            ErrorKind::InvalidCredentials => Some(BearerError::InvalidToken),
            ErrorKind::MalformedRequest => Some(BearerError::InvalidRequest),
            ErrorKind::InsufficientScope => {
                Some(BearerError::InsufficientScope(self.scope.as_deref()))
            }
            _ => return Vec::new(),
        };
        let error = ChallengeError {
            bearer,
            dpop: self.dpop,
        };
        self.challenges
            .iter()
            .filter_map(|c| c.header_value(error))
            .collect()
    }

    /// Adds `WWW-Authenticate`, `Retry-After` and `Cache-Control: no-store` to a response.
    pub fn apply_headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        for v in self.www_authenticate() {
            headers.append(WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(nonce) = self.dpop_nonce.as_deref()
            && let Ok(v) = HeaderValue::from_str(nonce)
        {
            headers.insert(http::HeaderName::from_static("dpop-nonce"), v);
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    /// The default rendering: status, headers and `{"error": ..., "message": ...}`.
    pub(crate) fn to_json_response(&self) -> Response {
        let body = serde_json::json!({ "error": self.kind.code(), "message": self.message() });
        let mut res = (self.status(), body.to_string()).into_response();
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.apply_headers(&mut res);
        res
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            f.write_str(self.kind.code())
        } else {
            write!(f, "{}: {}", self.kind.code(), self.reason)
        }
    }
}

impl std::error::Error for AuthError {}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.to_json_response()
    }
}

/// A configuration value was refused (a key, URL, password hash, secret or name), when
/// it was given. The message says what is wrong; it never holds a secret.
///
/// ```
/// use portcullis::jwt::{Algorithm, KeySet};
/// let err = KeySet::new().with_hmac_secret(b"short", Algorithm::HS256).unwrap_err();
/// assert!(err.to_string().contains("HMAC secret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("portcullis configuration error: {message}")]
#[non_exhaustive]
pub struct ConfigError {
    message: Cow<'static, str>,
}

impl ConfigError {
    #[cfg_attr(
        not(any(feature = "basic", feature = "session", feature = "jwt")),
        allow(dead_code)
    )]
    pub(crate) fn new(message: impl Into<Cow<'static, str>>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why `result` is a refusal (its logged reason); panics when it is not one. For tests
/// that must fail for the reason they name.
#[cfg(test)]
#[track_caller]
pub(crate) fn reason_of<T>(result: Result<T, AuthError>) -> &'static str {
    match result {
        Ok(_) => panic!("not refused"),
        Err(e) => e.reason(),
    }
}
