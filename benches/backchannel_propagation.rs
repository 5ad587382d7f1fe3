//! How fast a provider's back-channel logout ends a session on every instance.
//!
//! Three app instances on loopback (each its own Redis connections: a session store, a
//! revocation list and a replay cache; an OIDC login through the test kit's provider
//! with `/oidc/backchannel-logout`). For each of `N` rounds: a login at the first
//! instance (a session with the provider's `sid`), a logout token posted to the second,
//! and each instance asked for `/me` with that session until it answers 401. The lag is
//! the time from just before the POST to each 401.
//!
//! ```text
//! PORTCULLIS_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench backchannel_propagation
//! ```

#[path = "common/lags.rs"]
mod lags;
#[path = "../tests/common/oidc_apps.rs"]
mod oidc_apps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use oidc_apps::{form, instance, login, me, post_logout};
use portcullis::resource::ReplayCache;
use portcullis::revocation::Revocations;
use portcullis::session::{CachingStore, RedisStore, SessionStore};
use portcullis::testing::{KeyServer, TestKey, jwks};
use reqwest::StatusCode;
use serde_json::json;

const N: usize = 200;
/// A round that has not seen every 401 by then fails the run.
const BOUND: Duration = Duration::from_secs(5);

fn main() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS_URL") else {
        eprintln!("skipping: PORTCULLIS_TEST_REDIS_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&url));
}

async fn run(url: &str) {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("pcbench-bcl-{}-{nonce}:", std::process::id());
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        let revocations = Revocations::redis(url, &prefix).await.unwrap();
        let redis = RedisStore::builder(url)
            .with_prefix(&prefix)
            .connect()
            .await
            .unwrap();
        let store: Arc<dyn SessionStore> = Arc::new(CachingStore::new(redis, revocations.clone()));
        let replay = ReplayCache::redis(url, &prefix).await.unwrap();
        apps.push(instance(&idp, store, revocations, replay).await);
    }
    let mut lags = Vec::with_capacity(N * 3);
    for round in 0..N {
        let sid = format!("s-{round}");
        idp.set_login_user(&format!("user-{round}"), json!({ "sid": sid }));
        let session = login(&apps[0]).await;
        for a in &apps {
            assert_eq!(me(a, &session).await, StatusCode::OK);
        }
        let token = idp
            .logout_token_builder(Some(&format!("user-{round}")), Some(&sid))
            .sign();
        let posted = Instant::now();
        assert_eq!(
            post_logout(&apps[1], form(&token)).await.status(),
            StatusCode::OK
        );
        for a in &apps {
            while me(a, &session).await != StatusCode::UNAUTHORIZED {
                assert!(
                    posted.elapsed() < BOUND,
                    "an instance still honours the session"
                );
            }
            lags.push(posted.elapsed());
        }
    }
    lags::print("back-channel logout to 401 on every instance", &mut lags);
}
