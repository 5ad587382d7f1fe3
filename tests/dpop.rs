//! DPoP (RFC 9449) through the router: every proof check failing alone, replay on the
//! same and on another instance (Redis), the downgrade to Bearer, server nonces, and
//! proofs minted by panva's `dpop` (Node.js), an implementation independent of ours.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Answer, send};
use http::{Request, StatusCode};
use portcullis::AuthLayer;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::resource::{Dpop, ReplayCache};
use portcullis::testing::{TestKey, TokenBuilder, now, sign_raw};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PUBLIC: &str = "https://api.example.test";
const AUD: &str = "https://api.example.test";

/// RFC 7638, written apart from the crate's own.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap(),
            jwk["n"].as_str().unwrap()
        ),
        other => panic!("{other}"),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The proof key's public JWK (the test kit's ES256 key, without its kid/alg/use).
fn jwk(key: TestKey) -> Value {
    let mut j = key.public_jwk();
    for m in ["kid", "alg", "use"] {
        j.as_object_mut().unwrap().remove(m);
    }
    j
}

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// An access token bound to `key` (or unbound).
fn access_token(bound_to: Option<TestKey>) -> String {
    let mut t = TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", AUD)
        .with_claim("sub", "alice")
        .with_claim("scope", "tasks:write")
        .with_claim("exp", now() + 600);
    if let Some(k) = bound_to {
        t = t.with_claim("cnf", json!({"jkt": thumbprint(&jwk(k))}));
    }
    t.sign()
}

/// A token of `sub` with `cnf` as given (well-formed or not).
fn token_with_cnf(sub: &str, cnf: Value) -> String {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", AUD)
        .with_claim("sub", sub)
        .with_claim("exp", now() + 600)
        .with_claim("cnf", cnf)
        .sign()
}

/// The RS256 verifier of these tests, for tokens of `AUD`.
fn verifier() -> JwtVerifier {
    JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([Algorithm::RS256]).with_audience(AUD),
    ))
}

/// A proof: `header` and `claims` as given, signed with `key` under `alg`.
fn proof_raw(key: TestKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
    sign_raw(key, alg, &header.to_string(), &claims.to_string())
}

fn header(key: TestKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.algorithm().as_str(), "jwk": jwk(key)})
}

fn claims(method: &str, path: &str, token: &str) -> Value {
    json!({
        "jti": format!("jti-{}", rand::random::<u64>()),
        "htm": method,
        "htu": format!("{PUBLIC}{path}"),
        "iat": now(),
        "ath": ath(token),
    })
}

fn proof(method: &str, path: &str, token: &str) -> String {
    proof_raw(
        TestKey::Es256,
        Algorithm::ES256,
        &header(TestKey::Es256),
        &claims(method, path, token),
    )
}

fn app(dpop: Dpop) -> Router {
    let verifier = verifier().with_token_cache(TokenCache::new());
    Router::new()
        .route(
            "/api/tasks",
            post(|| async { "created" }).get(|| async { "list" }),
        )
        .layer(AuthLayer::required(
            BearerAuth::new("api", verifier).with_dpop(dpop),
        ))
}

fn request(method: &str, uri: &str, auth: &str, proofs: &[&str]) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", auth);
    for p in proofs {
        r = r.header("dpop", *p);
    }
    r.body(Body::empty()).unwrap()
}

fn dpop_error(a: &Answer) -> Option<String> {
    a.www_authenticate()
        .into_iter()
        .find(|c| c.starts_with("DPoP "))
        .and_then(|c| {
            c.split("error=\"")
                .nth(1)
                .map(|r| r.split('"').next().unwrap().to_owned())
        })
}

