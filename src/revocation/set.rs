//! [`Set`]: the local copy every check reads, and how a credential is matched against it.

use std::collections::HashMap;

use super::entry::{Entry, ProviderKey, SUBJECT_TTL};

/// The maps of the local copy: a fast fixed hasher, since only operators insert keys
/// (a request can look keys up, which a collision cannot slow down much, but never add).
pub(super) type Map<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// The local copy every check reads. Nested by issuer and subject so that a check
/// looks up borrowed strings and allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Set {
    /// issuer -> token id -> expiry.
    pub(super) tokens: Map<String, Map<String, u64>>,
    /// Token ids that are hashes (tokens without `jti`): only then is a token hashed.
    pub(super) hashed: usize,
    /// subject -> (issuer or every issuer, as of).
    pub(super) subjects: Map<String, Vec<(Option<String>, u64)>>,
    /// session id -> expiry.
    pub(super) sessions: Map<String, u64>,
    /// provider issuer -> back-channel logout key -> as of.
    pub(super) providers: Map<String, Map<ProviderKey, u64>>,
}

impl Set {
    pub(crate) fn apply(&mut self, e: Entry) {
        match e {
            Entry::Token {
                issuer,
                id,
                expires,
            } => {
                let hashed = id.starts_with(HASH_PREFIX);
                let ids = self.tokens.entry(issuer).or_default();
                if ids.insert(id, expires).is_none() && hashed {
                    self.hashed += 1;
                }
            }
            Entry::Subject {
                issuer,
                subject,
                as_of,
            } => {
                let list = self.subjects.entry(subject).or_default();
                match list.iter_mut().find(|(i, _)| *i == issuer) {
                    Some((_, at)) => *at = (*at).max(as_of),
                    None => list.push((issuer, as_of)),
                }
            }
            Entry::Session { id, expires } => {
                self.sessions.insert(id, expires);
            }
            Entry::Provider { issuer, key, as_of } => {
                let at = self
                    .providers
                    .entry(issuer)
                    .or_default()
                    .entry(key)
                    .or_default();
                *at = (*at).max(as_of);
            }
        }
    }
    pub(super) fn sweep(&mut self, now: u64) {
        for ids in self.tokens.values_mut() {
            ids.retain(|_, exp| *exp > now);
        }
        self.tokens.retain(|_, ids| !ids.is_empty());
        self.hashed = self
            .tokens
            .values()
            .flat_map(|ids| ids.keys())
            .filter(|id| id.starts_with(HASH_PREFIX))
            .count();
        self.sessions.retain(|_, exp| *exp > now);
        for list in self.subjects.values_mut() {
            list.retain(|(_, as_of)| as_of.saturating_add(SUBJECT_TTL) > now);
        }
        self.subjects.retain(|_, list| !list.is_empty());
        for keys in self.providers.values_mut() {
            keys.retain(|_, as_of| as_of.saturating_add(SUBJECT_TTL) > now);
        }
        self.providers.retain(|_, keys| !keys.is_empty());
    }
    pub(super) fn len(&self) -> usize {
        self.tokens.values().map(Map::len).sum::<usize>()
            + self.subjects.values().map(Vec::len).sum::<usize>()
            + self.sessions.len()
            + self.providers.values().map(Map::len).sum::<usize>()
    }
}

/// How the id of a token without `jti` starts (the rest is its SHA-256, hex).
pub(super) const HASH_PREFIX: &str = "sha256:";

/// Whether `subject` (under `issuer`, or under any issuer) is revoked for a credential
/// issued at `issued_at` (at or before the revocation's `as_of`; `None`: unknown, so
/// revoked).
pub(super) fn subject_revoked(
    set: &Set,
    issuer: Option<&str>,
    subject: &str,
    issued_at: Option<u64>,
) -> bool {
    let Some(list) = set.subjects.get(subject) else {
        return false;
    };
    list.iter().any(|(scope, as_of)| {
        let applies = match scope {
            None => true,
            Some(s) => issuer == Some(s.as_str()),
        };
        applies && issued_at.is_none_or(|iat| iat <= *as_of)
    })
}

/// `sha256:` and the hex SHA-256 of what identifies a token without `jti`: for a JWS
/// (three dot-separated parts), its signing input `header.payload` only. The signature
/// is left out because it is not unique: ECDSA accepts `(r, n - s)` beside `(r, s)`, and
/// a lenient base64 reading accepts padded and unpadded spellings, so a second valid
/// token with the same claims could be made without the key. Anything else is hashed
/// whole.
pub(crate) fn token_hash(token: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    out.push_str(HASH_PREFIX);
    for b in Sha256::digest(signing_input(token)) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `header.payload` of a three-part JWS; anything else whole.
pub(super) fn signing_input(token: &[u8]) -> &[u8] {
    let mut dots = memchr::memchr_iter(b'.', token);
    match (dots.next(), dots.next(), dots.next()) {
        (Some(_), Some(second), None) => &token[..second],
        _ => token,
    }
}
