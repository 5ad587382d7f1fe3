//! Keys parsed once for aws-lc-rs: verification without per-call key setup.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use jsonwebtoken::{DecodingKey, DecodingKeyKind};

use super::algorithm::Algorithm;

pub(crate) enum PreparedKey {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl PreparedKey {
    /// `None` when the key cannot be prepared; the caller then uses the generic path,
    /// which applies the same checks (and fails the same way for a broken key).
    pub(crate) fn new(alg: Algorithm, key: &DecodingKey) -> Option<Self> {
        use Algorithm::*;
        let public = |algorithm: &'static dyn VerificationAlgorithm, bytes: &[u8]| {
            ParsedPublicKey::new(algorithm, bytes)
                .ok()
                .map(PreparedKey::Public)
        };
        let rsa = |algorithm: &'static dyn VerificationAlgorithm| match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => public(algorithm, der),
            DecodingKeyKind::RsaModulusExponent { n, e } => public(algorithm, &rsa_pkcs1_der(n, e)),
        };
        let bytes = || key.try_get_as_bytes().ok();
        match alg {
            HS256 => hmac_key(hmac::HMAC_SHA256, bytes()?),
            HS384 => hmac_key(hmac::HMAC_SHA384, bytes()?),
            HS512 => hmac_key(hmac::HMAC_SHA512, bytes()?),
            RS256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
            RS384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
            RS512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
            PS256 => rsa(&sig::RSA_PSS_2048_8192_SHA256),
            PS384 => rsa(&sig::RSA_PSS_2048_8192_SHA384),
            PS512 => rsa(&sig::RSA_PSS_2048_8192_SHA512),
            ES256 => public(&sig::ECDSA_P256_SHA256_FIXED, bytes()?),
            ES384 => public(&sig::ECDSA_P384_SHA384_FIXED, bytes()?),
            EdDSA => public(&sig::ED25519, bytes()?),
        }
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PreparedKey::Hmac(k) => hmac::verify(k, message, signature).is_ok(),
            PreparedKey::Public(k) => k.verify_sig(message, signature).is_ok(),
        }
    }
}

fn hmac_key(algorithm: hmac::Algorithm, secret: &[u8]) -> Option<PreparedKey> {
    Some(PreparedKey::Hmac(Box::new(hmac::Key::new(
        algorithm, secret,
    ))))
}

/// DER of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    fn integer(out: &mut Vec<u8>, v: &[u8]) {
        let skip = v
            .iter()
            .take_while(|b| **b == 0)
            .count()
            .min(v.len().saturating_sub(1));
        let v = &v[skip..];
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 8);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_encoding() {
        // e = 65537, n = 0x80 0x01 (high bit set: needs a zero pad)
        assert_eq!(
            rsa_pkcs1_der(&[0x80, 0x01], &[1, 0, 1]),
            vec![
                0x30, 0x0a, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x03, 0x01, 0x00, 0x01
            ]
        );
        // leading zeros stripped
        assert_eq!(
            rsa_pkcs1_der(&[0, 0, 0x05], &[3]),
            vec![0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03]
        );
        // long-form length
        let big = vec![0x7f; 300];
        let der = rsa_pkcs1_der(&big, &[3]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x33]);
    }
}
