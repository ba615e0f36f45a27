//! The proxy's TOML configuration: typed, with unknown keys refused, and
//! validated as a whole at startup so that every mistake is reported with
//! the key store or backend it belongs to.

use crate::authz::RuleConfig;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub log: LogConfig,
    pub backends: BTreeMap<String, BackendConfig>,
    pub key_stores: Vec<KeyStoreConfig>,
    /// One audit record per request (JSON lines); off when absent.
    pub audit: Option<audit_sink::SinkConfig>,
    /// Prometheus metrics on their own plain-HTTP listener; off when absent.
    pub metrics: Option<MetricsConfig>,
}

/// The `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serves `GET /metrics` (Prometheus text format). Keep it on loopback
    /// or a management network: it is unauthenticated.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Required unless `plain_http = true`.
    pub tls: Option<TlsConfig>,
    /// Serve plain HTTP (tests and local debugging only).
    #[serde(default)]
    pub plain_http: bool,
    /// Offer HTTP/2 through ALPN (HTTP/1.1 is always available).
    #[serde(default = "yes")]
    pub http2: bool,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest plaintext/ciphertext accepted (spec minimum 4300).
    #[serde(default = "default_max_plaintext")]
    pub max_plaintext_bytes: usize,
    /// Largest AAD accepted (spec minimum 8192; at most 65535).
    #[serde(default = "default_max_aad")]
    pub max_aad_bytes: usize,
    /// Time allowed to receive headers and body of one request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// Time allowed to one backend call before DependencyTimeoutException.
    #[serde(default = "default_backend_timeout")]
    pub backend_timeout_ms: u64,
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
    /// Unauthenticated `GET` path for load-balancer health checks.
    #[serde(default = "default_lb_path")]
    pub load_balancer_health_path: String,
    /// Connection deadlines and caps (`[server.connections]`).
    #[serde(default)]
    pub connections: ConnectionsConfig,
}

/// `[server.connections]`: every key optional, defaults from
/// [`http_shell::ConnectionLimits::default`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    pub handshake_timeout_ms: Option<u64>,
    /// A connection that has not sent a request's headers this long after
    /// the accept is closed.
    pub first_request_timeout_ms: Option<u64>,
    pub header_timeout_ms: Option<u64>,
    /// A connection without a request in flight this long is closed.
    pub idle_timeout_ms: Option<u64>,
    /// HTTP/2 PING interval; 0 turns pings off.
    pub h2_keepalive_interval_ms: Option<u64>,
    pub h2_keepalive_timeout_ms: Option<u64>,
    /// Kept below the open-file limit in any case.
    pub max_connections: Option<usize>,
    /// Per client address (IPv4) or /64 (IPv6); no cap when absent.
    pub max_connections_per_client: Option<usize>,
}

