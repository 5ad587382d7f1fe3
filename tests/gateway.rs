//! Gateway mode through real routers: identity headers an origin can trust, signed
//! assertions verified by an origin over loopback (with key rotation), and the
//! forward-auth endpoint judging every path spelling as an origin routes it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::any;
use axum::{Json, Router};
use common::{Answer, basic, get as req, send};
use http::{HeaderMap, Method, StatusCode};
use portcullis::basic::BasicAuth;
use portcullis::gateway::{AssertionSigner, ForwardAuth, IdentityHeaders};
use portcullis::iap::IdentityProxy;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::policy::{RouteRules, Rule};
use portcullis::revocation::Revocations;
use portcullis::testing::{TestKey, TokenBuilder, now};
use portcullis::{AuthContext, AuthLayer, User};
use serde_json::{Value, json};

/// Echoes the headers the origin received.
async fn echo(headers: HeaderMap) -> Json<Value> {
    let mut out = serde_json::Map::new();
    for (k, v) in &headers {
        let entry = out.entry(k.as_str()).or_insert_with(|| json!([]));
        entry
            .as_array_mut()
            .unwrap()
            .push(json!(String::from_utf8_lossy(v.as_bytes())));
    }
    Json(Value::Object(out))
}

fn users() -> BasicAuth {
    BasicAuth::new("edge")
        .with_user(
            "alice",
            User::plain("pw")
                .with_roles(["member"])
                .with_email("alice@example.com"),
        )
        .with_user("root", User::plain("pw").with_roles(["admin"]))
}

fn bearer(revocations: &Revocations) -> BearerAuth {
    BearerAuth::new(
        "api",
        JwtVerifier::new(Issuer::new(
            TestKey::Rs256.key_set(),
            Validation::new([Algorithm::RS256]).with_audience("api"),
        ))
        .with_token_cache(TokenCache::new())
        .with_revocations(revocations.clone()),
    )
}

#[tokio::test]
async fn client_identity_headers_never_reach_the_origin() {
    let app = Router::new()
        .route("/{*path}", any(echo))
        .layer(IdentityHeaders::new().layer())
        .layer(AuthLayer::required(users()));
    let mut r = req("/x").header("authorization", basic("alice", "pw"));
    for (k, v) in [
        ("X-Auth-Subject", "root"),
        ("x-auth-subject", "root2"),
        ("X-AUTH-ROLES", "admin"),
        ("X_Auth_Roles", "admin"),
        ("x-auth-email", "root@example.com"),
        ("x-auth-whatever", "1"),
        ("x-forwarded-user", "root"),
        ("remote-user", "root"),
        ("connection", "x-auth-subject"),
    ] {
        r = r.header(k, v);
    }
    let got = send(&app, r.body(Body::empty()).unwrap()).await.json();
    assert_eq!(got["x-auth-subject"], json!(["alice"]));
    assert_eq!(got["x-auth-roles"], json!(["member"]));
    assert_eq!(got["x-auth-email"], json!(["alice@example.com"]));
    assert_eq!(got["x-auth-scheme"], json!(["basic"]));
    for gone in [
        "x_auth_roles",
        "x-auth-whatever",
        "x-forwarded-user",
        "remote-user",
        "connection",
    ] {
        assert!(got.get(gone).is_none(), "{gone} reached the origin: {got}");
    }
}

