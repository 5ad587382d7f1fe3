//! Parsed JWS headers of recent tokens, keyed by the exact base64url header segment.
//!
//! An issuer signs most tokens with one header (`{"alg":"RS256","kid":"k1","typ":"JWT"}`),
//! so the same segment arrives again and again. Parsing depends only on those bytes, so a
//! byte-equal segment gets the earlier result: no base64 or JSON work. Only headers that
//! passed every rule are kept; a rejected header is parsed, and rejected, every time.

use std::fmt;
use std::sync::{Arc, RwLock};

use super::token::Header;
use crate::error::AuthError;

/// Headers kept per verifier; the oldest is dropped first.
const MAX_ENTRIES: usize = 16;
/// Longer header segments are parsed every time, so the cache stays small.
const MAX_SEGMENT_BYTES: usize = 512;

#[derive(Default)]
pub(crate) struct HeaderCache {
    entries: RwLock<Vec<(Box<str>, Arc<Header>)>>,
}

impl fmt::Debug for HeaderCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCache").finish_non_exhaustive()
    }
}

impl HeaderCache {
    /// The header of `segment`: from the cache, or from `parse` (and then cached).
    pub(crate) fn get_or_parse(
        &self,
        segment: &str,
        parse: impl FnOnce(&str) -> Result<Header, AuthError>,
    ) -> Result<Arc<Header>, AuthError> {
        let found = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(s, _)| **s == *segment)
            .map(|(_, h)| h.clone());
        if let Some(header) = found {
            return Ok(header);
        }
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
    use crate::jwt::token::parse_header;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn seg(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn same_segment_same_header_and_bounded() {
        let cache = HeaderCache::default();
        let h = seg(r#"{"alg":"HS256","kid":"k1"}"#);
        let a = cache.get_or_parse(&h, parse_header).unwrap();
        let mut parsed_again = false;
        let b = cache
            .get_or_parse(&h, |s| {
                parsed_again = true;
                parse_header(s)
            })
            .unwrap();
        assert!(!parsed_again);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.kid.as_deref(), Some("k1"));
        for i in 0..40 {
            let h = seg(&format!(r#"{{"alg":"HS256","kid":"k{i}"}}"#));
            assert_eq!(
                cache.get_or_parse(&h, parse_header).unwrap().kid,
                Some(format!("k{i}"))
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }

    #[test]
    fn rejected_headers_are_never_cached() {
        let cache = HeaderCache::default();
        let bad = seg(r#"{"alg":"none"}"#);
        assert!(cache.get_or_parse(&bad, parse_header).is_err());
        assert!(cache.get_or_parse(&bad, parse_header).is_err());
        assert_eq!(cache.len(), 0);
        let long = seg(&format!(r#"{{"alg":"HS256","x":"{}"}}"#, "a".repeat(600)));
        assert!(cache.get_or_parse(&long, parse_header).is_ok());
        assert_eq!(cache.len(), 0);
    }
}