#[tokio::test]
async fn a_good_proof_is_accepted_and_the_token_cache_keeps_working() {
    let app = app(Dpop::allowed(PUBLIC).unwrap());
    let token = access_token(Some(TestKey::Es256));
    for _ in 0..3 {
        let p = proof("POST", "/api/tasks", &token);
        let a = send(
            &app,
            request("POST", "/api/tasks", &format!("DPoP {token}"), &[&p]),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{:?} {}",
            a.www_authenticate(),
            a.body
        );
    }
    // A query on the request (or in htu) is ignored, as RFC 9449 section 4.3 says.
    let p = proof("GET", "/api/tasks", &token);
    let a = send(
        &app,
        request("GET", "/api/tasks?page=2", &format!("DPoP {token}"), &[&p]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let mut c = claims("GET", "/api/tasks", &token);
    c["htu"] = json!(format!("{PUBLIC}/api/tasks?other=1"));
    let p = proof_raw(
        TestKey::Es256,
        Algorithm::ES256,
        &header(TestKey::Es256),
        &c,
    );
    let a = send(
        &app,
        request("GET", "/api/tasks", &format!("DPoP {token}"), &[&p]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

/// A request refused for carrying two credentials (a DPoP token and a session cookie)
/// leaves its proof unspent: the proof is checked only once the layer has chosen the
/// one scheme, so the client's retry without the cookie is admitted.
#[tokio::test]
async fn a_request_refused_for_two_credentials_does_not_spend_its_proof() {
    use portcullis::session::{MemoryStore, SessionConfig, SessionManager};
    let verifier = verifier().with_token_cache(TokenCache::new());
    let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    let app = Router::new()
        .route("/api/tasks", post(|| async { "created" }))
        .layer(
            AuthLayer::required(
                BearerAuth::new("api", verifier).with_dpop(Dpop::allowed(PUBLIC).unwrap()),
            )
            .or(sessions.authenticator()),
        );
    let token = access_token(Some(TestKey::Es256));
    let dpop = format!("DPoP {token}");
    // The token is cached after a first request, so the next is answered from the cache.
    let first = proof("POST", "/api/tasks", &token);
    let a = send(&app, request("POST", "/api/tasks", &dpop, &[&first])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let p = proof("POST", "/api/tasks", &token);
    let mut both = request("POST", "/api/tasks", &dpop, &[&p]);
    both.headers_mut()
        .insert("cookie", "__Host-session=x".parse().unwrap());
    assert_eq!(send(&app, both).await.status, StatusCode::BAD_REQUEST);
    let retry = send(&app, request("POST", "/api/tasks", &dpop, &[&p])).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    // And it is spent now.
    let again = send(&app, request("POST", "/api/tasks", &dpop, &[&p])).await;
    assert_eq!(dpop_error(&again).as_deref(), Some("invalid_dpop_proof"));
}

/// Every check of RFC 9449 section 4.3, each failing alone.
#[tokio::test]
async fn every_proof_check_fails_alone() {
    let app = app(Dpop::allowed(PUBLIC).unwrap());
    let token = access_token(Some(TestKey::Es256));
    let auth = format!("DPoP {token}");
    let h = header(TestKey::Es256);
    let c = || claims("POST", "/api/tasks", &token);
    let es = |h: &Value, c: &Value| proof_raw(TestKey::Es256, Algorithm::ES256, h, c);
    let with = |f: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (h.clone(), c());
        f(&mut h, &mut c);
        es(&h, &c)
    };
    let good = es(&h, &c());
    let (hb, pb, sb) = {
        let mut it = good.split('.');
        (
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
        )
    };
    let mut flipped = URL_SAFE_NO_PAD.decode(&sb).unwrap();
    flipped[10] ^= 1;
    let hs_header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(portcullis::testing::HMAC_SECRET)}});
    let other_key_header = header(TestKey::EdDsa);
    let cases: Vec<(&str, String)> = vec![
        ("typ JWT", with(&|h, _| h["typ"] = json!("JWT"))),
        (
            "no typ",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("typ");
            }),
        ),
        (
            "alg none",
            format!(
                "{}.{pb}.",
                URL_SAFE_NO_PAD.encode(
                    json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk(TestKey::Es256)})
                        .to_string()
                )
            ),
        ),
        (
            "HS256",
            proof_raw(TestKey::Hs256, Algorithm::HS256, &hs_header, &c()),
        ),
        (
            "private key in jwk",
            with(&|h, _| h["jwk"]["d"] = json!("bm90LWEtcmVhbC1wcml2YXRlLWtleQ")),
        ),
        (
            "no jwk",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
        ),
        (
            "bad signature",
            format!("{hb}.{pb}.{}", URL_SAFE_NO_PAD.encode(&flipped)),
        ),
        ("wrong htm", with(&|_, c| c["htm"] = json!("GET"))),
        ("htm lowercase", with(&|_, c| c["htm"] = json!("post"))),
        (
            "htu another host",
            with(&|_, c| c["htu"] = json!("https://evil.example.test/api/tasks")),
        ),
        (
            "htu another port",
            with(&|_, c| c["htu"] = json!("https://api.example.test:8443/api/tasks")),
        ),
        (
            "htu another scheme",
            with(&|_, c| c["htu"] = json!("http://api.example.test/api/tasks")),
        ),
        (
            "htu another path",
            with(&|_, c| c["htu"] = json!(format!("{PUBLIC}/api/other"))),
        ),
        ("htu relative", with(&|_, c| c["htu"] = json!("/api/tasks"))),
        ("iat too old", with(&|_, c| c["iat"] = json!(now() - 120))),
        (
            "iat too far ahead",
            with(&|_, c| c["iat"] = json!(now() + 60)),
        ),
        (
            "no iat",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        (
            "no jti",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "no ath",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("ath");
            }),
        ),
        (
            "wrong ath",
            with(&|_, c| c["ath"] = json!(ath("another token"))),
        ),
        (
            "thumbprint mismatch",
            proof_raw(TestKey::EdDsa, Algorithm::EdDSA, &other_key_header, &c()),
        ),
        (
            "comma-joined proofs",
            format!("{}, {}", es(&h, &c()), es(&h, &c())),
        ),
        (
            "oversized",
            with(&|_, c| c["pad"] = json!("x".repeat(5000))),
        ),
        ("garbage", "not-a-proof".to_owned()),
    ];
    for (name, p) in &cases {
        let a = send(&app, request("POST", "/api/tasks", &auth, &[p])).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}: {}", a.body);
        assert_eq!(
            dpop_error(&a).as_deref(),
            Some("invalid_dpop_proof"),
            "{name}: {:?}",
            a.www_authenticate()
        );
    }
    // Two DPoP headers, and none.
    let (p1, p2) = (es(&h, &c()), es(&h, &c()));
    for (name, proofs) in [
        ("two headers", vec![p1.as_str(), p2.as_str()]),
        ("no header", vec![]),
    ] {
        let a = send(&app, request("POST", "/api/tasks", &auth, &proofs)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            dpop_error(&a).as_deref(),
            Some("invalid_dpop_proof"),
            "{name}"
        );
    }
    // The good one still passes: nothing above was an accident of the fixture.
    let a = send(&app, request("POST", "/api/tasks", &auth, &[&es(&h, &c())])).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_proof_is_used_once_and_bound_tokens_never_downgrade() {
    let app = app(Dpop::allowed(PUBLIC).unwrap());
    let token = access_token(Some(TestKey::Es256));
    let p = proof("POST", "/api/tasks", &token);
    let req = || request("POST", "/api/tasks", &format!("DPoP {token}"), &[&p]);
    assert_eq!(send(&app, req()).await.status, StatusCode::OK);
    let replayed = send(&app, req()).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dpop_error(&replayed).as_deref(), Some("invalid_dpop_proof"));
    // The bound token sent as Bearer: refused, with or without a proof.
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("Bearer {token}"), &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let challenges = a.www_authenticate();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Bearer ") && c.contains("invalid_token")),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("DPoP ") && c.contains("algs=\"")),
        "{challenges:?}"
    );
    // An unbound token: fine as Bearer (DPoP allowed), refused as DPoP.
    let plain = access_token(None);
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("Bearer {plain}"), &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let p = proof("POST", "/api/tasks", &plain);
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("DPoP {plain}"), &[&p]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // DPoP required: Bearer refused outright, with only the DPoP challenge.
    let strict = app_required();
    let a = send(
        &strict,
        request("POST", "/api/tasks", &format!("Bearer {plain}"), &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let ch = a.www_authenticate();
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(
        ch[0].starts_with("DPoP ") && ch[0].contains("algs=\"ES256"),
        "{ch:?}"
    );
    let missing = send(
        &strict,
        Request::post("/api/tasks").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.www_authenticate()[0].starts_with("DPoP "));
}

fn app_required() -> Router {
    app(Dpop::required(PUBLIC).unwrap())
}

#[tokio::test]
async fn server_nonces_are_required_when_configured() {
    let app = app(Dpop::required(PUBLIC)
        .unwrap()
        .with_nonces(&[9u8; 32], Duration::from_secs(60))
        .unwrap());
    let token = access_token(Some(TestKey::Es256));
    let auth = format!("DPoP {token}");
    let first = send(
        &app,
        request(
            "POST",
            "/api/tasks",
            &auth,
            &[&proof("POST", "/api/tasks", &token)],
        ),
    )
    .await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dpop_error(&first).as_deref(), Some("use_dpop_nonce"));
    let nonce = first.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let mut c = claims("POST", "/api/tasks", &token);
    c["nonce"] = json!(nonce);
    let p = proof_raw(
        TestKey::Es256,
        Algorithm::ES256,
        &header(TestKey::Es256),
        &c,
    );
    assert_eq!(
        send(&app, request("POST", "/api/tasks", &auth, &[&p]))
            .await
            .status,
        StatusCode::OK
    );
    // A nonce this server never issued.
    c["nonce"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    c["jti"] = json!("another");
    let p = proof_raw(
        TestKey::Es256,
        Algorithm::ES256,
        &header(TestKey::Es256),
        &c,
    );
    let a = send(&app, request("POST", "/api/tasks", &auth, &[&p])).await;
    assert_eq!(dpop_error(&a).as_deref(), Some("use_dpop_nonce"));
    assert!(a.headers.contains_key("dpop-nonce"));
}

/// Proofs minted by panva's `dpop` for Node.js (ES256, PS256, RS256 keys it generates).
#[tokio::test]
async fn proofs_minted_by_an_independent_implementation_verify() {
    let Some(minted) = mint_with_node(&["ES256", "PS256", "RS256"]) else {
        return;
    };
    let app = app(Dpop::required(PUBLIC).unwrap());
    for (alg, token, proof) in minted {
        let a = send(
            &app,
            request("POST", "/api/tasks", &format!("DPoP {token}"), &[&proof]),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{alg}: {:?}",
            a.www_authenticate()
        );
        let replay = send(
            &app,
            request("POST", "/api/tasks", &format!("DPoP {token}"), &[&proof]),
        )
        .await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{alg}: replay");
    }
}

/// (alg, access token bound to a key node generated, node's proof for it); `None`
/// (with a notice) when the package is not installed, unless `PORTCULLIS_REQUIRE_NODE`
/// is set (`.ci/run` sets it and installs the package).
fn mint_with_node(algs: &[&str]) -> Option<Vec<(String, String, String)>> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    if !std::path::Path::new(dir).join("node_modules/dpop").exists() {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_NODE").is_none(),
            "tests/node/node_modules is missing: npm ci --prefix tests/node"
        );
        eprintln!("skip: run `npm ci --prefix tests/node` to test proofs minted by panva's dpop");
        return None;
    }
    let mut node = Command::new("node")
        .arg("mint-dpop.mjs")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut ask = |cmd: Value| -> Value {
        writeln!(stdin, "{cmd}").unwrap();
        serde_json::from_str(&lines.next().expect("node answered").unwrap()).unwrap()
    };
    let mut out = Vec::new();
    for alg in algs {
        let key = ask(json!({"key": alg}));
        let token = token_with_cnf("alice", json!({"jkt": key["jkt"]}));
        let proof = ask(json!({
            "proof": key["id"], "htu": format!("{PUBLIC}/api/tasks"), "htm": "POST", "token": token
        }));
        out.push((
            alg.to_string(),
            token,
            proof["proof"].as_str().unwrap().to_owned(),
        ));
    }
    drop(stdin);
    let _ = node.wait();
    Some(out)
}

