//! Where a bearer token may come from: the `Authorization` header, a
//! `Sec-WebSocket-Protocol` entry, a query parameter on WebSocket upgrades, a cookie.
//! Exactly one per request.

mod common;

use axum::Router;
use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::AuthLayer;
use portcullis::jwt::BearerAuth;
use portcullis::testing::{TEST_AUDIENCE, TestKey, TokenBuilder, now};

fn bearer() -> BearerAuth {
    use portcullis::jwt::{Algorithm, Issuer, JwtVerifier, Validation};
    let v = Validation::new([Algorithm::RS256]).with_audience(TEST_AUDIENCE);
    BearerAuth::new(
        "api",
        JwtVerifier::new(Issuer::new(TestKey::Rs256.key_set(), v)),
    )
}

fn token(sub: &str) -> String {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("sub", sub)
        .with_claim("aud", TEST_AUDIENCE)
        .with_claim("exp", now() + 600)
        .sign()
}

fn app(b: BearerAuth) -> Router {
    Probe::default().router("/ws").layer(AuthLayer::required(b))
}

fn upgrade(uri: &str) -> http::request::Builder {
    get(uri)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("host", "app.example")
}

async fn status(app: &Router, req: http::request::Builder) -> StatusCode {
    send(app, req.body(Body::empty()).unwrap()).await.status
}

#[tokio::test]
async fn websocket_protocol_entry() {
    let app = app(bearer().with_websocket_protocol("bearer.").unwrap());
    let t = token("alice");
    let a = send(
        &app,
        upgrade("/ws")
            .header("sec-websocket-protocol", format!("chat, bearer.{t}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "alice");
    // The entry counts on upgrade requests only.
    let plain = get("/ws").header("sec-websocket-protocol", format!("bearer.{t}"));
    assert_eq!(status(&app, plain).await, StatusCode::UNAUTHORIZED);
    // Two token entries, or an entry and a header: 400.
    let two = upgrade("/ws").header("sec-websocket-protocol", format!("bearer.{t}, bearer.{t}"));
    assert_eq!(status(&app, two).await, StatusCode::BAD_REQUEST);
    let both = upgrade("/ws")
        .header("sec-websocket-protocol", format!("bearer.{t}"))
        .header("authorization", format!("Bearer {t}"));
    assert_eq!(status(&app, both).await, StatusCode::BAD_REQUEST);
    // A bad token in the entry is as bad as anywhere else.
    let bad = upgrade("/ws").header("sec-websocket-protocol", "chat, bearer.e30.e30.sig");
    assert_eq!(status(&app, bad).await, StatusCode::UNAUTHORIZED);
    // Protocols without the prefix are no credential.
    let none = upgrade("/ws").header("sec-websocket-protocol", "chat");
    assert_eq!(status(&app, none).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn query_parameter_only_on_upgrades() {
    let app = app(bearer()
        .with_query_parameter_on_upgrade("access_token")
        .unwrap());
    let t = token("bob");
    assert_eq!(
        status(&app, upgrade(&format!("/ws?access_token={t}"))).await,
        StatusCode::OK
    );
    // Percent-encoded (a `.` as %2E) is decoded.
    let encoded = t.replacen('.', "%2E", 1);
    assert_eq!(
        status(&app, upgrade(&format!("/ws?x=1&access_token={encoded}"))).await,
        StatusCode::OK
    );
    // On a plain request the parameter is not read at all.
    assert_eq!(
        status(&app, get(&format!("/ws?access_token={t}"))).await,
        StatusCode::UNAUTHORIZED
    );
    let twice = upgrade(&format!("/ws?access_token={t}&access_token={t}"));
    assert_eq!(status(&app, twice).await, StatusCode::BAD_REQUEST);
    let both =
        upgrade(&format!("/ws?access_token={t}")).header("authorization", format!("Bearer {t}"));
    assert_eq!(status(&app, both).await, StatusCode::BAD_REQUEST);
    assert_eq!(
        status(&app, upgrade("/ws?access_token=%FF%FE")).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn cookie_is_csrf_guarded() {
    let app = app(bearer().with_cookie("access_token").unwrap());
    let t = token("carol");
    let cookie = format!("access_token={t}");
    assert_eq!(
        status(&app, get("/ws").header("cookie", &cookie)).await,
        StatusCode::OK
    );
    let cross = get("/ws")
        .method("POST")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site");
    assert_eq!(status(&app, cross).await, StatusCode::FORBIDDEN);
    let cross_ws = upgrade("/ws")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example");
    assert_eq!(status(&app, cross_ws).await, StatusCode::FORBIDDEN);
    let same = get("/ws")
        .method("POST")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin");
    assert_eq!(status(&app, same).await, StatusCode::OK);
    let both = get("/ws")
        .header("cookie", &cookie)
        .header("authorization", format!("Bearer {t}"));
    assert_eq!(status(&app, both).await, StatusCode::BAD_REQUEST);
    let dup = get("/ws").header("cookie", format!("{cookie}; {cookie}"));
    assert_eq!(status(&app, dup).await, StatusCode::BAD_REQUEST);
}

/// A token read from a cookie or the query is outside the layer's `Authorization`
/// cap: an oversized one is refused before it is copied or verified.
#[tokio::test]
async fn oversized_tokens_from_other_sources_are_refused() {
    let app = app(bearer()
        .with_cookie("access_token")
        .unwrap()
        .with_query_parameter_on_upgrade("access_token")
        .unwrap());
    let huge = "a".repeat(portcullis::DEFAULT_MAX_CREDENTIAL_BYTES + 1);
    let by_cookie = get("/ws").header("cookie", format!("access_token={huge}"));
    assert_eq!(status(&app, by_cookie).await, StatusCode::UNAUTHORIZED);
    let by_query = upgrade(&format!("/ws?access_token={huge}"));
    assert_eq!(status(&app, by_query).await, StatusCode::UNAUTHORIZED);
    // Within the cap, a good token still passes.
    let t = token("erin");
    let ok = get("/ws").header("cookie", format!("access_token={t}"));
    assert_eq!(status(&app, ok).await, StatusCode::OK);
}

#[tokio::test]
async fn the_header_alone_by_default() {
    let app = app(bearer());
    let t = token("dave");
    assert_eq!(
        status(
            &app,
            get("/ws").header("authorization", format!("Bearer {t}"))
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status(
            &app,
            get("/ws").header("cookie", format!("access_token={t}"))
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let ws = upgrade(&format!("/ws?access_token={t}"))
        .header("sec-websocket-protocol", format!("bearer.{t}"));
    assert_eq!(status(&app, ws).await, StatusCode::UNAUTHORIZED);
}

#[test]
fn names_are_checked() {
    for bad in ["", "a b", "bearer,", "x=y", &"a".repeat(65), "é"] {
        let e = common::refusal(bearer().with_websocket_protocol(bad));
        assert!(
            e.contains("not a WebSocket subprotocol prefix"),
            "{bad:?}: {e}"
        );
        let e = common::refusal(bearer().with_cookie(bad));
        assert!(e.contains("not a cookie name"), "{bad:?}: {e}");
        assert!(
            common::refusal(bearer().with_query_parameter_on_upgrade(bad))
                .contains("not a query parameter name"),
            "{bad:?}"
        );
    }
    assert!(
        bearer()
            .with_websocket_protocol("base64url.bearer.authorization.k8s.io.")
            .is_ok()
    );
}
