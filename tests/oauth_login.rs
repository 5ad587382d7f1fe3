//! OAuth 2 / OIDC login into a session, end to end: the app and the test kit's
//! development provider both on 127.0.0.1, a real HTTP client following the redirects.

// Only `serve` is used here.
#[allow(dead_code)]
#[path = "common/oidc_apps.rs"]
mod oidc_apps;

use axum::routing::get;
use axum::{Extension, Json, Router};
use portcullis::oauth::{OAuthLogin, OAuthProvider};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
use portcullis::testing::{KeyServer, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestKey, jwks};
use portcullis::{AuthContext, AuthError, AuthLayer};
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};

struct App {
    base: String,
    idp: KeyServer,
    http: Client,
}

/// An app with `/oidc/*` for `provider` (built from the dev provider at `idp`) and a
/// session-guarded `/me`.
async fn start(github: bool) -> App {
    start_with(github, None).await
}

/// [`start`], the OIDC provider discovered with `options` when given.
async fn start_with(github: bool, options: Option<portcullis::jwt::JwksOptions>) -> App {
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = match (github, options) {
        (true, _) => {
            OAuthProvider::github_enterprise(&idp.base_url(), &idp.url("/api/v3")).unwrap()
        }
        (false, None) => OAuthProvider::discover(&idp.issuer()).await.unwrap(),
        (false, Some(options)) => OAuthProvider::discover_with(&idp.issuer(), options)
            .await
            .unwrap(),
    };
    let login = OAuthLogin::new(
        provider,
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET,
        &format!("{base}/oidc/callback"),
    )
    .unwrap()
    .with_post_logout_redirect(format!("{base}/"))
    .with_profile_hook(|profile| async move {
        if profile.subject == "mallory" {
            return Err(AuthError::forbidden());
        }
        let mut s = NewSession::new(profile.subject).with_roles(["member"]);
        if let Some(e) = profile.email {
            s = s.with_email(e);
        }
        Ok(s)
    });
    let manager = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default().with_insecure_dev_cookie(),
    );
    oidc_apps::serve(listener, &login, manager);
    let http = Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    App { base, idp, http }
}

/// The `name=value` of the `Set-Cookie` named `name`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

