//! [`OAuthProvider`]: where to send the user, where to exchange the code, and how to
//! learn who signed in (a verified ID token, or a user-info API).

use reqwest::Url;
use serde_json::{Map, Value};

use crate::egress::check_url;
use crate::egress::read_capped;
use crate::error::ConfigError;
use crate::jwt::{Algorithm, JwksOptions, RemoteJwks};

/// Algorithms an ID token may use (asymmetric only: the client secret never signs).
const ID_TOKEN_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How the signed-in user is learnt.
#[derive(Debug, Clone)]
pub(super) enum Identity {
    /// An OpenID Connect provider: the ID token, verified with the provider's keys.
    Oidc {
        issuer: String,
        jwks: RemoteJwks,
        algorithms: Vec<Algorithm>,
        /// The provider puts `iss` on every authorization response (RFC 9207): a
        /// callback without it is refused.
        iss_in_response: bool,
        /// Its discovery document says `backchannel_logout_supported`.
        backchannel_logout: bool,
    },
    /// GitHub (and GitHub Enterprise Server): `GET <api>/user` and `<api>/user/emails`.
    GitHub { api: Url },
}

/// An OAuth 2 / OpenID Connect provider. Build one by discovery ([`discover`](Self::discover)),
/// or with a preset: [`google`](Self::google), [`microsoft`](Self::microsoft),
/// [`github`](Self::github).
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::ConfigError> {
/// use portcullis::oauth::OAuthProvider;
/// let google = OAuthProvider::google().await?;
/// let keycloak = OAuthProvider::discover("https://sso.example.com/realms/acme").await?;
/// let github = OAuthProvider::github();
/// # let _ = (google, keycloak, github); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub(super) name: String,
    pub(super) authorization: Url,
    pub(super) token: Url,
    pub(super) end_session: Option<Url>,
    pub(super) identity: Identity,
    pub(super) scopes: Vec<String>,
    pub(super) options: JwksOptions,
}

fn endpoint(
    doc: &Map<String, Value>,
    name: &str,
    options: &JwksOptions,
) -> Result<Url, ConfigError> {
    let raw = doc
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ConfigError::new(format!("discovery document has no {name}")))?;
    options.egress.url(raw)
}

/// `base` with `path` (starting with `/`) appended to its path.
pub(super) fn join(base: &Url, path: &str) -> Option<Url> {
    Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/'))).ok()
}

impl OAuthProvider {
    /// An OpenID Connect provider found at `<issuer>/.well-known/openid-configuration`:
    /// the document's `issuer` must equal `issuer` exactly; its authorization, token and
    /// key endpoints (and `end_session_endpoint`, when advertised) are used. Fetched now,
    /// so a wrong URL fails here.
    ///
    /// # Errors
    /// The document cannot be fetched, is not JSON, names another issuer or lacks an
    /// endpoint; an endpoint is not https (plain http is accepted on loopback hosts).
    pub async fn discover(issuer: &str) -> Result<Self, ConfigError> {
        Self::discover_with(issuer, JwksOptions::default()).await
    }

