//! Test kit (feature `test-util`): fixed test keys, token minting, a key server on
//! 127.0.0.1, and fake contexts for handler tests.
//!
//! The keys here are public (they ship in the crate): never trust them in production.
//! A verifier refuses signatures by them unless this process uses the test kit (any
//! [`TestKey`], [`TokenBuilder`], [`KeyServer`] or [`jwks`] call), and a build without
//! feature `test-util` refuses them always.
//!
//! ```
//! use portcullis::testing::{TestKey, TokenBuilder};
//! let token = TokenBuilder::new(TestKey::Rs256)
//!     .with_claim("iss", "https://issuer.test")
//!     .with_claim("aud", "api")
//!     .sign();
//! assert_eq!(token.split('.').count(), 3);
//! ```

mod dev_idp;
mod key_server;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Map, Value, json};

pub use self::key_server::KeyServer;
use crate::context::{AuthContext, AuthContextBuilder, Scheme};
use crate::jwt::{Algorithm, KeySet, PROVIDER};

/// The audience of the tokens [`KeyServer::token_for`] mints (pass it to
/// `Validation::with_audience`).
pub const TEST_AUDIENCE: &str = "api";
/// The OAuth client id the [`KeyServer`] knows (introspection, token endpoint).
pub const TEST_CLIENT_ID: &str = "portcullis-test-client";
/// The secret of [`TEST_CLIENT_ID`].
pub const TEST_CLIENT_SECRET: &str = "portcullis-test-secret";

/// The HMAC secret of [`TestKey::Hs256`].
pub const HMAC_SECRET: &[u8; 32] = b"portcullis-test-secret-32-bytes!";

/// A fixed test key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TestKey {
    /// HS256 with [`HMAC_SECRET`], kid `hs1`.
    Hs256,
    /// RS256, 2048-bit, kid `rsa1`.
    Rs256,
    /// A second RS256 key, kid `rsa2` (for rotation tests).
    Rs256Next,
    /// ES256 (P-256), kid `ec1`.
    Es256,
    /// EdDSA (Ed25519), kid `ed1`.
    EdDsa,
    /// RS256 with a 1024-bit modulus (too small; must be refused), kid `rsa-small`.
    Rs256Weak,
}

const PUBLIC_JWKS: &str = include_str!("keys/public_jwks.json");

impl TestKey {
    /// Every test key that can sign usable tokens (the weak key is left out).
    pub const ALL: [TestKey; 5] = [
        TestKey::Rs256,
        TestKey::Es256,
        TestKey::EdDsa,
        TestKey::Hs256,
        TestKey::Rs256Next,
    ];
    /// The key id.
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::Hs256 => "hs1",
            TestKey::Rs256 => "rsa1",
            TestKey::Rs256Next => "rsa2",
            TestKey::Es256 => "ec1",
            TestKey::EdDsa => "ed1",
            TestKey::Rs256Weak => "rsa-small",
        }
    }
    /// The algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            TestKey::Hs256 => Algorithm::HS256,
            TestKey::Rs256 | TestKey::Rs256Next | TestKey::Rs256Weak => Algorithm::RS256,
            TestKey::Es256 => Algorithm::ES256,
            TestKey::EdDsa => Algorithm::EdDSA,
        }
    }
    fn file(self) -> &'static str {
        match self {
            TestKey::Hs256 => "",
            TestKey::Rs256 => "rsa1",
            TestKey::Rs256Next => "rsa2",
            TestKey::Es256 => "ec1",
            TestKey::EdDsa => "ed1",
            TestKey::Rs256Weak => "rsa_small",
        }
    }
    /// The private key in PKCS#8 PEM (empty for HMAC).
    pub fn private_pem(self) -> &'static str {
        in_use();
        match self {
            TestKey::Hs256 => "",
            TestKey::Rs256 => include_str!("keys/rsa1.pem"),
            TestKey::Rs256Next => include_str!("keys/rsa2.pem"),
            TestKey::Es256 => include_str!("keys/ec1.pem"),
            TestKey::EdDsa => include_str!("keys/ed1.pem"),
            TestKey::Rs256Weak => include_str!("keys/rsa_small.pem"),
        }
    }
    /// The public key in SPKI PEM (empty for HMAC).
    pub fn public_pem(self) -> &'static str {
        in_use();
        match self {
            TestKey::Hs256 => "",
            TestKey::Rs256 => include_str!("keys/rsa1.pub.pem"),
            TestKey::Rs256Next => include_str!("keys/rsa2.pub.pem"),
            TestKey::Es256 => include_str!("keys/ec1.pub.pem"),
            TestKey::EdDsa => include_str!("keys/ed1.pub.pem"),
            TestKey::Rs256Weak => include_str!("keys/rsa_small.pub.pem"),
        }
    }
    /// The public JWK with `kid`, `alg` and `use: sig` (HMAC: an `oct` key).
    pub fn public_jwk(self) -> Value {
        in_use();
        let mut jwk = match self {
            TestKey::Hs256 => json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(HMAC_SECRET)}),
            _ => {
                let all: Value = serde_json::from_str(PUBLIC_JWKS).unwrap_or(Value::Null);
                all.get(self.file()).cloned().unwrap_or(Value::Null)
            }
        };
        if let Some(m) = jwk.as_object_mut() {
            m.insert("kid".into(), self.kid().into());
            m.insert("alg".into(), self.algorithm().as_str().into());
            m.insert("use".into(), "sig".into());
        }
        jwk
    }
    /// A static [`KeySet`] holding this key's public half.
    pub fn key_set(self) -> KeySet {
        in_use();
        let doc = jwks(&[self]).to_string();
        KeySet::from_jwks(doc.as_bytes(), &[self.algorithm()], true).unwrap_or_default()
    }
    fn encoding_key(self) -> Option<EncodingKey> {
        in_use();
        let pem = self.private_pem().as_bytes();
        match self {
            TestKey::Hs256 => Some(EncodingKey::from_secret(HMAC_SECRET)),
            TestKey::Rs256 | TestKey::Rs256Next | TestKey::Rs256Weak => {
                EncodingKey::from_rsa_pem(pem).ok()
            }
            TestKey::Es256 => EncodingKey::from_ec_pem(pem).ok(),
            TestKey::EdDsa => EncodingKey::from_ed_pem(pem).ok(),
        }
    }
    /// Signs `message` with this key under `alg`, returning base64url; `None` when the
    /// key cannot sign with `alg`.
    pub fn sign_message(self, message: &[u8], alg: Algorithm) -> Option<String> {
        let key = self.encoding_key()?;
        let signer = (PROVIDER.signer_factory)(&alg.to_jsonwebtoken(), &key).ok()?;
        let sig = signer.try_sign(message).ok()?;
        Some(URL_SAFE_NO_PAD.encode(sig))
    }
}

