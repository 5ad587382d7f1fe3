//! [`RouteRules`]: every route's rule in one place, keyed by method and matched route.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use http::Method;

use super::rule::Rule;

/// Rules per (method, route template) evaluated on axum's matched route, so path
/// spellings (`/admin/`, `//admin`, `/%61dmin`, `/ADMIN`) cannot pick another rule,
/// and method-override headers are ignored. `HEAD` follows `GET`. Routes without a
/// rule are denied unless a default is set.
///
/// Install with `Router::route_layer` (the matched route is known there). Templates are
/// the *full* matched path: under `Router::nest("/app", ..)` a route `/notes/{id}` is
/// `/app/notes/{id}`. A request whose route has no rule is denied (403) and logged at
/// error level, once per route, with the rule it most likely meant.
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
    reported: Arc<Mutex<HashSet<(Method, String)>>>,
}

/// Routes reported without a rule, at most (the log stays bounded).
const MAX_REPORTED: usize = 1024;

/// Panics with the fix when `route` is written in axum 0.7's syntax (`/:id`, `/*rest`).
fn check_template(route: &str) {
    for segment in route.split('/') {
        if let Some(name) = segment.strip_prefix(':') {
            panic!(
                "RouteRules: {route:?} uses axum 0.7 syntax; write `{{{name}}}` instead of `:{name}` (axum 0.8 templates)"
            );
        }
        if let Some(name) = segment.strip_prefix('*') {
            panic!(
                "RouteRules: {route:?} uses axum 0.7 syntax; write `{{*{name}}}` instead of `*{name}` (axum 0.8 templates)"
            );
        }
    }
    assert!(
        route.starts_with('/'),
        "RouteRules: {route:?} must start with `/`, as the route given to Router::route"
    );
}

impl RouteRules {
    /// No rules: everything denied.
    pub fn new() -> Self {
        Self::default()
    }
    /// `rule` for `method` on route template `route` (the full matched path, in axum
    /// 0.8 syntax: `/posts/{id}`).
    ///
    /// # Panics
    /// When `route` does not start with `/` or uses axum 0.7 syntax (`/:id`, `/*rest`),
    /// which would never match; the message gives the template to write instead.
    pub fn with_rule(mut self, method: Method, route: impl Into<String>, rule: Rule) -> Self {
        let route = route.into();
        check_template(&route);
        self.by_method.insert((method, route), rule);
        self
    }
    /// `rule` for every method on `route` without a method-specific rule.
    ///
    /// # Panics
    /// As [`with_rule`](Self::with_rule).
    pub fn with_any_method(mut self, route: impl Into<String>, rule: Rule) -> Self {
        let route = route.into();
        check_template(&route);
        self.any_method.insert(route, rule);
        self
    }
    /// The rule for routes with no entry (default: deny).
    pub fn with_fallback(mut self, rule: Rule) -> Self {
        self.fallback = Some(rule);
        self
    }

    /// The rule for `method` on matched `route`.
    pub(crate) fn rule_for(&self, method: &Method, route: &str) -> Option<&Rule> {
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

    /// Logs, once per route, that `route` has no rule, naming the configured template it
    /// most likely meant (one that ends the same way: a router under `nest`).
    /// Every route template a rule names.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn templates(&self) -> impl Iterator<Item = &str> {
        let mut all: Vec<&str> = self
            .by_method
            .keys()
            .map(|(_, r)| r.as_str())
            .chain(self.any_method.keys().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
    }
    /// The rule for routes without one of their own.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn fallback(&self) -> Option<&Rule> {
        self.fallback.as_ref()
    }

    pub(crate) fn report_missing(&self, method: &Method, route: &str) {
        {
            let mut seen = self.reported.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= MAX_REPORTED || !seen.insert((method.clone(), route.to_owned())) {
                return;
            }
        }
        let meant = self
            .by_method
            .keys()
            .map(|(_, r)| r)
            .chain(self.any_method.keys())
            .find(|r| r.len() < route.len() && route.ends_with(r.as_str()));
        match meant {
            Some(r) => tracing::error!(
                %method,
                route,
                "RouteRules has no rule for this route (denied, 403); the rule for {r:?} \
                 never matches because rules use the full matched path: write {route:?}"
            ),
            None => tracing::error!(
                %method,
                route,
                "RouteRules has no rule for this route (denied, 403): add one with \
                 with_rule / with_any_method, or set with_fallback"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "write `{id}` instead of `:id`")]
    fn old_parameter_syntax_is_refused() {
        let _ = RouteRules::new().with_rule(Method::GET, "/notes/:id", Rule::authenticated());
    }

    #[test]
    #[should_panic(expected = "write `{*rest}` instead of `*rest`")]
    fn old_wildcard_syntax_is_refused() {
        let _ = RouteRules::new().with_any_method("/files/*rest", Rule::authenticated());
    }

    #[test]
    fn the_missing_rule_report_is_bounded() {
        let rules = RouteRules::new().with_any_method("/notes/{id}", Rule::authenticated());
        for i in 0..(MAX_REPORTED + 50) {
            rules.report_missing(&Method::GET, &format!("/r{i}"));
        }
        assert_eq!(rules.reported.lock().unwrap().len(), MAX_REPORTED);
    }
}
