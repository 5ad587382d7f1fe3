//! [`KeySet`]: algorithm-bound verification keys, from secrets, PEM or a JWK set.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::algorithm::{Algorithm, Family};
use super::crypto::VerifyingKey;
use super::strict_json::parse_map;
use crate::error::ConfigError;

/// Shortest HMAC secret accepted for HS256; HS384 and HS512 need 48 and 64 bytes
/// (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The shortest secret RFC 7518 §3.2 allows for `alg`: the size of its hash.
fn min_hmac_secret_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => MIN_HMAC_SECRET_BYTES,
    }
}

/// The size in bits of a big-endian unsigned integer (leading zero bytes and bits
/// skipped): a 2041-bit modulus is 2041, not 2048.
fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
        None => 0,
    }
}

/// The modulus size of a PKCS#1 `RSAPublicKey` (DER), or `None` when it is not one.
fn pkcs1_modulus_bits(der: &[u8]) -> Option<usize> {
    use simple_asn1::ASN1Block;
    let blocks = simple_asn1::from_der(der).ok()?;
    match blocks.as_slice() {
        [ASN1Block::Sequence(_, fields)] => match fields.as_slice() {
            [ASN1Block::Integer(_, n), ASN1Block::Integer(_, _)] => {
                // Two's complement: a set top bit is a negative modulus, never a key.
                let bytes = n.to_signed_bytes_be();
                (bytes.first().is_some_and(|b| b & 0x80 == 0)).then(|| bit_length(&bytes))
            }
            _ => None,
        },
        _ => None,
    }
}
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The outcome of looking a token's `kid` and `alg` up in a set.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(&'a VerifyingKey),
    /// No key has this `kid` (a refetch may help).
    UnknownKid,
    /// The key exists but not for this algorithm, or no kid and no single candidate.
    NoKey,
    /// Two keys claim the same `kid` and algorithm: never resolved by taking the first.
    Ambiguous,
}

/// A set of verification keys, each bound to one algorithm.
///
/// ```
/// use portcullis::jwt::{Algorithm, KeySet};
/// let keys = KeySet::new().with_hmac_secret(b"0123456789abcdef0123456789abcdef", Algorithm::HS256).unwrap();
/// assert_eq!(keys.len(), 1);
/// assert!(KeySet::new().with_hmac_secret(b"short", Algorithm::HS256).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of (key, algorithm) entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// The keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }
    fn with_key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }
    /// Add an HMAC secret for `alg` (HS256/384/512), at least as long as the hash:
    /// 32, 48 or 64 bytes.
    pub fn with_hmac_secret(self, secret: &[u8], alg: Algorithm) -> Result<Self, ConfigError> {
        if secret.len() < min_hmac_secret_bytes(alg) {
            return Err(ConfigError::new(
                "HMAC secret shorter than the algorithm's hash",
            ));
        }
        Ok(self.with_key(VerifyingKey::new(
            None,
            alg,
            DecodingKey::from_secret(secret),
        )?))
    }
    /// Add a PEM public key (RSA, EC or Ed25519) for `alg`, with an optional `kid`.
    /// RSA moduli under [`MIN_RSA_BITS`] are refused.
    pub fn with_pem(
        self,
        kid: Option<&str>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let key = match alg.family() {
            Family::Rsa => DecodingKey::from_rsa_pem(pem),
            Family::Ec => DecodingKey::from_ec_pem(pem),
            Family::Ed => DecodingKey::from_ed_pem(pem),
            Family::Hmac => return Err(ConfigError::new("use with_hmac_secret for HMAC")),
        }
        .map_err(|_| ConfigError::new("bad PEM key"))?;
        if alg.family() == Family::Rsa {
            let bits = match key.kind() {
                jsonwebtoken::DecodingKeyKind::SecretOrDer(der) => pkcs1_modulus_bits(der),
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } => Some(bit_length(n)),
            };
            match bits {
                Some(b) if b >= MIN_RSA_BITS => {}
                Some(_) => return Err(ConfigError::new("RSA key too small")),
                None => return Err(ConfigError::new("bad PEM key")),
            }
        }
        Ok(self.with_key(VerifyingKey::new(kid.map(str::to_owned), alg, key)?))
    }

    /// Parses a JWK set (`{"keys":[...]}`), keeping keys usable with `allowed` algorithms.
    ///
    /// Skipped: `use` other than `sig`, `key_ops` without `verify`, unknown `kty`/`crv`/`alg`,
    /// algorithms outside `allowed`, RSA moduli under 2048 bits, and symmetric (`oct`) keys
    /// unless `allow_symmetric`. A set with duplicate keys or malformed JSON is an error.
    pub fn from_jwks(
        json: &[u8],
        allowed: &[Algorithm],
        allow_symmetric: bool,
    ) -> Result<Self, ConfigError> {
        let doc = parse_map(json).ok_or(ConfigError::new("JWKS is not a JSON object"))?;
        let Some(Value::Array(items)) = doc.get("keys") else {
            return Err(ConfigError::new("JWKS has no keys array"));
        };
        let mut set = KeySet::new();
        for item in items {
            match jwk_to_keys(item, allowed, allow_symmetric) {
                Ok(keys) => set.keys.extend(keys),
                Err(e) => tracing::debug!(reason = e.message(), "JWK skipped"),
            }
        }
        Ok(set)
    }

    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let mut kid_seen = false;
        let mut found: Option<&VerifyingKey> = None;
        for k in &self.keys {
            if let Some(kid) = kid {
                if k.kid.as_deref() != Some(kid) {
                    continue;
                }
                kid_seen = true;
            }
            if k.alg == alg {
                if found.is_some() {
                    return Lookup::Ambiguous;
                }
                found = Some(k);
            }
        }
        match found {
            Some(k) => Lookup::Found(k),
            None if kid.is_some() && !kid_seen => Lookup::UnknownKid,
            None => Lookup::NoKey,
        }
    }
}

