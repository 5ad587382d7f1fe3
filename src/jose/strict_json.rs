//! Strict JSON for JWS headers, claims and key documents (RFC 7515 §5.2, RFC 8725):
//! duplicate object keys are rejected at every depth, trailing data is rejected.
//!
//! [`parse_object`] builds a borrowed tree ([`Json`]): strings without escapes point into
//! the input, so a token's claims are checked and mapped without allocating a `String`
//! per claim. [`AuthContext::claims`](crate::AuthContext::claims) parses the same bytes
//! into a `serde_json::Map` only when a handler asks for it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Objects up to this many keys are checked for duplicates pairwise; larger ones by sorting.
const PAIRWISE_MAX: usize = 16;

/// A JSON value borrowing from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// Every JSON number as `f64`: enough for dates; exact values stay in the raw bytes.
    Number(f64),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

impl<'a> Json<'a> {
    /// The string, when this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A JSON object with unique keys, in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// The member named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Json<'a>> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
    /// True when a member named `name` exists.
    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// The member named `name`; failing that, a dotted path through nested objects
    /// (`realm_access.roles`).
    pub(crate) fn lookup(&self, name: &str) -> Option<&Json<'a>> {
        if let Some(v) = self.get(name) {
            return Some(v);
        }
        if !name.as_bytes().contains(&b'.') {
            return None;
        }
        let mut parts = name.split('.');
        let mut cur = self.get(parts.next()?)?;
        for p in parts {
            match cur {
                Json::Object(o) => cur = o.get(p)?,
                _ => return None,
            }
        }
        Some(cur)
    }
}

fn has_duplicates(entries: &[(Cow<'_, str>, Json<'_>)]) -> bool {
    if entries.len() <= PAIRWISE_MAX {
        return entries
            .iter()
            .enumerate()
            .any(|(i, (k, _))| entries[..i].iter().any(|(seen, _)| seen == k));
    }
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> de::Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        if v.is_finite() {
            Ok(Json::Number(v))
        } else {
            Err(E::custom("non-finite number"))
        }
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        // Room for a typical token's claims without regrowing.
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).clamp(8, 64));
        while let Some(Key(k)) = map.next_key()? {
            out.push((k, map.next_value()?));
        }
        if has_duplicates(&out) {
            return Err(de::Error::custom("duplicate key"));
        }
        Ok(Json::Object(Object(out)))
    }
}

/// Parses `bytes` as one JSON object, rejecting duplicate keys and trailing data.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Object<'_>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v: Json<'_> = de::Deserialize::deserialize(&mut de).ok()?;
    de.end().ok()?;
    match v {
        Json::Object(o) => Some(o),
        _ => None,
    }
}

