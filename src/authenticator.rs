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
/// The [`AuthLayer`](crate::AuthLayer) asks every scheme it holds to
/// [`check`](Authenticator::check) the request: whether it carries the scheme's
/// credential, and the answer when it needs no waiting (a cached token, a record in
/// process memory). When the check needs waiting (a database, a password hash, a key
/// fetch), the scheme hands back what it read, and the layer calls
/// [`authenticate`](Authenticator::authenticate) with it, so no credential is read
/// twice. Two schemes that both find their credential are refused (400), never merged.
///
/// ```
/// use http::{HeaderValue, request::Parts};
/// use portcullis::{AuthContext, AuthError, Authenticator, Challenge, Check, Scheme};
///
/// /// Accepts `X-Api-Key: let-me-in`, after a lookup that waits.
/// struct ApiKey;
///
/// impl Authenticator for ApiKey {
///     type Credential = HeaderValue;
///     fn scheme(&self) -> Scheme { Scheme::Custom }
///     fn challenge(&self) -> Option<Challenge> { None }
///     fn check(&self, parts: &Parts) -> Check<HeaderValue> {
///         match parts.headers.get("x-api-key") {
///             None => Check::Absent,
///             Some(key) => Check::Pending(key.clone()),
///         }
///     }
///     async fn authenticate(&self, key: HeaderValue, _: &Parts) -> Result<AuthContext, AuthError> {
///         // A database lookup would go here.
///         match key.as_bytes() {
///             b"let-me-in" => Ok(AuthContext::builder("robot", Scheme::Custom).build()),
///             _ => Err(AuthError::invalid("bad api key")),
///         }
///     }
/// }
/// ```
///
/// A scheme that always answers in `check` never pends, and says so with
/// [`Infallible`](std::convert::Infallible):
///
/// ```
/// use std::convert::Infallible;
/// use http::request::Parts;
/// use portcullis::{AuthContext, AuthError, Authenticator, Challenge, Check, Scheme};
///
/// struct ApiKey;
///
/// impl Authenticator for ApiKey {
///     type Credential = Infallible;
///     fn scheme(&self) -> Scheme { Scheme::Custom }
///     fn challenge(&self) -> Option<Challenge> { None }
///     fn check(&self, parts: &Parts) -> Check<Infallible> {
///         match parts.headers.get("x-api-key").map(|k| k.as_bytes()) {
///             None => Check::Absent,
///             Some(b"let-me-in") => Check::Ready(Ok(AuthContext::builder("robot", Scheme::Custom).build())),
///             Some(_) => Check::Ready(Err(AuthError::invalid("bad api key"))),
///         }
///     }
///     async fn authenticate(&self, never: Infallible, _: &Parts) -> Result<AuthContext, AuthError> {
///         match never {}
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// What [`check`](Self::check) read and hands to
    /// [`authenticate`](Self::authenticate) when the answer needs waiting.
    type Credential: Send + 'static;
    /// The scheme this authenticator produces.
    fn scheme(&self) -> Scheme;
    /// The challenge sent with this scheme's 401 responses.
    fn challenge(&self) -> Option<Challenge>;
    /// Every challenge sent with this scheme's 401 responses, for a scheme that
    /// answers with several (Bearer beside DPoP); by default [`challenge`](Self::challenge).
    fn challenges(&self) -> Vec<Challenge> {
        self.challenge().into_iter().collect()
    }
    /// Reads the request once: [`Check::Absent`] when it carries no credential of this
    /// scheme, [`Check::Ready`] with the answer when it needs no waiting, else
    /// [`Check::Pending`] with what was read. Synchronous and cheap: no I/O.
    fn check(&self, parts: &Parts) -> Check<Self::Credential>;
    /// Finishes a check that needs waiting, from the credential [`check`](Self::check)
    /// read (the request head is there for anything else it needs, such as the client
    /// address of an attempt limit).
    fn authenticate(
        &self,
        credential: Self::Credential,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send;
}

/// What [`Authenticator::check`] found.
#[derive(Debug)]
pub enum Check<C> {
    /// The request carries no credential of this scheme.
    Absent,
    /// It carries one, and this is the answer, found without waiting.
    Ready(Result<AuthContext, AuthError>),
    /// It carries one whose check needs waiting: the layer calls
    /// [`authenticate`](Authenticator::authenticate) with it.
    Pending(C),
}

/// What the layer's pending step gives back: the request head it was handed, and the
/// outcome.
pub(crate) type Authenticated = (Parts, Result<AuthContext, AuthError>);

/// A pending check, ready to run once handed the request head.
pub(crate) type Start = Box<dyn FnOnce(Parts) -> BoxFuture<'static, Authenticated> + Send>;

/// Object-safe twin of [`Authenticator`], used to hold several schemes in one layer.
pub(crate) trait DynAuthenticator: Send + Sync + 'static {
    fn scheme(&self) -> Scheme;
    fn challenges(&self) -> Vec<Challenge>;
    /// [`Authenticator::check`], with a pending credential made into the step that
    /// finishes it.
    fn check(&self, parts: &Parts) -> Check<Start>;
}

/// An authenticator as a layer holds it: shared, so that a pending step can own a
/// handle on it.
pub(crate) struct Held<A>(pub(crate) Arc<A>);

impl<A: Authenticator> DynAuthenticator for Held<A> {
    fn scheme(&self) -> Scheme {
        self.0.scheme()
    }
    fn challenges(&self) -> Vec<Challenge> {
        self.0.challenges()
    }
    fn check(&self, parts: &Parts) -> Check<Start> {
        match self.0.check(parts) {
            Check::Absent => Check::Absent,
            Check::Ready(result) => Check::Ready(result),
            Check::Pending(credential) => {
                let this = self.0.clone();
                Check::Pending(Box::new(move |parts: Parts| {
                    Box::pin(async move {
                        let result = this.authenticate(credential, &parts).await;
                        (parts, result)
                    }) as BoxFuture<'static, Authenticated>
                }))
            }
        }
    }
}
