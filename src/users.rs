//! [`Users`]: a small in-memory user table with plain or PHC-hashed passwords,
//! shared by Basic auth and session logins.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hashes `password` with argon2id (default parameters) into a PHC string.
///
/// ```
/// let phc = portcullis::hash_password("hunter2").unwrap();
/// assert!(phc.starts_with("$argon2id$"));
/// ```
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| PasswordError("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError("salt"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError("hashing failed"))
}

/// A password could not be hashed or a PHC string is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordError(&'static str);

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "password error: {}", self.0)
    }
}
impl std::error::Error for PasswordError {}

#[derive(Clone)]
enum Secret {
    /// SHA-256 of the plain secret: compared in constant time, length not leaked.
    Plain([u8; 32]),
    /// PHC string (argon2id, argon2i, argon2d).
    Phc(Arc<str>),
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
    pub fn hashed(phc: &str) -> Result<Self, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordError("not a PHC string"))?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(PasswordError("only argon2 hashes are supported"));
        }
        Ok(Self::from_secret(Secret::Phc(phc.into())))
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

/// A user table. Lookups take comparable time for unknown users and wrong passwords:
/// an unknown name is checked against a decoy of the same kind.
///
/// ```
/// use portcullis::{User, Users};
/// # tokio_test_block(async {
/// let users = Users::new().with_user("admin", User::plain("pw"));
/// assert!(users.verify("admin", "pw").await.is_some());
/// assert!(users.verify("admin", "nope").await.is_none());
/// assert!(users.verify("eve", "pw").await.is_none());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Users {
    users: HashMap<String, User>,
    decoy_phc: Option<Arc<str>>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("count", &self.users.len())
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
    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }
    /// True when there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a name and password; hashes are verified on the blocking thread pool.
    pub async fn verify(&self, name: &str, password: &str) -> Option<&User> {
        let (secret, known) = match self.users.get(name) {
            Some(u) => (u.secret.clone(), true),
            None => match &self.decoy_phc {
                Some(phc) => (Secret::Phc(phc.clone()), false),
                None => (Secret::Plain([0u8; 32]), false),
            },
        };
        let ok = check_secret(secret, password.to_owned()).await;
        if ok && known {
            self.users.get(name)
        } else {
            None
        }
    }
}

async fn check_secret(secret: Secret, password: String) -> bool {
    match secret {
        Secret::Plain(expected) => {
            let got: [u8; 32] = Sha256::digest(password.as_bytes()).into();
            bool::from(got.ct_eq(&expected))
        }
        Secret::Phc(phc) => {
            let verify = move || {
                PasswordHash::new(&phc)
                    .map(|h| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &h)
                            .is_ok()
                    })
                    .unwrap_or(false)
            };
            match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::task::spawn_blocking(verify).await.unwrap_or(false),
                Err(_) => verify(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashed_roundtrip_and_decoy() {
        let phc = hash_password("pw").unwrap();
        let users = Users::new().with_user("a", User::hashed(&phc).unwrap().with_roles(["x"]));
        assert_eq!(users.verify("a", "pw").await.unwrap().roles(), ["x"]);
        assert!(users.verify("a", "PW").await.is_none());
        // Unknown user checked against the decoy with the right password of another user: still no.
        assert!(users.verify("b", "pw").await.is_none());
    }

    #[test]
    fn rejects_non_phc_and_other_algorithms() {
        assert!(User::hashed("plaintext").is_err());
        assert!(
            User::hashed("$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01").is_err()
        );
    }
}
