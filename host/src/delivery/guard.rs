//! The SSRF guard: a webhook URL must not reach inside the network.
//!
//! Checked after DNS resolution, on every address the name resolves to (a
//! resolver for reqwest that drops refused addresses), and on IP literals in
//! the URL (which reqwest never resolves). Refused: loopback, private,
//! shared (CGNAT), link-local (with the cloud metadata address
//! 169.254.169.254), multicast, broadcast, unspecified, documentation,
//! benchmarking and reserved ranges, IPv6 unique-local, link-local and
//! site-local, and IPv4 addresses inside IPv6 (mapped, compatible, NAT64,
//! 6to4), judged as the IPv4 address they carry. Configuration can allow
//! every internal address or some networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Allow everything (`allow_private_targets`).
    allow_internal: bool,
    /// Internal networks allowed anyway (`allowed_targets`).
    allowed: Vec<IpNet>,
}

/// Every address of a target was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Guard {
    /// A guard with the configured exceptions.
    pub fn new(allow_internal: bool, allowed: Vec<IpNet>) -> Self {
        Self {
            allow_internal,
            allowed,
        }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_internal || !is_internal(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// A resolver for reqwest that resolves with the system and keeps only
    /// permitted addresses.
    pub fn resolver(self: &Arc<Self>) -> Arc<Resolver> {
        Arc::new(Resolver(Arc::clone(self)))
    }
}

/// Whether `ip` is an address inside a network rather than on the internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata among them
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 (metadata) among them
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one:
/// mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`
/// and 6to4 `2002:aabb:ccdd::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_loopback() && !ip.is_unspecified() => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// reqwest's resolver with the guard applied.
#[derive(Debug)]
pub struct Resolver(Arc<Guard>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| guard.permits(addr.ip()))
                .collect();
            if permitted.is_empty() && !found.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = Box::new(Refused(format!(
                    "{host} resolves only to internal addresses ({}); set allow_private_targets or allowed_targets to reach it",
                    found
                        .iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
                return Err(error);
            }
            let addrs: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        let guard = Guard::default();
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fec0::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:0a00:0001::1",
        ] {
            let ip: IpAddr = internal.parse().expect(internal);
            assert!(!guard.permits(ip), "{internal} should be refused");
        }
    }

    #[test]
    fn public_addresses_are_permitted() {
        let guard = Guard::default();
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::8.8.8.8",
            "2002:5db8:d822::1",
        ] {
            let ip: IpAddr = public.parse().expect(public);
            assert!(guard.permits(ip), "{public} should be permitted");
        }
    }

    #[test]
    fn configuration_can_allow_internal_targets() {
        let everything = Guard::new(true, Vec::new());
        assert!(everything.permits("127.0.0.1".parse().expect("ip")));
        let some = Guard::new(false, vec!["10.1.0.0/16".parse().expect("net")]);
        assert!(some.permits("10.1.2.3".parse().expect("ip")));
        assert!(!some.permits("10.2.0.1".parse().expect("ip")));
        assert!(!some.permits("127.0.0.1".parse().expect("ip")));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        use reqwest::dns::Resolve as _;
        let guard = Arc::new(Guard::default());
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let error = match guard.resolver().resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error,
        };
        assert!(error.is::<Refused>(), "{error}");
        assert!(error.to_string().contains("internal"), "{error}");
    }
}
