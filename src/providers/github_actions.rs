//! [`GithubActions`]: GitHub Actions OIDC tokens, for CI-to-service calls.

use super::{Provider, allowed, identity};
use crate::context::{AuthContextBuilder, PrincipalKind};
use crate::error::AuthError;
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;
use crate::jwt::Validation;

/// GitHub Actions OIDC tokens: a workflow calling your service.
///
/// Any repository on GitHub can mint a token, with any audience it likes: what tells
/// yours apart is the owner, so [`GithubActions::new`] requires one, and
/// [`with_repository`](Self::with_repository), [`with_ref`](Self::with_ref) and
/// [`with_workflow`](Self::with_workflow) narrow it down (each an allowlist; exact
/// matches).
///
/// - issuer `https://token.actions.githubusercontent.com` (added when the validation
///   names none); audience what your workflow asks for (`core.getIDToken(audience)`);
/// - subject: `sub` (`repo:<owner>/<repo>:ref:<ref>`, or `:environment:<name>`);
///   tenant: `repository_owner`; always a service principal; the other claims
///   (`repository`, `ref`, `sha`, `job_workflow_ref`, `environment`...) stay readable
///   through [`AuthContext::claim`](crate::AuthContext::claim).
///
/// Keys at [`GithubActions::JWKS_URL`].
///
/// ```
/// use portcullis::providers::GithubActions;
/// let ci = GithubActions::new("octo-org")
///     .with_repository("octo-org/deployer")
///     .with_ref("refs/heads/main");
/// # let _ = ci;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GithubActions {
    owners: Vec<String>,
    repositories: Vec<String>,
    refs: Vec<String>,
    workflows: Vec<String>,
}

impl GithubActions {
    /// The token issuer.
    pub const ISSUER: &'static str = "https://token.actions.githubusercontent.com";
    /// Where GitHub publishes the signing keys.
    pub const JWKS_URL: &'static str =
        "https://token.actions.githubusercontent.com/.well-known/jwks";

    /// Workflows of repositories owned by `owner` (a user or organisation login).
    pub fn new(owner: impl Into<String>) -> Self {
        GithubActions {
            owners: vec![owner.into()],
            repositories: Vec::new(),
            refs: Vec::new(),
            workflows: Vec::new(),
        }
    }
    /// Also workflows of `owner`'s repositories.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owners.push(owner.into());
        self
    }
    /// Only this repository (`owner/name`; call again to allow more).
    pub fn with_repository(mut self, repository: impl Into<String>) -> Self {
        self.repositories.push(repository.into());
        self
    }
    /// Only this git ref (`refs/heads/main`, `refs/tags/v1.2.3`; call again to allow more).
    pub fn with_ref(mut self, git_ref: impl Into<String>) -> Self {
        self.refs.push(git_ref.into());
        self
    }
    /// Only this reusable or top-level workflow, as `job_workflow_ref` names it
    /// (`octo-org/deployer/.github/workflows/deploy.yml@refs/heads/main`).
    pub fn with_workflow(mut self, job_workflow_ref: impl Into<String>) -> Self {
        self.workflows.push(job_workflow_ref.into());
        self
    }
}

impl Provider for GithubActions {
    fn validation(&self, validation: Validation) -> Validation {
        if validation.issuers().is_empty() {
            validation.with_issuer(Self::ISSUER)
        } else {
            validation
        }
    }
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        let owner = claims.string("repository_owner")?;
        if !owner.is_some_and(|o| self.owners.iter().any(|x| x == o)) {
            return Err(AuthError::invalid("github actions: owner not allowed"));
        }
        let repository = claims.string("repository")?;
        if !repository.is_some_and(|r| {
            owner.is_some_and(|o| r.strip_prefix(o).is_some_and(|n| n.starts_with('/')))
        }) {
            return Err(AuthError::invalid(
                "github actions: repository not of its owner",
            ));
        }
        allowed(
            &self.repositories,
            repository,
            "github actions: repository not allowed",
        )?;
        allowed(
            &self.refs,
            claims.string("ref")?,
            "github actions: ref not allowed",
        )?;
        allowed(
            &self.workflows,
            claims.string("job_workflow_ref")?,
            "github actions: workflow not allowed",
        )?;
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.email = None;
        mapping.tenant = Some("repository_owner".into());
        Ok(identity(claims, &mapping)?.with_principal_kind(PrincipalKind::Service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::{context, refused};
    use serde_json::json;

    /// Shaped like GitHub's documented token.
    fn token() -> serde_json::Value {
        json!({
            "jti": "example-id", "sub": "repo:octo-org/octo-repo:environment:prod",
            "environment": "prod", "aud": "https://github.com/octo-org",
            "ref": "refs/heads/main", "sha": "example-sha", "repository": "octo-org/octo-repo",
            "repository_owner": "octo-org", "actor_id": "12", "repository_visibility": "private",
            "repository_id": "74", "repository_owner_id": "65", "run_id": "example-run-id",
            "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
            "actor": "octocat", "workflow": "example-workflow", "head_ref": "", "base_ref": "",
            "event_name": "workflow_dispatch", "ref_type": "branch",
            "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
            "iss": "https://token.actions.githubusercontent.com",
            "nbf": 1_800_000_000, "exp": 1_900_000_000, "iat": 1_800_000_000
        })
    }

    #[test]
    fn allowed_workflow() {
        let ci = GithubActions::new("octo-org")
            .with_repository("octo-org/octo-repo")
            .with_ref("refs/heads/main")
            .with_workflow("octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main");
        let ctx = context(&ci, token()).unwrap();
        assert!(ctx.is_service());
        assert_eq!(ctx.tenant(), Some("octo-org"));
        assert_eq!(ctx.subject(), "repo:octo-org/octo-repo:environment:prod");
    }

    #[test]
    fn other_owners_repositories_refs_and_workflows_are_refused() {
        assert_eq!(
            refused(&GithubActions::new("someone-else"), token()),
            "github actions: owner not allowed"
        );
        let mut lookalike = token();
        lookalike["repository_owner"] = json!("octo");
        assert_eq!(
            refused(&GithubActions::new("octo"), lookalike),
            "github actions: repository not of its owner"
        );
        let base = GithubActions::new("octo-org");
        assert_eq!(
            refused(&base.clone().with_repository("octo-org/other"), token()),
            "github actions: repository not allowed"
        );
        assert_eq!(
            refused(&base.clone().with_ref("refs/heads/release"), token()),
            "github actions: ref not allowed"
        );
        assert_eq!(
            refused(
                &base
                    .clone()
                    .with_workflow("octo-org/x/.github/workflows/a.yml@refs/heads/main"),
                token()
            ),
            "github actions: workflow not allowed"
        );
        let mut no_owner = token();
        no_owner.as_object_mut().unwrap().remove("repository_owner");
        assert_eq!(
            refused(&base, no_owner),
            "github actions: owner not allowed"
        );
    }
}
