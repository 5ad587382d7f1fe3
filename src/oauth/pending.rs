//! The pending login between the redirect to the provider and its callback: a
//! short-lived cookie, signed with HMAC-SHA256 over its purpose, name and content.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::http::signed_cookie;

/// Largest pending cookie value accepted.
const MAX_COOKIE_BYTES: usize = 3 * 1024;

/// What the callback needs to finish the login it belongs to.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct Pending {
    /// `state`, echoed by the provider.
    #[serde(rename = "s")]
    pub state: String,
    /// The OIDC `nonce` the ID token must carry.
    #[serde(rename = "n")]
    pub nonce: String,
    /// The PKCE verifier.
    #[serde(rename = "v")]
    pub verifier: String,
    /// Where to go after the login (a same-origin path).
    #[serde(rename = "r")]
    pub return_to: String,
    /// When the login started (seconds since the epoch).
    #[serde(rename = "t")]
    pub started: u64,
}

/// What pending-login cookies are signed for (part of every tag).
const PURPOSE: &str = "portcullis-oauth-pending";

impl Pending {
    /// The cookie value: base64url(JSON) `.` base64url(HMAC).
    pub(super) fn seal(&self, key: &[u8], name: &str) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        signed_cookie::sign(key, PURPOSE, name, &URL_SAFE_NO_PAD.encode(json))
    }

    /// The pending login in `value`, when its signature is good; `None` for anything
    /// else (tampered, truncated, oversized, another cookie name's).
    pub(super) fn open(value: &str, key: &[u8], name: &str) -> Option<Pending> {
        if value.len() > MAX_COOKIE_BYTES {
            return None;
        }
        let payload = signed_cookie::verify(key, PURPOSE, name, value.as_bytes())?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pending {
        Pending {
            state: "st".into(),
            nonce: "no".into(),
            verifier: "ve".into(),
            return_to: "/x".into(),
            started: 5,
        }
    }

    #[test]
    fn round_trip_and_tampering() {
        let key = [9u8; 32];
        let sealed = sample().seal(&key, "oauth");
        assert_eq!(Pending::open(&sealed, &key, "oauth"), Some(sample()));
        assert_eq!(Pending::open(&sealed, &[8u8; 32], "oauth"), None);
        assert_eq!(Pending::open(&sealed, &key, "other"), None);
        let (payload, tag) = sealed.split_once('.').unwrap();
        let mut forged = sample();
        forged.return_to = "https://evil.example".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            Pending::open(&format!("{forged_payload}.{tag}"), &key, "oauth"),
            None
        );
        for junk in [
            "",
            ".",
            "a.b",
            &format!("{payload}."),
            &format!(".{tag}"),
            &"A".repeat(5000),
        ] {
            assert_eq!(Pending::open(junk, &key, "oauth"), None, "{junk:.20}");
        }
    }
}