impl App {
    /// Starts a login: the provider URL and the pending cookie.
    async fn begin(&self, return_to: &str) -> (String, String) {
        let res = self
            .http
            .get(format!("{}/oidc/login?return_to={return_to}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let pending = set_cookie(&res, "oauth-pending").expect("pending cookie");
        let attrs = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax"),
            "{attrs}"
        );
        (location(&res), pending)
    }
    /// The provider's redirect back to the callback.
    async fn authorize(&self, provider_url: &str) -> String {
        let res = self.http.get(provider_url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        location(&res)
    }
    async fn callback(&self, url: &str, pending: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(c) = pending {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
    /// A whole login; the session cookie.
    async fn login(&self) -> Result<String, StatusCode> {
        let (to_provider, pending) = self.begin("/me").await;
        let back = self.authorize(&to_provider).await;
        let res = self.callback(&back, Some(&pending)).await;
        if res.status() != StatusCode::SEE_OTHER {
            return Err(res.status());
        }
        assert_eq!(location(&res), "/me");
        Ok(set_cookie(&res, "session").expect("session cookie"))
    }
    async fn me(&self, session: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .get(format!("{}/me", self.base))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn oidc_login_makes_a_session_and_logout_ends_it() {
    let app = start(false).await;
    let session = app.login().await.unwrap();
    let (status, ctx) = app.me(&session).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "alice");
    assert_eq!(ctx["email"], "alice@example.com");
    assert_eq!(ctx["scheme"], "session");
    assert_eq!(app.idp.hits("/token"), 1);

    let res = app
        .http
        .post(format!("{}/oidc/logout", app.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(to.starts_with(&app.idp.url("/logout")), "{to}");
    assert!(to.contains("post_logout_redirect_uri="), "{to}");
    assert_eq!(app.me(&session).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bad_callback_never_makes_a_session() {
    let app = start(false).await;
    let (to_provider, pending) = app.begin("/me").await;
    let back = app.authorize(&to_provider).await;
    // No pending cookie, a forged one, another login's state, no state at all.
    assert_eq!(
        app.callback(&back, None).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.callback(&back, Some("oauth-pending=e30.AAAA"))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let (_, other_pending) = app.begin("/me").await;
    assert_eq!(
        app.callback(&back, Some(&other_pending)).await.status(),
        StatusCode::BAD_REQUEST
    );
    let no_state: String = back
        .split('&')
        .filter(|p| !p.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        app.callback(&no_state, Some(&pending)).await.status(),
        StatusCode::BAD_REQUEST
    );
    let huge = format!("{back}&x=1&code2={}", "a".repeat(9000));
    assert_eq!(
        app.callback(&huge, Some(&pending)).await.status(),
        StatusCode::BAD_REQUEST
    );
    let twice = format!("{back}&code=again");
    assert_eq!(
        app.callback(&twice, Some(&pending)).await.status(),
        StatusCode::BAD_REQUEST
    );
    // The genuine callback works once; the replayed code is refused by the provider.
    let first = app.callback(&back, Some(&pending)).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = app.callback(&back, Some(&pending)).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&replay, "session").is_none());
}

#[tokio::test]
async fn id_tokens_that_do_not_verify_are_refused() {
    let app = start(false).await;
    type Breaker = Box<dyn Fn(&KeyServer)>;
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "nonce",
            Box::new(|s: &KeyServer| s.set_id_token_claims(json!({"nonce": "not-yours"}))),
        ),
        (
            "no nonce",
            Box::new(|s: &KeyServer| s.set_id_token_claims(json!({"nonce": null}))),
        ),
        (
            "issuer",
            Box::new(|s: &KeyServer| s.set_id_token_claims(json!({"iss": "https://evil.example"}))),
        ),
        (
            "audience",
            Box::new(|s: &KeyServer| {
                s.set_id_token_claims(json!({"aud": "another-client", "azp": null}))
            }),
        ),
        (
            "azp",
            Box::new(|s: &KeyServer| s.set_id_token_claims(json!({"azp": "another-client"}))),
        ),
        (
            "several audiences, no azp",
            Box::new(|s: &KeyServer| {
                s.set_id_token_claims(json!({"aud": [TEST_CLIENT_ID, "x"], "azp": null}))
            }),
        ),
        (
            "at_hash",
            Box::new(|s: &KeyServer| {
                s.set_id_token_claims(json!({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}))
            }),
        ),
        (
            "expired",
            Box::new(|s: &KeyServer| s.set_id_token_claims(json!({"exp": 1_000_000}))),
        ),
        (
            "alg",
            Box::new(|s: &KeyServer| s.set_id_token_key(Some(TestKey::Hs256))),
        ),
        (
            "unknown key",
            Box::new(|s: &KeyServer| s.set_id_token_key(Some(TestKey::Rs256Next))),
        ),
    ];
    for (name, break_it) in cases {
        break_it(&app.idp);
        assert_eq!(app.login().await, Err(StatusCode::UNAUTHORIZED), "{name}");
        app.idp.set_id_token_claims(Value::Null);
        app.idp.set_id_token_key(None);
    }
    assert!(app.login().await.is_ok());
}

#[tokio::test]
async fn provider_errors_return_to_and_the_hook() {
    let app = start(false).await;
    app.idp.set_authorize_error(Some("access_denied"));
    assert_eq!(app.login().await, Err(StatusCode::UNAUTHORIZED));
    app.idp.set_authorize_error(None);
    for bad in [
        "https://evil.example/",
        "//evil.example",
        "/%5Cevil.example",
        "evil",
        "%2F%2Fevil.example",
    ] {
        let res = app
            .http
            .get(format!("{}/oidc/login?return_to={bad}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(res.headers().get("location").is_none());
    }
    app.idp.set_login_user(
        "mallory",
        json!({"email": "m@example.com", "email_verified": true}),
    );
    assert_eq!(app.login().await, Err(StatusCode::FORBIDDEN));
    // Unverified e-mail is not put in the session.
    app.idp.set_login_user(
        "bob",
        json!({"email": "bob@example.com", "email_verified": false}),
    );
    let session = app.login().await.unwrap();
    let (_, ctx) = app.me(&session).await;
    assert_eq!(ctx["subject"], "bob");
    assert_eq!(ctx["email"], Value::Null);
}

#[tokio::test]
async fn github_style_login_through_the_user_api() {
    let app = start(true).await;
    app.idp.set_login_user("octocat", json!({"github_id": 583231, "email": "octo@example.com", "email_verified": true, "name": "The Octocat"}));
    let session = app.login().await.unwrap();
    let (status, ctx) = app.me(&session).await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "583231");
    assert_eq!(ctx["email"], "octo@example.com");
}

#[tokio::test]
async fn configuration_errors() {
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let provider = OAuthProvider::discover(&idp.issuer()).await.unwrap();
    assert!(
        OAuthLogin::new(
            provider.clone(),
            TEST_CLIENT_ID,
            "",
            "http://app.example/cb"
        )
        .unwrap_err()
        .message()
        .contains("absolute https URL"),
        "plain http off loopback"
    );
    let says = |e: portcullis::ConfigError, what: &str| {
        assert!(e.message().contains(what), "{e} should mention {what:?}");
    };
    says(
        OAuthLogin::new(provider.clone(), "", "", "https://app.example/cb").unwrap_err(),
        "client id is empty",
    );
    says(
        OAuthLogin::new(provider.clone(), "c", "", "https://app.example/cb")
            .unwrap()
            .with_state_key(&[1; 16])
            .unwrap_err(),
        "shorter than 32 bytes",
    );
    idp.set_discovery_issuer(Some("https://other.example"));
    says(
        OAuthProvider::discover(&idp.issuer()).await.unwrap_err(),
        "issuer",
    );
    says(
        OAuthProvider::discover("http://127.0.0.1:9")
            .await
            .unwrap_err(),
        "request failed",
    );
    says(
        OAuthProvider::microsoft("common").await.unwrap_err(),
        "one tenant",
    );
}

/// Two providers that both call their user `1001`, with the default profile hook: two
/// identities, each session carrying its provider's issuer, so an app keyed on
/// `subject()` cannot merge them.
#[tokio::test]
async fn one_sub_at_two_providers_is_two_identities() {
    let (idp_a, idp_b) = (
        KeyServer::start(jwks(&[TestKey::Rs256])).await,
        KeyServer::start(jwks(&[TestKey::Rs256])).await,
    );
    let gh = KeyServer::start(jwks(&[])).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let login = |provider: OAuthProvider, at: &str| {
        OAuthLogin::new(
            provider,
            TEST_CLIENT_ID,
            TEST_CLIENT_SECRET,
            &format!("{base}/{at}/callback"),
        )
        .unwrap()
        .routes()
    };
    let manager = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default().with_insecure_dev_cookie(),
    );
    let router = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { Json(json!(ctx)) }),
        )
        .layer(AuthLayer::required(manager.authenticator()))
        .nest(
            "/a",
            login(OAuthProvider::discover(&idp_a.issuer()).await.unwrap(), "a"),
        )
        .nest(
            "/b",
            login(OAuthProvider::discover(&idp_b.issuer()).await.unwrap(), "b"),
        )
        .nest(
            "/gh",
            login(
                OAuthProvider::github_enterprise(&gh.base_url(), &gh.url("/api/v3")).unwrap(),
                "gh",
            ),
        )
        .layer(Extension(manager));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let sign_in = async |at: &str| -> Value {
        let res = http
            .get(format!("{base}/{at}/login?return_to=/me"))
            .send()
            .await
            .unwrap();
        let pending = set_cookie(&res, "oauth-pending").unwrap();
        let back = http.get(location(&res)).send().await.unwrap();
        let res = http
            .get(location(&back))
            .header("cookie", &pending)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{at}");
        let session = set_cookie(&res, "session").unwrap();
        http.get(format!("{base}/me"))
            .header("cookie", session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    idp_a.set_login_user(
        "1001",
        json!({"email": "a@example.com", "email_verified": true}),
    );
    idp_b.set_login_user(
        "1001",
        json!({"email": "b@example.com", "email_verified": true}),
    );
    gh.set_login_user("gh", json!({"github_id": 1001}));
    let (a, b, g) = (sign_in("a").await, sign_in("b").await, sign_in("gh").await);
    assert_eq!(a["issuer"], idp_a.issuer());
    assert_eq!(b["issuer"], idp_b.issuer());
    assert_eq!(g["issuer"], gh.base_url());
    assert_eq!(a["subject"], format!("{}#1001", idp_a.issuer()));
    assert_eq!(b["subject"], format!("{}#1001", idp_b.issuer()));
    assert_eq!(g["subject"], format!("{}#1001", gh.base_url()));
    assert_ne!(a["subject"], b["subject"]);
    assert_ne!(a["subject"], g["subject"]);
}

/// RFC 9207: a provider that advertises `iss` on its authorization responses must send
/// it; a callback without it (a mix-up attacker's forged response) makes no session.
#[tokio::test]
async fn a_callback_without_the_advertised_iss_is_refused() {
    let app = start(false).await;
    assert!(app.login().await.is_ok(), "with iss");
    app.idp.set_omit_authorization_iss(true);
    assert_eq!(app.login().await, Err(StatusCode::UNAUTHORIZED));
    // Error responses are held to it too.
    app.idp.set_authorize_error(Some("access_denied"));
    let (to_provider, pending) = app.begin("/me").await;
    let back = app.authorize(&to_provider).await;
    let res = app.callback(&back, Some(&pending)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, "session").is_none());
}

/// The egress timeout bounds the token exchange even through a client built by the
/// caller (which has no timeout of its own): a token endpoint that hangs gives 503
/// within the timeout, never a callback that waits as long as the provider does.
#[tokio::test]
async fn a_hung_token_endpoint_is_bounded_by_the_egress_timeout_with_an_own_client() {
    use portcullis::egress::Egress;
    let egress = Egress::default()
        .with_http_client(reqwest::Client::new())
        .with_timeout(std::time::Duration::from_millis(300));
    let app = start_with(
        false,
        Some(portcullis::jwt::JwksOptions::default().with_egress(egress)),
    )
    .await;
    let (to_provider, pending) = app.begin("/me").await;
    let back = app.authorize(&to_provider).await;
    app.idp.set_delay(std::time::Duration::from_secs(5));
    let started = std::time::Instant::now();
    let res = app.callback(&back, Some(&pending)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
}
