//! OpenID Back-Channel Logout 1.0 end to end: logins through the test kit's provider on
//! loopback, logout tokens it signs, every invalid case of the spec refused (400), and
//! the named sessions ended on every instance (three sharing Redis, and PostgreSQL).

mod common;

use common::oidc_apps::{form, http, instance, login, me, post_logout};

use std::time::{Duration, Instant};

use portcullis::resource::ReplayCache;
use portcullis::revocation::Revocations;
use portcullis::session::{MemoryStore, SessionStore};
use portcullis::testing::{KeyServer, TEST_CLIENT_ID, TestKey, jwks, now};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_logout_token_ends_the_session_it_names() {
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let app = instance(
        &idp,
        std::sync::Arc::new(MemoryStore::new()),
        Revocations::memory(),
        ReplayCache::memory(),
    )
    .await;
    idp.set_login_user("alice", json!({"sid": "idp-session-1"}));
    let first = login(&app).await;
    idp.set_login_user("alice", json!({"sid": "idp-session-2"}));
    let second = login(&app).await;
    idp.set_login_user("bob", json!({"sid": "idp-session-3"}));
    let bob = login(&app).await;
    for s in [&first, &second, &bob] {
        assert_eq!(me(&app, s).await, StatusCode::OK);
    }
    // By sid: that session only.
    let token = idp
        .logout_token_builder(Some("alice"), Some("idp-session-1"))
        .sign();
    let res = post_logout(&app, form(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(me(&app, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &second).await, StatusCode::OK);
    // By sub: every session of alice from this provider, not bob's.
    let token = idp.logout_token_builder(Some("alice"), None).sign();
    assert_eq!(
        post_logout(&app, form(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(me(&app, &second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &bob).await, StatusCode::OK);
    // A login after the logout works (from the next second on).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    idp.set_login_user("alice", json!({"sid": "idp-session-4"}));
    let again = login(&app).await;
    assert_eq!(me(&app, &again).await, StatusCode::OK);
}

#[tokio::test]
async fn every_invalid_logout_token_is_a_400() {
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let app = instance(
        &idp,
        std::sync::Arc::new(MemoryStore::new()),
        Revocations::memory(),
        ReplayCache::memory(),
    )
    .await;
    idp.set_login_user("carol", json!({"sid": "c-1"}));
    let session = login(&app).await;
    let base = || idp.logout_token_builder(Some("carol"), Some("c-1"));
    let replayed = base().sign();
    assert_eq!(
        post_logout(&app, form(&replayed)).await.status(),
        StatusCode::OK
    );
    let mut cases: Vec<(&str, String)> = vec![
        ("bad signature", {
            let t = base().sign();
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            parts[2] = base().sign().split('.').nth(2).unwrap().to_owned();
            parts.join(".")
        }),
        (
            "another key",
            portcullis::testing::TokenBuilder::new(TestKey::Rs256Next)
                .with_claim("iss", idp.issuer())
                .with_claim("aud", TEST_CLIENT_ID)
                .with_claim("sub", "carol")
                .with_claim("jti", "x1")
                .with_claim(
                    "events",
                    json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
                )
                .sign(),
        ),
        (
            "another iss",
            base().with_claim("iss", "https://evil.test").sign(),
        ),
        (
            "another aud",
            base().with_claim("aud", "another-client").sign(),
        ),
        ("no events", base().without_claim("events").sign()),
        (
            "other event",
            base()
                .with_claim("events", json!({"https://example.com/other": {}}))
                .sign(),
        ),
        (
            "event not an object",
            base()
                .with_claim(
                    "events",
                    json!({"http://schemas.openid.net/event/backchannel-logout": true}),
                )
                .sign(),
        ),
        ("nonce present", base().with_claim("nonce", "n").sign()),
        (
            "neither sid nor sub",
            base().without_claim("sid").without_claim("sub").sign(),
        ),
        ("no jti", base().without_claim("jti").sign()),
        (
            "expired",
            base()
                .with_claim("iat", now() - 400)
                .with_claim("exp", now() - 200)
                .sign(),
        ),
        (
            "issued too long ago",
            base().with_claim("iat", now() - 3600).sign(),
        ),
        ("replayed jti", replayed),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    cases.push(("no token", String::new()));
    for (name, token) in cases {
        let body = if token.is_empty() {
            "other=1".to_owned()
        } else {
            form(&token)
        };
        let res = post_logout(&app, body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{name}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{name}");
    }
    let twice = format!("{}&{}", form(&base().sign()), form(&base().sign()));
    assert_eq!(
        post_logout(&app, twice).await.status(),
        StatusCode::BAD_REQUEST
    );
    // The one valid token above ended carol's session; nothing else changed it back.
    assert_eq!(me(&app, &session).await, StatusCode::UNAUTHORIZED);
}

/// Three instances sharing a Redis store and revocation list (and one on PostgreSQL):
/// a logout posted to one ends the session everywhere, within 100 ms here.
#[cfg(all(feature = "redis", feature = "postgres"))]
#[tokio::test]
async fn a_logout_reaches_every_instance() {
    use portcullis::session::{PostgresStore, RedisStore};
    let Some(url) = common::redis_url() else {
        return;
    };
    let prefix = common::unique_prefix("pcbcl");
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(
        RedisStore::builder(&url)
            .with_prefix(&prefix)
            .connect()
            .await
            .unwrap(),
    );
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(
            instance(
                &idp,
                store.clone(),
                Revocations::redis(&url, &prefix).await.unwrap(),
                ReplayCache::redis(&url, &prefix).await.unwrap(),
            )
            .await,
        );
    }
    idp.set_login_user("dave", json!({"sid": "d-1"}));
    let session = login(&apps[0]).await;
    for a in &apps {
        assert_eq!(me(a, &session).await, StatusCode::OK);
    }
    let token = idp.logout_token_builder(Some("dave"), Some("d-1")).sign();
    assert_eq!(
        post_logout(&apps[1], form(&token)).await.status(),
        StatusCode::OK
    );
    let posted = Instant::now();
    for a in &apps {
        while me(a, &session).await != StatusCode::UNAUTHORIZED {
            assert!(
                posted.elapsed() < Duration::from_secs(4),
                "an instance still honours the session"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // The same token on another instance: a replay.
    assert_eq!(
        post_logout(&apps[2], form(&token)).await.status(),
        StatusCode::BAD_REQUEST
    );

    // PostgreSQL sessions, the list on Redis.
    let Ok(pg) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") else {
        return;
    };
    let pg_store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(
        PostgresStore::builder(&pg)
            .with_table(common::stores::PG_TABLE)
            .connect()
            .await
            .unwrap(),
    );
    let pg_apps = [
        instance(
            &idp,
            pg_store.clone(),
            Revocations::redis(&url, &prefix).await.unwrap(),
            ReplayCache::redis(&url, &prefix).await.unwrap(),
        )
        .await,
        instance(
            &idp,
            pg_store,
            Revocations::redis(&url, &prefix).await.unwrap(),
            ReplayCache::redis(&url, &prefix).await.unwrap(),
        )
        .await,
    ];
    idp.set_login_user(&common::stores::unique("erin-"), json!({}));
    let session = login(&pg_apps[0]).await;
    assert_eq!(me(&pg_apps[1], &session).await, StatusCode::OK);
    let subject = {
        let ctx: serde_json::Value = http()
            .get(format!("{}/me", pg_apps[0].base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ctx["subject"]
            .as_str()
            .unwrap()
            .rsplit('#')
            .next()
            .unwrap()
            .to_owned()
    };
    let token = idp.logout_token_builder(Some(&subject), None).sign();
    assert_eq!(
        post_logout(&pg_apps[0], form(&token)).await.status(),
        StatusCode::OK
    );
    let posted = Instant::now();
    while me(&pg_apps[1], &session).await != StatusCode::UNAUTHORIZED {
        assert!(posted.elapsed() < Duration::from_secs(4));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
