//! Crypto backend selection and algorithm-bound verifying keys.

use std::fmt;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::crypto::CryptoProvider;

use super::algorithm::Algorithm;

use crate::error::ConfigError;

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "portcullis: the `jwt` feature (and `iap`, `oauth`) needs a crypto backend: add the feature `aws-lc-rs` (fastest, builds C) or `rust-crypto` (pure Rust)"
);

/// The backend in use: aws-lc-rs when its feature is on, else RustCrypto (and
/// RustCrypto under `--cfg portcullis_rust_crypto_only`, which `.ci/run` sets to test it).
/// Chosen explicitly, never via jsonwebtoken's process default, so enabling both
/// features (e.g. `--all-features`) cannot make verification panic.
#[cfg(all(feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
pub(crate) static PROVIDER: &CryptoProvider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
#[cfg(all(
    feature = "rust-crypto",
    any(not(feature = "aws-lc-rs"), portcullis_rust_crypto_only)
))]
pub(crate) static PROVIDER: &CryptoProvider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;

/// A public key (or HMAC secret) bound to exactly one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    /// One of the test kit's published keys: verifies only where the test kit is in use.
    published: bool,
    /// The key parsed once for the backend (aws-lc-rs), so verification skips key setup.
    #[cfg(all(feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
    prepared: Option<std::sync::Arc<super::prepared::PreparedKey>>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Binds `key` to `alg`; fails when the key's family does not match the algorithm.
    pub(crate) fn new(
        kid: Option<String>,
        alg: Algorithm,
        key: DecodingKey,
    ) -> Result<Self, ConfigError> {
        if key.family() != alg.to_jsonwebtoken().family() {
            return Err(ConfigError::new("key type does not match algorithm"));
        }
        let published = super::published_keys::is_published(&key);
        if published && !super::published_keys::trusted() {
            tracing::error!(
                kid = kid.as_deref().unwrap_or(""),
                "a key set holds one of the test kit's published keys (their private halves \
                 ship in the crate); signatures by it are refused"
            );
        }
        Ok(VerifyingKey {
            kid,
            alg,
            published,
            #[cfg(all(feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
            prepared: super::prepared::PreparedKey::new(alg, &key).map(std::sync::Arc::new),
            key,
        })
    }
    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// True when the key was parsed once for the backend (the fast path).
    #[cfg(all(test, feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
    pub(crate) fn is_prepared(&self) -> bool {
        self.prepared.is_some()
    }

    /// Verifies `signature` over `message`; never for a published test key outside a
    /// process that uses the test kit.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if self.published && !super::published_keys::trusted() {
            return false;
        }
        #[cfg(all(feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
        if let Some(p) = &self.prepared {
            return p.verify(message, signature);
        }
        match (PROVIDER.verifier_factory)(&self.alg.to_jsonwebtoken(), &self.key) {
            Ok(v) => v.verify(message, &signature.to_vec()).is_ok(),
            Err(_) => false,
        }
    }
}
