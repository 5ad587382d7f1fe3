//! [`KeyServer`]: a JWKS / OIDC discovery / Cloudflare certs server on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::dev_idp::{self, DevIdp};

#[derive(Debug)]
struct Behaviour {
    base: String,
    jwks: Value,
    status: StatusCode,
    delay: Duration,
    cache_control: Option<String>,
    body_override: Option<String>,
    issuer_override: Option<String>,
    introspected: HashMap<String, Value>,
    idp: DevIdp,
    hits: HashMap<String, usize>,
    /// Further issuers at `/realms/<name>` (discovery and keys), each its own key set.
    realms: HashMap<String, Value>,
}

impl Behaviour {
    /// The first test key the served set holds (RS256 when none): what tokens of this
    /// server are signed with.
    fn signer(&self) -> super::TestKey {
        super::TestKey::ALL
            .into_iter()
            .find(|k| {
                self.jwks["keys"]
                    .as_array()
                    .is_some_and(|keys| keys.iter().any(|j| j["kid"] == k.kid()))
            })
            .unwrap_or(super::TestKey::Rs256)
    }
}

type Shared = Arc<Mutex<Behaviour>>;

/// A real HTTP server on a free loopback port that serves:
/// - `GET /jwks.json` and `GET /cdn-cgi/access/certs`: the current key set;
/// - `GET /.well-known/openid-configuration`: `{"issuer": <base url>, "jwks_uri": <base>/jwks.json}`;
/// - a development OAuth 2 / OIDC provider for [`TEST_CLIENT_ID`](super::TEST_CLIENT_ID):
///   `GET /authorize` approves the user of [`set_login_user`](Self::set_login_user)
///   (`alice` by default) at once and redirects back with a code (PKCE S256 required);
///   `POST /token` exchanges it once for an access token and an ID token (`openid`
///   scope) signed like [`token_for`](Self::token_for); `GET /userinfo`; `GET /logout`
///   (the end-session endpoint); GitHub-style `GET /api/v3/user` and
///   `/api/v3/user/emails`, with `/login/oauth/authorize` and
///   `/login/oauth/access_token` as aliases; the discovery document lists them;
/// - `GET /alb-keys/<kid>`: the served key with that `kid` as a PEM public key, the way
///   the AWS ALB's regional key endpoint serves its keys (404 for other `kid`s);
/// - `POST /introspect`: RFC 7662 token introspection for the client
///   [`TEST_CLIENT_ID`](super::TEST_CLIENT_ID) / [`TEST_CLIENT_SECRET`](super::TEST_CLIENT_SECRET)
///   (HTTP Basic): the claims of tokens registered with
///   [`add_introspected_token`](Self::add_introspected_token) with `"active": true`,
///   `{"active": false}` for any other token, 401 for another client.
///
/// Behaviour can be changed while it runs (keys, status, delay, garbage body), and it
/// counts requests per path. Shuts down when dropped.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use portcullis::testing::{KeyServer, TestKey, jwks};
/// let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
/// assert!(server.url("/jwks.json").starts_with("http://127.0.0.1:"));
/// assert_eq!(server.hits("/jwks.json"), 0);
/// # });
/// ```
#[derive(Debug)]
pub struct KeyServer {
    addr: SocketAddr,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
}

/// The answer of the introspection endpoint to a form `body` sent with `headers`.
fn introspect(s: &Behaviour, headers: &HeaderMap, body: &[u8]) -> Result<String, StatusCode> {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        super::TEST_CLIENT_ID,
        super::TEST_CLIENT_SECRET
    ));
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.strip_prefix("Basic ") == Some(expected.as_str()));
    if !authorized {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let token = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .ok_or(StatusCode::BAD_REQUEST)?;
    Ok(match s.introspected.get(&token) {
        Some(Value::Object(claims)) => {
            let mut m = claims.clone();
            m.insert("active".into(), Value::Bool(true));
            Value::Object(m).to_string()
        }
        _ => json!({"active": false}).to_string(),
    })
}

