//! Helpers shared by the benchmark binaries.
#![allow(dead_code)]

pub mod limit;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use portcullis::testing::{TestKey, TokenBuilder, now};

pub const ISS: &str = "https://issuer.bench";
pub const AUD: &str = "bench";

/// Polls a future that never waits (static keys, memory store) to completion.
pub fn now_or_never<F: Future>(f: F) -> F::Output {
    match pin!(f)
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("benchmarked future waited"),
    }
}

/// The benchmark token: `iss`, `aud`, two roles, two scopes, valid for a day.
pub fn token(key: TestKey) -> String {
    TokenBuilder::new(key)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
        .with_claim("roles", serde_json::json!(["admin", "member"]))
        .with_claim("scope", "posts:read posts:write")
        .with_claim("exp", now() + 3600 * 24)
        .sign()
}

/// An authenticator that does no work: hands out one prebuilt context. Measures the
/// fixed cost of `AuthLayer`, the context in the extensions and the extractor.
#[derive(Clone)]
pub struct Floor(pub portcullis::AuthContext);

impl portcullis::Authenticator for Floor {
    fn scheme(&self) -> portcullis::Scheme {
        portcullis::Scheme::Custom
    }
    fn challenge(&self) -> Option<portcullis::Challenge> {
        None
    }
    fn detect(&self, _: &http::request::Parts) -> bool {
        true
    }
    async fn authenticate(
        &self,
        _: &http::request::Parts,
    ) -> Result<portcullis::AuthContext, portcullis::AuthError> {
        Ok(self.0.clone())
    }
}
