//! The [`KeyServer`](super::KeyServer)'s development identity provider: an authorization
//! endpoint that approves one configured user at once, a token endpoint (authorization
//! code + PKCE), user info, an end-session endpoint, and GitHub-style user APIs.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestKey, TokenBuilder, now};

/// Codes and tokens kept at most (oldest dropped past it).
const MAX_GRANTS: usize = 1024;

#[derive(Debug, Clone)]
struct Grant {
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    openid: bool,
}

/// What the development provider knows and how it misbehaves on request.
#[derive(Debug)]
pub(super) struct DevIdp {
    subject: String,
    claims: Map<String, Value>,
    codes: HashMap<String, Grant>,
    access_tokens: HashMap<String, ()>,
    pub(super) id_token_overrides: Map<String, Value>,
    pub(super) id_token_key: Option<TestKey>,
    pub(super) authorize_error: Option<String>,
    /// Leave `iss` out of authorization responses (the discovery document still
    /// advertises it), as a mix-up attacker's forged response would.
    pub(super) omit_iss: bool,
}

impl Default for DevIdp {
    fn default() -> Self {
        let mut claims = Map::new();
        claims.insert("email".into(), "alice@example.com".into());
        claims.insert("email_verified".into(), true.into());
        claims.insert("name".into(), "Alice Example".into());
        DevIdp {
            subject: "alice".into(),
            claims,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            id_token_overrides: Map::new(),
            id_token_key: None,
            authorize_error: None,
            omit_iss: false,
        }
    }
}

fn random() -> String {
    let mut b = [0u8; 24];
    // The test kit: a failing OS RNG is a broken machine; the zero token still works.
    let _ = getrandom::fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn json_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": error}).to_string(),
    )
        .into_response()
}

/// The client the request authenticates as (HTTP Basic or form fields), when it is the
/// test client with its secret.
fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match &basic {
        Some(pair) => match pair.split_once(':') {
            Some((i, s)) => (
                url::form_urlencoded::parse(format!("a={i}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned()),
                url::form_urlencoded::parse(format!("a={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned()),
            ),
            None => (None, None),
        },
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    id.as_deref() == Some(TEST_CLIENT_ID) && secret.as_deref() == Some(TEST_CLIENT_SECRET)
}

impl DevIdp {
    pub(super) fn set_user(&mut self, subject: &str, claims: Value) {
        self.subject = subject.to_owned();
        self.claims = match claims {
            Value::Object(m) => m,
            _ => Map::new(),
        };
    }

    fn bounded<V>(map: &mut HashMap<String, V>) {
        if map.len() >= MAX_GRANTS {
            map.clear();
        }
    }

    /// `GET /authorize`: approves the configured user at once.
    pub(super) fn authorize(&mut self, base: &str, query: &str) -> Response {
        let q = form(query.as_bytes());
        let get = |k: &str| q.get(k).map(String::as_str);
        let Some(redirect_uri) = get("redirect_uri").filter(|r| r.starts_with("http")) else {
            return (StatusCode::BAD_REQUEST, "redirect_uri missing").into_response();
        };
        if get("client_id") != Some(TEST_CLIENT_ID) {
            return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
        }
        let state = get("state").unwrap_or("");
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        // RFC 9207: `iss` on every authorization response, errors included.
        let iss = if self.omit_iss {
            String::new()
        } else {
            format!("&iss={}", encode(base))
        };
        let back = |params: String| {
            let mut res = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{redirect_uri}{sep}{params}{iss}")) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        };
        if let Some(err) = &self.authorize_error {
            return back(format!("error={}&state={}", encode(err), encode(state)));
        }
        let (Some(challenge), Some("S256"), Some("code")) = (
            get("code_challenge"),
            get("code_challenge_method"),
            get("response_type"),
        ) else {
            return back(format!("error=invalid_request&state={}", encode(state)));
        };
        let code = random();
        Self::bounded(&mut self.codes);
        self.codes.insert(
            code.clone(),
            Grant {
                redirect_uri: redirect_uri.to_owned(),
                challenge: challenge.to_owned(),
                nonce: get("nonce").map(str::to_owned),
                openid: get("scope").is_some_and(|s| s.split(' ').any(|x| x == "openid")),
            },
        );
        back(format!("code={}&state={}", encode(&code), encode(state)))
    }

    /// `POST /token`: the authorization-code grant with PKCE; each code works once.
    pub(super) fn token(
        &mut self,
        base: &str,
        signer: TestKey,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let f = form(body);
        if !client_ok(headers, &f) {
            return json_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
        if f.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return json_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
        }
        let Some(grant) = f.get("code").and_then(|c| self.codes.remove(c)) else {
            return json_error(StatusCode::BAD_REQUEST, "invalid_grant");
        };
        let verifier = f.get("code_verifier").map(String::as_str).unwrap_or("");
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if computed != grant.challenge || f.get("redirect_uri") != Some(&grant.redirect_uri) {
            return json_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let access_token = random();
        Self::bounded(&mut self.access_tokens);
        self.access_tokens.insert(access_token.clone(), ());
        let mut out = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": format!("dev-refresh-{}", random()),
        });
        if grant.openid {
            let key = self.id_token_key.unwrap_or(signer);
            let half = &Sha256::digest(access_token.as_bytes())[..16];
            let mut b = TokenBuilder::new(key)
                .with_claim("iss", base)
                .with_claim("aud", TEST_CLIENT_ID)
                .with_claim("azp", TEST_CLIENT_ID)
                .with_claim("sub", self.subject.clone())
                .with_claim("iat", now())
                .with_claim("exp", now() + 300)
                .with_claim("at_hash", URL_SAFE_NO_PAD.encode(half));
            if let Some(n) = &grant.nonce {
                b = b.with_claim("nonce", n.clone());
            }
            for (k, v) in self.claims.iter().chain(self.id_token_overrides.iter()) {
                b = match v {
                    Value::Null => b.without_claim(k),
                    _ => b.with_claim(k, v.clone()),
                };
            }
            out["id_token"] = b.sign().into();
        }
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            out.to_string(),
        )
            .into_response()
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.access_tokens.contains_key(t))
    }

    /// `GET /userinfo`, `GET /api/v3/user`, `GET /api/v3/user/emails` for an access token
    /// this provider issued.
    pub(super) fn user_api(&self, path: &str, headers: &HeaderMap) -> Response {
        if !self.bearer_ok(headers) {
            return json_error(StatusCode::UNAUTHORIZED, "invalid_token");
        }
        let email = self.claims.get("email").cloned().unwrap_or(Value::Null);
        let body = match path {
            "/userinfo" => {
                let mut m = self.claims.clone();
                m.insert("sub".into(), self.subject.clone().into());
                Value::Object(m)
            }
            "/api/v3/user" => json!({
                "login": self.subject,
                "id": self.claims.get("github_id").cloned().unwrap_or(json!(1_000_001)),
                "name": self.claims.get("name").cloned().unwrap_or(Value::Null),
                "email": null,
            }),
            _ => json!([
                {"email": "someone-else@example.com", "primary": false, "verified": true},
                {"email": email, "primary": true,
                 "verified": self.claims.get("email_verified").cloned().unwrap_or(json!(false))},
            ]),
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The discovery document's OAuth members for a server at `base`.
pub(super) fn discovery_endpoints(base: &str) -> Value {
    json!({
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "end_session_endpoint": format!("{base}/logout"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}
