//! One store suite, run against memory, Redis and PostgreSQL (the real servers).
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::sync::Arc;

use common::stores::all_stores;
use portcullis::session::{SessionRecord, SessionStore};
use serde_json::json;

fn now() -> u64 {
    portcullis::testing::now()
}

fn record(id: &str, subject: &str, ttl: u64) -> SessionRecord {
    let n = now();
    serde_json::from_value(json!({
        "id_hash": id, "subject": subject, "roles": ["r"], "tenant": "t", "email": null,
        "data": {"k": 1}, "created_at": n, "touched_at": n,
        "idle_expires_at": n + ttl, "absolute_expires_at": n + ttl + 100,
    }))
    .unwrap()
}

async fn crud(name: &str, store: &Arc<dyn SessionStore>) {
    let r = record(&common::stores::unique("id-"), "alice", 60);
    store.create(&r).await.unwrap();
    assert_eq!(
        store.load(&r.id_hash).await.unwrap().as_ref(),
        Some(&r),
        "{name}"
    );
    assert_eq!(store.load("nope").await.unwrap(), None, "{name}");
    let mut t = store.load(&r.id_hash).await.unwrap().unwrap();
    t.touch(now() + 1, now() + 1000);
    assert!(store.replace(&t).await.unwrap(), "{name}");
    let touched = store.load(&r.id_hash).await.unwrap().unwrap();
    assert_eq!(touched.touched_at, now() + 1, "{name}");
    assert_eq!(touched.version, t.version + 1, "{name}");
    // A touch never goes past the absolute expiry.
    assert_eq!(touched.idle_expires_at, r.absolute_expires_at, "{name}");
    // A write over a version that is no longer the stored one is refused.
    assert!(
        !store.replace(&t).await.unwrap(),
        "{name}: stale version written"
    );
    assert!(store.delete(&r.id_hash).await.unwrap(), "{name}");
    assert!(!store.delete(&r.id_hash).await.unwrap(), "{name}");
    assert_eq!(store.load(&r.id_hash).await.unwrap(), None, "{name}");
    // Writing a deleted session does not resurrect it.
    assert!(!store.replace(&touched).await.unwrap(), "{name}");
    assert_eq!(store.load(&r.id_hash).await.unwrap(), None, "{name}");
}

/// Two writers that read the same version: the second write is refused, so it cannot
/// undo the first (a one-time value removed stays removed).
async fn writes_never_undo_each_other(name: &str, store: &Arc<dyn SessionStore>) {
    let mut r = record(&common::stores::unique("id-"), "gina", 60);
    r.data.insert("otp".into(), json!(true));
    store.create(&r).await.unwrap();
    let mut a = store.load(&r.id_hash).await.unwrap().unwrap();
    let mut b = a.clone();
    b.data.remove("otp");
    assert!(store.replace(&b).await.unwrap(), "{name}");
    a.roles = vec!["refreshed".into()];
    assert!(
        !store.replace(&a).await.unwrap(),
        "{name}: an old copy was written back"
    );
    let now_stored = store.load(&r.id_hash).await.unwrap().unwrap();
    assert_eq!(
        now_stored.data.get("otp"),
        None,
        "{name}: the removed value came back"
    );
}

/// A rotation moves the record, unchanged, to the new id; a session deleted before it
/// stays deleted.
async fn rotation_moves_or_refuses(name: &str, store: &Arc<dyn SessionStore>) {
    let subject = common::stores::unique("hank-");
    let mut r = record(&common::stores::unique("id-"), &subject, 60);
    r.created_at -= 100;
    r.refreshed_at = r.created_at;
    store.create(&r).await.unwrap();
    let loaded = store.load(&r.id_hash).await.unwrap().unwrap();
    let new_id = common::stores::unique("id-");
    assert!(store.rotate(&loaded, &new_id).await.unwrap(), "{name}");
    assert_eq!(
        store.load(&r.id_hash).await.unwrap(),
        None,
        "{name}: old id kept"
    );
    let moved = store.load(&new_id).await.unwrap().unwrap();
    assert_eq!(moved.id_hash, new_id, "{name}");
    assert_eq!(
        (
            moved.created_at,
            moved.refreshed_at,
            moved.absolute_expires_at,
            moved.data.clone()
        ),
        (
            r.created_at,
            r.refreshed_at,
            r.absolute_expires_at,
            r.data.clone()
        ),
        "{name}"
    );
    // The moved record is still its subject's: logout everywhere reaches it.
    assert_eq!(
        store.delete_all_for_subject(&subject).await.unwrap(),
        1,
        "{name}"
    );
    let third = common::stores::unique("id-");
    assert!(
        !store.rotate(&moved, &third).await.unwrap(),
        "{name}: rotated a deleted session"
    );
    assert_eq!(
        store.load(&third).await.unwrap(),
        None,
        "{name}: resurrected"
    );
}

async fn replace_never_resurrects(name: &str, store: &Arc<dyn SessionStore>) {
    let r = record(&common::stores::unique("id-"), "erin", 60);
    store.create(&r).await.unwrap();
    let mut changed = r.clone();
    changed.roles = vec!["editor".into()];
    changed.data.insert("theme".into(), json!("dark"));
    assert!(store.replace(&changed).await.unwrap(), "{name}");
    let loaded = store.load(&r.id_hash).await.unwrap().unwrap();
    assert_eq!(loaded.roles, ["editor"], "{name}");
    assert_eq!(loaded.data["theme"], "dark", "{name}");
    assert!(store.delete(&r.id_hash).await.unwrap(), "{name}");
    assert!(
        !store.replace(&changed).await.unwrap(),
        "{name}: replace recreated it"
    );
    assert_eq!(store.load(&r.id_hash).await.unwrap(), None, "{name}");
}

