//! The counters one attempt touches, and who they are about: keyed fingerprints for
//! in-process tables, names for backends that count by name.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::LazyLock;

use crate::http::client_address::client_key;

/// The three counters one attempt touches (user and client, client, user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Their 64-bit fingerprints: SipHash of the user name and of the client under
    /// random per-process keys (the pair's derived from the two), so nobody can aim two
    /// keys at one counter. In-process tables count under these.
    pub ids: [u64; 3],
    /// Their names (`uc:…`, `c:…`, `u:…`), for backends that keep counters by name
    /// ([`Backend::named`](super::Backend::named)); empty otherwise, so the in-process path allocates nothing.
    pub names: [String; 3],
}

/// The random keys of the fingerprints in this process: one for user names, one for
/// clients (two keyed functions, so neither input can pose as the other).
static USER_KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);
static CLIENT_KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// The fingerprint of a user name.
pub(super) fn user_fingerprint(user: &str) -> u64 {
    let mut h = USER_KEY.build_hasher();
    h.write(user.as_bytes());
    h.finish()
}

/// Another counter's fingerprint derived from two keyed fingerprints (or one and a
/// constant): a bijection in each argument, so distinct pairs of unpredictable inputs
/// give unpredictable, distinct-with-overwhelming-odds outputs.
fn combine(a: u64, b: u64) -> u64 {
    (a ^ b.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What credential counters combine with the client's fingerprint in place of a user.
const CREDENTIAL: u64 = 0x6372_6564_656e_7469;
const CREDENTIAL_SPRAY: u64 = 0x7370_7261_7963_7264;

/// Who a counter is about, beside the user name.
pub(super) enum Client {
    /// The connection's (or a trusted proxy's forwarded) address.
    Address(IpAddr),
    /// The key [`AttemptLimiter::with_client_key`](super::AttemptLimiter::with_client_key)'s function returned.
    Custom(String),
    /// No address at all: every such client shares one budget.
    Unknown,
}

impl Client {
    /// The client's fingerprint: of the address for IPv4, of its /64 network for IPv6
    /// (one host usually holds a whole /64), the same grouping as [`name`](Self::name).
    fn fingerprint(&self) -> u64 {
        let mut h = CLIENT_KEY.build_hasher();
        match self {
            Client::Address(IpAddr::V4(v4)) => {
                let [a, b, c, d] = v4.octets();
                h.write(&[4, a, b, c, d]);
            }
            Client::Address(IpAddr::V6(v6)) => {
                let [a, b, c, d, e, f, g, i, ..] = v6.octets();
                h.write(&[6, a, b, c, d, e, f, g, i]);
            }
            Client::Custom(key) => {
                h.write_u8(b'k');
                h.write(key.as_bytes());
            }
            Client::Unknown => h.write_u8(0),
        }
        h.finish()
    }
    fn name(&self) -> String {
        match self {
            Client::Address(ip) => client_key(*ip),
            Client::Custom(key) => ["k:", key.as_str()].concat(),
            Client::Unknown => "unknown".to_owned(),
        }
    }
}

impl Keys {
    /// The counters of a password attempt for `user` from `client`: the pair, the
    /// client, the user. `named` fills their names too (see [`Keys::names`]).
    pub(super) fn password(user: &str, client: &Client, named: bool) -> Keys {
        let c = client.fingerprint();
        let u = user_fingerprint(user);
        let names = if named {
            let client = client.name();
            // The user name's length first: no name can forge another pair's key.
            let len = user.len().to_string();
            [
                ["uc:", &len, ":", user, ":", &client].concat(),
                ["c:", &client].concat(),
                ["u:", user].concat(),
            ]
        } else {
            Default::default()
        };
        Keys {
            ids: [combine(u, c), c, u],
            names,
        }
    }

    /// The counters of a check of a credential that names no user, from `client`.
    pub(super) fn credential(client: &Client, named: bool) -> Keys {
        let c = client.fingerprint();
        let names = if named {
            let client = client.name();
            [
                ["cred:", &client].concat(),
                ["c:", &client].concat(),
                ["credu:", &client].concat(),
            ]
        } else {
            Default::default()
        };
        Keys {
            ids: [combine(c, CREDENTIAL), c, combine(c, CREDENTIAL_SPRAY)],
            names,
        }
    }
}
