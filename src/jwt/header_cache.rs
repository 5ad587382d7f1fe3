//! Parsed JWS headers of recent tokens, keyed by the exact base64url header segment.
//!
//! An issuer signs most tokens with one header (`{"alg":"RS256","kid":"k1","typ":"JWT"}`),
//! so the same segment arrives again and again. Parsing depends only on those bytes, so a
//! byte-equal segment gets the earlier result: no base64 or JSON work. Only headers that
//! passed every rule are kept; a rejected header is parsed, and rejected, every time.

use std::fmt;
use std::sync::{Arc, RwLock};

use crate::error::AuthError;

/// Headers kept per verifier; the oldest is dropped first.
const MAX_ENTRIES: usize = 16;
/// Longer header segments are parsed every time, so the cache stays small.
const MAX_SEGMENT_BYTES: usize = 512;

/// Parsed headers of type `H` (the JWS header), by segment.
pub(crate) struct HeaderCache<H> {
    entries: RwLock<Vec<(Box<str>, Arc<H>)>>,
    lookups: crate::metrics::HitMiss,
}

impl<H> Default for HeaderCache<H> {
    fn default() -> Self {
        HeaderCache {
            entries: RwLock::new(Vec::new()),
            lookups: Default::default(),
        }
    }
}

impl<H> fmt::Debug for HeaderCache<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCache").finish_non_exhaustive()
    }
}

impl<H> HeaderCache<H> {
    /// The header of `segment`: from the cache, or from `parse` (and then cached).
    pub(crate) fn get_or_parse(
        &self,
        segment: &str,
        parse: impl FnOnce(&str) -> Result<H, AuthError>,
    ) -> Result<Arc<H>, AuthError> {
        let found = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(s, _)| **s == *segment)
            .map(|(_, h)| h.clone());
        if let Some(header) = found {
            crate::metrics::header_cache_lookup(&self.lookups, true);
            return Ok(header);
        }
        crate::metrics::header_cache_lookup(&self.lookups, false);
        let header = Arc::new(parse(segment)?);
        if segment.len() <= MAX_SEGMENT_BYTES {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if !entries.iter().any(|(s, _)| **s == *segment) {
                if entries.len() >= MAX_ENTRIES {
                    entries.remove(0);
                }
                entries.push((segment.into(), header.clone()));
            }
        }
        Ok(header)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in parser: the segment's length, or an error for segments starting `bad`.
    fn parse(s: &str) -> Result<usize, AuthError> {
        if s.starts_with("bad") {
            Err(AuthError::invalid("bad header"))
        } else {
            Ok(s.len())
        }
    }

    #[test]
    fn same_segment_same_header_and_bounded() {
        let cache = HeaderCache::default();
        let a = cache.get_or_parse("k1", parse).unwrap();
        let mut parsed_again = false;
        let b = cache
            .get_or_parse("k1", |s| {
                parsed_again = true;
                parse(s)
            })
            .unwrap();
        assert!(!parsed_again);
        assert!(Arc::ptr_eq(&a, &b));
        for i in 0..40 {
            let seg = format!("segment-{i:03}");
            assert_eq!(*cache.get_or_parse(&seg, parse).unwrap(), seg.len());
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }

    #[test]
    fn rejected_headers_are_never_cached() {
        let cache = HeaderCache::default();
        assert!(cache.get_or_parse("bad", parse).is_err());
        assert!(cache.get_or_parse("bad", parse).is_err());
        assert_eq!(cache.len(), 0);
        let long = "a".repeat(MAX_SEGMENT_BYTES + 1);
        assert!(cache.get_or_parse(&long, parse).is_ok());
        assert_eq!(cache.len(), 0);
    }
}
