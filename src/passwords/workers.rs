//! Argon2 verification on a fixed set of worker threads that each own, and reuse, one
//! memory buffer: a flood of guesses costs `workers x memory cost` and nothing more.
//!
//! Verifying on a general blocking pool allocates argon2's memory (19 MiB by default)
//! per call on whatever thread runs it; the allocator keeps those blocks per thread, and
//! a flood of guesses left hundreds of megabytes resident. Here each worker grows its
//! buffer once, to the largest memory cost it has seen, and fills the same blocks on
//! every call.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::error::ConfigError;

/// A PHC argon2 hash, parsed once: what a verification needs besides the password.
pub(crate) struct PreparedHash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl PreparedHash {
    /// Parses `phc` (`$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>`).
    pub(crate) fn parse(phc: &str) -> Result<Self, ConfigError> {
        let bad = |what: &str| ConfigError::new(format!("password hash: {what}"));
        let hash = PasswordHash::new(phc).map_err(|_| bad("not a PHC string"))?;
        let algorithm = Algorithm::try_from(hash.algorithm)
            .map_err(|_| bad("only argon2 hashes are supported"))?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(|_| bad("unknown argon2 version"))?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).map_err(|_| bad("bad argon2 parameters"))?;
        let mut salt = [0u8; 64];
        let salt = hash
            .salt
            .ok_or_else(|| bad("no salt"))?
            .decode_b64(&mut salt)
            .map_err(|_| bad("bad salt"))?
            .to_vec();
        let expected = hash
            .hash
            .ok_or_else(|| bad("no hash value"))?
            .as_bytes()
            .to_vec();
        Ok(PreparedHash {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// Whether `password` hashes to this hash, filling `memory` (grown when too small).
    fn verify_with(&self, password: &[u8], memory: &mut Vec<Block>) -> bool {
        let blocks = self.params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let argon = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut out = vec![0u8; self.expected.len()];
        let ok = argon
            .hash_password_into_with_memory(password, &self.salt, &mut out, &mut memory[..blocks])
            .is_ok();
        ok && bool::from(out.ct_eq(&self.expected))
    }
}

struct Job {
    hash: Arc<PreparedHash>,
    password: Vec<u8>,
    reply: tokio::sync::oneshot::Sender<bool>,
    /// Held until the job is done, even when its caller has gone: the caller's permits
    /// bound the jobs queued and running.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// `n` worker threads, started at the first verification and stopped when the last
/// handle is dropped. Callers bound how many jobs are queued (one per permit).
pub(crate) struct Workers {
    n: usize,
    jobs: OnceLock<Result<Mutex<Sender<Job>>, ()>>,
}

impl Workers {
    pub(crate) fn new(n: usize) -> Self {
        Workers {
            n: n.max(1),
            jobs: OnceLock::new(),
        }
    }

    fn sender(&self) -> Option<&Mutex<Sender<Job>>> {
        self.jobs
            .get_or_init(|| {
                let (tx, rx) = channel::<Job>();
                let rx = Arc::new(Mutex::new(rx));
                for i in 0..self.n {
                    let rx = rx.clone();
                    std::thread::Builder::new()
                        .name(format!("portcullis-argon2-{i}"))
                        .spawn(move || work(&rx))
                        .map_err(|e| {
                            tracing::error!(error = %e, "could not start a password worker");
                        })?;
                }
                Ok(Mutex::new(tx))
            })
            .as_ref()
            .ok()
    }

    /// Verifies `password` against `hash` on a worker, holding `permit` until done; the
    /// answer arrives on the returned receiver. `None` when no worker could be started.
    pub(crate) fn submit(
        &self,
        hash: Arc<PreparedHash>,
        password: &[u8],
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            hash,
            password: password.to_vec(),
            reply,
            permit,
        };
        let sender = self.sender()?;
        let sent = sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .is_ok();
        sent.then_some(answer)
    }
}

/// One worker: takes jobs until every sender is gone, reusing its argon2 memory.
fn work(jobs: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let Job {
            hash,
            mut password,
            reply,
            permit,
        } = job;
        let ok = hash.verify_with(&password, &mut memory);
        password.fill(0);
        drop(permit);
        let _ = reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_what_argon2_hashed_and_nothing_else() {
        let phc = crate::hash_password("correct horse").unwrap();
        let prepared = Arc::new(PreparedHash::parse(&phc).unwrap());
        let workers = Workers::new(2);
        let check = |pw: &str| {
            workers
                .submit(prepared.clone(), pw.as_bytes(), None)
                .unwrap()
                .blocking_recv()
                .unwrap()
        };
        assert!(check("correct horse"));
        assert!(!check("correct horsf"));
        assert!(!check(""));
        // Other parameters and algorithms, as argon2 writes them.
        for (alg, m, t, p) in [
            (Algorithm::Argon2i, 1024, 3, 1),
            (Algorithm::Argon2d, 64, 1, 2),
        ] {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let params = Params::new(m, t, p, Some(24)).unwrap();
            let salt = SaltString::encode_b64(b"saltsaltsalt").unwrap();
            let phc = Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            let prepared = Arc::new(PreparedHash::parse(&phc).unwrap());
            let rx = workers.submit(prepared.clone(), b"pw", None).unwrap();
            assert!(rx.blocking_recv().unwrap(), "{phc}");
            let rx = workers.submit(prepared, b"pW", None).unwrap();
            assert!(!rx.blocking_recv().unwrap(), "{phc}");
        }
        for bad in [
            "plaintext",
            "$2b$12$abcdefghijklmnopqrstuu",
            "$argon2id$v=19$m=8,t=1,p=1",
        ] {
            assert!(PreparedHash::parse(bad).is_err(), "{bad}");
        }
    }
}
