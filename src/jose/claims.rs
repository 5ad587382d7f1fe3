//! [`Claims`]: a verified token's claims, as a context mapper reads them; and
//! `audience_matches`, the `aud` check JWT validation and introspection share.

use super::strict_json::{Json, Object};
use crate::error::AuthError;

/// The key binding of a token whose `cnf` is malformed: no JWK thumbprint (43 base64url
/// characters) is empty, so it matches no proof key.
pub(crate) const MALFORMED_BINDING: &str = "";

/// The claims of a token that passed every check, handed to a context mapper
/// ([`Issuer::with_context_mapper`](crate::jwt::Issuer::with_context_mapper)).
///
/// A name is looked up as a literal key first (namespaced claims such as
/// `https://example.com/roles`), then as a dotted path through nested objects
/// (`realm_access.roles`). Every getter refuses a claim of the wrong type with an
/// invalid-token error rather than skipping it.
///
/// ```
/// use portcullis::{AuthContext, Scheme};
/// use portcullis::jwt::{Algorithm, Issuer, KeySet, Validation};
/// let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
/// let issuer = Issuer::new(keys, Validation::new([Algorithm::HS256]).with_audience("api"))
///     .with_context_mapper(|claims| {
///         let sub = claims.string("sub")?.unwrap_or("anonymous");
///         let roles = claims.strings("realm_access.roles")?.unwrap_or_default();
///         Ok(AuthContext::builder(sub, Scheme::Bearer).with_roles(roles))
///     });
/// # let _ = issuer;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    object: &'a Object<'a>,
}

impl<'a> Claims<'a> {
    pub(crate) fn new(object: &'a Object<'a>) -> Self {
        Claims { object }
    }

    /// The underlying object.
    pub(crate) fn object(&self) -> &'a Object<'a> {
        self.object
    }

    fn lookup(&self, name: &str) -> Option<&'a Json<'a>> {
        self.object.lookup(name)
    }

    /// The value at `path` through nested objects, each step a literal key (for keys
    /// that contain dots, such as a client id in `resource_access.<client>.roles`).
    fn at(&self, path: &[&str]) -> Option<&'a Json<'a>> {
        let (first, rest) = path.split_first()?;
        let mut cur = self.object.get(first)?;
        for step in rest {
            match cur {
                Json::Object(o) => cur = o.get(step)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// The JWK thumbprint the token is bound to (`cnf.jkt`, RFC 9449 section 6.1).
    /// A malformed binding (`cnf` not an object, `jkt` not a string) binds the token
    /// to no key at all ([`MALFORMED_BINDING`]): a DPoP-enabled scheme refuses it as
    /// Bearer and with every proof, and nothing else reads it.
    pub(crate) fn key_binding(&self) -> Option<&'a str> {
        match self.object.get("cnf") {
            None => None,
            Some(Json::Object(cnf)) => match cnf.get("jkt") {
                None => None,
                Some(Json::String(s)) => Some(s.as_ref()),
                Some(_) => Some(MALFORMED_BINDING),
            },
            Some(_) => Some(MALFORMED_BINDING),
        }
    }
    /// True when the claim is present (whatever its type).
    pub fn contains(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }
    /// A string claim; an error when it has another type.
    pub fn string(&self, name: &str) -> Result<Option<&'a str>, AuthError> {
        match self.lookup(name) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_ref())),
            Some(_) => Err(AuthError::invalid("jwt: claim is not a string")),
        }
    }
    /// A numeric claim; an error when it has another type.
    pub fn number(&self, name: &str) -> Result<Option<f64>, AuthError> {
        match self.lookup(name) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(Some(*n)),
            Some(_) => Err(AuthError::invalid("jwt: claim is not a number")),
        }
    }
    /// A boolean claim; an error when it has another type.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, AuthError> {
        match self.lookup(name) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(AuthError::invalid("jwt: claim is not a boolean")),
        }
    }
    /// An array of strings; an error for any other type or a non-string element.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, AuthError> {
        self.lookup(name).map(|v| string_list(v, false)).transpose()
    }
    /// An array of strings at `path`, each step a literal key:
    /// `strings_at(&["resource_access", "my.client", "roles"])`.
    pub fn strings_at(&self, path: &[&str]) -> Result<Option<Vec<String>>, AuthError> {
        self.at(path).map(|v| string_list(v, false)).transpose()
    }
    /// An array of strings or one space-separated string (as OAuth `scope` is sent).
    pub fn space_separated(&self, name: &str) -> Result<Option<Vec<String>>, AuthError> {
        self.lookup(name).map(|v| string_list(v, true)).transpose()
    }
}

