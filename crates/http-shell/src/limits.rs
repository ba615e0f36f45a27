//! Connection limits: the typed configuration (with safe defaults) and the
//! client grouping the per-client cap counts by.

use std::net::IpAddr;
use std::time::Duration;

/// How long connections may live without doing useful work, and how many
/// may be open. The defaults are safe for a server on the open network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// The first request's headers must arrive within this, counted from
    /// the accept (the TLS handshake included): a connection that sends
    /// nothing, or only a TLS handshake or an HTTP/2 preface, is closed.
    pub first_request_timeout: Duration,
    /// HTTP/1.1: once the server waits for a request's headers they must
    /// arrive within this.
    pub header_timeout: Duration,
    /// A connection without a request in flight for this long is closed
    /// (HTTP/1.1 and HTTP/2; for HTTP/1.1 the shorter of this and
    /// `header_timeout` applies).
    pub idle_timeout: Duration,
    /// HTTP/2 PING interval (`None`: no pings).
    pub h2_keepalive_interval: Option<Duration>,
    /// HTTP/2: a PING not answered within this closes the connection.
    pub h2_keepalive_timeout: Duration,
    /// Most connections open at once; the cap in force is also kept below
    /// the process's open-file limit (see [`ConnectionLimits::effective_max_connections`]).
    /// When it is reached the connection idle the longest is closed to
    /// make room; when none is idle new connections are refused.
    pub max_connections: usize,
    /// Most connections open at once from one client (IPv4 /32, IPv6 /64);
    /// same policy as `max_connections`. `None`: no per-client cap (the
    /// default: a load balancer or AWS KMS may come from few addresses).
    pub max_connections_per_client: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            h2_keepalive_interval: Some(Duration::from_secs(20)),
            h2_keepalive_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_client: None,
        }
    }
}

/// File descriptors kept free for everything else (database, logs,
/// outgoing connections): at least this many, or an eighth of the limit.
pub const RESERVED_FDS: u64 = 64;

impl ConnectionLimits {
    /// The connection cap in force under an open-file limit of `nofile`
    /// (soft limit; `None` when unknown): `max_connections`, but never so
    /// many that the process runs out of file descriptors first.
    pub fn effective_max_connections(&self, nofile: Option<u64>) -> usize {
        let configured = self.max_connections.max(1);
        match nofile {
            Some(n) => {
                let reserve = RESERVED_FDS.max(n / 8);
                let room = usize::try_from(n.saturating_sub(reserve)).unwrap_or(usize::MAX);
                configured.min(room.max(1))
            }
            None => configured,
        }
    }
}

/// The unit the per-client cap counts: an IPv4 address, or the /64 prefix
/// of an IPv6 address (one host usually owns a whole /64). IPv4-mapped IPv6
/// addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    V6Prefix64(u64),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(a) => ClientKey::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(u32::from(v4)),
                None => ClientKey::V6Prefix64((u128::from(a) >> 64) as u64),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_key_groups_ipv6_by_64_and_ipv4_by_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v4b: IpAddr = "192.0.2.8".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_ne!(ClientKey::of(v4), ClientKey::of(v4b));
        assert_eq!(ClientKey::of(v4), ClientKey::of(mapped));
    }

    #[test]
    fn effective_cap_stays_below_the_open_file_limit() {
        let l = ConnectionLimits::default();
        assert_eq!(l.effective_max_connections(None), 10_000);
        assert_eq!(l.effective_max_connections(Some(1_048_576)), 10_000);
        assert_eq!(l.effective_max_connections(Some(1024)), 1024 - 128);
        assert_eq!(l.effective_max_connections(Some(256)), 256 - 64);
        assert_eq!(l.effective_max_connections(Some(10)), 1);
        let small = ConnectionLimits {
            max_connections: 100,
            ..ConnectionLimits::default()
        };
        assert_eq!(small.effective_max_connections(Some(1024)), 100);
    }
}
