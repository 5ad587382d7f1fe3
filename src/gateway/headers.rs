//! [`IdentityHeaders`]: the headers a gateway hands an origin, cleared of every copy a
//! client sent and written from the verified [`AuthContext`].

use std::fmt;
use std::sync::Arc;

use http::header::CONNECTION;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::assertion::AssertionSigner;
use crate::context::AuthContext;
use crate::error::AuthError;

/// Bytes percent-encoded in a header value: controls, space, `"`, `%`, `,` (the list
/// separator), `;`, `\` and everything outside ASCII (as UTF-8).
const ENCODED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'%')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(0x7f);

fn too_large() -> AuthError {
    AuthError::invalid("gateway: identity too large for headers")
}

/// The identity headers a gateway sets for its origin, and how.
///
/// - **Names**: `<prefix>subject`, `<prefix>roles`, `<prefix>scopes`, `<prefix>email`,
///   `<prefix>tenant`, `<prefix>scheme`, `<prefix>issuer` and, with a signer,
///   `<prefix>assertion`; the prefix is `x-auth-` unless
///   [`with_prefix`](Self::with_prefix) says otherwise, and
///   [`with_name`](Self::with_name) gives one field a name of its own.
/// - **Stripping**: every incoming header whose name starts with the prefix (in any
///   case, every copy, with `_` read as `-`), the names of
///   [`with_also_stripped`](Self::with_also_stripped) (`x-forwarded-user`,
///   `x-remote-user`, `remote-user` by default), and a `Connection` header that names any
///   of them (it would make a proxy in between drop the gateway's own).
/// - **Values**: UTF-8, percent-encoded where a byte is a control character, space,
///   `"`, `%`, `,`, `;`, `\` or not ASCII (decode with any percent-decoder); lists
///   (roles, scopes) are comma-separated, so a member cannot smuggle a separator. A
///   value over [`with_max_value_bytes`](Self::with_max_value_bytes) (4 KiB): the
///   request is refused (401) rather than truncated, since a cut identity is a wrong one.
///
/// Put [`layer`](Self::layer) *inside* the [`AuthLayer`](crate::AuthLayer) (apply it
/// first), around what forwards to the origin:
///
/// ```
/// use axum::{Router, routing::any};
/// use portcullis::{AuthLayer, User, basic::BasicAuth, gateway::IdentityHeaders};
///
/// let basic = BasicAuth::new("edge").with_user("alice", User::plain("pw"));
/// let app: Router = Router::new()
///     .route("/{*path}", any(|| async { "forwarded" }))
///     .layer(IdentityHeaders::new().layer())
///     .layer(AuthLayer::required(basic));
/// ```
#[derive(Clone)]
#[must_use]
pub struct IdentityHeaders {
    prefix: String,
    names: Names,
    /// Fields sent under a name of their own ([`with_name`](Self::with_name)).
    renamed: Vec<(String, HeaderName)>,
    also_stripped: Vec<HeaderName>,
    max_value_bytes: usize,
    signer: Option<Arc<AssertionSigner>>,
}

#[derive(Clone)]
struct Names {
    subject: HeaderName,
    roles: HeaderName,
    scopes: HeaderName,
    email: HeaderName,
    tenant: HeaderName,
    scheme: HeaderName,
    issuer: HeaderName,
    assertion: HeaderName,
}

impl Names {
    /// The name of `field`, as [`IdentityHeaders::with_name`] takes it.
    fn field(&mut self, field: &str) -> Option<&mut HeaderName> {
        Some(match field {
            "subject" => &mut self.subject,
            "roles" => &mut self.roles,
            "scopes" => &mut self.scopes,
            "email" => &mut self.email,
            "tenant" => &mut self.tenant,
            "scheme" => &mut self.scheme,
            "issuer" => &mut self.issuer,
            "assertion" => &mut self.assertion,
            _ => return None,
        })
    }

    fn with_prefix(prefix: &str) -> Option<Self> {
        let n = |s: &str| HeaderName::from_bytes(format!("{prefix}{s}").as_bytes()).ok();
        Some(Names {
            subject: n("subject")?,
            roles: n("roles")?,
            scopes: n("scopes")?,
            email: n("email")?,
            tenant: n("tenant")?,
            scheme: n("scheme")?,
            issuer: n("issuer")?,
            assertion: n("assertion")?,
        })
    }
}