fn string_list(v: &Json<'_>, allow_space_separated: bool) -> Result<Vec<String>, AuthError> {
    match v {
        Json::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| AuthError::invalid("jwt: list claim has a non-string"))
            })
            .collect(),
        Json::String(s) if allow_space_separated => Ok(s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()),
        _ => Err(AuthError::invalid("jwt: list claim has the wrong type")),
    }
}

/// Whether the audience claim `name` (a string, or a non-empty array of strings) names
/// one of `wanted`; `None` when there is no such claim. Other types, and arrays holding
/// anything but strings, are errors whatever `wanted` is.
pub(crate) fn audience_matches(
    claims: &Object<'_>,
    name: &str,
    wanted: &[String],
) -> Result<Option<bool>, AuthError> {
    let ours = |a: &str| wanted.iter().any(|w| w == a);
    match claims.get(name) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(ours(s))),
        Some(Json::Array(items)) if !items.is_empty() => {
            let mut hit = false;
            for item in items {
                let a = item
                    .as_str()
                    .ok_or_else(|| AuthError::invalid("jwt: aud has a non-string"))?;
                hit |= ours(a);
            }
            Ok(Some(hit))
        }
        Some(_) => Err(AuthError::invalid("jwt: aud has the wrong type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::strict_json::parse_object;

    #[test]
    fn typed_getters_refuse_wrong_types() {
        let bytes = br#"{"s":"x","n":5,"b":true,"l":["a","b"],"sp":"r w","bad":["a",1],"o":{"in":"y"},"https://x.io/r":["z"]}"#;
        let obj = parse_object(bytes).unwrap();
        let c = Claims::new(&obj);
        assert_eq!(c.string("s").unwrap(), Some("x"));
        assert_eq!(c.string("o.in").unwrap(), Some("y"));
        assert_eq!(c.string("missing").unwrap(), None);
        assert_eq!(
            crate::error::reason_of(c.string("n")),
            "jwt: claim is not a string"
        );
        assert_eq!(c.number("n").unwrap(), Some(5.0));
        assert_eq!(
            crate::error::reason_of(c.number("s")),
            "jwt: claim is not a number"
        );
        assert_eq!(c.boolean("b").unwrap(), Some(true));
        assert_eq!(
            crate::error::reason_of(c.boolean("s")),
            "jwt: claim is not a boolean"
        );
        assert_eq!(c.strings("l").unwrap().unwrap(), ["a", "b"]);
        assert_eq!(c.strings("https://x.io/r").unwrap().unwrap(), ["z"]);
        assert_eq!(
            crate::error::reason_of(c.strings("bad")),
            "jwt: list claim has a non-string"
        );
        assert_eq!(
            crate::error::reason_of(c.strings("sp")),
            "jwt: list claim has the wrong type"
        );
        assert_eq!(c.space_separated("sp").unwrap().unwrap(), ["r", "w"]);
        assert!(c.contains("o"));
        let nested = br#"{"r":{"a.b":{"roles":["x"]}},"s":"y"}"#;
        let obj = parse_object(nested).unwrap();
        let n = Claims::new(&obj);
        assert_eq!(
            n.strings_at(&["r", "a.b", "roles"]).unwrap().unwrap(),
            ["x"]
        );
        assert_eq!(n.strings_at(&["r", "zz", "roles"]).unwrap(), None);
        assert_eq!(n.strings_at(&["s", "t"]).unwrap(), None);
        assert_eq!(
            crate::error::reason_of(n.strings_at(&["s"])),
            "jwt: list claim has the wrong type"
        );
        assert!(!c.contains("p"));
    }
}
