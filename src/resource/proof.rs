//! DPoP proof verification (RFC 9449 section 4.3), apart from the replay check: a pure
//! function of the proof, the request and the clock, tested case by case.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use super::proof_headers::{CheckedHeader, HeaderMemo};
use super::thumbprint::jwk_thumbprint;
use crate::error::AuthError;
use crate::jose::algorithm::Algorithm;
use crate::jose::strict_json::parse_map;

/// Largest proof accepted (an RSA-4096 key and its signature fit well within).
pub(crate) const MAX_PROOF_BYTES: usize = 4 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_BYTES: usize = 256;

/// JWK members that only a private key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The rules a proof is held to.
#[derive(Debug, Clone)]
pub(crate) struct ProofRules {
    /// Asymmetric algorithms accepted for the proof.
    pub algorithms: Vec<Algorithm>,
    /// How old (`iat`) a proof may be, in seconds.
    pub max_age: u64,
    /// How far in the future `iat` may be, in seconds (clock skew).
    pub future_skew: u64,
    /// Headers that passed their checks before (a fresh memo whenever the algorithms
    /// change).
    pub headers: Arc<HeaderMemo>,
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request's URL as the client addressed it (normalized, no query).
    pub url: &'a url::Url,
    /// The access token the proof accompanies (for `ath`): always, at a resource server.
    pub access_token: Option<&'a [u8]>,
    /// Now, in Unix seconds.
    pub now: u64,
}

/// What a verified proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The proof's unique id.
    pub jti: String,
    /// When it was made.
    pub iat: u64,
    /// The server nonce it carries, if any.
    pub nonce: Option<String>,
}

fn bad(reason: &'static str) -> AuthError {
    AuthError::invalid_dpop_proof(reason)
}

fn b64(segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| bad("dpop: bad base64url"))
}

/// `base64url(SHA-256(token))`: the `ath` a proof for `token` carries.
pub(crate) fn access_token_hash(token: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token))
}

/// The URL a proof's `htu` is compared in: scheme and host lowercased, default port
/// dropped, dot segments resolved (the `url` crate's parsing), query and fragment
/// removed. `None` for anything but an absolute http(s) URL.
pub(crate) fn normalized_htu(text: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}

/// Verifies `proof` (the `DPoP` header's value) for `request` under `rules`: every check
/// of RFC 9449 section 4.3 but the replay check, which needs the proof's `jti` and the
/// replay cache.
pub(crate) fn verify_proof(
    proof: &str,
    request: ProofRequest<'_>,
    rules: &ProofRules,
) -> Result<VerifiedProof, AuthError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(bad("dpop: proof too large"));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("dpop: not a three-part compact JWS"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(bad("dpop: empty segment"));
    }
    let (checked, fresh) = match rules.headers.get(h) {
        Some(c) if rules.algorithms.contains(&c.alg) => (c, false),
        _ => (Arc::new(check_header(h, rules)?), true),
    };
    let signature = b64(s)?;
    if !checked
        .key
        .verify(&proof.as_bytes()[..h.len() + 1 + p.len()], &signature)
    {
        return Err(bad("dpop: bad signature"));
    }
    if fresh {
        rules.headers.keep(h, checked.clone());
    }
    let jkt = checked.jkt.clone();
    let payload_bytes = b64(p)?;
    let claims = parse_map(&payload_bytes).ok_or_else(|| bad("dpop: bad claims"))?;
    check_claims(&claims, request, rules).map(|(jti, iat, nonce)| VerifiedProof {
        jkt,
        jti,
        iat,
        nonce,
    })
}

/// The protected header's checks: `typ`, an allowed `alg`, no unsupported parameter,
/// a public `jwk` usable for `alg`; its key and thumbprint.
fn check_header(h: &str, rules: &ProofRules) -> Result<CheckedHeader, AuthError> {
    let header_bytes = b64(h)?;
    let header = parse_map(&header_bytes).ok_or_else(|| bad("dpop: bad header"))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(bad("dpop: typ is not dpop+jwt"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_jose)
        .filter(|a| rules.algorithms.contains(a))
        .ok_or_else(|| bad("dpop: alg not allowed"))?;
    for forbidden in ["crit", "b64", "zip", "enc", "jku", "x5u"] {
        if header.contains_key(forbidden) {
            return Err(bad("dpop: unsupported header parameter"));
        }
    }
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        _ => return Err(bad("dpop: no jwk")),
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(bad("dpop: jwk holds a private key"));
    }
    let key = crate::jose::keys::jwk_to_keys(&Value::Object(jwk.clone()), &[alg], false)
        .ok()
        .and_then(|keys| keys.into_iter().next())
        .ok_or_else(|| bad("dpop: jwk unusable for alg"))?;
    let jkt = jwk_thumbprint(jwk).ok_or_else(|| bad("dpop: jwk has no thumbprint"))?;
    Ok(CheckedHeader { alg, key, jkt })
}

