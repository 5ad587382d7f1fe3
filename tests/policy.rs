//! Policy layer: each rule and combinator with allow and deny, ownership, bypass paths.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{get as req, send};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use portcullis::policy::{PolicyInput, PolicyLayer, RouteRules, Rule};
use portcullis::{
    AuthContext, AuthError, AuthLayer, Authenticator, Challenge, Check, PrincipalKind, Scheme,
};

/// Test authenticator: `x-user: <name>|<roles,>|<scopes,>|<tenant>|<scheme>|<kind>`.
struct HeaderUser;

impl Authenticator for HeaderUser {
    type Credential = HeaderValue;
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, parts: &Parts) -> Check<HeaderValue> {
        match parts.headers.get("x-user") {
            Some(v) => Check::Pending(v.clone()),
            None => Check::Absent,
        }
    }
    async fn authenticate(&self, v: HeaderValue, _: &Parts) -> Result<AuthContext, AuthError> {
        let v = v.to_str().unwrap().to_owned();
        let f: Vec<&str> = v.split('|').collect();
        let list = |i: usize| {
            f.get(i)
                .map(|s| {
                    s.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let scheme = match f.get(4).copied() {
            Some("bearer") => Scheme::Bearer,
            Some("cloudflare") => Scheme::CloudflareAccess,
            _ => Scheme::Session,
        };
        let mut b = AuthContext::builder(f[0], scheme)
            .with_roles(list(1))
            .with_scopes(list(2));
        if let Some(t) = f.get(3).filter(|t| !t.is_empty()) {
            b = b.with_tenant(*t);
        }
        if f.get(5) == Some(&"service") {
            b = b.with_principal_kind(PrincipalKind::Service);
        }
        Ok(b.build())
    }
}

fn app_with(rule: Rule) -> Router {
    Router::new()
        .route("/r", get(|| async { "ok" }).post(|| async { "ok" }))
        .route("/users/{id}", get(|| async { "ok" }))
        .route("/t/{tenant}/x", get(|| async { "ok" }))
        .route_layer(PolicyLayer::new(rule))
        .layer(AuthLayer::optional(HeaderUser))
}

async fn status(app: &Router, path: &str, user: Option<&str>) -> StatusCode {
    let mut b = req(path);
    if let Some(u) = user {
        b = b.header("x-user", u);
    }
    send(app, b.body(Body::empty()).unwrap()).await.status
}

#[tokio::test]
async fn each_rule_allows_and_denies() {
    let ok = StatusCode::OK;
    let no = StatusCode::FORBIDDEN;
    let cases: Vec<(Rule, &str, &str, StatusCode)> = vec![
        (Rule::authenticated(), "/r", "a", ok),
        (Rule::deny(), "/r", "a", no),
        (Rule::role("admin"), "/r", "a|admin", ok),
        (Rule::role("admin"), "/r", "a|Admin", no),
        (Rule::any_role(["x", "y"]), "/r", "a|y", ok),
        (Rule::any_role(["x", "y"]), "/r", "a|z", no),
        (Rule::all_roles(["x", "y"]), "/r", "a|x,y", ok),
        (Rule::all_roles(["x", "y"]), "/r", "a|x", no),
        (Rule::scope("read"), "/r", "a||read", ok),
        (Rule::scope("read"), "/r", "a||write", no),
        (
            Rule::scheme(Scheme::CloudflareAccess),
            "/r",
            "a||||cloudflare",
            ok,
        ),
        (
            Rule::scheme(Scheme::CloudflareAccess),
            "/r",
            "a||||bearer",
            no,
        ),
        (Rule::service(), "/r", "a|||||service", ok),
        (Rule::service(), "/r", "a", no),
        (
            Rule::tenant_from_path("tenant"),
            "/t/acme/x",
            "a|||acme",
            ok,
        ),
        (
            Rule::tenant_from_path("tenant"),
            "/t/acme/x",
            "a|||other",
            no,
        ),
        (Rule::tenant_from_path("tenant"), "/t/acme/x", "a", no),
        (Rule::owner_of_path("id"), "/users/alice", "alice", ok),
        (Rule::owner_of_path("id"), "/users/alice", "bob", no),
        (
            Rule::predicate("is_alice", |i: &PolicyInput<'_>| i.ctx.subject() == "alice"),
            "/r",
            "alice",
            ok,
        ),
        (
            Rule::predicate("is_alice", |i: &PolicyInput<'_>| i.ctx.subject() == "alice"),
            "/r",
            "bob",
            no,
        ),
        (Rule::role("a").and(Rule::role("b")), "/r", "u|a,b", ok),
        (Rule::role("a").and(Rule::role("b")), "/r", "u|a", no),
        (Rule::role("a").or(Rule::role("b")), "/r", "u|b", ok),
        (Rule::role("a").or(Rule::role("b")), "/r", "u|c", no),
        (Rule::role("banned").not(), "/r", "u", ok),
        (Rule::role("banned").not(), "/r", "u|banned", no),
        (
            Rule::owner_of_path("id").or(Rule::role("admin")),
            "/users/alice",
            "root|admin",
            ok,
        ),
    ];
    for (i, (rule, path, user, want)) in cases.into_iter().enumerate() {
        let name = rule.to_string();
        let app = app_with(rule);
        assert_eq!(
            status(&app, path, Some(user)).await,
            want,
            "case {i}: {name} {path} {user}"
        );
    }
}

#[tokio::test]
async fn no_context_is_401_and_missing_scope_is_insufficient_scope() {
    let app = app_with(Rule::scope("posts:write"));
    assert_eq!(status(&app, "/r", None).await, StatusCode::UNAUTHORIZED);
    let a = send(
        &app,
        req("/r")
            .header("x-user", "a||posts:read||bearer")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["error"], "insufficient_scope");
    assert_eq!(
        a.www_authenticate(),
        ["Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"posts:write\""]
    );
    // Non-bearer contexts get the 403 without a Bearer challenge.
    let a = send(
        &app,
        req("/r")
            .header("x-user", "a||posts:read")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.www_authenticate().is_empty());
}

/// A resource table: user 1 belongs to alice, `down` is a database outage.
fn owner_of(id: &str) -> Result<Option<String>, AuthError> {
    match id {
        "1" => Ok(Some("alice".to_owned())),
        "down" => Err(AuthError::unavailable("db down")),
        _ => Ok(None),
    }
}

#[tokio::test]
async fn async_predicate_and_resolver_fail_closed() {
    let owners = |id: String| async move { owner_of(&id) };
    let app = app_with(Rule::owner_via("id", owners).or(Rule::role("admin")));
    assert_eq!(
        status(&app, "/users/1", Some("alice")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "/users/1", Some("bob")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, "/users/2", Some("alice")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, "/users/down", Some("alice")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Ids in the query or body never count.
    assert_eq!(
        status(&app, "/users/2?id=1", Some("alice")).await,
        StatusCode::FORBIDDEN
    );

    let rule = Rule::async_predicate("not_mallory", |i: &PolicyInput<'_>| {
        let ok = i.ctx.subject() != "mallory";
        Box::pin(async move { Ok::<_, AuthError>(ok) })
    });
    let app = app_with(rule);
    assert_eq!(status(&app, "/r", Some("alice")).await, StatusCode::OK);
    assert_eq!(
        status(&app, "/r", Some("mallory")).await,
        StatusCode::FORBIDDEN
    );
}

fn routed() -> Router {
    let rules = RouteRules::new()
        .with_rule(Method::GET, "/admin", Rule::role("admin"))
        .with_rule(Method::GET, "/posts/{id}", Rule::authenticated())
        .with_rule(Method::DELETE, "/posts/{id}", Rule::role("admin"));
    Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route(
            "/posts/{id}",
            get(|| async { "post" })
                .delete(|| async { "gone" })
                .put(|| async { "put" }),
        )
        .route_layer(PolicyLayer::routes(rules))
        .layer(AuthLayer::optional(HeaderUser))
}

#[tokio::test]
async fn route_rules_resist_path_and_method_tricks() {
    let app = routed();
    assert_eq!(
        status(&app, "/admin", Some("root|admin")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "/admin", Some("eve")).await,
        StatusCode::FORBIDDEN
    );
    for path in [
        "/admin/",
        "//admin",
        "/%61dmin",
        "/ADMIN",
        "/admin%2F",
        "/./admin",
    ] {
        let s = status(&app, path, Some("eve")).await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{path}: {s}"
        );
        assert_ne!(s, StatusCode::OK, "{path}");
    }
    // Method override headers are ignored: a GET stays a GET, a POST with override is not a DELETE.
    let a = send(
        &app,
        req("/posts/1")
            .method("DELETE")
            .header("x-user", "eve")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &app,
        req("/posts/1")
            .header("x-user", "eve")
            .header("x-http-method-override", "DELETE")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "post");
    // HEAD follows GET.
    let a = send(
        &app,
        req("/admin")
            .method("HEAD")
            .header("x-user", "eve")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // A route without a rule for its method is denied by default.
    let a = send(
        &app,
        req("/posts/1")
            .method("PUT")
            .header("x-user", "root|admin")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn require_owner_helper() {
    let ctx = AuthContext::builder("alice", Scheme::Session).build();
    assert!(ctx.require_owner("alice", &[]).is_ok());
    let err = ctx.require_owner("bob", &["admin"]).unwrap_err();
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    let admin = AuthContext::builder("root", Scheme::Session)
        .with_roles(["admin"])
        .build();
    assert!(admin.require_owner("bob", &["admin"]).is_ok());
}

#[tokio::test]
async fn resolvers_that_wait_are_enforced_the_same() {
    // Each answer arrives only after the task has been parked, so the layer takes its
    // pending path (the boxed future) rather than the first-poll fast path.
    let owners = |id: String| async move {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        owner_of(&id)
    };
    let app = app_with(Rule::owner_via("id", owners));
    assert_eq!(
        status(&app, "/users/1", Some("alice")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "/users/1", Some("bob")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, "/users/down", Some("alice")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&app, "/users/1", None).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_policy_layer_without_an_auth_layer_in_front_is_a_logged_500() {
    let log = common::logs::Logs::default();
    let _guard = log.install(tracing::Level::ERROR);
    let handler = || get(|| async { "secret" });
    // Wrong order: the policy layer wraps the auth layer, so it runs first.
    let wrong: Router = Router::new()
        .route("/admin", handler())
        .layer(AuthLayer::required(HeaderUser))
        .layer(PolicyLayer::new(Rule::role("admin")));
    let call = |app: Router, user: Option<&'static str>| async move {
        let mut r = req("/admin");
        if let Some(u) = user {
            r = r.header("x-user", u);
        }
        send(&app, r.body(Body::empty()).unwrap()).await
    };
    for _ in 0..3 {
        let a = call(wrong.clone(), Some("root|admin")).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.json()["error"], "server_misconfigured");
    }
    let text = log.text();
    assert_eq!(text.matches("no AuthLayer in front").count(), 1, "{text}");
    // Right order; and anonymous through an optional layer is a 401, not a 500.
    let right: Router = Router::new()
        .route(
            "/admin",
            handler().route_layer(PolicyLayer::new(Rule::role("admin"))),
        )
        .layer(AuthLayer::optional(HeaderUser));
    assert_eq!(
        call(right.clone(), Some("root|admin")).await.status,
        StatusCode::OK
    );
    assert_eq!(call(right, None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_rule_written_relative_to_a_nested_router_is_reported_with_the_fix() {
    let log = common::logs::Logs::default();
    let _guard = log.install(tracing::Level::ERROR);
    let rules = RouteRules::new().with_rule(Method::GET, "/notes/{id}", Rule::authenticated());
    let inner: Router = Router::new()
        .route("/notes/{id}", get(|| async { "note" }))
        .route_layer(PolicyLayer::routes(rules));
    let app = Router::new()
        .nest("/app", inner)
        .layer(AuthLayer::required(HeaderUser));
    for _ in 0..2 {
        let r = req("/app/notes/7").header("x-user", "alice");
        assert_eq!(
            send(&app, r.body(Body::empty()).unwrap()).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let text = log.text();
    assert_eq!(text.matches("no rule for this route").count(), 1, "{text}");
    assert!(text.contains("/app/notes/{id}"), "{text}");
}
