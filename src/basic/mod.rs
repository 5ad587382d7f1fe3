//! HTTP Basic authentication (RFC 7617): a [`Users`] table or an async verifier,
//! with optional failed-attempt limits ([`AttemptLimiter`]).
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis::{AuthLayer, User, basic::BasicAuth};
//!
//! let basic = BasicAuth::new("admin area")
//!     .with_user("admin", User::plain("correct horse").with_roles(["admin"]));
//! let app: Router = Router::new().route("/admin", get(|| async { "hi" })).layer(AuthLayer::required(basic));
//! ```

mod credentials;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::request::Parts;

use self::credentials::parse_basic_value;
pub use self::credentials::{BasicCredentials, parse_basic_header};

use crate::authenticator::{Authenticator, BoxFuture, Check};
use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;
use crate::http::authorization::names_scheme;
use crate::limit::AttemptLimiter;
use crate::passwords::{User, Users};

type VerifyFn = dyn Fn(String, String) -> BoxFuture<'static, Result<Option<AuthContext>, AuthError>>
    + Send
    + Sync;

#[derive(Clone)]
enum Source {
    Users(Arc<Users>),
    Verifier(Arc<VerifyFn>),
}

/// The Basic authenticator. Use it with [`AuthLayer`](crate::AuthLayer).
#[derive(Clone)]
pub struct BasicAuth {
    challenge: Challenge,
    source: Source,
    limiter: Option<AttemptLimiter>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Basic auth for `realm` with an empty user table (add users with [`with_user`](Self::with_user)).
    pub fn new(realm: &str) -> Self {
        BasicAuth {
            challenge: Challenge::basic(realm),
            source: Source::Users(Arc::new(Users::new())),
            limiter: None,
        }
    }

    /// Add a user to the table (replaces a verifier set before).
    pub fn with_user(mut self, name: impl Into<String>, user: User) -> Self {
        let users = match self.source {
            Source::Users(u) => Arc::unwrap_or_clone(u),
            Source::Verifier(_) => Users::new(),
        };
        self.source = Source::Users(Arc::new(users.with_user(name, user)));
        self
    }

    /// Use a whole user table.
    pub fn with_users(mut self, users: Users) -> Self {
        self.source = Source::Users(Arc::new(users));
        self
    }

    /// Check credentials with your own async function (a database lookup).
    /// Return `Ok(None)` for wrong credentials and `Err(AuthError::unavailable(..))` when
    /// the backing store is down. The function must take comparable time for unknown
    /// users and wrong passwords.
    ///
    /// ```
    /// use portcullis::{AuthContext, AuthError, Scheme, basic::BasicAuth};
    /// let basic = BasicAuth::new("db").with_verifier(|user: String, pass: String| async move {
    ///     Ok::<_, AuthError>((user == "svc" && pass == "pw")
    ///         .then(|| AuthContext::builder(user, Scheme::Basic).build()))
    /// });
    /// # let _ = basic;
    /// ```
    pub fn with_verifier<F, Fut>(mut self, verify: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<AuthContext>, AuthError>> + Send + 'static,
    {
        self.source = Source::Verifier(Arc::new(move |u, p| Box::pin(verify(u, p))));
        self
    }

    /// Limit failed attempts with `limiter` (per user and client, per client, per user;
    /// 429 with `Retry-After`): an attempt counts before its password is checked.
    pub fn with_limiter(mut self, limiter: AttemptLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    async fn check_password(&self, creds: BasicCredentials) -> Result<AuthContext, AuthError> {
        match &self.source {
            Source::Users(users) => match users.verify(&creds.username, &creds.password).await {
                Ok(user) => {
                    let mut b = AuthContext::builder(creds.username, Scheme::Basic)
                        .with_roles(user.roles().iter().cloned());
                    if let Some(e) = user.email() {
                        b = b.with_email(e);
                    }
                    if let Some(t) = user.tenant() {
                        b = b.with_tenant(t);
                    }
                    Ok(b.build())
                }
                Err(e) => Err(e),
            },
            Source::Verifier(f) => match f(creds.username, creds.password).await? {
                Some(ctx) => Ok(ctx),
                None => Err(AuthError::invalid("wrong user name or password")),
            },
        }
    }
}

impl Authenticator for BasicAuth {
    type Credential = BasicCredentials;
    fn scheme(&self) -> Scheme {
        Scheme::Basic
    }
    fn challenge(&self) -> Option<Challenge> {
        Some(self.challenge.clone())
    }
    fn check(&self, parts: &Parts) -> Check<BasicCredentials> {
        let value = match parts.headers.get(http::header::AUTHORIZATION) {
            Some(v) if names_scheme(v.as_bytes(), "basic") => v,
            _ => return Check::Absent,
        };
        match parse_basic_value(value.as_bytes()) {
            Ok(creds) => Check::Pending(creds),
            Err(e) => Check::Ready(Err(e)),
        }
    }
    async fn authenticate(
        &self,
        creds: BasicCredentials,
        parts: &Parts,
    ) -> Result<AuthContext, AuthError> {
        let Some(limiter) = &self.limiter else {
            return self.check_password(creds).await;
        };
        let attempt = limiter.begin(&creds.username, parts).await?;
        let result = self.check_password(creds).await;
        attempt.finish(&result).await;
        result
    }
}