/// Replaces (a data write, a role refresh) racing a logout-everywhere: once the
/// subject's sessions are deleted, no replace brings one back.
async fn replace_races_logout(name: &str, store: &Arc<dyn SessionStore>) {
    let subject = common::stores::unique("frank-");
    let ids: Vec<String> = (0..20).map(|_| common::stores::unique("id-")).collect();
    for id in &ids {
        store.create(&record(id, &subject, 60)).await.unwrap();
    }
    let mut writers = Vec::new();
    for id in ids.clone() {
        let store = store.clone();
        let subject = subject.clone();
        writers.push(tokio::spawn(async move {
            let mut r = record(&id, &subject, 60);
            for n in 0..10 {
                r.data.insert("n".into(), json!(n));
                if store.replace(&r).await.unwrap() {
                    r.version += 1;
                }
            }
        }));
    }
    tokio::task::yield_now().await;
    store.delete_all_for_subject(&subject).await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    // Writes before the deletion were deleted with the rest; writes after it found
    // nothing to replace.
    for id in &ids {
        assert_eq!(
            store.load(id).await.unwrap(),
            None,
            "{name}: {id} resurrected"
        );
    }
}

async fn logout_everywhere(name: &str, store: &Arc<dyn SessionStore>) {
    let subject = common::stores::unique("bob-");
    let other = common::stores::unique("carol-");
    let ids: Vec<String> = (0..5).map(|_| common::stores::unique("id-")).collect();
    for id in &ids {
        store.create(&record(id, &subject, 60)).await.unwrap();
    }
    let keep = record(&common::stores::unique("id-"), &other, 60);
    store.create(&keep).await.unwrap();
    assert_eq!(
        store.delete_all_for_subject(&subject).await.unwrap(),
        5,
        "{name}"
    );
    for id in &ids {
        assert_eq!(store.load(id).await.unwrap(), None, "{name}");
    }
    assert!(store.load(&keep.id_hash).await.unwrap().is_some(), "{name}");
    assert_eq!(
        store.delete_all_for_subject(&subject).await.unwrap(),
        0,
        "{name}"
    );
}

async fn concurrent(name: &str, store: &Arc<dyn SessionStore>) {
    let subject = common::stores::unique("dave-");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let subject = subject.clone();
        tasks.push(tokio::spawn(async move {
            let r = record(&format!("{subject}-{i}"), &subject, 60);
            store.create(&r).await.unwrap();
            if i % 2 == 0 {
                assert!(store.delete(&r.id_hash).await.unwrap());
            }
            r.id_hash
        }));
    }
    let mut kept = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let id = t.await.unwrap();
        let present = store.load(&id).await.unwrap().is_some();
        assert_eq!(present, i % 2 == 1, "{name}: session {i} lost or leaked");
        kept += usize::from(present);
    }
    assert_eq!(kept, 25);
    assert_eq!(
        store.delete_all_for_subject(&subject).await.unwrap(),
        25,
        "{name}"
    );
}

#[tokio::test]
async fn same_suite_for_every_store() {
    for (name, store) in all_stores().await {
        crud(name, &store).await;
        writes_never_undo_each_other(name, &store).await;
        rotation_moves_or_refuses(name, &store).await;
        replace_never_resurrects(name, &store).await;
        replace_races_logout(name, &store).await;
        logout_everywhere(name, &store).await;
        concurrent(name, &store).await;
        eprintln!("store suite passed: {name}");
    }
}

#[tokio::test]
async fn redis_expires_records_natively() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_REDIS_URL not set");
        return;
    };
    let store = portcullis::session::RedisStore::builder(&url)
        .with_prefix(&common::stores::unique("pctest:"))
        .with_connect_timeout(std::time::Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let mut r = record("short", "eve", 1);
    r.idle_expires_at = now() + 1;
    store.create(&r).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.load("short").await.unwrap(), None);
}

#[tokio::test]
async fn postgres_cleanup_deletes_expired_rows() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_POSTGRES_URL not set");
        return;
    };
    let store = portcullis::session::PostgresStore::builder(&url)
        .with_table(common::stores::PG_TABLE)
        .with_connect_timeout(std::time::Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let (old, fresh) = (
        common::stores::unique("old-"),
        common::stores::unique("fresh-"),
    );
    let mut r = record(&old, &common::stores::unique("eve-"), 0);
    r.idle_expires_at = now() - 10;
    store.create(&r).await.unwrap();
    store
        .create(&record(&fresh, &common::stores::unique("eve-"), 60))
        .await
        .unwrap();
    // Other tests share the table, so count at least our expired row.
    assert!(store.cleanup_expired().await.unwrap() >= 1);
    assert!(store.load(&old).await.unwrap().is_none());
    assert!(store.load(&fresh).await.unwrap().is_some());
}

#[tokio::test]
async fn unreachable_stores_fail_at_connect() {
    let r = portcullis::session::RedisStore::builder("redis://127.0.0.1:1")
        .with_prefix("x:")
        .with_connect_timeout(std::time::Duration::from_millis(300))
        .connect()
        .await;
    let r = r.expect_err("no Redis listens on port 1");
    assert!(r.message().starts_with("redis: "), "{r}");
    let p = portcullis::session::PostgresStore::builder("postgres://127.0.0.1:1/test")
        .with_table("x")
        .with_connect_timeout(std::time::Duration::from_millis(300))
        .connect()
        .await;
    let p = p.expect_err("no PostgreSQL listens on port 1");
    assert!(p.message().starts_with("postgres: "), "{p}");
}
