//! The one connection description every Redis part takes: a URL naming a single node,
//! a Sentinel-watched primary or a Cluster.
//!
//! - `redis://[user[:password]@]host[:port][/db]` (and `rediss://`, `redis+unix://`,
//!   `unix://`): one node, read by the `redis` client as it is;
//! - `redis-sentinel://[user[:password]@]host:port,host:port/<service>[/<db>]`: the primary
//!   the sentinels name for `<service>` (sentinel port 26379 when left out); the
//!   credentials are the data nodes';
//! - `redis-cluster://[user[:password]@]host:port,host:port,...`: a Redis Cluster,
//!   discovered from any of the seed nodes (port 6379 when left out).
//!
//! The forms are those of the `fred` client, so operators recognise them.

use percent_encoding::percent_decode_str;

/// A parsed connection description.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One node; the URL as given.
    Single(String),
    /// The primary of `service`, found through the sentinels.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        service: String,
        db: i64,
        auth: Auth,
    },
    /// A cluster, found from its seed nodes.
    Cluster {
        seeds: Vec<(String, u16)>,
        auth: Auth,
    },
}

/// Credentials for the data nodes.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Auth {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        match self {
            Target::Single(_) => f.write_str("Single"),
            Target::Sentinel {
                sentinels, service, ..
            } => write!(f, "Sentinel({sentinels:?}, {service:?})"),
            Target::Cluster { seeds, .. } => write!(f, "Cluster({seeds:?})"),
        }
    }
}

/// Most seed nodes or sentinels one URL may list.
const MAX_HOSTS: usize = 64;

impl Target {
    /// Parses `url`; the error says what is wrong without echoing a password.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err("redis URL has no scheme (expected redis://, redis-sentinel:// or redis-cluster://)".into());
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" | "rediss" | "redis+unix" | "unix" => Ok(Target::Single(url.to_owned())),
            "redis-sentinel" => {
                let (auth, hosts, path) = split(rest)?;
                let sentinels = parse_hosts(hosts, 26379)?;
                let mut segments = path.split('/');
                let service = segments.next().unwrap_or_default();
                if service.is_empty() {
                    return Err(
                        "redis-sentinel URL names no service (redis-sentinel://host:port/<service>)"
                            .into(),
                    );
                }
                let db = match segments.next() {
                    None | Some("") => 0,
                    Some(d) => d.parse::<i64>().ok().filter(|d| *d >= 0).ok_or(
                        "redis-sentinel URL: the database after the service is not a number",
                    )?,
                };
                if segments.next().is_some() {
                    return Err("redis-sentinel URL has more path than /<service>/<db>".into());
                }
                Ok(Target::Sentinel {
                    sentinels,
                    service: decode(service, "service")?,
                    db,
                    auth,
                })
            }
            "redis-cluster" => {
                let (auth, hosts, path) = split(rest)?;
                if !path.is_empty() {
                    return Err(
                        "redis-cluster URL has a path; a cluster has one database, so give none"
                            .into(),
                    );
                }
                Ok(Target::Cluster {
                    seeds: parse_hosts(hosts, 6379)?,
                    auth,
                })
            }
            "rediss-sentinel" | "rediss-cluster" => Err(format!(
                "{scheme}:// needs TLS, which this build of portcullis does not include"
            )),
            other => Err(format!(
                "unknown redis URL scheme {other:?} (expected redis://, rediss://, redis-sentinel:// or redis-cluster://)"
            )),
        }
    }
}

/// Credentials, the host list and the path (without its leading `/`) of what follows
/// `scheme://`; query strings and fragments are refused.
fn split(rest: &str) -> Result<(Auth, &str, &str), String> {
    if rest.contains(['?', '#']) {
        return Err("redis URL: query strings and fragments are not supported".into());
    }
    // Credentials end at the last `@` (a password may hold `/` or `@`), the hosts at
    // the first `/` after them.
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (hosts, path) = after.split_once('/').unwrap_or((after, ""));
    let auth = match userinfo {
        None => Auth::default(),
        Some(u) => {
            let (user, password) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            Auth {
                username: (!user.is_empty())
                    .then(|| decode(user, "user name"))
                    .transpose()?,
                password: password.map(|p| decode(p, "password")).transpose()?,
            }
        }
    };
    Ok((auth, hosts, path))
}

