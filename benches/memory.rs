//! Bytes per stored session, per cached key and per cached token, measured two ways:
//!
//! - **requested**: live bytes asked of Rust's allocator, counted by a wrapping global
//!   allocator (exact, but blind to aws-lc's C allocations);
//! - **heap**: growth of glibc's heap in use (`mallinfo2`), which also sees aws-lc's C
//!   allocations and includes malloc's own per-chunk overhead.
//!
//! ```text
//! cargo bench --bench memory
//! ```

mod common;

use common::now_or_never;

use portcullis::jwt::{Algorithm, Issuer, JwtVerifier, KeySet, TokenCache, Validation};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
use portcullis::testing::{TestKey, TokenBuilder, jwks, now};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live through Rust's allocation calls.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only
// observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes in use in glibc's heap: chunks in the arenas plus chunks mapped on their own
/// (`hblkhd`: large blocks such as a big hash table's storage).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

/// Bytes per item kept alive by `f(n)`: (requested from Rust's allocator, heap growth).
fn per_item(n: usize, f: impl FnOnce(usize) -> Box<dyn std::any::Any>) -> (usize, usize) {
    let (live, heap) = (LIVE.load(Ordering::Relaxed), heap_in_use());
    let keep = f(n);
    let (live_after, heap_after) = (LIVE.load(Ordering::Relaxed), heap_in_use());
    drop(keep);
    (
        live_after.saturating_sub(live) / n,
        heap_after.saturating_sub(heap) / n,
    )
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
                .with_claim("aud", "api")
                .with_claim("roles", serde_json::json!(["member"]))
                .with_claim("exp", now() + 3600)
                .sign()
        })
        .collect();
    let token_len = tokens[0].len();
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Hs256.key_set(),
        Validation::new([Algorithm::HS256]).with_audience("api"),
    ))
    .with_token_cache(TokenCache::new().with_max_entries(N * 2));
    let cached = per_item(N, |_| {
        for t in &tokens {
            now_or_never(verifier.verify(t)).unwrap();
        }
        Box::new(())
    });

    // A tenant of `jwt::Tenants`: its discovery document, key set and issuer, resolved
    // from its first token (the key server's realms exist before the count starts).
    const TENANTS: usize = 200;
    let server = rt.block_on(portcullis::testing::KeyServer::start(jwks(&[])));
    for i in 0..TENANTS {
        server.add_realm(&format!("t{i}"), jwks(&[TestKey::Rs256]));
    }
    let tenant_tokens: Vec<String> = (0..TENANTS)
        .map(|i| {
            TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", format!("{}/realms/t{i}", server.base_url()))
                .with_claim("aud", "api")
                .with_claim("exp", now() + 3600)
                .sign()
        })
        .collect();
    let tenants = portcullis::jwt::Tenants::new(
        &format!("{}/realms/{{tenant}}", server.base_url()),
        Validation::new([Algorithm::RS256]).with_audience("api"),
    )
    .unwrap()
    .with_allow_fn(|_| true);
    let tenant_verifier = JwtVerifier::for_tenants(tenants.clone());
    // One tenant first, so the HTTP client's own set-up is not counted per tenant.
    rt.block_on(tenant_verifier.verify(&tenant_tokens[0]))
        .unwrap();
    let tenant = per_item(TENANTS - 1, |_| {
        for t in &tenant_tokens[1..] {
            rt.block_on(tenant_verifier.verify(t)).unwrap();
        }
        Box::new(())
    });
    assert_eq!(tenants.len(), TENANTS);

    println!("{:<40} {:>10} {:>10}", "item", "requested", "heap");
    for (name, (requested, heap)) in [
        ("stored session (memory store)".to_owned(), session),
        ("cached RSA-2048 key (JWKS entry)".to_owned(), key),
        (format!("cached token ({token_len}-byte token)"), cached),
        ("tenant (discovery, RSA key set, issuer)".to_owned(), tenant),
    ] {
        println!("{name:<40} {requested:>10} {heap:>10}");
    }
}
