//! The test kit's keys are public (their private halves ship in the crate), so a
//! verifier never trusts them by accident: a key set may hold one, but a signature by
//! it verifies only in a process that uses the test kit (feature `test-util`: any
//! `TestKey`, `TokenBuilder`, `KeyServer` or `jwks` call). A build without `test-util`
//! can never trust them.

use std::sync::atomic::{AtomicBool, Ordering};

use jsonwebtoken::{DecodingKey, DecodingKeyKind};
use sha2::{Digest, Sha256};

/// Set by the test kit, never cleared.
static TEST_KIT_IN_USE: AtomicBool = AtomicBool::new(false);

/// Called by every test-kit entry point.
#[cfg(feature = "test-util")]
pub(crate) fn test_kit_in_use() {
    TEST_KIT_IN_USE.store(true, Ordering::Relaxed);
}

/// Whether a signature by a published test key may verify in this process.
pub(crate) fn trusted() -> bool {
    TEST_KIT_IN_USE.load(Ordering::Relaxed)
}

/// SHA-256 over a family tag and the key's public material (RSA modulus, EC point,
/// Ed25519 key, HMAC secret) of every key the test kit publishes: its RSA, ES256 and
/// Ed25519 pairs, the rotation and the weak RSA key, and its HMAC secret.
const PUBLISHED: [[u8; 32]; 6] = [
    // Checked against the test kit by `published_fingerprints_match_the_test_kit`.
    [
        0x19, 0xf3, 0x48, 0x64, 0x2d, 0x7a, 0x03, 0x6f, 0x88, 0x3f, 0xa4, 0x8f, 0xb4, 0xb0, 0x93,
        0x03, 0x59, 0x99, 0xbb, 0x8c, 0xf7, 0xe5, 0x3e, 0x24, 0xff, 0x70, 0x0c, 0x7d, 0x1b, 0x11,
        0x2b, 0x94,
    ],
    [
        0x90, 0x02, 0x6f, 0xd0, 0x3c, 0x56, 0xad, 0xb0, 0x19, 0x04, 0x9d, 0x44, 0x51, 0x8b, 0x8e,
        0x29, 0x5b, 0x7c, 0x1d, 0xcf, 0x08, 0x1a, 0x4a, 0xd8, 0xd5, 0xe1, 0x12, 0x93, 0xba, 0x00,
        0x33, 0xb5,
    ],
    [
        0x33, 0xc1, 0x55, 0x95, 0xee, 0x88, 0xd4, 0x12, 0xfb, 0xd7, 0x6c, 0xe2, 0x94, 0xe5, 0x98,
        0x07, 0x83, 0x1d, 0x3b, 0x0a, 0x92, 0x7b, 0xab, 0x86, 0xb9, 0x42, 0x03, 0x16, 0x41, 0x7f,
        0x54, 0x08,
    ],
    [
        0x68, 0x38, 0xbb, 0xbe, 0xf8, 0xae, 0xc4, 0x75, 0x3a, 0x23, 0xf0, 0x8a, 0x82, 0x4b, 0x21,
        0x24, 0xe2, 0x5b, 0x1c, 0xdf, 0x0e, 0xb5, 0xdf, 0x09, 0xcc, 0xc1, 0xe4, 0x16, 0x7e, 0x85,
        0x30, 0x3e,
    ],
    [
        0x12, 0xb8, 0xea, 0x49, 0xb1, 0xdc, 0x20, 0x74, 0xc5, 0x1f, 0x1c, 0xcf, 0x0b, 0x3c, 0x66,
        0x33, 0x1e, 0xcc, 0xac, 0x3d, 0x4d, 0x77, 0xf5, 0xa8, 0xcd, 0xbe, 0x5b, 0xef, 0x07, 0x7e,
        0xce, 0x1e,
    ],
    [
        0x21, 0x27, 0xf3, 0x82, 0xd1, 0x48, 0xa4, 0x52, 0x31, 0xa8, 0x82, 0x0c, 0xc0, 0x0c, 0x55,
        0xf9, 0x4a, 0x1b, 0x9d, 0x06, 0xf7, 0x8f, 0x19, 0x83, 0xf5, 0x31, 0x12, 0xd4, 0x4d, 0x0e,
        0x91, 0x34,
    ],
];

