//! Prometheus metrics of the proxy (`prometheus-client`), served on their
//! own listener. Labels are bounded: XKS operations, error names, key store
//! and backend names from the configuration — never key ids or principals.

use crate::backend::{BackendError, InstanceHealth, KeyInfo, KeyManager, Sealed};
use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

use http_shell::metrics::latency_histogram;

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    key_store: String,
    /// `success` or the XKS error name.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    key_store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendCallLabels {
    backend: String,
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendErrorLabels {
    backend: String,
    call: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Every metric of the proxy.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<OperationLabels>,
    in_flight: Gauge,
    throttled: Family<StoreLabels, Counter>,
    backend_duration: Histograms<BackendCallLabels>,
    backend_errors: Family<BackendErrorLabels, Counter>,
    pool_size: Family<BackendLabels, Gauge>,
    pool_in_use: Family<BackendLabels, Gauge>,
    pool_waiting: Family<BackendLabels, Gauge>,
    reloads: Family<ResultLabels, Counter>,
    audit: audit_sink::metrics::AuditMetrics,
    pools: Mutex<Vec<(String, Arc<dyn KeyManager>)>>,
    shell: Arc<http_shell::ShellStats>,
    shell_metrics: http_shell::stats::ShellMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("xks_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: Histograms<OperationLabels> = Family::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let throttled = Family::<StoreLabels, Counter>::default();
        let backend_duration: Histograms<BackendCallLabels> =
            Family::new_with_constructor(latency_histogram);
        let backend_errors = Family::<BackendErrorLabels, Counter>::default();
        let pool_size = Family::<BackendLabels, Gauge>::default();
        let pool_in_use = Family::<BackendLabels, Gauge>::default();
        let pool_waiting = Family::<BackendLabels, Gauge>::default();
        let reloads = Family::<ResultLabels, Counter>::default();
        let audit = audit_sink::metrics::AuditMetrics::default();
        registry.register(
            "build",
            "Version of this build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "requests",
            "XKS requests by operation, key store and outcome (success or the XKS error name)",
            requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from the request's headers to the reply, by XKS operation",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being processed now",
            in_flight.clone(),
        );
        registry.register(
            "throttled_requests",
            "Requests refused by a key store's rate limit",
            throttled.clone(),
        );
        registry.register_with_unit(
            "backend_call_duration",
            "Key manager call latency by backend and call",
            Unit::Seconds,
            backend_duration.clone(),
        );
        registry.register(
            "backend_errors",
            "Failed key manager calls by backend, call and error class",
            backend_errors.clone(),
        );
        registry.register(
            "backend_pool_size",
            "Connections or sessions a backend may open",
            pool_size.clone(),
        );
        registry.register(
            "backend_pool_in_use",
            "Connections or sessions in use by calls now",
            pool_in_use.clone(),
        );
        registry.register(
            "backend_pool_waiting",
            "Calls waiting for a pooled connection or session",
            pool_waiting.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP) by result",
            reloads.clone(),
        );
        audit.register(&mut registry);
        let shell_metrics = http_shell::stats::ShellMetrics::default();
        shell_metrics.register(&mut registry);
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            throttled,
            backend_duration,
            backend_errors,
            pool_size,
            pool_in_use,
            pool_waiting,
            reloads,
            audit,
            pools: Mutex::new(Vec::new()),
            shell: Arc::new(http_shell::ShellStats::default()),
            shell_metrics,
        }
    }

    /// Counts a finished request.
    pub fn request(
        &self,
        operation: &'static str,
        key_store: Option<&str>,
        outcome: &'static str,
        latency: Duration,
    ) {
        let key_store = key_store.unwrap_or("-").to_owned();
        if outcome == "ThrottlingException" {
            self.throttled
                .get_or_create(&StoreLabels {
                    key_store: key_store.clone(),
                })
                .inc();
        }
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                key_store,
                outcome,
            })
            .inc();
        self.duration
            .get_or_create(&OperationLabels { operation })
            .observe(latency.as_secs_f64());
    }

    /// Tracks one request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// Wraps a backend so that its calls are timed and its pool watched.
    pub fn instrument(
        self: &Arc<Self>,
        name: &str,
        backend: Arc<dyn KeyManager>,
    ) -> Arc<dyn KeyManager> {
        lock(&self.pools).push((name.to_owned(), Arc::clone(&backend)));
        Arc::new(Instrumented {
            inner: backend,
            name: name.to_owned(),
            metrics: Arc::clone(self),
        })
    }

    /// Mirrors this sink's counters into the audit metrics.
    pub fn watch_audit(&self, sink: audit_sink::AuditSink) {
        self.audit.watch(sink);
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        self.refresh();
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Reads the gauges and mirrored counters that live elsewhere.
    fn refresh(&self) {
        for (name, b) in lock(&self.pools).iter() {
            if let Some(u) = b.pool_usage() {
                let l = BackendLabels {
                    backend: name.clone(),
                };
                self.pool_size.get_or_create(&l).set(gauge(u.size));
                self.pool_in_use.get_or_create(&l).set(gauge(u.in_use));
                self.pool_waiting.get_or_create(&l).set(gauge(u.waiting));
            }
        }
        self.audit.refresh();
        self.shell_metrics.refresh(&self.shell);
    }

    /// Where the XKS listener counts connections and TLS handshake
    /// failures (`xks_proxy_tls_handshake_failures_total`...).
    pub fn shell_stats(&self) -> Arc<http_shell::ShellStats> {
        Arc::clone(&self.shell)
    }

    fn backend_call<T>(
        &self,
        backend: &str,
        call: &'static str,
        start: Instant,
        r: &Result<T, BackendError>,
    ) {
        self.backend_duration
            .get_or_create(&BackendCallLabels {
                backend: backend.to_owned(),
                call,
            })
            .observe(start.elapsed().as_secs_f64());
        if let Err(e) = r {
            self.backend_errors
                .get_or_create(&BackendErrorLabels {
                    backend: backend.to_owned(),
                    call,
                    error: error_class(e),
                })
                .inc();
        }
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bounded error class for labels.
fn error_class(e: &BackendError) -> &'static str {
    match e {
        BackendError::KeyNotFound => "key_not_found",
        BackendError::InvalidState(_) => "invalid_state",
        BackendError::InvalidKeyUsage => "invalid_key_usage",
        BackendError::InvalidCiphertext(_) => "invalid_ciphertext",
        BackendError::Timeout => "timeout",
        BackendError::Unavailable(_) => "unavailable",
        BackendError::Internal(_) => "internal",
    }
}

/// Decrements the in-flight gauge on drop (also when a request is cut).
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A backend with timed calls.
struct Instrumented {
    inner: Arc<dyn KeyManager>,
    name: String,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl KeyManager for Instrumented {
    fn vendor(&self) -> &str {
        self.inner.vendor()
    }

    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
        let start = Instant::now();
        let r = self.inner.key_info(key).await;
        self.metrics.backend_call(&self.name, "key_info", start, &r);
        r
    }

    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        let start = Instant::now();
        let r = self.inner.encrypt(key, version, plaintext, aad).await;
        self.metrics.backend_call(&self.name, "encrypt", start, &r);
        r
    }

    async fn decrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        ciphertext: &[u8],
        iv: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let start = Instant::now();
        let r = self
            .inner
            .decrypt(key, version, ciphertext, iv, tag, aad)
            .await;
        self.metrics.backend_call(&self.name, "decrypt", start, &r);
        r
    }

    async fn health(&self) -> Vec<InstanceHealth> {
        let start = Instant::now();
        let r = self.inner.health().await;
        self.metrics
            .backend_duration
            .get_or_create(&BackendCallLabels {
                backend: self.name.clone(),
                call: "health",
            })
            .observe(start.elapsed().as_secs_f64());
        r
    }

    fn pool_usage(&self) -> Option<crate::backend::PoolUsage> {
        self.inner.pool_usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_conventional_names_and_no_key_ids() {
        let m = Metrics::new();
        m.request("Encrypt", Some("ks1"), "success", Duration::from_micros(70));
        m.request(
            "Encrypt",
            Some("ks1"),
            "ThrottlingException",
            Duration::from_micros(30),
        );
        m.reload(false);
        let text = m.encode();
        for want in [
            "xks_proxy_build_info{version=\"",
            "xks_proxy_requests_total{operation=\"Encrypt\",key_store=\"ks1\",outcome=\"success\"} 1",
            "xks_proxy_throttled_requests_total{key_store=\"ks1\"} 1",
            "xks_proxy_request_duration_seconds_bucket{le=\"0.00005\",operation=\"Encrypt\"} 1",
            "xks_proxy_requests_in_flight 0",
            "xks_proxy_config_reloads_total{result=\"failure\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
