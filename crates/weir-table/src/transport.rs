//! Below HTTP: what a listener does with a connection before (or instead of) HTTP.
//! A listener with TLS servers reads the ClientHello, picks the server by SNI
//! ([`Listener::tls_server`]), then terminates (SIMPLE, MUTUAL, OPTIONAL_MUTUAL) and
//! serves HTTP or TCP routes on the decrypted stream, or forwards the encrypted stream
//! untouched by a TLS route (PASSTHROUGH). A plain TCP server routes each connection by
//! its TCP routes ([`L4Route`]).
//!
//! Certificates are named here, never held: the proxy loads (and reloads) them, so a
//! table and `/config_dump` carry no key material.

use std::net::IpAddr;

use serde::Serialize;

use crate::action::WeightedCluster;
use crate::route::{Listener, ListenerRole};

/// How a gateway server's TLS is handled (Istio's `ServerTLSSettings.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsMode {
    /// Route by SNI without terminating.
    Passthrough,
    /// Terminate with the server certificate.
    Simple,
    /// Terminate and require a client certificate signed by the CA.
    Mutual,
    /// Terminate; verify a client certificate when one is sent.
    OptionalMutual,
}

impl TlsMode {
    /// True when weir decrypts the stream.
    pub fn terminates(self) -> bool {
        self != TlsMode::Passthrough
    }
}

/// Where a certificate, its key and the CA for client certificates come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertSource {
    /// `credentialName`: a directory `<credentials>/<name>/` holding `tls.crt`,
    /// `tls.key` and optionally `ca.crt` (or `cert`, `key`, `cacert`); the CA may also
    /// be in `<name>-cacert/`, as Istio reads it.
    Credential {
        /// The credential's name (without a `kubernetes://` prefix).
        name: Box<str>,
    },
    /// `serverCertificate`, `privateKey` and `caCertificates` file paths.
    Files {
        /// PEM certificate chain.
        cert: Box<str>,
        /// PEM private key.
        key: Box<str>,
        /// PEM CA bundle for client certificates.
        ca: Option<Box<str>>,
    },
}

/// A TLS protocol version (rustls speaks 1.2 and 1.3; older minimums mean 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    V1_3,
}

/// Terminating settings of a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Termination {
    /// The certificate; `None` when the server names none (its handshakes fail).
    pub certificate: Option<CertSource>,
    /// Lowest and highest protocol versions offered.
    pub min_version: TlsVersion,
    /// Highest version.
    pub max_version: TlsVersion,
    /// OpenSSL-style cipher suite names (TLS 1.2 only, as in Envoy); empty = defaults.
    pub cipher_suites: Vec<Box<str>>,
    /// Accepted client certificate SANs (DNS, URI or IP); empty = any.
    pub subject_alt_names: Vec<Box<str>>,
    /// Accepted client certificate SPKI SHA-256 pins (base64); empty = any.
    pub spki_pins: Vec<Box<str>>,
    /// Accepted client certificate SHA-256 fingerprints (hex, colons allowed); empty = any.
    pub hash_pins: Vec<Box<str>>,
    /// ALPN protocols offered, in preference order (`h2`, `http/1.1` for HTTP).
    pub alpn: Vec<Box<str>>,
}

/// What the bytes of a connection are, once any TLS is handled.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Serve {
    /// HTTP/1.1 or HTTP/2, routed by the listener's virtual hosts.
    Http,
    /// A byte stream, routed by these routes (first match).
    Tcp(Vec<L4Route>),
}

/// One gateway server with TLS on a listener's port.
#[derive(Debug, Clone, Serialize)]
pub struct TlsServer {
    /// The Gateway (`ns/name`) and server port name, for logs and dumps.
    pub origin: Box<str>,
    /// SNI names it answers (lower case; `*.example.com` and `*` wildcards).
    pub hosts: Vec<Box<str>>,
    /// Mode.
    pub mode: TlsMode,
    /// For terminating modes.
    pub termination: Option<Termination>,
    /// What follows.
    pub serve: Serve,
}

/// A TCP or TLS route: conditions checked per connection, destinations picked by weight.
#[derive(Debug, Clone, Serialize)]
pub struct L4Route {
    /// The VirtualService it came from (`ns/name`).
    pub origin: Box<str>,
    /// SNI names (TLS routes; lower case, wildcards allowed); empty = any.
    pub sni_hosts: Vec<Box<str>>,
    /// Destination addresses (`destinationSubnets`); empty = any.
    pub destination_subnets: Vec<Subnet>,
    /// Listener port the route is for (mesh listener); `None` = any.
    pub port: Option<u16>,
    /// Weighted destinations (never empty).
    pub destinations: Box<[WeightedCluster]>,
    /// Sum of weights.
    pub total_weight: u32,
}

