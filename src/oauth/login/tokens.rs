//! The provider's side of a login: the code exchange, the ID token's checks, and the
//! user from GitHub's API.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ACCEPT, AUTHORIZATION};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthorizationCode, EndpointNotSet, EndpointSet, ExtraTokenFields, PkceCodeVerifier,
    RequestTokenError, StandardRevocableToken, StandardTokenResponse, TokenResponse,
};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use super::OAuthLogin;
use crate::egress::read_capped;
use crate::error::AuthError;
use crate::oauth::profile::Profile;
use crate::oauth::provider::join;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(super) struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

pub(super) type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;
pub(super) type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug)]
pub(super) struct HttpFailure(&'static str);
impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for HttpFailure {}

impl OAuthLogin {
    pub(super) async fn exchange(
        &self,
        code: String,
        verifier: String,
    ) -> Result<Tokens, AuthError> {
        let http = self.inner.http.clone();
        let cap = self.inner.max_response_bytes;
        let timeout = self.inner.timeout;
        let send = move |req: oauth2::HttpRequest| {
            let http = http.clone();
            async move {
                let (parts, body) = req.into_parts();
                let resp = http
                    .request(parts.method, parts.uri.to_string())
                    .timeout(timeout)
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|_| HttpFailure("token endpoint unreachable"))?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = read_capped(resp, cap).await.map_err(HttpFailure)?;
                let mut out = http::Response::new(body);
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                Ok::<_, HttpFailure>(out)
            }
        };
        self.inner
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&send)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    tracing::info!(error = %r.error(), "the token endpoint refused the code");
                    AuthError::invalid("oauth: the code was refused (expired or used)")
                }
                RequestTokenError::Request(_) => {
                    AuthError::unavailable("oauth: token endpoint unreachable")
                }
                _ => AuthError::unavailable("oauth: token endpoint answered garbage"),
            })
    }

    pub(super) async fn id_token_profile(
        &self,
        tokens: &Tokens,
        nonce: &str,
        issuer: &str,
    ) -> Result<Profile, AuthError> {
        let id_token = tokens
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| AuthError::invalid("oauth: no id_token"))?;
        let verifier = self
            .inner
            .id_tokens
            .as_ref()
            .ok_or_else(|| AuthError::invalid("oauth: no id_token verifier"))?;
        let ctx = verifier.verify(id_token).await?;
        let claims = ctx.claims().clone();
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        match text("nonce") {
            Some(n) if bool::from(n.as_bytes().ct_eq(nonce.as_bytes())) => {}
            _ => return Err(AuthError::invalid("oauth: id_token nonce mismatch")),
        }
        let several_audiences = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match text("azp") {
            Some(azp) if azp != self.inner.client_id => {
                return Err(AuthError::invalid("oauth: id_token azp is another client"));
            }
            None if several_audiences => {
                return Err(AuthError::invalid(
                    "oauth: id_token with several audiences lacks azp",
                ));
            }
            _ => {}
        }
        if let Some(at_hash) = text("at_hash") {
            let alg = header_alg(id_token)
                .ok_or_else(|| AuthError::invalid("oauth: bad id_token header"))?;
            let expected = left_half_hash(&alg, tokens.access_token().secret().as_bytes())
                .ok_or_else(|| AuthError::invalid("oauth: at_hash with an unknown algorithm"))?;
            if !bool::from(at_hash.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(AuthError::invalid(
                    "oauth: at_hash does not match the access token",
                ));
            }
        }
        let email = match claims.get("email_verified") {
            Some(Value::Bool(true)) => text("email").map(str::to_owned),
            _ => None,
        };
        Ok(Profile {
            subject: ctx.subject().to_owned(),
            issuer: issuer.to_owned(),
            email,
            name: text("name").map(str::to_owned),
            access_token: tokens.access_token().secret().clone(),
            refresh_token: self.refresh_token(tokens),
            claims,
        })
    }

    pub(super) fn refresh_token(&self, tokens: &Tokens) -> Option<String> {
        if self.inner.keep_refresh_token {
            tokens.refresh_token().map(|t| t.secret().clone())
        } else {
            None
        }
    }

    pub(super) async fn github_get(&self, url: Url, token: &str) -> Result<Value, AuthError> {
        let resp = self
            .inner
            .http
            .get(url)
            .timeout(self.inner.timeout)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, "application/vnd.github+json")
            .header(http::header::USER_AGENT, "portcullis")
            .send()
            .await
            .map_err(|_| AuthError::unavailable("oauth: user API unreachable"))?;
        if !resp.status().is_success() {
            return Err(AuthError::invalid("oauth: the user API refused the token"));
        }
        let body = read_capped(resp, self.inner.max_response_bytes)
            .await
            .map_err(AuthError::unavailable)?;
        serde_json::from_slice(&body)
            .map_err(|_| AuthError::unavailable("oauth: user API answered garbage"))
    }

    pub(super) async fn github_profile(
        &self,
        tokens: &Tokens,
        api: &Url,
    ) -> Result<Profile, AuthError> {
        let token = tokens.access_token().secret();
        let join =
            |path: &str| join(api, path).ok_or(AuthError::unavailable("oauth: bad user API URL"));
        let user = self.github_get(join("/user")?, token).await?;
        let Value::Object(claims) = user else {
            return Err(AuthError::unavailable("oauth: user API answered garbage"));
        };
        let subject = match claims.get("id") {
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            _ => {
                return Err(AuthError::invalid(
                    "oauth: GitHub user without a numeric id",
                ));
            }
        };
        // The primary address, when verified (the profile's public e-mail may be anything).
        let emails = self.github_get(join("/user/emails")?, token).await.ok();
        let email = emails
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter().find(|e| {
                    e["primary"] == Value::Bool(true) && e["verified"] == Value::Bool(true)
                })
            })
            .and_then(|e| e["email"].as_str())
            .map(str::to_owned);
        Ok(Profile {
            subject,
            issuer: self.inner.provider.name.clone(),
            email,
            name: claims
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            access_token: token.clone(),
            refresh_token: self.refresh_token(tokens),
            claims,
        })
    }
}

/// The `alg` of a compact JWS header.
pub(super) fn header_alg(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let v: Map<String, Value> = serde_json::from_slice(&header).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

/// OIDC `at_hash`: base64url of the left half of the hash `alg` names.
pub(super) fn left_half_hash(alg: &str, data: &[u8]) -> Option<String> {
    let digest: Vec<u8> = match alg {
        "RS256" | "PS256" | "ES256" => Sha256::digest(data).to_vec(),
        "RS384" | "PS384" | "ES384" => Sha384::digest(data).to_vec(),
        "RS512" | "PS512" | "EdDSA" => Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_spec_example() {
        // OpenID Connect Core, appendix A.3: access token and at_hash of an RS256 ID token.
        assert_eq!(
            left_half_hash("RS256", b"jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(left_half_hash("HS256", b"x"), None);
    }
}
