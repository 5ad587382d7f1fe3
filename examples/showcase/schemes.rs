//! The showcase's token schemes and OIDC login: each from its real issuer when one is
//! configured, from the embedded dev issuer only in dev mode, and otherwise left
//! unconfigured: admitting nobody.

use portcullis::iap::IdentityProxy;
use portcullis::jwt::{
    Algorithm, BearerAuth, ClaimsMapping, Issuer, JwksOptions, JwtVerifier, RemoteJwks, Tenants,
    TokenCache, Validation,
};
use portcullis::oauth::{OAuthLogin, OAuthProvider};
use portcullis::resource::ReplayCache;
use portcullis::revocation::Revocations;
use portcullis::session::NewSession;
use portcullis::testing::{
    KeyServer, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestKey, TokenBuilder, jwks, now,
};
use portcullis::{AuthContext, AuthError, Authenticator, Challenge, Check, Scheme};
use serde_json::{Value, json};

use super::{Config, Error, presets, var};

/// The dev issuer: a loopback key server with the test kit's RS256 key. Its private half
/// ships in the crate, so it is started only in dev mode ([`Config::dev_mode`]).
pub struct DevIssuer {
    pub server: KeyServer,
}

impl DevIssuer {
    pub async fn start() -> Self {
        DevIssuer {
            server: KeyServer::start(jwks(&[TestKey::Rs256])).await,
        }
    }
}

/// A scheme left unconfigured: every request to its routes is answered 401 (with the
/// scheme's challenge), whatever it carries.
#[derive(Clone)]
pub struct NotConfigured {
    scheme: Scheme,
    challenge: Option<Challenge>,
}

impl NotConfigured {
    pub fn bearer() -> Self {
        NotConfigured {
            scheme: Scheme::Bearer,
            challenge: Some(Challenge::bearer("showcase")),
        }
    }
    pub fn cloudflare() -> Self {
        NotConfigured {
            scheme: Scheme::CloudflareAccess,
            challenge: None,
        }
    }
}

impl Authenticator for NotConfigured {
    type Credential = std::convert::Infallible;
    fn scheme(&self) -> Scheme {
        self.scheme
    }
    fn challenge(&self) -> Option<Challenge> {
        self.challenge.clone()
    }
    fn check(&self, _: &axum::http::request::Parts) -> Check<Self::Credential> {
        Check::Absent
    }
    async fn authenticate(
        &self,
        never: Self::Credential,
        _: &axum::http::request::Parts,
    ) -> Result<AuthContext, AuthError> {
        match never {}
    }
}

