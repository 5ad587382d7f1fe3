//! Micro benchmarks: our JWT verify vs `jsonwebtoken::decode` vs the crypto limit,
//! the verified-token cache, Basic auth, session lookup and policy evaluation.
//!
//! ```text
//! cargo bench --bench verify
//! ```
//!
//! "limit" = aws-lc-rs verify with a pre-parsed key + base64 decode + one JSON parse of
//! header and claims: what any verifier must at least do.

mod common;

use common::limit::LimitKey;
use common::{jsonwebtoken_key, jsonwebtoken_validation, now_or_never, token};

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use portcullis::jwt::{Algorithm, JwtVerifier, KeySet, TokenCache};
use portcullis::policy::{PolicyInput, Rule};
use portcullis::session::{
    MemoryStore, NewSession, PostgresStore, RedisStore, SessionConfig, SessionManager,
};
use portcullis::testing::TestKey;
use portcullis::{AuthContext, Authenticator, Check, Scheme, User, Users, hash_password};

fn ours(key: TestKey, cache: bool) -> JwtVerifier {
    let v = common::verifier(key);
    if cache {
        v.with_token_cache(TokenCache::new())
    } else {
        v
    }
}

fn jwt(c: &mut Criterion) {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    for (name, key) in common::ALGORITHMS {
        let t = token(key);
        let verifier = ours(key, false);
        let decoding = jsonwebtoken_key(key);
        let validation = jsonwebtoken_validation(key);
        let limit = LimitKey::new(key);
        assert!(now_or_never(verifier.verify(&t)).is_ok());
        assert!(jsonwebtoken::decode::<serde_json::Value>(&t, &decoding, &validation).is_ok());
        let mut g = c.benchmark_group(format!("jwt/{name}"));
        g.bench_function("portcullis", |b| {
            b.iter(|| now_or_never(verifier.verify(black_box(&t))).unwrap())
        });
        g.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&t), &decoding, &validation)
                    .unwrap()
            })
        });
        g.bench_function("limit", |b| b.iter(|| limit.verify(black_box(&t)).unwrap()));
        g.finish();
    }
    let t = token(TestKey::Rs256);
    let cached = ours(TestKey::Rs256, true);
    now_or_never(cached.verify(&t)).unwrap();
    c.bench_function("jwt/cache_hit", |b| {
        b.iter(|| now_or_never(cached.verify(black_box(&t))).unwrap())
    });
    let _ = Algorithm::RS256;
    let _ = KeySet::new();
}

fn basic(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A table of plain secrets only: with a hash in the table, every check would run
    // the argon2 decoy.
    let plain = Users::new().with_user("plain", User::plain("correct horse battery staple"));
    let users = Users::new().with_user(
        "hashed",
        User::hashed(&hash_password("pw").unwrap()).unwrap(),
    );
    c.bench_function("basic/plain", |b| {
        b.iter(|| {
            rt.block_on(plain.verify(
                black_box("plain"),
                black_box("correct horse battery staple"),
            ))
            .is_ok()
        })
    });
    let mut g = c.benchmark_group("basic/argon2id");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("verify", |b| b.iter(|| now_or_never_blocking(&users)));
    g.finish();
}

fn now_or_never_blocking(users: &Users) -> bool {
    // Outside a runtime the hash is verified inline: the pure argon2 cost.
    now_or_never(users.verify("hashed", "pw")).is_ok()
}

/// One session lookup (parse the cookie, hash the id, load, expiry checks, context)
/// through `manager`'s authenticator.
fn session_lookup(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    manager: SessionManager,
) {
    let cookie = rt
        .block_on(manager.login(
            &http::HeaderMap::new(),
            NewSession::new("alice").with_roles(["member"]),
        ))
        .unwrap();
    let parts = Request::builder()
        .header("cookie", cookie.pair())
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let auth = manager.authenticator();
    c.bench_function(name, |b| {
        b.iter(|| match auth.check(black_box(&parts)) {
            Check::Ready(answer) => answer.unwrap(),
            Check::Pending(session) => rt.block_on(auth.authenticate(session, &parts)).unwrap(),
            Check::Absent => panic!("the session cookie is there"),
        })
    });
    rt.block_on(manager.logout_everywhere("alice")).unwrap();
}

fn session(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = SessionConfig::default;
    session_lookup(
        c,
        &rt,
        "session/memory_lookup",
        SessionManager::new(MemoryStore::new(), config()),
    );
    // Real servers over loopback, as the tests use them; skipped when the variable is unset.
    match std::env::var("PORTCULLIS_TEST_REDIS_URL") {
        Ok(url) => {
            let store = rt
                .block_on(
                    RedisStore::builder(&url)
                        .with_prefix("portcullis-bench")
                        .connect(),
                )
                .unwrap();
            session_lookup(
                c,
                &rt,
                "session/redis_lookup",
                SessionManager::new(store, config()),
            );
        }
        Err(_) => eprintln!("skipping session/redis_lookup: PORTCULLIS_TEST_REDIS_URL is not set"),
    }
    match std::env::var("PORTCULLIS_TEST_POSTGRES_URL") {
        Ok(url) => {
            let store = rt
                .block_on(
                    PostgresStore::builder(&url)
                        .with_table("portcullis_bench_sessions")
                        .connect(),
                )
                .unwrap();
            session_lookup(
                c,
                &rt,
                "session/postgres_lookup",
                SessionManager::new(store, config()),
            );
        }
        Err(_) => {
            eprintln!("skipping session/postgres_lookup: PORTCULLIS_TEST_POSTGRES_URL is not set")
        }
    }
}

fn policy(c: &mut Criterion) {
    let ctx = AuthContext::builder("alice", Scheme::Bearer)
        .with_roles(["member"])
        .with_scopes(["posts:read"])
        .build();
    let parts = Request::builder()
        .uri("/posts/alice")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let params = vec![("id".to_owned(), "alice".to_owned())];
    let rule = Rule::owner_of_path("id")
        .or(Rule::role("admin"))
        .and(Rule::scope("posts:read"));
    let input = PolicyInput {
        ctx: &ctx,
        parts: &parts,
        params: &params,
    };
    c.bench_function("policy/owner_or_admin_and_scope", |b| {
        b.iter(|| now_or_never(rule.evaluate(black_box(&input))).unwrap())
    });
}

criterion_group!(benches, jwt, basic, session, policy);
criterion_main!(benches);
