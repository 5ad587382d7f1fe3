//! Keeping this process's copy of the list current: subscribe, load, apply what the
//! channel brings, and prove every second that nothing was missed (or mark the copy out
//! of sync).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, timeout, timeout_at};

use super::{RedisRevocations, Shared, VERSION_FIELD, WRITE_FIELD};
use crate::clock::unix_secs;
use crate::redis::{Link, Subscription, describe as err};
use crate::revocation::entry::Entry;
use crate::revocation::local::Local;

/// Where a copy of the list stands: the version and the write that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Mark {
    version: u64,
    write: u64,
}

impl Mark {
    /// True when `self` (read from Redis) says the copy at `seen` holds a history Redis
    /// no longer has: the version went back, or the same version was made by another
    /// write.
    fn diverged_from(self, seen: Mark) -> bool {
        self.version < seen.version || (self.version == seen.version && self.write != seen.write)
    }
}

/// How often a follower proves its copy current (a ping on its subscription and a read
/// of the version).
const POLL: Duration = Duration::from_secs(1);
/// How long one step of that proof (ping with version read, full reload) may take.
const STEP: Duration = Duration::from_millis(750);
/// How long a version the proof saw may wait for its message before a full reload.
const CATCH_UP: Duration = Duration::from_millis(250);

impl RedisRevocations {
    /// The longest a revocation acknowledged by Redis can go unenforced by an instance that
    /// still answers requests from its copy. A proof (check, wait for a message on its way,
    /// reload) takes at most `2 STEP + CATCH_UP` = 1.75 s, and the first proof that starts
    /// after the write starts within `max(POLL, 1.75 s)` of it, so by 3.5 s the entry is
    /// applied or the copy is marked out of sync (503). Tested in
    /// `tests/adversarial_shared_state.rs`.
    pub const SYNC_BOUND: Duration = Duration::from_secs(4);
}

/// Every live entry of the hash and its version, read at one moment (dropping expired
/// entries from Redis as it goes), within [`STEP`].
async fn load_all(shared: &Shared) -> Result<(Mark, Vec<Entry>), String> {
    let mut conn = shared.conn.clone();
    let all: Vec<(String, String)> = timeout(
        STEP,
        redis::cmd("HGETALL")
            .arg(&shared.key)
            .query_async(&mut conn),
    )
    .await
    .map_err(|_| "reload timed out".to_owned())?
    .map_err(err)?;
    let now = unix_secs();
    let mut mark = Mark::default();
    let mut entries = Vec::with_capacity(all.len());
    let mut dead = Vec::new();
    for (field, value) in all {
        let Ok(value) = value.parse::<u64>() else {
            tracing::warn!("revocation list holds a value that does not parse; ignored");
            continue;
        };
        if field == VERSION_FIELD {
            mark.version = value;
            continue;
        }
        if field == WRITE_FIELD {
            mark.write = value;
            continue;
        }
        match Entry::decode(&field, value) {
            Some(e) if e.useless_after() > now => entries.push(e),
            Some(_) => dead.push(field),
            None => tracing::warn!("revocation list holds a field that does not parse; ignored"),
        }
    }
    if !dead.is_empty() {
        let _: Result<Result<i64, _>, _> = timeout(
            STEP,
            redis::cmd("HDEL")
                .arg(&shared.key)
                .arg(dead)
                .query_async(&mut conn),
        )
        .await;
    }
    Ok((mark, entries))
}

/// The list's mark, within [`STEP`].
async fn read_mark(shared: &Shared) -> Result<Mark, String> {
    let mut conn = shared.conn.clone();
    let (version, write): (Option<u64>, Option<u64>) = timeout(
        STEP,
        redis::cmd("HMGET")
            .arg(&shared.key)
            .arg(VERSION_FIELD)
            .arg(WRITE_FIELD)
            .query_async(&mut conn),
    )
    .await
    .map_err(|_| "version read timed out".to_owned())?
    .map_err(err)?;
    Ok(Mark {
        version: version.unwrap_or(0),
        write: write.unwrap_or(0),
    })
}

