//! `AUTH_PRESET`: an identity provider's claim layout and token rules for the `AUTH_*`
//! issuer.

use portcullis::jwt::Issuer;
use portcullis::providers::{
    Auth0, Cognito, Entra, EntraTokenVersion, GithubActions, Google, Keycloak, Okta,
};

use super::{Config, Error};

/// The presets `AUTH_PRESET` accepts.
pub const PRESETS: &[&str] = &[
    "keycloak",
    "auth0",
    "entra",
    "cognito",
    "okta",
    "google",
    "github-actions",
];

/// The audience tokens must name: `AUTH_AUDIENCE`, else the app client for the
/// providers whose tokens name it (Cognito, Google), else `showcase`.
pub fn audience(c: &Config) -> String {
    match (&c.audience, c.preset.as_deref(), &c.client_id) {
        (Some(a), _, _) => a.clone(),
        (None, Some("cognito" | "google"), Some(client)) => client.clone(),
        _ => "showcase".into(),
    }
}

/// `issuer` with the preset `c.preset` applied (unchanged without one).
pub fn apply(issuer: Issuer, c: &Config, iss: &str) -> Result<Issuer, Error> {
    let Some(preset) = c.preset.as_deref() else {
        return Ok(issuer);
    };
    let client = || {
        c.client_id
            .clone()
            .ok_or_else(|| format!("AUTH_PRESET={preset} needs AUTH_CLIENT_ID"))
    };
    Ok(match preset {
        "keycloak" => match &c.client_id {
            Some(id) => issuer.with_provider(Keycloak::new().with_client_roles(id)),
            None => issuer.with_provider(Keycloak::new()),
        },
        "auth0" => issuer.with_provider(Auth0::new()),
        "entra" => {
            // The tenant is part of the issuer URL.
            let (tenant, version) = if let Some(rest) =
                iss.strip_prefix("https://login.microsoftonline.com/")
            {
                (rest.trim_end_matches("/v2.0"), EntraTokenVersion::V2)
            } else if let Some(rest) = iss.strip_prefix("https://sts.windows.net/") {
                (rest.trim_end_matches('/'), EntraTokenVersion::V1)
            } else {
                return Err(format!(
                    "AUTH_PRESET=entra needs AUTH_ISSUER=https://login.microsoftonline.com/<tenant id>/v2.0 \
                     (or https://sts.windows.net/<tenant id>/), got {iss}"
                )
                .into());
            };
            issuer.with_provider(Entra::new([tenant])?.with_token_version(version))
        }
        "cognito" => {
            client()?;
            issuer.with_provider(Cognito::access_tokens())
        }
        "okta" => issuer.with_provider(Okta::new()),
        "google" => issuer.with_provider(Google::new()),
        "github-actions" => {
            // GitHub's default audience is the owner's URL.
            let owner = c
                .audience
                .as_deref()
                .and_then(|a| a.strip_prefix("https://github.com/"))
                .filter(|o| !o.is_empty() && !o.contains('/'))
                .ok_or(
                    "AUTH_PRESET=github-actions needs AUTH_AUDIENCE=https://github.com/<owner>",
                )?;
            issuer.with_provider(GithubActions::new(owner))
        }
        other => {
            return Err(format!(
                "AUTH_PRESET must be one of {}, got {other:?}",
                PRESETS.join(", ")
            )
            .into());
        }
    })
}
