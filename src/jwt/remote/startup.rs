//! Getting the first key set: now, failing on any problem, or in the background while
//! requests wait ([`Startup`]).

use std::sync::Arc;
use std::time::Duration;

use super::RemoteJwks;
use super::fetch::Failure;
use crate::Startup;
use crate::error::ConfigError;

impl RemoteJwks {
    /// Fetches the key set now (through discovery for an issuer), so that a wrong URL, an
    /// issuer mismatch or an empty key set shows at start-up; returns how many keys are
    /// usable. Afterwards the usual cache rules apply. The error says whether the
    /// provider could not be reached or answered with something that does not match the
    /// configuration.
    pub async fn fetch_now(&self) -> Result<usize, ConfigError> {
        let _guard = self.inner.fetch_lock.lock().await;
        match self.fetch_keys().await {
            Ok(cached) => Ok(self.install(cached).keys.len()),
            Err(failure) => {
                self.failed(failure);
                Err(ConfigError::new(match failure {
                    Failure::Unreachable(reason) => format!(
                        "signing keys from {self:?} could not be fetched: {reason}; the provider is unreachable (start with Startup::Wait to start anyway)"
                    ),
                    Failure::Misconfigured(reason) => format!(
                        "signing keys from {self:?} do not match the configuration: {reason}; check the issuer or JWKS URL"
                    ),
                }))
            }
        }
    }

    /// Gets the key set as `startup` says: [`Startup::FailFast`] fetches now and fails
    /// on any problem ([`fetch_now`](Self::fetch_now)); [`Startup::Wait`] returns at once
    /// and fetches in the background until the provider answers (see [`Startup`]).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::Startup;
    /// use portcullis::jwt::{Algorithm, JwksOptions, RemoteJwks};
    /// let jwks = RemoteJwks::discover("https://login.example.com", [Algorithm::RS256], JwksOptions::default())?;
    /// jwks.start(Startup::Wait).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self, startup: Startup) -> Result<(), ConfigError> {
        match startup {
            Startup::FailFast => self.fetch_now().await.map(drop),
            Startup::Wait => {
                self.spawn_warm_up();
                Ok(())
            }
        }
    }

    /// Fetches in the background until a set is at hand: every [`Startup::RETRY_MIN`]
    /// doubling to [`Startup::RETRY_MAX`] (each wait jittered by up to a quarter) while the
    /// provider cannot be reached, every [`Startup::RETRY_MISCONFIGURED`] while it answers
    /// with something that does not match the configuration. Holds the set weakly: it
    /// ends when the set is dropped.
    pub(super) fn spawn_warm_up(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        handle.spawn(async move {
            let mut wait = Startup::RETRY_MIN;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let this = RemoteJwks { inner };
                if this.snapshot().is_some() {
                    return;
                }
                let outcome = {
                    let _guard = this.inner.fetch_lock.lock().await;
                    if this.snapshot().is_some() {
                        return;
                    }
                    this.fetch_keys().await
                };
                let pause = match outcome {
                    Ok(cached) => {
                        this.install(cached);
                        tracing::info!(endpoint = ?this, "signing keys fetched; ready");
                        return;
                    }
                    Err(failure) => {
                        this.failed(failure);
                        match failure {
                            Failure::Unreachable(_) => {
                                let p = wait;
                                wait = (wait * 2).min(Startup::RETRY_MAX);
                                p
                            }
                            Failure::Misconfigured(_) => Startup::RETRY_MISCONFIGURED,
                        }
                    }
                };
                drop(this);
                tokio::time::sleep(jittered(pause)).await;
            }
        });
    }
}

/// `d`, shortened by up to a quarter at random, so instances that lost their provider
/// together do not retry in step.
fn jittered(d: Duration) -> Duration {
    let quarter = d / 4;
    let cut = quarter.mul_f64(rand_unit());
    d - cut
}

/// A number in [0, 1) from the OS's randomness (zero when it has none).
fn rand_unit() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}
