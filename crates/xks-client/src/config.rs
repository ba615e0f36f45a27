//! Per-key-store configuration and its validation (pure, no I/O).

use std::fmt;
use std::time::Duration;
use xks_wire::UriPath;
use zeroize::Zeroizing;

/// Default cut-off of one attempt (connect + TLS + request + response).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);
/// Default cut-off of a whole call, retry included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(500);
/// Largest response body the client reads before giving up.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// What a key store's proxy connection is configured with.
///
/// Build one, then hand it to [`crate::XksClient::new`], which validates it
/// with [`XksClientConfig::validate`].
#[derive(Clone)]
pub struct XksClientConfig {
    /// `https://host[:port]`, without path, query or credentials.
    pub endpoint: String,
    /// `[/prefix]/kms/xks/v1`, validated like KMS validates XksProxyUriPath.
    pub uri_path: String,
    /// SigV4 region of the credential scope (the key store's AWS region).
    pub region: String,
    /// XksProxyAuthenticationCredential access key id: `^[A-Z2-7]{20,30}$`.
    pub access_key_id: String,
    /// XksProxyAuthenticationCredential secret: 43-64 chars of `[A-Za-z0-9/+=]`.
    pub secret_access_key: Zeroizing<String>,
    /// PEM bundle of the CA certificates trusted for the proxy's server
    /// certificate (the only roots used: the system store is not consulted).
    pub trusted_ca_pem: Vec<u8>,
    /// Optional client certificate for mutual TLS.
    pub client_identity: Option<ClientIdentity>,
    /// Cut-off of one attempt. Default 250 ms.
    pub attempt_timeout: Duration,
    /// Cut-off of the whole call, retry included. Default 500 ms.
    pub deadline: Duration,
}

impl XksClientConfig {
    /// A configuration with the default time budget.
    pub fn new(
        endpoint: impl Into<String>,
        uri_path: impl Into<String>,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        trusted_ca_pem: impl Into<Vec<u8>>,
    ) -> Self {
        XksClientConfig {
            endpoint: endpoint.into(),
            uri_path: uri_path.into(),
            region: region.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            trusted_ca_pem: trusted_ca_pem.into(),
            client_identity: None,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Adds a client certificate chain and private key (both PEM) for mTLS.
    pub fn with_client_identity(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some(ClientIdentity {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: Zeroizing::new(key_pem.into()),
        });
        self
    }

    /// Sets the per-attempt timeout and the overall deadline.
    pub fn with_budget(mut self, attempt_timeout: Duration, deadline: Duration) -> Self {
        self.attempt_timeout = attempt_timeout;
        self.deadline = deadline;
        self
    }

    /// Checks every field that can be checked without I/O.
    /// Certificates and keys are parsed later, when the TLS config is built.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let endpoint = parse_endpoint(&self.endpoint)?;
        let uri_path: UriPath = self
            .uri_path
            .parse()
            .map_err(|e: xks_wire::IdError| ConfigError::UriPath(e.to_string()))?;
        if !valid_region(&self.region) {
            return Err(ConfigError::Region);
        }
        if !valid_access_key_id(&self.access_key_id) {
            return Err(ConfigError::AccessKeyId);
        }
        if !valid_secret(&self.secret_access_key) {
            return Err(ConfigError::SecretAccessKey);
        }
        if self.attempt_timeout.is_zero() || self.deadline.is_zero() {
            return Err(ConfigError::Budget("timeouts must be positive"));
        }
        if self.attempt_timeout > self.deadline {
            return Err(ConfigError::Budget(
                "the attempt timeout must not exceed the deadline",
            ));
        }
        Ok(ValidConfig {
            authority: endpoint.authority,
            host: endpoint.host,
            port: endpoint.port,
            uri_path,
            region: self.region.clone(),
            budget: Budget {
                attempt_timeout: self.attempt_timeout,
                deadline: self.deadline,
            },
        })
    }
}

impl fmt::Debug for XksClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XksClientConfig")
            .field("endpoint", &self.endpoint)
            .field("uri_path", &self.uri_path)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "trusted_ca_pem",
                &format_args!("{} bytes", self.trusted_ca_pem.len()),
            )
            .field("client_identity", &self.client_identity)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// A client certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_chain_pem: Vec<u8>,
    pub key_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientIdentity({} bytes of certificates, <key redacted>)",
            self.cert_chain_pem.len()
        )
    }
}

