//! Adversarial suite: attacks from RFC 8725, RFC 6750/7617, the OWASP JWT and session
//! cheat sheets and jwt_tool's classes. Every case asserts the status, the challenge
//! header where one is due, and that no handler ran.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::send;
use http::{Request, StatusCode};
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::iap::IdentityProxy;
use portcullis::jwt::{
    Algorithm, BearerAuth, Issuer, JwksOptions, JwtVerifier, RemoteJwks, Validation,
};
use portcullis::policy::{PolicyLayer, Rule};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager, Sessions};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now, sign_raw};
use portcullis::{AuthContext, AuthError, AuthLayer};
use serde_json::json;

const ISS: &str = "https://issuer.test";
const AUD: &str = "api";
const TEAM: &str = "acme";
const CF_AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

struct World {
    app: Router,
    runs: Arc<AtomicUsize>,
    jwks: KeyServer,
    attacker: KeyServer,
    session_cookie: String,
    logged_out_cookie: String,
}

async fn world() -> World {
    let jwks_server = KeyServer::start(jwks(&[TestKey::Rs256, TestKey::Es256])).await;
    let attacker = KeyServer::start(jwks(&[TestKey::Rs256Next])).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = {
        let runs = runs.clone();
        move |ctx: AuthContext| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Json(json!(ctx))
            }
        }
    };
    let basic = BasicAuth::new("adv")
        .with_user("admin", User::plain("correct horse").with_roles(["admin"]))
        .with_user("eve", User::plain("eve-pass"));
    let remote = RemoteJwks::new(
        &jwks_server.url("/jwks.json"),
        [Algorithm::RS256, Algorithm::ES256, Algorithm::HS256],
        JwksOptions::default(),
    )
    .unwrap();
    let bearer = BearerAuth::new(
        "api",
        JwtVerifier::new(Issuer::new(
            remote,
            Validation::new([Algorithm::RS256, Algorithm::ES256, Algorithm::HS256])
                .with_issuer(ISS)
                .with_audience(AUD),
        )),
    );
    let cf = IdentityProxy::cloudflare_access(TEAM, CF_AUD)
        .unwrap()
        .with_keys_url(&jwks_server.url("/cdn-cgi/access/certs"))
        .unwrap();
    let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    let app = Router::new()
        .route(
            "/basic",
            get(handler.clone()).layer(AuthLayer::required(basic.clone())),
        )
        .route(
            "/api",
            get(handler.clone())
                .post(handler.clone())
                .layer(AuthLayer::required(bearer.clone())),
        )
        .route(
            "/cf",
            get(handler.clone()).layer(AuthLayer::required(cf.clone())),
        )
        .route(
            "/session",
            get(handler.clone())
                .post(handler.clone())
                .layer(AuthLayer::required(manager.authenticator())),
        )
        .route(
            "/admin",
            get(handler.clone())
                .post(handler.clone())
                .route_layer(PolicyLayer::new(Rule::role("admin")))
                .layer(
                    AuthLayer::required(basic)
                        .or(bearer)
                        .or(cf)
                        .or(manager.authenticator()),
                ),
        )
        .route(
            "/login",
            post(|s: Sessions| async move {
                Ok::<_, AuthError>((s.login(NewSession::new("alice")).await?, "ok"))
            }),
        )
        .route(
            "/logout",
            post(|s: Sessions| async move { s.logout().await }),
        )
        .layer(Extension(manager));
    let login = |app: Router| async move {
        let a = send(&app, Request::post("/login").body(Body::empty()).unwrap()).await;
        a.cookie_pair()
    };
    let session_cookie = login(app.clone()).await;
    let logged_out_cookie = login(app.clone()).await;
    let a = send(
        &app,
        Request::post("/logout")
            .header("cookie", &logged_out_cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    World {
        app,
        runs,
        jwks: jwks_server,
        attacker,
        session_cookie,
        logged_out_cookie,
    }
}

fn api_token(key: TestKey) -> TokenBuilder {
    TokenBuilder::new(key)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
}

fn cf_token() -> TokenBuilder {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", format!("https://{TEAM}.cloudflareaccess.com"))
        .with_claim("aud", json!([CF_AUD]))
        .with_claim("email", "a@acme.test")
        .with_claim("type", "app")
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn claims() -> String {
    json!({"sub": "user-1", "iss": ISS, "aud": AUD, "exp": now() + 600}).to_string()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let mut inner = Sha256::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<_>>());
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<_>>());
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// A token with the given header, default claims, and an HMAC signature keyed with `secret`.
fn hmac_token(header: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(&claims()));
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(hmac_sha256(secret, input.as_bytes()))
    )
}

