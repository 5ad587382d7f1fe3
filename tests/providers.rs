//! Identity-provider presets end to end: tokens shaped like each provider's documented
//! tokens, signed by keys served on 127.0.0.1 in that provider's JWKS format, through the
//! real router.

mod common;

use axum::Router;
use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::AuthLayer;
use portcullis::jwt::{
    Algorithm, BearerAuth, Issuer, JwksOptions, JwtVerifier, RemoteJwks, Validation,
};
use portcullis::providers::{
    Auth0, Cognito, Entra, EntraTokenVersion, GithubActions, Google, Keycloak, Okta, Provider,
};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, now};
use serde_json::{Value, json};

/// The test key's JWK as `provider` publishes its keys.
fn provider_jwks(provider: &str) -> Value {
    let mut sig = TestKey::Rs256.public_jwk();
    let m = sig.as_object_mut().unwrap();
    let cert =
        json!(["MIIDBTCCAe2gAwIBAgIQN33ROaIJ6bJBWDCxtmJEbjANBgkqhkiG9w0BAQsFADAtMSswKQYDVQQD"]);
    match provider {
        // Entra: no `alg`, certificate chain, its own extra members.
        "entra" => {
            m.remove("alg");
            m.insert("x5t".into(), "JYhAcTPMZ_LX6DBlOWQ7Hn0NeXE".into());
            m.insert("x5c".into(), cert);
            m.insert("cloud_instance_name".into(), "microsoftonline.com".into());
            m.insert(
                "issuer".into(),
                "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            );
        }
        // Keycloak: certificate members, and an encryption key beside the signing key.
        "keycloak" => {
            m.insert("x5c".into(), cert);
            m.insert("x5t".into(), "4mTsh6JrqRkJjJ-YZ3zrZBPqcR8".into());
            m.insert(
                "x5t#S256".into(),
                "m5m-jEaHybG3Hqvwb9AvCrFq2HPqpnA0H7gwb1H9o2Q".into(),
            );
            let mut enc = TestKey::Rs256Next.public_jwk();
            enc["use"] = json!("enc");
            enc["alg"] = json!("RSA-OAEP");
            enc["kid"] = json!("enc-1");
            return json!({ "keys": [sig, enc] });
        }
        "auth0" | "github" => {
            m.insert("x5c".into(), cert);
            m.insert("x5t".into(), "4mTsh6JrqRkJjJ-YZ3zrZBPqcR8".into());
        }
        _ => {}
    }
    json!({ "keys": [sig] })
}

struct Setup {
    _server: KeyServer,
    app: Router,
}

async fn setup(jwks_format: &str, validation: Validation, provider: impl Provider) -> Setup {
    let server = KeyServer::start(provider_jwks(jwks_format)).await;
    let jwks = RemoteJwks::new(
        &server.url("/jwks.json"),
        [Algorithm::RS256],
        JwksOptions::default(),
    )
    .unwrap();
    let verifier = JwtVerifier::new(Issuer::new(jwks, validation).with_provider(provider));
    let app = Probe::default()
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", verifier)));
    Setup {
        _server: server,
        app,
    }
}

fn rs256() -> Validation {
    Validation::new([Algorithm::RS256])
}

/// A token with `claims` (times filled in), signed by the served key.
fn sign(claims: Value) -> String {
    let mut b = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iat", now())
        .with_claim("exp", now() + 600);
    for (k, v) in claims.as_object().unwrap() {
        b = b.with_claim(k, v.clone());
    }
    b.sign()
}

async fn call(s: &Setup, token: &str) -> (StatusCode, Value) {
    let a = send(
        &s.app,
        get("/api/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (a.status, a.json())
}

#[tokio::test]
async fn keycloak() {
    let iss = "https://sso.example.com/realms/acme";
    let s = setup(
        "keycloak",
        rs256().with_issuer(iss).with_audience("orders-api"),
        Keycloak::new().with_client_roles("orders-api"),
    )
    .await;
    let claims = json!({
        "iss": iss, "aud": ["orders-api", "account"], "sub": "f3a8c1d2", "typ": "Bearer",
        "azp": "web", "realm_access": {"roles": ["staff"]},
        "resource_access": {"orders-api": {"roles": ["orders.admin"]}}, "scope": "openid email"
    });
    let (status, ctx) = call(&s, &sign(claims.clone())).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["roles"], json!(["staff", "orders.admin"]));
    let mut id = claims.clone();
    id["typ"] = json!("ID");
    assert_eq!(call(&s, &sign(id)).await.0, StatusCode::UNAUTHORIZED);
    let mut other_realm = claims;
    other_realm["iss"] = json!("https://sso.example.com/realms/other");
    assert_eq!(
        call(&s, &sign(other_realm)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn auth0() {
    let iss = "https://acme.eu.auth0.com/";
    let s = setup(
        "auth0",
        rs256()
            .with_issuer(iss)
            .with_audience("https://api.acme.test"),
        Auth0::new().with_roles_claim("https://example.com/roles"),
    )
    .await;
    let access = json!({
        "iss": iss, "sub": "auth0|64f1c2", "aud": ["https://api.acme.test", format!("{iss}userinfo")],
        "azp": "Xk2cD3", "scope": "openid read:orders", "permissions": ["write:orders"],
        "https://example.com/roles": ["manager"], "org_id": "org_9aZ"
    });
    let (status, ctx) = call(&s, &sign(access)).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(
        ctx["scopes"],
        json!(["openid", "read:orders", "write:orders"])
    );
    assert_eq!(ctx["tenant"], "org_9aZ");
    // The ID token of the same login: audience is the application's client id.
    let id = json!({"iss": iss, "sub": "auth0|64f1c2", "aud": "Xk2cD3", "nonce": "n", "email": "a@acme.test"});
    assert_eq!(call(&s, &sign(id)).await.0, StatusCode::UNAUTHORIZED);
    let other_tenant = json!({"iss": "https://evil.eu.auth0.com/", "sub": "auth0|1", "aud": "https://api.acme.test"});
    assert_eq!(
        call(&s, &sign(other_tenant)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn entra() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let other = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let s = setup(
        "entra",
        rs256().with_audience("api://orders"),
        Entra::new([tenant]).unwrap(),
    )
    .await;
    let v2 = |tid: &str| {
        json!({
            "aud": "api://orders", "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "azp": "6e74172b", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "scp": "Orders.Read",
            "roles": ["Orders.Approver"], "sub": "HKZpfaHyWadeOouYlitjrI", "tid": tid, "ver": "2.0"
        })
    };
    let (status, ctx) = call(&s, &sign(v2(tenant))).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "690222be-ff1a-4d56-abd1-7e4f7d38e474");
    assert_eq!(ctx["tenant"], tenant);
    assert_eq!(call(&s, &sign(v2(other))).await.0, StatusCode::UNAUTHORIZED);
    // Another tenant's token claiming our tenant's issuer.
    let mut forged = v2(other);
    forged["iss"] = json!(format!("https://login.microsoftonline.com/{tenant}/v2.0"));
    assert_eq!(call(&s, &sign(forged)).await.0, StatusCode::UNAUTHORIZED);
    let mut v1 = v2(tenant);
    v1["ver"] = json!("1.0");
    v1["iss"] = json!(format!("https://sts.windows.net/{tenant}/"));
    assert_eq!(
        call(&s, &sign(v1.clone())).await.0,
        StatusCode::UNAUTHORIZED
    );

    let s1 = setup(
        "entra",
        rs256().with_audience("api://orders"),
        Entra::new([tenant])
            .unwrap()
            .with_token_version(EntraTokenVersion::V1),
    )
    .await;
    assert_eq!(call(&s1, &sign(v1)).await.0, StatusCode::OK);
    assert_eq!(
        call(&s1, &sign(v2(tenant))).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn cognito() {
    let iss = Cognito::issuer_url("us-east-1", "us-east-1_example");
    let client = "1example23456789";
    let s = setup(
        "cognito",
        rs256().with_issuer(&iss).with_audience(client),
        Cognito::access_tokens(),
    )
    .await;
    let access = json!({
        "sub": "aaaaaaaa-bbbb", "cognito:groups": ["admin"], "iss": iss, "version": 2,
        "client_id": client, "token_use": "access", "scope": "openid orders/read",
        "auth_time": now(), "jti": "j1", "username": "my-test-user"
    });
    let (status, ctx) = call(&s, &sign(access.clone())).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["roles"], json!(["admin"]));
    // The ID token of the same login (`aud`, `token_use: id`) where an access token is due.
    let id = json!({
        "sub": "aaaaaaaa-bbbb", "iss": iss, "aud": client, "token_use": "id",
        "cognito:username": "my-test-user", "email": "u@example.com", "email_verified": true
    });
    assert_eq!(
        call(&s, &sign(id.clone())).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut wrong_use = access.clone();
    wrong_use["token_use"] = json!("id");
    assert_eq!(call(&s, &sign(wrong_use)).await.0, StatusCode::UNAUTHORIZED);
    let mut other_client = access.clone();
    other_client["client_id"] = json!("7otherclient");
    assert_eq!(
        call(&s, &sign(other_client)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut other_pool = access;
    other_pool["iss"] = json!(Cognito::issuer_url("us-east-1", "us-east-1_other"));
    assert_eq!(
        call(&s, &sign(other_pool)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let ids = setup(
        "cognito",
        rs256().with_issuer(&iss).with_audience(client),
        Cognito::id_tokens(),
    )
    .await;
    let (status, ctx) = call(&ids, &sign(id)).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["email"], "u@example.com");
}

#[tokio::test]
async fn okta() {
    let iss = "https://example.okta.com/oauth2/default";
    let s = setup(
        "okta",
        rs256().with_issuer(iss).with_audience("api://default"),
        Okta::new(),
    )
    .await;
    let access = json!({
        "ver": 1, "jti": "AT.0mP4", "iss": iss, "aud": "api://default", "cid": "0oaoesxt",
        "uid": "00uoefsx", "scp": ["openid", "orders:read"], "sub": "alice@example.com",
        "groups": ["Ops"]
    });
    let (status, ctx) = call(&s, &sign(access)).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["roles"], json!(["Ops"]));
    let id = json!({"ver": 1, "iss": iss, "aud": "api://default", "sub": "00uoefsx", "amr": ["pwd"], "nonce": "n"});
    assert_eq!(call(&s, &sign(id)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn google() {
    let client = "1234987819200.apps.googleusercontent.com";
    let s = setup(
        "google",
        rs256().with_audience(client),
        Google::new().with_hosted_domain("example.com"),
    )
    .await;
    let id = |iss: &str, hd: &str| {
        json!({
            "iss": iss, "azp": client, "aud": client, "sub": "10769150350006150715113082367",
            "email": "jsmith@example.com", "email_verified": true, "hd": hd
        })
    };
    for iss in ["https://accounts.google.com", "accounts.google.com"] {
        let (status, ctx) = call(&s, &sign(id(iss, "example.com"))).await;
        assert_eq!(status, StatusCode::OK, "{ctx}");
        assert_eq!(ctx["tenant"], "example.com");
    }
    assert_eq!(
        call(
            &s,
            &sign(id("https://accounts.google.com", "other.example"))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, &sign(id("https://accounts.google.evil", "example.com")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn github_actions() {
    let s = setup(
        "github",
        rs256().with_audience("https://deploy.acme.test"),
        GithubActions::new("octo-org").with_repository("octo-org/octo-repo"),
    )
    .await;
    let token = |repo: &str, owner: &str| {
        json!({
            "iss": GithubActions::ISSUER, "aud": "https://deploy.acme.test",
            "sub": format!("repo:{repo}:ref:refs/heads/main"), "repository": repo,
            "repository_owner": owner, "ref": "refs/heads/main", "jti": "j",
            "job_workflow_ref": format!("{repo}/.github/workflows/deploy.yml@refs/heads/main")
        })
    };
    let (status, ctx) = call(&s, &sign(token("octo-org/octo-repo", "octo-org"))).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["principal"], "service");
    for (repo, owner) in [
        ("octo-org/other", "octo-org"),
        ("mallory/octo-repo", "mallory"),
        ("mallory/octo-repo", "octo-org"),
    ] {
        assert_eq!(
            call(&s, &sign(token(repo, owner))).await.0,
            StatusCode::UNAUTHORIZED,
            "{repo} {owner}"
        );
    }
}

#[tokio::test]
async fn rfc9068_access_tokens() {
    let server = KeyServer::start(provider_jwks("okta")).await;
    let jwks = RemoteJwks::new(
        &server.url("/jwks.json"),
        [Algorithm::RS256],
        JwksOptions::default(),
    )
    .unwrap();
    let validation = rs256()
        .with_issuer("https://as.example")
        .with_audience("https://rs.example")
        .with_required_typ("at+jwt");
    let verifier = JwtVerifier::new(Issuer::new(jwks, validation));
    let s = Setup {
        _server: server,
        app: Probe::default()
            .router("/api/me")
            .layer(AuthLayer::required(BearerAuth::new("api", verifier))),
    };
    let claims = json!({"iss": "https://as.example", "aud": "https://rs.example", "sub": "s6BhdRkqt3", "client_id": "s6BhdRkqt3", "jti": "j", "scope": "read"});
    let at = |typ: Option<&str>| {
        let mut b = TokenBuilder::new(TestKey::Rs256)
            .with_claim("iat", now())
            .with_claim("exp", now() + 600);
        for (k, v) in claims.as_object().unwrap() {
            b = b.with_claim(k, v.clone());
        }
        match typ {
            Some(t) => b.with_header("typ", t).sign(),
            None => b.without_header("typ").sign(),
        }
    };
    let (status, ctx) = call(&s, &at(Some("at+jwt"))).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["principal"], "service");
    assert_eq!(
        call(&s, &at(Some("application/at+jwt"))).await.0,
        StatusCode::OK
    );
    assert_eq!(call(&s, &at(Some("JWT"))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&s, &at(None)).await.0, StatusCode::UNAUTHORIZED);
}