impl ConnectionsConfig {
    /// The shell's limits: the defaults with this table's values over them.
    pub fn limits(&self) -> http_shell::ConnectionLimits {
        use std::time::Duration;
        let d = http_shell::ConnectionLimits::default();
        let ms =
            |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
        http_shell::ConnectionLimits {
            handshake_timeout: ms(self.handshake_timeout_ms, d.handshake_timeout),
            first_request_timeout: ms(self.first_request_timeout_ms, d.first_request_timeout),
            header_timeout: ms(self.header_timeout_ms, d.header_timeout),
            idle_timeout: ms(self.idle_timeout_ms, d.idle_timeout),
            h2_keepalive_interval: match self.h2_keepalive_interval_ms {
                Some(0) => None,
                Some(v) => Some(Duration::from_millis(v)),
                None => d.h2_keepalive_interval,
            },
            h2_keepalive_timeout: ms(self.h2_keepalive_timeout_ms, d.h2_keepalive_timeout),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_connections_per_client: self.max_connections_per_client,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let timeouts = [
            self.handshake_timeout_ms,
            self.first_request_timeout_ms,
            self.header_timeout_ms,
            self.idle_timeout_ms,
            self.h2_keepalive_timeout_ms,
        ];
        if timeouts.contains(&Some(0)) {
            bail!("[server.connections] timeouts must be positive");
        }
        if self.max_connections == Some(0) || self.max_connections_per_client == Some(0) {
            bail!("[server.connections] connection caps must be positive");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Enables mutual TLS: client certificates must chain to these CAs.
    pub client_ca_file: Option<PathBuf>,
    /// With mTLS, the client certificate must carry one of these names as a
    /// SAN DNS name or subject CN (e.g. `cks.kms.us-east-1.amazonaws.com`).
    #[serde(default)]
    pub client_subject_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default = "default_fleet_size")]
    pub fleet_size: u32,
    #[serde(default = "default_vendor")]
    pub vendor: String,
    #[serde(default = "default_model")]
    pub model: String,
    /// Background deep-check period; results are served for at most 60 s.
    #[serde(default = "default_health_refresh")]
    pub refresh_secs: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            fleet_size: default_fleet_size(),
            vendor: default_vendor(),
            model: default_model(),
            refresh_secs: default_health_refresh(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendConfig {
    /// The embedded software key manager.
    Software {
        data_dir: PathBuf,
        /// Defaults to `<data_dir>/master.key`.
        master_key_file: Option<PathBuf>,
        /// Take the master key (Base64 of 32 bytes) from this variable.
        master_key_env: Option<String>,
        #[serde(default = "default_reload_ms")]
        reload_interval_ms: u64,
    },
    /// A KMIP 1.4 key manager (`crate::backend::kmip`).
    Kmip(crate::backend::kmip::KmipConfig),
    /// A PKCS#11 token (HSM).
    Pkcs11(crate::backend::pkcs11::config::Pkcs11Config),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStoreConfig {
    pub name: String,
    /// The XksProxyUriPath configured in KMS, e.g. `/ks1/kms/xks/v1`.
    pub uri_path: String,
    /// SigV4 region KMS signs with.
    pub region: String,
    /// Name of an entry of `[backends]`.
    pub backend: String,
    /// Key ids served through this key store; all of the backend's when absent.
    pub allowed_keys: Option<Vec<String>>,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    pub credentials: Vec<CredentialConfig>,
    /// Secondary authorization rules; none means every authenticated
    /// request is allowed.
    #[serde(default)]
    pub authorization_rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// 0 disables the limit.
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests_per_second: default_rps(),
            burst: default_burst(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub access_key_id: String,
    /// Exactly one of the three secret sources must be given.
    pub secret_access_key: Option<String>,
    pub secret_access_key_file: Option<PathBuf>,
    pub secret_access_key_env: Option<String>,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn yes() -> bool {
    true
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_max_plaintext() -> usize {
    8192
}
fn default_max_aad() -> usize {
    16384
}
fn default_request_timeout() -> u64 {
    10_000
}
fn default_backend_timeout() -> u64 {
    200
}
fn default_skew() -> u64 {
    300
}
fn default_lb_path() -> String {
    "/ping".into()
}
fn default_fleet_size() -> u32 {
    1
}
fn default_vendor() -> String {
    "xks-proxy project".into()
}
fn default_model() -> String {
    concat!("xks-proxy ", env!("CARGO_PKG_VERSION")).into()
}
fn default_health_refresh() -> u64 {
    20
}
fn default_log_level() -> String {
    "info".into()
}
fn default_reload_ms() -> u64 {
    1000
}
/// KMS allows 1800 requests/s per external key store by default; the proxy
/// admits a little more so that KMS's own quota is what callers meet first.
fn default_rps() -> u32 {
    2000
}
fn default_burst() -> u32 {
    2000
}

impl Config {
    /// Reads, parses and validates a configuration file. Relative paths in
    /// it are resolved against the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration {}", path.display()))?;
        let mut cfg =
            Config::parse(&text).with_context(|| format!("in configuration {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate()
            .with_context(|| format!("in configuration {}", path.display()))?;
        Ok(cfg)
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(tls) = &mut self.server.tls {
            fix(&mut tls.cert_file);
            fix(&mut tls.key_file);
            if let Some(ca) = &mut tls.client_ca_file {
                fix(ca);
            }
        }
        if let Some(a) = &mut self.audit {
            fix(&mut a.path);
        }
        for b in self.backends.values_mut() {
            match b {
                BackendConfig::Software {
                    data_dir,
                    master_key_file,
                    ..
                } => {
                    fix(data_dir);
                    if let Some(f) = master_key_file {
                        fix(f);
                    }
                }
                BackendConfig::Kmip(k) => k.resolve_paths(fix),
                BackendConfig::Pkcs11(p) => p.resolve_paths(base),
            }
        }
        for ks in &mut self.key_stores {
            for c in &mut ks.credentials {
                if let Some(f) = &mut c.secret_access_key_file {
                    fix(f);
                }
            }
        }
    }

    /// Checks everything that can be checked without opening files.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(a) = &self.audit {
            a.validate().map_err(|e| anyhow::anyhow!("[audit] {e}"))?;
        }
        let s = &self.server;
        match (&s.tls, s.plain_http) {
            (None, false) => bail!("[server] needs a [server.tls] section, or plain_http = true"),
            (Some(_), true) => {
                bail!("[server] has both [server.tls] and plain_http = true; choose one")
            }
            (Some(tls), false) => {
                if tls.client_ca_file.is_some() && tls.client_subject_names.is_empty() {
                    bail!("[server.tls] client_ca_file is set: also set client_subject_names (e.g. [\"cks.kms.us-east-1.amazonaws.com\"])");
                }
                if tls.client_ca_file.is_none() && !tls.client_subject_names.is_empty() {
                    bail!("[server.tls] client_subject_names needs client_ca_file");
                }
            }
            (None, true) => {}
        }
        if s.max_plaintext_bytes < xks_wire::MIN_SUPPORTED_PLAINTEXT {
            bail!(
                "[server] max_plaintext_bytes must be at least {} (the spec's minimum)",
                xks_wire::MIN_SUPPORTED_PLAINTEXT
            );
        }
        if s.max_aad_bytes < xks_wire::MIN_SUPPORTED_AAD || s.max_aad_bytes > 65535 {
            bail!("[server] max_aad_bytes must be between 8192 and 65535");
        }
        let needed = 4 * (s.max_plaintext_bytes + s.max_aad_bytes) / 3 + 4096;
        if s.max_body_bytes < needed {
            bail!("[server] max_body_bytes must be at least {needed} to carry the largest plaintext and AAD in Base64");
        }
        if s.backend_timeout_ms == 0 || s.request_timeout_ms == 0 {
            bail!("[server] timeouts must be positive");
        }
        s.connections.validate()?;
        if !s.load_balancer_health_path.starts_with('/')
            || s.load_balancer_health_path.contains("/kms/xks/v1/")
        {
            bail!(
                "[server] load_balancer_health_path must start with '/' and not be an XKS API path"
            );
        }
        if self.health.fleet_size == 0 {
            bail!("[health] fleet_size must be greater than zero");
        }
        if !(1..=60).contains(&self.health.refresh_secs) {
            bail!("[health] refresh_secs must be between 1 and 60 (cached results may be at most 60 s old)");
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::filter::EnvFilter>()
            .is_err()
        {
            bail!("[log] level {:?} is not a valid filter", self.log.level);
        }
        for (name, b) in &self.backends {
            match b {
                BackendConfig::Software {
                    master_key_file,
                    master_key_env,
                    reload_interval_ms,
                    ..
                } => {
                    if master_key_file.is_some() && master_key_env.is_some() {
                        bail!("[backends.{name}] set master_key_file or master_key_env, not both");
                    }
                    if *reload_interval_ms == 0 {
                        bail!("[backends.{name}] reload_interval_ms must be positive");
                    }
                }
                BackendConfig::Kmip(k) => k.validate(name)?,
                BackendConfig::Pkcs11(p) => p.validate(name)?,
            }
        }
        if self.key_stores.is_empty() {
            bail!("at least one [[key_stores]] entry is required");
        }
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for ks in &self.key_stores {
            let at = format!("key store {:?}", ks.name);
            if ks.name.is_empty() {
                bail!("a [[key_stores]] entry has an empty name");
            }
            if !names.insert(ks.name.as_str()) {
                bail!("{at}: the name is used twice");
            }
            let path: xks_wire::UriPath = ks
                .uri_path
                .parse()
                .with_context(|| format!("{at}: uri_path {:?}", ks.uri_path))?;
            if !path.as_str().ends_with(xks_wire::API_ROOT) {
                bail!("{at}: uri_path must end in /kms/xks/v1 (this proxy implements v1)");
            }
            if !paths.insert(path.as_str().to_owned()) {
                bail!(
                    "{at}: uri_path {} is used by another key store",
                    ks.uri_path
                );
            }
            if ks.region.is_empty()
                || !ks
                    .region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                bail!(
                    "{at}: region {:?} is not a region name like us-east-1",
                    ks.region
                );
            }
            if !self.backends.contains_key(&ks.backend) {
                bail!(
                    "{at}: backend {:?} is not defined in [backends]",
                    ks.backend
                );
            }
            if let Some(keys) = &ks.allowed_keys {
                for k in keys {
                    k.parse::<xks_wire::ExternalKeyId>()
                        .with_context(|| format!("{at}: allowed_keys entry {k:?}"))?;
                }
            }
            if ks.rate_limit.requests_per_second > 0 && ks.rate_limit.burst == 0 {
                bail!("{at}: rate_limit.burst must be positive");
            }
            if ks.credentials.is_empty() {
                bail!("{at}: at least one [[key_stores.credentials]] entry is required");
            }
            let mut ids = HashSet::new();
            for c in &ks.credentials {
                check_access_key_id(&c.access_key_id).with_context(|| at.clone())?;
                if !ids.insert(c.access_key_id.as_str()) {
                    bail!("{at}: access key id {} is listed twice", c.access_key_id);
                }
                let sources = [
                    c.secret_access_key.is_some(),
                    c.secret_access_key_file.is_some(),
                    c.secret_access_key_env.is_some(),
                ];
                if sources.iter().filter(|x| **x).count() != 1 {
                    bail!("{at}: credential {} needs exactly one of secret_access_key, secret_access_key_file, secret_access_key_env", c.access_key_id);
                }
                if let Some(secret) = &c.secret_access_key {
                    check_secret(secret)
                        .with_context(|| format!("{at}: credential {}", c.access_key_id))?;
                }
            }
            for rule in &ks.authorization_rules {
                rule.validate().with_context(|| at.clone())?;
            }
        }
        Ok(())
    }
}

/// KMS's rule for XksProxyAuthenticationCredential.AccessKeyId.
pub fn check_access_key_id(id: &str) -> anyhow::Result<()> {
    if !(20..=30).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        bail!("access key id {id:?} must be 20 to 30 characters of A-Z and 2-7");
    }
    Ok(())
}

/// KMS's rule for XksProxyAuthenticationCredential.RawSecretAccessKey.
pub fn check_secret(secret: &str) -> anyhow::Result<()> {
    if !(43..=64).contains(&secret.len())
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='))
    {
        bail!("secret access key must be 43 to 64 characters of A-Z, a-z, 0-9, '/', '+' and '='");
    }
    Ok(())
}

impl CredentialConfig {
    /// Reads the secret from wherever the configuration says it is.
    pub fn secret(&self) -> anyhow::Result<Zeroizing<String>> {
        let secret = if let Some(s) = &self.secret_access_key {
            Zeroizing::new(s.clone())
        } else if let Some(f) = &self.secret_access_key_file {
            Zeroizing::new(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading secret file {}", f.display()))?
                    .trim()
                    .to_owned(),
            )
        } else if let Some(var) = &self.secret_access_key_env {
            Zeroizing::new(
                std::env::var(var)
                    .with_context(|| format!("secret environment variable {var} is not set"))?,
            )
        } else {
            bail!("credential {} has no secret", self.access_key_id);
        };
        check_secret(&secret).with_context(|| format!("credential {}", self.access_key_id))?;
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[backends.main]
type = "software"
data_dir = "data"

[[key_stores]]
name = "a"
uri_path = "/a/kms/xks/v1"
region = "us-east-1"
backend = "main"
[[key_stores.credentials]]
access_key_id = "AKIAI2SFODNN7EXAMPLE"
secret_access_key = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"
"#;

    #[test]
    fn good_config() {
        let c = Config::parse(GOOD).unwrap();
        c.validate().unwrap();
        assert_eq!(c.key_stores[0].rate_limit.requests_per_second, 2000);
        assert_eq!(c.server.max_plaintext_bytes, 8192);
    }

    fn err(text: &str) -> String {
        match Config::parse(text) {
            Err(e) => format!("{e:#}"),
            Ok(c) => format!("{:#}", c.validate().unwrap_err()),
        }
    }

    #[test]
    fn precise_errors() {
        assert!(err(&GOOD.replace("plain_http = true", "")).contains("[server.tls]"));
        assert!(err(&GOOD.replace("/a/kms/xks/v1", "/a/kms/xks")).contains("uri_path"));
        assert!(err(&GOOD.replace("AKIAI2SFODNN7EXAMPLE", "akia")).contains("20 to 30"));
        assert!(
            err(&GOOD.replace("FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE", "short"))
                .contains("43 to 64")
        );
        assert!(err(&GOOD.replace("backend = \"main\"", "backend = \"nope\"")).contains("nope"));
        assert!(
            err(&GOOD.replace("region = \"us-east-1\"", "region = \"US East\"")).contains("region")
        );
        assert!(err(&GOOD.replace("listen", "listne")).contains("unknown field"));
        let twice = format!("{GOOD}{}", &GOOD[GOOD.find("[[key_stores]]").unwrap()..]);
        assert!(err(&twice).contains("used twice"));
        let same_path = twice.replacen("name = \"a\"", "name = \"b\"", 1);
        assert!(err(&same_path).contains("used by another key store"));
    }

    #[test]
    fn connection_limits_default_and_override() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(
            c.server.connections.limits(),
            http_shell::ConnectionLimits::default()
        );
        let text = GOOD.replace(
            "plain_http = true",
            "plain_http = true\n[server.connections]\nfirst_request_timeout_ms = 2500\nh2_keepalive_interval_ms = 0\nmax_connections_per_client = 8",
        );
        let c = Config::parse(&text).unwrap();
        c.validate().unwrap();
        let l = c.server.connections.limits();
        assert_eq!(
            l.first_request_timeout,
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(l.h2_keepalive_interval, None);
        assert_eq!(l.max_connections_per_client, Some(8));
        assert_eq!(
            l.idle_timeout,
            http_shell::ConnectionLimits::default().idle_timeout
        );
        let zero = GOOD.replace(
            "plain_http = true",
            "plain_http = true\n[server.connections]\nidle_timeout_ms = 0",
        );
        assert!(err(&zero).contains("[server.connections]"));
        let unknown = GOOD.replace(
            "plain_http = true",
            "plain_http = true\n[server.connections]\nidle_ms = 5",
        );
        assert!(err(&unknown).contains("unknown field"));
    }
}
