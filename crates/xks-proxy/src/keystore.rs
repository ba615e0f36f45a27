//! Logical key stores: the unit KMS sees as one external key store.
//!
//! Each has its own URI path, SigV4 credentials (several at once, for
//! rotation), allowed keys, rate limit and authorization rules; several can
//! share one backend. A [`Routing`] table maps URI prefixes to key stores and
//! is swapped atomically on configuration reload.

use crate::authz::Authorizer;
use crate::backend::software::master::MasterKeySource;
use crate::backend::software::{SoftwareKeyManager, SoftwareSettings};
use crate::backend::KeyManager;
use crate::config::{BackendConfig, Config};
use crate::health::HealthMonitor;
use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sigv4::Credential;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use xks_wire::UriPath;

pub struct KeyStore {
    pub name: String,
    pub uri_path: UriPath,
    pub region: String,
    pub credentials: HashMap<String, Credential>,
    pub allowed_keys: Option<HashSet<String>>,
    pub limiter: Option<DefaultDirectRateLimiter>,
    pub authorizer: Authorizer,
    pub backend: Arc<dyn KeyManager>,
    pub health: Arc<HealthMonitor>,
}

impl KeyStore {
    pub fn allows_key(&self, key: &str) -> bool {
        self.allowed_keys.as_ref().is_none_or(|s| s.contains(key))
    }
}

/// A backend and its health monitor, shared by the key stores using it.
#[derive(Clone)]
pub struct BackendHandle {
    pub backend: Arc<dyn KeyManager>,
    pub health: Arc<HealthMonitor>,
    pub config: BackendConfig,
}

/// Opens every backend of the configuration.
pub fn open_backends(cfg: &Config) -> anyhow::Result<HashMap<String, BackendHandle>> {
    let mut out = HashMap::new();
    for (name, b) in &cfg.backends {
        let backend: Arc<dyn KeyManager> = match b {
            BackendConfig::Software {
                data_dir,
                master_key_file,
                master_key_env,
                reload_interval_ms,
            } => {
                let master_key = match (master_key_env, master_key_file) {
                    (Some(var), _) => MasterKeySource::Env(var.clone()),
                    (None, Some(f)) => MasterKeySource::File(f.clone()),
                    (None, None) => MasterKeySource::File(data_dir.join("master.key")),
                };
                SoftwareKeyManager::open(&SoftwareSettings {
                    data_dir: data_dir.clone(),
                    master_key,
                    reload_interval: Duration::from_millis(*reload_interval_ms),
                })
                .with_context(|| format!("opening backend {name:?}"))?
            }
            BackendConfig::Kmip(k) => crate::backend::kmip::KmipKeyManager::open(k)
                .with_context(|| format!("opening backend {name:?}"))?,
            BackendConfig::Pkcs11(p) => crate::backend::pkcs11::Pkcs11KeyManager::open(p)
                .with_context(|| format!("opening backend {name:?}"))?,
        };
        let health = HealthMonitor::new(Arc::clone(&backend));
        out.insert(
            name.clone(),
            BackendHandle {
                backend,
                health,
                config: b.clone(),
            },
        );
    }
    Ok(out)
}

/// URI prefix → key store.
pub struct Routing {
    by_prefix: HashMap<String, Arc<KeyStore>>,
}

impl Routing {
    /// Builds the routing table over already-open backends.
    pub fn build(
        cfg: &Config,
        backends: &HashMap<String, BackendHandle>,
    ) -> anyhow::Result<Routing> {
        let mut by_prefix = HashMap::new();
        for ks in &cfg.key_stores {
            let at = || format!("key store {:?}", ks.name);
            let uri_path: UriPath = ks.uri_path.parse().with_context(at)?;
            let handle = backends
                .get(&ks.backend)
                .with_context(|| format!("{}: backend {:?} is not open", at(), ks.backend))?;
            let mut credentials = HashMap::new();
            for c in &ks.credentials {
                let secret = c.secret().with_context(at)?;
                credentials.insert(
                    c.access_key_id.clone(),
                    Credential::new(&c.access_key_id, &secret),
                );
            }
            let limiter = NonZeroU32::new(ks.rate_limit.requests_per_second).map(|rps| {
                let burst = NonZeroU32::new(ks.rate_limit.burst).unwrap_or(rps);
                RateLimiter::direct(Quota::per_second(rps).allow_burst(burst))
            });
            let store = KeyStore {
                name: ks.name.clone(),
                region: ks.region.clone(),
                credentials,
                allowed_keys: ks
                    .allowed_keys
                    .as_ref()
                    .map(|v| v.iter().cloned().collect()),
                limiter,
                authorizer: Authorizer::new(ks.authorization_rules.clone()),
                backend: Arc::clone(&handle.backend),
                health: Arc::clone(&handle.health),
                uri_path: uri_path.clone(),
            };
            by_prefix.insert(uri_path.prefix().to_owned(), Arc::new(store));
        }
        Ok(Routing { by_prefix })
    }

    pub fn get(&self, prefix: &str) -> Option<&Arc<KeyStore>> {
        self.by_prefix.get(prefix)
    }

    pub fn stores(&self) -> impl Iterator<Item = &Arc<KeyStore>> {
        self.by_prefix.values()
    }
}
