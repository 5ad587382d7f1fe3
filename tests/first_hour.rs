//! What a new user hits in the first hour: wiring mistakes that answer loudly, owner
//! rules that compare the attribute you choose, and typed claims, through real routers
//! (Cloudflare Access and Google IAP keys on a loopback key server).

mod common;

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use common::logs::Logs;
use common::{basic, get as req, send};
use http::StatusCode;
use portcullis::basic::BasicAuth;
use portcullis::iap::IdentityProxy;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, Validation};
use portcullis::policy::{OwnerKey, PolicyLayer, Rule};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager, Sessions};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthContext, AuthError, AuthLayer, Claims, User};
use serde_json::{Value, json};

fn admin() -> BasicAuth {
    BasicAuth::new("r").with_user("admin", User::plain("pw"))
}

async fn me(ctx: AuthContext) -> String {
    ctx.subject().to_owned()
}

async fn status(app: &Router, req: http::Request<Body>) -> StatusCode {
    send(app, req).await.status
}

/// `AuthContext` (or `Option<AuthContext>`) on a route no `AuthLayer` covers is a 500
/// with an ERROR log naming the fix; under an optional layer, no credential is a 401.
#[tokio::test]
async fn a_missing_auth_layer_is_a_500_that_says_what_to_add() {
    let logs = Logs::default();
    let _guard = logs.install(tracing::Level::ERROR);
    // The route is added after the layer: the layer does not cover it.
    let app = Router::new()
        .route("/covered", get(me))
        .layer(AuthLayer::optional(admin()))
        .route("/uncovered", get(me))
        .route(
            "/uncovered-optional",
            get(|ctx: Option<AuthContext>| async move { format!("{}", ctx.is_some()) }),
        );
    let a = send(&app, req("/uncovered").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["error"], "server_misconfigured");
    let text = logs.text();
    assert!(
        text.contains("ERROR") && text.contains("AuthLayer"),
        "{text}"
    );
    assert!(
        text.contains(".layer(AuthLayer::required"),
        "the log names the fix: {text}"
    );
    assert_eq!(
        status(
            &app,
            req("/uncovered-optional").body(Body::empty()).unwrap()
        )
        .await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // Under an optional layer, no credential is a plain 401 for `AuthContext`.
    assert_eq!(
        status(&app, req("/covered").body(Body::empty()).unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(
            &app,
            req("/covered")
                .header("authorization", basic("admin", "pw"))
                .body(Body::empty())
                .unwrap()
        )
        .await,
        StatusCode::OK
    );
}

/// The other wiring mistakes of README's table, each with what it gives.
#[tokio::test]
async fn wiring_mistakes_answer_as_documented() {
    // A policy layer outside the auth layer (it runs first, finds no layer): 500.
    let app = Router::new()
        .route("/admin", get(me))
        .layer(AuthLayer::required(admin()))
        .layer(PolicyLayer::new(Rule::role("admin")));
    let a = send(
        &app,
        req("/admin")
            .header("authorization", basic("admin", "pw"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);

    // `Sessions` without `Extension(SessionManager)`: 500.
    let app = Router::new().route(
        "/logout",
        post(|s: Sessions| async move { s.logout().await.map(|c| (c, "bye")) }),
    );
    assert_eq!(
        status(
            &app,
            req("/logout").method("POST").body(Body::empty()).unwrap()
        )
        .await,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // Two auth layers around one route: both must pass, so a credential for the outer
    // scheme alone gets the inner one's 401. `AuthLayer::or` is "any of these".
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let bearer = || {
        BearerAuth::new(
            "api",
            JwtVerifier::new(Issuer::new(
                TestKey::Rs256.key_set(),
                Validation::new([Algorithm::RS256]).with_audience("api"),
            )),
        )
    };
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", "api")
        .with_claim("sub", "alice")
        .sign();
    let stacked = Router::new()
        .route("/me", get(me))
        .layer(AuthLayer::required(bearer()))
        .layer(AuthLayer::required(admin()));
    let either = Router::new()
        .route("/me", get(me))
        .layer(AuthLayer::required(admin()).or(bearer()));
    for (name, app, want) in [
        ("stacked", &stacked, StatusCode::UNAUTHORIZED),
        ("or", &either, StatusCode::OK),
    ] {
        let got = status(
            app,
            req("/me")
                .header("authorization", basic("admin", "pw"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(
        status(
            &either,
            req("/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap()
        )
        .await,
        StatusCode::OK
    );
    drop(server);
}

const CF_TEAM: &str = "acme";
const CF_AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

fn cf_token(sub: &str, email: &str) -> String {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", format!("https://{CF_TEAM}.cloudflareaccess.com"))
        .with_claim("aud", json!([CF_AUD]))
        .with_claim("sub", sub)
        .with_claim("email", email)
        .with_claim("type", "app")
        .with_claim("exp", now() + 600)
        .sign()
}

/// Behind Cloudflare Access the subject is a UUID: documents owned by an e-mail address
/// need an owner rule that compares the e-mail, and then bob may change his.
#[tokio::test]
async fn owner_by_email_behind_cloudflare_access() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let cf = IdentityProxy::cloudflare_access(CF_TEAM, CF_AUD)
        .unwrap()
        .with_keys_url(&server.url("/cdn-cgi/access/certs"))
        .unwrap();
    let owner_of = |id: String| async move {
        Ok::<_, AuthError>((id == "doc-1").then(|| "bob@example.com".to_owned()))
    };
    let app = |rule: Rule| {
        Router::new()
            .route("/docs/{id}", axum::routing::put(|| async { "saved" }))
            .route_layer(PolicyLayer::new(rule))
            .layer(AuthLayer::required(cf.clone()))
    };
    let by_subject = app(Rule::owner_via("id", owner_of));
    let by_email = app(Rule::owner_via_as("id", OwnerKey::email(), owner_of));
    let put = |token: String| {
        req("/docs/doc-1")
            .method("PUT")
            .header("cf-access-jwt-assertion", token)
            .body(Body::empty())
            .unwrap()
    };
    let bob = cf_token("7335d417-61da-459d-899c-0a01c76a2f94", "bob@example.com");
    let eve = cf_token("0c4b8f1e-0000-4000-8000-000000000001", "eve@example.com");
    assert_eq!(
        status(&by_subject, put(bob.clone())).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(&by_email, put(bob)).await, StatusCode::OK);
    assert_eq!(status(&by_email, put(eve)).await, StatusCode::FORBIDDEN);
}

/// An OIDC-style session (subject `<issuer>#<sub>`, e-mail verified by the provider):
/// the owner rule on the path compares the e-mail or a session value.
#[tokio::test]
async fn owner_by_email_or_claim_with_a_session() {
    let manager = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default().with_insecure_dev_cookie(),
    );
    // One policy per router: `route_layer` wraps every route added before it.
    let by_email = Router::new()
        .route("/users/{email}/settings", get(|| async { "settings" }))
        .route_layer(PolicyLayer::new(Rule::owner_of_path_as(
            "email",
            OwnerKey::email(),
        )));
    let by_handle = Router::new()
        .route("/handles/{handle}", get(|| async { "profile" }))
        .route_layer(PolicyLayer::new(Rule::owner_of_path_as(
            "handle",
            OwnerKey::claim("handle"),
        )));
    let app = by_email
        .merge(by_handle)
        .layer(AuthLayer::required(manager.authenticator()))
        .route(
            "/login",
            post(|s: Sessions| async move {
                s.login(
                    NewSession::new("https://sso.example.com#1001")
                        .with_email("carol@example.com")
                        .with_data("handle", "carol"),
                )
                .await
            }),
        )
        .layer(Extension(manager));
    let login = send(
        &app,
        req("/login").method("POST").body(Body::empty()).unwrap(),
    )
    .await;
    let cookie = login.cookie_pair();
    let get = |path: &str| {
        req(path)
            .header("cookie", cookie.clone())
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        status(&app, get("/users/carol@example.com/settings")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get("/users/dave@example.com/settings")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(&app, get("/handles/carol")).await, StatusCode::OK);
    assert_eq!(
        status(&app, get("/handles/dave")).await,
        StatusCode::FORBIDDEN
    );
}

#[derive(Clone, serde::Deserialize)]
struct Org {
    org_id: String,
    #[serde(default)]
    plan: Option<String>,
}

async fn org(Claims(org): Claims<Org>, again: Claims<Org>) -> Json<Value> {
    assert_eq!(org.org_id, again.0.org_id);
    Json(json!({"org": org.org_id, "plan": org.plan}))
}

/// `Claims<T>` for a bearer token, an identity proxy's assertion and a session: 200
/// with the claims, 401 without a credential, 403 when they do not deserialize.
#[tokio::test]
async fn typed_claims_for_bearer_identity_proxy_and_session() {
    // Bearer.
    let bearer = Router::new()
        .route("/org", get(org))
        .layer(AuthLayer::required(BearerAuth::new(
            "api",
            JwtVerifier::new(Issuer::new(
                TestKey::Rs256.key_set(),
                Validation::new([Algorithm::RS256]).with_audience("api"),
            )),
        )));
    let token = |claims: Value| {
        let mut b = TokenBuilder::new(TestKey::Rs256)
            .with_claim("aud", "api")
            .with_claim("sub", "alice");
        for (k, v) in claims.as_object().unwrap() {
            b = b.with_claim(k, v.clone());
        }
        format!("Bearer {}", b.sign())
    };
    let call = |app: &Router, header: (&'static str, String)| {
        let app = app.clone();
        async move {
            send(
                &app,
                req("/org")
                    .header(header.0, header.1)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let a = call(
        &bearer,
        (
            "authorization",
            token(json!({"org_id": "o-1", "plan": "pro"})),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json(), json!({"org": "o-1", "plan": "pro"}));
    let wrong = call(&bearer, ("authorization", token(json!({"org_id": 7})))).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        !wrong.body.contains("org_id"),
        "no serde error text: {}",
        wrong.body
    );
    let none = send(&bearer, req("/org").body(Body::empty()).unwrap()).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);

    // Google IAP.
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let aud = "/projects/123456789/global/backendServices/987654321";
    let iap = IdentityProxy::google_iap(aud)
        .unwrap()
        .with_keys_url(&server.url("/jwks.json"))
        .unwrap();
    let iap_app = Router::new()
        .route("/org", get(org))
        .layer(AuthLayer::required(iap));
    let assertion = TokenBuilder::new(TestKey::Es256)
        .with_claim("iss", "https://cloud.google.com/iap")
        .with_claim("aud", aud)
        .with_claim("sub", "accounts.google.com:1")
        .with_claim("email", "alice@example.com")
        .with_claim("org_id", "o-2")
        .with_claim("iat", now())
        .with_claim("exp", now() + 600)
        .sign();
    let a = call(&iap_app, ("x-goog-iap-jwt-assertion", assertion)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["org"], "o-2");

    // A session: the claims are what the login stored.
    let manager = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default().with_insecure_dev_cookie(),
    );
    let session_app = Router::new()
        .route("/org", get(org))
        .layer(AuthLayer::required(manager.authenticator()))
        .route(
            "/login/{org}",
            post(
                |s: Sessions, axum::extract::Path(org): axum::extract::Path<String>| async move {
                    s.login(NewSession::new("alice").with_data("org_id", org))
                        .await
                },
            ),
        )
        .layer(Extension(manager));
    let cookie = send(
        &session_app,
        req("/login/o-3")
            .method("POST")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .cookie_pair();
    let a = call(&session_app, ("cookie", cookie)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json(), json!({"org": "o-3", "plan": null}));
}
