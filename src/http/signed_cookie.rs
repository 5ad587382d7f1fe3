//! Cookie values signed with HMAC-SHA256: `<value>.<base64url tag>`, the tag over a
//! purpose, the cookie name and the value, so a value signed for one cookie (or one
//! use) is refused under another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(key: &[u8], purpose: &str, name: &str, value: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(name.as_bytes());
    mac.update(b"\0");
    mac.update(value);
    mac
}

/// `value` (which must not contain `.`) with its tag appended.
pub(crate) fn sign(key: &[u8], purpose: &str, name: &str, value: &str) -> String {
    let tag = mac(key, purpose, name, value.as_bytes())
        .finalize()
        .into_bytes();
    format!("{value}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The value of `raw` when its tag verifies (compared in constant time), else `None`.
pub(crate) fn verify<'a>(key: &[u8], purpose: &str, name: &str, raw: &'a [u8]) -> Option<&'a [u8]> {
    let dot = memchr::memchr(b'.', raw)?;
    let (value, tag) = (&raw[..dot], &raw[dot + 1..]);
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    mac(key, purpose, name, value).verify_slice(&tag).ok()?;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_key_purpose_and_name() {
        let signed = sign(&[1; 32], "p", "n", "v");
        assert_eq!(
            verify(&[1; 32], "p", "n", signed.as_bytes()),
            Some(&b"v"[..])
        );
        assert_eq!(verify(&[2; 32], "p", "n", signed.as_bytes()), None);
        assert_eq!(verify(&[1; 32], "q", "n", signed.as_bytes()), None);
        assert_eq!(verify(&[1; 32], "p", "m", signed.as_bytes()), None);
        assert_eq!(verify(&[1; 32], "p", "n", b"v"), None);
        assert_eq!(
            verify(&[1; 32], "p", "n", signed.replace("v.", "w.").as_bytes()),
            None
        );
    }
}
