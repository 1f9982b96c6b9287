//! The SSRF guard: a webhook URL must not reach inside the network.
//!
//! Checked after DNS resolution, on every address the name resolves to (a
//! resolver for reqwest that drops refused addresses), on IP literals in
//! the URL (which reqwest never resolves), and, when deliveries go through
//! `delivery_proxy`, on the target's addresses before the request leaves
//! (the proxy connects, so every address must pass).
//!
//! IPv4: refused are loopback, private, shared (CGNAT), link-local (with
//! the cloud metadata address 169.254.169.254), multicast, broadcast,
//! unspecified, documentation, benchmarking and reserved ranges. IPv6: only
//! global unicast (`2000::/3`) is permitted, less the special-purpose
//! blocks inside it (`2001::/23` with Teredo, documentation `2001:db8::/32`
//! and `3fff::/20`); 6to4 (`2002::/16`) is judged as the IPv4 address it
//! carries. So IPv4-mapped, NAT64, unique-local, link-local and every range
//! not yet assigned are refused. Configuration can allow every internal
//! address or some networks.
//!
//! A refusal tells the tenant only that the host "resolves to a non-public
//! address"; which addresses goes to the server's log.

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

/// A target was refused: the text for the attempt's log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

impl Blocked {
    /// The refusal of `host`, whose addresses `found` go to the log only.
    pub fn of(host: &str, found: &[IpAddr]) -> Self {
        tracing::warn!(host, addresses = ?found, "refused a delivery target: not a public address");
        Self(format!(
            "{host} resolves to a non-public address; deliveries go to public addresses only"
        ))
    }
}

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

    /// Resolves `host` and refuses it unless every address it resolves to
    /// is permitted: for a request a proxy will connect, where no resolver
    /// of ours picks the address.
    pub async fn check_all(&self, host: &str, port: u16) -> Result<(), Blocked> {
        if self.allow_internal {
            return Ok(());
        }
        let found: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| Blocked(format!("{host} could not be resolved")))?
                .map(|addr| addr.ip())
                .collect(),
        };
        match found.iter().all(|ip| self.permits(*ip)) && !found.is_empty() {
            true => Ok(()),
            false => Err(Blocked::of(host, &found)),
        }
    }
}

/// Whether `ip` is an address inside a network rather than on the internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match six_to_four(v6) {
            Some(v4) => is_internal_v4(v4),
            None => !is_public_v6(v6),
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

/// Global unicast, outside the special-purpose blocks it holds.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    (first & 0xe000) == 0x2000 // 2000::/3
        && !(first == 0x2001 && second < 0x0200) // 2001::/23: Teredo, benchmarking, ORCHID
        && !(first == 0x2001 && second == 0x0db8) // documentation
        && (first & 0xfff0) != 0x3ff0 // 3fff::/20, documentation
}

/// The IPv4 address a 6to4 address (`2002:aabb:ccdd::/48`) carries.
fn six_to_four(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    match ip.segments() {
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
                let found: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
                let error: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(Blocked::of(&host, &found));
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
            // Only global unicast: mapped, local-use NAT64, Teredo, the
            // discard prefix, documentation, and what is not assigned yet.
            "::ffff:93.184.216.34",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "3fff::1",
            "4000::1",
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
            "2a00:1450:4001:80b::200e",
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
        assert!(error.is::<Blocked>(), "{error}");
        assert!(error.to_string().contains("non-public address"), "{error}");
        assert!(!error.to_string().contains("127.0.0.1"), "{error}");
    }

    #[tokio::test]
    async fn a_proxied_target_must_resolve_only_to_permitted_addresses() {
        let guard = Guard::default();
        for host in ["localhost", "127.0.0.1", "169.254.169.254"] {
            let refused = guard.check_all(host, 80).await.expect_err(host);
            assert!(refused.0.contains("non-public address"), "{refused}");
        }
        assert!(guard.check_all("8.8.8.8", 443).await.is_ok());
        let some = Guard::new(false, vec!["127.0.0.0/8".parse().expect("net")]);
        assert!(some.check_all("127.0.0.1", 80).await.is_ok());
        assert!(
            Guard::new(true, Vec::new())
                .check_all("localhost", 80)
                .await
                .is_ok()
        );
    }
}
