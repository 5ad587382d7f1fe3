//! A small notes service, as a newcomer would build it: a bearer JSON API with scopes,
//! notes owned by their author (looked up asynchronously) with an admin override, a
//! password login into a session (Redis when `SESSION_STORE_URL` is set), `/me` by cookie
//! or bearer, and browsers sent to `/login` when they are not signed in.
//!
//! ```text
//! AUTH_OIDC_ISSUER=https://login.example.com cargo run --example notes_app
//! cargo run --example notes_app     # no variables: a dev issuer on loopback, a token printed
//! ```
//!
//! The auth wiring is the part of `app` between the two `auth wiring` comments; the
//! tests at the end drive every rule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use portcullis::jwt::BearerAuth;
use portcullis::policy::{PolicyLayer, RouteRules, Rule};
use portcullis::session::{
    MemoryStore, NewSession, RedisStore, SessionConfig, SessionManager, SessionStore, Sessions,
};
use portcullis::{AuthContext, AuthError, AuthLayer, LoginRedirect, Scheme, User, Users};
use serde::Deserialize;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Notes by id: (owner, text). A database in a real app.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<HashMap<String, (String, String)>>>);

impl Notes {
    fn owner(&self, id: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .get(id)
            .map(|(owner, _)| owner.clone())
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// The router. `issuer` is an OpenID Connect issuer whose tokens carry audience `notes`.
async fn app(issuer: &str, store: Arc<dyn SessionStore>, users: Users) -> Result<Router, Error> {
    let notes = Notes::default();
    // auth wiring: start
    let bearer = BearerAuth::oidc(issuer, "notes", portcullis::Startup::FailFast).await?;
    let sessions = SessionManager::from_arc(store, SessionConfig::default());
    let lookup = notes.clone();
    let owner_or_admin = Rule::owner_via("id", move |id: String| {
        let owner = lookup.owner(&id);
        async move { Ok::<_, AuthError>(owner) }
    })
    .or(Rule::role("admin"));
    // Session users act in the browser as themselves; API clients need the scope.
    let scope = |s: &str| Rule::scope(s).or(Rule::scheme(Scheme::Session));
    let rules = RouteRules::new()
        .with_rule(Method::GET, "/notes", scope("notes:read"))
        .with_rule(Method::POST, "/notes", scope("notes:write"))
        .with_rule(Method::GET, "/notes/{id}", owner_or_admin.clone())
        .with_rule(Method::DELETE, "/notes/{id}", owner_or_admin)
        .with_any_method("/me", Rule::authenticated());
    let auth = AuthLayer::required(bearer)
        .or(sessions.authenticator())
        .with_responder(LoginRedirect::new("/login"));
    let login = |Extension(users): Extension<Arc<Users>>, s: Sessions, Json(f): Json<Login>| async move {
        let user = users.verify(&f.username, &f.password).await?;
        Ok::<_, AuthError>((
            s.login(NewSession::for_user(f.username, user)).await?,
            "welcome",
        ))
    };
    // auth wiring: end
    let protected = Router::new()
        .route("/me", get(|ctx: AuthContext| async move { Json(ctx) }))
        .route("/notes", get(list).post(create))
        .route("/notes/{id}", get(read).delete(remove))
        .route_layer(PolicyLayer::routes(rules))
        .layer(auth)
        .with_state(notes);
    Ok(Router::new()
        .route(
            "/login",
            post(login).get(|| async { "sign in with POST /login" }),
        )
        .route(
            "/logout",
            post(|s: Sessions| async move { s.logout().await }),
        )
        .merge(protected)
        .layer(Extension(sessions))
        .layer(Extension(Arc::new(users))))
}

async fn list(State(notes): State<Notes>, ctx: AuthContext) -> Json<Vec<Value>> {
    let notes = notes.0.lock().unwrap();
    let mine = notes
        .iter()
        .filter(|(_, (owner, _))| owner == ctx.subject());
    Json(
        mine.map(|(id, (_, text))| json!({"id": id, "text": text}))
            .collect(),
    )
}

async fn create(State(notes): State<Notes>, ctx: AuthContext, text: String) -> Json<Value> {
    let mut notes = notes.0.lock().unwrap();
    let id = (notes.len() + 1).to_string();
    notes.insert(id.clone(), (ctx.subject().to_owned(), text));
    Json(json!({"id": id}))
}

async fn read(State(notes): State<Notes>, Path(id): Path<String>) -> Json<Value> {
    let notes = notes.0.lock().unwrap();
    Json(json!({"id": id, "text": notes.get(&id).map(|(_, text)| text)}))
}

async fn remove(State(notes): State<Notes>, Path(id): Path<String>) -> Json<Value> {
    Json(json!({"deleted": notes.0.lock().unwrap().remove(&id).is_some()}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let password = format!("{:016x}", rand::random::<u64>());
    let users = Users::new().with_user(
        "alice",
        User::hashed(&portcullis::hash_password(&password)?)?,
    );
    let store: Arc<dyn SessionStore> = match var("SESSION_STORE_URL") {
        Some(url) => Arc::new(
            RedisStore::builder(&url)
                .with_prefix("notes")
                .connect()
                .await?,
        ),
        None => Arc::new(MemoryStore::new()),
    };
    // Without AUTH_OIDC_ISSUER, a dev issuer on loopback signs with a public test key.
    let dev = portcullis::testing::KeyServer::start(portcullis::testing::jwks(&[
        portcullis::testing::TestKey::Rs256,
    ]))
    .await;
    let issuer = var("AUTH_OIDC_ISSUER").unwrap_or_else(|| dev.issuer());
    let app = app(&issuer, store, users).await?;
    let addr = var("PORTCULLIS_ADDR").unwrap_or_else(|| "127.0.0.1:3008".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("notes_app on {base}; user alice, password {password}");
    if var("AUTH_OIDC_ISSUER").is_none() {
        let token = dev
            .token_builder_for("alice")
            .with_claim("aud", "notes")
            .with_claim("scope", "notes:read notes:write")
            .sign();
        println!("curl -s -H 'Authorization: Bearer {token}' {base}/notes");
    }
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use portcullis::session::SessionCookie;
    use portcullis::testing::{KeyServer, TestKey, jwks};
    use tower::ServiceExt;

    struct World {
        app: Router,
        idp: KeyServer,
    }

    async fn world() -> World {
        let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
        let users = Users::new()
            .with_user("alice", User::plain("alice-pw"))
            .with_user("root", User::plain("root-pw").with_roles(["admin"]));
        let app = app(&idp.issuer(), Arc::new(MemoryStore::new()), users)
            .await
            .unwrap();
        World { app, idp }
    }

    impl World {
        fn token(&self, sub: &str, scope: &str, roles: &[&str]) -> String {
            let t = self.idp.token_builder_for(sub).with_claim("aud", "notes");
            t.with_claim("scope", scope)
                .with_claim("roles", json!(roles))
                .sign()
        }
        async fn call(&self, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
            let res = self.app.clone().oneshot(req).await.unwrap();
            let (parts, body) = res.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (parts.status, parts.headers, json)
        }
        async fn bearer(&self, method: &str, path: &str, token: &str) -> (StatusCode, Value) {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from("a note"))
                .unwrap();
            let (status, _, json) = self.call(req).await;
            (status, json)
        }
    }

    #[tokio::test]
    async fn scopes_ownership_and_the_admin_override() {
        let w = world().await;
        let alice = w.token("alice", "notes:read notes:write", &[]);
        let (status, created) = w.bearer("POST", "/notes", &alice).await;
        assert_eq!(status, StatusCode::OK);
        let note = format!("/notes/{}", created["id"].as_str().unwrap());
        assert_eq!(w.bearer("GET", &note, &alice).await.0, StatusCode::OK);
        let reader = w.token("alice", "notes:read", &[]);
        assert_eq!(
            w.bearer("POST", "/notes", &reader).await.0,
            StatusCode::FORBIDDEN
        );
        let bob = w.token("bob", "notes:read notes:write", &[]);
        assert_eq!(w.bearer("GET", &note, &bob).await.0, StatusCode::FORBIDDEN);
        let admin = w.token("root", "", &["admin"]);
        assert_eq!(w.bearer("DELETE", &note, &admin).await.0, StatusCode::OK);
        let other_aud = w.idp.token_builder_for("alice").sign();
        assert_eq!(
            w.bearer("GET", "/me", &other_aud).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn password_login_into_a_session_and_me_by_cookie_or_bearer() {
        let w = world().await;
        let login = |password: &str| {
            Request::post("/login")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"username": "alice", "password": password}).to_string(),
                ))
                .unwrap()
        };
        assert_eq!(w.call(login("wrong")).await.0, StatusCode::UNAUTHORIZED);
        let res = w.app.clone().oneshot(login("alice-pw")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = SessionCookie::from_response(&res).unwrap();
        let me = Request::get("/me")
            .header("cookie", cookie.pair())
            .body(Body::empty())
            .unwrap();
        let (status, _, ctx) = w.call(me).await;
        assert_eq!(
            (status, ctx["scheme"].as_str()),
            (StatusCode::OK, Some("session"))
        );
        let (status, ctx) = w.bearer("GET", "/me", &w.token("alice", "", &[])).await;
        assert_eq!(
            (status, ctx["scheme"].as_str()),
            (StatusCode::OK, Some("bearer"))
        );
        // A session user writes notes without scopes.
        let create = Request::post("/notes")
            .header("cookie", cookie.pair())
            .body(Body::from("from the browser"))
            .unwrap();
        assert_eq!(w.call(create).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn browsers_without_a_session_go_to_the_login_page() {
        let w = world().await;
        let page = Request::get("/notes")
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = w.call(page).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], "/login?next=%2Fnotes");
        let api = Request::get("/notes").body(Body::empty()).unwrap();
        assert_eq!(w.call(api).await.0, StatusCode::UNAUTHORIZED);
    }
}
