//! The proxies [`IdentityProxy`] knows, one constructor each: where its keys are,
//! what it signs with and which claims it must carry.

use std::sync::Arc;

use super::{IdentityProxy, Kind, cloudflare};
use crate::error::ConfigError;
use crate::jwt::ClaimsMapping;

impl IdentityProxy {
    /// Cloudflare Access for `team` (the `<team>.cloudflareaccess.com` name) and the
    /// application's `aud` tag. The assertion's `type` must be `app`; a user's token
    /// gives subject `sub` and e-mail `email`; a service token (empty `sub`) is refused
    /// unless its client id is allowed with [`with_service_token`](Self::with_service_token),
    /// then it is a service principal named by that id.
    ///
    /// ```
    /// use portcullis::{AuthLayer, iap::IdentityProxy};
    /// let access = IdentityProxy::cloudflare_access("myteam", "0123456789abcdef")?
    ///     .with_service_token("ci-bot.access")?;
    /// let layer = AuthLayer::required(access);
    /// # Ok::<(), portcullis::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// `team` is not a host label, or `aud` is empty or longer than 256 bytes.
    pub fn cloudflare_access(team: &str, aud: &str) -> Result<Self, ConfigError> {
        if !cloudflare::valid_team(team) {
            return Err(ConfigError::new(format!(
                "invalid Cloudflare Access team name: {team:?}"
            )));
        }
        if aud.is_empty() || aud.len() > 256 {
            return Err(ConfigError::new("invalid Cloudflare Access AUD tag"));
        }
        Self::build(
            Kind::CloudflareAccess {
                team: team.to_owned(),
                aud: aud.to_owned(),
                service_tokens: Arc::new(Vec::new()),
                cookie: false,
            },
            &format!("https://{team}.cloudflareaccess.com/cdn-cgi/access/certs"),
            // Access puts `sub` and `email` in a user's assertion, nothing else.
            ClaimsMapping::subject_and_email(),
        )
    }

    /// Google Cloud IAP in front of a backend service or App Engine app; `audience` is
    /// `/projects/<project number>/global/backendServices/<service id>` or
    /// `/projects/<project number>/apps/<project id>` (the console's "Signed header JWT
    /// audience").
    ///
    /// # Errors
    /// `audience` does not have one of those shapes.
    pub fn google_iap(audience: &str) -> Result<Self, ConfigError> {
        let parts: Vec<&str> = audience.split('/').collect();
        let shaped = match parts.as_slice() {
            ["", "projects", n, "global", "backendServices", id] => is_digits(n) && is_digits(id),
            ["", "projects", n, "apps", id] => is_digits(n) && !id.is_empty(),
            _ => false,
        };
        if !shaped {
            return Err(ConfigError::new(format!(
                "Google IAP audience must be /projects/<number>/global/backendServices/<id> \
                 or /projects/<number>/apps/<project id>, not {audience:?}"
            )));
        }
        let mapping = ClaimsMapping::default().with_tenant_claim("hd");
        Self::build(
            Kind::GoogleIap {
                audience: audience.to_owned(),
            },
            "https://www.gstatic.com/iap/verify/public_key-jwk",
            mapping,
        )
    }

    /// Pomerium in front of the route served at `route_host` (e.g. `app.example.com`):
    /// Pomerium signs with the route's host as issuer and audience, and serves its keys
    /// at `https://<route_host>/.well-known/pomerium/jwks.json`.
    ///
    /// # Errors
    /// `route_host` is not a host name.
    pub fn pomerium(route_host: &str) -> Result<Self, ConfigError> {
        let valid = !route_host.is_empty()
            && route_host.len() <= 253
            && route_host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
        if !valid {
            return Err(ConfigError::new(format!(
                "Pomerium route must be a host name such as app.example.com, not {route_host:?}"
            )));
        }
        let mapping = ClaimsMapping::default().with_roles_claim("groups");
        Self::build(
            Kind::Pomerium {
                route: route_host.to_owned(),
            },
            &format!("https://{route_host}/.well-known/pomerium/jwks.json"),
            mapping,
        )
    }

    /// An AWS Application Load Balancer with OIDC authentication, in `region`, whose
    /// ARN is `signer_arn` (`arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>`).
    ///
    /// The key endpoint serves the keys of every load balancer in the region, so the
    /// `signer` is what makes a token yours: it must equal `signer_arn` exactly. ALB
    /// tokens may carry base64 padding; it is accepted for them only.
    ///
    /// # Errors
    /// `region` or `signer_arn` is malformed, or the ARN names another region.
    pub fn aws_alb(region: &str, signer_arn: &str) -> Result<Self, ConfigError> {
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let prefix = format!("arn:aws:elasticloadbalancing:{region}:");
        let arn_ok = signer_arn.starts_with(&prefix) && signer_arn.contains(":loadbalancer/app/");
        if !region_ok || !arn_ok {
            return Err(ConfigError::new(format!(
                "AWS ALB: expected a region and the load balancer's ARN \
                 ({prefix}<account>:loadbalancer/app/<name>/<id>), got {region:?} and {signer_arn:?}"
            )));
        }
        Self::build(
            Kind::AwsAlb {
                signer: signer_arn.to_owned(),
                issuer: None,
            },
            &format!("https://public-keys.auth.elb.{region}.amazonaws.com"),
            ClaimsMapping::default(),
        )
    }

    /// A portcullis gateway in front of this origin ([`crate::gateway`]): its signed
    /// assertion in `x-auth-assertion`, ES256, `iss` the gateway's `issuer`, `aud` this
    /// origin's `audience`, at most 60 s old, keys from the gateway's JWKS at
    /// `keys_url` (what [`AssertionSigner::router`](crate::gateway::AssertionSigner::router)
    /// serves). The context: `sub`, `email`, `tenant`, `roles`, `scope`, `idp` as issuer.
    ///
    /// ```
    /// use portcullis::{AuthLayer, iap::IdentityProxy};
    /// let gateway = IdentityProxy::gateway(
    ///     "https://gateway.example.com",
    ///     "https://origin.internal",
    ///     "https://gateway.example.com/.well-known/gateway-jwks.json",
    /// )?;
    /// let layer = AuthLayer::required(gateway);
    /// # Ok::<(), portcullis::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// An empty issuer or audience, or a key URL that is not https (http on loopback).
    pub fn gateway(issuer: &str, audience: &str, keys_url: &str) -> Result<Self, ConfigError> {
        if issuer.is_empty() || audience.is_empty() {
            return Err(ConfigError::new(
                "gateway: issuer and audience are required",
            ));
        }
        let mapping = ClaimsMapping::default()
            .with_roles_claim("roles")
            .with_tenant_claim("tenant");
        Self::build(
            Kind::Gateway {
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
            },
            keys_url.trim_end_matches('/'),
            mapping,
        )
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}
