//! The [`Authenticator`] trait: one scheme's way from request head to [`AuthContext`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::request::Parts;

use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One authentication scheme. Built-in: [`BasicAuth`](crate::basic::BasicAuth),
/// [`BearerAuth`](crate::jwt::BearerAuth), [`SessionAuth`](crate::session::SessionAuth),
/// [`IdentityProxy`](crate::iap::IdentityProxy).
///
/// The [`AuthLayer`](crate::AuthLayer) first asks every authenticator whether the
/// request carries its credential ([`detect`](Authenticator::detect), cheap and
/// synchronous), then lets the single one that found it
/// [`authenticate`](Authenticator::authenticate). A layer holding one scheme asks it
/// both at once ([`detect_now`](Authenticator::detect_now)).
///
/// ```
/// use portcullis::{AuthContext, AuthError, Authenticator, Challenge, Scheme};
/// use http::request::Parts;
///
/// /// Accepts `X-Api-Key: let-me-in`.
/// struct ApiKey;
///
/// impl Authenticator for ApiKey {
///     fn scheme(&self) -> Scheme { Scheme::Custom }
///     fn challenge(&self) -> Option<Challenge> { None }
///     fn detect(&self, parts: &Parts) -> bool { parts.headers.contains_key("x-api-key") }
///     async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
///         match parts.headers.get("x-api-key") {
///             Some(v) if v == "let-me-in" => Ok(AuthContext::builder("robot", Scheme::Custom).build()),
///             _ => Err(AuthError::invalid("bad api key")),
///         }
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The scheme this authenticator produces.
    fn scheme(&self) -> Scheme;
    /// The challenge sent with this scheme's 401 responses.
    fn challenge(&self) -> Option<Challenge>;
    /// Every challenge sent with this scheme's 401 responses, for a scheme that
    /// answers with several (Bearer beside DPoP); by default [`challenge`](Self::challenge).
    fn challenges(&self) -> Vec<Challenge> {
        self.challenge().into_iter().collect()
    }
    /// Whether the request carries this scheme's credential. Must not verify anything.
    fn detect(&self, parts: &Parts) -> bool;
    /// Verify the credential; called only when [`detect`](Authenticator::detect) said yes.
    fn authenticate(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send;
    /// The answer [`authenticate`](Authenticator::authenticate) would give, when it
    /// needs no waiting (a cached token, a record held in process memory); `None` (the
    /// default) when it does. The layer asks this first and, on `None`, calls
    /// `authenticate`; answering here spares it boxing a future per request. It must
    /// agree with `authenticate`: the same context, the same errors.
    ///
    /// ```
    /// use portcullis::{AuthContext, AuthError, Authenticator, Challenge, Scheme};
    /// use http::request::Parts;
    ///
    /// /// Accepts `X-Api-Key: let-me-in`, without waiting.
    /// struct ApiKey;
    ///
    /// impl ApiKey {
    ///     fn check(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
    ///         match parts.headers.get("x-api-key") {
    ///             Some(v) if v == "let-me-in" => Ok(AuthContext::builder("robot", Scheme::Custom).build()),
    ///             _ => Err(AuthError::invalid("bad api key")),
    ///         }
    ///     }
    /// }
    ///
    /// impl Authenticator for ApiKey {
    ///     fn scheme(&self) -> Scheme { Scheme::Custom }
    ///     fn challenge(&self) -> Option<Challenge> { None }
    ///     fn detect(&self, parts: &Parts) -> bool { parts.headers.contains_key("x-api-key") }
    ///     async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
    ///         self.check(parts)
    ///     }
    ///     fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
    ///         Some(self.check(parts))
    ///     }
    /// }
    /// ```
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        let _ = parts;
        None
    }
    /// [`detect`](Authenticator::detect), then
    /// [`authenticate_now`](Authenticator::authenticate_now), in one call: what a layer
    /// holding this scheme alone asks, so that the scheme can read its credential once.
    /// The default calls the two; an override must give the same answers.
    ///
    /// ```
    /// use portcullis::{AuthContext, AuthError, Authenticator, Challenge, Detected, Scheme};
    /// use http::request::Parts;
    ///
    /// /// Accepts `X-Api-Key: let-me-in`, reading the header once.
    /// struct ApiKey;
    ///
    /// impl ApiKey {
    ///     fn check(&self, key: &http::HeaderValue) -> Result<AuthContext, AuthError> {
    ///         match key.as_bytes() {
    ///             b"let-me-in" => Ok(AuthContext::builder("robot", Scheme::Custom).build()),
    ///             _ => Err(AuthError::invalid("bad api key")),
    ///         }
    ///     }
    ///     fn answer(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
    ///         match self.detect_now(parts) {
    ///             Detected::Answered(result) => result,
    ///             _ => Err(AuthError::missing()),
    ///         }
    ///     }
    /// }
    ///
    /// impl Authenticator for ApiKey {
    ///     fn scheme(&self) -> Scheme { Scheme::Custom }
    ///     fn challenge(&self) -> Option<Challenge> { None }
    ///     fn detect(&self, parts: &Parts) -> bool { parts.headers.contains_key("x-api-key") }
    ///     async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
    ///         self.answer(parts)
    ///     }
    ///     fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
    ///         Some(self.answer(parts))
    ///     }
    ///     fn detect_now(&self, parts: &Parts) -> Detected {
    ///         match parts.headers.get("x-api-key") {
    ///             None => Detected::Absent,
    ///             Some(key) => Detected::Answered(self.check(key)),
    ///         }
    ///     }
    /// }
    /// ```
    fn detect_now(&self, parts: &Parts) -> Detected {
        if !self.detect(parts) {
            return Detected::Absent;
        }
        self.authenticate_now(parts).into()
    }
}

