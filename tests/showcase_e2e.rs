//! End to end: the showcase app on a free loopback port, every route driven with a real
//! HTTP client, once per session store (memory always; Redis and Postgres when set).

#[path = "../examples/showcase/app.rs"]
#[allow(dead_code)]
mod app;

#[path = "common/redis_servers.rs"]
mod redis_servers;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct Running {
    base: String,
    showcase: app::Showcase,
    client: Client,
}

async fn start(store_url: Option<String>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = app::Config {
        session_store_url: store_url,
        admin_password: Some("admin-pass-123".into()),
        public_url: Some(base.clone()),
        ..app::Config::default()
    };
    let showcase = app::build(config).await.expect("showcase builds");
    let router = showcase.router.clone();
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    Running {
        base,
        showcase,
        client,
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    async fn get(&self, path: &str, auth: &Auth<'_>) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(path)), auth).await
    }
    async fn send(&self, req: reqwest::RequestBuilder, auth: &Auth<'_>) -> (StatusCode, Value) {
        let req = match auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Cf(t) => req.header("cf-access-jwt-assertion", *t),
            Auth::Cookie(c) => req.header("cookie", *c),
        };
        let res = req.send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
    async fn login(&self, user: &str, password: &str) -> (StatusCode, Option<String>) {
        let res = self
            .client
            .post(self.url("/session/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        let cookie = res
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        (res.status(), cookie)
    }
}

enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
    Cf(&'a str),
    Cookie(&'a str),
}

async fn drive(r: &Running) {
    let s = &r.showcase;
    let admin = Auth::Basic(&s.admin_user, &s.admin_password);
    assert_eq!(
        r.get("/health", &Auth::None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        r.get("/whoami", &Auth::None).await,
        (StatusCode::OK, json!({"authenticated": false}))
    );
    let (st, who) = r.get("/whoami", &admin).await;
    assert_eq!(
        (st, who["scheme"].clone()),
        (StatusCode::OK, json!("basic"))
    );
    assert_eq!(
        r.get("/whoami", &Auth::Basic("admin", "wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Basic.
    let (st, me) = r.get("/basic/me", &admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(
        r.get("/basic/me", &Auth::None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Bearer from the dev issuer (fetched over HTTP from its loopback JWKS).
    let token = s.dev_token.as_deref().unwrap();
    let (st, me) = r.get("/api/me", &Auth::Bearer(token)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (
            me["subject"].clone(),
            me["tenant"].clone(),
            me["scopes"].clone()
        ),
        (json!("alice"), json!("acme"), json!(["posts:read"]))
    );
    assert_eq!(
        r.get("/api/me", &Auth::Bearer("a.b.c")).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Cloudflare Access.
    let cf = s.dev_cf_token.as_deref().unwrap();
    let (st, me) = r.get("/cf/me", &Auth::Cf(cf)).await;
    assert_eq!(
        (st, me["scheme"].clone(), me["email"].clone()),
        (
            StatusCode::OK,
            json!("cloudflare_access"),
            json!("bob@example.com")
        )
    );
    assert_eq!(
        r.get("/cf/me", &Auth::None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Sessions.
    assert_eq!(r.login("alice", "nope").await.0, StatusCode::UNAUTHORIZED);
    let (st, alice) = r.login("alice", &s.demo_password).await;
    assert_eq!(st, StatusCode::OK);
    let alice = alice.unwrap();
    let (_, bob) = r.login("bob", &s.demo_password).await;
    let bob = bob.unwrap();
    let (st, me) = r.get("/session/me", &Auth::Cookie(&alice)).await;
    assert_eq!(
        (st, me["subject"].clone(), me["scheme"].clone()),
        (StatusCode::OK, json!("alice"), json!("session"))
    );
    assert_eq!(
        r.get("/whoami", &Auth::Cookie(&alice)).await.1["subject"],
        "alice"
    );

    // Admin: role admin, any scheme.
    assert_eq!(r.get("/admin", &admin).await.0, StatusCode::OK);
    assert_eq!(
        r.get("/admin", &Auth::Cookie(&alice)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        r.get("/admin", &Auth::Bearer(token)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        r.get("/admin", &Auth::None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Posts: read owner/shared/admin; write owner/admin.
    assert_eq!(
        r.get("/posts/1", &Auth::Cookie(&alice)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        r.get("/posts/1", &Auth::Cookie(&bob)).await.0,
        StatusCode::OK,
        "shared with bob"
    );
    assert_eq!(
        r.get("/posts/2", &Auth::Cookie(&alice)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(r.get("/posts/2", &admin).await.0, StatusCode::OK);
    assert_eq!(r.get("/posts/9", &admin).await.0, StatusCode::NOT_FOUND);
    let put = |c: &str| {
        r.client
            .put(r.url("/posts/1"))
            .header("cookie", c)
            .body("edited")
    };
    assert_eq!(
        r.send(put(&bob), &Auth::None).await.0,
        StatusCode::FORBIDDEN,
        "shared is read-only"
    );
    assert_eq!(r.send(put(&alice), &Auth::None).await.0, StatusCode::OK);
    assert_eq!(
        r.send(r.client.delete(r.url("/posts/2")), &Auth::Cookie(&alice))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        r.send(r.client.delete(r.url("/posts/2")), &admin).await.0,
        StatusCode::NO_CONTENT
    );
    // Cross-site unsafe request with the cookie: refused.
    let evil = r
        .client
        .put(r.url("/posts/1"))
        .header("cookie", &alice)
        .header("origin", "https://evil.example")
        .body("x");
    assert_eq!(r.send(evil, &Auth::None).await.0, StatusCode::FORBIDDEN);

    // Logout kills the cookie server-side.
    let (st, _) = r
        .send(
            r.client.post(r.url("/session/logout")),
            &Auth::Cookie(&alice),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        r.get("/session/me", &Auth::Cookie(&alice)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        r.get("/session/me", &Auth::Cookie(&bob)).await.0,
        StatusCode::OK
    );

    // The printed curl lines name every route.
    let lines = s.curl_lines(&r.base).join("\n");
    for route in [
        "/health",
        "/whoami",
        "/basic/me",
        "/admin",
        "/api/me",
        "/cf/me",
        "/session/login",
        "/session/me",
        "/posts/1",
        "/session/logout",
    ] {
        assert!(
            lines.contains(route),
            "{route} missing from the printed lines"
        );
    }
}

#[tokio::test]
async fn showcase_with_memory_store() {
    let r = start(None).await;
    assert_eq!(r.showcase.store_kind, "memory");
    drive(&r).await;
}

#[tokio::test]
async fn showcase_with_redis_store() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_REDIS_URL not set");
        return;
    };
    let r = start(Some(url)).await;
    assert_eq!(r.showcase.store_kind, "redis");
    drive(&r).await;
}

/// The showcase on a Redis Cluster and on a Sentinel-watched primary (servers this test
/// starts): sessions, revocations and attempt limits all on the one URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn showcase_on_redis_cluster_and_sentinel() {
    if !redis_servers::available() {
        return;
    }
    let cluster = redis_servers::Cluster::start(3, 0);
    let sentinels = redis_servers::Sentinels::start();
    for (url, kind) in [
        (cluster.url(), "redis-cluster"),
        (sentinels.url(), "redis-sentinel"),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = app::Config {
            session_store_url: Some(url.clone()),
            revocation_url: Some(url.clone()),
            rate_limit_url: Some(url),
            key_prefix: Some(format!("pcshow-{}-{kind}:", std::process::id())),
            admin_password: Some("admin-pass-123".into()),
            public_url: Some(base.clone()),
            ..app::Config::default()
        };
        let showcase = app::build(config).await.expect("showcase builds");
        assert_eq!(showcase.store_kind, kind);
        let app = showcase
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let r = Running {
            base,
            showcase,
            client: Client::new(),
        };
        drive(&r).await;
    }
}

#[tokio::test]
async fn showcase_with_postgres_store() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_POSTGRES_URL not set");
        return;
    };
    let r = start(Some(url)).await;
    assert_eq!(r.showcase.store_kind, "postgres");
    drive(&r).await;
}

/// The sum of every sample of `name` whose labels include all of `labels`, in a
/// Prometheus text exposition.
fn sample_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn showcase_serves_ready_and_metrics() {
    let r = start(None).await;
    let (status, ready) = r.get("/ready", &Auth::None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["ready"], true);
    let scrape = || async {
        let res = r.client.get(r.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    };
    let before = scrape().await;
    assert_eq!(
        r.get("/api/me", &Auth::None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, cookie) = r.login("alice", &r.showcase.demo_password).await;
    let cookie = cookie.unwrap();
    assert_eq!(
        r.get("/admin", &Auth::Cookie(&cookie)).await.0,
        StatusCode::FORBIDDEN
    );
    let after = scrape().await;
    if cfg!(feature = "metrics") {
        // Other tests in this process share the recorder: the counters move by at least one.
        let refused =
            |t: &str| sample_sum(t, "portcullis_auth_total", &["outcome=\"unauthorized\""]);
        let denied = |t: &str| {
            sample_sum(
                t,
                "portcullis_policy_decisions_total",
                &["route=\"/admin\"", "outcome=\"forbidden\""],
            )
        };
        assert!(refused(&after) >= refused(&before) + 1.0, "{after}");
        assert!(denied(&after) >= denied(&before) + 1.0, "{after}");
    }
}

#[tokio::test]
async fn showcase_is_not_ready_while_its_issuer_is_down() {
    let config = app::Config {
        jwks_url: Some("http://127.0.0.1:1/jwks.json".into()),
        issuer: Some("https://issuer.example".into()),
        audience: Some("api".into()),
        ..app::Config::default()
    };
    let showcase = app::build(config).await.expect("showcase builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, showcase.router).await.unwrap() });
    let res = reqwest::get(format!("{base}/ready")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["jwt_keys"], false);
    assert_eq!(body["checks"]["session_store"], true);
    // Once a fetch has failed, /ready says why (polled: the first try runs in the
    // background), and that it is an outage, not a wrong configuration.
    let start = std::time::Instant::now();
    let problem = loop {
        let body: Value = reqwest::get(format!("{base}/ready"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !body["problems"]["jwt_keys"].is_null() {
            break body["problems"]["jwt_keys"].clone();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "no reason given: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(problem["kind"], "unreachable", "{problem}");
    assert!(
        problem["problem"].as_str().is_some_and(|p| !p.is_empty()),
        "{problem}"
    );
}

#[tokio::test]
async fn showcase_limits_login_and_basic_attempts() {
    let r = start(None).await;
    for _ in 0..5 {
        assert_eq!(r.login("bob", "wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    let res = r
        .client
        .post(r.url("/session/login"))
        .json(&json!({"username": "bob", "password": r.showcase.demo_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // Basic shares the limiter: bob from this client is limited there too.
    let basic = Auth::Basic("bob", &r.showcase.demo_password);
    assert_eq!(
        r.get("/basic/me", &basic).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another user is not.
    assert_eq!(
        r.login("alice", &r.showcase.demo_password).await.0,
        StatusCode::OK
    );
}

async fn revoke(r: &Running, body: &str) -> StatusCode {
    let req = r
        .client
        .post(r.url("/admin/revoke"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    r.send(req, &Auth::Basic("admin", "admin-pass-123")).await.0
}

#[tokio::test]
async fn showcase_revokes_tokens_and_subjects() {
    let r = start(None).await;
    let token = r.showcase.dev_token.clone().unwrap();
    assert_eq!(
        r.get("/api/me", &Auth::Bearer(&token)).await.0,
        StatusCode::OK
    );
    // Only admins may revoke.
    let (_, cookie) = r.login("bob", &r.showcase.demo_password).await;
    let as_bob = r
        .client
        .post(r.url("/admin/revoke"))
        .body(json!({"subject": "x"}).to_string());
    assert_eq!(
        r.send(as_bob, &Auth::Cookie(&cookie.unwrap())).await.0,
        StatusCode::FORBIDDEN
    );
    // Bad input: a clear 400.
    for bad in [
        "",
        "not json",
        "{}",
        r#"{"token": 5}"#,
        r#"{"token": "x.y.z"}"#,
        r#"{"token": "a", "subject": "b"}"#,
    ] {
        assert_eq!(revoke(&r, bad).await, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        revoke(&r, &json!({"token": token}).to_string()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        r.get("/api/me", &Auth::Bearer(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A subject, all issuers: alice's session ends too.
    let (_, alice) = r.login("alice", &r.showcase.demo_password).await;
    let alice = alice.unwrap();
    assert_eq!(
        r.get("/session/me", &Auth::Cookie(&alice)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        revoke(&r, r#"{"subject": "alice"}"#).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        r.get("/session/me", &Auth::Cookie(&alice)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn showcase_instances_share_revocations_through_redis() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_REDIS_URL not set");
        return;
    };
    // Two instances, the same Redis; each its own dev issuer, so each verifies the
    // other's tokens only after revocation is shared, through the subject.
    let prefix = format!("pcshow-{}-{}:", std::process::id(), rand::random::<u32>());
    let start_shared = || {
        let (url, prefix) = (url.clone(), prefix.clone());
        async move {
            let config = app::Config {
                revocation_url: Some(url.clone()),
                rate_limit_url: Some(url),
                key_prefix: Some(prefix),
                admin_password: Some("admin-pass-123".into()),
                ..app::Config::default()
            };
            let showcase = app::build(config).await.expect("showcase builds");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let app = showcase
                .router
                .clone()
                .into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Running {
                base,
                showcase,
                client: Client::new(),
            }
        }
    };
    let (one, two) = (start_shared().await, start_shared().await);
    let token = two.showcase.dev_token.clone().unwrap();
    assert_eq!(
        two.get("/api/me", &Auth::Bearer(&token)).await.0,
        StatusCode::OK
    );
    // The dev token's subject is alice; revoking her through instance one reaches two.
    assert_eq!(
        revoke(&one, r#"{"subject": "alice"}"#).await,
        StatusCode::NO_CONTENT
    );
    let mut refused = false;
    for _ in 0..100 {
        if two.get("/api/me", &Auth::Bearer(&token)).await.0 == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "instance two never saw the revocation");
}

/// The showcase with `AUTH_PRESET` for a real-looking issuer whose keys a loopback
/// server holds; returns its base URL.
async fn start_with_preset(
    server: &portcullis::testing::KeyServer,
    preset: &str,
    issuer: &str,
    audience: Option<&str>,
    client_id: Option<&str>,
) -> Result<String, app::Error> {
    let config = app::Config {
        jwks_url: Some(server.url("/jwks.json")),
        issuer: Some(issuer.into()),
        audience: audience.map(Into::into),
        preset: Some(preset.into()),
        client_id: client_id.map(Into::into),
        admin_password: Some("admin-pass-123".into()),
        ..app::Config::default()
    };
    let showcase = app::build(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = showcase
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Ok(base)
}

async fn api_me(base: &str, token: &str) -> (StatusCode, Value) {
    let res = Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn showcase_applies_auth_preset() {
    use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let sign = |claims: Value| {
        let mut b = TokenBuilder::new(TestKey::Rs256).with_claim("exp", now() + 600);
        for (k, v) in claims.as_object().unwrap() {
            b = b.with_claim(k, v.clone());
        }
        b.sign()
    };

    let realm = "https://sso.example.com/realms/acme";
    let kc = start_with_preset(
        &server,
        "keycloak",
        realm,
        Some("orders-api"),
        Some("orders-api"),
    )
    .await
    .unwrap();
    let token = json!({
        "iss": realm, "aud": "orders-api", "sub": "u1", "typ": "Bearer",
        "realm_access": {"roles": ["staff"]},
        "resource_access": {"orders-api": {"roles": ["admin"]}}
    });
    let (status, ctx) = api_me(&kc, &sign(token.clone())).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["roles"], json!(["staff", "admin"]));
    let mut id_token = token;
    id_token["typ"] = json!("ID");
    assert_eq!(
        api_me(&kc, &sign(id_token)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let pool = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC";
    let cg = start_with_preset(&server, "cognito", pool, None, Some("app-client-1"))
        .await
        .unwrap();
    let access = json!({
        "iss": pool, "sub": "u2", "client_id": "app-client-1", "token_use": "access",
        "username": "u2", "cognito:groups": ["editors"], "scope": "openid"
    });
    let (status, ctx) = api_me(&cg, &sign(access.clone())).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["roles"], json!(["editors"]));
    let mut other_client = access;
    other_client["client_id"] = json!("app-client-2");
    assert_eq!(
        api_me(&cg, &sign(other_client)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Misconfiguration is loud.
    for (preset, iss, client, why) in [
        ("keycloack", realm, None, "AUTH_PRESET must be one of"),
        (
            "cognito",
            pool,
            None,
            "AUTH_PRESET=cognito needs AUTH_CLIENT_ID",
        ),
        (
            "entra",
            "https://login.example.com",
            None,
            "AUTH_PRESET=entra needs AUTH_ISSUER",
        ),
        (
            "github-actions",
            GITHUB,
            None,
            "AUTH_PRESET=github-actions needs AUTH_AUDIENCE",
        ),
    ] {
        let err = start_with_preset(&server, preset, iss, None, client)
            .await
            .err()
            .unwrap_or_else(|| panic!("{preset} should not start"));
        assert!(err.to_string().contains(why), "{preset}: {err}");
    }
}

const GITHUB: &str = "https://token.actions.githubusercontent.com";

#[tokio::test]
async fn showcase_oidc_login_and_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let r = start(None).await;
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The OIDC login against the embedded dev issuer, redirects followed by hand.
    let res = http
        .get(r.url("/oidc/login?return_to=/session/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let pending = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let to_idp = res.headers()["location"].to_str().unwrap().to_owned();
    let res = http.get(&to_idp).send().await.unwrap();
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&r.url("/oidc/callback")), "{back}");
    let res = http
        .get(&back)
        .header("cookie", &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/session/me");
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{}=", r.showcase.cookie_name)))
        .expect("session cookie");
    let (status, ctx) = r.get("/session/me", &Auth::Cookie(&session)).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "alice");
    assert_eq!(ctx["email"], "alice@example.com");
    // Bad input never makes a session.
    let (status, _) = r
        .get("/oidc/login?return_to=https://evil.example", &Auth::None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        http.get(&back).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );

    // GET /ws: the session cookie, then the dev bearer token as a subprotocol entry.
    let ws_url = r.url("/ws").replace("http://", "ws://");
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("cookie", session.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let Some(Ok(Message::Text(hello))) = ws.next().await else {
        panic!("no hello")
    };
    let ctx: Value = serde_json::from_str(&hello).unwrap();
    assert_eq!(ctx["scheme"], "session");
    ws.send(Message::Text("hi".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("hi".into())
    );
    let token = r.showcase.dev_token.clone().unwrap();
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("chat, bearer.{token}").parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
    let Some(Ok(Message::Text(hello))) = ws.next().await else {
        panic!("no hello")
    };
    let ctx: Value = serde_json::from_str(&hello).unwrap();
    assert_eq!(ctx["scheme"], "bearer");
    assert_eq!(ctx["subject"], "alice");
    // No credential: no socket.
    let req = ws_url.as_str().into_client_request().unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(refusal)) => {
            assert_eq!(refusal.status(), 401);
        }
        other => panic!("expected a 401 refusal, got {other:?}"),
    }
}

/// With real issuers configured and Cloudflare Access left unconfigured, nothing trusts
/// the test kit's published key: an assertion forged with it gets 401 on `/cf/me`, on
/// `/admin` and when rewriting alice's post (which stays hers), and the dev issuer is
/// not started.
#[tokio::test]
async fn showcase_with_real_issuers_trusts_no_dev_key() {
    use portcullis::testing::{KeyServer, TEST_CLIENT_ID, TestKey, TokenBuilder, jwks, now};
    let real_jwt = KeyServer::start(jwks(&[TestKey::Rs256Next])).await;
    let real_oidc = KeyServer::start(jwks(&[TestKey::Rs256Next])).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = app::Config {
        jwks_url: Some(real_jwt.url("/jwks.json")),
        issuer: Some("https://issuer.example".into()),
        audience: Some("api".into()),
        oidc_login_issuer: Some(real_oidc.issuer()),
        oidc_client_id: Some(TEST_CLIENT_ID.into()),
        admin_password: Some("admin-pass-123".into()),
        public_url: Some(base.clone()),
        ..app::Config::default()
    };
    assert!(!config.dev_mode());
    let showcase = app::build(config).await.expect("showcase builds");
    assert!(!showcase.dev_mode && showcase.dev_issuer.is_none());
    assert!(showcase.dev_token.is_none() && showcase.dev_cf_token.is_none());
    let app = showcase
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new();
    // What the dev issuer used to accept: the published key, the dev team and audience.
    let forged = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", "https://showcase-dev.cloudflareaccess.com")
        .with_claim("aud", json!(["showcase-dev-aud"]))
        .with_claim("sub", "alice")
        .with_claim("email", "alice@example.com")
        .with_claim("type", "app")
        .with_claim("exp", now() + 600)
        .sign();
    let with = |req: reqwest::RequestBuilder| req.header("cf-access-jwt-assertion", &forged);
    for (method, path) in [("GET", "/cf/me"), ("GET", "/admin"), ("PUT", "/posts/1")] {
        let req = client.request(method.parse().unwrap(), format!("{base}{path}"));
        let res = with(req.body("the attacker's text")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Alice's post is unchanged (read as admin).
    let post: Value = client
        .get(format!("{base}/posts/1"))
        .basic_auth("admin", Some("admin-pass-123"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post["owner"], "alice");
    assert_ne!(post["body"], "the attacker's text");
    // A bearer token signed with the published key is refused too (the real issuer's
    // key set does not hold it).
    let forged_bearer = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", "https://issuer.example")
        .with_claim("aud", "api")
        .with_claim("sub", "alice")
        .with_claim("exp", now() + 600)
        .sign();
    let res = client
        .get(format!("{base}/api/me"))
        .bearer_auth(forged_bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Dev mode only on loopback: `SHOWCASE_DEV=1` with a public `PUBLIC_URL` refuses to
/// start, as does no issuer at all with one; no issuer and loopback is dev mode.
#[tokio::test]
async fn showcase_dev_mode_is_loopback_only() {
    let public = app::Config {
        dev: true,
        public_url: Some("https://app.example.com".into()),
        ..app::Config::default()
    };
    assert!(public.dev_mode());
    let err = app::build(public).await.err().expect("refused");
    assert!(err.to_string().contains("PUBLIC_URL"), "{err}");
    let nothing_configured = app::Config {
        public_url: Some("https://app.example.com".into()),
        ..app::Config::default()
    };
    let err = app::build(nothing_configured)
        .await
        .err()
        .expect("dev keys behind a public URL");
    assert!(
        err.to_string()
            .contains("PUBLIC_URL is not a loopback address"),
        "{err}"
    );
    let local = app::Config {
        public_url: Some("http://127.0.0.1:3000".into()),
        ..app::Config::default()
    };
    assert!(local.dev_mode());
    let s = app::build(local).await.unwrap();
    assert!(s.dev_mode && s.dev_issuer.is_some() && s.dev_token.is_some());
}

/// RFC 9728 metadata, `resource_metadata` on every 401 from /api/*, and the scope
/// step-up on `POST /api/tasks`.
#[tokio::test]
async fn showcase_serves_protected_resource_metadata_and_step_up() {
    use portcullis::testing::{TestKey, TokenBuilder, now};
    let r = start(None).await;
    let issuer = r.showcase.dev_issuer.as_ref().unwrap().base_url();
    let meta: Value = r
        .client
        .get(r.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], r.base);
    assert_eq!(meta["authorization_servers"], json!([issuer]));
    assert_eq!(meta["bearer_methods_supported"], json!(["header"]));
    let metadata_url = format!("{}/.well-known/oauth-protected-resource", r.base);
    let www = |res: &reqwest::Response| {
        res.headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    for (method, path) in [("GET", "/api/me"), ("POST", "/api/tasks")] {
        let res = r
            .client
            .request(method.parse().unwrap(), r.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            www(&res)[0].contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{path}: {:?}",
            www(&res)
        );
    }
    // The dev token has posts:read only: step up.
    let res = r
        .client
        .post(r.url("/api/tasks"))
        .bearer_auth(r.showcase.dev_token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let ch = www(&res).join(" ");
    assert!(ch.contains("error=\"insufficient_scope\""), "{ch}");
    assert!(ch.contains("scope=\"tasks:write\""), "{ch}");
    assert!(
        ch.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{ch}"
    );
    let writer = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", issuer)
        .with_claim("aud", "showcase")
        .with_claim("sub", "alice")
        .with_claim("scope", "tasks:write")
        .with_claim("exp", now() + 600)
        .sign();
    let res = r
        .client
        .post(r.url("/api/tasks"))
        .bearer_auth(writer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// `AUTH_DPOP=required`: a plain bearer token is refused with the DPoP challenge; a
/// bound token with a proof for `PUBLIC_URL` is accepted once per proof.
#[tokio::test]
async fn showcase_takes_dpop_bound_tokens() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use portcullis::jwt::Algorithm;
    use portcullis::testing::{TestKey, TokenBuilder, now, sign_raw};
    use sha2::{Digest, Sha256};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = app::Config {
        admin_password: Some("admin-pass-123".into()),
        public_url: Some(base.clone()),
        dpop: Some("required".into()),
        ..app::Config::default()
    };
    let showcase = app::build(config).await.unwrap();
    let issuer = showcase.dev_issuer.as_ref().unwrap().base_url();
    let meta_has_dpop = {
        let router = showcase.router.clone();
        let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let meta: Value = reqwest::get(format!("{base}/.well-known/oauth-protected-resource"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        meta["dpop_bound_access_tokens_required"] == json!(true)
    };
    assert!(meta_has_dpop);
    let client = Client::new();
    let plain = client
        .get(format!("{base}/api/me"))
        .bearer_auth(showcase.dev_token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNAUTHORIZED);
    assert!(
        plain.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    let mut jwk = TestKey::Es256.public_jwk();
    for m in ["kid", "alg", "use"] {
        jwk.as_object_mut().unwrap().remove(m);
    }
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", issuer)
        .with_claim("aud", "showcase")
        .with_claim("sub", "alice")
        .with_claim("exp", now() + 600)
        .with_claim("cnf", json!({"jkt": jkt}))
        .sign();
    let proof = sign_raw(
        TestKey::Es256,
        Algorithm::ES256,
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string(),
        &json!({
            "jti": "showcase-1", "htm": "GET", "htu": format!("{base}/api/me"), "iat": now(),
            "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
        })
        .to_string(),
    );
    let call = || {
        client
            .get(format!("{base}/api/me"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof)
            .send()
    };
    let ok = call().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let replay = call().await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
}

/// `/auth/forward`: public paths open, admin paths for admins in every spelling, the
/// rest for any scheme, identity headers on the 200s.
#[tokio::test]
async fn showcase_forward_auth() {
    let r = start(None).await;
    let ask = |method: &str, uri: &str| {
        r.client
            .get(r.url("/auth/forward"))
            .header("x-forwarded-method", method)
            .header("x-forwarded-uri", uri)
    };
    let open = ask("GET", "/public/app.css").send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    assert!(open.headers().get("x-auth-subject").is_none());
    let anon = ask("GET", "/notes").send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert!(anon.headers().contains_key("www-authenticate"));
    let member = r.showcase.dev_token.clone().unwrap();
    let ok = ask("POST", "/notes?x=1")
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["x-auth-subject"], "alice");
    assert_eq!(ok.headers()["x-auth-roles"], "member");
    assert_eq!(ok.headers()["x-auth-scheme"], "bearer");
    for uri in [
        "/admin",
        "/administration",
        "/%61dmin",
        "//admin",
        "/x/../admin/users",
    ] {
        let denied = ask("GET", uri).bearer_auth(&member).send().await.unwrap();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN, "{uri}");
        let admin = ask("GET", uri)
            .basic_auth("admin", Some("admin-pass-123"))
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), StatusCode::OK, "{uri}");
        assert_eq!(admin.headers()["x-auth-roles"], "admin");
    }
    for uri in ["/admin%2Fusers", "/admin%5C", "/a\\b"] {
        let bad = ask("GET", uri).bearer_auth(&member).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{uri}");
    }
}

/// `POST /oidc/backchannel-logout`: the provider ends an OIDC session; a bad token is a 400.
#[tokio::test]
async fn showcase_backchannel_logout() {
    let r = start(None).await;
    let idp = r.showcase.dev_issuer.as_ref().unwrap();
    idp.set_login_user("alice", json!({"sid": "showcase-sid-1"}));
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .get(r.url("/oidc/login?return_to=/session/me"))
        .send()
        .await
        .unwrap();
    let pending = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let to_idp = res.headers()["location"].to_str().unwrap().to_owned();
    let back = http.get(&to_idp).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let res = http
        .get(&back)
        .header("cookie", &pending)
        .send()
        .await
        .unwrap();
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&r.showcase.cookie_name))
        .unwrap();
    let me = async || {
        http.get(r.url("/session/me"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(me().await, StatusCode::OK);
    let post = async |token: &str| {
        http.post(r.url("/oidc/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("logout_token={token}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(post("garbage").await, StatusCode::BAD_REQUEST);
    let token = idp
        .logout_token_builder(Some("alice"), Some("showcase-sid-1"))
        .sign();
    assert_eq!(post(&token).await, StatusCode::OK);
    assert_eq!(me().await, StatusCode::UNAUTHORIZED);
}

/// `AUTH_ISSUER_TEMPLATE` + `AUTH_TENANTS`: each allowlisted tenant's tokens verified
/// with its own issuer's keys, the context's tenant that tenant; other issuers 401
/// without a fetch.
#[tokio::test]
async fn showcase_serves_tenants_with_their_own_issuers() {
    use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
    let idp = KeyServer::start(jwks(&[])).await;
    idp.add_realm("acme", jwks(&[TestKey::Rs256]));
    idp.add_realm("globex", jwks(&[TestKey::Es256]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = app::Config {
        issuer_template: Some(format!("{}/realms/{{tenant}}", idp.base_url())),
        tenants: Some("acme, globex".into()),
        admin_password: Some("admin-pass-123".into()),
        public_url: Some(base.clone()),
        ..app::Config::default()
    };
    let showcase = app::build(config).await.unwrap();
    assert!(!showcase.dev_mode);
    let app = showcase
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let tok = |key: TestKey, tenant: &str| {
        TokenBuilder::new(key)
            .with_claim("iss", format!("{}/realms/{tenant}", idp.base_url()))
            .with_claim("aud", "showcase")
            .with_claim("sub", "u1")
            .with_claim("tenant", "someone-else")
            .with_claim("exp", now() + 600)
            .sign()
    };
    let client = Client::new();
    let me = async |token: String| {
        let res = client
            .get(format!("{base}/api/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            res.status(),
            res.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let (s, ctx) = me(tok(TestKey::Rs256, "acme")).await;
    assert_eq!(s, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["tenant"], "acme");
    let (s, ctx) = me(tok(TestKey::Es256, "globex")).await;
    assert_eq!(s, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["tenant"], "globex");
    assert_eq!(
        me(tok(TestKey::Es256, "acme")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let hits = idp.total_hits();
    assert_eq!(
        me(tok(TestKey::Rs256, "initech")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        idp.total_hits(),
        hits,
        "a tenant outside the allowlist was fetched"
    );
    let meta: Value = client
        .get(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["authorization_servers"].as_array().unwrap().len(), 2);
}

/// An unreachable `AUTH_OIDC_ISSUER` at start is not fatal: not ready and 503 for
/// bearer requests meanwhile, ready and 200 without a restart once it answers.
#[tokio::test]
async fn showcase_starts_while_its_oidc_issuer_is_down() {
    use portcullis::testing::{KeyServer, TestKey, jwks};
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    idp.set_status(http::StatusCode::SERVICE_UNAVAILABLE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = app::Config {
        oidc_issuer: Some(idp.issuer()),
        audience: Some("api".into()),
        admin_password: Some("admin-pass-123".into()),
        public_url: Some(base.clone()),
        ..app::Config::default()
    };
    let showcase = app::build(config)
        .await
        .expect("starts while the issuer is down");
    let app = showcase
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new();
    let token = idp
        .token_builder_for("alice")
        .with_claim("aud", "api")
        .sign();
    let me = || {
        client
            .get(format!("{base}/api/me"))
            .bearer_auth(&token)
            .send()
    };
    let ready = || client.get(format!("{base}/ready")).send();
    assert_eq!(
        ready().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        me().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    idp.set_status(http::StatusCode::OK);
    let up = std::time::Instant::now();
    loop {
        if me().await.unwrap().status() == StatusCode::OK {
            break;
        }
        assert!(
            up.elapsed() < std::time::Duration::from_secs(10),
            "no recovery without a restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready().await.unwrap().status(), StatusCode::OK);
    eprintln!("ready {:?} after the issuer came back", up.elapsed());
}