fn unsigned(header: &str) -> String {
    format!("{}.{}.", b64(header), b64(&claims()))
}

enum Expect {
    /// Status only.
    Status(StatusCode),
    /// Status and a `WWW-Authenticate` containing this text.
    Challenge(StatusCode, &'static str),
}

struct Case {
    name: String,
    req: Request<Body>,
    expect: Expect,
}

fn bearer(name: &str, token: String) -> Case {
    Case {
        name: format!("jwt: {name}"),
        req: Request::get("/api")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Challenge(StatusCode::UNAUTHORIZED, "error=\"invalid_token\""),
    }
}

fn bearer_raw(name: &str, header_value: &[u8], expect: Expect) -> Case {
    Case {
        name: format!("jwt: {name}"),
        req: Request::get("/api")
            .header(
                "authorization",
                http::HeaderValue::from_bytes(header_value).unwrap(),
            )
            .body(Body::empty())
            .unwrap(),
        expect,
    }
}

fn basic_case(name: &str, value: &[u8]) -> Case {
    Case {
        name: format!("basic: {name}"),
        req: Request::get("/basic")
            .header(
                "authorization",
                http::HeaderValue::from_bytes(value).unwrap(),
            )
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Challenge(
            StatusCode::UNAUTHORIZED,
            "Basic realm=\"adv\", charset=\"UTF-8\"",
        ),
    }
}

fn cf_case(name: &str, req: http::request::Builder) -> Case {
    Case {
        name: format!("cloudflare: {name}"),
        req: req.body(Body::empty()).unwrap(),
        expect: Expect::Status(StatusCode::UNAUTHORIZED),
    }
}

fn session_case(name: &str, req: Request<Body>, status: StatusCode) -> Case {
    Case {
        name: format!("session: {name}"),
        req,
        expect: Expect::Status(status),
    }
}

fn cases(w: &World) -> Vec<Case> {
    let rsa_pem = TestKey::Rs256.public_pem().as_bytes();
    let rsa_n = URL_SAFE_NO_PAD
        .decode(TestKey::Rs256.public_jwk()["n"].as_str().unwrap())
        .unwrap();
    let good = api_token(TestKey::Rs256).sign();
    let (good_input, good_sig) = good.rsplit_once('.').unwrap();
    let es = api_token(TestKey::Es256).sign();
    let es_input = es.rsplit_once('.').unwrap().0.to_owned();
    let n = now();
    // Same decoded bytes, different base64 text: flip the unused low bits of the last char.
    let last = good_sig.chars().last().unwrap();
    let idx = URL_SAFE_NO_PAD.encode([0u8]).len(); // 2
    let _ = idx;
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.find(last).unwrap();
    let malleable = format!(
        "{good_input}.{}{}",
        &good_sig[..good_sig.len() - 1],
        alphabet.as_bytes()[pos ^ 1] as char
    );

    let mut v = vec![
        bearer("alg none", unsigned(r#"{"alg":"none","kid":"rsa1"}"#)),
        bearer("alg None", unsigned(r#"{"alg":"None"}"#)),
        bearer("alg NONE", unsigned(r#"{"alg":"NONE"}"#)),
        bearer("alg nOnE", unsigned(r#"{"alg":"nOnE"}"#)),
        bearer(
            "alg none with a signature",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"none"}"#),
                b64(&claims()),
                good_sig
            ),
        ),
        bearer("stripped signature", format!("{good_input}.")),
        bearer("two segments", good_input.to_owned()),
        bearer(
            "HS256 keyed with the RSA public PEM",
            hmac_token(r#"{"alg":"HS256","kid":"rsa1"}"#, rsa_pem),
        ),
        bearer(
            "HS256 keyed with the RSA modulus",
            hmac_token(r#"{"alg":"HS256","kid":"rsa1"}"#, &rsa_n),
        ),
        bearer(
            "HS256 without kid keyed with the PEM",
            hmac_token(r#"{"alg":"HS256"}"#, rsa_pem),
        ),
        bearer(
            "RS512 with the RS256 key",
            api_token(TestKey::Rs256)
                .with_signing_algorithm(Algorithm::RS512)
                .sign(),
        ),
        bearer(
            "PS256 with the RS256 key",
            api_token(TestKey::Rs256)
                .with_signing_algorithm(Algorithm::PS256)
                .sign(),
        ),
        bearer(
            "ES384 header on an ES256 key",
            format!(
                "{}.{}",
                b64(r#"{"alg":"ES384","kid":"ec1"}"#) + "." + &b64(&claims()),
                es.rsplit_once('.').unwrap().1
            ),
        ),
        bearer(
            "RS256 header on the EC key id",
            api_token(TestKey::Rs256).with_header("kid", "ec1").sign(),
        ),
        bearer(
            "embedded jwk",
            TokenBuilder::new(TestKey::Rs256Next)
                .with_claim("iss", ISS)
                .with_claim("aud", AUD)
                .with_header("jwk", TestKey::Rs256Next.public_jwk())
                .without_header("kid")
                .sign(),
        ),
        bearer(
            "jku to attacker",
            TokenBuilder::new(TestKey::Rs256Next)
                .with_claim("iss", ISS)
                .with_claim("aud", AUD)
                .with_header("jku", w.attacker.url("/jwks.json"))
                .sign(),
        ),
        bearer(
            "x5u to attacker",
            TokenBuilder::new(TestKey::Rs256Next)
                .with_claim("iss", ISS)
                .with_claim("aud", AUD)
                .with_header("x5u", w.attacker.url("/cert.pem"))
                .sign(),
        ),
        bearer(
            "x5c attacker chain",
            TokenBuilder::new(TestKey::Rs256Next)
                .with_claim("iss", ISS)
                .with_claim("aud", AUD)
                .with_header("x5c", json!(["MIIBszCCAVmgAwIBAgIU"]))
                .sign(),
        ),
        bearer(
            "kid path traversal",
            api_token(TestKey::Rs256)
                .with_header("kid", "../../../../dev/null")
                .sign(),
        ),
        bearer(
            "kid sql injection",
            api_token(TestKey::Rs256)
                .with_header("kid", "x' UNION SELECT 'secret")
                .sign(),
        ),
        bearer(
            "kid 1000 chars",
            api_token(TestKey::Rs256)
                .with_header("kid", "k".repeat(1000))
                .sign(),
        ),
        bearer(
            "kid with NUL",
            api_token(TestKey::Rs256)
                .with_header("kid", "rsa1\u{0}")
                .sign(),
        ),
        bearer(
            "kid number",
            api_token(TestKey::Rs256).with_header("kid", 1).sign(),
        ),
        bearer(
            "kid array",
            api_token(TestKey::Rs256)
                .with_header("kid", json!(["rsa1"]))
                .sign(),
        ),
        bearer(
            "ECDSA zero signature",
            format!("{es_input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64])),
        ),
        bearer(
            "ECDSA short signature",
            format!("{es_input}.{}", URL_SAFE_NO_PAD.encode([1u8; 63])),
        ),
        bearer(
            "ECDSA DER-encoded signature",
            format!(
                "{es_input}.{}",
                URL_SAFE_NO_PAD.encode([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
            ),
        ),
        bearer(
            "exp as string",
            api_token(TestKey::Rs256)
                .with_claim("exp", (n + 600).to_string())
                .sign(),
        ),
        bearer(
            "no exp",
            api_token(TestKey::Rs256).without_claim("exp").sign(),
        ),
        bearer(
            "expired",
            api_token(TestKey::Rs256).with_claim("exp", n - 3600).sign(),
        ),
        bearer(
            "nbf in the future",
            api_token(TestKey::Rs256).with_claim("nbf", n + 3600).sign(),
        ),
        bearer(
            "iat in the future",
            api_token(TestKey::Rs256).with_claim("iat", n + 3600).sign(),
        ),
        bearer(
            "exp NaN-like huge float",
            sign_raw(
                TestKey::Rs256,
                Algorithm::RS256,
                r#"{"alg":"RS256","kid":"rsa1"}"#,
                &format!(r#"{{"sub":"a","iss":"{ISS}","aud":"{AUD}","exp":1e400}}"#),
            ),
        ),
        bearer(
            "aud mixed array",
            api_token(TestKey::Rs256)
                .with_claim("aud", json!([AUD, 7]))
                .sign(),
        ),
        bearer(
            "aud object",
            api_token(TestKey::Rs256)
                .with_claim("aud", json!({"0": AUD}))
                .sign(),
        ),
        bearer(
            "aud prefix",
            api_token(TestKey::Rs256).with_claim("aud", "ap").sign(),
        ),
        bearer(
            "iss number",
            api_token(TestKey::Rs256).with_claim("iss", 1).sign(),
        ),
        bearer(
            "iss with trailing slash",
            api_token(TestKey::Rs256)
                .with_claim("iss", format!("{ISS}/"))
                .sign(),
        ),
        bearer(
            "sub object",
            api_token(TestKey::Rs256)
                .with_claim("sub", json!({"id": "admin"}))
                .sign(),
        ),
        bearer(
            "duplicate sub",
            sign_raw(
                TestKey::Rs256,
                Algorithm::RS256,
                r#"{"alg":"RS256","kid":"rsa1"}"#,
                &format!(
                    r#"{{"sub":"u","sub":"admin","iss":"{ISS}","aud":"{AUD}","exp":{}}}"#,
                    n + 600
                ),
            ),
        ),
        bearer(
            "duplicate alg",
            sign_raw(
                TestKey::Rs256,
                Algorithm::RS256,
                r#"{"alg":"RS256","alg":"none","kid":"rsa1"}"#,
                &claims(),
            ),
        ),
        bearer(
            "crit exp",
            api_token(TestKey::Rs256)
                .with_header("crit", json!(["exp"]))
                .sign(),
        ),
        bearer(
            "b64 false",
            api_token(TestKey::Rs256)
                .with_header("b64", false)
                .with_header("crit", json!(["b64"]))
                .sign(),
        ),
        bearer(
            "JWE five segments",
            format!("{}.a.b.c.d", b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)),
        ),
        bearer(
            "nested cty JWT",
            api_token(TestKey::Rs256).with_header("cty", "JWT").sign(),
        ),
        bearer(
            "zip header",
            api_token(TestKey::Rs256).with_header("zip", "DEF").sign(),
        ),
        bearer_raw(
            "padding inside the token",
            format!("Bearer {good_input}=.{good_sig}").as_bytes(),
            Expect::Challenge(StatusCode::BAD_REQUEST, "invalid_request"),
        ),
        bearer("padded signature", format!("{good}=")),
        bearer("non-canonical signature base64", malleable),
        bearer("homoglyph alg", unsigned("{\"alg\":\"RS256\u{0405}\"}")),
        bearer(
            "header is an array",
            format!("{}.{}.{}", b64("[]"), b64(&claims()), good_sig),
        ),
        bearer(
            "claims are a string",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"RS256"}"#),
                b64("\"x\""),
                good_sig
            ),
        ),
        bearer_raw(
            "oversize token",
            format!(
                "Bearer {}",
                api_token(TestKey::Rs256)
                    .with_claim("pad", "x".repeat(9000))
                    .sign()
            )
            .as_bytes(),
            Expect::Status(StatusCode::BAD_REQUEST),
        ),
        bearer_raw(
            "space inside token",
            format!("Bearer {} x", good).as_bytes(),
            Expect::Challenge(StatusCode::BAD_REQUEST, "invalid_request"),
        ),
        bearer_raw(
            "quote in token",
            b"Bearer ab\"c",
            Expect::Challenge(StatusCode::BAD_REQUEST, "invalid_request"),
        ),
        bearer_raw(
            "empty bearer",
            b"Bearer ",
            Expect::Challenge(StatusCode::BAD_REQUEST, "invalid_request"),
        ),
        bearer_raw(
            "non-ascii token",
            b"Bearer \xc3\xa9.a.b",
            Expect::Challenge(StatusCode::BAD_REQUEST, "invalid_request"),
        ),
        Case {
            name: "jwt: token in the query string is not a credential".into(),
            req: Request::get(format!("/api?access_token={good}"))
                .body(Body::empty())
                .unwrap(),
            expect: Expect::Challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"api\""),
        },
        Case {
            name: "jwt: token in the form body is not a credential".into(),
            req: Request::post("/api")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("access_token={good}")))
                .unwrap(),
            expect: Expect::Status(StatusCode::UNAUTHORIZED),
        },
    ];

    // Basic (RFC 7617 edge cases).
    let b = |s: &str| format!("Basic {}", STANDARD.encode(s)).into_bytes();
    v.extend([
        basic_case("no colon", &b("admin")),
        basic_case("empty user", &b(":correct horse")),
        basic_case("wrong password", &b("admin:wrong")),
        basic_case("unknown user", &b("root:correct horse")),
        basic_case("password case", &b("admin:Correct horse")),
        basic_case("NUL in password", &b("admin:correct horse\0")),
        basic_case("newline in user", &b("ad\nmin:correct horse")),
        basic_case("not base64", b"Basic ***"),
        basic_case("latin-1 bytes", b"Basic YWRt6W46eA=="),
        basic_case("scheme only", b"Basic"),
        basic_case("raw non-UTF-8 header", b"Basic \xff\xfe\xfd"),
        basic_case("user name too long", &b(&format!("{}:x", "a".repeat(300)))),
    ]);
    v.push(Case {
        name: "basic: 9 KiB header".into(),
        req: Request::get("/basic")
            .header("authorization", format!("Basic {}", "A".repeat(9 * 1024)))
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Status(StatusCode::BAD_REQUEST),
    });
    v.push(Case {
        name: "basic: two Authorization headers".into(),
        req: Request::get("/basic")
            .header("authorization", b("admin:correct horse"))
            .header("authorization", b("eve:eve-pass"))
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Status(StatusCode::BAD_REQUEST),
    });

    // Cloudflare Access.
    v.extend([
        cf_case(
            "identity header alone",
            Request::get("/cf").header("cf-access-authenticated-user-email", "ceo@acme.test"),
        ),
        cf_case(
            "org token",
            Request::get("/cf").header(
                "cf-access-jwt-assertion",
                cf_token().with_claim("type", "org").sign(),
            ),
        ),
        cf_case(
            "aud substring",
            Request::get("/cf").header(
                "cf-access-jwt-assertion",
                cf_token().with_claim("aud", json!([&CF_AUD[..16]])).sign(),
            ),
        ),
        cf_case(
            "other team",
            Request::get("/cf").header(
                "cf-access-jwt-assertion",
                cf_token()
                    .with_claim("iss", "https://evil.cloudflareaccess.com")
                    .sign(),
            ),
        ),
        cf_case(
            "cookie without opt-in",
            Request::get("/cf").header("cookie", format!("CF_Authorization={}", cf_token().sign())),
        ),
        cf_case(
            "service token not allowlisted",
            Request::get("/cf").header(
                "cf-access-jwt-assertion",
                cf_token()
                    .with_claim("sub", "")
                    .without_claim("email")
                    .with_claim("common_name", "x.access")
                    .sign(),
            ),
        ),
    ]);

    // Sessions (OWASP session management).
    let s = &w.session_cookie;
    let id = s.split_once('=').unwrap().1;
    v.extend([
        session_case(
            "replay after logout",
            Request::get("/session")
                .header("cookie", &w.logged_out_cookie)
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        session_case(
            "attacker-chosen id (fixation)",
            Request::get("/session")
                .header("cookie", format!("__Host-session={}", "A".repeat(43)))
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        session_case(
            "duplicated cookie",
            Request::get("/session")
                .header("cookie", format!("{s}; {s}"))
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        session_case(
            "oversize cookie",
            Request::get("/session")
                .header("cookie", format!("__Host-session={}", "A".repeat(4096)))
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        session_case(
            "id with a suffix",
            Request::get("/session")
                .header("cookie", format!("__Host-session={id}x"))
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        session_case(
            "raw id as store key",
            Request::get("/session")
                .header("cookie", format!("__Host-session={}", &"0".repeat(64)))
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        session_case(
            "cross-site POST",
            Request::post("/session")
                .header("cookie", s)
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
            StatusCode::FORBIDDEN,
        ),
        session_case(
            "same-site sibling POST",
            Request::post("/session")
                .header("cookie", s)
                .header("sec-fetch-site", "same-site")
                .body(Body::empty())
                .unwrap(),
            StatusCode::FORBIDDEN,
        ),
        session_case(
            "Origin null",
            Request::post("/session")
                .header("cookie", s)
                .header("origin", "null")
                .header("host", "app.test")
                .body(Body::empty())
                .unwrap(),
            StatusCode::FORBIDDEN,
        ),
        session_case(
            "cross-site WebSocket",
            Request::get("/session")
                .header("cookie", s)
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .header("origin", "https://evil.test")
                .header("host", "app.test")
                .body(Body::empty())
                .unwrap(),
            StatusCode::FORBIDDEN,
        ),
        session_case(
            "cross-site login (login CSRF)",
            Request::post("/login")
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
            StatusCode::FORBIDDEN,
        ),
    ]);

    // Policy bypass attempts on /admin (eve authenticates but is not an admin).
    let eve = b("eve:eve-pass");
    for path in [
        "/admin",
        "/admin/",
        "//admin",
        "/%61dmin",
        "/ADMIN",
        "/admin;x",
        "/admin%00",
    ] {
        let status = if path == "/admin" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        v.push(Case {
            name: format!("policy: {path}"),
            req: Request::get(path)
                .header("authorization", eve.clone())
                .body(Body::empty())
                .unwrap(),
            expect: Expect::Status(status),
        });
    }
    v.push(Case {
        name: "policy: method override header".into(),
        req: Request::post("/admin")
            .header("authorization", eve.clone())
            .header("x-http-method-override", "GET")
            .header("x-method-override", "GET")
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Status(StatusCode::FORBIDDEN),
    });
    v.push(Case {
        name: "policy: spoofed role header".into(),
        req: Request::get("/admin")
            .header("authorization", eve)
            .header("x-roles", "admin")
            .header("x-forwarded-user", "admin")
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Status(StatusCode::FORBIDDEN),
    });
    v.push(Case {
        name: "mixed: basic and session cookie".into(),
        req: Request::get("/admin")
            .header("authorization", b("admin:correct horse"))
            .header("cookie", s)
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Status(StatusCode::BAD_REQUEST),
    });
    v.push(Case {
        name: "mixed: bearer and Cloudflare".into(),
        req: Request::get("/admin")
            .header("authorization", format!("Bearer {good}"))
            .header("cf-access-jwt-assertion", cf_token().sign())
            .body(Body::empty())
            .unwrap(),
        expect: Expect::Status(StatusCode::BAD_REQUEST),
    });
    v
}

#[tokio::test]
async fn nothing_gets_through() {
    let w = world().await;
    let cases = cases(&w);
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    eprintln!("adversarial cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let a = send(&w.app, case.req).await;
        let (want, challenge) = match case.expect {
            Expect::Status(s) => (s, None),
            Expect::Challenge(s, c) => (s, Some(c)),
        };
        if a.status != want {
            failures.push(format!(
                "{}: got {}, want {want} ({})",
                case.name, a.status, a.body
            ));
        }
        if let Some(c) = challenge
            && !a.www_authenticate().iter().any(|h| h.contains(c))
        {
            failures.push(format!(
                "{}: WWW-Authenticate {:?} lacks {c}",
                case.name,
                a.www_authenticate()
            ));
        }
        if a.status.is_client_error()
            && a.status != StatusCode::NOT_FOUND
            && a.json()["error"].as_str().is_none()
        {
            failures.push(format!("{}: body is not the terse JSON error", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        w.runs.load(Ordering::SeqCst),
        0,
        "a handler ran for a hostile request"
    );
    assert_eq!(w.attacker.total_hits(), 0, "attacker key URLs were fetched");
    assert!(
        w.jwks.hits("/jwks.json") <= 2,
        "unknown kids caused a fetch storm: {}",
        w.jwks.hits("/jwks.json")
    );
}

#[tokio::test]
async fn the_same_world_accepts_honest_requests() {
    // Guards against a suite that passes because everything is refused.
    let w = world().await;
    let ok = |req: Request<Body>| async { send(&w.app, req).await.status };
    let basic = format!("Basic {}", STANDARD.encode("admin:correct horse"));
    assert_eq!(
        ok(Request::get("/basic")
            .header("authorization", &basic)
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    assert_eq!(
        ok(Request::get("/admin")
            .header("authorization", &basic)
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    let t = api_token(TestKey::Rs256).sign();
    assert_eq!(
        ok(Request::get("/api")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    let t = api_token(TestKey::Es256).sign();
    assert_eq!(
        ok(Request::get("/api")
            .header("authorization", format!("bearer {t}"))
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    assert_eq!(
        ok(Request::get("/cf")
            .header("cf-access-jwt-assertion", cf_token().sign())
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    assert_eq!(
        ok(Request::get("/session")
            .header("cookie", &w.session_cookie)
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    assert_eq!(
        ok(Request::post("/session")
            .header("cookie", &w.session_cookie)
            .header("sec-fetch-site", "same-origin")
            .body(Body::empty())
            .unwrap())
        .await,
        StatusCode::OK
    );
    assert_eq!(w.runs.load(Ordering::SeqCst), 7);
}
