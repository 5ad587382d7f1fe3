//! Session ids: 256 bits from the OS CSPRNG, stored only as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::StoreError;

/// Length of an encoded id (32 bytes, base64url without padding).
pub(crate) const ID_LEN: usize = 43;

pub(crate) fn new_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| StoreError::new("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn is_well_formed(id: &str) -> bool {
    // One spare byte: a longer decoding fails instead of fitting.
    let mut buf = [0u8; 33];
    id.len() == ID_LEN && URL_SAFE_NO_PAD.decode_slice(id, &mut buf) == Ok(32)
}

/// Hex SHA-256 of a session id: the store key. Lives on the stack (no allocation per request).
#[derive(Clone, Copy)]
pub(crate) struct IdHash([u8; 64]);

impl IdHash {
    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII hex; the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Hex SHA-256 of the id.
pub(crate) fn hash_id(id: &str) -> IdHash {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(id.as_bytes());
    let mut out = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    IdHash(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert!(is_well_formed(&a));
        assert!(!is_well_formed(&a[1..]));
        assert!(!is_well_formed(&format!("{}!", &a[1..])));
        let h = hash_id(&a);
        assert_eq!(h.as_str().len(), 64);
        assert!(h.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(h.as_str(), a);
        // SHA-256("abc")
        assert_eq!(
            hash_id("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
