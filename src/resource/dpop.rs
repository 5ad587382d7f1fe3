//! [`Dpop`]: DPoP-bound access tokens (RFC 9449) on [`BearerAuth`](crate::jwt::BearerAuth).

use std::fmt;
use std::time::Duration;

use axum::extract::OriginalUri;
use http::HeaderName;
use http::request::Parts;

use super::nonce::Nonces;
use super::proof::{ProofRequest, ProofRules, VerifiedProof, normalized_htu, verify_proof};
use super::replay::{Owner, ReplayCache, Use, proof_key};
use crate::clock::unix_secs;
use crate::context::AuthContext;
use crate::error::{AuthError, ConfigError};
use crate::jose::algorithm::Algorithm;
use crate::jose::algorithm::Family;

const DPOP: HeaderName = HeaderName::from_static("dpop");

/// DPoP (RFC 9449) for a [`BearerAuth`](crate::jwt::BearerAuth): an access token bound
/// to a key the client holds (`cnf.jkt`), presented as `Authorization: DPoP <token>`
/// with a fresh proof of that key in the `DPoP` header, so a stolen token is useless
/// alone.
///
/// - [`Dpop::allowed`]: `Bearer` and `DPoP` both accepted, but a token bound to a key
///   (`cnf.jkt`) sent as `Bearer` is refused (no downgrade); [`Dpop::required`]: only
///   `DPoP`.
/// - The proof: exactly one `DPoP` header, `typ` `dpop+jwt`, an asymmetric `alg` of
///   [`with_algorithms`](Self::with_algorithms), a public `jwk` (private members
///   refused) that verifies the signature and whose RFC 7638 thumbprint equals the
///   token's `cnf.jkt` (from the token, or from introspection), `htm` the request
///   method, `htu` the request URL built from the configured public URL (never from
///   `X-Forwarded-*`), `iat` within [`with_max_age`](Self::with_max_age) (60 s) in the
///   past and [`with_clock_skew`](Self::with_clock_skew) (5 s) in the future, `ath`
///   the token's SHA-256, and a `jti` used once ([`ReplayCache`]).
/// - Optional server nonces ([`with_nonces`](Self::with_nonces)): stateless, rotating,
///   answered `use_dpop_nonce` with a `DPoP-Nonce` header when missing or stale.
/// - Answers: `WWW-Authenticate: DPoP algs="..."` with `invalid_dpop_proof`,
///   `invalid_token` or `use_dpop_nonce`, beside the Bearer challenge when both are
///   allowed. A verified token stays cached; the proof is checked on every request.
///
/// ```
/// use portcullis::resource::{Dpop, ReplayCache};
/// let dpop = Dpop::required("https://api.example.com")?
///     .with_replay_cache(ReplayCache::memory());
/// # let _ = dpop;
/// # Ok::<(), portcullis::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Dpop {
    pub(crate) required: bool,
    base: url::Url,
    pub(crate) rules: ProofRules,
    replay: ReplayCache,
    nonces: Option<Nonces>,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("required", &self.required)
            .field("public_url", &self.base.as_str())
            .field("algorithms", &self.rules.algorithms)
            .finish_non_exhaustive()
    }
}

/// The default proof algorithms.
const DEFAULT_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
    Algorithm::PS384,
];

