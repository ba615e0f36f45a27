//! The connections of external key stores: state (CONNECTING, CONNECTED,
//! FAILED with a `ConnectionErrorCode`, DISCONNECTED), the XKS client of
//! each connected store, the asynchronous connect task and the health
//! poller.
//!
//! The map is an immutable snapshot swapped atomically ([`ArcSwap`]):
//! cryptographic operations read it without a lock; management operations
//! replace it. Every connection has a generation number so that a connect
//! task or poller of an older connection never overwrites a newer state.

use super::errors::connection_error_code;
use super::settings::XksSettings;
use crate::store::CustomKeyStoreRecord;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use xks_client::{XksClient, XksClientConfig};
use xks_wire::{HealthResponse, RequestMetadata};

/// `ConnectionState` (DISCONNECTED is the absence of a connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Connected,
    Failed(&'static str),
}

/// The result of the latest health check of a connected store.
#[derive(Debug, Clone)]
pub struct Health {
    /// Epoch seconds.
    pub checked_at: f64,
    /// `None` when the check passed; otherwise the connection error code
    /// the failure corresponds to.
    pub error_code: Option<&'static str>,
    /// What the proxy reported (when it answered).
    pub response: Option<HealthResponse>,
    /// The `notAfter` of the proxy's TLS certificate (epoch seconds), read
    /// at each check (XksProxyCertificateDaysToExpire).
    pub certificate_not_after: Option<i64>,
}

/// One store's connection, immutable (replaced as a whole).
#[derive(Clone)]
pub struct Conn {
    pub state: ConnState,
    pub client: Option<XksClient>,
    pub generation: u64,
    pub health: Option<Health>,
}

/// Why a state transition was refused (CustomKeyStoreInvalidStateException).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongState(pub &'static str);

pub struct Registry {
    /// Replaced whole on SIGHUP ([`Registry::reload_settings`]).
    settings: ArcSwap<XksSettings>,
    conns: ArcSwap<HashMap<String, Arc<Conn>>>,
    generation: AtomicU64,
    /// Serializes management changes of the map (readers never wait).
    writer: std::sync::Mutex<()>,
    /// One lock per store for CreateKey (XksKeyId uniqueness).
    create_locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Where XKS calls are counted, when metrics are on.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    /// Attempts and retries per store, kept across the clients a store
    /// goes through (credential updates, TLS reloads, reconnects).
    call_stats: std::sync::Mutex<HashMap<String, Arc<xks_client::CallStats>>>,
}

fn now() -> f64 {
    crate::clock::now()
}

