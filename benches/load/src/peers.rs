//! The peer crates, configured as their documentation shows, verifying the same tokens.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use portcullis::testing::TestKey;
use serde::{Deserialize, Serialize};

use super::{AUD, ISS};

/// tower-http's `ValidateRequestHeaderLayer::bearer`: a static token comparison, not JWT
/// verification. A floor for "checking an Authorization header at all".
pub fn tower_http_bearer() -> (Router, String) {
    #[allow(deprecated)]
    let layer =
        tower_http::validate_request::ValidateRequestHeaderLayer::bearer("static-token-123");
    (
        Router::new()
            .route("/", get(|| async { "static" }))
            .layer(layer),
        "Authorization: Bearer static-token-123".into(),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    sub: String,
    exp: u64,
    iss: String,
    aud: String,
}

#[derive(Clone, FromRef)]
struct JwtState {
    decoder: axum_jwt_auth::Decoder<Claims>,
}

/// axum-jwt-auth with a local RSA key (its jsonwebtoken 10 uses the RustCrypto backend).
pub fn axum_jwt_auth(token: String) -> (Router, String) {
    use jsonwebtoken10::{Algorithm, DecodingKey, Validation};
    let key = DecodingKey::from_rsa_pem(TestKey::Rs256.public_pem().as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    let decoder = axum_jwt_auth::LocalDecoder::builder()
        .keys(vec![key])
        .validation(validation)
        .build()
        .unwrap();
    let state = JwtState {
        decoder: Arc::new(decoder),
    };
    let app = Router::new()
        .route(
            "/",
            get(|c: axum_jwt_auth::Claims<Claims>| async move { c.claims.sub }),
        )
        .with_state(state);
    (app, format!("Authorization: Bearer {token}"))
}

/// jwt-authorizer 0.15 (axum 0.7, jsonwebtoken 9 on ring), on its own axum 0.7 server.
pub async fn jwt_authorizer(addr: &str) {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, JwtClaims, Validation};
    let auth: jwt_authorizer::Authorizer<serde_json::Value> =
        JwtAuthorizer::from_rsa_pem_text(TestKey::Rs256.public_pem())
            .validation(Validation::new().iss(&[ISS]).aud(&[AUD]))
            .build()
            .await
            .unwrap();
    let app = axum07::Router::new()
        .route(
            "/",
            axum07::routing::get(|JwtClaims(c): JwtClaims<serde_json::Value>| async move {
                c["sub"].as_str().unwrap_or("").to_owned()
            }),
        )
        .layer(auth.into_layer());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    println!("READY");
    axum07::serve(listener, app).await.unwrap();
}

#[derive(Clone)]
struct User {
    id: u64,
    name: String,
    hash: Vec<u8>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("id", &self.id).finish()
    }
}

impl axum_login::AuthUser for User {
    type Id = u64;
    fn id(&self) -> u64 {
        self.id
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.hash
    }
}

#[derive(Clone, Default)]
struct Backend {
    users: Arc<HashMap<u64, User>>,
}

#[derive(Debug)]
struct NoError;
impl std::fmt::Display for NoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error")
    }
}
impl std::error::Error for NoError {}

impl axum_login::AuthnBackend for Backend {
    type User = User;
    type Credentials = u64;
    type Error = NoError;
    async fn authenticate(&self, id: u64) -> Result<Option<User>, NoError> {
        Ok(self.users.get(&id).cloned())
    }
    async fn get_user(&self, id: &u64) -> Result<Option<User>, NoError> {
        Ok(self.users.get(id).cloned())
    }
}

/// axum-login 0.18 with tower-sessions' memory store; POST /login logs user 1 in.
pub fn axum_login() -> Router {
    use axum_login::{AuthManagerLayerBuilder, AuthSession, login_required};
    use tower_sessions::{MemoryStore, SessionManagerLayer};
    let backend = Backend {
        users: Arc::new(HashMap::from([(
            1,
            User {
                id: 1,
                name: "alice".into(),
                hash: b"alice-hash".to_vec(),
            },
        )])),
    };
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let auth = AuthManagerLayerBuilder::new(backend, sessions).build();
    Router::new()
        .route(
            "/",
            get(
                |s: AuthSession<Backend>| async move { s.user.map(|u| u.name).unwrap_or_default() },
            ),
        )
        .route_layer(login_required!(Backend))
        .route(
            "/login",
            post(|mut s: AuthSession<Backend>| async move {
                let user = s.authenticate(1).await.ok().flatten().unwrap();
                s.login(&user).await.unwrap();
                "logged in"
            }),
        )
        .layer(auth)
}
