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
    id.len() == ID_LEN && URL_SAFE_NO_PAD.decode(id).is_ok_and(|b| b.len() == 32)
}

/// Hex SHA-256 of the id: the store key.
pub(crate) fn hash_id(id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(id.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
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
        assert_eq!(hash_id(&a).len(), 64);
        assert_ne!(hash_id(&a), a);
    }
}
