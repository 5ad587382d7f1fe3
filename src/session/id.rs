//! Session ids: 256 bits from the OS CSPRNG, stored only as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::StoreError;

/// Length of an encoded id (32 bytes, base64url without padding).
pub(crate) const ID_LEN: usize = 43;

/// A new id for a session of `subject`, and its hash. The hash starts with the
/// subject's [`subject_tag`], so a store can keep all of a subject's sessions and its
/// index together (one Redis Cluster slot) and still find a session from its id alone.
/// The id is 256 uniformly random bits among those whose hash has that start (found by
/// trying candidates: 256 on average, about 40 µs).
pub(crate) fn new_id_for(subject: &str) -> Result<(String, IdHash), StoreError> {
    let tag = subject_tag(subject);
    let mut batch = [0u8; 32 * 64];
    // The chance that 64 000 candidates all miss is (255/256)^64000, about 1e-109.
    for _ in 0..1000 {
        getrandom::fill(&mut batch).map_err(|_| StoreError::new("no randomness"))?;
        for bytes in batch.chunks_exact(32) {
            let id = URL_SAFE_NO_PAD.encode(bytes);
            let hash = hash_id(id.as_bytes());
            if hash.0[..TAG_LEN] == tag {
                return Ok((id, hash));
            }
        }
    }
    Err(StoreError::new(
        "no session id found for the subject's slot",
    ))
}

/// Hex characters of a session id hash that name its subject's slot.
pub(crate) const TAG_LEN: usize = 2;

/// The first [`TAG_LEN`] hex characters of SHA-256 of `subject`: the start every hash of
/// that subject's session ids shares.
pub(crate) fn subject_tag(subject: &str) -> [u8; TAG_LEN] {
    let h = hash_id(subject.as_bytes());
    [h.0[0], h.0[1]]
}

/// True for exactly what [`new_id`] makes: 43 base64url characters in canonical form
/// (the last one carries 4 bits, so its 2 low bits are zero). Checked without decoding.
pub(crate) fn is_well_formed(b: &[u8]) -> bool {
    b.len() == ID_LEN
        && b.iter().fold(true, |ok, c| ok & BASE64URL[usize::from(*c)])
        && b64_value(b[ID_LEN - 1]) & 3 == 0
}

/// The base64url alphabet as a lookup table (one load per byte, no branches).
static BASE64URL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        i += 1;
    }
    t
};

/// The 6-bit value of a base64url character (the caller has checked the alphabet).
fn b64_value(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
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

/// SHA-256 of `bytes`. RustCrypto's `sha2` where the CPU has SHA instructions it uses
/// (x86-64 SHA extensions: a few hundred fewer instructions than aws-lc's set-up around
/// the same instructions), aws-lc's assembly elsewhere when that backend is compiled in
/// (about 1 350 fewer than `sha2` in software). The same hash either way, so store keys
/// do not depend on the CPU or the feature set.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    #[cfg(feature = "aws-lc-rs")]
    if !has_sha_extensions() {
        return aws_lc_sha256(bytes);
    }
    sha2_sha256(bytes)
}

fn sha2_sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

#[cfg(feature = "aws-lc-rs")]
fn aws_lc_sha256(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether `sha2` runs on SHA instructions here (detected once, then a cached load).
#[cfg(feature = "aws-lc-rs")]
fn has_sha_extensions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Hex SHA-256 of the id.
pub(crate) fn hash_id(id: &[u8]) -> IdHash {
    let digest = sha256(id);
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = hex_digit(b >> 4);
        pair[1] = hex_digit(b & 15);
    }
    IdHash(out)
}

/// The lowercase hex digit of `n` (below 16), without a branch, so the loop vectorises.
fn hex_digit(n: u8) -> u8 {
    // 9 - n wraps past 127 exactly when n > 9; then skip the 39 characters from '0' + 10
    // to 'a'.
    n + b'0' + (9u8.wrapping_sub(n) >> 7) * (b'a' - b'0' - 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(id: &str) -> bool {
        is_well_formed(id.as_bytes())
    }

    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn both_sha256_implementations_agree() {
        let data: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        // Every length up to 299 bytes (past four 64-byte blocks): padding at each boundary.
        for len in 0..data.len() {
            assert_eq!(
                sha2_sha256(&data[..len]),
                aws_lc_sha256(&data[..len]),
                "{len}"
            );
        }
        assert_eq!(sha256(b"abc"), aws_lc_sha256(b"abc"));
    }

    #[test]
    fn ids_carry_their_subjects_tag() {
        for subject in ["alice", "bob", "", "x".repeat(300).as_str()] {
            let (id, hash) = new_id_for(subject).unwrap();
            assert!(well_formed(&id));
            assert_eq!(hash.as_str(), hash_id(id.as_bytes()).as_str());
            assert_eq!(hash.as_str().as_bytes()[..TAG_LEN], subject_tag(subject));
        }
        let (a, _) = new_id_for("alice").unwrap();
        let (b, _) = new_id_for("alice").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        let a = new_id_for("a").unwrap().0;
        let b = new_id_for("a").unwrap().0;
        assert_ne!(a, b);
        assert!(well_formed(&a));
        assert!(!well_formed(&a[1..]));
        assert!(!well_formed(&format!("{}!", &a[1..])));
        assert!(!well_formed(&format!("{a}A")));
        assert!(!well_formed(&format!("{}=", &a[1..])));
        // Agrees with a real decoder on every possible last character.
        for c in (b'0'..=b'z')
            .filter(|c| c.is_ascii_alphanumeric())
            .chain([b'-', b'_'])
        {
            let id = format!("{}{}", &a[..ID_LEN - 1], char::from(c));
            let decodes = URL_SAFE_NO_PAD.decode(&id).is_ok_and(|d| d.len() == 32);
            assert_eq!(well_formed(&id), decodes, "{id}");
        }
        // Every byte in the first position: accepted exactly when it is base64url.
        for byte in 0..=255u8 {
            let mut id = a.as_bytes().to_vec();
            id[0] = byte;
            let alphabet = byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
            assert_eq!(is_well_formed(&id), alphabet, "{byte:#x}");
        }
        let h = hash_id(a.as_bytes());
        assert_eq!(h.as_str().len(), 64);
        assert!(h.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(h.as_str(), a);
        for n in 0..16 {
            assert_eq!(hex_digit(n), b"0123456789abcdef"[usize::from(n)]);
        }
        // SHA-256("abc")
        assert_eq!(
            hash_id(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