    /// [`discover`](Self::discover) with fetch and egress settings (proxies, private
    /// roots, timeouts) for the discovery document, the keys, the token endpoint and
    /// user-info calls.
    ///
    /// # Errors
    /// As [`discover`](Self::discover).
    pub async fn discover_with(issuer: &str, options: JwksOptions) -> Result<Self, ConfigError> {
        let base = options.egress.url(issuer)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        );
        let client = options.egress.client()?;
        let fail = |why: &str| ConfigError::new(format!("OIDC discovery at {url}: {why}"));
        let resp = client
            .get(&url)
            .timeout(options.egress.timeout)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| fail("request failed or timed out"))?;
        if !resp.status().is_success() {
            return Err(fail(&format!("answered {}", resp.status())));
        }
        let body = read_capped(resp, options.egress.max_response_bytes)
            .await
            .map_err(fail)?;
        let doc: Map<String, Value> =
            serde_json::from_slice(&body).map_err(|_| fail("not a JSON object"))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(fail("the document names another issuer"));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("no jwks_uri"))?;
        let advertised: Vec<Algorithm> = doc
            .get("id_token_signing_alg_values_supported")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(Algorithm::from_jose)
                    .filter(|alg| ID_TOKEN_ALGORITHMS.contains(alg))
                    .collect()
            })
            .unwrap_or_else(|| vec![Algorithm::RS256]);
        if advertised.is_empty() {
            return Err(fail("no asymmetric ID token algorithm advertised"));
        }
        let end_session = match doc.get("end_session_endpoint") {
            Some(_) => Some(endpoint(&doc, "end_session_endpoint", &options)?),
            None => None,
        };
        Ok(OAuthProvider {
            name: issuer.to_owned(),
            authorization: endpoint(&doc, "authorization_endpoint", &options)?,
            token: endpoint(&doc, "token_endpoint", &options)?,
            end_session,
            identity: Identity::Oidc {
                issuer: issuer.to_owned(),
                jwks: RemoteJwks::new(jwks_uri, advertised.clone(), options.clone())?,
                algorithms: advertised,
                iss_in_response: doc
                    .get("authorization_response_iss_parameter_supported")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                backchannel_logout: doc
                    .get("backchannel_logout_supported")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            options,
        })
    }

    /// Google accounts (`https://accounts.google.com`), by discovery.
    ///
    /// # Errors
    /// As [`discover`](Self::discover).
    pub async fn google() -> Result<Self, ConfigError> {
        Self::discover("https://accounts.google.com").await
    }

    /// Microsoft Entra ID accounts of one tenant (its directory id), by discovery of
    /// `https://login.microsoftonline.com/<tenant>/v2.0`.
    ///
    /// # Errors
    /// As [`discover`](Self::discover); `common` and `organizations` have no single
    /// issuer and are refused.
    pub async fn microsoft(tenant: &str) -> Result<Self, ConfigError> {
        if matches!(tenant, "common" | "organizations" | "consumers") || tenant.contains('/') {
            return Err(ConfigError::new(
                "Microsoft: name one tenant's directory id, not common/organizations/consumers",
            ));
        }
        Self::discover(&format!("https://login.microsoftonline.com/{tenant}/v2.0")).await
    }

    /// GitHub accounts: OAuth 2 without an ID token; the user comes from GitHub's API
    /// (`/user`, and `/user/emails` for a verified primary address).
    pub fn github() -> Self {
        let parse = |u: &str| Url::parse(u).unwrap_or_else(|_| unreachable!());
        OAuthProvider {
            name: "https://github.com".into(),
            authorization: parse("https://github.com/login/oauth/authorize"),
            token: parse("https://github.com/login/oauth/access_token"),
            end_session: None,
            identity: Identity::GitHub {
                api: parse("https://api.github.com"),
            },
            scopes: vec!["read:user".into(), "user:email".into()],
            options: JwksOptions::default(),
        }
    }

    /// A GitHub Enterprise Server at `web` (e.g. `https://github.example.com`), its API at
    /// `api` (usually `<web>/api/v3`).
    ///
    /// # Errors
    /// A URL is not https (plain http is accepted on loopback hosts).
    pub fn github_enterprise(web: &str, api: &str) -> Result<Self, ConfigError> {
        let web = check_url(web.trim_end_matches('/'), false)?;
        let api = check_url(api.trim_end_matches('/'), false)?;
        let join =
            |path: &str| join(&web, path).ok_or(ConfigError::new("GitHub Enterprise: bad URL"));
        Ok(OAuthProvider {
            name: web.as_str().trim_end_matches('/').to_owned(),
            authorization: join("/login/oauth/authorize")?,
            token: join("/login/oauth/access_token")?,
            end_session: None,
            identity: Identity::GitHub { api },
            scopes: vec!["read:user".into(), "user:email".into()],
            options: JwksOptions::default(),
        })
    }

    /// Ask for these scopes instead of the preset's (`openid email profile` for OIDC;
    /// `openid` is always kept for an OIDC provider).
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        if matches!(self.identity, Identity::Oidc { .. })
            && !self.scopes.iter().any(|s| s == "openid")
        {
            self.scopes.insert(0, "openid".into());
        }
        self
    }

    /// Fetch and egress settings (proxies, private roots, timeout) for the token
    /// endpoint and user-info calls; for an OIDC provider, pass them to
    /// [`discover_with`](Self::discover_with) so the keys use them too.
    pub fn with_options(mut self, options: JwksOptions) -> Self {
        self.options = options;
        self
    }

    /// The issuer (OIDC), or GitHub's web address (`https://github.com`, or the
    /// Enterprise server's): what [`Profile::issuer`](super::Profile::issuer) says.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when the provider's discovery document says it sends back-channel logout
    /// tokens (`backchannel_logout_supported`): register `<your routes>/backchannel-logout`
    /// as the client's `backchannel_logout_uri` there.
    pub fn supports_backchannel_logout(&self) -> bool {
        matches!(
            self.identity,
            Identity::Oidc {
                backchannel_logout: true,
                ..
            }
        )
    }
}
