//! Tenants with their own issuers, through the router, against realms served by the test
//! kit's key server: two tenants' tokens on one route, a third admitted at run time,
//! forged cross-tenant tokens refused, and a flood of invented issuers costing no fetch.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::AuthLayer;
use portcullis::jwt::{Algorithm, BearerAuth, JwtVerifier, Tenants, Validation};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use serde_json::{Value, json};

fn app(tenants: Tenants) -> Router {
    Probe::default()
        .router("/me")
        .layer(AuthLayer::required(BearerAuth::new(
            "api",
            JwtVerifier::for_tenants(tenants),
        )))
}

async fn call(app: &Router, token: &str) -> (StatusCode, Value) {
    let a = send(
        app,
        get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (a.status, a.json())
}

fn token(key: TestKey, iss: &str, claims: Value) -> String {
    let mut b = TokenBuilder::new(key)
        .with_claim("iss", iss)
        .with_claim("aud", "api")
        .with_claim("sub", "u1")
        .with_claim("exp", now() + 600);
    for (k, v) in claims.as_object().unwrap() {
        b = b.with_claim(k, v.clone());
    }
    b.sign()
}

#[tokio::test]
async fn tenants_resolve_from_an_allowlist_and_keep_their_own_keys() {
    let server = KeyServer::start(jwks(&[])).await;
    server.add_realm("acme", jwks(&[TestKey::Rs256]));
    server.add_realm("globex", jwks(&[TestKey::Rs256Next]));
    server.add_realm("initech", jwks(&[TestKey::Es256]));
    let iss = |t: &str| format!("{}/realms/{t}", server.base_url());
    let allowed = Arc::new(RwLock::new(HashSet::from([
        "acme".to_owned(),
        "globex".to_owned(),
    ])));
    let list = allowed.clone();
    let tenants = Tenants::new(
        &format!("{}/realms/{{tenant}}", server.base_url()),
        Validation::new([Algorithm::RS256, Algorithm::ES256]).with_audience("api"),
    )
    .unwrap()
    .with_allow_fn(move |t| list.read().unwrap().contains(t));
    let app = app(tenants.clone());

    // Two tenants on one route; the context's tenant is the issuer's, not a claim's.
    let (s, ctx) = call(
        &app,
        &token(TestKey::Rs256, &iss("acme"), json!({"tenant": "globex"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["tenant"], "acme");
    assert_eq!(ctx["issuer"], iss("acme"));
    let (s, ctx) = call(&app, &token(TestKey::Rs256Next, &iss("globex"), json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["tenant"], "globex");
    // acme's iss, globex's key: refused.
    let forged = token(TestKey::Rs256Next, &iss("acme"), json!({}));
    assert_eq!(call(&app, &forged).await.0, StatusCode::UNAUTHORIZED);
    // Fetched once each, then cached.
    for _ in 0..5 {
        assert_eq!(
            call(&app, &token(TestKey::Rs256, &iss("acme"), json!({})))
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        server.hits("/realms/acme/.well-known/openid-configuration"),
        1
    );
    assert_eq!(server.hits("/realms/acme/jwks.json"), 1);

    // A third tenant: refused (and never fetched) until admitted at run time.
    let initech = token(TestKey::Es256, &iss("initech"), json!({}));
    assert_eq!(call(&app, &initech).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.hits("/realms/initech/.well-known/openid-configuration"),
        0
    );
    allowed.write().unwrap().insert("initech".into());
    let (s, ctx) = call(&app, &initech).await;
    assert_eq!(s, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["tenant"], "initech");
    assert_eq!(tenants.len(), 3);
}

#[tokio::test]
async fn invented_issuers_cost_no_fetch_and_tenants_are_bounded() {
    let server = KeyServer::start(jwks(&[])).await;
    for t in ["t1", "t2", "t3"] {
        server.add_realm(t, jwks(&[TestKey::Rs256]));
    }
    let tenants = Tenants::new(
        &format!("{}/realms/{{tenant}}", server.base_url()),
        Validation::new([Algorithm::RS256]).with_audience("api"),
    )
    .unwrap()
    .with_allowed(["t1", "t2", "t3"])
    .with_max_tenants(2);
    let app = app(tenants.clone());
    let before = server.total_hits();
    for i in 0..10_000 {
        let iss = if i % 2 == 0 {
            format!("{}/realms/invented-{i}", server.base_url())
        } else {
            format!("https://evil-{i}.example.com/realms/t1")
        };
        // Signed or not, an issuer the rule does not admit is refused before any key.
        let unsigned = {
            use base64::Engine;
            let e =
                |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.c2ln",
                e(json!({"alg": "RS256", "kid": "rsa1"})),
                e(json!({"iss": iss, "aud": "api", "sub": "u", "exp": now() + 60}))
            )
        };
        let (s, _) = call(&app, &unsigned).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        server.total_hits(),
        before,
        "an invented issuer made the server fetch"
    );
    assert!(tenants.is_empty());
    for t in ["t1", "t2", "t3", "t1"] {
        let iss = format!("{}/realms/{t}", server.base_url());
        assert_eq!(
            call(&app, &token(TestKey::Rs256, &iss, json!({}))).await.0,
            StatusCode::OK,
            "{t}"
        );
        assert!(tenants.len() <= 2);
    }
}

/// The first requests of a tenant not yet cached, arriving together while its provider
/// is slow, cause one discovery and one key fetch between them (single flight), and all
/// get their answer from it.
#[tokio::test]
async fn a_new_tenants_first_requests_share_one_fetch() {
    let server = KeyServer::start(jwks(&[])).await;
    server.add_realm("umbrella", jwks(&[TestKey::Rs256]));
    server.set_delay(std::time::Duration::from_millis(300));
    let tenants = Tenants::new(
        &format!("{}/realms/{{tenant}}", server.base_url()),
        Validation::new([Algorithm::RS256]).with_audience("api"),
    )
    .unwrap()
    .with_allowed(["umbrella"]);
    let app = app(tenants);
    let iss = format!("{}/realms/umbrella", server.base_url());
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let app = app.clone();
        let t = token(TestKey::Rs256, &iss, json!({"sub": format!("u{i}")}));
        calls.spawn(async move { call(&app, &t).await.0 });
    }
    let mut ok = 0;
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
        ok += 1;
    }
    assert_eq!(ok, 20);
    assert_eq!(
        server.hits("/realms/umbrella/.well-known/openid-configuration"),
        1
    );
    assert_eq!(server.hits("/realms/umbrella/jwks.json"), 1);
}
