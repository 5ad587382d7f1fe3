//! The pending login between the redirect to the provider and its callback: a
//! short-lived cookie, signed with HMAC-SHA256 over its name and content.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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

fn mac(key: &[u8], name: &str, payload: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; ours are 32 bytes or more.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(name.as_bytes());
    m.update(b".");
    m.update(payload.as_bytes());
    m
}

impl Pending {
    /// The cookie value: base64url(JSON) `.` base64url(HMAC).
    pub(super) fn seal(&self, key: &[u8], name: &str) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(mac(key, name, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The pending login in `value`, when its signature is good; `None` for anything
    /// else (tampered, truncated, oversized, another cookie name's).
    pub(super) fn open(value: &str, key: &[u8], name: &str) -> Option<Pending> {
        if value.len() > MAX_COOKIE_BYTES {
            return None;
        }
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        mac(key, name, payload).verify_slice(&tag).ok()?;
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
