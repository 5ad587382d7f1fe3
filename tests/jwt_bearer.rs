//! JWT bearer through the real router, keys served by a real server on 127.0.0.1.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::jwt::{
    Algorithm, BearerAuth, ClaimsMapping, Issuer, JwksOptions, JwtVerifier, KeySet, RemoteJwks,
    TokenCache, Validation,
};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now, sign_raw};
use portcullis::{AuthLayer, Startup};
use serde_json::json;

const ISS: &str = "https://issuer.test";
const AUD: &str = "api";

fn validation(algs: &[Algorithm]) -> Validation {
    Validation::new(algs.iter().copied())
        .with_issuer(ISS)
        .with_audience(AUD)
}

fn static_app(probe: &Probe, keys: KeySet, algs: &[Algorithm]) -> Router {
    let v = JwtVerifier::new(
        Issuer::new(keys, validation(algs))
            .with_mapping(ClaimsMapping::default().with_roles_claim("realm_access.roles")),
    );
    probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)))
}

fn token(key: TestKey) -> TokenBuilder {
    TokenBuilder::new(key)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
}

async fn call(app: &Router, token: &str) -> common::Answer {
    send(
        app,
        get("/api/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn all_keys() -> KeySet {
    let doc = jwks(&[
        TestKey::Hs256,
        TestKey::Rs256,
        TestKey::Es256,
        TestKey::EdDsa,
    ])
    .to_string();
    KeySet::from_jwks(
        doc.as_bytes(),
        &[
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ],
        true,
    )
    .unwrap()
}

#[tokio::test]
async fn each_algorithm_verifies() {
    let probe = Probe::default();
    let app = static_app(
        &probe,
        all_keys(),
        &[
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ],
    );
    for key in [
        TestKey::Hs256,
        TestKey::Rs256,
        TestKey::Es256,
        TestKey::EdDsa,
    ] {
        let t = token(key)
            .with_claim("realm_access", json!({"roles": ["admin"]}))
            .with_claim("scope", "a b")
            .sign();
        let a = call(&app, &t).await;
        assert_eq!(a.status, StatusCode::OK, "{key:?}: {}", a.body);
        let j = a.json();
        assert_eq!(j["subject"], "user-1");
        assert_eq!(j["scheme"], "bearer");
        assert_eq!(j["roles"], json!(["admin"]));
        assert_eq!(j["scopes"], json!(["a", "b"]));
        assert_eq!(j["issuer"], ISS);
    }
    assert_eq!(probe.runs(), 4);
}

#[tokio::test]
async fn algorithm_comes_from_config_not_token() {
    let probe = Probe::default();
    // Only RS256 allowed: an HS256 token (even validly signed with a configured secret) is refused.
    let keys = all_keys();
    let app = static_app(&probe, keys, &[Algorithm::RS256]);
    let a = call(&app, &token(TestKey::Hs256).sign()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www_authenticate(),
        ["Bearer realm=\"api\", error=\"invalid_token\""]
    );
    // alg none and case variants.
    for alg in ["none", "None", "NONE", "rs256"] {
        let t = sign_raw(
            TestKey::Rs256,
            Algorithm::RS256,
            &format!(r#"{{"alg":"{alg}","kid":"rsa1"}}"#),
            &json!({"sub":"x","iss":ISS,"aud":AUD,"exp":now()+60}).to_string(),
        );
        let stripped = format!("{}.", t.rsplit_once('.').unwrap().0);
        assert_eq!(
            call(&app, &t).await.status,
            StatusCode::UNAUTHORIZED,
            "{alg}"
        );
        assert_eq!(
            call(&app, &stripped).await.status,
            StatusCode::UNAUTHORIZED,
            "{alg} stripped"
        );
    }
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn hmac_keyed_with_rsa_public_key_is_refused() {
    let probe = Probe::default();
    let rsa_only = TestKey::Rs256.key_set();
    let app = static_app(&probe, rsa_only, &[Algorithm::RS256, Algorithm::HS256]);
    // Classic confusion: sign HS256 with the RSA public key PEM as the secret.
    let header = r#"{"alg":"HS256","kid":"rsa1"}"#;
    let payload = json!({"sub":"x","iss":ISS,"aud":AUD,"exp":now()+60}).to_string();
    let input = format!("{}.{}", b64(header), b64(&payload));
    let secret = TestKey::Rs256.public_pem().as_bytes();
    let sig = hmac_sha256(secret, input.as_bytes());
    let a = call(&app, &format!("{input}.{}", b64_bytes(&sig))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(probe.runs(), 0);
}

fn b64(s: &str) -> String {
    b64_bytes(s.as_bytes())
}
fn b64_bytes(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC by hand (test only), so the test does not depend on a MAC crate.
    use sha2_shim::sha256;
    let mut k = if key.len() > 64 {
        sha256(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let ipad: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let inner = sha256(&ipad);
    let opad: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner.iter().copied())
        .collect();
    sha256(&opad).to_vec()
}
mod sha2_shim {
    pub fn sha256(data: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(data).into()
    }
}

#[tokio::test]
async fn claim_rules_have_failing_cases() {
    let probe = Probe::default();
    let app = static_app(&probe, all_keys(), &[Algorithm::RS256]);
    let n = now();
    let bad: Vec<(&str, String)> = vec![
        (
            "expired",
            token(TestKey::Rs256).with_claim("exp", n - 60).sign(),
        ),
        ("no exp", token(TestKey::Rs256).without_claim("exp").sign()),
        (
            "exp string",
            token(TestKey::Rs256)
                .with_claim("exp", (n + 60).to_string())
                .sign(),
        ),
        (
            "nbf future",
            token(TestKey::Rs256).with_claim("nbf", n + 120).sign(),
        ),
        (
            "iat future",
            token(TestKey::Rs256).with_claim("iat", n + 120).sign(),
        ),
        (
            "wrong iss",
            token(TestKey::Rs256)
                .with_claim("iss", "https://evil.test")
                .sign(),
        ),
        (
            "iss array",
            token(TestKey::Rs256).with_claim("iss", json!([ISS])).sign(),
        ),
        ("no iss", token(TestKey::Rs256).without_claim("iss").sign()),
        (
            "wrong aud",
            token(TestKey::Rs256).with_claim("aud", "other").sign(),
        ),
        (
            "aud substring",
            token(TestKey::Rs256).with_claim("aud", "ap").sign(),
        ),
        (
            "aud mixed",
            token(TestKey::Rs256)
                .with_claim("aud", json!([AUD, 1]))
                .sign(),
        ),
        (
            "aud object",
            token(TestKey::Rs256)
                .with_claim("aud", json!({"aud": AUD}))
                .sign(),
        ),
        (
            "aud number",
            token(TestKey::Rs256).with_claim("aud", 1).sign(),
        ),
        (
            "sub number",
            token(TestKey::Rs256).with_claim("sub", 42).sign(),
        ),
        (
            "sub object",
            token(TestKey::Rs256)
                .with_claim("sub", json!({"id": 1}))
                .sign(),
        ),
        (
            "roles string",
            token(TestKey::Rs256)
                .with_claim("realm_access", json!({"roles": "admin"}))
                .sign(),
        ),
        (
            "crit",
            token(TestKey::Rs256)
                .with_header("crit", json!(["exp"]))
                .sign(),
        ),
        (
            "b64",
            token(TestKey::Rs256).with_header("b64", false).sign(),
        ),
        (
            "nested",
            token(TestKey::Rs256).with_header("cty", "JWT").sign(),
        ),
        (
            "kid number",
            token(TestKey::Rs256).with_header("kid", 1).sign(),
        ),
        (
            "unknown kid",
            token(TestKey::Rs256)
                .with_header("kid", "../../etc/passwd")
                .sign(),
        ),
        (
            "wrong key",
            TokenBuilder::new(TestKey::Rs256Next)
                .with_header("kid", "rsa1")
                .with_claim("iss", ISS)
                .with_claim("aud", AUD)
                .sign(),
        ),
        (
            "jwe",
            "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d".to_owned(),
        ),
        (
            "dup claim",
            sign_raw(
                TestKey::Rs256,
                Algorithm::RS256,
                r#"{"alg":"RS256","kid":"rsa1"}"#,
                &format!(
                    r#"{{"sub":"a","sub":"admin","iss":"{ISS}","aud":"{AUD}","exp":{}}}"#,
                    n + 60
                ),
            ),
        ),
        (
            "dup header",
            sign_raw(
                TestKey::Rs256,
                Algorithm::RS256,
                r#"{"alg":"RS256","alg":"RS256","kid":"rsa1"}"#,
                &format!(
                    r#"{{"sub":"a","iss":"{ISS}","aud":"{AUD}","exp":{}}}"#,
                    n + 60
                ),
            ),
        ),
        (
            "oversize",
            token(TestKey::Rs256)
                .with_claim("pad", "x".repeat(9000))
                .sign(),
        ),
        (
            "empty sig",
            format!("{}.", token(TestKey::Rs256).signing_input()),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (name, t) in bad {
        let a = call(&app, &t).await;
        assert!(
            matches!(a.status, StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST),
            "{name}: {}",
            a.status
        );
        assert!(
            !a.body.contains(&t[..t.len().min(20)]),
            "{name}: body echoes token"
        );
    }
    assert_eq!(probe.runs(), 0);
    // Leeway: 20 s past exp is still fine with the default 30 s.
    assert_eq!(
        call(
            &app,
            &token(TestKey::Rs256).with_claim("exp", n - 20).sign()
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rfc6750_errors() {
    let probe = Probe::default();
    let app = static_app(&probe, all_keys(), &[Algorithm::RS256]);
    let a = send(&app, get("/api/me").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.www_authenticate(), ["Bearer realm=\"api\""]);
    for bad in [
        "Bearer",
        "Bearer    ",
        "Bearer a b",
        "Bearer tok\"en",
        "Bearer ====",
    ] {
        let a = send(
            &app,
            get("/api/me")
                .header("authorization", bad)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            a.www_authenticate(),
            ["Bearer realm=\"api\", error=\"invalid_request\""],
            "{bad}"
        );
    }
    let a = call(&app, "abc.def.ghi").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www_authenticate(),
        ["Bearer realm=\"api\", error=\"invalid_token\""]
    );
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn typ_and_max_age_when_configured() {
    let probe = Probe::default();
    let v = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        validation(&[Algorithm::RS256])
            .with_required_typ("at+jwt")
            .with_max_age(Duration::from_secs(60)),
    ));
    let app = probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)));
    assert_eq!(
        call(
            &app,
            &token(TestKey::Rs256).with_header("typ", "at+jwt").sign()
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, &token(TestKey::Rs256).sign()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let old = token(TestKey::Rs256)
        .with_header("typ", "at+jwt")
        .with_claim("iat", now() - 600)
        .sign();
    assert_eq!(call(&app, &old).await.status, StatusCode::UNAUTHORIZED);
}

fn remote_app(
    probe: &Probe,
    server: &KeyServer,
    opts: JwksOptions,
    cache: bool,
) -> (Router, RemoteJwks) {
    let jwks = RemoteJwks::new(
        &server.url("/jwks.json"),
        [Algorithm::RS256, Algorithm::ES256],
        opts,
    )
    .unwrap();
    let mut v = JwtVerifier::new(Issuer::new(
        jwks.clone(),
        validation(&[Algorithm::RS256, Algorithm::ES256]),
    ));
    if cache {
        v = v.with_token_cache(TokenCache::new());
    }
    (
        probe
            .router("/api/me")
            .layer(AuthLayer::required(BearerAuth::new("api", v))),
        jwks,
    )
}

#[tokio::test]
async fn remote_jwks_single_flight_and_rotation() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let (app, _) = remote_app(
        &probe,
        &server,
        JwksOptions::default().with_unknown_kid_cooldown(Duration::from_millis(300)),
        false,
    );
    // 20 concurrent cold requests: one fetch.
    let t = token(TestKey::Rs256).sign();
    let calls = (0..20).map(|_| call(&app, &t));
    for a in futures_join(calls).await {
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(server.hits("/jwks.json"), 1);
    // Rotation: the IdP adds rsa2; a token with the new kid triggers one refetch (after the cooldown).
    server.set_jwks(jwks(&[TestKey::Rs256Next]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let a = call(&app, &token(TestKey::Rs256Next).sign()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(server.hits("/jwks.json"), 2);
    // The old key is gone from the set now.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        call(&app, &token(TestKey::Rs256).sign()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(f);
    }
    let mut out = Vec::new();
    let joined = futures_util_join_all(set);
    for o in joined.await {
        out.push(o);
    }
    out
}

async fn futures_util_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    // Poll all futures concurrently on this task.
    let mut fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..fs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in fs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

#[tokio::test]
async fn unknown_kid_storm_makes_one_fetch_per_cooldown() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let (app, jwks_handle) = remote_app(&probe, &server, JwksOptions::default(), false);
    assert_eq!(
        call(&app, &token(TestKey::Rs256).sign()).await.status,
        StatusCode::OK
    );
    assert_eq!(server.hits("/jwks.json"), 1);
    for i in 0..200 {
        let t = token(TestKey::Rs256)
            .with_header("kid", format!("made-up-{i}"))
            .sign();
        assert_eq!(call(&app, &t).await.status, StatusCode::UNAUTHORIZED);
    }
    // The first fetch is younger than a second, so even the first made-up kid does not refetch.
    assert!(
        server.hits("/jwks.json") <= 2,
        "{}",
        server.hits("/jwks.json")
    );
    assert_eq!(
        jwks_handle.fetch_count() as usize,
        server.hits("/jwks.json")
    );
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn jwks_outage_fails_closed_then_recovers() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_status(StatusCode::NOT_FOUND);
    let probe = Probe::default();
    let (app, _) = remote_app(
        &probe,
        &server,
        JwksOptions::default().with_failure_backoff(Duration::from_millis(100)),
        false,
    );
    let t = token(TestKey::Rs256).sign();
    let a = call(&app, &t).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["error"], "temporarily_unavailable");
    // Within the back-off: no new fetch.
    let hits = server.hits("/jwks.json");
    assert_eq!(call(&app, &t).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits("/jwks.json"), hits);
    // Garbage bodies are an outage too.
    server.set_status(StatusCode::OK);
    server.set_body(Some("<html>oops</html>".into()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(call(&app, &t).await.status, StatusCode::SERVICE_UNAVAILABLE);
    server.set_body(None);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn slow_jwks_times_out_and_oversized_is_refused() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_delay(Duration::from_secs(3));
    let probe = Probe::default();
    let (app, _) = remote_app(
        &probe,
        &server,
        JwksOptions::default().with_egress(
            portcullis::egress::Egress::default().with_timeout(Duration::from_millis(300)),
        ),
        false,
    );
    let started = std::time::Instant::now();
    assert_eq!(
        call(&app, &token(TestKey::Rs256).sign()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let big = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    big.set_body(Some(format!(
        "{{\"keys\":[],\"pad\":\"{}\"}}",
        "x".repeat(300_000)
    )));
    let (app, _) = remote_app(&probe, &big, JwksOptions::default(), false);
    assert_eq!(
        call(&app, &token(TestKey::Rs256).sign()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn stale_keys_served_while_refresh_fails() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_cache_control(Some("max-age=0"));
    let probe = Probe::default();
    let opts = JwksOptions::default()
        .with_ttl_bounds(Duration::from_millis(100), Duration::from_millis(100))
        .with_failure_backoff(Duration::from_millis(10));
    let (app, _) = remote_app(&probe, &server, opts, false);
    let t = token(TestKey::Rs256).sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    server.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Expired, refresh fails: the last good set still serves (bounded by max_stale).
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        server.hits("/jwks.json") >= 2,
        "a background refresh was attempted"
    );
}

#[tokio::test]
async fn jwks_rules_skip_unusable_and_ambiguous_keys() {
    let mut enc = TestKey::Rs256.public_jwk();
    enc["use"] = json!("enc");
    let mut ops = TestKey::Es256.public_jwk();
    ops["key_ops"] = json!(["sign"]);
    let weak = TestKey::Rs256Weak.public_jwk();
    let doc = json!({"keys": [enc, ops, weak]}).to_string();
    let set =
        KeySet::from_jwks(doc.as_bytes(), &[Algorithm::RS256, Algorithm::ES256], false).unwrap();
    assert!(set.is_empty());
    // Two keys with the same kid: never resolved by taking the first.
    let mut twin = TestKey::Rs256Next.public_jwk();
    twin["kid"] = json!("rsa1");
    let doc = json!({"keys": [TestKey::Rs256.public_jwk(), twin]}).to_string();
    let set = KeySet::from_jwks(doc.as_bytes(), &[Algorithm::RS256], false).unwrap();
    let probe = Probe::default();
    let app = static_app(&probe, set, &[Algorithm::RS256]);
    assert_eq!(
        call(&app, &token(TestKey::Rs256).sign()).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Remote sets never accept symmetric keys.
    let doc = jwks(&[TestKey::Hs256]).to_string();
    assert!(
        KeySet::from_jwks(doc.as_bytes(), &[Algorithm::HS256], false)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn header_key_urls_are_never_fetched() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let attacker = KeyServer::start(jwks(&[TestKey::Rs256Next])).await;
    let probe = Probe::default();
    let (app, _) = remote_app(&probe, &server, JwksOptions::default(), false);
    let t = TokenBuilder::new(TestKey::Rs256Next)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
        .with_header("kid", "rsa1")
        .with_header("jku", attacker.url("/jwks.json"))
        .with_header("x5u", attacker.url("/cert.pem"))
        .with_header("jwk", TestKey::Rs256Next.public_jwk())
        .sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(attacker.total_hits(), 0);
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn oidc_discovery_and_issuer_mismatch() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let iss = server.base_url();
    let jwks_src = RemoteJwks::discover(&iss, [Algorithm::RS256], JwksOptions::default()).unwrap();
    let v = JwtVerifier::new(Issuer::new(
        jwks_src,
        Validation::new([Algorithm::RS256])
            .with_issuer(iss.clone())
            .with_audience(AUD),
    ));
    let probe = Probe::default();
    let app = probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)));
    let t = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", iss.clone())
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    assert_eq!(server.hits("/.well-known/openid-configuration"), 1);

    let other = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    other.set_discovery_issuer(Some("https://someone-else.test"));
    let src = RemoteJwks::discover(
        &other.base_url(),
        [Algorithm::RS256],
        JwksOptions::default(),
    )
    .unwrap();
    let v = JwtVerifier::new(Issuer::new(
        src,
        Validation::new([Algorithm::RS256])
            .with_issuer(other.base_url())
            .with_audience(AUD),
    ));
    let app = probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)));
    let t = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", other.base_url())
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(other.hits("/jwks.json"), 0);
}

#[tokio::test]
async fn several_issuers_picked_by_iss_and_verified_with_their_own_keys() {
    let a = Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([Algorithm::RS256])
            .with_issuer("https://a.test")
            .with_audience(AUD),
    );
    let b = Issuer::new(
        TestKey::Es256.key_set(),
        Validation::new([Algorithm::ES256])
            .with_issuer("https://b.test")
            .with_audience(AUD),
    );
    let v = JwtVerifier::new(a).with_issuer(b);
    let probe = Probe::default();
    let app = probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)));
    let ta = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", "https://a.test")
        .with_claim("aud", AUD)
        .sign();
    let tb = TokenBuilder::new(TestKey::Es256)
        .with_claim("iss", "https://b.test")
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(call(&app, &ta).await.json()["issuer"], "https://a.test");
    assert_eq!(call(&app, &tb).await.json()["issuer"], "https://b.test");
    // Issuer A's key claiming to be issuer B: refused.
    let cross = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", "https://b.test")
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(call(&app, &cross).await.status, StatusCode::UNAUTHORIZED);
    let unknown = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", "https://c.test")
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(call(&app, &unknown).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_cache_rechecks_expiry_and_flushes_on_rotation() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_cache_control(Some("max-age=0"));
    let probe = Probe::default();
    let opts = JwksOptions::default()
        .with_ttl_bounds(Duration::from_millis(200), Duration::from_millis(200))
        .with_unknown_kid_cooldown(Duration::from_millis(10));
    let (app, _) = remote_app(&probe, &server, opts, true);
    // Expired 27 s ago: accepted through the 30 s leeway for 2 to 3 more seconds (whole
    // seconds), so it dies while cached. Enough margin for a slow, loaded machine.
    let short = token(TestKey::Rs256).with_claim("exp", now() - 27).sign();
    assert_eq!(call(&app, &short).await.status, StatusCode::OK);
    assert_eq!(call(&app, &short).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        call(&app, &short).await.status,
        StatusCode::UNAUTHORIZED,
        "cache hit must recheck exp"
    );

    let t = token(TestKey::Rs256).sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    // Rotate away rsa1; once the set refreshes, the cached token must stop working.
    server.set_jwks(jwks(&[TestKey::Rs256Next]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let _ = call(&app, &t).await; // triggers the background refresh
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(call(&app, &t).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn redirects_to_other_hosts_are_not_followed() {
    let attacker = KeyServer::start(jwks(&[TestKey::Rs256Next])).await;
    let target = attacker.url("/jwks.json");
    let redirector = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::FOUND, [("location", target)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let jwks_src = RemoteJwks::new(&url, [Algorithm::RS256], JwksOptions::default()).unwrap();
    let v = JwtVerifier::new(Issuer::new(jwks_src, validation(&[Algorithm::RS256])));
    let probe = Probe::default();
    let app = probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)));
    let t = TokenBuilder::new(TestKey::Rs256Next)
        .with_header("kid", "rsa2")
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        attacker.total_hits(),
        0,
        "the redirect to another origin was followed"
    );
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn token_cache_hits_only_the_exact_token_and_syntax_is_still_checked() {
    let probe = Probe::default();
    let v = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        validation(&[Algorithm::RS256]),
    ))
    .with_token_cache(TokenCache::new());
    let app = probe
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::new("api", v)));
    let t = token(TestKey::Rs256).sign();
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    assert_eq!(call(&app, &t).await.status, StatusCode::OK);
    // Same signature tail (same cache bucket), other bytes: never a hit.
    let (head, tail) = t.split_at(t.len() - 70);
    for bad in [
        format!("x{t}"),
        format!("{head}~{}", &tail[1..]),
        format!("{} {}", &head[..10], &t[11..]),
        format!("{}\"{}", &head[..10], &t[11..]),
    ] {
        let a = call(&app, &bad).await;
        assert!(
            a.status == StatusCode::BAD_REQUEST || a.status == StatusCode::UNAUTHORIZED,
            "{bad}: {}",
            a.status
        );
    }
    // Characters outside b68token are a malformed request, cache or not.
    let a = call(&app, &format!("{} {}", &head[..10], &t[11..])).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(probe.runs(), 2);
}

#[tokio::test]
async fn oidc_short_path_discovers_at_start_and_fails_fast() {
    use portcullis::testing::TEST_AUDIENCE;
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let bearer = BearerAuth::oidc(&server.issuer(), TEST_AUDIENCE, Startup::FailFast)
        .await
        .unwrap();
    assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(server.hits("/jwks.json"), 1);
    let probe = Probe::default();
    let app = probe.router("/api/me").layer(AuthLayer::required(bearer));
    let a = call(&app, &server.token_for("alice")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "alice");
    let other_aud = server
        .token_builder_for("alice")
        .with_claim("aud", "other")
        .sign();
    assert_eq!(
        call(&app, &other_aud).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Nothing was fetched again for these requests.
    assert_eq!(server.hits("/jwks.json"), 1);

    // A wrong URL and an issuer mismatch fail now, saying what to check.
    let err = BearerAuth::oidc("http://127.0.0.1:1", "api", Startup::FailFast)
        .await
        .unwrap_err();
    assert!(err.message().contains("unreachable"), "{err}");
    server.set_discovery_issuer(Some("https://elsewhere.example"));
    let err = BearerAuth::oidc(&server.issuer(), "api", Startup::FailFast)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("do not match the configuration")
            && err.message().contains("discovery issuer"),
        "{err}"
    );
    assert_eq!(probe.runs(), 1);
}