/// Parses `bytes` as one JSON object into a `serde_json::Map`, with the same strictness.
pub(crate) fn parse_map(bytes: &[u8]) -> Option<Map<String, Value>> {
    parse_object(bytes)?;
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_some());
        assert!(parse_object(br#"{"a":1,"a":2}"#).is_none());
        assert!(parse_object(br#"{"a":{"b":1,"b":1}}"#).is_none());
        assert!(parse_object(br#"{"a":[{"b":1,"b":2}]}"#).is_none());
        assert!(parse_object(br#"{"a":1,"\u0061":2}"#).is_none());
        assert!(parse_object(br#"[1]"#).is_none());
        assert!(parse_object(br#"{"a":1} x"#).is_none());
        assert!(parse_object(br#"{"a":1}{"a":2}"#).is_none());
        assert!(parse_object(br#"{"a":1e999}"#).is_none());
    }

    #[test]
    fn large_objects_use_the_sorted_check() {
        let distinct: Vec<String> = (0..200).map(|i| format!("\"k{i}\":{i}")).collect();
        let ok = format!("{{{}}}", distinct.join(","));
        assert!(parse_object(ok.as_bytes()).is_some());
        let dup = format!("{{{},\"k7\":0}}", distinct.join(","));
        assert!(parse_object(dup.as_bytes()).is_none());
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let o = parse_object(br#"{"plain":"x","esc":"a\nb"}"#).unwrap();
        assert!(matches!(
            o.get("plain"),
            Some(Json::String(Cow::Borrowed("x")))
        ));
        assert_eq!(o.get("esc").and_then(Json::as_str), Some("a\nb"));
    }

    #[test]
    fn lookup_literal_then_dotted() {
        let o = parse_object(br#"{"a.b":1,"a":{"b":2,"c":{"d":"x"}}}"#).unwrap();
        assert_eq!(o.lookup("a.b"), Some(&Json::Number(1.0)));
        assert_eq!(o.lookup("a.c.d").and_then(Json::as_str), Some("x"));
        assert_eq!(o.lookup("a.x"), None);
        assert_eq!(o.lookup("a.b.c"), None);
    }

    #[test]
    fn map_matches_the_strict_parse() {
        assert!(parse_map(br#"{"a":{"b":1,"b":2}}"#).is_none());
        let m = parse_map(br#"{"n":12345678901234567890,"s":"x"}"#).unwrap();
        assert_eq!(m["n"].as_u64(), Some(12345678901234567890));
    }

    /// A JSON tree with control over key spelling, to render and to predict the verdict.
    #[derive(Debug, Clone)]
    enum Node {
        Num(i64),
        Str(String),
        Arr(Vec<Node>),
        /// (key, spell it with a `\u` escape, value)
        Obj(Vec<(String, bool, Node)>),
    }

    fn render(n: &Node, out: &mut String) {
        match n {
            Node::Num(i) => out.push_str(&i.to_string()),
            Node::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Node::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render(v, out);
                }
                out.push(']');
            }
            Node::Obj(members) => {
                out.push('{');
                for (i, (k, escaped, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if *escaped {
                        out.push('"');
                        for c in k.chars() {
                            out.push_str(&format!("\\u{:04x}", u32::from(c)));
                        }
                        out.push('"');
                    } else {
                        out.push_str(&serde_json::to_string(k).unwrap());
                    }
                    out.push(':');
                    render(v, out);
                }
                out.push('}');
            }
        }
    }

    fn has_dup_anywhere(n: &Node) -> bool {
        match n {
            Node::Num(_) | Node::Str(_) => false,
            Node::Arr(items) => items.iter().any(has_dup_anywhere),
            Node::Obj(members) => {
                let mut keys: Vec<&String> = members.iter().map(|(k, _, _)| k).collect();
                keys.sort();
                keys.windows(2).any(|w| w[0] == w[1])
                    || members.iter().any(|(_, _, v)| has_dup_anywhere(v))
            }
        }
    }

    fn node() -> impl proptest::strategy::Strategy<Value = Node> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<i64>().prop_map(Node::Num),
            "[a-c\\\"é]{0,3}".prop_map(Node::Str),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Node::Arr),
                // A three-letter key alphabet makes duplicates common; sizes up to 24
                // cross the pairwise/sorted threshold.
                prop::collection::vec(("[a-c]{1,2}", any::<bool>(), inner), 0..24)
                    .prop_map(Node::Obj),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 1000, failure_persistence: None, ..Default::default()
        })]

        /// Accepts exactly the objects without a duplicate key at any depth, whatever the
        /// spelling of the keys, and then agrees with serde_json on every value.
        #[test]
        fn verdict_matches_a_model(members in proptest::collection::vec(("[a-c]{1,2}", proptest::prelude::any::<bool>(), node()), 0..24)) {
            let tree = Node::Obj(members);
            let mut text = String::new();
            render(&tree, &mut text);
            let parsed = parse_object(text.as_bytes());
            proptest::prop_assert_eq!(parsed.is_some(), !has_dup_anywhere(&tree), "{}", text);
            if let Some(obj) = parsed {
                let value: Value = serde_json::from_str(&text).unwrap();
                let map = parse_map(text.as_bytes()).unwrap();
                proptest::prop_assert_eq!(&Value::Object(map.clone()), &value);
                for (k, v) in &map {
                    let got = obj.get(k);
                    proptest::prop_assert!(got.is_some());
                    if let Some(s) = v.as_str() {
                        proptest::prop_assert_eq!(got.and_then(Json::as_str), Some(s));
                    }
                }
            }
        }
    }
}
