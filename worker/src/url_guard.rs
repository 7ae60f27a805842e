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

/// Why an address is not public, or None when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some("cloud metadata")
            } else {
                None
            }
        }
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
        ] {
            assert_eq!(non_public(ip(addr)), Some(why), "{addr}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "100.128.0.1", "172.32.0.1"] {
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