/// The validated, non-secret part of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidConfig {
    /// `host` or `host:port` (port omitted when 443): the value of the Host
    /// header (HTTP/1.1) or `:authority` (HTTP/2), and what is signed.
    pub authority: String,
    /// Host name or IP address (IPv6 without brackets): the TLS server name.
    pub host: String,
    pub port: u16,
    pub uri_path: UriPath,
    pub region: String,
    pub budget: Budget,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("endpoint must be https://host[:port]: {0}")]
    Endpoint(&'static str),
    #[error("invalid URI path: {0}")]
    UriPath(String),
    #[error("region must be 1 to 32 characters of [a-z0-9-]")]
    Region,
    #[error("access key id must match ^[A-Z2-7]{{20,30}}$")]
    AccessKeyId,
    #[error("secret access key must be 43 to 64 characters of [A-Za-z0-9/+=]")]
    SecretAccessKey,
    #[error("invalid time budget: {0}")]
    Budget(&'static str),
    #[error("trusted CA certificates: {0}")]
    TrustedCa(String),
    #[error("client identity: {0}")]
    ClientIdentity(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

/// A parsed `https://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host`, or `host:port` when the port is not 443 (IPv6 in brackets).
    pub authority: String,
    /// Lower-cased host; IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

/// Parses `https://host[:port]`.
pub fn parse_endpoint(endpoint: &str) -> Result<Endpoint, ConfigError> {
    let rest = endpoint
        .strip_prefix("https://")
        .ok_or(ConfigError::Endpoint("the scheme must be https"))?;
    // A trailing slash is the only path tolerated.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(ConfigError::Endpoint("no host"));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(ConfigError::Endpoint(
            "no path, query or fragment is allowed (the path goes in uri_path)",
        ));
    }
    if rest.contains('@') {
        return Err(ConfigError::Endpoint("no user information is allowed"));
    }
    let (host, port) = split_host_port(rest)?;
    if !valid_host(host) {
        return Err(ConfigError::Endpoint("invalid host name"));
    }
    let host = host.to_ascii_lowercase();
    let port = port.unwrap_or(443);
    let authority = match port {
        443 => host.clone(),
        p => format!("{host}:{p}"),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .map_or(host.clone(), str::to_owned);
    Ok(Endpoint {
        authority,
        host,
        port,
    })
}

fn split_host_port(s: &str) -> Result<(&str, Option<u16>), ConfigError> {
    let (host, port) = if let Some(after) = s.strip_prefix('[') {
        // IPv6 literal.
        let close = after
            .find(']')
            .ok_or(ConfigError::Endpoint("unterminated IPv6 literal"))?;
        let host = &s[..close + 2];
        let tail = &after[close + 1..];
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p),
            None if tail.is_empty() => None,
            None => return Err(ConfigError::Endpoint("garbage after IPv6 literal")),
        };
        (host, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::Endpoint("invalid port"));
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(ConfigError::Endpoint("invalid port")),
                Ok(n) => Some(n),
            }
        }
    };
    Ok((host, port))
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn valid_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `^[A-Z2-7]{20,30}$`, as KMS validates XksProxyAuthenticationCredential.
pub fn valid_access_key_id(id: &str) -> bool {
    (20..=30).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// 43 to 64 characters of `[A-Za-z0-9/+=]`.
pub fn valid_secret(secret: &str) -> bool {
    (43..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='))
}

/// The time budget of one call: each attempt is cut at `attempt_timeout`,
/// the whole call at `deadline`; a timed-out or connect-failed attempt is
/// retried once if time remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub attempt_timeout: Duration,
    pub deadline: Duration,
}

/// Attempts per call: the first one and one retry.
pub const MAX_ATTEMPTS: u32 = 2;
/// A retry with less time than this left is not started.
pub const MIN_RETRY_WINDOW: Duration = Duration::from_millis(5);

impl Default for Budget {
    fn default() -> Self {
        Budget {
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

impl Budget {
    /// How long attempt number `attempt` (1-based) may run when `elapsed`
    /// has already gone by, or `None` when it must not start.
    pub fn attempt_window(&self, attempt: u32, elapsed: Duration) -> Option<Duration> {
        if attempt == 0 || attempt > MAX_ATTEMPTS {
            return None;
        }
        let left = self.deadline.checked_sub(elapsed)?;
        let window = left.min(self.attempt_timeout);
        if attempt > 1 && window < MIN_RETRY_WINDOW {
            return None;
        }
        if window.is_zero() {
            return None;
        }
        Some(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "ABCDEFGHIJKLMNOPQRST";
    const SECRET: &str = "K6pTUf2vJrcNFWcL2rH0a6xSrcqGsX8Lzv2wXv1Qd4I=";

    fn cfg() -> XksClientConfig {
        XksClientConfig::new(
            "https://xks.example.com",
            "/kms/xks/v1",
            "us-east-1",
            AKID,
            SECRET,
            Vec::new(),
        )
    }

    #[test]
    fn endpoints() {
        let ok = [
            ("https://xks.example.com", "xks.example.com"),
            ("https://xks.example.com/", "xks.example.com"),
            ("https://XKS.Example.com:443", "xks.example.com"),
            ("https://xks.example.com:8443", "xks.example.com:8443"),
            ("https://127.0.0.1:9000", "127.0.0.1:9000"),
            ("https://[::1]:9000", "[::1]:9000"),
            ("https://[::1]", "[::1]"),
        ];
        for (input, authority) in ok {
            assert_eq!(
                parse_endpoint(input).map(|e| e.authority).as_deref(),
                Ok(authority),
                "{input}"
            );
        }
        for bad in [
            "http://xks.example.com",
            "xks.example.com",
            "https://",
            "https:///",
            "https://xks.example.com/kms/xks/v1",
            "https://xks.example.com?x=1",
            "https://xks.example.com#f",
            "https://user@xks.example.com",
            "https://xks.example.com:",
            "https://xks.example.com:0",
            "https://xks.example.com:65536",
            "https://xks.example.com:12a",
            "https://xks_example.com",
            "https://-xks.example.com",
            "https://xks..example.com",
            "https://[::1",
            "https://[zz]:1",
            "https://[::1]x",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials() {
        assert!(valid_access_key_id(AKID));
        assert!(valid_access_key_id(&"A2".repeat(15)));
        assert!(!valid_access_key_id(&"A".repeat(19)));
        assert!(!valid_access_key_id(&"A".repeat(31)));
        assert!(!valid_access_key_id("ABCDEFGHIJKLMNOPQRS1")); // 1 not in base32
        assert!(!valid_access_key_id("ABCDEFGHIJKLMNOPQRS8"));
        assert!(!valid_access_key_id("abcdefghijklmnopqrst"));
        assert!(valid_secret(SECRET));
        assert!(valid_secret(&"a".repeat(43)));
        assert!(valid_secret(&"/+=9".repeat(16)));
        assert!(!valid_secret(&"a".repeat(42)));
        assert!(!valid_secret(&"a".repeat(65)));
        assert!(!valid_secret(&format!("{}-", "a".repeat(43))));
    }

    #[test]
    fn config_validation() {
        let v = cfg().validate().unwrap();
        assert_eq!(v.authority, "xks.example.com");
        assert_eq!((v.host.as_str(), v.port), ("xks.example.com", 443));
        let e = parse_endpoint("https://[::1]:8443").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8443));
        assert_eq!(v.uri_path.as_str(), "/kms/xks/v1");
        assert_eq!(v.budget, Budget::default());

        let mut c = cfg();
        c.uri_path = "/kms/xks/v1/".into();
        assert!(matches!(c.validate(), Err(ConfigError::UriPath(_))));
        let mut c = cfg();
        c.uri_path = "/prefix-1/kms/xks/v1".into();
        assert!(c.validate().is_ok());
        let mut c = cfg();
        c.region = "US-EAST-1".into();
        assert_eq!(c.validate(), Err(ConfigError::Region));
        let mut c = cfg();
        c.access_key_id = "short".into();
        assert_eq!(c.validate(), Err(ConfigError::AccessKeyId));
        let mut c = cfg();
        c.secret_access_key = Zeroizing::new("short".into());
        assert_eq!(c.validate(), Err(ConfigError::SecretAccessKey));
        let c = cfg().with_budget(Duration::from_millis(600), Duration::from_millis(500));
        assert!(matches!(c.validate(), Err(ConfigError::Budget(_))));
        let c = cfg().with_budget(Duration::ZERO, Duration::from_millis(500));
        assert!(matches!(c.validate(), Err(ConfigError::Budget(_))));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = cfg().with_client_identity(b"CERT".to_vec(), b"SECRET-KEY".to_vec());
        let text = format!("{c:?}");
        assert!(!text.contains(SECRET));
        assert!(!text.contains("SECRET-KEY"));
        assert!(text.contains(AKID));
    }

    #[test]
    fn budget_windows() {
        let b = Budget::default();
        let ms = Duration::from_millis;
        assert_eq!(b.attempt_window(1, ms(0)), Some(ms(250)));
        // First attempt timed out at 250 ms: the retry gets the remaining 250.
        assert_eq!(b.attempt_window(2, ms(250)), Some(ms(250)));
        // First attempt failed fast: the retry still gets a full attempt.
        assert_eq!(b.attempt_window(2, ms(3)), Some(ms(250)));
        // A slow failure leaves less: the retry is cut at the deadline.
        assert_eq!(b.attempt_window(2, ms(400)), Some(ms(100)));
        assert_eq!(b.attempt_window(2, ms(498)), None);
        assert_eq!(b.attempt_window(2, ms(500)), None);
        assert_eq!(b.attempt_window(2, ms(600)), None);
        assert_eq!(b.attempt_window(3, ms(0)), None);
        assert_eq!(b.attempt_window(0, ms(0)), None);
        let tight = Budget {
            attempt_timeout: ms(100),
            deadline: ms(150),
        };
        assert_eq!(tight.attempt_window(2, ms(100)), Some(ms(50)));
    }
}
