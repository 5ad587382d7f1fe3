//! A browser app with a login form: hashed passwords, cookie sessions, logout, and a
//! redirect to the login page for HTML requests without a session.
//!
//! ```text
//! cargo run --example session_login
//! open http://127.0.0.1:3004/          # redirects to /login
//! SESSION_STORE_URL=redis://127.0.0.1:6379 cargo run --example session_login
//! SESSION_STORE_URL=postgres://postgres@127.0.0.1/test cargo run --example session_login
//! ```
//!
//! The demo user is `alice` with the password printed at start. Plain http on localhost
//! uses the dev cookie (`session`, no `Secure`); behind TLS drop `with_insecure_dev_cookie`.

use std::sync::Arc;

use axum::extract::{Form, Query};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use portcullis::session::{
    MemoryStore, NewSession, SessionConfig, SessionManager, SessionStore, Sessions,
};
use portcullis::{AuthContext, AuthLayer, LoginRedirect, User, Users, hash_password};
use serde::Deserialize;

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only local paths are followed after login (no open redirect).
async fn login_page(Query(q): Query<Next>) -> Html<String> {
    let next = LoginRedirect::safe_next(q.next.as_deref());
    Html(format!(
        "<form method=post action=\"/login?next={}\"><input name=username><input name=password type=password><button>Sign in</button></form>",
        percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
    ))
}

async fn login(
    Extension(users): Extension<Arc<Users>>,
    Query(q): Query<Next>,
    sessions: Sessions,
    Form(f): Form<LoginForm>,
) -> Response {
    let Ok(user) = users.verify(&f.username, &f.password).await else {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Html("wrong user name or password <a href=/login>try again</a>"),
        )
            .into_response();
    };
    match sessions
        .login(NewSession::new(f.username).with_roles(user.roles().iter().cloned()))
        .await
    {
        Ok(cookie) => (
            cookie,
            Redirect::to(LoginRedirect::safe_next(q.next.as_deref())),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn logout(sessions: Sessions) -> Response {
    match sessions.logout().await {
        Ok(cookie) => (cookie, Redirect::to("/login")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The app: `/login` (form), `/logout`, and `/` for a session (HTML requests without one
/// are redirected to the login page).
pub fn app(users: Arc<Users>, store: Arc<dyn SessionStore>) -> Router {
    let sessions =
        SessionManager::from_arc(store, SessionConfig::default().with_insecure_dev_cookie());

    let pages = Router::new()
        .route(
            "/",
            get(|ctx: AuthContext| async move {
                Html(format!(
                    "hello {} <form method=post action=/logout><button>Sign out</button></form>",
                    ctx.subject()
                ))
            }),
        )
        .layer(
            AuthLayer::required(sessions.authenticator())
                .with_responder(LoginRedirect::new("/login")),
        );
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .merge(pages)
        .layer(Extension(users))
        .layer(Extension(sessions))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let password = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let users = Arc::new(Users::new().with_user(
        "alice",
        User::hashed(&hash_password(&password)?)?.with_roles(["member"]),
    ));
    let store: Arc<dyn SessionStore> = match std::env::var("SESSION_STORE_URL")
        .ok()
        .filter(|u| u != "memory")
    {
        Some(u) if u.starts_with("redis") => {
            Arc::new(portcullis::session::RedisStore::connect(&u).await?)
        }
        Some(u) if u.starts_with("postgres") => {
            Arc::new(portcullis::session::PostgresStore::connect(&u).await?)
        }
        Some(u) => return Err(format!("unsupported SESSION_STORE_URL {u}").into()),
        None => Arc::new(MemoryStore::new()),
    };
    let app = app(users, store);

    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3004".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("session_login on {base}; user alice, password {password}");
    println!(
        "curl -s -c /tmp/s.jar -d 'username=alice&password={password}' {base}/login -o /dev/null -w '%{{http_code}}\\n'"
    );
    println!("curl -s -b /tmp/s.jar {base}/");
    axum::serve(listener, app).await?;
    Ok(())
}