/// Subscribes, reloads, applies messages; on any loss marks the copy stale, waits and
/// starts over. Ends when the last [`Revocations`] of this list is dropped.
pub(super) async fn keep_current(link: Link, shared: Arc<Shared>, local: Weak<Local>) {
    let mut pause = Duration::from_millis(100);
    loop {
        if local.strong_count() == 0 {
            return;
        }
        match follow(&link, &shared, &local).await {
            Ok(()) => return,
            Err(e) => {
                if let Some(l) = local.upgrade() {
                    l.lost();
                }
                tracing::warn!(error = %e, "revocation list out of sync; reconnecting");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One message: the mark it made and its entry; `None` when it does not parse.
fn parse_message(payload: &str) -> Option<(Mark, Entry)> {
    let mut parts = payload.split('\u{1e}');
    let version = parts.next()?.parse().ok()?;
    let write = parts.next()?.parse().ok()?;
    let field = parts.next()?;
    let value = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((Mark { version, write }, Entry::decode(field, value)?))
}

/// One subscription's life: `Ok` when the list was dropped, `Err` when the copy can no
/// longer be proved current.
async fn follow(link: &Link, shared: &Shared, local: &Weak<Local>) -> Result<(), String> {
    let mut subscription = Subscription::open(link, &shared.key, STEP).await?;
    // The mark the copy holds every entry up to.
    let reload = async || -> Result<Option<Mark>, String> {
        let (mark, entries) = load_all(shared).await?;
        Ok(local.upgrade().map(|l| {
            l.replace(entries);
            mark
        }))
    };
    let Some(mut seen) = reload().await? else {
        return Ok(());
    };
    let mut next_proof = Instant::now() + POLL;
    // A version the last proof saw that no message has brought yet, and until when
    // its message may still be on its way.
    let mut catch_up: Option<(u64, Instant)> = None;
    loop {
        let deadline = catch_up.map_or(next_proof, |(_, until)| until.min(next_proof));
        let next = timeout_at(deadline, subscription.next()).await;
        let Some(local_list) = local.upgrade() else {
            return Ok(());
        };
        match next {
            Ok(None) => return Err("subscription closed or may have missed messages".into()),
            Ok(Some(msg)) => {
                let parsed = std::str::from_utf8(&msg).ok().and_then(parse_message);
                drop(local_list);
                let behind = match parsed {
                    Some((mark, entry)) => {
                        if let Some(l) = local.upgrade() {
                            l.apply(entry);
                        }
                        if mark.version == seen.version + 1 {
                            seen = mark;
                            false
                        } else if mark.version <= seen.version {
                            // An echo of what a reload brought already, unless it names
                            // another write for a version seen: then histories differ.
                            mark.version == seen.version && mark.write != seen.write
                        } else {
                            tracing::warn!("a revocation message was lost; reloading the list");
                            true
                        }
                    }
                    None => {
                        tracing::warn!("revocation message does not parse; reloading the list");
                        true
                    }
                };
                if behind {
                    match reload().await? {
                        Some(m) => seen = m,
                        None => return Ok(()),
                    }
                }
                if catch_up.is_some_and(|(v, _)| seen.version >= v) {
                    catch_up = None;
                }
            }
            Err(_) if catch_up.is_some() && Instant::now() < next_proof => {
                // The message for the version seen never came: a reload has it.
                drop(local_list);
                tracing::warn!("a revocation message did not arrive; reloading the list");
                match reload().await? {
                    Some(m) => seen = m,
                    None => return Ok(()),
                }
                catch_up = None;
            }
            Err(_) => {
                drop(local_list);
                let started = Instant::now();
                let (pong, mark) = tokio::join!(subscription.ping(), read_mark(shared));
                pong?;
                let mark = mark?;
                if mark.diverged_from(seen) {
                    tracing::warn!(
                        "revocation list went back or was rewritten (Redis lost data?); reloading"
                    );
                    match reload().await? {
                        Some(m) => seen = m,
                        None => return Ok(()),
                    }
                    catch_up = None;
                } else if mark.version > seen.version {
                    match catch_up {
                        // Still missing since the last proof: reload now.
                        Some(_) => {
                            match reload().await? {
                                Some(m) => seen = m,
                                None => return Ok(()),
                            }
                            catch_up = None;
                        }
                        None => catch_up = Some((mark.version, Instant::now() + CATCH_UP)),
                    }
                }
                next_proof = started + POLL;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_history_is_told_from_a_current_one() {
        let seen = Mark {
            version: 10,
            write: 5,
        };
        assert!(!seen.diverged_from(seen));
        assert!(
            !Mark {
                version: 11,
                write: 9
            }
            .diverged_from(seen)
        );
        assert!(
            Mark {
                version: 9,
                write: 9
            }
            .diverged_from(seen)
        );
        assert!(
            Mark {
                version: 10,
                write: 6
            }
            .diverged_from(seen)
        );
    }

    #[test]
    fn messages_carry_their_version_and_nothing_else() {
        let e = Entry::Session {
            id: "0123456789abcdef".into(),
            expires: 9,
        };
        let (f, v) = e.encode();
        assert_eq!(
            parse_message(&format!("7\u{1e}123\u{1e}{f}\u{1e}{v}")),
            Some((
                Mark {
                    version: 7,
                    write: 123
                },
                e
            ))
        );
        for bad in [
            String::new(),
            format!("{f}\u{1e}{v}"),
            format!("7\u{1e}{f}\u{1e}{v}"),
            format!("x\u{1e}1\u{1e}{f}\u{1e}{v}"),
            format!("7\u{1e}1\u{1e}{f}\u{1e}{v}\u{1e}1"),
            format!("7\u{1e}1\u{1e}{f}\u{1e}nope"),
        ] {
            assert_eq!(parse_message(&bad), None, "{bad:?}");
        }
    }
}
