//! The client's address: the connection's peer, or, behind proxies you list, the
//! address those proxies recorded in the one forwarding header they write.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

use crate::error::ConfigError;

/// Forwarding headers longer than this are not read (the peer address is used).
const MAX_FORWARDED_BYTES: usize = 2048;
/// At most this many hops are walked, right to left.
const MAX_HOPS: usize = 32;

/// Proxies whose forwarding header is believed, by network (`10.0.0.0/8`,
/// `2001:db8::/32`, or one address). None by default: then the connection's peer is the
/// client, and forwarding headers are ignored, whatever they say.
///
/// With proxies listed, a request whose peer is one of them is attributed to the
/// rightmost address in the one header those proxies write ([`ForwardedHeader`]:
/// `X-Forwarded-For` unless you choose `Forwarded`) that is not a listed proxy (each
/// proxy appends the address it saw, so only the right end is trustworthy). The other
/// header is never read: a proxy that appends only `X-Forwarded-For` passes a
/// client's own `Forwarded` through untouched, and believing it would let every request
/// name its own address. Several lines of the header form one list (RFC 9110), in
/// order. An oversized or malformed header, or one made only of proxies, leaves the
/// peer as the client.
///
/// ```
/// use portcullis::{ForwardedHeader, TrustedProxies};
/// let behind_nginx = TrustedProxies::new(["10.0.0.0/8", "192.168.1.7"]).unwrap();
/// let behind_envoy = TrustedProxies::new(["10.0.0.0/8"])
///     .unwrap()
///     .with_header(ForwardedHeader::Forwarded);
/// assert!(TrustedProxies::new(["not-a-network"]).is_err());
/// # let _ = (behind_nginx, behind_envoy);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

/// The forwarding header your trusted proxies write, and the only one read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx `$proxy_add_x_forwarded_for`, AWS ALB,
    /// HAProxy `option forwardfor`, Traefik, Caddy): the default.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` (Envoy, some CDNs), only when
    /// every trusted proxy appends to it.
    Forwarded,
}

impl TrustedProxies {
    /// Trust these networks (CIDR) or single addresses.
    pub fn new<I, S>(networks: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for n in networks {
            let n = n.as_ref().trim();
            let net = match n.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => n.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    ConfigError::new(format!(
                        "not a network or address: {n:?} (write 10.0.0.0/8 or 192.168.1.7)"
                    ))
                })?,
            };
            nets.push(net.trunc());
        }
        Ok(TrustedProxies {
            nets,
            header: ForwardedHeader::default(),
        })
    }

    /// Reads `header` instead of `X-Forwarded-For`.
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client of `parts`: see the type's docs. `None` without a peer address
    /// (the server was not started with `into_make_service_with_connect_info`).
    pub fn client(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| canonical(c.0.ip()))?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        Some(self.forwarded_client(&parts.headers).unwrap_or(peer))
    }

    /// The rightmost untrusted address in the chosen header.
    fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let hops = match self.header {
            ForwardedHeader::Forwarded => forwarded_for(&joined(headers, "forwarded")?)?,
            ForwardedHeader::XForwardedFor => joined(headers, "x-forwarded-for")?
                .split(',')
                .map(|h| parse_ip(h.trim()))
                .collect::<Option<Vec<_>>>()?,
        };
        hops.into_iter()
            .rev()
            .take(MAX_HOPS)
            .find(|ip| !self.trusts(*ip))
    }
}

/// Every value of header `name`, joined with `,` (they form one list); `None` when
/// absent, not text or oversized.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut out = String::new();
    for v in headers.get_all(name) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(v.to_str().ok()?);
        if out.len() > MAX_FORWARDED_BYTES {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The `for=` addresses of an RFC 7239 `Forwarded` list, in order; `None` when an
/// element has no `for=` or an address that does not parse (obfuscated identifiers
/// and `unknown` included: they name no address to attribute to).
fn forwarded_for(text: &str) -> Option<Vec<IpAddr>> {
    text.split(',')
        .map(|element| {
            let value = element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
            })?;
            let value = value.trim_matches('"');
            // `[v6]`, `[v6]:port`, `v4`, `v4:port`.
            let host = match value.strip_prefix('[') {
                Some(rest) => rest.split_once(']')?.0,
                None => value.split(':').next()?,
            };
            parse_ip(host)
        })
        .collect()
}