impl Dpop {
    /// `Bearer` and `DPoP` tokens both accepted; `public_url` is where clients reach
    /// this service (`https://api.example.com`, or with a path prefix the app sees
    /// stripped): a proof's `htu` must be that URL followed by the request's path.
    ///
    /// # Errors
    /// `public_url` is not an absolute http(s) URL without query or fragment.
    pub fn allowed(public_url: &str) -> Result<Self, ConfigError> {
        Self::new(public_url, false)
    }
    /// Only `DPoP` tokens accepted (a `Bearer` request is answered 401 with the DPoP
    /// challenge). See [`allowed`](Self::allowed) for `public_url`.
    ///
    /// # Errors
    /// As [`allowed`](Self::allowed).
    pub fn required(public_url: &str) -> Result<Self, ConfigError> {
        Self::new(public_url, true)
    }
    fn new(public_url: &str, required: bool) -> Result<Self, ConfigError> {
        let base = normalized_htu(public_url)
            .filter(|_| !public_url.contains(['?', '#']))
            .ok_or_else(|| {
                ConfigError::new(format!(
                    "DPoP public URL must be an absolute http(s) URL without query: {public_url:?}"
                ))
            })?;
        Ok(Dpop {
            required,
            base,
            rules: ProofRules {
                algorithms: DEFAULT_ALGORITHMS.to_vec(),
                max_age: 60,
                future_skew: 5,
                headers: Default::default(),
            },
            replay: ReplayCache::memory(),
            nonces: None,
        })
    }
    /// Accept proofs signed with these algorithms (asymmetric only).
    ///
    /// # Errors
    /// An HMAC algorithm, or none at all.
    pub fn with_algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, ConfigError> {
        let algs: Vec<Algorithm> = algorithms.into_iter().collect();
        if algs.is_empty() || algs.iter().any(|a| a.family() == Family::Hmac) {
            return Err(ConfigError::new(
                "DPoP proofs need asymmetric algorithms (ES256, EdDSA, PS256, ...)",
            ));
        }
        self.rules.algorithms = algs;
        self.rules.headers = Default::default();
        Ok(self)
    }
    /// How old a proof's `iat` may be (default 60 s).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.rules.max_age = max_age.as_secs().max(1);
        self
    }
    /// How far in the future a proof's `iat` may be (default 5 s).
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.rules.future_skew = skew.as_secs();
        self
    }
    /// Where used proofs are remembered (default: this process's memory; use
    /// `ReplayCache::redis` when several instances serve the same tokens).
    pub fn with_replay_cache(mut self, cache: ReplayCache) -> Self {
        self.replay = cache;
        self
    }
    /// Require server nonces: a proof must carry a nonce this service issued in the
    /// last `lifetime` (stateless: an HMAC under `key` over the time of issue, so every
    /// instance with the same key accepts every instance's nonces).
    ///
    /// # Errors
    /// `key` shorter than 32 bytes.
    pub fn with_nonces(mut self, key: &[u8], lifetime: Duration) -> Result<Self, ConfigError> {
        if key.len() < 32 {
            return Err(ConfigError::new("DPoP nonce key shorter than 32 bytes"));
        }
        self.nonces = Some(Nonces::new(key, lifetime.as_secs()));
        Ok(self)
    }
    /// The proof algorithms accepted.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.rules.algorithms
    }
    /// True when only `DPoP` tokens are accepted.
    pub(crate) fn is_required(&self) -> bool {
        self.required
    }

    /// The URL a proof for this request must name: the public URL's origin and path
    /// prefix, then the path the client requested.
    fn request_url(&self, parts: &Parts) -> Option<url::Url> {
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path(), |o| o.0.path());
        let prefix = self.base.path().trim_end_matches('/');
        let mut url = self.base.clone();
        // `set_path` runs the URL parser's path rules (dot segments, encoding), and the
        // base is an absolute http(s) URL without query or fragment: the result is
        // already in the form `normalized_htu` gives.
        url.set_path(&format!("{prefix}{path}"));
        Some(url)
    }
}

/// What remains to check after the proof: its one use.
pub(crate) enum Bound<'a> {
    /// Done: the context may be admitted.
    Admitted(AuthContext),
    /// The replay cache must answer first.
    Replay(
        AuthContext,
        crate::authenticator::BoxFuture<'a, Result<bool, AuthError>>,
    ),
}