fn decode(s: &str, what: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("redis URL: the {what} is not UTF-8 once percent-decoded"))
}

/// `host[:port],host[:port],...`; IPv6 addresses in brackets.
fn parse_hosts(hosts: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for h in hosts.split(',') {
        if out.len() == MAX_HOSTS {
            return Err(format!("redis URL lists more than {MAX_HOSTS} hosts"));
        }
        let (host, port) = if let Some(v6) = h.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or("redis URL: an IPv6 address misses its closing ]")?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or("redis URL: junk after an IPv6 address")?,
                ),
            };
            (addr, port)
        } else {
            match h.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (h, None),
            }
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        if !valid_host {
            return Err(format!("redis URL: {h:?} is not a host[:port]"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                format!("redis URL: {h:?} has a port that is not a number from 1 to 65535")
            })?,
        };
        out.push((host.to_owned(), port));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(v: &[(&str, u16)]) -> Vec<(String, u16)> {
        v.iter().map(|(h, p)| ((*h).to_owned(), *p)).collect()
    }

    #[test]
    fn the_three_forms_parse() {
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
        assert_eq!(
            Target::parse("redis-sentinel://a:26380,b/mymaster").unwrap(),
            Target::Sentinel {
                sentinels: hosts(&[("a", 26380), ("b", 26379)]),
                service: "mymaster".into(),
                db: 0,
                auth: Auth::default(),
            }
        );
        assert_eq!(
            Target::parse("redis-sentinel://u:p%40ss@[::1]:5000/svc/3").unwrap(),
            Target::Sentinel {
                sentinels: hosts(&[("::1", 5000)]),
                service: "svc".into(),
                db: 3,
                auth: Auth {
                    username: Some("u".into()),
                    password: Some("p@ss".into())
                },
            }
        );
        let c = Target::parse("redis-cluster://:secret@10.0.0.1:7000,10.0.0.2").unwrap();
        assert_eq!(
            c,
            Target::Cluster {
                seeds: hosts(&[("10.0.0.1", 7000), ("10.0.0.2", 6379)]),
                auth: Auth {
                    username: None,
                    password: Some("secret".into())
                },
            }
        );
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason() {
        for bad in [
            "127.0.0.1:6379",
            "http://x",
            "redis-sentinel://a:1",
            "redis-sentinel://a:1/",
            "redis-sentinel://a:1/svc/x",
            "redis-sentinel://a:1/svc/1/2",
            "redis-cluster://a:1/0",
            "redis-cluster://a:1?x=1",
            "redis-cluster://a:0",
            "redis-cluster://a:99999",
            "redis-cluster://a:1,,b:2",
            "redis-cluster://",
            "redis-cluster://[::1",
            "redis-cluster://[::1]x",
            "redis-cluster://a b:1",
            "redis-cluster://u:%ff@a:1",
            "rediss-cluster://a:1",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        let many = vec!["h:1"; MAX_HOSTS + 1].join(",");
        assert!(Target::parse(&format!("redis-cluster://{many}")).is_err());
        let e = Target::parse("redis-cluster://u:hunter2@a:0").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        // A password with `/` and `@` in it stays in the credentials.
        let t = Target::parse("redis-cluster://admin:pa/ss@rd@h:7000").unwrap();
        assert_eq!(
            t,
            Target::Cluster {
                seeds: hosts(&[("h", 7000)]),
                auth: Auth {
                    username: Some("admin".into()),
                    password: Some("pa/ss@rd".into())
                },
            }
        );
        let e = Target::parse("redis-sentinel://admin:pa/ss@h:x/svc").unwrap_err();
        assert!(!e.contains("pa/ss") && !e.contains("admin"), "{e}");
        assert_eq!(
            super::super::redacted("redis-sentinel://u:p/w@h:1/svc"),
            "redis-sentinel://***@h:1/svc"
        );
    }
}
