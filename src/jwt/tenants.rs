//! [`Tenants`]: issuers resolved per token from an allowlist rule, for SaaS apps that
//! give each customer its own issuer (a Keycloak realm, an Entra tenant, an Auth0
//! organisation's domain).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use super::issuer::Issuer;
use super::remote::{JwksOptions, RemoteJwks};
use super::validation::Validation;
use crate::error::ConfigError;
use crate::jose::mapping::ClaimsMapping;

type Allow = dyn Fn(&str) -> bool + Send + Sync;

/// Issuers made from a template with one `{tenant}` placeholder
/// (`https://login.example.com/realms/{tenant}`), for the tenants an allowlist admits.
///
/// For each token, the unverified `iss` is matched against the template, exactly (the
/// tenant part being letters, digits, `-`, `_` and `.`, at most 64 bytes); a tenant the
/// allowlist refuses, or an `iss` the template does not produce, is a 401 that costs no
/// fetch. An admitted tenant gets its own issuer: discovery at `<iss>/.well-known/
/// openid-configuration` and its keys, fetched on first use (one fetch at a time) and
/// cached; its tokens are verified with its own keys and validation (the template's,
/// with `iss` exact). The context's tenant is that tenant, whatever a `tenant` claim
/// says.
///
/// At most [`with_max_tenants`](Self::with_max_tenants) issuers (1 000 by default) are
/// kept; past that, the least recently used one is dropped (and refetched when it comes
/// back). Each costs its discovery document, key set and issuer: about 6 KiB of heap
/// with one RSA key (`cargo bench --bench memory`), so about 6 MiB at the default bound.
///
/// ```
/// use portcullis::jwt::{Algorithm, JwtVerifier, Tenants, Validation};
/// let tenants = Tenants::new(
///     "https://login.example.com/realms/{tenant}",
///     Validation::new([Algorithm::RS256]).with_audience("api"),
/// )?
/// .with_allowed(["acme", "globex"]);
/// let verifier = JwtVerifier::for_tenants(tenants);
/// # let _ = verifier;
/// # Ok::<(), portcullis::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Tenants {
    prefix: String,
    suffix: String,
    validation: Validation,
    mapping: ClaimsMapping,
    options: JwksOptions,
    allow: Arc<Allow>,
    max: usize,
    issuers: Arc<Mutex<Cache>>,
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field(
                "template",
                &format!("{}{{tenant}}{}", self.prefix, self.suffix),
            )
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The tenants' issuers, least recently used first out.
#[derive(Default)]
struct Cache {
    /// tenant -> (last use, slot, issuer).
    by_tenant: HashMap<String, (u64, u64, Arc<Issuer>)>,
    /// Slot of each cached issuer (what verified-token cache entries point at).
    by_slot: BTreeMap<u64, Arc<Issuer>>,
    clock: u64,
    next_slot: u64,
}

/// A resolved tenant: its name, the issuer to verify with, and its slot.
pub(crate) struct Resolved {
    pub tenant: String,
    pub issuer: Arc<Issuer>,
    pub slot: u64,
}

/// The longest tenant name accepted from a token.
const MAX_TENANT_BYTES: usize = 64;

fn tenant_name_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TENANT_BYTES
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && t != "."
        && t != ".."
}

