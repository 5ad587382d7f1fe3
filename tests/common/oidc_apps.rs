//! Apps behind an OIDC login with back-channel logout, served on loopback, and a client
//! that logs in through the test kit's provider: shared by `tests/backchannel_logout.rs`
//! and `benches/backchannel_propagation.rs`. Self-contained (the bench includes it by
//! path).

use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use portcullis::oauth::{OAuthLogin, OAuthProvider};
use portcullis::resource::ReplayCache;
use portcullis::revocation::Revocations;
use portcullis::session::{SessionConfig, SessionManager, SessionStore};
use portcullis::testing::{KeyServer, TEST_CLIENT_ID, TEST_CLIENT_SECRET};
use portcullis::{AuthContext, AuthLayer};
use reqwest::{Client, StatusCode, redirect};
use serde_json::json;

/// One running app.
pub struct Instance {
    pub base: String,
}

/// One app instance: `/oidc/*` (with `/oidc/backchannel-logout`) and a session `/me`.
pub async fn instance(
    idp: &KeyServer,
    store: std::sync::Arc<dyn SessionStore>,
    revocations: Revocations,
    replay: ReplayCache,
) -> Instance {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = OAuthProvider::discover(&idp.issuer()).await.unwrap();
    assert!(provider.supports_backchannel_logout());
    let login = OAuthLogin::new(
        provider,
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET,
        &format!("{base}/oidc/callback"),
    )
    .unwrap()
    .with_replay_cache(replay);
    let manager = SessionManager::from_arc(
        store,
        SessionConfig::default()
            .with_insecure_dev_cookie()
            .with_revocations(revocations),
    );
    serve(listener, &login, manager);
    Instance { base }
}

/// Serves `/oidc/*` from `login` and a session-guarded `/me` (the context as JSON) on
/// `listener`.
pub fn serve(listener: tokio::net::TcpListener, login: &OAuthLogin, manager: SessionManager) {
    let router = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { Json(json!(ctx)) }),
        )
        .layer(AuthLayer::required(manager.authenticator()))
        .nest("/oidc", login.routes())
        .layer(Extension(manager));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
}

pub fn http() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Logs in at `app` as whoever the provider is set to approve; the session cookie.
pub async fn login(app: &Instance) -> String {
    let http = http();
    let res = http
        .get(format!("{}/oidc/login?return_to=/me", app.base))
        .send()
        .await
        .unwrap();
    let pending = cookie(&res, "oauth-pending");
    let to_idp = res.headers()["location"].to_str().unwrap().to_owned();
    let back = http.get(to_idp).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let res = http
        .get(callback)
        .header("cookie", pending)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    cookie(&res, "session")
}

pub fn cookie(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect(name)
}

pub async fn me(app: &Instance, session: &str) -> StatusCode {
    http()
        .get(format!("{}/me", app.base))
        .header("cookie", session)
        .send()
        .await
        .unwrap()
        .status()
}

pub async fn post_logout(app: &Instance, body: String) -> reqwest::Response {
    http()
        .post(format!("{}/oidc/backchannel-logout", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

pub fn form(token: &str) -> String {
    format!("logout_token={token}")
}