fn str_field<'a>(
    jwk: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, ConfigError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(ConfigError::new("missing key parameter"))
}

pub(crate) fn jwk_to_keys(
    item: &Value,
    allowed: &[Algorithm],
    allow_symmetric: bool,
) -> Result<Vec<VerifyingKey>, ConfigError> {
    let jwk = item
        .as_object()
        .ok_or(ConfigError::new("JWK is not an object"))?;
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err(ConfigError::new("use is not sig")),
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|o| o == "verify") => {}
        Some(_) => return Err(ConfigError::new("key_ops lacks verify")),
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(ConfigError::new("kid is not a string")),
    };
    let declared = match jwk.get("alg") {
        None => None,
        Some(Value::String(a)) => {
            Some(Algorithm::from_jose(a).ok_or(ConfigError::new("unknown alg"))?)
        }
        Some(_) => return Err(ConfigError::new("alg is not a string")),
    };
    let kty = str_field(jwk, "kty")?;
    let (candidates, key): (Vec<Algorithm>, DecodingKey) = match kty {
        "RSA" => {
            let n = str_field(jwk, "n")?;
            let n_bytes = URL_SAFE_NO_PAD
                .decode(n)
                .map_err(|_| ConfigError::new("bad n"))?;
            if bit_length(&n_bytes) < MIN_RSA_BITS {
                return Err(ConfigError::new("RSA key too small"));
            }
            let key = DecodingKey::from_rsa_components(n, str_field(jwk, "e")?)
                .map_err(|_| ConfigError::new("bad RSA key"))?;
            use Algorithm::*;
            (vec![RS256, RS384, RS512, PS256, PS384, PS512], key)
        }
        "EC" => {
            let alg = match str_field(jwk, "crv")? {
                "P-256" => Algorithm::ES256,
                "P-384" => Algorithm::ES384,
                _ => return Err(ConfigError::new("unsupported curve")),
            };
            let key = DecodingKey::from_ec_components(str_field(jwk, "x")?, str_field(jwk, "y")?)
                .map_err(|_| ConfigError::new("bad EC key"))?;
            (vec![alg], key)
        }
        "OKP" => {
            if str_field(jwk, "crv")? != "Ed25519" {
                return Err(ConfigError::new("unsupported curve"));
            }
            let key = DecodingKey::from_ed_components(str_field(jwk, "x")?)
                .map_err(|_| ConfigError::new("bad OKP key"))?;
            (vec![Algorithm::EdDSA], key)
        }
        "oct" if allow_symmetric => {
            let k = URL_SAFE_NO_PAD
                .decode(str_field(jwk, "k")?)
                .map_err(|_| ConfigError::new("bad k"))?;
            let algs: Vec<Algorithm> = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
                .into_iter()
                .filter(|a| k.len() >= min_hmac_secret_bytes(*a))
                .collect();
            if algs.is_empty() {
                return Err(ConfigError::new("HMAC secret too short"));
            }
            (algs, DecodingKey::from_secret(&k))
        }
        _ => return Err(ConfigError::new("unsupported kty")),
    };
    let algs: Vec<Algorithm> = match declared {
        Some(a) if candidates.contains(&a) => vec![a],
        Some(_) => return Err(ConfigError::new("alg does not match key type or key size")),
        None => candidates,
    };
    let keys: Vec<VerifyingKey> = algs
        .into_iter()
        .filter(|a| allowed.contains(a))
        .map(|a| VerifyingKey::new(kid.clone(), a, key.clone()))
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(ConfigError::new("no allowed algorithm for key"));
    }
    Ok(keys)
}

