//! [`Issuer`]: one trusted issuer, its keys ([`KeySource`]), the rules its tokens must
//! meet and how their claims fill the context.

use std::fmt;
use std::sync::Arc;

use super::remote::RemoteJwks;
use super::token::UnverifiedToken;
use super::validation::Validation;
use crate::context::AuthContextBuilder;
use crate::error::AuthError;
use crate::jose::claims::Claims;
use crate::jose::keys::{KeySet, Lookup};
use crate::jose::mapping::ClaimsMapping;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// Keys configured in code.
    Static(Arc<KeySet>),
    /// Keys fetched from a JWKS URL or OIDC discovery.
    Remote(RemoteJwks),
}

impl From<KeySet> for KeySource {
    fn from(k: KeySet) -> Self {
        KeySource::Static(Arc::new(k))
    }
}
impl From<RemoteJwks> for KeySource {
    fn from(r: RemoteJwks) -> Self {
        KeySource::Remote(r)
    }
}

/// Maps verified claims to a context builder; the verifier attaches the raw claims.
type ContextMapper =
    Arc<dyn Fn(&Claims<'_>) -> Result<AuthContextBuilder, AuthError> + Send + Sync>;

#[derive(Clone)]
pub(super) enum Mapping {
    Claims(ClaimsMapping),
    Custom(ContextMapper),
}

/// One trusted issuer: its keys, what its tokens must satisfy, and how claims map.
///
/// ```
/// use portcullis::jwt::{Algorithm, Issuer, KeySet, Validation};
/// let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
/// let issuer = Issuer::new(keys, Validation::new([Algorithm::HS256]).with_issuer("me").with_audience("api"));
/// # let _ = issuer;
/// ```
#[derive(Clone)]
pub struct Issuer {
    pub(super) keys: KeySource,
    pub(super) validation: Validation,
    pub(super) mapping: Mapping,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("keys", &self.keys)
            .field("validation", &self.validation)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer with `keys` and `validation`, default claim mapping.
    ///
    /// A validation that names no audience (and did not opt out with
    /// [`Validation::without_audience_check`]), when nothing supplies one later
    /// ([`BearerAuth::with_resource`](super::BearerAuth::with_resource)), refuses every
    /// token; the first refusal says so at error level.
    pub fn new(keys: impl Into<KeySource>, validation: Validation) -> Self {
        Issuer {
            keys: keys.into(),
            validation,
            mapping: Mapping::Claims(ClaimsMapping::default()),
        }
    }
    /// Change how claims fill the context.
    pub fn with_mapping(mut self, mapping: ClaimsMapping) -> Self {
        self.mapping = Mapping::Claims(mapping);
        self
    }
    /// Build the context with your own function instead of a [`ClaimsMapping`]; it sees
    /// the claims of tokens that passed every check, and the raw claims are attached to
    /// whatever it builds. See [`Claims`] for an example.
    pub fn with_context_mapper<F>(mut self, f: F) -> Self
    where
        F: Fn(&Claims<'_>) -> Result<AuthContextBuilder, AuthError> + Send + Sync + 'static,
    {
        self.mapping = Mapping::Custom(Arc::new(f));
        self
    }
    /// The issuer with its validation rules passed through `f` (how a provider preset
    /// adjusts them).
    pub(crate) fn map_validation(mut self, f: impl FnOnce(Validation) -> Validation) -> Self {
        self.validation = f(self.validation);
        self
    }
    /// The validation rules.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }
    /// The key set's generation, or `None` when a remote set is past its staleness
    /// bound (nothing verified under it may be served from the token cache).
    pub(super) fn live_generation(&self) -> Option<u64> {
        match &self.keys {
            KeySource::Static(_) => Some(0),
            KeySource::Remote(r) => r.live_generation(),
        }
    }
    /// The key set's generation, whatever its age.
    pub(super) fn generation(&self) -> u64 {
        match &self.keys {
            KeySource::Static(_) => 0,
            KeySource::Remote(r) => r.generation(),
        }
    }

    pub(super) async fn check_signature(&self, t: &UnverifiedToken<'_>) -> Result<(), AuthError> {
        let kid = t.header.kid.as_deref();
        let alg = t.header.alg;
        let ok = match &self.keys {
            KeySource::Static(set) => match set.find(kid, alg) {
                Lookup::Found(k) => k.verify(t.message.as_bytes(), &t.signature),
                other => return Err(lookup_error(&other)),
            },
            KeySource::Remote(remote) => {
                let cached = remote.current().await?;
                match cached.keys.find(kid, alg) {
                    Lookup::Found(k) => k.verify(t.message.as_bytes(), &t.signature),
                    Lookup::UnknownKid => match remote.refetch_for_unknown_kid(&cached).await {
                        Some(fresh) => match fresh.keys.find(kid, alg) {
                            Lookup::Found(k) => k.verify(t.message.as_bytes(), &t.signature),
                            other => return Err(lookup_error(&other)),
                        },
                        None => return Err(lookup_error(&Lookup::UnknownKid)),
                    },
                    other => return Err(lookup_error(&other)),
                }
            }
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::invalid("jwt: bad signature"))
        }
    }
}

fn lookup_error(l: &Lookup<'_>) -> AuthError {
    match l {
        Lookup::UnknownKid => AuthError::invalid("jwt: unknown kid"),
        Lookup::Ambiguous => AuthError::invalid("jwt: ambiguous key"),
        _ => AuthError::invalid("jwt: no key for this kid and alg"),
    }
}