impl Dpop {
    /// Checks a token sent as `Bearer`: refused when it is DPoP-bound (no downgrade)
    /// or when DPoP is required.
    #[inline]
    pub(crate) fn admit_bearer(&self, ctx: AuthContext) -> Result<AuthContext, AuthError> {
        match ctx.key_binding() {
            None => {}
            Some(crate::jose::claims::MALFORMED_BINDING) => {
                return Err(AuthError::invalid("dpop: the token's cnf is malformed"));
            }
            Some(_) => {
                return Err(AuthError::invalid(
                    "dpop: a DPoP-bound token sent as Bearer",
                ));
            }
        }
        if self.required {
            return Err(AuthError::invalid("dpop: required, Bearer refused"));
        }
        Ok(ctx)
    }

    /// Checks a token sent as `Authorization: DPoP` against the request's one proof:
    /// the proof itself, its key against the token's `cnf.jkt`, the nonce, and (in
    /// the returned step when the cache answers later) its single use.
    pub(crate) fn bind<'a>(
        &'a self,
        ctx: AuthContext,
        parts: &Parts,
        token: &[u8],
    ) -> Result<Bound<'a>, AuthError> {
        let mut proofs = parts.headers.get_all(DPOP).iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(AuthError::invalid_dpop_proof(
                "dpop: not exactly one DPoP header",
            ));
        };
        let proof = proof
            .to_str()
            .map_err(|_| AuthError::invalid_dpop_proof("dpop: proof is not text"))?;
        let url = self
            .request_url(parts)
            .ok_or_else(|| AuthError::invalid_dpop_proof("dpop: no request URL"))?;
        let now = unix_secs();
        let request = ProofRequest {
            method: parts.method.as_str(),
            url: &url,
            access_token: Some(token),
            now,
        };
        let verified = verify_proof(proof, request, &self.rules)?;
        match ctx.key_binding() {
            Some(jkt) if jkt == verified.jkt => {}
            Some(_) => {
                return Err(AuthError::invalid_dpop_proof(
                    "dpop: proof key is not the token's cnf.jkt",
                ));
            }
            None => return Err(AuthError::invalid("dpop: token is not DPoP-bound")),
        }
        self.check_nonce(&verified, now)?;
        let expires = verified
            .iat
            .saturating_add(self.rules.max_age)
            .saturating_add(self.rules.future_skew)
            .saturating_add(1);
        match self.replay.first_use(
            proof_key(&verified.jkt, &verified.jti),
            Owner {
                issuer: ctx.issuer().unwrap_or(""),
                subject: ctx.subject(),
            },
            expires,
        ) {
            Use::Now(first) => once(first).map(|()| Bound::Admitted(ctx)),
            Use::Later(answer) => Ok(Bound::Replay(ctx, answer)),
        }
    }

    fn check_nonce(&self, proof: &VerifiedProof, now: u64) -> Result<(), AuthError> {
        let Some(nonces) = &self.nonces else {
            return Ok(());
        };
        match &proof.nonce {
            Some(n) if nonces.accepts(n, now) => Ok(()),
            _ => Err(AuthError::use_dpop_nonce(nonces.issue(now))),
        }
    }
}

/// The replay cache's verdict on a proof.
pub(crate) fn once(first: Result<bool, AuthError>) -> Result<(), AuthError> {
    match first? {
        true => Ok(()),
        false => Err(AuthError::invalid_dpop_proof("dpop: proof replayed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request URL a proof is compared with is what `normalized_htu` makes of the
    /// public URL and the request's path, for every path spelling.
    #[test]
    fn the_request_url_is_the_normalized_one() {
        for base in ["https://api.example.com", "https://api.example.com/v1/"] {
            let dpop = Dpop::allowed(base).unwrap();
            for path in [
                "/",
                "/posts/1",
                "/a/../b",
                "/a/./b",
                "/%2e%2e/x",
                "/a/%2E/b",
                "//double",
                "/a%20b",
                "/a%2Fb",
                "/trailing/",
                "/x/..",
            ] {
                let parts = http::Request::get(path).body(()).unwrap().into_parts().0;
                let prefix = base.trim_end_matches('/');
                let want = normalized_htu(&format!("{prefix}{path}")).unwrap();
                assert_eq!(dpop.request_url(&parts), Some(want), "{base} {path}");
            }
        }
    }
}
