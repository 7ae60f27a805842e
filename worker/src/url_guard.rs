//! Which addresses a job's URLs may reach. User-supplied URLs must not reach the worker's own
//! network: loopback, private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
//! unique-local and other non-public ranges are refused after DNS resolution and on every
//! redirect, except `host:port` pairs listed in ALLOW_PRIVATE_URLS (a test's own audio server).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Name resolution, injectable so tests never ask a real DNS server.
pub trait Resolver: Send + Sync {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The system resolver.
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Told of every connection the downloader is about to open, with the addresses it may use;
/// an error stops it. Tests record the attempts and refuse anything off loopback.
pub trait ConnectGate: Send + Sync {
    fn connecting(&self, host: &str, addrs: &[SocketAddr]) -> io::Result<()>;
}

/// Lets every connection through.
pub struct OpenGate;

impl ConnectGate for OpenGate {
    fn connecting(&self, _host: &str, _addrs: &[SocketAddr]) -> io::Result<()> {
        Ok(())
    }
}

/// Why an address is not public, or None when it is: IANA's special-purpose registries for
/// IPv4 and IPv6 (entries not "globally reachable"), with IPv4 carried inside IPv6 (mapped,
/// compatible, translated, NAT64, 6to4) judged by the IPv4 address it carries.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// The IPv4 address inside `v6`, for the prefixes that carry one, with the prefix's name.
fn embedded_v4(v6: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:0:0/96, IPv4-mapped.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((low, "IPv4-mapped")),
        // ::/96, IPv4-compatible (deprecated; :: and ::1 are judged as IPv6).
        [0, 0, 0, 0, 0, 0, _, _] if !matches!(low.octets(), [0, 0, 0, 0 | 1]) => Some((low, "IPv4-compatible")),
        // ::ffff:0:0:0/96, IPv4-translated (SIIT).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some((low, "IPv4-translated")),
        // 64:ff9b::/96, the NAT64 well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((low, "NAT64")),
        // 2002::/16, 6to4: the IPv4 address follows the prefix.
        [0x2002, a, b, ..] => Some((Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8), "6to4")),
        _ => None,
    }
}

fn non_public_v6(v6: Ipv6Addr) -> Option<&'static str> {
    if let Some((v4, _)) = embedded_v4(v6) {
        return non_public_v4(v4);
    }
    let s = v6.segments();
    let prefix = |bits: u32, value: u128| (u128::from(v6) >> (128 - bits)) == value >> (128 - bits);
    if v6.is_loopback() {
        Some("loopback")
    } else if v6.is_unspecified() {
        Some("unspecified")
    } else if s[0] & 0xff00 == 0xff00 {
        Some("multicast")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("site-local")
    } else if prefix(48, 0x0064_ff9b_0001 << 80) {
        Some("local-use NAT64")
    } else if prefix(64, 0x0100 << 112) {
        Some("discard-only")
    } else if prefix(32, 0x2001_0db8 << 96) || prefix(20, 0x3fff << 112) {
        Some("documentation")
    } else if prefix(32, 0x2001_0000 << 96) {
        Some("Teredo")
    } else if prefix(23, 0x2001_0000 << 96) {
        Some("IETF protocol assignments")
    } else if s[0] & 0xe000 != 0x2000 {
        // Outside 2000::/3, the global unicast space (SRv6 SIDs 5f00::/16, unassigned space).
        Some("not global unicast")
    } else {
        None
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata service.
        Some("link-local")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("carrier-grade NAT")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("reserved")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else if matches!(o, [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]) {
        Some("documentation")
    } else if matches!(o, [192, 88, 99, _]) {
        Some("6to4 relay anycast")
    } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

/// ALLOW_PRIVATE_URLS: `host:port` pairs reachable even though they are not public.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlPolicy {
    allowed: Vec<(String, u16)>,
}

impl UrlPolicy {
    /// Parse ALLOW_PRIVATE_URLS (`host:port,host:port`); an entry without a port is an error.
    pub fn from_allow_list(list: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, port) = entry
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
                .ok_or_else(|| format!("ALLOW_PRIVATE_URLS entry {entry:?} is not host:port"))?;
            allowed.push((host.to_ascii_lowercase(), port));
        }
        Ok(UrlPolicy { allowed })
    }

    pub fn allows_private(&self, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.allowed.iter().any(|(h, p)| *h == host && *p == port)
    }

    /// The addresses `host:port` may be reached at, or why not.
    pub fn check(&self, host: &str, port: u16, addrs: &[SocketAddr]) -> Result<(), String> {
        if addrs.is_empty() {
            return Err(format!("{host} did not resolve to any address"));
        }
        if self.allows_private(host, port) {
            return Ok(());
        }
        for a in addrs {
            if let Some(why) = non_public(a.ip()) {
                return Err(if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
                    format!("{host} is a {why} address, which jobs may not reach")
                } else {
                    format!("{host} resolves to {} ({why}), which jobs may not reach", a.ip())
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_ranges_are_named() {
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("192.0.2.1", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4 relay anycast"),
            // IPv4 inside IPv6: judged by the IPv4 address.
            ("::a9fe:a9fe", "link-local"),
            ("::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("2002:a9fe:a9fe::1", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("::ffff:0:a9fe:a9fe", "link-local"),
            // IPv6 ranges that are not global.
            ("fec0::1", "site-local"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("100::1", "discard-only"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "Teredo"),
            ("2001:2::1", "IETF protocol assignments"),
            ("5f00::1", "not global unicast"),
            ("4000::1", "not global unicast"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(non_public(ip(addr)), Some(why), "{addr}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "100.128.0.1",
            "172.32.0.1",
            "2001:4860:4860::8888",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_allow_list_is_per_host_and_port() {
        let p = UrlPolicy::from_allow_list("127.0.0.1:8080, localhost:9000").unwrap();
        let at = |s: &str| vec![s.parse::<SocketAddr>().unwrap()];
        assert!(p.check("127.0.0.1", 8080, &at("127.0.0.1:8080")).is_ok());
        assert!(p.check("localhost", 9000, &at("127.0.0.1:9000")).is_ok());
        let e = p.check("127.0.0.1", 8081, &at("127.0.0.1:8081")).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        // Any non-public address among the answers refuses the host.
        let mixed = vec!["8.8.8.8:80".parse().unwrap(), "10.0.0.1:80".parse().unwrap()];
        assert!(p.check("evil.example", 80, &mixed).unwrap_err().contains("10.0.0.1"));
        assert!(UrlPolicy::from_allow_list("localhost").is_err());
        assert!(p.check("nowhere.example", 80, &[]).is_err());
    }
}
