//! Raw claims of an [`AuthContext`](crate::AuthContext), parsed into a map on first use.
//!
//! A verified token's payload has already passed the strict parser, which also took out
//! everything the context needs (subject, roles, scopes, ...). Most handlers never look
//! at the other claims, so the request path keeps the payload bytes and builds the
//! `serde_json::Map` only when [`AuthContext::claims`](crate::AuthContext::claims) is called.

use std::sync::OnceLock;

use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub(crate) enum ClaimsCell {
    /// Claims given as a map (builders, sessions).
    Map(Map<String, Value>),
    /// A JSON object that passed the strict parser, parsed into `map` on first use.
    Raw {
        raw: Box<[u8]>,
        map: OnceLock<Map<String, Value>>,
    },
}

impl Default for ClaimsCell {
    fn default() -> Self {
        ClaimsCell::Map(Map::new())
    }
}

impl ClaimsCell {
    /// Claims from the bytes of a JSON object that passed the strict parser.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn from_raw(json: Vec<u8>) -> Self {
        ClaimsCell::Raw {
            raw: json.into_boxed_slice(),
            map: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> &Map<String, Value> {
        match self {
            ClaimsCell::Map(map) => map,
            ClaimsCell::Raw { raw, map } => map.get_or_init(|| parse(raw)),
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut Map<String, Value> {
        if let ClaimsCell::Raw { raw, map } = self {
            let parsed = map.take().unwrap_or_else(|| parse(raw));
            *self = ClaimsCell::Map(parsed);
        }
        match self {
            ClaimsCell::Map(map) => map,
            // Not reached (made a map just above); stays total without a panic.
            ClaimsCell::Raw { .. } => {
                *self = ClaimsCell::default();
                self.get_mut()
            }
        }
    }
}

/// Cannot fail: the bytes passed the stricter parser before they got here.
fn parse(raw: &[u8]) -> Map<String, Value> {
    serde_json::from_slice(raw).unwrap_or_default()
}

impl PartialEq for ClaimsCell {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_parses_on_first_use_and_edits_keep_it() {
        let mut c = ClaimsCell::from_raw(br#"{"a":1,"b":"x"}"#.to_vec());
        assert_eq!(c.get()["b"], "x");
        c.get_mut().insert("c".into(), Value::Bool(true));
        assert_eq!(c.get().len(), 3);
        assert_eq!(c, ClaimsCell::Map(c.get().clone()));
        assert!(ClaimsCell::default().get().is_empty());
    }
}
