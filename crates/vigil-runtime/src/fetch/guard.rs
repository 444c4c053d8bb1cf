//! Where a fetch may connect: the destination address is checked after
//! resolution, on the address actually connected to, so neither DNS
//! rebinding nor a redirect can steer a fetch somewhere the check did not
//! see.
//!
//! Two doors lead to a connection and both are guarded:
//! - host names go through [`GuardedResolver`], the client's only resolver:
//!   it resolves (getaddrinfo, as the default resolver does), drops every
//!   denied address and fails with [`Denied`] when none is left; the
//!   connector then connects only to what it returned;
//! - IP literals never reach a resolver (the connector parses them), so
//!   [`check_literal`] checks them before each request and each redirect
//!   hop (redirects are followed by hand in `Fetcher::attempt`).
//!
//! Proxies would make this meaningless (the client would connect to the
//! proxy, which then connects wherever it is told), so environment proxies
//! are off unless [`FetchConfig::use_env_proxy`](super::FetchConfig) asks
//! for them.
//!
//! The default denial covers what no CRL or OCSP endpoint lives on and what
//! an attacker wants to reach: link-local (169.254.0.0/16 with the cloud
//! metadata endpoint 169.254.169.254, fe80::/10), unspecified (0.0.0.0/8,
//! `::`), multicast (224.0.0.0/4, ff00::/8) and broadcast. Loopback and
//! private ranges stay allowed: private PKIs and the test fixtures live
//! there. IPv4-mapped IPv6 addresses (`::ffff:169.254.169.254`) and NAT64
//! well-known-prefix addresses (`64:ff9b::a9fe:a9fe`) are judged as the IPv4
//! address they reach as well.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use super::FetchError;

/// An IP network: an address and a prefix length, written `10.0.0.0/8`,
/// `fe80::/10`, or a bare address (a single host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`. Refused when the prefix is longer than
    /// the address or `addr` has bits set past the prefix (`10.0.0.1/8` is
    /// ambiguous: a typo for a host or for the network?).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let bits = max_prefix(addr);
        if prefix > bits {
            return Err(CidrError(format!(
                "{addr}/{prefix}: the prefix is longer than {bits} bits"
            )));
        }
        let cidr = Self { addr, prefix };
        if cidr.network() != addr {
            return Err(CidrError(format!(
                "{addr}/{prefix}: bits are set past the prefix (the network is {}/{prefix})",
                cidr.network()
            )));
        }
        Ok(cidr)
    }

    /// The single address `addr`.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix: max_prefix(addr),
        }
    }

    /// Whether `ip` is in this network. An IPv4 network also contains the
    /// IPv6 forms that reach its addresses: IPv4-mapped (`::ffff:a.b.c.d`,
    /// RFC 4291 §2.5.5.2) and the NAT64 well-known prefix
    /// (`64:ff9b::a.b.c.d`, RFC 6052 §2.1).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_exact(ip)
            || self.contains_exact(ip.to_canonical())
            || nat64_embedded(ip).is_some_and(|v4| self.contains_exact(IpAddr::V4(v4)))
    }

    fn contains_exact(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
}

/// The IPv4 address in a NAT64 well-known-prefix address (64:ff9b::/96).
fn nat64_embedded(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let bits = u128::from(v6);
    (bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000).then(|| Ipv4Addr::from(bits as u32))
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let text = text.trim();
        let bad = |why: &str| CidrError(format!("'{text}': {why}"));
        match text.split_once('/') {
            None => text
                .parse::<IpAddr>()
                .map(Self::host)
                .map_err(|_| bad("not an IP address or CIDR (e.g. 10.0.0.0/8, fe80::/10)")),
            Some((addr, prefix)) => {
                let addr = addr
                    .parse::<IpAddr>()
                    .map_err(|_| bad("not an IP address before the '/'"))?;
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the prefix length is not a number"));
                }
                let prefix = prefix
                    .parse::<u8>()
                    .map_err(|_| bad("the prefix length is too long"))?;
                Self::new(addr, prefix)
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a CIDR was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

/// The ranges denied unless [`FetchConfig::allow`](super::FetchConfig)
/// lifts them.
pub const DEFAULT_DENIED: [(IpAddr, u8); 7] = [
    // Link-local, the cloud metadata endpoint's range (RFC 3927).
    (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
    // "This network", unspecified (RFC 1122 §3.2.1.3).
    (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8),
    // Multicast (RFC 5771).
    (IpAddr::V4(Ipv4Addr::new(224, 0, 0, 0)), 4),
    // Limited broadcast (RFC 919).
    (IpAddr::V4(Ipv4Addr::BROADCAST), 32),
    // IPv6 link-local (RFC 4291 §2.5.6).
    (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
    // IPv6 unspecified (RFC 4291 §2.5.2).
    (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 128),
    // IPv6 multicast (RFC 4291 §2.7).
    (IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)), 8),
];

/// Which destination addresses may be connected to. An explicit deny wins
/// over everything; an allow only lifts a default denial (so `--fetch-deny
/// 10.0.0.0/8 --fetch-allow 10.1.0.0/16` still denies 10.1.2.3: narrow the
/// deny instead).
#[derive(Clone, Debug, Default)]
pub(crate) struct AddressPolicy {
    pub(crate) deny: Vec<Cidr>,
    pub(crate) allow: Vec<Cidr>,
}

impl AddressPolicy {
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|c| c.contains(ip)) {
            return false;
        }
        let default_denied = DEFAULT_DENIED
            .iter()
            .any(|&(addr, prefix)| Cidr { addr, prefix }.contains(ip));
        !default_denied || self.allow.iter().any(|c| c.contains(ip))
    }
}

