//! [`AssertionSigner`]: a short-lived JWT of the identity, signed by the gateway, for an
//! origin that verifies it with
//! [`IdentityProxy::gateway`](crate::iap::IdentityProxy::gateway) instead of trusting
//! plain headers.

use std::fmt;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use jsonwebtoken::{DecodingKey, DecodingKeyKind, EncodingKey};
use serde_json::{Value, json};

use crate::clock::unix_secs;
use crate::context::AuthContext;
use crate::error::{AuthError, ConfigError};
use crate::jwt::{Algorithm, PROVIDER};

/// One ES256 key: the private half signs, the public half goes in the JWKS.
struct Key {
    kid: String,
    signing: Option<EncodingKey>,
    jwk: Value,
}

/// Signs the gateway's assertion: ES256, a `kid`, `iss` the gateway, `aud` the origin,
/// `iat`/`exp` at most a minute apart, a random `jti`, and the context's `sub`,
/// `scheme`, `principal`, `roles`, `scopes`, `email`, `tenant` and `idp` (the issuer the
/// gateway verified). [`jwks`](Self::jwks) (served by [`router`](Self::router)) holds
/// the current public key and the keys being rotated out.
///
/// ```no_run
/// # fn f(private_pem: &str, public_pem: &str) -> Result<(), portcullis::ConfigError> {
/// use portcullis::gateway::{AssertionSigner, IdentityHeaders};
/// let signer = AssertionSigner::es256("https://gateway.example.com", "https://origin.internal", "2026-12", private_pem, public_pem)?;
/// let headers = IdentityHeaders::new().with_assertion(signer);
/// # let _ = headers; Ok(()) }
/// ```
pub struct AssertionSigner {
    issuer: String,
    audience: String,
    lifetime: u64,
    keys: Vec<Key>,
}

impl fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The public JWK of a P-256 SPKI PEM.
fn p256_jwk(kid: &str, public_pem: &str) -> Result<Value, ConfigError> {
    let bad = || ConfigError::new("gateway: not a P-256 public key PEM");
    let key = DecodingKey::from_ec_pem(public_pem.as_bytes()).map_err(|_| bad())?;
    let DecodingKeyKind::SecretOrDer(point) = key.kind() else {
        return Err(bad());
    };
    if point.len() != 65 || point[0] != 4 {
        return Err(bad());
    }
    Ok(json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }))
}

impl AssertionSigner {
    /// Signs as `issuer` for the origin `audience` with the P-256 key `private_pem`
    /// (PKCS#8) whose public half is `public_pem` (SPKI), under `kid`.
    ///
    /// # Errors
    /// A PEM that is not a P-256 key of that kind, the two halves not matching, or an
    /// empty issuer, audience or kid.
    pub fn es256(
        issuer: &str,
        audience: &str,
        kid: &str,
        private_pem: &str,
        public_pem: &str,
    ) -> Result<Self, ConfigError> {
        if issuer.is_empty() || audience.is_empty() || kid.is_empty() {
            return Err(ConfigError::new(
                "gateway: issuer, audience and kid are required",
            ));
        }
        let signing = EncodingKey::from_ec_pem(private_pem.as_bytes())
            .map_err(|_| ConfigError::new("gateway: not a P-256 private key PEM (PKCS#8)"))?;
        let signer = AssertionSigner {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime: 30,
            keys: vec![Key {
                kid: kid.to_owned(),
                signing: Some(signing),
                jwk: p256_jwk(kid, public_pem)?,
            }],
        };
        // The halves must match: sign once and verify with the public one.
        let probe = signer.sign_claims(&json!({"probe": true}))?;
        let set = crate::jwt::KeySet::from_jwks(
            signer.jwks().to_string().as_bytes(),
            &[Algorithm::ES256],
            false,
        )?;
        let (message, sig) = probe
            .rsplit_once('.')
            .ok_or_else(|| ConfigError::new("gateway: signing failed"))?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| ConfigError::new("gateway: signing failed"))?;
        if !set
            .keys()
            .iter()
            .any(|k| k.verify(message.as_bytes(), &sig))
        {
            return Err(ConfigError::new(
                "gateway: the private and public keys do not match",
            ));
        }
        Ok(signer)
    }
    /// Keeps publishing an earlier public key (`kid`, SPKI PEM) in the JWKS while
    /// assertions it signed may still be in flight: the rotation window.
    ///
    /// # Errors
    /// Not a P-256 public key PEM.
    pub fn with_previous_key(mut self, kid: &str, public_pem: &str) -> Result<Self, ConfigError> {
        self.keys.push(Key {
            kid: kid.to_owned(),
            signing: None,
            jwk: p256_jwk(kid, public_pem)?,
        });
        Ok(self)
    }
    /// How long an assertion is valid (default 30 s, at most 60 s).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.as_secs().clamp(1, 60);
        self
    }
    /// The JWK set the origin fetches: every public key, the current one first.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }
    /// A router serving [`jwks`](Self::jwks) at `path` (e.g.
    /// `/.well-known/gateway-jwks.json`), for the origin's key URL.
    pub fn router<S: Clone + Send + Sync + 'static>(&self, path: &str) -> Router<S> {
        let body = Bytes::from(self.jwks().to_string());
        Router::new().route(
            path,
            get(move || {
                let body = body.clone();
                async move {
                    let mut res = body.into_response();
                    res.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    res.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
                    res
                }
            }),
        )
    }

    fn sign_claims(&self, claims: &Value) -> Result<String, ConfigError> {
        let key = &self.keys[0];
        let signing = key
            .signing
            .as_ref()
            .ok_or_else(|| ConfigError::new("gateway: no signing key"))?;
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": key.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = (PROVIDER.signer_factory)(&jsonwebtoken::Algorithm::ES256, signing)
            .map_err(|_| ConfigError::new("gateway: cannot sign ES256"))?;
        let sig = signer
            .try_sign(input.as_bytes())
            .map_err(|_| ConfigError::new("gateway: signing failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The assertion for `ctx`, valid from now for the lifetime.
    pub fn sign(&self, ctx: &AuthContext) -> Result<String, AuthError> {
        let now = unix_secs();
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| AuthError::unavailable("gateway: no randomness"))?;
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "sub": ctx.subject(),
            "scheme": ctx.scheme().as_str(),
            "principal": if ctx.is_service() { "service" } else { "user" },
            "roles": ctx.roles(),
            "scope": ctx.scopes().join(" "),
        });
        if let Some(e) = ctx.email() {
            claims["email"] = e.into();
        }
        if let Some(t) = ctx.tenant() {
            claims["tenant"] = t.into();
        }
        if let Some(i) = ctx.issuer() {
            claims["idp"] = i.into();
        }
        self.sign_claims(&claims).map_err(|e| {
            tracing::error!(error = %e, "gateway assertion could not be signed");
            AuthError::unavailable("gateway: assertion signing failed")
        })
    }
}