/// Marks this process as using the test kit: its published keys may verify.
pub(crate) fn in_use() {
    crate::jose::published_keys::test_kit_in_use();
}

/// A JWK set document with the public halves of `keys`.
pub fn jwks(keys: &[TestKey]) -> Value {
    in_use();
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    crate::clock::unix_secs()
}

/// Mints tokens. Defaults: header `{"alg": <key alg>, "typ": "JWT", "kid": <kid>}`,
/// claims `sub = "user-1"`, `iat = now`, `exp = now + 600`. Everything can be overridden
/// or removed, so tests can build hostile tokens too.
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenBuilder {
    key: TestKey,
    alg: Algorithm,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl TokenBuilder {
    /// A token signed by `key`.
    pub fn new(key: TestKey) -> Self {
        in_use();
        let now = now();
        let mut header = Map::new();
        header.insert("alg".into(), key.algorithm().as_str().into());
        header.insert("typ".into(), "JWT".into());
        header.insert("kid".into(), key.kid().into());
        let mut claims = Map::new();
        claims.insert("sub".into(), "user-1".into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + 600).into());
        TokenBuilder {
            key,
            alg: key.algorithm(),
            header,
            claims,
        }
    }
    /// Set a claim.
    pub fn with_claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }
    /// Remove a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }
    /// Set a header parameter (does not change the signing algorithm).
    pub fn with_header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }
    /// Remove a header parameter.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }
    /// Sign with `alg` (and put it in the header), e.g. HS256 keyed with an RSA key's bytes.
    pub fn with_signing_algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self.header.insert("alg".into(), alg.as_str().into());
        self
    }
    /// The header and claims JSON, base64url-encoded and joined: the signing input.
    pub fn signing_input(&self) -> String {
        let h = URL_SAFE_NO_PAD.encode(Value::Object(self.header.clone()).to_string());
        let c = URL_SAFE_NO_PAD.encode(Value::Object(self.claims.clone()).to_string());
        format!("{h}.{c}")
    }
    /// The compact JWS. An impossible key/algorithm pair yields an unsigned-looking token
    /// with an empty signature, which every verifier must reject.
    pub fn sign(&self) -> String {
        let input = self.signing_input();
        let sig = self
            .key
            .sign_message(input.as_bytes(), self.alg)
            .unwrap_or_default();
        format!("{input}.{sig}")
    }
}

/// Signs exact header and payload bytes (for duplicate-key and other raw-JSON tests).
pub fn sign_raw(key: TestKey, alg: Algorithm, header_json: &str, payload_json: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(payload_json)
    );
    let sig = key.sign_message(input.as_bytes(), alg).unwrap_or_default();
    format!("{input}.{sig}")
}

/// A context builder for handler unit tests.
///
/// ```
/// use portcullis::{Scheme, testing::fake_context};
/// let ctx = fake_context("alice").with_roles(["admin"]).build();
/// assert_eq!(ctx.scheme(), Scheme::Custom);
/// ```
pub fn fake_context(subject: &str) -> AuthContextBuilder {
    AuthContext::builder(subject, Scheme::Custom)
}
