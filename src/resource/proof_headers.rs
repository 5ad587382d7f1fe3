//! A bounded memo of checked proof headers. A client signs all its proofs with one key,
//! so their protected headers are the same text: the header's checks, the key's import
//! and its thumbprint are done once per client, not once per request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::jose::algorithm::Algorithm;
use crate::jose::crypto::VerifyingKey;

/// How many headers are kept; when full, the memo starts over (about 0.6 KiB each, so
/// at most about 0.6 MiB).
const CAPACITY: usize = 1024;
/// Longer header segments are checked every time, never kept.
const MAX_HEADER_BYTES: usize = 1024;

/// What a header that passed every check establishes.
pub(crate) struct CheckedHeader {
    /// Its algorithm (checked again on every use against the rules in force).
    pub alg: Algorithm,
    /// The public key of its `jwk`.
    pub key: VerifyingKey,
    /// The RFC 7638 thumbprint of its `jwk`.
    pub jkt: String,
}

/// Checked headers by their base64url text.
#[derive(Default)]
pub(crate) struct HeaderMemo {
    map: RwLock<HashMap<Box<str>, Arc<CheckedHeader>>>,
}

impl fmt::Debug for HeaderMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderMemo").finish_non_exhaustive()
    }
}

impl HeaderMemo {
    /// The checked header whose text is `segment`, if kept.
    pub(crate) fn get(&self, segment: &str) -> Option<Arc<CheckedHeader>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(segment)
            .cloned()
    }

    /// Keeps `checked` for `segment`: call only once a proof with this header had a
    /// valid signature.
    pub(crate) fn keep(&self, segment: &str, checked: Arc<CheckedHeader>) {
        if segment.len() > MAX_HEADER_BYTES {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(segment.into(), checked);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}
