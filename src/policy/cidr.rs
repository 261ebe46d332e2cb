//! Address ranges for `allow`, `deny` and `trusted_proxies`: `10.0.0.0/8`,
//! `2001:db8::/32`, or a single address (`10.1.2.3`, a /32 or /128).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One range. An IPv4 range also holds the IPv4-mapped IPv6 form of its
/// addresses (`::ffff:10.0.0.1`), as a dual-stack socket reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a range does not parse; the text is the `check` message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("\"{0}\" is not an IP address")]
    Address(String),
    #[error("prefix length \"{0}\" is not a number from 0 to {1}")]
    Prefix(String, u8),
    #[error("\"{0}\" has bits set after the prefix (did you mean {1}?)")]
    HostBits(String, Cidr),
}

impl Cidr {
    /// Whether `ip` is in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)), 32, self.prefix) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), 128, self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether any of `ranges` holds `ip`.
    pub fn any_contains(ranges: &[Cidr], ip: IpAddr) -> bool {
        ranges.iter().any(|r| r.contains(ip))
    }
}

/// `bits` of `width` with everything after the first `prefix` cleared.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - prefix);
    bits & keep & (u128::MAX >> (128 - u32::from(width)))
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| CidrError::Address(ip.to_string()))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= width && !p.starts_with('+'))
                .ok_or_else(|| CidrError::Prefix(p.to_string(), width))?,
        };
        let bits = match addr {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let net = masked(bits, width, prefix);
        if net != bits {
            let addr = match addr {
                IpAddr::V4(_) => IpAddr::V4((net as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(net.into()),
            };
            return Err(CidrError::HostBits(s.to_string(), Cidr { addr, prefix }));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_hold_their_addresses_only() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(!net.contains(ip("::1")));
        let one: Cidr = "10.1.2.3".parse().unwrap();
        assert!(one.contains(ip("10.1.2.3")) && !one.contains(ip("10.1.2.4")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")) && !all6.contains(ip("1.2.3.4")));
        assert_eq!(one.to_string(), "10.1.2.3/32");
    }

    #[test]
    fn bad_ranges_say_why() {
        assert!(matches!(
            "10.0.0/8".parse::<Cidr>(),
            Err(CidrError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix(..))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Cidr>(),
            Err(CidrError::Prefix(..))
        ));
        assert!(matches!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::Prefix(..))
        ));
        let e = "10.1.0.0/8".parse::<Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"10.1.0.0/8\" has bits set after the prefix (did you mean 10.0.0.0/8?)"
        );
    }
}