impl Registry {
    pub fn new(settings: XksSettings) -> Arc<Registry> {
        Arc::new(Registry {
            settings: ArcSwap::from_pointee(settings),
            conns: ArcSwap::from_pointee(HashMap::new()),
            generation: AtomicU64::new(1),
            writer: std::sync::Mutex::new(()),
            create_locks: std::sync::Mutex::new(HashMap::new()),
            metrics: std::sync::OnceLock::new(),
            call_stats: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Counts XKS calls in `metrics` from now on (set once).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    pub fn metrics(&self) -> Option<&Arc<crate::metrics::Metrics>> {
        self.metrics.get()
    }

    /// (custom key store id, connection state) of every store with a
    /// connection, for the state gauges.
    pub fn states(&self) -> Vec<(String, &'static str)> {
        self.conns
            .load()
            .keys()
            .map(|id| (id.clone(), self.describe(id).0))
            .collect()
    }

    pub fn settings(&self) -> Arc<XksSettings> {
        self.settings.load_full()
    }

    /// New TLS trust, client identities and time budget (SIGHUP): every
    /// connected store of `records` gets a client built with them (calls in
    /// flight finish on the old one); a store whose new client cannot be
    /// built keeps its old one, logged. Returns how many were replaced.
    pub fn reload_settings(
        &self,
        settings: XksSettings,
        records: &[CustomKeyStoreRecord],
    ) -> usize {
        self.settings.store(Arc::new(settings));
        let mut replaced = 0;
        for r in records {
            if self.conn(&r.id).map(|c| c.state) != Some(ConnState::Connected) {
                continue;
            }
            match self.build_client(r) {
                Ok(client) => {
                    self.replace_client(&r.id, client);
                    replaced += 1;
                }
                Err(code) => tracing::error!(
                    custom_key_store_id = %r.id,
                    error = code,
                    "new XKS settings do not build a client for this store; it keeps the old one"
                ),
            }
        }
        replaced
    }

    /// The connection of store `id`, if not DISCONNECTED. Hot path.
    pub fn conn(&self, id: &str) -> Option<Arc<Conn>> {
        self.conns.load().get(id).cloned()
    }

    /// The `ConnectionState` name and error code to show.
    pub fn describe(&self, id: &str) -> (&'static str, Option<&'static str>) {
        match self.conn(id) {
            None => ("DISCONNECTED", None),
            Some(c) => match c.state {
                ConnState::Connecting => ("CONNECTING", None),
                ConnState::Connected => ("CONNECTED", c.health.as_ref().and_then(|h| h.error_code)),
                ConnState::Failed(code) => ("FAILED", Some(code)),
            },
        }
    }

    fn update(&self, f: impl FnOnce(&mut HashMap<String, Arc<Conn>>)) {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = HashMap::clone(&self.conns.load());
        f(&mut map);
        self.conns.store(Arc::new(map));
    }

    /// Applies `f` to the connection of generation `generation` only.
    fn update_if(&self, id: &str, generation: u64, f: impl FnOnce(&mut Conn)) -> bool {
        let mut applied = false;
        self.update(|m| {
            if let Some(c) = m.get(id) {
                if c.generation == generation {
                    let mut next = Conn::clone(c);
                    f(&mut next);
                    m.insert(id.to_owned(), Arc::new(next));
                    applied = true;
                }
            }
        });
        applied
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// The XKS client configuration of a store, with kms-core's TLS trust
    /// for its endpoint.
    pub fn client_config(&self, r: &CustomKeyStoreRecord) -> Result<XksClientConfig, String> {
        let settings = self.settings.load();
        let trust = settings.trust_for(&r.uri_endpoint).ok_or_else(|| {
            format!(
                "no TLS trust is configured for {} (see --xks-config)",
                r.uri_endpoint
            )
        })?;
        let mut c = XksClientConfig::new(
            r.uri_endpoint.clone(),
            r.uri_path.clone(),
            r.region.clone(),
            r.access_key_id.clone(),
            r.secret_access_key.as_str(),
            trust.ca_pem.clone(),
        )
        .with_budget(settings.attempt_timeout, settings.deadline);
        if let Some(id) = &trust.client_identity {
            c = c.with_client_identity(id.cert_pem.clone(), id.key_pem.to_vec());
        }
        Ok(c)
    }

    /// The attempts and retries of store `id`'s XKS calls so far.
    pub fn call_stats(&self, id: &str) -> Arc<xks_client::CallStats> {
        let mut stats = self.call_stats.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(stats.entry(id.to_owned()).or_default())
    }

    /// Builds a client for `r` (or the connection error code).
    pub fn build_client(&self, r: &CustomKeyStoreRecord) -> Result<XksClient, &'static str> {
        let config = self
            .client_config(r)
            .map_err(|_| "XKS_PROXY_INVALID_TLS_CONFIGURATION")?;
        let stats = self.call_stats(&r.id);
        XksClient::new(&config)
            .map(|c| c.with_stats(stats))
            .map_err(|e| match e {
                xks_client::Error::Config(
                    xks_client::ConfigError::TrustedCa(_)
                    | xks_client::ConfigError::ClientIdentity(_),
                ) => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
                xks_client::Error::Config(_) => "XKS_PROXY_INVALID_CONFIGURATION",
                other => connection_error_code(&other),
            })
    }

    /// ConnectCustomKeyStore: starts connecting unless already connected
    /// or connecting; a FAILED store must be disconnected first.
    pub fn connect(self: &Arc<Self>, record: &CustomKeyStoreRecord) -> Result<(), WrongState> {
        let generation = self.next_generation();
        let mut outcome = Ok(false);
        self.update(|m| match m.get(&record.id).map(|c| c.state) {
            Some(ConnState::Failed(_)) => outcome = Err(WrongState("FAILED")),
            Some(_) => outcome = Ok(false),
            None => {
                m.insert(
                    record.id.clone(),
                    Arc::new(Conn {
                        state: ConnState::Connecting,
                        client: None,
                        generation,
                        health: None,
                    }),
                );
                outcome = Ok(true);
            }
        });
        if outcome? {
            let weak = Arc::downgrade(self);
            let record = record.clone();
            tokio::spawn(async move { connect_task(weak, record, generation).await });
        }
        Ok(())
    }

    /// DisconnectCustomKeyStore.
    pub fn disconnect(&self, id: &str) -> Result<(), WrongState> {
        let mut found = false;
        self.update(|m| found = m.remove(id).is_some());
        if found {
            Ok(())
        } else {
            Err(WrongState("DISCONNECTED"))
        }
    }

    /// Replaces the client of a connected store after UpdateCustomKeyStore
    /// changed its credential or path (the new values were probed).
    pub fn replace_client(&self, id: &str, client: XksClient) {
        self.update(|m| {
            if let Some(c) = m.get(id) {
                if c.state == ConnState::Connected {
                    let mut next = Conn::clone(c);
                    next.client = Some(client);
                    m.insert(id.to_owned(), Arc::new(next));
                }
            }
        });
    }

    /// The CreateKey lock of a store.
    pub fn create_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.create_locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(id.to_owned()).or_default())
    }

    /// Reconnects the stores that were connected when kms-core stopped.
    pub fn resume(self: &Arc<Self>, records: &[CustomKeyStoreRecord]) {
        for r in records.iter().filter(|r| r.connect_requested) {
            let _ = self.connect(r);
        }
    }
}

/// Request metadata of kms-core's own calls (connect, health checks).
pub fn service_metadata(operation: &str) -> RequestMetadata {
    RequestMetadata {
        kms_operation: Some(operation.to_owned()),
        kms_request_id: Some(crate::api::protocol::request_id()),
        ..Default::default()
    }
}

/// A health response's verdict: an error code when every external key
/// manager instance is unavailable.
fn judge(h: &HealthResponse) -> Option<&'static str> {
    let all_down = !h.ekm_fleet_details.is_empty()
        && h.ekm_fleet_details
            .iter()
            .all(|d| d.health_status.eq_ignore_ascii_case("UNAVAILABLE"));
    all_down.then_some("XKS_PROXY_NOT_REACHABLE")
}

