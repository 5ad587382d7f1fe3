//! [`Entry`]: one revocation as it is stored and broadcast, and how it is encoded.

/// One revocation, as it is stored and broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The token with this `jti` (or [`token_hash`] of the token) from `issuer` (empty for
    /// tokens without `iss`), until `expires` (the token's `exp`).
    Token {
        issuer: String,
        id: String,
        expires: u64,
    },
    /// Every credential of `subject` issued at or before `as_of`; `issuer` `None` for all.
    Subject {
        issuer: Option<String>,
        subject: String,
        as_of: u64,
    },
    /// The session whose context's `session_id` is `id`, until `expires`.
    Session { id: String, expires: u64 },
    /// Sessions an OpenID Connect provider's back-channel logout ended: the one with
    /// provider session id `sid`, or every one of provider subject `sub`, made at or
    /// before `as_of`.
    Provider {
        issuer: String,
        key: ProviderKey,
        as_of: u64,
    },
}

/// What a back-channel logout names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ProviderKey {
    Sid(String),
    Sub(String),
}

impl ProviderKey {
    pub(super) fn encoded(&self) -> String {
        match self {
            ProviderKey::Sid(s) => format!("sid:{s}"),
            ProviderKey::Sub(s) => format!("sub:{s}"),
        }
    }
    pub(super) fn decode(text: &str) -> Option<Self> {
        if let Some(s) = text.strip_prefix("sid:") {
            Some(ProviderKey::Sid(s.to_owned()))
        } else {
            text.strip_prefix("sub:")
                .map(|s| ProviderKey::Sub(s.to_owned()))
        }
    }
}

/// The issuer scope of a subject revocation that ends sessions only (not tokens): what
/// [`SessionManager::logout_everywhere`](crate::session::SessionManager::logout_everywhere)
/// publishes for other instances' local caches.
pub const SESSION_SCOPE: &str = "portcullis:sessions";

/// How long a subject revocation is kept: longer than any credential it can refuse
/// (sessions live at most 12 h by default, tokens usually less).
pub(super) const SUBJECT_TTL: u64 = 30 * 24 * 3600;

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Entry {
    /// The field it is stored under, and its value (`expires` or `as_of`).
    pub(crate) fn encode(&self) -> (String, u64) {
        match self {
            Entry::Token {
                issuer,
                id,
                expires,
            } => (format!("t\u{1f}{issuer}\u{1f}{id}"), *expires),
            Entry::Subject {
                issuer,
                subject,
                as_of,
            } => (
                format!("s\u{1f}{}\u{1f}{subject}", issuer.as_deref().unwrap_or("*")),
                *as_of,
            ),
            Entry::Session { id, expires } => (format!("x\u{1f}{id}"), *expires),
            Entry::Provider { issuer, key, as_of } => {
                (format!("o\u{1f}{issuer}\u{1f}{}", key.encoded()), *as_of)
            }
        }
    }
    /// The inverse of [`encode`](Self::encode); `None` for anything else.
    pub(crate) fn decode(field: &str, value: u64) -> Option<Entry> {
        let mut parts = field.split('\u{1f}');
        let entry = match (parts.next()?, parts.next()?, parts.next()) {
            ("t", issuer, Some(id)) => Entry::Token {
                issuer: issuer.to_owned(),
                id: id.to_owned(),
                expires: value,
            },
            ("s", issuer, Some(subject)) => Entry::Subject {
                issuer: (issuer != "*").then(|| issuer.to_owned()),
                subject: subject.to_owned(),
                as_of: value,
            },
            ("x", id, None) => Entry::Session {
                id: id.to_owned(),
                expires: value,
            },
            ("o", issuer, Some(key)) => Entry::Provider {
                issuer: issuer.to_owned(),
                key: ProviderKey::decode(key)?,
                as_of: value,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(entry)
    }
    /// The Unix time after which the entry can refuse nothing.
    pub(crate) fn useless_after(&self) -> u64 {
        match self {
            Entry::Token { expires, .. } | Entry::Session { expires, .. } => *expires,
            Entry::Subject { as_of, .. } | Entry::Provider { as_of, .. } => {
                as_of.saturating_add(SUBJECT_TTL)
            }
        }
    }
}
