//! Stateless DPoP server nonces (RFC 9449 section 8): `base64url(time || HMAC)`, valid
//! for a while after `time`, checked without storing anything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Issues and checks nonces under one secret.
#[derive(Clone)]
pub(crate) struct Nonces {
    key: Vec<u8>,
    /// How long a nonce is accepted after it was issued, in seconds.
    lifetime: u64,
}

const TAG_BYTES: usize = 16;

impl Nonces {
    pub(crate) fn new(key: &[u8], lifetime: u64) -> Self {
        Nonces {
            key: key.to_vec(),
            lifetime: lifetime.max(1),
        }
    }

    fn tag(&self, time: [u8; 8]) -> [u8; TAG_BYTES] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"portcullis dpop nonce");
        mac.update(&time);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    /// A nonce issued at `now`.
    pub(crate) fn issue(&self, now: u64) -> String {
        let time = now.to_be_bytes();
        let mut raw = Vec::with_capacity(8 + TAG_BYTES);
        raw.extend_from_slice(&time);
        raw.extend_from_slice(&self.tag(time));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// True when `nonce` was issued by this key within its lifetime before `now`.
    pub(crate) fn accepts(&self, nonce: &str, now: u64) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if raw.len() != 8 + TAG_BYTES {
            return false;
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&raw[..8]);
        if !bool::from(self.tag(time).ct_eq(&raw[8..])) {
            return false;
        }
        let issued = u64::from_be_bytes(time);
        issued <= now.saturating_add(5) && now.saturating_sub(issued) <= self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_verify_only_under_their_key_and_within_their_lifetime() {
        let n = Nonces::new(b"secret one", 300);
        let other = Nonces::new(b"secret two", 300);
        let t = 1_700_000_000;
        let nonce = n.issue(t);
        assert!(n.accepts(&nonce, t));
        assert!(n.accepts(&nonce, t + 300));
        assert!(!n.accepts(&nonce, t + 301), "stale");
        assert!(!n.accepts(&nonce, t - 60), "from the future");
        assert!(!other.accepts(&nonce, t), "another key");
        let mut forged = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        forged[7] ^= 1;
        assert!(!n.accepts(&URL_SAFE_NO_PAD.encode(forged), t));
        for junk in ["", "x", "!!!!", &"A".repeat(200)] {
            assert!(!n.accepts(junk, t), "{junk}");
        }
    }
}