/// The proxy certificate's `notAfter`, or `None` when it cannot be read
/// now (the health check reports why the proxy is unreachable).
async fn certificate_not_after(client: &XksClient) -> Option<i64> {
    client
        .server_certificate_not_after(std::time::Duration::from_secs(2))
        .await
        .ok()
}

async fn connect_task(registry: Weak<Registry>, record: CustomKeyStoreRecord, generation: u64) {
    let Some(reg) = registry.upgrade() else {
        return;
    };
    let client = match reg.build_client(&record) {
        Ok(c) => c,
        Err(code) => {
            tracing::warn!(custom_key_store = %record.id, code, "external key store connection failed");
            reg.update_if(&record.id, generation, |c| {
                c.state = ConnState::Failed(code)
            });
            return;
        }
    };
    drop(reg);
    let result = client
        .get_health_status(&service_metadata("ConnectCustomKeyStore"))
        .await;
    let Some(reg) = registry.upgrade() else {
        return;
    };
    let code = match &result {
        Ok(h) => judge(h),
        Err(e) => Some(connection_error_code(e)),
    };
    match code {
        Some(code) => {
            tracing::warn!(custom_key_store = %record.id, code, error = ?result.as_ref().err(), "external key store connection failed");
            reg.update_if(&record.id, generation, |c| {
                c.state = ConnState::Failed(code)
            });
        }
        None => {
            tracing::info!(custom_key_store = %record.id, "external key store connected");
            let health = Health {
                checked_at: now(),
                error_code: None,
                response: result.ok(),
                certificate_not_after: certificate_not_after(&client).await,
            };
            if reg.update_if(&record.id, generation, |c| {
                c.state = ConnState::Connected;
                c.client = Some(client);
                c.health = Some(health);
            }) {
                let interval = reg.settings.load().health_interval;
                drop(reg);
                health_poller(registry, record.id, generation, interval).await;
            }
        }
    }
}

/// While the connection of `generation` lasts: GetHealthStatus
/// (kmsOperation `KmsHealthCheck`) every `interval`, result recorded.
async fn health_poller(
    registry: Weak<Registry>,
    id: String,
    generation: u64,
    interval: std::time::Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let client = {
            let Some(reg) = registry.upgrade() else {
                return;
            };
            match reg.conn(&id) {
                Some(c) if c.generation == generation => match &c.client {
                    Some(client) => client.clone(),
                    None => return,
                },
                _ => return,
            }
        };
        let result = client
            .get_health_status(&service_metadata("KmsHealthCheck"))
            .await;
        let certificate_not_after = certificate_not_after(&client).await;
        let Some(reg) = registry.upgrade() else {
            return;
        };
        let health = Health {
            checked_at: now(),
            error_code: match &result {
                Ok(h) => judge(h),
                Err(e) => Some(connection_error_code(e)),
            },
            response: result.ok(),
            certificate_not_after,
        };
        if health.error_code.is_some() {
            tracing::warn!(custom_key_store = %id, code = health.error_code, "external key store health check failed");
        }
        if !reg.update_if(&id, generation, |c| c.health = Some(health)) {
            return;
        }
    }
}