/// What [`Authenticator::detect_now`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Detected {
    /// The request carries no credential of this scheme.
    Absent,
    /// It carries one, and this is the answer, found without waiting.
    Answered(Result<AuthContext, AuthError>),
    /// It carries one whose check needs waiting: the layer calls
    /// [`authenticate`](Authenticator::authenticate).
    Pending,
}

/// The [`authenticate_now`](Authenticator::authenticate_now) answer for a request that
/// carries a credential: `Some` is [`Detected::Answered`], `None` [`Detected::Pending`].
impl From<Option<Result<AuthContext, AuthError>>> for Detected {
    fn from(answer: Option<Result<AuthContext, AuthError>>) -> Self {
        match answer {
            Some(result) => Detected::Answered(result),
            None => Detected::Pending,
        }
    }
}

/// What [`DynAuthenticator::authenticate_owned`] gives back: the request head it was
/// handed, and the outcome.
pub(crate) type Authenticated = (Parts, Result<AuthContext, AuthError>);

/// Object-safe twin of [`Authenticator`], used to hold several schemes in one layer.
pub(crate) trait DynAuthenticator: Send + Sync + 'static {
    fn scheme(&self) -> Scheme;
    fn challenges(&self) -> Vec<Challenge>;
    fn detect(&self, parts: &Parts) -> bool;
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>>;
    fn detect_now(&self, parts: &Parts) -> Detected;
    /// Authenticates in one boxed future that owns the request head (and a handle on
    /// the authenticator), so the layer needs no second box around it.
    fn authenticate_owned(self: Arc<Self>, parts: Parts) -> BoxFuture<'static, Authenticated>;
}

impl<A: Authenticator> DynAuthenticator for A {
    fn scheme(&self) -> Scheme {
        Authenticator::scheme(self)
    }
    fn challenges(&self) -> Vec<Challenge> {
        Authenticator::challenges(self)
    }
    fn detect(&self, parts: &Parts) -> bool {
        Authenticator::detect(self, parts)
    }
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        Authenticator::authenticate_now(self, parts)
    }
    fn detect_now(&self, parts: &Parts) -> Detected {
        Authenticator::detect_now(self, parts)
    }
    fn authenticate_owned(self: Arc<Self>, parts: Parts) -> BoxFuture<'static, Authenticated> {
        Box::pin(async move {
            let result = Authenticator::authenticate(&*self, &parts).await;
            (parts, result)
        })
    }
}
