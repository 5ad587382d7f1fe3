//! [`Filter`]: the lock-free pre-check in front of the local copy.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A lock-free pre-check: 4 096 bits, one set per key inserted (subjects, token ids,
/// session ids). A clear bit proves a key absent, so a credential that is not revoked
/// (almost every request) skips the lock and the maps; a set bit sends it to them.
/// Bits are only cleared by a full reload.
pub(crate) struct Filter([AtomicU64; 64]);

impl Default for Filter {
    fn default() -> Self {
        Filter(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Filter {
    pub(super) fn bit(key: &str) -> (usize, u64) {
        use std::hash::{BuildHasher, Hasher};
        let mut h = rustc_hash::FxBuildHasher.build_hasher();
        h.write(key.as_bytes());
        // The multiply in FxHasher mixes best into the high bits.
        let b = (h.finish() >> 52) as usize;
        (b >> 6, 1u64 << (b & 63))
    }
    pub(super) fn insert(&self, key: &str) {
        let (word, mask) = Self::bit(key);
        self.0[word].fetch_or(mask, Ordering::Release);
    }
    pub(super) fn may_contain(&self, key: &str) -> bool {
        let (word, mask) = Self::bit(key);
        self.0[word].load(Ordering::Acquire) & mask != 0
    }
    /// Holds exactly `keys` afterwards. Each word is replaced whole, so a key present
    /// before and after keeps its bit at every moment.
    pub(super) fn replace<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let mut words = [0u64; 64];
        for k in keys {
            let (word, mask) = Self::bit(k);
            words[word] |= mask;
        }
        for (w, new) in self.0.iter().zip(words) {
            w.store(new, Ordering::Release);
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Filter")
    }
}