async fn serve(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (delay, status, body, cache_control) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        *s.hits.entry(path.clone()).or_default() += 1;
        if s.status == StatusCode::OK && s.body_override.is_none() {
            let base = s.base.clone();
            let signer = s.signer();
            match (method.as_str(), path.as_str()) {
                ("GET", "/authorize" | "/login/oauth/authorize") => {
                    return s.idp.authorize(&base, uri.query().unwrap_or(""));
                }
                ("POST", "/token" | "/login/oauth/access_token") => {
                    return s.idp.token(&base, signer, &headers, &body);
                }
                ("GET", "/userinfo" | "/api/v3/user" | "/api/v3/user/emails") => {
                    return s.idp.user_api(&path, &headers);
                }
                ("GET", "/logout") => return (StatusCode::OK, "signed out").into_response(),
                _ => {}
            }
        }
        let body = match (&s.body_override, path.as_str()) {
            (Some(b), _) => b.clone(),
            (None, "/introspect") if method == Method::POST => {
                match introspect(&s, &headers, &body) {
                    Ok(b) => b,
                    Err(code) => return code.into_response(),
                }
            }
            (None, "/jwks.json" | "/cdn-cgi/access/certs") => s.jwks.to_string(),
            (None, alb) if alb.starts_with("/alb-keys/") => {
                let kid = &alb["/alb-keys/".len()..];
                let served = s.jwks["keys"]
                    .as_array()
                    .is_some_and(|keys| keys.iter().any(|j| j["kid"] == kid));
                match super::TestKey::ALL.into_iter().find(|k| k.kid() == kid) {
                    Some(k) if served => k.public_pem().to_owned(),
                    _ => return StatusCode::NOT_FOUND.into_response(),
                }
            }
            (None, realm) if realm.starts_with("/realms/") => {
                let rest = &realm["/realms/".len()..];
                let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
                match (s.realms.get(name), what) {
                    (Some(keys), "jwks.json") => keys.to_string(),
                    (Some(_), ".well-known/openid-configuration") => {
                        let issuer = format!("{}/realms/{name}", s.base);
                        let mut doc = dev_idp::discovery_endpoints(&issuer);
                        doc["issuer"] = issuer.clone().into();
                        doc["jwks_uri"] = format!("{issuer}/jwks.json").into();
                        doc.to_string()
                    }
                    _ => return StatusCode::NOT_FOUND.into_response(),
                }
            }
            (None, "/.well-known/openid-configuration") => {
                let mut doc = dev_idp::discovery_endpoints(&s.base);
                doc["issuer"] = s
                    .issuer_override
                    .clone()
                    .unwrap_or_else(|| s.base.clone())
                    .into();
                doc["jwks_uri"] = format!("{}/jwks.json", s.base).into();
                doc.to_string()
            }
            _ => return StatusCode::NOT_FOUND.into_response(),
        };
        (s.delay, s.status, body, s.cache_control.clone())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(cc) = cache_control.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::CACHE_CONTROL, cc);
    }
    res
}

impl KeyServer {
    /// Starts serving `jwks` on `127.0.0.1:<free port>`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test environment).
    pub async fn start(jwks: Value) -> KeyServer {
        super::in_use();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state: Shared = Arc::new(Mutex::new(Behaviour {
            base: format!("http://{addr}"),
            jwks,
            status: StatusCode::OK,
            delay: Duration::ZERO,
            cache_control: None,
            body_override: None,
            issuer_override: None,
            introspected: HashMap::new(),
            idp: DevIdp::default(),
            hits: HashMap::new(),
            realms: HashMap::new(),
        }));
        let app = Router::new().fallback(serve).with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        KeyServer {
            addr,
            state,
            stop: Some(tx),
        }
    }

