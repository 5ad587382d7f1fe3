//! The stores under test: memory always, Redis and Postgres when their URLs are set.
#![allow(dead_code)]

use std::sync::Arc;

use portcullis::session::{MemoryStore, SessionStore};

/// One table for every test run: ids and subjects are unique per run, so runs never
/// collide, and the shared database does not fill up with per-run tables.
pub const PG_TABLE: &str = "portcullis_test_sessions";

pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom_fill(&mut b);
    format!(
        "{prefix}{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

fn getrandom_fill(b: &mut [u8]) {
    use rand::RngCore;
    rand::rng().fill_bytes(b);
}

/// (name, store) for every store reachable in this run.
pub async fn all_stores() -> Vec<(&'static str, Arc<dyn SessionStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn SessionStore>)> =
        vec![("memory", Arc::new(MemoryStore::new()))];
    match std::env::var("PORTCULLIS_TEST_REDIS_URL") {
        Ok(url) => {
            let store = portcullis::session::RedisStore::builder(&url)
                .with_prefix(&unique("pctest:"))
                .with_connect_timeout(std::time::Duration::from_secs(2))
                .connect()
                .await
                .expect("PORTCULLIS_TEST_REDIS_URL is set but Redis does not answer");
            out.push(("redis", Arc::new(store)));
        }
        Err(_) => eprintln!("skip: PORTCULLIS_TEST_REDIS_URL not set, Redis store not tested"),
    }
    match std::env::var("PORTCULLIS_TEST_POSTGRES_URL") {
        Ok(url) => {
            let store = portcullis::session::PostgresStore::builder(&url)
                .with_table(PG_TABLE)
                .with_connect_timeout(std::time::Duration::from_secs(2))
                .connect()
                .await
                .expect("PORTCULLIS_TEST_POSTGRES_URL is set but PostgreSQL does not answer");
            out.push(("postgres", Arc::new(store)));
        }
        Err(_) => {
            eprintln!("skip: PORTCULLIS_TEST_POSTGRES_URL not set, Postgres store not tested")
        }
    }
    out
}