#[tokio::test]
async fn claims_with_separators_and_line_breaks_are_encoded() {
    let revocations = Revocations::memory();
    let app = Router::new()
        .route("/{*path}", any(echo))
        .layer(IdentityHeaders::new().layer())
        .layer(AuthLayer::required(bearer(&revocations)));
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", "api")
        .with_claim("sub", "eve\r\nX-Auth-Roles: admin")
        .with_claim("roles", json!(["member,admin", "x;y", "zoë"]))
        .with_claim("email", "eve@example.com, admin@example.com")
        .sign();
    let got = send(
        &app,
        req("/x")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(
        got["x-auth-subject"],
        json!(["eve%0D%0AX-Auth-Roles:%20admin"])
    );
    assert_eq!(
        got["x-auth-roles"],
        json!(["member%2Cadmin,x%3By,zo%C3%AB"])
    );
    assert_eq!(
        got["x-auth-email"],
        json!(["eve@example.com%2C%20admin@example.com"])
    );
}

/// A P-256 key pair (private PKCS#8 PEM, public SPKI PEM).
fn key_pair() -> (String, String) {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    (k.serialize_pem(), k.public_key_pem())
}

const GATEWAY: &str = "https://gateway.test";
const ORIGIN: &str = "https://origin.test";

/// The gateway (Basic at the edge, signed assertions) and its JWKS on loopback; the
/// origin verifying the assertion.
async fn gateway_and_origin(
    signer: AssertionSigner,
) -> (Router, Router, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let served = signer.router::<()>("/jwks.json");
    let server = tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let gateway = Router::new()
        .route("/{*path}", any(echo))
        .layer(IdentityHeaders::new().with_assertion(signer).layer())
        .layer(AuthLayer::required(users()));
    let origin_auth = IdentityProxy::gateway(GATEWAY, ORIGIN, &jwks_url).unwrap();
    let origin = Router::new()
        .route(
            "/{*path}",
            any(|ctx: AuthContext| async move { Json(json!(ctx)) }),
        )
        .layer(AuthLayer::required(origin_auth));
    (gateway, origin, server)
}

async fn assertion_from(gateway: &Router) -> String {
    let got = send(
        gateway,
        req("/x")
            .header("authorization", basic("alice", "pw"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json();
    got["x-auth-assertion"][0].as_str().unwrap().to_owned()
}

async fn at_origin(origin: &Router, assertion: &str) -> Answer {
    send(
        origin,
        req("/x")
            .header("x-auth-assertion", assertion)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_origin_verifies_the_gateways_assertion() {
    let (private, public) = key_pair();
    let signer = AssertionSigner::es256(GATEWAY, ORIGIN, "k1", &private, &public).unwrap();
    let (gateway, origin, _server) = gateway_and_origin(signer).await;
    let assertion = assertion_from(&gateway).await;
    let a = at_origin(&origin, &assertion).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "alice");
    assert_eq!(a.json()["roles"], json!(["member"]));
    assert_eq!(a.json()["email"], "alice@example.com");
    // Plain identity headers alone are nothing to the origin.
    let plain = send(
        &origin,
        req("/x")
            .header("x-auth-subject", "root")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED);

    // Another audience, a stale one, a tampered one: refused.
    let other_aud =
        AssertionSigner::es256(GATEWAY, "https://other.test", "k1", &private, &public).unwrap();
    let ctx = AuthContext::builder("alice", portcullis::Scheme::Basic).build();
    assert_eq!(
        at_origin(&origin, &other_aud.sign(&ctx).unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let stale = {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
        let claims = json!({"iss": GATEWAY, "aud": ORIGIN, "sub": "alice", "iat": now() - 300, "exp": now() - 240, "jti": "x"});
        sign_es256(&private, &header, &claims)
    };
    assert_eq!(
        at_origin(&origin, &stale).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = assertion.clone();
    tampered.insert(tampered.len() / 2, 'A');
    assert_eq!(
        at_origin(&origin, &tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Signs with a private PEM through the crate's own signer (a second signer instance
/// with the same key), for hand-made claims.
fn sign_es256(private: &str, header: &Value, claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let body: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).unwrap();
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    )
    .unwrap();
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// Rotation: the new key signs while the old one stays published; once it is no longer
/// published (and the origin's key cache learns it), old assertions are refused.
#[tokio::test]
async fn gateway_keys_rotate() {
    let (old_private, old_public) = key_pair();
    let (new_private, new_public) = key_pair();
    let old = AssertionSigner::es256(GATEWAY, ORIGIN, "k1", &old_private, &old_public).unwrap();
    let rotated = AssertionSigner::es256(GATEWAY, ORIGIN, "k2", &new_private, &new_public)
        .unwrap()
        .with_previous_key("k1", &old_public)
        .unwrap();
    let ctx = AuthContext::builder("alice", portcullis::Scheme::Basic).build();
    let by_old = old.sign(&ctx).unwrap();
    let (_, origin, _server) = gateway_and_origin(rotated).await;
    assert_eq!(
        at_origin(&origin, &by_old).await.status,
        StatusCode::OK,
        "old key still published"
    );
    let only_new =
        AssertionSigner::es256(GATEWAY, ORIGIN, "k2", &new_private, &new_public).unwrap();
    let by_new = only_new.sign(&ctx).unwrap();
    assert_eq!(at_origin(&origin, &by_new).await.status, StatusCode::OK);
    let (_, origin_after, _server2) = gateway_and_origin(only_new).await;
    assert_eq!(
        at_origin(&origin_after, &by_old).await.status,
        StatusCode::UNAUTHORIZED,
        "old key retired"
    );
    assert!(
        common::refusal(AssertionSigner::es256(
            GATEWAY,
            ORIGIN,
            "k3",
            &new_private,
            &old_public
        ))
        .contains("do not match"),
        "mismatched halves"
    );
}

fn forward_app(revocations: &Revocations) -> Router {
    let rules = RouteRules::new()
        .with_any_method("/admin", Rule::role("admin"))
        .with_any_method("/admin/{*rest}", Rule::role("admin"))
        .with_fallback(Rule::authenticated());
    ForwardAuth::new(AuthLayer::required(users()).or(bearer(revocations)), rules)
        .with_public(["/public/{*rest}"])
        .unwrap()
        .router("/auth/forward")
}

fn ask(method: &str, uri: &str, auth: Option<&str>) -> http::Request<Body> {
    let mut r = req("/auth/forward")
        .header("x-original-method", method)
        .header("x-original-uri", uri);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let mut r = r.body(Body::empty()).unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    r
}

#[tokio::test]
async fn forward_auth_judges_every_spelling_as_the_origin_routes_it() {
    let revocations = Revocations::memory();
    let app = forward_app(&revocations);
    let member = basic("alice", "pw");
    let admin = basic("root", "pw");
    // Public: no credential asked, no identity sent.
    let open = send(&app, ask("GET", "/public/logo.png", None)).await;
    assert_eq!(open.status, StatusCode::OK);
    assert!(open.headers.get("x-auth-subject").is_none());
    // No credential elsewhere: 401 with every scheme's challenge.
    let anon = send(&app, ask("GET", "/notes", None)).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.www_authenticate().len(), 2);
    // A member anywhere but admin: 200 with the identity.
    let ok = send(&app, ask("POST", "/notes/1?x=2", Some(&member))).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.headers["x-auth-subject"], "alice");
    assert_eq!(ok.headers["x-auth-roles"], "member");
    assert_eq!(
        send(&app, ask("HEAD", "/notes", Some(&member)))
            .await
            .status,
        StatusCode::OK
    );
    // The admin path in every spelling: never 200 for a member.
    for uri in [
        "/admin",
        "/admin/users",
        "/%61dmin",
        "/%61%64%6d%69%6e/users",
        "//admin",
        "/./admin",
        "/x/../admin",
        "/public/../admin",
        "/admin;jsessionid=1",
        "/admin/",
    ] {
        let a = send(&app, ask("GET", uri, Some(&member))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{uri}");
        let a = send(&app, ask("GET", uri, Some(&admin))).await;
        assert_eq!(a.status, StatusCode::OK, "{uri} for an admin");
    }
    for uri in [
        "/admin%2Fusers",
        "/x%2F..%2Fadmin",
        "/admin%5Cusers",
        "/%2561dmin",
        "/a%zz",
        "admin",
    ] {
        let a = send(&app, ask("GET", uri, Some(&member))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
    }
    // Conflicting or missing descriptions.
    let mut both = ask("GET", "/notes", Some(&member));
    both.headers_mut()
        .insert("x-forwarded-uri", "/admin".parse().unwrap());
    assert_eq!(send(&app, both).await.status, StatusCode::BAD_REQUEST);
    let none = req("/auth/forward")
        .header("authorization", member.clone())
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, none).await.status, StatusCode::BAD_REQUEST);
    // Identity headers the client sent are never echoed.
    let mut spoof = ask("GET", "/notes", Some(&member));
    spoof
        .headers_mut()
        .insert("x-auth-roles", "admin".parse().unwrap());
    spoof
        .headers_mut()
        .insert("x-auth-subject", "root".parse().unwrap());
    let a = send(&app, spoof).await;
    assert_eq!(a.headers["x-auth-subject"], "alice");
    assert_eq!(a.headers["x-auth-roles"], "member");
}

#[tokio::test]
async fn forward_auth_applies_revocations() {
    let revocations = Revocations::memory();
    let app = forward_app(&revocations);
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", "api")
        .with_claim("sub", "bob")
        .with_claim("jti", "fwd-1")
        .with_claim("exp", now() + 600)
        .sign();
    let auth = format!("Bearer {token}");
    assert_eq!(
        send(&app, ask("GET", "/notes", Some(&auth))).await.status,
        StatusCode::OK
    );
    revocations
        .revoke_token("", "fwd-1", now() + 600)
        .await
        .unwrap();
    let a = send(&app, ask("GET", "/notes", Some(&auth))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.www_authenticate()
            .iter()
            .any(|c| c.contains("invalid_token"))
    );
    let _ = Method::GET;
    let _ = Duration::ZERO;
}

/// Envoy asks at its `path_prefix` followed by the original path: the answer is the one
/// the described request gets, whatever path the question arrived on.
#[tokio::test]
async fn forward_auth_answers_under_its_path_as_envoy_asks() {
    let app = forward_app(&Revocations::memory());
    let member = basic("alice", "pw");
    let at = |endpoint: &str, uri: &str, auth: Option<&str>| {
        let mut r = ask("GET", uri, auth);
        *r.uri_mut() = endpoint.parse().unwrap();
        r
    };
    for endpoint in [
        "/auth/forward/",
        "/auth/forward/admin",
        "/auth/forward/public/x",
    ] {
        // A member on an admin page: refused, though the endpoint's own path says public.
        let a = send(&app, at(endpoint, "/admin", Some(&member))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{endpoint}");
        let a = send(&app, at(endpoint, "/notes", Some(&member))).await;
        assert_eq!(a.status, StatusCode::OK, "{endpoint}");
        assert_eq!(a.headers["x-auth-subject"], "alice", "{endpoint}");
        let a = send(&app, at(endpoint, "/notes", None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
    // Beside the endpoint is not under it.
    let a = send(&app, at("/auth/forwarded", "/notes", Some(&member))).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Mounted with a trailing slash, or at the root, the same.
    for mount in ["/check/", "/"] {
        let app: Router = ForwardAuth::new(
            AuthLayer::required(users()),
            RouteRules::new().with_fallback(Rule::authenticated()),
        )
        .router(mount);
        let under = format!("{}/deep/path", mount.trim_end_matches('/'));
        for endpoint in [mount, under.as_str()] {
            let a = send(&app, at(endpoint, "/notes", Some(&member))).await;
            assert_eq!(a.status, StatusCode::OK, "{mount} {endpoint}");
        }
    }
}

/// A forward-auth request for `uri` as nginx describes it, with extra headers.
fn ask_with(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
    let mut r = ask(method, uri, None);
    for (name, value) in headers {
        r.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    r
}

#[tokio::test]
async fn forward_auth_judges_the_sites_own_host_and_scheme() {
    use portcullis::LoginRedirect;
    use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
    let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    let session = manager
        .login(&HeaderMap::new(), NewSession::new("alice"))
        .await
        .unwrap();
    let cookie = session.pair().to_owned();
    let layer =
        AuthLayer::required(manager.authenticator()).with_responder(LoginRedirect::new("/login"));
    let app = ForwardAuth::new(
        layer,
        RouteRules::new().with_fallback(Rule::authenticated()),
    )
    .router::<()>("/auth/forward");
    // A browser's same-site POST with its session, as the proxy passes it to this endpoint
    // (whose own host is not the site's); no Sec-Fetch-Site, so Origin decides.
    let post = |extra: &[(&str, &str)]| {
        let mut h = vec![
            ("cookie", cookie.as_str()),
            ("origin", "https://app.example"),
            ("host", "127.0.0.1:3007"),
        ];
        h.extend_from_slice(extra);
        ask_with("POST", "/notes", &h)
    };
    let site = [
        ("x-forwarded-host", "app.example"),
        ("x-forwarded-proto", "https"),
    ];
    let a = send(&app, post(&site)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["x-auth-subject"], "alice");
    // Judged against this endpoint's host, the same request looks cross-site.
    assert_eq!(send(&app, post(&[])).await.status, StatusCode::FORBIDDEN);
    // Another scheme than the Origin's: not the same origin.
    let http = [
        ("x-forwarded-host", "app.example"),
        ("x-forwarded-proto", "http"),
    ];
    assert_eq!(send(&app, post(&http)).await.status, StatusCode::FORBIDDEN);
    // A cross-site Origin stays cross-site whatever the forwarded host.
    let mut evil = post(&site);
    evil.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(send(&app, evil).await.status, StatusCode::FORBIDDEN);
    // Malformed or repeated forwarding headers: 400, never judged.
    for bad in [
        vec![("x-forwarded-proto", "ftp")],
        vec![("x-forwarded-host", "user@app.example")],
        vec![("x-forwarded-host", "app.example/x")],
        vec![
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-host", "evil.example"),
        ],
        vec![
            ("x-forwarded-proto", "https"),
            ("x-forwarded-proto", "http"),
        ],
    ] {
        let a = send(&app, post(&bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    // A browser without a session is sent to sign in, back to the page it asked for.
    let page = ask_with(
        "GET",
        "/notes/7?tab=2",
        &[("accept", "text/html"), ("x-forwarded-host", "app.example")],
    );
    let a = send(&app, page).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login?next=%2Fnotes%2F7%3Ftab%3D2");
}
