//! Node URLs: `bin:IP[:port]` and `bins:IP[:port]` (docs/behaviour.md §1.2, docs/wire.md §2.4).

#[cfg(test)]
use alloc::string::ToString;
use core::fmt;
use core::net::{IpAddr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

/// Default port of `bin:` URLs (`proto_bin` `bin_port`).
pub const DEFAULT_BIN_PORT: u16 = 5555;
/// Default port of `bins:` URLs (`proto_bins` `bins_port`).
pub const DEFAULT_BINS_PORT: u16 = 5556;

/// Transport of a node URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Scheme {
    /// Plain BIN over TCP.
    Bin,
    /// BIN over TLS.
    Bins,
}

/// A parsed node URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    /// `bin` or `bins`.
    pub scheme: Scheme,
    /// The socket address (IP literal and port).
    pub socket: SocketAddr,
}

/// Why a URL was refused; the URL itself is reported by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddressError {
    /// The scheme is not `bin:` or `bins:` (only BIN transports are accepted).
    UnknownScheme,
    /// The host is not an IPv4 or IPv6 literal (`[v6]` with a port).
    BadHost,
    /// The port is not a number in 1..=65535.
    BadPort,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressError::UnknownScheme => "scheme must be bin: or bins:",
            AddressError::BadHost => "host must be an IPv4 address or a bracketed IPv6 address",
            AddressError::BadPort => "port must be a number in 1..=65535",
        })
    }
}

impl core::error::Error for AddressError {}

impl NodeAddress {
    /// Parses `bin:10.0.0.1:5566`, `bins:10.0.0.1`, `bin:[2001:db8::1]:5566`.
    ///
    /// # Errors
    /// [`AddressError`] naming the part that is wrong.
    pub fn parse(url: &str) -> Result<Self, AddressError> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ci(url, "bins:") {
            (Scheme::Bins, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "bin:") {
            (Scheme::Bin, rest)
        } else {
            return Err(AddressError::UnknownScheme);
        };
        let default_port = match scheme {
            Scheme::Bin => DEFAULT_BIN_PORT,
            Scheme::Bins => DEFAULT_BINS_PORT,
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(AddressError::BadHost)?;
            let ip = Ipv6Addr::from_str(host).map_err(|_| AddressError::BadHost)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(AddressError::BadPort)?),
            };
            (IpAddr::V6(ip), port)
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let ip = core::net::Ipv4Addr::from_str(host).map_err(|_| AddressError::BadHost)?;
            (IpAddr::V4(ip), port)
        };
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(AddressError::BadPort),
            },
        };
        Ok(NodeAddress {
            scheme,
            socket: SocketAddr::new(host, port),
        })
    }

    /// The IP address peers authenticate by (docs/wire.md §9).
    pub fn ip(&self) -> IpAddr {
        self.socket.ip()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Bin => "bin",
            Scheme::Bins => "bins",
        };
        write!(f, "{scheme}:{}", self.socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        let a = NodeAddress::parse("bin:127.0.0.1:5566").unwrap();
        assert_eq!(
            (a.scheme, a.socket.to_string().as_str()),
            (Scheme::Bin, "127.0.0.1:5566")
        );
        assert_eq!(
            NodeAddress::parse("bin:10.0.0.1").unwrap().socket.port(),
            5555
        );
        assert_eq!(
            NodeAddress::parse("BINS:10.0.0.1").unwrap().socket.port(),
            5556
        );
        let v6 = NodeAddress::parse("bin:[2001:db8::1]:7000").unwrap();
        assert_eq!(v6.socket.to_string(), "[2001:db8::1]:7000");
        assert_eq!(
            NodeAddress::parse("bins:[::1]").unwrap().socket.port(),
            5556
        );
    }

    #[test]
    fn bad_urls_name_the_wrong_part() {
        assert_eq!(
            NodeAddress::parse("sip:1.2.3.4"),
            Err(AddressError::UnknownScheme)
        );
        assert_eq!(
            NodeAddress::parse("bin:host.example:5"),
            Err(AddressError::BadHost)
        );
        assert_eq!(
            NodeAddress::parse("bin:1.2.3.4:0"),
            Err(AddressError::BadPort)
        );
        assert_eq!(
            NodeAddress::parse("bin:1.2.3.4:x"),
            Err(AddressError::BadPort)
        );
        assert_eq!(NodeAddress::parse("bin:[::1"), Err(AddressError::BadHost));
    }
}
