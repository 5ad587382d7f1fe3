//! The list's rules in process: scopes, matching, expiry and the local copy.

use super::filter::Filter;
use super::*;
use crate::context::Scheme;

fn ctx(iss: &str, sub: &str, iat: u64, jti: Option<&str>) -> AuthContext {
    let mut b = AuthContext::builder(sub, Scheme::Bearer)
        .with_issuer(iss)
        .with_issued_at(iat);
    if let Some(j) = jti {
        b = b.with_token_id(j);
    }
    b.build()
}

#[test]
fn entries_round_trip_and_garbage_is_refused() {
    let all = [
        Entry::Token {
            issuer: "https://a".into(),
            id: "j1".into(),
            expires: 9,
        },
        Entry::Subject {
            issuer: None,
            subject: "alice".into(),
            as_of: 5,
        },
        Entry::Subject {
            issuer: Some("https://b".into()),
            subject: "bob".into(),
            as_of: 6,
        },
        Entry::Session {
            id: "0123456789abcdef".into(),
            expires: 7,
        },
    ];
    for e in all {
        let (f, v) = e.encode();
        assert_eq!(Entry::decode(&f, v), Some(e));
    }
    for bad in [
        "",
        "t",
        "t\u{1f}x",
        "q\u{1f}a\u{1f}b",
        "x\u{1f}a\u{1f}b",
        "t\u{1f}a\u{1f}b\u{1f}c",
    ] {
        assert_eq!(Entry::decode(bad, 1), None, "{bad:?}");
    }
}

#[tokio::test]
async fn scoped_per_issuer_and_by_issue_time() {
    let r = Revocations::memory();
    let t = b"token";
    assert!(
        r.check_token(&ctx("https://a", "alice", 100, None), t)
            .is_ok()
    );
    r.revoke_subject(Some("https://a"), "alice", 150)
        .await
        .unwrap();
    assert!(
        r.check_token(&ctx("https://a", "alice", 100, None), t)
            .is_err()
    );
    assert!(
        r.check_token(&ctx("https://a", "alice", 200, None), t)
            .is_ok()
    );
    assert!(
        r.check_token(&ctx("https://b", "alice", 100, None), t)
            .is_ok(),
        "other issuer"
    );
    r.revoke_token("https://b", "j9", u64::MAX).await.unwrap();
    assert!(
        r.check_token(&ctx("https://b", "bob", 1, Some("j9")), t)
            .is_err()
    );
    assert!(
        r.check_token(&ctx("https://a", "bob", 1, Some("j9")), t)
            .is_ok(),
        "same jti, other issuer"
    );
    // Without jti, the token's hash.
    r.revoke_token("https://b", &token_hash(b"raw"), u64::MAX)
        .await
        .unwrap();
    assert!(
        r.check_token(&ctx("https://b", "carol", 1, None), b"raw")
            .is_err()
    );
    assert!(
        r.check_token(&ctx("https://b", "carol", 1, None), b"other")
            .is_ok()
    );
}

#[test]
fn the_pre_filter_never_misses_a_key() {
    let f = Filter::default();
    let keys: Vec<String> = (0..5_000).map(|i| format!("subject-{i}")).collect();
    for k in &keys[..2_500] {
        f.insert(k);
    }
    assert!(keys[..2_500].iter().all(|k| f.may_contain(k)));
    f.replace(keys[1_000..].iter().map(String::as_str));
    assert!(keys[1_000..].iter().all(|k| f.may_contain(k)));
    // Mostly clear for absent keys when few are present.
    let small = Filter::default();
    small.replace(keys[..50].iter().map(String::as_str));
    let false_positives = keys[50..].iter().filter(|k| small.may_contain(k)).count();
    assert!(false_positives < keys.len() / 20, "{false_positives}");
}

#[tokio::test]
async fn a_reload_keeps_every_live_revocation_refused() {
    let r = Revocations::memory();
    let old = ctx("https://a", "alice", 1, Some("j"));
    r.revoke_token("https://a", "j", u64::MAX).await.unwrap();
    r.local.replace(vec![
        Entry::Token {
            issuer: "https://a".into(),
            id: "j".into(),
            expires: u64::MAX,
        },
        Entry::Subject {
            issuer: None,
            subject: "bob".into(),
            as_of: u64::MAX,
        },
    ]);
    assert_eq!(
        crate::error::reason_of(r.check_token(&old, b"t")),
        "revoked: token"
    );
    assert!(
        r.check_token(&ctx("https://a", "bob", 1, None), b"t")
            .is_err()
    );
    r.local.replace(Vec::new());
    assert!(
        r.check_token(&old, b"t").is_ok(),
        "a reload drops what is gone"
    );
}

#[test]
fn a_token_is_identified_by_what_was_signed_not_by_its_signature() {
    assert_eq!(token_hash(b"h.p.sig1"), token_hash(b"h.p.sig2"));
    assert_eq!(token_hash(b"h.p.sig"), token_hash(b"h.p.sig=="));
    assert_ne!(token_hash(b"h.p.sig"), token_hash(b"h.q.sig"));
    assert_ne!(token_hash(b"h.p.sig"), token_hash(b"g.p.sig"));
    // Not a JWS: hashed whole, so opaque tokens never share an id.
    assert_ne!(token_hash(b"opaque.a"), token_hash(b"opaque.b"));
    assert_ne!(token_hash(b"a.b.c.d"), token_hash(b"a.b.c.e"));
    assert_ne!(token_hash(b"abc"), token_hash(b"abd"));
}

#[test]
fn expired_entries_are_swept() {
    let mut set = Set::default();
    set.apply(Entry::Token {
        issuer: "i".into(),
        id: "a".into(),
        expires: 10,
    });
    set.apply(Entry::Token {
        issuer: "i".into(),
        id: "b".into(),
        expires: 1000,
    });
    set.apply(Entry::Session {
        id: "s".into(),
        expires: 10,
    });
    set.sweep(500);
    assert_eq!(set.len(), 1);
}