/// `jti`, `htm`, `htu`, `iat` and `ath`; returns the `jti`, `iat` and `nonce`.
fn check_claims(
    claims: &Map<String, Value>,
    request: ProofRequest<'_>,
    rules: &ProofRules,
) -> Result<(String, u64, Option<String>), AuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES)
        .ok_or_else(|| bad("dpop: missing or bad jti"))?;
    if text("htm") != Some(request.method) {
        return Err(bad("dpop: htm does not match the method"));
    }
    let htu = text("htu").ok_or_else(|| bad("dpop: missing or bad htu"))?;
    // Spelled as the request URL normalizes: equal without parsing it again.
    if htu != request.url.as_str() {
        let htu = normalized_htu(htu).ok_or_else(|| bad("dpop: missing or bad htu"))?;
        if htu != *request.url {
            return Err(bad("dpop: htu does not match the request URL"));
        }
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
    .ok_or_else(|| bad("dpop: missing or bad iat"))?;
    if iat.saturating_add(rules.max_age) < request.now {
        return Err(bad("dpop: proof too old"));
    }
    if iat > request.now.saturating_add(rules.future_skew) {
        return Err(bad("dpop: proof from the future"));
    }
    if let Some(token) = request.access_token
        && text("ath") != Some(access_token_hash(token).as_str())
    {
        return Err(bad("dpop: missing or wrong ath"));
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(bad("dpop: bad nonce")),
    };
    Ok((jti.to_owned(), iat, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header checked once is kept, only after its proof's signature held; a kept
    /// header still needs a valid signature and an algorithm the rules allow.
    #[test]
    fn checked_headers_are_kept_and_still_held_to_the_signature_and_the_rules() {
        const PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
        let memo = Arc::new(HeaderMemo::default());
        let rules = |algorithms| ProofRules {
            algorithms,
            max_age: 60,
            future_skew: 5,
            headers: memo.clone(),
        };
        let url = normalized_htu("https://server.example.com/token").unwrap();
        let request = ProofRequest {
            method: "POST",
            url: &url,
            access_token: None,
            now: 1_562_262_616,
        };
        let (head, _) = PROOF.rsplit_once('.').unwrap();
        let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
        let es256 = rules(vec![Algorithm::ES256]);
        // A bad signature first: nothing is kept.
        let e = verify_proof(&forged, request, &es256).unwrap_err();
        assert_eq!(e.reason(), "dpop: bad signature");
        assert_eq!(memo.len(), 0);
        verify_proof(PROOF, request, &es256).unwrap();
        assert_eq!(memo.len(), 1);
        // Kept: the forged signature is still refused, and so is the algorithm where
        // the rules no longer allow it.
        let e = verify_proof(&forged, request, &es256).unwrap_err();
        assert_eq!(e.reason(), "dpop: bad signature");
        let e = verify_proof(PROOF, request, &rules(vec![Algorithm::EdDSA])).unwrap_err();
        assert_eq!(e.reason(), "dpop: alg not allowed");
        assert_eq!(
            verify_proof(PROOF, request, &es256).unwrap().jkt,
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    /// RFC 9449 section 4.2's example proof (a token request: no `ath`), verified at
    /// its own `iat`; any change to the request it names refuses it.
    #[test]
    fn rfc_9449_example_proof() {
        const PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
        let rules = ProofRules {
            algorithms: vec![Algorithm::ES256],
            max_age: 60,
            future_skew: 5,
            headers: Arc::default(),
        };
        let url = normalized_htu("https://server.example.com/token").unwrap();
        let request = ProofRequest {
            method: "POST",
            url: &url,
            access_token: None,
            now: 1_562_262_616,
        };
        let ok = verify_proof(PROOF, request, &rules).unwrap();
        assert_eq!(ok.jti, "-BwC3ESc6acc2lTc");
        assert_eq!(ok.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        let other = normalized_htu("https://server.example.com/other").unwrap();
        for (name, reason, req) in [
            (
                "GET",
                "dpop: htm does not match the method",
                ProofRequest {
                    method: "GET",
                    ..request
                },
            ),
            (
                "path",
                "dpop: htu does not match the request URL",
                ProofRequest {
                    url: &other,
                    ..request
                },
            ),
            (
                "late",
                "dpop: proof too old",
                ProofRequest {
                    now: 1_562_262_616 + 61,
                    ..request
                },
            ),
            (
                "early",
                "dpop: proof from the future",
                ProofRequest {
                    now: 1_562_262_616 - 6,
                    ..request
                },
            ),
            (
                "with a token",
                "dpop: missing or wrong ath",
                ProofRequest {
                    access_token: Some(b"t"),
                    ..request
                },
            ),
        ] {
            assert_eq!(
                crate::error::reason_of(verify_proof(PROOF, req, &rules)),
                reason,
                "{name}"
            );
        }
    }

    #[test]
    fn htu_is_compared_normalized() {
        let n = |s: &str| normalized_htu(s).map(|u| u.to_string());
        assert_eq!(
            n("HTTPS://API.Example.COM:443/a/./b/../c?q=1#f"),
            n("https://api.example.com/a/c")
        );
        assert_eq!(
            n("http://api.example.com:80/x"),
            n("http://api.example.com/x")
        );
        assert_ne!(
            n("https://api.example.com:8443/x"),
            n("https://api.example.com/x")
        );
        for bad in ["/x", "ftp://a/x", "https://user:pw@a/x", "not a url"] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }
}
