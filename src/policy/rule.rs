//! [`Rule`]: what an authenticated context may do, composable with `and`, `or`, `not`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::request::Parts;

use super::owner::OwnerKey;
use crate::authenticator::BoxFuture;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;

/// The facts a rule sees: the context, the request head and the matched path parameters.
#[derive(Debug)]
pub struct PolicyInput<'a> {
    /// The authenticated context.
    pub ctx: &'a AuthContext,
    /// The request head (method, URI, headers, extensions). Never the body.
    pub parts: &'a Parts,
    /// Path parameters of the matched route (`/posts/{id}` gives `("id", ...)`).
    pub params: &'a [(String, String)],
}

impl PolicyInput<'_> {
    /// A path parameter by name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Not allowed (403).
    Deny,
    /// Not allowed for lack of this OAuth scope (403 `insufficient_scope`).
    MissingScope(String),
}

type SyncPredicate = dyn Fn(&PolicyInput<'_>) -> bool + Send + Sync;
type AsyncPredicate =
    dyn for<'a> Fn(&'a PolicyInput<'a>) -> BoxFuture<'a, Result<bool, AuthError>> + Send + Sync;
type OwnerResolver =
    dyn Fn(String) -> BoxFuture<'static, Result<Option<String>, AuthError>> + Send + Sync;

enum Kind {
    Deny,
    Authenticated,
    Role(String),
    AnyRole(Vec<String>),
    AllRoles(Vec<String>),
    Scope(String),
    Scheme(Scheme),
    Service,
    TenantFromPath(String),
    OwnerFromPath(String, OwnerKey),
    OwnerVia(String, OwnerKey, Arc<OwnerResolver>),
    Predicate(Cow<'static, str>, Arc<SyncPredicate>),
    AsyncPredicate(Cow<'static, str>, Arc<AsyncPredicate>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Rule),
}

/// An authorization rule. Build with the constructors, combine with
/// [`and`](Rule::and), [`or`](Rule::or), [`not`](Rule::not); enforce with
/// [`PolicyLayer`](crate::policy::PolicyLayer) or [`RouteRules`](crate::policy::RouteRules).
///
/// ```
/// use portcullis::policy::Rule;
/// let editors = Rule::role("editor").and(Rule::scope("posts:write"));
/// let rule = Rule::owner_of_path("id").or(Rule::role("admin")).or(editors);
/// assert!(rule.to_string().contains("owner_of_path(id)"));
/// ```
#[derive(Clone)]
pub struct Rule(Arc<Kind>);

impl Rule {
    fn new(kind: Kind) -> Self {
        Rule(Arc::new(kind))
    }
    /// Always deny.
    pub fn deny() -> Self {
        Self::new(Kind::Deny)
    }
    /// Any authenticated context.
    pub fn authenticated() -> Self {
        Self::new(Kind::Authenticated)
    }
    /// Holds `role`.
    pub fn role(role: impl Into<String>) -> Self {
        Self::new(Kind::Role(role.into()))
    }
    /// Holds at least one of `roles`.
    pub fn any_role<I, S>(roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Kind::AnyRole(roles.into_iter().map(Into::into).collect()))
    }
    /// Holds all of `roles`.
    pub fn all_roles<I, S>(roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Kind::AllRoles(roles.into_iter().map(Into::into).collect()))
    }
    /// Token grants `scope` (denial answers `insufficient_scope`).
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::new(Kind::Scope(scope.into()))
    }
    /// Authenticated by `scheme`.
    pub fn scheme(scheme: Scheme) -> Self {
        Self::new(Kind::Scheme(scheme))
    }
    /// A service principal (e.g. a Cloudflare Access service token).
    pub fn service() -> Self {
        Self::new(Kind::Service)
    }
    /// The context's tenant equals path parameter `param`.
    pub fn tenant_from_path(param: impl Into<String>) -> Self {
        Self::new(Kind::TenantFromPath(param.into()))
    }
    /// The context's **subject** equals path parameter `param` (`/users/{id}`). To
    /// compare the e-mail, a claim or your own key, use
    /// [`owner_of_path_as`](Self::owner_of_path_as).
    pub fn owner_of_path(param: impl Into<String>) -> Self {
        Self::owner_of_path_as(param, OwnerKey::subject())
    }
    /// The context's `key` attribute ([`OwnerKey`]) equals path parameter `param`.
    ///
    /// ```
    /// use portcullis::policy::{OwnerKey, Rule};
    /// // /users/{email}/settings: only that user.
    /// let rule = Rule::owner_of_path_as("email", OwnerKey::email());
    /// assert_eq!(rule.to_string(), "owner_of_path(email, by email)");
    /// ```
    pub fn owner_of_path_as(param: impl Into<String>, key: OwnerKey) -> Self {
        Self::new(Kind::OwnerFromPath(param.into(), key))
    }
    /// Asks `resolve(<path param>)` for the resource owner (a database lookup) and
    /// allows the owner, compared with the context's **subject**. `Ok(None)` (no such
    /// resource) denies. Ids come from the matched path only, never from the body or
    /// query. To compare another attribute, use [`owner_via_as`](Self::owner_via_as).
    ///
    /// ```
    /// use portcullis::{AuthError, policy::Rule};
    /// let rule = Rule::owner_via("id", |id: String| async move {
    ///     Ok::<_, AuthError>((id == "1").then(|| "alice".to_owned()))
    /// }).or(Rule::role("admin"));
    /// # let _ = rule;
    /// ```
    pub fn owner_via<F, Fut>(param: impl Into<String>, resolve: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<String>, AuthError>> + Send + 'static,
    {
        Self::owner_via_as(param, OwnerKey::subject(), resolve)
    }
    /// [`owner_via`](Self::owner_via), comparing the owner with the context's `key`
    /// attribute ([`OwnerKey`]): documents owned by an e-mail address behind Cloudflare
    /// Access, say.
    ///
    /// ```
    /// use portcullis::{AuthError, policy::{OwnerKey, Rule}};
    /// let rule = Rule::owner_via_as("id", OwnerKey::email(), |id: String| async move {
    ///     Ok::<_, AuthError>((id == "1").then(|| "bob@example.com".to_owned()))
    /// });
    /// assert_eq!(rule.to_string(), "owner_via(id, by email)");
    /// ```
    pub fn owner_via_as<F, Fut>(param: impl Into<String>, key: OwnerKey, resolve: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<String>, AuthError>> + Send + 'static,
    {
        Self::new(Kind::OwnerVia(
            param.into(),
            key,
            Arc::new(move |id| Box::pin(resolve(id))),
        ))
    }
    /// A named synchronous predicate over the context and request head.
    pub fn predicate<F>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        F: Fn(&PolicyInput<'_>) -> bool + Send + Sync + 'static,
    {
        Self::new(Kind::Predicate(name.into(), Arc::new(f)))
    }
    /// A named asynchronous predicate; an error fails closed (its status is returned).
    ///
    /// ```
    /// use portcullis::{AuthError, policy::{PolicyInput, Rule}};
    /// let rule = Rule::async_predicate("not_banned", |input: &PolicyInput<'_>| {
    ///     let banned = input.ctx.subject() == "mallory";
    ///     Box::pin(async move { Ok::<_, AuthError>(!banned) })
    /// });
    /// # let _ = rule;
    /// ```
    pub fn async_predicate<F>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        F: for<'a> Fn(&'a PolicyInput<'a>) -> BoxFuture<'a, Result<bool, AuthError>>
            + Send
            + Sync
            + 'static,
    {
        Self::new(Kind::AsyncPredicate(name.into(), Arc::new(f)))
    }
    /// Both must allow.
    pub fn and(self, other: Rule) -> Self {
        Self::new(Kind::And(vec![self, other]))
    }
    /// Either may allow.
    pub fn or(self, other: Rule) -> Self {
        Self::new(Kind::Or(vec![self, other]))
    }
    /// Inverts (a missing scope counts as deny, so `not` of it allows).
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        Self::new(Kind::Not(self))
    }

    /// Evaluates the rule. Errors (resolver down) fail closed.
    pub fn evaluate<'a>(
        &'a self,
        input: &'a PolicyInput<'a>,
    ) -> BoxFuture<'a, Result<Verdict, AuthError>> {
        Box::pin(async move { self.eval(input).await })
    }

    async fn eval(&self, input: &PolicyInput<'_>) -> Result<Verdict, AuthError> {
        let ctx = input.ctx;
        let yes = |b: bool| Ok(if b { Verdict::Allow } else { Verdict::Deny });
        match &*self.0 {
            Kind::Authenticated => yes(true),
            Kind::Deny => yes(false),
            Kind::Role(r) => yes(ctx.has_role(r)),
            Kind::AnyRole(rs) => yes(rs.iter().any(|r| ctx.has_role(r))),
            Kind::AllRoles(rs) => yes(!rs.is_empty() && rs.iter().all(|r| ctx.has_role(r))),
            Kind::Scope(s) => Ok(if ctx.has_scope(s) {
                Verdict::Allow
            } else {
                Verdict::MissingScope(s.clone())
            }),
            Kind::Scheme(s) => yes(ctx.scheme() == *s),
            Kind::Service => yes(ctx.is_service()),
            Kind::TenantFromPath(p) => {
                yes(matches!((ctx.tenant(), input.param(p)), (Some(t), Some(v)) if t == v))
            }
            Kind::OwnerFromPath(p, key) => yes(input.param(p).is_some_and(|v| key.matches(ctx, v))),
            Kind::OwnerVia(p, key, resolve) => match input.param(p) {
                None => yes(false),
                Some(id) => {
                    let owner = resolve(id.to_owned()).await?;
                    let owns = owner.as_deref().is_some_and(|o| key.matches(ctx, o));
                    if !owns && owner.is_some() {
                        tracing::debug!(by = %key, "not the owner: denied");
                    }
                    yes(owns)
                }
            },
            Kind::Predicate(_, f) => yes(f(input)),
            Kind::AsyncPredicate(_, f) => yes(f(input).await?),
            Kind::And(rules) => {
                for r in rules {
                    let v = r.evaluate(input).await?;
                    if v != Verdict::Allow {
                        return Ok(v);
                    }
                }
                Ok(Verdict::Allow)
            }
            Kind::Or(rules) => {
                let mut last = Verdict::Deny;
                for r in rules {
                    match r.evaluate(input).await? {
                        Verdict::Allow => return Ok(Verdict::Allow),
                        v => last = v,
                    }
                }
                Ok(last)
            }
            Kind::Not(r) => Ok(match r.evaluate(input).await? {
                Verdict::Allow => Verdict::Deny,
                _ => Verdict::Allow,
            }),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, op: &str, rules: &[Rule]| {
            f.write_str("(")?;
            for (i, r) in rules.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{r}")?;
            }
            f.write_str(")")
        };
        match &*self.0 {
            Kind::Deny => f.write_str("deny"),
            Kind::Authenticated => f.write_str("authenticated"),
            Kind::Role(r) => write!(f, "role({r})"),
            Kind::AnyRole(r) => write!(f, "any_role({})", r.join(",")),
            Kind::AllRoles(r) => write!(f, "all_roles({})", r.join(",")),
            Kind::Scope(s) => write!(f, "scope({s})"),
            Kind::Scheme(s) => write!(f, "scheme({s})"),
            Kind::Service => f.write_str("service"),
            Kind::TenantFromPath(p) => write!(f, "tenant_from_path({p})"),
            Kind::OwnerFromPath(p, k) if k.is_subject() => write!(f, "owner_of_path({p})"),
            Kind::OwnerFromPath(p, k) => write!(f, "owner_of_path({p}, by {k})"),
            Kind::OwnerVia(p, k, _) if k.is_subject() => write!(f, "owner_via({p})"),
            Kind::OwnerVia(p, k, _) => write!(f, "owner_via({p}, by {k})"),
            Kind::Predicate(n, _) | Kind::AsyncPredicate(n, _) => f.write_str(n),
            Kind::And(r) => list(f, "and", r),
            Kind::Or(r) => list(f, "or", r),
            Kind::Not(r) => write!(f, "not {r}"),
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self})")
    }
}