/// With the replay cache on Redis, a proof used on one instance is refused on another;
/// Redis unreachable is a 503, never an unchecked proof.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_proof_replayed_on_another_instance_is_refused() {
    use common::proxy::{DOWN, Proxy, host_port};
    let Some(url) = common::redis_url() else {
        return;
    };
    let prefix = common::unique_prefix("pcdpop");
    let instance =
        |cache: ReplayCache| app(Dpop::required(PUBLIC).unwrap().with_replay_cache(cache));
    let one = instance(ReplayCache::redis(&url, &prefix).await.unwrap());
    let two = instance(ReplayCache::redis(&url, &prefix).await.unwrap());
    let token = access_token(Some(TestKey::Es256));
    let p = proof("POST", "/api/tasks", &token);
    let req = || request("POST", "/api/tasks", &format!("DPoP {token}"), &[&p]);
    assert_eq!(send(&one, req()).await.status, StatusCode::OK);
    let replayed = send(&two, req()).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dpop_error(&replayed).as_deref(), Some("invalid_dpop_proof"));
    assert_eq!(send(&one, req()).await.status, StatusCode::UNAUTHORIZED);

    let proxy = Proxy::start(host_port(&url, 6379)).await;
    let cut = instance(
        ReplayCache::redis(&format!("redis://{}", proxy.addr), &prefix)
            .await
            .unwrap(),
    );
    proxy.set(DOWN);
    let fresh = proof("POST", "/api/tasks", &token);
    let a = send(
        &cut,
        request("POST", "/api/tasks", &format!("DPoP {token}"), &[&fresh]),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_malformed_key_binding_is_refused_not_read_as_unbound() {
    let app = app(Dpop::allowed(PUBLIC).unwrap());
    for cnf in [json!({"jkt": 5}), json!("jkt"), json!({"jkt": ["a"]})] {
        let token = token_with_cnf("alice", cnf.clone());
        let a = send(
            &app,
            request("POST", "/api/tasks", &format!("Bearer {token}"), &[]),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{cnf}");
        assert!(
            a.www_authenticate()
                .iter()
                .any(|c| c.starts_with("Bearer ") && c.contains("invalid_token")),
            "{cnf}"
        );
        // Nor does any proof key match it.
        let p = proof("POST", "/api/tasks", &token);
        let a = send(
            &app,
            request("POST", "/api/tasks", &format!("DPoP {token}"), &[&p]),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{cnf}");
        assert_eq!(
            dpop_error(&a).as_deref(),
            Some("invalid_dpop_proof"),
            "{cnf}"
        );
    }
    // A layer without DPoP does not read `cnf` at all, well-formed or not.
    let plain = Router::new()
        .route("/api/tasks", post(|| async { "created" }))
        .layer(AuthLayer::required(BearerAuth::new("api", verifier())));
    let token = token_with_cnf("alice", json!("jkt"));
    let a = send(
        &plain,
        request("POST", "/api/tasks", &format!("Bearer {token}"), &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // A `cnf` with another confirmation method only (mTLS) and no `jkt`: not DPoP-bound.
    let token = token_with_cnf("alice", json!({"x5t#S256": "abc"}));
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("Bearer {token}"), &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

/// An opaque token whose introspection answer carries `cnf.jkt` is DPoP-bound like a
/// JWT: admitted with a proof by that key, refused as Bearer and with another key.
#[tokio::test]
async fn introspected_tokens_are_bound_by_their_cnf() {
    use portcullis::introspection::{ClientAuth, Introspection};
    use portcullis::testing::{KeyServer, TEST_CLIENT_ID, TEST_CLIENT_SECRET, jwks};
    let server = KeyServer::start(jwks(&[])).await;
    let answer = |cnf: Value| {
        json!({"iss": "https://as.example", "aud": AUD, "sub": "alice", "exp": now() + 600,
               "iat": now(), "cnf": cnf})
    };
    server.add_introspected_token(
        "opaque-bound",
        answer(json!({"jkt": thumbprint(&jwk(TestKey::Es256))})),
    );
    server.add_introspected_token("opaque-malformed", answer(json!({"jkt": 7})));
    let introspection = Introspection::new(
        &server.url("/introspect"),
        ClientAuth::basic(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
    )
    .unwrap()
    .with_audience(AUD);
    let app = Router::new()
        .route("/api/tasks", post(|| async { "created" }))
        .layer(AuthLayer::required(
            BearerAuth::introspection("api", introspection)
                .with_dpop(Dpop::allowed(PUBLIC).unwrap()),
        ));
    let token = "opaque-bound";
    let p = proof("POST", "/api/tasks", token);
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("DPoP {token}"), &[&p]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("Bearer {token}"), &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let other = proof_raw(
        TestKey::EdDsa,
        Algorithm::EdDSA,
        &header(TestKey::EdDsa),
        &claims("POST", "/api/tasks", token),
    );
    let a = send(
        &app,
        request("POST", "/api/tasks", &format!("DPoP {token}"), &[&other]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dpop_error(&a).as_deref(), Some("invalid_dpop_proof"));
    let a = send(
        &app,
        request("POST", "/api/tasks", "Bearer opaque-malformed", &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

/// One principal minting fresh proofs holds at most a tenth of the memory replay cache:
/// beyond it 429 with `Retry-After`, while another principal's proofs still pass.
#[tokio::test]
async fn one_principal_cannot_fill_the_replay_cache() {
    let app = app(Dpop::allowed(PUBLIC)
        .unwrap()
        .with_replay_cache(ReplayCache::memory().with_capacity(20)));
    let token_of =
        |sub: &str| token_with_cnf(sub, json!({"jkt": thumbprint(&jwk(TestKey::Es256))}));
    let (alice, bob) = (token_of("alice"), token_of("bob"));
    let call = |token: &str| {
        let p = proof("POST", "/api/tasks", token);
        request("POST", "/api/tasks", &format!("DPoP {token}"), &[&p])
    };
    for _ in 0..2 {
        assert_eq!(send(&app, call(&alice)).await.status, StatusCode::OK);
    }
    let a = send(&app, call(&alice)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(send(&app, call(&bob)).await.status, StatusCode::OK);
}
