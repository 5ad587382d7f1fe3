//! [`Users`]: a small in-memory user table with plain or PHC-hashed passwords,
//! shared by Basic auth and session logins.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::workers::{PreparedHash, Workers};
use crate::error::{AuthError, ConfigError};

/// Hashes `password` with argon2id (default parameters) into a PHC string.
///
/// ```
/// let phc = portcullis::hash_password("hunter2").unwrap();
/// assert!(phc.starts_with("$argon2id$"));
/// ```
pub fn hash_password(password: &str) -> Result<String, ConfigError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| ConfigError::new("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| ConfigError::new("salt"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ConfigError::new("hashing failed"))
}

#[derive(Clone)]
enum Secret {
    /// SHA-256 of the plain secret: compared in constant time, length not leaked.
    Plain([u8; 32]),
    /// A PHC string (argon2id, argon2i, argon2d), parsed.
    Phc(Arc<PreparedHash>),
}

/// One user: a secret plus the roles, e-mail and tenant that go into the context.
///
/// ```
/// use portcullis::User;
/// let admin = User::plain("s3cret").with_roles(["admin"]).with_email("admin@example.com");
/// let bob = User::hashed("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$bm90LWEtcmVhbC1oYXNoLXZhbHVlLXh4eHh4eHg").unwrap();
/// # let _ = (admin, bob);
/// ```
#[derive(Clone)]
pub struct User {
    secret: Secret,
    pub(crate) roles: Vec<String>,
    pub(crate) email: Option<String>,
    pub(crate) tenant: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl User {
    /// A user with a plain secret (compared in constant time).
    pub fn plain(secret: impl AsRef<[u8]>) -> Self {
        Self::from_secret(Secret::Plain(Sha256::digest(secret.as_ref()).into()))
    }
    /// A user with a PHC password hash (`$argon2id$...`), checked now for syntax and algorithm.
    pub fn hashed(phc: &str) -> Result<Self, ConfigError> {
        Ok(Self::from_secret(Secret::Phc(Arc::new(
            PreparedHash::parse(phc)?,
        ))))
    }
    fn from_secret(secret: Secret) -> Self {
        User {
            secret,
            roles: Vec::new(),
            email: None,
            tenant: None,
        }
    }
    /// Roles for the context.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// E-mail for the context.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// Tenant for the context.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
    /// Roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// E-mail.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    /// Tenant.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// Default cap on concurrent argon2 verifications per table: the number of cores.
fn default_hash_permits() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// A user table. Lookups take comparable time for unknown users, wrong passwords and
/// known users, whatever their secret's kind: once any user is hashed, every check
/// costs one argon2 verification (unknown names and plain secrets run a decoy).
///
/// Argon2 verifications run on
/// [`with_max_concurrent_hashes`](Self::with_max_concurrent_hashes) dedicated worker
/// threads (default: the number of cores), started at the first verification; each
/// owns one argon2 memory buffer and reuses it. A check that waits longer than
/// [`with_hash_queue_timeout`](Self::with_hash_queue_timeout) (default 1 s) for a free
/// worker is answered `503` with `Retry-After`. So a flood of guesses costs bounded
/// memory: workers x the largest memory cost among the hashes (19 MiB with argon2's
/// default parameters), which BENCHMARKS.md measures as resident memory.
///
/// ```
/// use portcullis::{ErrorKind, User, Users};
/// # tokio_test_block(async {
/// let users = Users::new().with_user("admin", User::plain("pw"));
/// assert!(users.verify("admin", "pw").await.is_ok());
/// assert_eq!(users.verify("admin", "nope").await.unwrap_err().kind(), ErrorKind::InvalidCredentials);
/// assert!(users.verify("eve", "pw").await.is_err());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Users {
    users: HashMap<String, User>,
    decoy_phc: Option<Arc<PreparedHash>>,
    hashing: Arc<tokio::sync::Semaphore>,
    workers: Arc<Workers>,
    max_hashes: usize,
    queue_timeout: Duration,
}

impl Default for Users {
    fn default() -> Self {
        let max_hashes = default_hash_permits();
        Users {
            users: HashMap::new(),
            decoy_phc: None,
            hashing: Arc::new(tokio::sync::Semaphore::new(max_hashes)),
            workers: Arc::new(Workers::new(max_hashes)),
            max_hashes,
            queue_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("count", &self.users.len())
            .field("max_concurrent_hashes", &self.max_hashes)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add (or replace) a user.
    pub fn with_user(mut self, name: impl Into<String>, user: User) -> Self {
        if let (None, Secret::Phc(phc)) = (&self.decoy_phc, &user.secret) {
            self.decoy_phc = Some(phc.clone());
        }
        self.users.insert(name.into(), user);
        self
    }
    /// Run at most `n` argon2 verifications at once, on `n` worker threads (default:
    /// the number of cores). Each worker keeps one buffer of the largest memory cost it
    /// has verified (19 MiB with argon2's default parameters).
    pub fn with_max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_hashes = n.max(1);
        self.hashing = Arc::new(tokio::sync::Semaphore::new(self.max_hashes));
        self.workers = Arc::new(Workers::new(self.max_hashes));
        self
    }
    /// How long a check may wait for a free verification slot before it is answered
    /// `503` with `Retry-After` (default 1 s).
    pub fn with_hash_queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }
    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }
    /// True when there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a name and password.
    ///
    /// Errors: [`ErrorKind::InvalidCredentials`](crate::ErrorKind::InvalidCredentials)
    /// for an unknown name or a wrong password (the two are indistinguishable), and
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) with `Retry-After` when
    /// every verification slot stayed busy for the queue timeout.
    pub async fn verify(&self, name: &str, password: &str) -> Result<&User, AuthError> {
        let user = self.users.get(name);
        let ok = match (user.map(|u| &u.secret), &self.decoy_phc) {
            (Some(Secret::Phc(phc)), _) => self.check_phc(phc.clone(), password).await?,
            (Some(Secret::Plain(expected)), decoy) => {
                let ok = check_plain(expected, password);
                if let Some(decoy) = decoy {
                    self.check_phc(decoy.clone(), password).await?;
                }
                ok
            }
            (None, Some(decoy)) => {
                self.check_phc(decoy.clone(), password).await?;
                false
            }
            (None, None) => {
                check_plain(&[0; 32], password);
                false
            }
        };
        match user {
            Some(u) if ok => Ok(u),
            _ => Err(AuthError::invalid("wrong user name or password")),
        }
    }

    async fn check_phc(&self, hash: Arc<PreparedHash>, password: &str) -> Result<bool, AuthError> {
        let busy = || {
            AuthError::unavailable("password verification slots busy")
                .with_retry_after(self.queue_timeout.as_secs().max(1))
        };
        let runtime = tokio::runtime::Handle::try_current().is_ok();
        let permit = if runtime {
            tokio::time::timeout(self.queue_timeout, self.hashing.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            // A blocking caller outside any runtime: no waiting.
            self.hashing.clone().try_acquire_owned().ok()
        };
        let Some(permit) = permit else {
            return Err(busy());
        };
        // The permit rides with the job: a caller that goes away does not free its slot
        // before the worker is done.
        let answer = self
            .workers
            .submit(hash, password.as_bytes(), Some(permit))
            .ok_or_else(|| AuthError::unavailable("password workers unavailable"))?;
        let ok = if runtime {
            answer.await
        } else {
            answer.blocking_recv()
        };
        Ok(ok.unwrap_or(false))
    }
}

fn check_plain(expected: &[u8; 32], password: &str) -> bool {
    let got: [u8; 32] = Sha256::digest(password.as_bytes()).into();
    bool::from(got.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashed_roundtrip_and_decoy() {
        let phc = hash_password("pw").unwrap();
        let users = Users::new().with_user("a", User::hashed(&phc).unwrap().with_roles(["x"]));
        assert_eq!(users.verify("a", "pw").await.unwrap().roles(), ["x"]);
        assert_eq!(
            crate::error::reason_of(users.verify("a", "PW").await),
            "wrong user name or password"
        );
        // Unknown user checked against the decoy with the right password of another user: still no.
        assert_eq!(
            crate::error::reason_of(users.verify("b", "pw").await),
            "wrong user name or password"
        );
    }

    #[test]
    fn rejects_non_phc_and_other_algorithms() {
        assert!(User::hashed("plaintext").is_err());
        assert!(
            User::hashed("$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01").is_err()
        );
    }
}