/// Whether `key` is one of the test kit's published keys.
pub(crate) fn is_published(key: &DecodingKey) -> bool {
    fingerprint(key).is_some_and(|f| PUBLISHED.contains(&f))
}

/// The key's fingerprint, the same whether it came from a PEM or a JWK.
fn fingerprint(key: &DecodingKey) -> Option<[u8; 32]> {
    use jsonwebtoken::AlgorithmFamily as F;
    let (tag, material): (&[u8], Vec<u8>) = match (key.family(), key.kind()) {
        (F::Rsa, DecodingKeyKind::RsaModulusExponent { n, .. }) => (b"rsa", unsigned(n)),
        (F::Rsa, DecodingKeyKind::SecretOrDer(der)) => (b"rsa", unsigned(&pkcs1_modulus(der)?)),
        (F::Ec, DecodingKeyKind::SecretOrDer(point)) => (b"ec", point.clone()),
        (F::Ed, DecodingKeyKind::SecretOrDer(x)) => (b"ed", x.clone()),
        (F::Hmac, DecodingKeyKind::SecretOrDer(secret)) => (b"hmac", secret.clone()),
        _ => return None,
    };
    let mut h = Sha256::new();
    h.update(tag);
    h.update([0]);
    h.update(&material);
    Some(h.finalize().into())
}

/// Big-endian bytes without leading zeros.
fn unsigned(be: &[u8]) -> Vec<u8> {
    let first = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    be[first..].to_vec()
}

/// The modulus of a PKCS#1 `RSAPublicKey`.
fn pkcs1_modulus(der: &[u8]) -> Option<Vec<u8>> {
    use simple_asn1::ASN1Block;
    match simple_asn1::from_der(der).ok()?.as_slice() {
        [ASN1Block::Sequence(_, fields)] => match fields.as_slice() {
            [ASN1Block::Integer(_, n), ASN1Block::Integer(_, _)] => Some(n.to_signed_bytes_be()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;
    use crate::testing::{HMAC_SECRET, TestKey};

    fn from_pem(k: TestKey) -> DecodingKey {
        let pem = k.public_pem().as_bytes();
        match k {
            TestKey::Es256 => DecodingKey::from_ec_pem(pem),
            TestKey::EdDsa => DecodingKey::from_ed_pem(pem),
            _ => DecodingKey::from_rsa_pem(pem),
        }
        .unwrap()
    }

    fn from_jwk(k: TestKey) -> DecodingKey {
        let jwk = k.public_jwk();
        let s = |n: &str| jwk[n].as_str().unwrap().to_owned();
        match k {
            TestKey::Es256 => DecodingKey::from_ec_components(&s("x"), &s("y")).unwrap(),
            TestKey::EdDsa => DecodingKey::from_ed_components(&s("x")).unwrap(),
            _ => DecodingKey::from_rsa_components(&s("n"), &s("e")).unwrap(),
        }
    }

    #[test]
    fn published_fingerprints_match_the_test_kit() {
        let asymmetric = [
            TestKey::Rs256,
            TestKey::Rs256Next,
            TestKey::Es256,
            TestKey::EdDsa,
            TestKey::Rs256Weak,
        ];
        let mut all = Vec::new();
        for k in asymmetric {
            let (pem, jwk) = (fingerprint(&from_pem(k)), fingerprint(&from_jwk(k)));
            assert!(pem.is_some(), "{k:?}");
            assert_eq!(pem, jwk, "{k:?}: PEM and JWK give one fingerprint");
            all.push(pem.unwrap());
        }
        all.push(fingerprint(&DecodingKey::from_secret(HMAC_SECRET)).unwrap());
        let hex: Vec<String> = all
            .iter()
            .map(|f| {
                f.iter()
                    .map(|b| format!("{b:#04x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        assert_eq!(
            all.as_slice(),
            PUBLISHED.as_slice(),
            "\n[{}]",
            hex.join("],\n[")
        );
        // Other keys are not published.
        assert!(!is_published(&DecodingKey::from_secret(
            b"another secret of 32 bytes......"
        )));
    }
}