    fn edit(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:<port>` (also the OIDC issuer it advertises).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The issuer its discovery document advertises (the base URL), for
    /// `Validation::with_issuer` or [`BearerAuth::oidc`](crate::jwt::BearerAuth::oidc).
    pub fn issuer(&self) -> String {
        self.base_url()
    }
    /// A token for `subject` that this server's keys verify: issuer [`issuer`](Self::issuer),
    /// audience [`TEST_AUDIENCE`](super::TEST_AUDIENCE), ten minutes to live, signed by
    /// the first [`TestKey`](super::TestKey) the served key set holds (RS256 when none).
    /// Add claims with [`token_builder_for`](Self::token_builder_for).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use portcullis::testing::{KeyServer, TestKey, jwks};
    /// let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    /// let token = server.token_for("alice");
    /// assert_eq!(token.split('.').count(), 3);
    /// # });
    /// ```
    pub fn token_for(&self, subject: &str) -> String {
        self.token_builder_for(subject).sign()
    }
    /// The builder behind [`token_for`](Self::token_for), to add roles, scopes or
    /// anything else before signing.
    pub fn token_builder_for(&self, subject: &str) -> super::TokenBuilder {
        let key = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .signer();
        super::TokenBuilder::new(key)
            .with_claim("sub", subject)
            .with_claim("iss", self.issuer())
            .with_claim("aud", super::TEST_AUDIENCE)
    }
    /// A back-channel logout token from this provider (OpenID Back-Channel Logout 1.0)
    /// for [`TEST_CLIENT_ID`](super::TEST_CLIENT_ID), naming `sub` and/or `sid`, with a
    /// fresh `jti`; sign it, or change a claim first to test a refusal.
    pub fn logout_token_builder(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
    ) -> super::TokenBuilder {
        let key = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .signer();
        let mut jti = [0u8; 12];
        let _ = getrandom::fill(&mut jti);
        let mut b = super::TokenBuilder::new(key)
            .with_header("typ", "logout+jwt")
            .with_claim("iss", self.issuer())
            .with_claim("aud", super::TEST_CLIENT_ID)
            .with_claim("iat", super::now())
            .with_claim("exp", super::now() + 120)
            .with_claim(
                "jti",
                jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            )
            .with_claim(
                "events",
                serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
            );
        if let Some(s) = sub {
            b = b.with_claim("sub", s);
        }
        if let Some(s) = sid {
            b = b.with_claim("sid", s);
        }
        b
    }
    /// Serves another issuer, `<base_url>/realms/<name>`, with its own `jwks`: its
    /// discovery document and key set (a Keycloak-style realm, for multi-tenant tests).
    pub fn add_realm(&self, name: &str, jwks: Value) {
        let name = name.to_owned();
        self.edit(|b| {
            b.realms.insert(name, jwks);
        });
    }
    /// `base_url() + path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    /// Serve another key set from now on.
    pub fn set_jwks(&self, jwks: Value) {
        self.edit(|b| b.jwks = jwks);
    }
    /// Answer every request with `status`.
    pub fn set_status(&self, status: StatusCode) {
        self.edit(|b| b.status = status);
    }
    /// Wait `delay` before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.edit(|b| b.delay = delay);
    }
    /// Send this `Cache-Control` header.
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.edit(|b| b.cache_control = value.map(str::to_owned));
    }
    /// Serve `body` verbatim on every path (garbage, huge documents...).
    pub fn set_body(&self, body: Option<String>) {
        self.edit(|b| b.body_override = body);
    }
    /// Advertise another `issuer` in the discovery document.
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        self.edit(|b| b.issuer_override = issuer.map(str::to_owned));
    }
    /// Answer introspection requests for `token` with `claims` (a JSON object) and
    /// `"active": true`.
    pub fn add_introspected_token(&self, token: &str, claims: Value) {
        self.edit(|b| {
            b.introspected.insert(token.to_owned(), claims);
        });
    }
    /// The user the development provider signs in, with the claims its ID token and
    /// user info carry (`email`, `email_verified`, `name`, `roles`...; `github_id` for the
    /// GitHub-style API).
    pub fn set_login_user(&self, subject: &str, claims: Value) {
        self.edit(|b| b.idp.set_user(subject, claims));
    }
    /// Claims to put into (or, with `null`, remove from) the next ID tokens: a wrong
    /// `nonce`, another `aud` or `iss`... `Value::Null` resets.
    pub fn set_id_token_claims(&self, claims: Value) {
        self.edit(|b| {
            b.idp.id_token_overrides = match claims {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            }
        });
    }
    /// Sign ID tokens with `key` instead of the served key set's (`None` resets).
    pub fn set_id_token_key(&self, key: Option<super::TestKey>) {
        self.edit(|b| b.idp.id_token_key = key);
    }
    /// Make the authorization endpoint redirect back with `error` (e.g.
    /// `access_denied`) instead of a code; `None` resets.
    pub fn set_authorize_error(&self, error: Option<&str>) {
        self.edit(|b| b.idp.authorize_error = error.map(str::to_owned));
    }
    /// Leave `iss` out of authorization responses while the discovery document still
    /// advertises `authorization_response_iss_parameter_supported` (RFC 9207), as a
    /// forged response in a mix-up attack would.
    pub fn set_omit_authorization_iss(&self, omit: bool) {
        self.edit(|b| b.idp.omit_iss = omit);
    }
    /// Requests seen on `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
    /// Requests seen on any path.
    pub fn total_hits(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hits
            .values()
            .sum()
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