/// An address block (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Subnet {
    /// Network address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d[/n]` or an IPv6 form.
    pub fn parse(s: &str) -> Option<Subnet> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let address: IpAddr = addr.parse().ok()?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Subnet { address, prefix })
    }

    /// True when `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What a connection presents to L4 routing.
#[derive(Debug, Clone, Copy)]
pub struct ConnView<'a> {
    /// SNI of the ClientHello, lower case.
    pub sni: Option<&'a str>,
    /// The address the client connected to.
    pub local: IpAddr,
    /// The port it connected to.
    pub port: u16,
}

/// True when `name` (lower case) is covered by `pattern` (`*`, `*.suffix`, or exact).
pub fn sni_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        // `*.example.com` covers `a.example.com` and `a.b.example.com`, not `example.com`.
        Some(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
        None => pattern == name,
    }
}

impl L4Route {
    /// True when the route's conditions hold for the connection.
    pub fn matches(&self, c: &ConnView<'_>) -> bool {
        if self.port.is_some_and(|p| p != c.port) {
            return false;
        }
        if !self.destination_subnets.is_empty() && !self.destination_subnets.iter().any(|s| s.contains(c.local)) {
            return false;
        }
        self.sni_hosts.is_empty() || c.sni.is_some_and(|n| self.sni_hosts.iter().any(|p| sni_matches(p, n)))
    }

    /// Picks a destination for a uniformly random `r` in `0..u32::MAX`.
    pub fn pick(&self, r: u32) -> &WeightedCluster {
        if self.destinations.len() == 1 || self.total_weight == 0 {
            return &self.destinations[0];
        }
        let x = ((u64::from(r) * u64::from(self.total_weight)) >> 32) as u32;
        self.destinations.iter().find(|d| x < d.cumulative).unwrap_or(&self.destinations[self.destinations.len() - 1])
    }
}

/// The first route whose conditions hold.
pub fn l4_route<'t>(routes: &'t [L4Route], c: &ConnView<'_>) -> Option<&'t L4Route> {
    routes.iter().find(|r| r.matches(c))
}

impl Listener {
    /// True when every connection to this listener must open with TLS (a gateway port
    /// of HTTPS or TLS servers).
    pub fn expects_tls(&self) -> bool {
        self.role == ListenerRole::Gateway && !self.tls.is_empty()
    }

    /// True when a connection may open with TLS or plaintext, told apart by its first
    /// byte (the mesh listener: TLS routes by SNI beside HTTP).
    pub fn sniffs_tls(&self) -> bool {
        self.role == ListenerRole::Mesh && !self.tls.is_empty()
    }

    /// The TLS server for a ClientHello's SNI, as Envoy's filter-chain match picks it:
    /// an exact name first, then the longest wildcard suffix, then `*`. A hello without
    /// SNI gets a server that covers `*`, else the port's only server.
    pub fn tls_server(&self, sni: Option<&str>) -> Option<&TlsServer> {
        let Some(name) = sni else {
            return self
                .tls
                .iter()
                .find(|s| s.hosts.iter().any(|h| &**h == "*"))
                .or_else(|| (self.tls.len() == 1).then(|| &self.tls[0]));
        };
        let mut best: Option<(usize, &TlsServer)> = None;
        for s in &self.tls {
            for h in &s.hosts {
                if !sni_matches(h, name) {
                    continue;
                }
                // Exact beats any wildcard; a longer wildcard beats a shorter one.
                let rank = if h.starts_with('*') { h.len() } else { usize::MAX };
                if best.is_none_or(|(r, _)| rank > r) {
                    best = Some((rank, s));
                }
            }
        }
        best.map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(sni_matches("*.example.com", "a.example.com"));
        assert!(sni_matches("*.example.com", "a.b.example.com"));
        assert!(!sni_matches("*.example.com", "example.com"));
        assert!(!sni_matches("*.example.com", "aexample.com"));
        assert!(sni_matches("*", "anything"));
        assert!(sni_matches("a.com", "a.com"));
        assert!(!sni_matches("a.com", "b.a.com"));
    }

    #[test]
    fn subnets_contain_their_addresses() {
        let s = Subnet::parse("10.1.0.0/16").unwrap();
        assert!(s.contains("10.1.200.3".parse().unwrap()));
        assert!(!s.contains("10.2.0.1".parse().unwrap()));
        assert!(s.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Subnet::parse("192.168.1.1").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains("192.168.1.1".parse().unwrap()) && !one.contains("192.168.1.2".parse().unwrap()));
        assert!(Subnet::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Subnet::parse("10.0.0.0/33").is_none());
        assert!(Subnet::parse("nope").is_none());
        assert!(Subnet::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
    }
}
