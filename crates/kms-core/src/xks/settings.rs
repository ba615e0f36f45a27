//! kms-core's side of external key store connections, which the KMS API
//! cannot express: the TLS trust (CA certificates) and optional client
//! certificate used toward each proxy, the time budget and the health
//! check interval. AWS trusts public CAs only; kms-core trusts exactly what
//! this configuration names (`--xks-config FILE`, TOML):
//!
//! ```toml
//! attempt_timeout_ms = 250          # per attempt (default 250)
//! deadline_ms = 500                 # per call, retry included (default 500)
//! health_check_interval_secs = 300  # GetHealthStatus while CONNECTED (default 300)
//!
//! [tls]                             # default for every proxy endpoint
//! ca_file = "ca.pem"                # PEM bundle trusted for the proxy's certificate
//! client_cert_file = "client.pem"   # optional, for mutual TLS
//! client_key_file = "client.key"
//!
//! [[endpoints]]                     # per XksProxyUriEndpoint, overrides [tls]
//! uri_endpoint = "https://xks.example.com:8443"
//! ca_file = "other-ca.pem"
//! ```
//!
//! Relative paths are resolved against the file's directory.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// A client certificate chain and key (PEM).
#[derive(Clone)]
pub struct ClientCert {
    pub cert_pem: Vec<u8>,
    pub key_pem: Zeroizing<Vec<u8>>,
}

/// What kms-core trusts toward one proxy endpoint.
#[derive(Clone)]
pub struct TlsTrust {
    pub ca_pem: Vec<u8>,
    pub client_identity: Option<ClientCert>,
}

/// External key store settings.
#[derive(Clone)]
pub struct XksSettings {
    pub default_trust: Option<TlsTrust>,
    /// By endpoint authority (`host` or `host:port`, lowercase).
    pub endpoint_trust: HashMap<String, TlsTrust>,
    pub attempt_timeout: Duration,
    pub deadline: Duration,
    pub health_interval: Duration,
}

impl Default for XksSettings {
    fn default() -> Self {
        XksSettings {
            default_trust: None,
            endpoint_trust: HashMap::new(),
            attempt_timeout: xks_client::DEFAULT_ATTEMPT_TIMEOUT,
            deadline: xks_client::DEFAULT_DEADLINE,
            health_interval: Duration::from_secs(300),
        }
    }
}

/// The authority an endpoint is matched by.
pub fn endpoint_key(uri_endpoint: &str) -> String {
    xks_client::config::parse_endpoint(uri_endpoint)
        .map(|e| e.authority)
        .unwrap_or_else(|_| uri_endpoint.to_owned())
        .to_ascii_lowercase()
}

impl XksSettings {
    /// The trust for `uri_endpoint`: its own entry, else the default.
    pub fn trust_for(&self, uri_endpoint: &str) -> Option<&TlsTrust> {
        self.endpoint_trust
            .get(&endpoint_key(uri_endpoint))
            .or(self.default_trust.as_ref())
    }

    /// Settings trusting `ca_pem` (and presenting `client`) for every
    /// endpoint.
    pub fn with_default_trust(mut self, ca_pem: Vec<u8>, client: Option<ClientCert>) -> Self {
        self.default_trust = Some(TlsTrust {
            ca_pem,
            client_identity: client,
        });
        self
    }

    /// Parses and checks the TOML file (see the module documentation).
    pub fn load(path: &Path) -> Result<XksSettings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, base: &Path) -> Result<XksSettings, String> {
        let raw: RawSettings = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut s = XksSettings::default();
        if let Some(ms) = raw.attempt_timeout_ms {
            s.attempt_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = raw.deadline_ms {
            s.deadline = Duration::from_millis(ms);
        }
        if s.attempt_timeout.is_zero() || s.attempt_timeout > s.deadline {
            return Err("attempt_timeout_ms must be positive and at most deadline_ms".into());
        }
        if let Some(secs) = raw.health_check_interval_secs {
            if secs == 0 {
                return Err("health_check_interval_secs must be positive".into());
            }
            s.health_interval = Duration::from_secs(secs);
        }
        if let Some(t) = raw.tls {
            s.default_trust = Some(t.load(base).map_err(|e| format!("[tls]: {e}"))?);
        }
        for e in raw.endpoints {
            let key = xks_client::config::parse_endpoint(&e.uri_endpoint)
                .map_err(|err| format!("[[endpoints]] {}: {err}", e.uri_endpoint))?
                .authority
                .to_ascii_lowercase();
            let trust = e
                .tls
                .load(base)
                .map_err(|err| format!("[[endpoints]] {}: {err}", e.uri_endpoint))?;
            if s.endpoint_trust.insert(key, trust).is_some() {
                return Err(format!("[[endpoints]] {} is listed twice", e.uri_endpoint));
            }
        }
        Ok(s)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    attempt_timeout_ms: Option<u64>,
    deadline_ms: Option<u64>,
    health_check_interval_secs: Option<u64>,
    tls: Option<RawTls>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: String,
    client_cert_file: Option<String>,
    client_key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    uri_endpoint: String,
    #[serde(flatten)]
    tls: RawTls,
}

impl RawTls {
    fn load(&self, base: &Path) -> Result<TlsTrust, String> {
        let read = |f: &str| {
            let p = base.join(f);
            std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))
        };
        let ca_pem = read(&self.ca_file)?;
        if !String::from_utf8_lossy(&ca_pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("{} holds no PEM certificate", self.ca_file));
        }
        let client_identity = match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => None,
            (Some(c), Some(k)) => Some(ClientCert {
                cert_pem: read(c)?,
                key_pem: Zeroizing::new(read(k)?),
            }),
            _ => return Err("client_cert_file and client_key_file go together".into()),
        };
        Ok(TlsTrust {
            ca_pem,
            client_identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::write(dir.path().join("c.pem"), "c").unwrap();
        std::fs::write(dir.path().join("c.key"), "k").unwrap();
        let s = XksSettings::parse(
            r#"
deadline_ms = 800
health_check_interval_secs = 2
[tls]
ca_file = "ca.pem"
[[endpoints]]
uri_endpoint = "https://XKS.example.com:8443"
ca_file = "ca.pem"
client_cert_file = "c.pem"
client_key_file = "c.key"
"#,
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.deadline, Duration::from_millis(800));
        assert_eq!(s.attempt_timeout, Duration::from_millis(250));
        assert_eq!(s.health_interval, Duration::from_secs(2));
        assert!(s
            .trust_for("https://xks.example.com:8443")
            .unwrap()
            .client_identity
            .is_some());
        assert!(s
            .trust_for("https://other.example.com")
            .unwrap()
            .client_identity
            .is_none());
        for bad in [
            "attempt_timeout_ms = 600",
            "health_check_interval_secs = 0",
            "unknown = 1",
            "[tls]\nca_file = \"c.pem\"",
            "[tls]\nca_file = \"ca.pem\"\nclient_cert_file = \"c.pem\"",
            "[[endpoints]]\nuri_endpoint = \"http://x\"\nca_file = \"ca.pem\"",
        ] {
            assert!(XksSettings::parse(bad, dir.path()).is_err(), "{bad}");
        }
    }
}
