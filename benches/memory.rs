//! Bytes per stored session, per cached key and per cached token, measured as the growth
//! of the heap in use (glibc `mallinfo2`, which also sees aws-lc's C allocations).
//!
//! ```text
//! cargo bench --bench memory
//! ```

mod common;

use common::now_or_never;

use portcullis::jwt::{Algorithm, Issuer, JwtVerifier, KeySet, TokenCache, Validation};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
use portcullis::testing::{TestKey, TokenBuilder, jwks, now};

fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads allocator statistics.
    unsafe { libc::mallinfo2().uordblks }
}

fn per_item(n: usize, f: impl FnOnce(usize) -> Box<dyn std::any::Any>) -> usize {
    let before = heap_in_use();
    let keep = f(n);
    let after = heap_in_use();
    drop(keep);
    after.saturating_sub(before) / n
}

fn main() {
    const N: usize = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let session = per_item(N, |n| {
        let store = MemoryStore::new();
        let m = SessionManager::new(store.clone(), SessionConfig::default());
        for i in 0..n {
            let s = NewSession::new(format!("user-{i}"))
                .with_roles(["member"])
                .with_tenant("acme");
            let _cookie = rt.block_on(m.login(&http::HeaderMap::new(), s)).unwrap();
        }
        Box::new(store)
    });

    let key = per_item(1000, |n| {
        let doc = jwks(&[TestKey::Rs256]).to_string();
        let sets: Vec<KeySet> = (0..n)
            .map(|_| KeySet::from_jwks(doc.as_bytes(), &[Algorithm::RS256], false).unwrap())
            .collect();
        Box::new(sets)
    });

    let tokens: Vec<String> = (0..N)
        .map(|i| {
            TokenBuilder::new(TestKey::Hs256)
                .with_claim("sub", format!("user-{i}"))
                .with_claim("roles", serde_json::json!(["member"]))
                .with_claim("exp", now() + 3600)
                .sign()
        })
        .collect();
    let token_len = tokens[0].len();
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Hs256.key_set(),
        Validation::new([Algorithm::HS256]),
    ))
    .with_token_cache(TokenCache::new().with_max_entries(N * 2));
    let cached = per_item(N, |_| {
        for t in &tokens {
            now_or_never(verifier.verify(t)).unwrap();
        }
        Box::new(())
    });

    println!("{:<40} {:>10}", "item", "bytes");
    println!("{:<40} {:>10}", "stored session (memory store)", session);
    println!("{:<40} {:>10}", "cached RSA-2048 key (JWKS entry)", key);
    println!(
        "{:<40} {:>10}",
        format!("cached token ({token_len}-byte token)"),
        cached
    );
}
