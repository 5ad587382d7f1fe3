//! Raw claims of an [`AuthContext`](crate::AuthContext), parsed into a map on first use.
//!
//! A verified token's payload has already passed the strict parser, which also took out
//! everything the context needs (subject, roles, scopes, ...). Most handlers never look
//! at the other claims, so the request path keeps the payload bytes and builds the
//! `serde_json::Map` only when [`AuthContext::claims`](crate::AuthContext::claims) is called.

use std::sync::OnceLock;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimsCell {
    /// A JSON object that passed the strict parser; `None` once `map` holds the claims.
    raw: Option<Box<[u8]>>,
    map: OnceLock<Map<String, Value>>,
}

impl ClaimsCell {
    /// Claims from the bytes of a JSON object that passed the strict parser.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn from_raw(json: Vec<u8>) -> Self {
        ClaimsCell {
            raw: Some(json.into_boxed_slice()),
            map: OnceLock::new(),
        }
    }

    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        ClaimsCell {
            raw: None,
            map: OnceLock::from(map),
        }
    }

    pub(crate) fn get(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| match &self.raw {
            // Cannot fail: the bytes passed the stricter parser before they got here.
            Some(raw) => serde_json::from_slice(raw).unwrap_or_default(),
            None => Map::new(),
        })
    }

    pub(crate) fn get_mut(&mut self) -> &mut Map<String, Value> {
        self.get();
        self.raw = None;
        self.map.get_mut().expect("initialised by get")
    }
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
        assert_eq!(c, ClaimsCell::from_map(c.get().clone()));
        assert!(ClaimsCell::default().get().is_empty());
    }
}