/// Refuses `url` when its host is an IP literal that may not be connected
/// to (literals are connected to without resolution).
pub(super) fn check_literal(url: &Url, policy: &AddressPolicy) -> Result<(), FetchError> {
    // The URL parser normalises IP literals (`0x7f.1` is 127.0.0.1), so
    // anything the connector would take as an address parses here.
    let host = url.host_str().unwrap_or_default();
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    if policy.permits(ip) {
        Ok(())
    } else {
        Err(FetchError::AddressDenied {
            url: url.to_string(),
            host: host.to_owned(),
            addr: ip,
        })
    }
}

/// The resolver of the fetch client: getaddrinfo, then only the permitted
/// addresses.
pub(super) struct GuardedResolver {
    pub(super) policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: the connector puts the URL's port on each address.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (permitted, denied): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| policy.permits(a.ip()));
            if permitted.is_empty() {
                if let Some(first) = denied.first() {
                    tracing::warn!(host = %host, addr = %first.ip(), "fetch destination denied");
                    return Err(Box::new(Denied {
                        host,
                        addr: first.ip(),
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
                return Err(format!("{host}: no address").into());
            }
            if !denied.is_empty() {
                tracing::debug!(host = %host, denied = denied.len(), "some addresses denied");
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Every address of a host name is denied; carried through reqwest's error
/// chain and turned into [`FetchError::AddressDenied`].
#[derive(Debug)]
pub(super) struct Denied {
    pub(super) host: String,
    pub(super) addr: IpAddr,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves only to denied addresses ({})",
            self.host, self.addr
        )
    }
}

impl std::error::Error for Denied {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn cidrs_parse_strictly() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(c.contains(ip("10.200.3.4")));
        assert!(!c.contains(ip("11.0.0.1")));
        let c: Cidr = "fe80::/10".parse().expect("cidr");
        assert!(c.contains(ip("fe80::1")));
        assert!(c.contains(ip("febf::1")));
        assert!(!c.contains(ip("fec0::1")));
        let c: Cidr = "127.0.0.2".parse().expect("bare");
        assert!(c.contains(ip("127.0.0.2")));
        assert!(!c.contains(ip("127.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("8.8.8.8")));
        let all6: Cidr = "::/0".parse().expect("all");
        assert!(all6.contains(ip("2001:db8::1")));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/300",
            "example.com",
            "",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} accepted");
        }
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().expect("cidr").to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn the_default_denies_metadata_and_friends_but_not_loopback_or_private() {
        let p = AddressPolicy::default();
        for denied in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "fe80::1",
            "ff02::1",
            "::ffff:0.0.0.0",
            "::ffff:255.255.255.255",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::169.254.169.254",
        ] {
            assert!(!p.permits(ip(denied)), "{denied} permitted");
        }
        for allowed in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "64:ff9b::808:808",
            "64:ff9c::a9fe:a9fe",
        ] {
            assert!(p.permits(ip(allowed)), "{allowed} denied");
        }
    }

    #[test]
    fn allow_lifts_defaults_and_explicit_deny_wins() {
        let p = AddressPolicy {
            deny: vec!["127.0.0.0/8".parse().expect("cidr")],
            allow: vec![
                "169.254.169.254".parse().expect("cidr"),
                "127.0.0.1".parse().expect("cidr"),
            ],
        };
        assert!(p.permits(ip("169.254.169.254")));
        assert!(!p.permits(ip("169.254.0.1")));
        // Explicit deny beats allow.
        assert!(!p.permits(ip("127.0.0.1")));
        assert!(!p.permits(ip("::ffff:127.0.0.1")));
        // An IPv6 deny of the mapped range applies to the mapped form.
        let p = AddressPolicy {
            deny: vec!["::ffff:0:0/96".parse().expect("cidr")],
            allow: vec![],
        };
        assert!(!p.permits(ip("::ffff:10.0.0.1")));
        assert!(p.permits(ip("10.0.0.1")));
    }
}
