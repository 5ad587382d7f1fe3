//! Google IAP, AWS ALB and Pomerium through the real router, with keys served on
//! 127.0.0.1 the way each proxy serves them.

mod common;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::AuthLayer;
use portcullis::iap::IdentityProxy;
use portcullis::jwt::Algorithm;
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use serde_json::{Value, json};

const IAP_AUD: &str = "/projects/123456789/global/backendServices/987654321";
const ALB_ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";

fn app(proxy: IdentityProxy) -> Router {
    Probe::default()
        .router("/me")
        .layer(AuthLayer::required(proxy))
}

async fn call(app: &Router, header: &str, token: &str) -> (StatusCode, Value) {
    let a = send(
        app,
        get("/me")
            .header(header, token)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (a.status, a.json())
}

fn es256() -> TokenBuilder {
    TokenBuilder::new(TestKey::Es256)
        .with_claim("iat", now())
        .with_claim("exp", now() + 600)
}

#[tokio::test]
async fn google_iap() {
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let iap = IdentityProxy::google_iap(IAP_AUD)
        .unwrap()
        .with_keys_url(&server.url("/jwks.json"))
        .unwrap();
    let app = app(iap);
    let h = "x-goog-iap-jwt-assertion";
    let token = |aud: &str, iss: &str| {
        es256()
            .with_claim("aud", aud)
            .with_claim("iss", iss)
            .with_claim("sub", "accounts.google.com:118234567890123456789")
            .with_claim("email", "alice@example.com")
            .with_claim("hd", "example.com")
            .with_claim(
                "google",
                json!({"access_levels": ["accessPolicies/1/accessLevels/corp"]}),
            )
            .sign()
    };
    let (status, ctx) = call(&app, h, &token(IAP_AUD, "https://cloud.google.com/iap")).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["scheme"], "identity_proxy");
    assert_eq!(ctx["email"], "alice@example.com");
    assert_eq!(ctx["tenant"], "example.com");
    let other_backend = "/projects/123456789/global/backendServices/111";
    for bad in [
        token(other_backend, "https://cloud.google.com/iap"),
        token(IAP_AUD, "https://accounts.google.com"),
        // Right claims, wrong algorithm.
        TokenBuilder::new(TestKey::Rs256)
            .with_claim("aud", IAP_AUD)
            .with_claim("iss", "https://cloud.google.com/iap")
            .with_claim("sub", "x")
            .with_claim("exp", now() + 60)
            .sign(),
    ] {
        assert_eq!(call(&app, h, &bad).await.0, StatusCode::UNAUTHORIZED);
    }
    // The identity headers alone are never trusted.
    assert_eq!(
        call(
            &app,
            "x-goog-authenticated-user-email",
            "accounts.google.com:alice@example.com"
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // A cross-site unsafe request carrying the header is refused.
    let cross = send(
        &app,
        get("/me")
            .method("POST")
            .header(h, token(IAP_AUD, "https://cloud.google.com/iap"))
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pomerium() {
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let route = "app.corp.example";
    let p = IdentityProxy::pomerium(route)
        .unwrap()
        .with_keys_url(&server.url("/jwks.json"))
        .unwrap();
    let app = app(p);
    let h = "x-pomerium-jwt-assertion";
    let token = |aud: &str| {
        es256()
            .with_claim("iss", route)
            .with_claim("aud", aud)
            .with_claim("sub", "user-1")
            .with_claim("user", "user-1")
            .with_claim("email", "bob@corp.example")
            .with_claim("groups", json!(["admins", "staff"]))
            .with_claim("jti", "j1")
            .sign()
    };
    let (status, ctx) = call(&app, h, &token(route)).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["roles"], json!(["admins", "staff"]));
    assert_eq!(
        call(&app, h, &token("other.corp.example")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A token the way the ALB writes it: its header fields, padded base64url segments.
fn alb_token(header: Value, claims: Value, padded: bool) -> String {
    let enc = |b: &[u8]| {
        if padded {
            URL_SAFE.encode(b)
        } else {
            URL_SAFE_NO_PAD.encode(b)
        }
    };
    let message = format!(
        "{}.{}",
        enc(header.to_string().as_bytes()),
        enc(claims.to_string().as_bytes())
    );
    let sig = TestKey::Es256
        .sign_message(message.as_bytes(), Algorithm::ES256)
        .unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    format!("{message}.{}", enc(&sig))
}

fn alb_header(signer: &str, kid: &str) -> Value {
    json!({
        "typ": "JWT", "kid": kid, "alg": "ES256", "iss": "https://idp.example.com",
        "client": "alb-client", "signer": signer, "exp": now() + 120
    })
}

fn alb_claims() -> Value {
    json!({
        "sub": "9d5b7c0e", "email_verified": "true", "email": "carol@example.com",
        "exp": now() + 120, "iss": "https://idp.example.com"
    })
}

#[tokio::test]
async fn aws_alb() {
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let alb = IdentityProxy::aws_alb("eu-west-1", ALB_ARN)
        .unwrap()
        .with_keys_url(&server.url("/alb-keys"))
        .unwrap()
        .with_issuer("https://idp.example.com")
        .unwrap();
    let app = app(alb);
    let h = "x-amzn-oidc-data";
    let kid = TestKey::Es256.kid();
    // Pick claims whose base64 needs padding, as the ALB's often do.
    let mut claims = alb_claims();
    let mut n = 0;
    while claims.to_string().len().is_multiple_of(3) {
        n += 1;
        claims["pad"] = json!("x".repeat(n));
    }
    let padded = alb_token(alb_header(ALB_ARN, kid), claims.clone(), true);
    assert!(padded.contains('='));
    let (status, ctx) = call(&app, h, &padded).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "9d5b7c0e");
    assert_eq!(ctx["email"], "carol@example.com");
    assert_eq!(
        call(
            &app,
            h,
            &alb_token(alb_header(ALB_ARN, kid), claims.clone(), false)
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        server.hits(&format!("/alb-keys/{kid}")),
        1,
        "one fetch per kid"
    );

    // Another load balancer of the same region: same key endpoint, other signer.
    let other = ALB_ARN.replace("app/web/", "app/evil/");
    assert_eq!(
        call(
            &app,
            h,
            &alb_token(alb_header(&other, kid), claims.clone(), true)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Other issuer in the claims.
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example.com");
    assert_eq!(
        call(
            &app,
            h,
            &alb_token(alb_header(ALB_ARN, kid), wrong_iss, true)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Expired.
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 300);
    assert_eq!(
        call(&app, h, &alb_token(alb_header(ALB_ARN, kid), expired, true))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Tampered claims.
    let good = alb_token(alb_header(ALB_ARN, kid), claims.clone(), false);
    let mut forged = claims.clone();
    forged["sub"] = json!("admin");
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    assert_eq!(call(&app, h, &tampered).await.0, StatusCode::UNAUTHORIZED);
    // A kid that would walk the key URL is refused before any fetch.
    let before = server.total_hits();
    for evil_kid in ["../jwks.json", "a/b", "x?y", ""] {
        assert_eq!(
            call(
                &app,
                h,
                &alb_token(alb_header(ALB_ARN, evil_kid), claims.clone(), true)
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED,
            "{evil_kid}"
        );
    }
    assert_eq!(server.total_hits(), before);
    // Another algorithm in the header.
    let mut hs = alb_header(ALB_ARN, kid);
    hs["alg"] = json!("HS256");
    assert_eq!(
        call(&app, h, &alb_token(hs, claims.clone(), true)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // An unknown kid: one fetch (once the fetch interval since the last one passed),
    // refused; refused again without a fetch.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(
        call(
            &app,
            h,
            &alb_token(alb_header(ALB_ARN, "unknown-kid"), claims.clone(), true)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.hits("/alb-keys/unknown-kid"), 1);
    // Garbage.
    for junk in ["", "a.b", "a.b.c.d", "!!!.???.***", &"A".repeat(9000)] {
        assert!(call(&app, h, junk).await.0.is_client_error(), "{junk:.20}");
    }
}

#[tokio::test]
async fn alb_key_endpoint_down_fails_closed() {
    let alb = IdentityProxy::aws_alb("eu-west-1", ALB_ARN)
        .unwrap()
        .with_keys_url("http://127.0.0.1:9/alb-keys")
        .unwrap();
    assert!(alb.ready().await);
    let app = app(alb.clone());
    let token = alb_token(
        alb_header(ALB_ARN, TestKey::Es256.kid()),
        alb_claims(),
        true,
    );
    assert_eq!(
        call(&app, "x-amzn-oidc-data", &token).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(!alb.ready().await);
}

#[test]
fn configuration_mistakes_are_errors() {
    // Each mistake is refused for its own reason, which the message names.
    let says = |r: Result<IdentityProxy, portcullis::ConfigError>, what: &str| {
        let e = r.unwrap_err();
        assert!(e.message().contains(what), "{e} should mention {what:?}");
    };
    says(
        IdentityProxy::google_iap("123456789"),
        "IAP audience must be",
    );
    says(
        IdentityProxy::google_iap("/projects/abc/global/backendServices/1"),
        "IAP audience must be",
    );
    assert!(IdentityProxy::google_iap("/projects/1/apps/my-project").is_ok());
    // An ARN of another region.
    says(
        IdentityProxy::aws_alb("us-east-1", ALB_ARN),
        "load balancer's ARN",
    );
    says(
        IdentityProxy::aws_alb("eu-west-1", "my-alb"),
        "load balancer's ARN",
    );
    says(
        IdentityProxy::pomerium("https://app.example.com"),
        "host name",
    );
    says(IdentityProxy::pomerium(""), "host name");
    let iap = IdentityProxy::google_iap(IAP_AUD).unwrap();
    says(iap.clone().with_issuer("https://x"), "AWS ALB only");
    says(iap.with_keys_url("http://keys.example.com/jwks"), "https");
}

/// An ALB assertion revoked by hash (it has no `jti`) stays revoked when its signature is
/// respelled: the other valid ECDSA signature, padded or not.
#[tokio::test]
async fn aws_alb_revocations_survive_respelled_signatures() {
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let revocations = portcullis::revocation::Revocations::memory();
    let alb = IdentityProxy::aws_alb("eu-west-1", ALB_ARN)
        .unwrap()
        .with_keys_url(&server.url("/alb-keys"))
        .unwrap()
        .with_issuer("https://idp.example.com")
        .unwrap()
        .with_revocations(revocations.clone());
    let app = app(alb);
    let h = "x-amzn-oidc-data";
    let mut claims = alb_claims();
    // A signature segment whose base64 takes padding either way.
    claims["pad"] = json!("x");
    let token = alb_token(alb_header(ALB_ARN, TestKey::Es256.kid()), claims, false);
    let variants = [
        common::other_ecdsa_signature(&token, false),
        common::other_ecdsa_signature(&token, true),
        format!("{token}=="),
    ];
    // Every spelling is valid: the attack needs no key.
    for t in std::iter::once(&token).chain(&variants) {
        assert_eq!(call(&app, h, t).await.0, StatusCode::OK, "{t}");
    }
    let ctx = portcullis::AuthContext::builder("9d5b7c0e", portcullis::Scheme::IdentityProxy)
        .with_issuer("https://idp.example.com")
        .build();
    revocations.revoke_context(&ctx, &token).await.unwrap();
    assert_eq!(call(&app, h, &token).await.0, StatusCode::UNAUTHORIZED);
    for v in &variants {
        assert_eq!(call(&app, h, v).await.0, StatusCode::UNAUTHORIZED, "{v}");
    }
}

/// Google IAP and Pomerium assertions revoked by hash stay revoked under their other
/// valid ECDSA signature (`(r, n - s)`), whether or not they carry a `jti`.
#[tokio::test]
async fn es256_proxy_revocations_survive_the_other_signature() {
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let route = "app.corp.example";
    let cases = [
        (
            IdentityProxy::google_iap(IAP_AUD).unwrap(),
            "x-goog-iap-jwt-assertion",
            es256()
                .with_claim("aud", IAP_AUD)
                .with_claim("iss", "https://cloud.google.com/iap")
                .with_claim("sub", "accounts.google.com:118234567890123456789")
                .with_claim("email", "alice@example.com"),
            None,
        ),
        (
            IdentityProxy::pomerium(route).unwrap(),
            "x-pomerium-jwt-assertion",
            es256()
                .with_claim("iss", route)
                .with_claim("aud", route)
                .with_claim("sub", "user-1")
                .with_claim("email", "bob@corp.example"),
            None,
        ),
        (
            IdentityProxy::pomerium(route).unwrap(),
            "x-pomerium-jwt-assertion",
            es256()
                .with_claim("iss", route)
                .with_claim("aud", route)
                .with_claim("sub", "user-2")
                .with_claim("jti", "j2"),
            Some("j2"),
        ),
    ];
    for (proxy, h, claims, jti) in cases {
        let revocations = portcullis::revocation::Revocations::memory();
        let app = app(proxy
            .with_keys_url(&server.url("/jwks.json"))
            .unwrap()
            .with_revocations(revocations.clone()));
        let token = claims.sign();
        let twin = common::other_ecdsa_signature(&token, false);
        assert_ne!(twin, token);
        // Both spellings are valid: the attack needs no key.
        let (status, ctx) = call(&app, h, &token).await;
        assert_eq!(status, StatusCode::OK, "{h}: {ctx}");
        assert_eq!(call(&app, h, &twin).await.0, StatusCode::OK, "{h}");
        let mut context = portcullis::AuthContext::builder(
            ctx["subject"].as_str().unwrap(),
            portcullis::Scheme::IdentityProxy,
        )
        .with_issuer(ctx["issuer"].as_str().unwrap());
        if let Some(jti) = jti {
            context = context.with_token_id(jti);
        }
        revocations
            .revoke_context(&context.build(), &token)
            .await
            .unwrap();
        for (name, t) in [("original", &token), ("n - s twin", &twin)] {
            assert_eq!(
                call(&app, h, t).await.0,
                StatusCode::UNAUTHORIZED,
                "{h} {name} {ctx}"
            );
        }
    }
}

/// One failed fetch does not leave the ALB proxy not-ready: the next answer from the
/// key endpoint (an "unknown kid" included) shows it reachable again.
#[tokio::test]
async fn alb_readiness_follows_the_key_endpoints_answers() {
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let alb = IdentityProxy::aws_alb("eu-west-1", ALB_ARN)
        .unwrap()
        .with_keys_url(&server.url("/alb-keys"))
        .unwrap();
    let app = app(alb.clone());
    let h = "x-amzn-oidc-data";
    let made_up = |kid: &str| alb_token(alb_header(ALB_ARN, kid), alb_claims(), true);
    let real = made_up(TestKey::Es256.kid());
    server.set_status(http::StatusCode::BAD_GATEWAY);
    assert_eq!(
        call(&app, h, &real).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(!alb.ready().await, "a failing key endpoint is not ready");
    server.set_status(http::StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(
        call(&app, h, &made_up("made-up-1")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(alb.ready().await, "the endpoint answered again");
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(call(&app, h, &real).await.0, StatusCode::OK);
    assert!(alb.ready().await);
}

/// A flood of invented kids (about 300 requests a second) does not hold back the key
/// the load balancer rotates to: it is learnt within a second of real tokens naming it,
/// and the endpoint is asked at most five times a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_rotation_is_learnt_under_a_flood_of_invented_kids() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let server = KeyServer::start(jwks(&[])).await;
    let alb = IdentityProxy::aws_alb("eu-west-1", ALB_ARN)
        .unwrap()
        .with_keys_url(&server.url("/alb-keys"))
        .unwrap();
    let app = app(alb);
    let h = "x-amzn-oidc-data";
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let kid = format!("invented-{}", rand::random::<u64>());
                let t = alb_token(alb_header(ALB_ARN, &kid), alb_claims(), true);
                let (status, _) = call(&app, h, &t).await;
                assert_ne!(status, StatusCode::OK);
                sent += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The load balancer starts signing with a key its endpoint now serves.
    server.set_jwks(jwks(&[TestKey::Es256]));
    let rotated = Instant::now();
    let real = alb_token(
        alb_header(ALB_ARN, TestKey::Es256.kid()),
        alb_claims(),
        true,
    );
    let (mut refused, mut learnt) = (0, None);
    while rotated.elapsed() < Duration::from_secs(5) {
        if call(&app, h, &real).await.0 == StatusCode::OK {
            learnt = Some(rotated.elapsed());
            break;
        }
        refused += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let sent = flood.await.unwrap();
    let flood_time = 1.5 + rotated.elapsed().as_secs_f64();
    let learnt =
        learnt.unwrap_or_else(|| panic!("refused {refused} times in 5 s under a flood of {sent}"));
    assert!(
        learnt <= Duration::from_secs(1),
        "learnt after {learnt:?} ({refused} refusals)"
    );
    let fetches = server.total_hits();
    assert!(
        (fetches as f64) <= 5.0 * flood_time + 5.0,
        "{fetches} key fetches in {flood_time:.1} s"
    );
    eprintln!("flood of {sent} invented kids; rotation learnt after {learnt:?}, {fetches} fetches");
}