/// The bearer scheme, from the dev issuer a token for alice, the issuers, and the one
/// remote key set (for `/ready` to say why it is not usable); `None` when no issuer is
/// configured and not in dev mode.
pub async fn bearer_auth(
    c: &Config,
    dev: &Option<DevIssuer>,
    revocations: &Revocations,
) -> Result<Option<(BearerAuth, Option<String>, Vec<String>, Option<RemoteJwks>)>, Error> {
    let mapping = ClaimsMapping::default().with_tenant_claim("tenant");
    let audience = presets::audience(c);
    // AUTH_ISSUER_TEMPLATE + AUTH_TENANTS: one issuer per allowlisted tenant.
    if let Some(template) = &c.issuer_template {
        let tenants: Vec<String> = c
            .tenants
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let issuers = tenants
            .iter()
            .map(|t| template.replace("{tenant}", t))
            .collect();
        let rules = Tenants::new(
            template,
            Validation::new([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
                .with_audience(audience),
        )?
        .with_mapping(mapping)
        .with_allowed(tenants);
        let verifier = JwtVerifier::for_tenants(rules).with_revocations(revocations.clone());
        return Ok(Some((
            BearerAuth::new("showcase", verifier),
            None,
            issuers,
            None,
        )));
    }
    let (source, issuer, token) = match (c.oidc_issuer.clone(), c.jwks_url.clone(), dev) {
        (Some(iss), _, _) => (
            RemoteJwks::discover(
                &iss,
                [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
                JwksOptions::default(),
            )?,
            iss,
            None,
        ),
        (None, Some(url), _) => {
            let iss = c
                .issuer
                .clone()
                .ok_or("AUTH_ISSUER is required with AUTH_JWKS_URL")?;
            (
                RemoteJwks::new(
                    &url,
                    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
                    JwksOptions::default(),
                )?,
                iss,
                None,
            )
        }
        (None, None, Some(dev)) => {
            let iss = dev.server.base_url();
            let token = TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", iss.clone())
                .with_claim("aud", audience.clone())
                .with_claim("sub", "alice")
                .with_claim("roles", json!(["member"]))
                .with_claim("scope", "posts:read")
                .with_claim("tenant", "acme")
                .with_claim("exp", now() + 3600)
                .sign();
            (
                RemoteJwks::new(
                    &dev.server.url("/jwks.json"),
                    [Algorithm::RS256],
                    JwksOptions::default(),
                )?,
                iss,
                Some(token),
            )
        }
        (None, None, None) => return Ok(None),
    };
    // Start even while the issuer is down: 503 and not ready until it answers.
    source.start(portcullis::Startup::Wait).await?;
    if c.preset.is_some() && token.is_some() {
        return Err("AUTH_PRESET applies to a real issuer: set AUTH_JWKS_URL and AUTH_ISSUER, or AUTH_OIDC_ISSUER".into());
    }
    let validation = Validation::new([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_issuer(issuer.clone())
        .with_audience(audience);
    let issuer_id = issuer.clone();
    let keys = source.clone();
    let issuer = presets::apply(
        Issuer::new(source, validation).with_mapping(mapping),
        c,
        &issuer,
    )?;
    let verifier = JwtVerifier::new(issuer)
        .with_token_cache(TokenCache::new())
        .with_revocations(revocations.clone());
    Ok(Some((
        BearerAuth::new("showcase", verifier),
        token,
        vec![issuer_id],
        Some(keys),
    )))
}

/// Cloudflare Access and, from the dev issuer, an assertion for bob; `None` when not
/// configured and not in dev mode.
pub fn cloudflare(
    c: &Config,
    dev: &Option<DevIssuer>,
) -> Result<Option<(IdentityProxy, Option<String>)>, Error> {
    match (c.cf_team.clone(), c.cf_aud.clone(), dev) {
        (Some(team), Some(aud), _) => {
            let mut cf = IdentityProxy::cloudflare_access(&team, &aud)?;
            if let Some(url) = c.cf_certs_url.clone() {
                cf = cf.with_keys_url(&url)?;
            }
            Ok(Some((cf, None)))
        }
        (_, _, Some(dev)) => {
            let team = "showcase-dev";
            let aud = "showcase-dev-aud";
            let cf = IdentityProxy::cloudflare_access(team, aud)?.with_keys_url(
                &var("CF_ACCESS_CERTS_URL")
                    .unwrap_or_else(|| dev.server.url("/cdn-cgi/access/certs")),
            )?;
            let token = TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", format!("https://{team}.cloudflareaccess.com"))
                .with_claim("aud", json!([aud]))
                .with_claim("sub", "7335d417-61da-459d-899c-0a01c76a2f94")
                .with_claim("email", "bob@example.com")
                .with_claim("type", "app")
                .with_claim("exp", now() + 3600)
                .sign();
            Ok(Some((cf, Some(token))))
        }
        (None, None, None) => Ok(None),
        _ => Err("CF_ACCESS_TEAM and CF_ACCESS_AUD go together".into()),
    }
}

/// OIDC login into a session: `OIDC_*` or the dev issuer, redirecting back to
/// `<PUBLIC_URL>/oidc/callback`.
pub async fn oidc_login(
    c: &Config,
    dev: &Option<DevIssuer>,
    replay: ReplayCache,
) -> Result<Option<OAuthLogin>, Error> {
    let public = c
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let redirect = format!("{}/oidc/callback", public.trim_end_matches('/'));
    let (issuer, id, secret) = match (&c.oidc_login_issuer, dev) {
        (Some(iss), _) => (
            iss.clone(),
            c.oidc_client_id
                .clone()
                .ok_or("OIDC_CLIENT_ID is required with OIDC_ISSUER")?,
            c.oidc_client_secret.clone().unwrap_or_default(),
        ),
        (None, Some(dev)) => (
            dev.server.issuer(),
            TEST_CLIENT_ID.to_owned(),
            TEST_CLIENT_SECRET.to_owned(),
        ),
        (None, None) => return Ok(None),
    };
    let provider = OAuthProvider::discover(&issuer).await?;
    Ok(Some(
        OAuthLogin::new(provider, &id, &secret, &redirect)?
            .with_replay_cache(replay)
            .with_profile_hook(|profile| async move {
                // Roles from the provider's `roles` claim when it sends one, else `member`.
                let roles: Vec<String> = profile
                    .claims
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_else(|| vec!["member".into()]);
                let mut session = NewSession::new(profile.subject).with_roles(roles);
                if let Some(email) = profile.email {
                    session = session.with_email(email);
                }
                Ok(session)
            }),
    ))
}