impl Tenants {
    /// Issuers from `template` (exactly one `{tenant}`), each verified under
    /// `validation` (its algorithms, audience, leeway; `iss` is set per tenant). No
    /// tenant is admitted until [`with_allowed`](Self::with_allowed) or
    /// [`with_allow_fn`](Self::with_allow_fn) says which.
    ///
    /// # Errors
    /// A template without exactly one `{tenant}`, or not an https URL once filled in
    /// (http on loopback hosts).
    pub fn new(template: &str, validation: Validation) -> Result<Self, ConfigError> {
        let mut parts = template.split("{tenant}");
        let (Some(prefix), Some(suffix), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ConfigError::new(format!(
                "issuer template needs exactly one {{tenant}}: {template:?}"
            )));
        };
        crate::egress::check_url(&format!("{prefix}probe{suffix}"), false)?;
        let options = one_client(JwksOptions::default())?;
        Ok(Tenants {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            validation,
            mapping: ClaimsMapping::default(),
            options,
            allow: Arc::new(|_| false),
            max: 1_000,
            issuers: Arc::default(),
        })
    }
    /// Admit exactly these tenants.
    pub fn with_allowed<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: std::collections::HashSet<String> = tenants.into_iter().map(Into::into).collect();
        self.allow = Arc::new(move |t| set.contains(t));
        self
    }
    /// Admit the tenants `allow` says yes to (a lookup in your own table, say: it runs
    /// for every token of a tenant not yet cached, so keep it cheap).
    pub fn with_allow_fn<F>(mut self, allow: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.allow = Arc::new(allow);
        self
    }
    /// How claims fill the context (the tenant always comes from the issuer).
    pub fn with_mapping(mut self, mapping: ClaimsMapping) -> Self {
        self.mapping = mapping;
        self
    }
    /// Fetch settings for every tenant's discovery and keys (one HTTP client shared).
    ///
    /// # Errors
    /// The HTTP client cannot be built from `options`.
    pub fn with_jwks_options(mut self, options: JwksOptions) -> Result<Self, ConfigError> {
        self.options = one_client(options)?;
        Ok(self)
    }
    /// Keep at most `n` tenants' issuers (least recently used dropped first).
    pub fn with_max_tenants(mut self, n: usize) -> Self {
        self.max = n.max(1);
        self
    }

    /// Requires `audience` unless the validation names one (or opted out).
    pub(crate) fn with_default_audience(mut self, audience: &str) -> Self {
        if self.validation.audiences.is_empty() && !self.validation.any_audience {
            self.validation.audiences.push(audience.to_owned());
            self.issuers = Arc::default();
        }
        self
    }

    /// The tenant `iss` names, when the template produces `iss` for it.
    fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let t = iss.strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        tenant_name_ok(t).then_some(t)
    }

    /// The issuer for a token claiming `iss`: `None` for an issuer the template does
    /// not make or a tenant not admitted (no fetch either way).
    pub(crate) fn resolve(&self, iss: &str) -> Result<Option<Resolved>, ConfigError> {
        let Some(tenant) = self.tenant_of(iss) else {
            return Ok(None);
        };
        let mut cache = self.issuers.lock().unwrap_or_else(|p| p.into_inner());
        cache.clock += 1;
        let clock = cache.clock;
        if let Some((used, slot, issuer)) = cache.by_tenant.get_mut(tenant) {
            *used = clock;
            return Ok(Some(Resolved {
                tenant: tenant.to_owned(),
                issuer: issuer.clone(),
                slot: *slot,
            }));
        }
        if !(self.allow)(tenant) {
            return Ok(None);
        }
        let keys = RemoteJwks::discover(
            iss,
            self.validation.algorithms.iter().copied(),
            self.options.clone(),
        )?;
        let issuer = Arc::new(
            Issuer::new(keys, self.validation.clone().with_issuer(iss))
                .with_mapping(self.mapping.clone()),
        );
        if cache.by_tenant.len() >= self.max {
            let oldest = cache
                .by_tenant
                .iter()
                .min_by_key(|(_, (used, _, _))| *used)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest
                && let Some((_, gone, _)) = cache.by_tenant.remove(&t)
            {
                cache.by_slot.remove(&gone);
            }
        }
        let slot = cache.next_slot;
        cache.next_slot += 1;
        cache.by_slot.insert(slot, issuer.clone());
        cache
            .by_tenant
            .insert(tenant.to_owned(), (clock, slot, issuer.clone()));
        Ok(Some(Resolved {
            tenant: tenant.to_owned(),
            issuer,
            slot,
        }))
    }

    /// The issuer in `slot`, while it is cached.
    pub(crate) fn by_slot(&self, slot: u64) -> Option<Arc<Issuer>> {
        self.issuers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_slot
            .get(&slot)
            .cloned()
    }

    /// How many tenants' issuers are cached.
    pub fn len(&self) -> usize {
        self.issuers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_tenant
            .len()
    }
    /// True when no tenant's issuer is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `options` with its HTTP client built once, so every tenant's fetches share it.
fn one_client(options: JwksOptions) -> Result<JwksOptions, ConfigError> {
    let client = options.egress.client()?;
    let egress = options.egress.clone().with_http_client(client);
    Ok(options.with_egress(egress))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::Algorithm;

    #[test]
    fn only_the_template_makes_tenants() {
        let t = Tenants::new(
            "https://login.example.com/realms/{tenant}",
            Validation::new([Algorithm::RS256]),
        )
        .unwrap()
        .with_allowed(["acme"]);
        assert_eq!(
            t.tenant_of("https://login.example.com/realms/acme"),
            Some("acme")
        );
        for iss in [
            "https://login.example.com/realms/acme/",
            "https://login.example.com/realms/a/b",
            "https://login.example.com/realms/",
            "https://login.example.com/realms/..",
            "https://evil.example.com/realms/acme",
            "http://login.example.com/realms/acme",
            "https://login.example.com/realms/acme?x",
        ] {
            assert_eq!(t.tenant_of(iss), None, "{iss}");
        }
        assert!(
            t.resolve("https://login.example.com/realms/globex")
                .unwrap()
                .is_none()
        );
        assert!(t.is_empty(), "a refused tenant costs nothing");
        assert!(
            Tenants::new(
                "https://x/{tenant}/{tenant}",
                Validation::new([Algorithm::RS256])
            )
            .is_err()
        );
        assert!(Tenants::new("https://x/realms", Validation::new([Algorithm::RS256])).is_err());
        assert!(
            Tenants::new(
                "http://x.example/{tenant}",
                Validation::new([Algorithm::RS256])
            )
            .is_err()
        );
    }
}
