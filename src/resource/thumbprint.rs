//! RFC 7638 JWK thumbprints: SHA-256 over the key's required members, in lexicographic
//! order, without whitespace, base64url without padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The RFC 7638 SHA-256 thumbprint of a public JWK, or `None` for a key type this crate
/// does not verify with (or a required member that is missing or not a string).
pub(crate) fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let s = |name: &str| jwk.get(name).and_then(Value::as_str);
    let members: Vec<(&str, &str)> = match s("kty")? {
        "RSA" => vec![("e", s("e")?), ("kty", "RSA"), ("n", s("n")?)],
        "EC" => vec![
            ("crv", s("crv")?),
            ("kty", "EC"),
            ("x", s("x")?),
            ("y", s("y")?),
        ],
        "OKP" => vec![("crv", s("crv")?), ("kty", "OKP"), ("x", s("x")?)],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        // serde_json escapes exactly as RFC 7638 requires (RFC 8259 strings).
        canonical.push_str(&serde_json::to_string(k).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(v).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 section 3.1's example key and thumbprint.
    #[test]
    fn rfc_7638_example() {
        let jwk: Value = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    /// RFC 9449 section 7.1's example proof key (P-256), and members beyond the required
    /// ones leave the thumbprint unchanged.
    #[test]
    fn ec_and_okp_members_and_garbage() {
        let ec: Value = serde_json::json!({
            "kty": "EC",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256"
        });
        let with_extra = {
            let mut e = ec.clone();
            e["kid"] = "anything".into();
            e["use"] = "sig".into();
            e
        };
        let t = jwk_thumbprint(ec.as_object().unwrap()).unwrap();
        assert_eq!(
            Some(t.as_str()),
            jwk_thumbprint(with_extra.as_object().unwrap()).as_deref()
        );
        assert_eq!(t, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        let okp: Value = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(jwk_thumbprint(okp.as_object().unwrap()).is_some());
        for bad in [
            serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}),
            serde_json::json!({"kty": "EC", "x": "a"}),
            serde_json::json!({"kty": "RSA", "n": 5, "e": "AQAB"}),
            serde_json::json!({}),
        ] {
            assert_eq!(jwk_thumbprint(bad.as_object().unwrap()), None, "{bad}");
        }
    }
}