#[cfg(all(test, feature = "test-util"))]
mod size_tests {
    use super::*;
    use crate::testing::TestKey;

    #[test]
    fn bit_length_counts_bits_not_bytes() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        let mut n = vec![0u8; 256];
        n[0] = 0x01; // 2041 bits in 256 bytes
        assert_eq!(bit_length(&n), 2041);
        n[0] = 0x80;
        assert_eq!(bit_length(&n), 2048);
    }

    #[test]
    fn small_rsa_pem_keys_are_refused() {
        let small = TestKey::Rs256Weak.public_pem();
        let err = KeySet::new()
            .with_pem(None, Algorithm::RS256, small.as_bytes())
            .unwrap_err();
        assert_eq!(err.message(), "RSA key too small");
        assert!(
            KeySet::new()
                .with_pem(
                    None,
                    Algorithm::RS256,
                    TestKey::Rs256.public_pem().as_bytes()
                )
                .is_ok()
        );
    }

    #[test]
    fn hmac_secrets_must_be_as_long_as_the_hash() {
        for (alg, min) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            assert!(
                KeySet::new()
                    .with_hmac_secret(&vec![7; min - 1], alg)
                    .is_err()
            );
            assert!(KeySet::new().with_hmac_secret(&vec![7; min], alg).is_ok());
        }
        // A 32-byte `oct` JWK serves HS256 only, a 48-byte one HS256 and HS384.
        let jwk = |len: usize| {
            let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![9u8; len]);
            format!(r#"{{"keys":[{{"kty":"oct","k":"{k}"}}]}}"#)
        };
        let all = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        let algs = |len| {
            KeySet::from_jwks(jwk(len).as_bytes(), &all, true)
                .unwrap()
                .keys()
                .iter()
                .map(VerifyingKey::algorithm)
                .collect::<Vec<_>>()
        };
        assert_eq!(algs(32), [Algorithm::HS256]);
        assert_eq!(algs(48), [Algorithm::HS256, Algorithm::HS384]);
        assert_eq!(algs(64), all);
    }
}

#[cfg(all(
    test,
    feature = "aws-lc-rs",
    feature = "test-util",
    not(portcullis_rust_crypto_only)
))]
mod tests {
    use super::*;
    use crate::testing::{TestKey, jwks};

    #[test]
    fn every_test_key_takes_the_prepared_path() {
        let all = [
            TestKey::Hs256,
            TestKey::Rs256,
            TestKey::Rs256Next,
            TestKey::Es256,
            TestKey::EdDsa,
        ];
        let doc = jwks(&all).to_string();
        let algs = [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ];
        let set = KeySet::from_jwks(doc.as_bytes(), &algs, true).unwrap();
        assert_eq!(set.len(), 5);
        assert!(set.keys().iter().all(VerifyingKey::is_prepared));
        let pem = KeySet::new()
            .with_pem(
                None,
                Algorithm::RS256,
                TestKey::Rs256.public_pem().as_bytes(),
            )
            .unwrap()
            .with_pem(
                None,
                Algorithm::ES256,
                TestKey::Es256.public_pem().as_bytes(),
            )
            .unwrap()
            .with_pem(
                None,
                Algorithm::EdDSA,
                TestKey::EdDsa.public_pem().as_bytes(),
            )
            .unwrap();
        assert!(pem.keys().iter().all(VerifyingKey::is_prepared));
    }
}
