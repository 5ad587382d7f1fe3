//! [`RouteRules`]: every route's rule in one place, keyed by method and matched route.

use std::collections::HashMap;

use http::Method;

use super::rule::Rule;

/// Rules per (method, route template) evaluated on axum's matched route, so path
/// spellings (`/admin/`, `//admin`, `/%61dmin`, `/ADMIN`) cannot pick another rule,
/// and method-override headers are ignored. `HEAD` follows `GET`. Routes without a
/// rule are denied unless a default is set.
///
/// Install with `Router::route_layer` (the matched route is known there).
///
/// ```
/// use axum::{Router, routing::get};
/// use http::Method;
/// use portcullis::policy::{PolicyLayer, Rule, RouteRules};
///
/// let rules = RouteRules::new()
///     .with_rule(Method::GET, "/posts/{id}", Rule::owner_of_path("id").or(Rule::role("admin")))
///     .with_any_method("/admin", Rule::role("admin"));
/// let app: Router = Router::new()
///     .route("/posts/{id}", get(|| async { "post" }))
///     .route("/admin", get(|| async { "admin" }))
///     .route_layer(PolicyLayer::routes(rules));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    by_method: HashMap<(Method, String), Rule>,
    any_method: HashMap<String, Rule>,
    fallback: Option<Rule>,
}

impl RouteRules {
    /// No rules: everything denied.
    pub fn new() -> Self {
        Self::default()
    }
    /// `rule` for `method` on route template `route` (exactly as given to `Router::route`).
    pub fn with_rule(mut self, method: Method, route: impl Into<String>, rule: Rule) -> Self {
        self.by_method.insert((method, route.into()), rule);
        self
    }
    /// `rule` for every method on `route` without a method-specific rule.
    pub fn with_any_method(mut self, route: impl Into<String>, rule: Rule) -> Self {
        self.any_method.insert(route.into(), rule);
        self
    }
    /// The rule for routes with no entry (default: deny).
    pub fn with_fallback(mut self, rule: Rule) -> Self {
        self.fallback = Some(rule);
        self
    }

    /// The rule for `method` on matched `route`.
    pub fn rule_for(&self, method: &Method, route: &str) -> Option<&Rule> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.by_method
            .get(&(method.clone(), route.to_owned()))
            .or_else(|| self.any_method.get(route))
            .or(self.fallback.as_ref())
    }
}