impl fmt::Debug for IdentityHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityHeaders")
            .field("prefix", &self.prefix)
            .field("signed", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentityHeaders {
    /// `x-auth-*` headers, the usual spoofable names stripped too, 4 KiB per value.
    pub fn new() -> Self {
        IdentityHeaders {
            prefix: "x-auth-".into(),
            names: Names::with_prefix("x-auth-").unwrap_or_else(|| unreachable!()),
            renamed: Vec::new(),
            also_stripped: ["x-forwarded-user", "x-remote-user", "remote-user"]
                .into_iter()
                .map(HeaderName::from_static)
                .collect(),
            max_value_bytes: 4 * 1024,
            signer: None,
        }
    }
    /// Use `prefix` (`x-user-`, say) for every name, and strip headers starting with it.
    ///
    /// # Errors
    /// `prefix` is not the start of a header name (letters, digits, `-`), or empty.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, crate::ConfigError> {
        let prefix = prefix.to_ascii_lowercase();
        let valid = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let mut names = Names::with_prefix(&prefix)
            .filter(|_| valid)
            .ok_or_else(|| {
                crate::ConfigError::new(format!("not a header name prefix: {prefix:?}"))
            })?;
        for (field, name) in &self.renamed {
            if let Some(slot) = names.field(field) {
                *slot = name.clone();
            }
        }
        self.prefix = prefix;
        self.names = names;
        Ok(self)
    }
    /// Send one field under a name of its own instead of `<prefix><field>`, for an origin
    /// that reads `X-User-ID`, say. `field` is one of `subject`, `roles`, `scopes`,
    /// `email`, `tenant`, `scheme`, `issuer`, `assertion`; `name` is stripped from
    /// incoming requests like every name of the set (in any case, every copy, with `_`
    /// read as `-`).
    ///
    /// ```
    /// use portcullis::gateway::IdentityHeaders;
    /// let headers = IdentityHeaders::new()
    ///     .with_name("subject", "X-User-ID")?
    ///     .with_name("roles", "X-User-Roles")?;
    /// assert_eq!(headers.names()[0].as_str(), "x-user-id");
    /// assert!(IdentityHeaders::new().with_name("password", "x-pw").is_err());
    /// # Ok::<(), portcullis::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// `field` is not one of those, or `name` is not a header name.
    pub fn with_name(mut self, field: &str, name: &str) -> Result<Self, crate::ConfigError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| crate::ConfigError::new(format!("not a header name: {name:?}")))?;
        let slot = self
            .names
            .field(field)
            .ok_or_else(|| crate::ConfigError::new(format!("no identity field {field:?}")))?;
        *slot = name.clone();
        self.renamed.retain(|(f, _)| f != field);
        self.renamed.push((field.to_owned(), name));
        Ok(self)
    }
    /// Also strip these headers from incoming requests (added to the defaults).
    pub fn with_also_stripped(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.also_stripped.extend(names);
        self
    }
    /// Refuse (401) a request whose identity would need a value longer than `bytes`.
    pub fn with_max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes.max(64);
        self
    }
    /// Also send a signed assertion of the identity (`<prefix>assertion`), so the origin
    /// trusts the gateway's signature instead of plain headers.
    pub fn with_assertion(mut self, signer: AssertionSigner) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }
    /// The header names, in the order subject, roles, scopes, email, tenant, scheme,
    /// issuer, assertion (for a proxy's configuration: nginx `auth_request_set`,
    /// Traefik `authResponseHeaders`, Caddy `copy_headers`).
    pub fn names(&self) -> [&HeaderName; 8] {
        let n = &self.names;
        [
            &n.subject,
            &n.roles,
            &n.scopes,
            &n.email,
            &n.tenant,
            &n.scheme,
            &n.issuer,
            &n.assertion,
        ]
    }

    /// True when `name` is an identity header a client must not send.
    fn is_identity(&self, name: &str) -> bool {
        let dashed;
        let name = if name.contains('_') {
            dashed = name.replace('_', "-");
            dashed.as_str()
        } else {
            name
        };
        name.starts_with(&self.prefix)
            || self.also_stripped.iter().any(|h| h.as_str() == name)
            || self.renamed.iter().any(|(_, h)| h.as_str() == name)
    }

    /// Removes every identity header (see the type's docs) from `headers`.
    pub fn strip(&self, headers: &mut HeaderMap) {
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|n| self.is_identity(n.as_str()))
            .cloned()
            .collect();
        for name in doomed {
            headers.remove(&name);
        }
        let names_identity = headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str().map_or(true, |s| {
                s.split(',')
                    .any(|t| self.is_identity(&t.trim().to_ascii_lowercase()))
            })
        });
        if names_identity {
            headers.remove(CONNECTION);
        }
    }

    /// One value, percent-encoded, within the size bound.
    fn value(&self, text: &str) -> Result<HeaderValue, AuthError> {
        let mut out = String::with_capacity(text.len());
        out.extend(utf8_percent_encode(text, ENCODED));
        self.header_value(out)
    }

    /// A comma-separated list of percent-encoded members.
    fn list<'a>(&self, items: impl Iterator<Item = &'a str>) -> Result<HeaderValue, AuthError> {
        let mut out = String::new();
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.extend(utf8_percent_encode(item, ENCODED));
            if out.len() > self.max_value_bytes {
                return Err(too_large());
            }
        }
        self.header_value(out)
    }

    /// An encoded value as a header value, within the size bound.
    fn header_value(&self, encoded: String) -> Result<HeaderValue, AuthError> {
        if encoded.len() > self.max_value_bytes {
            return Err(too_large());
        }
        HeaderValue::try_from(encoded)
            .map_err(|_| AuthError::invalid("gateway: identity not representable"))
    }

    /// Writes the identity of `ctx` (and its signed assertion, with a signer) into
    /// `headers`, after [`strip`](Self::strip) removed whatever a client sent.
    pub fn write(&self, ctx: &AuthContext, headers: &mut HeaderMap) -> Result<(), AuthError> {
        let n = &self.names;
        headers.insert(&n.subject, self.value(ctx.subject())?);
        headers.insert(&n.scheme, self.value(ctx.scheme().as_str())?);
        if !ctx.roles().is_empty() {
            headers.insert(&n.roles, self.list(ctx.roles().iter().map(String::as_str))?);
        }
        if !ctx.scopes().is_empty() {
            headers.insert(
                &n.scopes,
                self.list(ctx.scopes().iter().map(String::as_str))?,
            );
        }
        if let Some(e) = ctx.email() {
            headers.insert(&n.email, self.value(e)?);
        }
        if let Some(t) = ctx.tenant() {
            headers.insert(&n.tenant, self.value(t)?);
        }
        if let Some(i) = ctx.issuer() {
            headers.insert(&n.issuer, self.value(i)?);
        }
        if let Some(signer) = &self.signer {
            let jwt = signer.sign(ctx)?;
            headers.insert(
                &n.assertion,
                HeaderValue::from_str(&jwt)
                    .map_err(|_| AuthError::unavailable("gateway: assertion not a header"))?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Scheme;

    /// A header map holding `pairs`, names spelled as given (appended, so repeats stay).
    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_renamed_field_is_written_under_its_name_and_stripped_in_every_spelling() {
        let h = IdentityHeaders::new()
            .with_name("subject", "X-User-ID")
            .unwrap()
            .with_prefix("x-gw-")
            .unwrap();
        let mut headers = header_map(&[
            ("X-User-ID", "root"),
            ("x_user_id", "root"),
            ("x-gw-roles", "admin"),
            ("x-auth-subject", "kept"),
            ("accept", "text/html"),
        ]);
        h.strip(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        // The old prefix is no longer this gateway's: left to the origin's own rules.
        assert_eq!(left, ["accept", "x-auth-subject"]);
        let ctx = AuthContext::builder("alice", Scheme::Bearer)
            .with_roles(["member"])
            .build();
        h.write(&ctx, &mut headers).unwrap();
        assert_eq!(headers["x-user-id"], "alice");
        assert_eq!(headers["x-gw-roles"], "member");
        assert!(headers.get("x-gw-subject").is_none());
        assert_eq!(h.names()[0].as_str(), "x-user-id");
        assert!(
            IdentityHeaders::new()
                .with_name("password", "x-pw")
                .is_err()
        );
        assert!(
            IdentityHeaders::new()
                .with_name("subject", "bad name")
                .is_err()
        );
    }

    #[test]
    fn every_spelling_is_stripped_and_values_cannot_smuggle() {
        let h = IdentityHeaders::new();
        let mut headers = header_map(&[
            ("X-Auth-Subject", "admin"),
            ("x-auth-subject", "admin2"),
            ("X_Auth_Roles", "admin"),
            ("x-auth-anything-else", "1"),
            ("X-Forwarded-User", "admin"),
            ("remote-user", "admin"),
            ("connection", "keep-alive, X-Auth-Subject"),
            ("accept", "text/html"),
        ]);
        h.strip(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);

        let ctx = AuthContext::builder("al\"ice,\r\nx", Scheme::Bearer)
            .with_roles(["admin,root", "zoé", "a;b"])
            .with_email("a@example.com")
            .build();
        h.write(&ctx, &mut headers).unwrap();
        assert_eq!(headers["x-auth-subject"], "al%22ice%2C%0D%0Ax");
        assert_eq!(headers["x-auth-roles"], "admin%2Croot,zo%C3%A9,a%3Bb");
        assert_eq!(headers["x-auth-email"], "a@example.com");
        assert_eq!(headers["x-auth-scheme"], "bearer");
        let huge = AuthContext::builder("x".repeat(5000), Scheme::Bearer).build();
        assert!(h.write(&huge, &mut HeaderMap::new()).is_err());
        assert!(IdentityHeaders::new().with_prefix("bad prefix").is_err());
        assert!(IdentityHeaders::new().with_prefix("").is_err());
    }
}