/// An address as written in `X-Forwarded-For` (no port, no brackets).
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical)
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client has one form.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg_attr(not(any(feature = "basic", feature = "session")), allow(dead_code))]
/// The key a limiter counts a client under: the address for IPv4, its /64 network
/// for IPv6 (one host usually holds a whole /64).
pub(crate) fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64)
            .map(|n| n.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::get("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut p = b.body(()).unwrap().into_parts().0;
        p.extensions
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4000)));
        p
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn spoofed_headers_are_ignored_without_trusted_proxies() {
        let none = TrustedProxies::default();
        let p = parts(
            "203.0.113.9",
            &[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")],
        );
        assert_eq!(none.client(&p), ip("203.0.113.9"));
        // A trusted list does not help a peer that is not on it.
        let t = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        assert_eq!(t.client(&p), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_chain_is_read_right_to_left() {
        let xff = TrustedProxies::new(["10.0.0.0/8", "192.168.1.7"]).unwrap();
        let fwd = xff.clone().with_header(ForwardedHeader::Forwarded);
        type Case<'a> = (&'a TrustedProxies, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&xff, &[("x-forwarded-for", "198.51.100.1")], "198.51.100.1"),
            // The client can put anything on the left; only the right end counts.
            (
                &xff,
                &[("x-forwarded-for", "6.6.6.6, 198.51.100.1, 10.1.1.1")],
                "198.51.100.1",
            ),
            (
                &xff,
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                "198.51.100.1",
            ),
            (
                &fwd,
                &[(
                    "forwarded",
                    "for=6.6.6.6, for=\"[2001:db8::1]:443\";proto=https, for=10.0.0.2",
                )],
                "2001:db8::1",
            ),
            (
                &fwd,
                &[("forwarded", "for=198.51.100.2:8080;by=10.0.0.1")],
                "198.51.100.2",
            ),
            // Only the chosen header is read: a client's own `Forwarded` passes an
            // X-Forwarded-For proxy untouched and must not win.
            (
                &xff,
                &[
                    ("forwarded", "for=6.6.6.6"),
                    ("x-forwarded-for", "198.51.100.3"),
                ],
                "198.51.100.3",
            ),
            (
                &fwd,
                &[
                    ("forwarded", "for=198.51.100.3"),
                    ("x-forwarded-for", "6.6.6.6"),
                ],
                "198.51.100.3",
            ),
            (&xff, &[("forwarded", "for=6.6.6.6")], "10.0.0.5"),
            (&fwd, &[("x-forwarded-for", "6.6.6.6")], "10.0.0.5"),
            (
                &xff,
                &[("x-forwarded-for", "::ffff:198.51.100.4")],
                "198.51.100.4",
            ),
        ];
        for (t, headers, want) in cases {
            assert_eq!(
                t.client(&parts("10.0.0.5", headers)),
                ip(want),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn malformed_or_oversized_headers_leave_the_peer() {
        let xff = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let fwd = xff.clone().with_header(ForwardedHeader::Forwarded);
        let long = vec!["198.51.100.1"; 300].join(", ");
        let cases: &[&[(&str, &str)]] = &[
            &[("x-forwarded-for", "not-an-ip")],
            &[("x-forwarded-for", "198.51.100.1, , 10.0.0.1")],
            &[("x-forwarded-for", long.as_str())],
            &[("x-forwarded-for", "10.0.0.1, 10.0.0.2")],
            &[("forwarded", "for=unknown")],
            &[("forwarded", "for=_hidden")],
            &[("forwarded", "proto=https")],
            &[("forwarded", "for=\"[2001:db8::1\"")],
            &[],
        ];
        for headers in cases {
            for t in [&xff, &fwd] {
                assert_eq!(
                    t.client(&parts("10.0.0.5", headers)),
                    ip("10.0.0.5"),
                    "{headers:?}"
                );
            }
        }
        let mut no_peer = Request::get("/").body(()).unwrap().into_parts().0;
        no_peer
            .headers
            .insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        assert_eq!(xff.client(&no_peer), None);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = client_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(client_key("198.51.100.1".parse().unwrap()), "198.51.100.1");
    }
}
