//! Prometheus metrics of kms-core (`prometheus-client`), served on their
//! own listener (`--metrics-listen`). Labels are bounded: operations of the
//! model, AWS error types, custom key store ids (a handful per account,
//! created by administrators) — never key ids, principals or aliases.
//!
//! The external key store metrics mirror what AWS publishes in CloudWatch
//! for external key stores under Prometheus names (docs/operations.md has
//! the table): XksProxyLatency → `kms_xks_proxy_latency_seconds`,
//! XksProxyErrors → `kms_xks_proxy_errors_total{retryable}`,
//! ExternalKeyStoreThrottle → `kms_external_key_store_throttle_total`,
//! XksExternalKeyManagerStates → `kms_xks_external_key_manager_states`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_shell::metrics::latency_histogram;

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    /// `success` or the AWS error type.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XksCallLabels {
    custom_key_store_id: String,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XksErrorLabels {
    custom_key_store_id: String,
    operation: &'static str,
    retryable: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    custom_key_store_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    custom_key_store_id: String,
    /// CONNECTED, CONNECTING, FAILED, DISCONNECTED.
    state: &'static str,
}

/// Every metric of kms-core.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<OperationLabels>,
    in_flight: Gauge,
    throttled: Counter,
    xks_latency: Histograms<XksCallLabels>,
    xks_requests: Family<XksCallLabels, Counter>,
    xks_errors: Family<XksErrorLabels, Counter>,
    xks_timeouts: Family<StoreLabels, Counter>,
    xks_retries: Family<StoreLabels, Counter>,
    xks_attempts: Family<StoreLabels, Counter>,
    /// (attempts, retries) of each store at the previous scrape.
    xks_attempts_seen: Mutex<HashMap<String, (u64, u64)>>,
    xks_throttle: Family<StoreLabels, Counter>,
    xks_states: Family<StateLabels, Gauge>,
    xks_credential_age: Family<StoreLabels, Gauge>,
    xks_certificate_days: Family<StoreLabels, Gauge<f64, AtomicU64>>,
    audit: audit_sink::metrics::AuditMetrics,
    shell: Arc<http_shell::ShellStats>,
    shell_metrics: http_shell::stats::ShellMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The connection states a store's gauge reports (one is 1, the others 0).
const STATES: [&str; 4] = ["CONNECTED", "CONNECTING", "FAILED", "DISCONNECTED"];

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kms");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: Histograms<OperationLabels> = Family::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let throttled = Counter::default();
        let xks_latency: Histograms<XksCallLabels> =
            Family::new_with_constructor(latency_histogram);
        let xks_requests = Family::<XksCallLabels, Counter>::default();
        let xks_errors = Family::<XksErrorLabels, Counter>::default();
        let xks_timeouts = Family::<StoreLabels, Counter>::default();
        let xks_retries = Family::<StoreLabels, Counter>::default();
        let xks_attempts = Family::<StoreLabels, Counter>::default();
        registry.register(
            "xks_proxy_attempts",
            "Attempts of XKS calls, first attempts and retries, whatever the outcome",
            xks_attempts.clone(),
        );
        let xks_throttle = Family::<StoreLabels, Counter>::default();
        let xks_states = Family::<StateLabels, Gauge>::default();
        let xks_credential_age = Family::<StoreLabels, Gauge>::default();
        let xks_certificate_days = Family::<StoreLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "xks_proxy_certificate_days_to_expire",
            "Days until the proxy's TLS certificate expires, read at each health check (CloudWatch XksProxyCertificateDaysToExpire)",
            xks_certificate_days.clone(),
        );
        let audit = audit_sink::metrics::AuditMetrics::default();
        audit.register(&mut registry);
        let shell_metrics = http_shell::stats::ShellMetrics::default();
        shell_metrics.register(&mut registry);
        registry.register(
            "build",
            "Version of this build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "requests",
            "API requests by operation and outcome (success or the AWS error type)",
            requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from the request's headers to the reply, by operation",
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
            "Requests answered with ThrottlingException",
            throttled.clone(),
        );
        registry.register_with_unit(
            "xks_proxy_latency",
            "XKS proxy call latency per custom key store (CloudWatch XksProxyLatency)",
            Unit::Seconds,
            xks_latency.clone(),
        );
        registry.register(
            "xks_proxy_requests",
            "XKS proxy calls (each may be up to two attempts) per custom key store",
            xks_requests.clone(),
        );
        registry.register(
            "xks_proxy_errors",
            "Failed XKS proxy calls by retryable or not (CloudWatch XksProxyErrors)",
            xks_errors.clone(),
        );
        registry.register(
            "xks_proxy_timeouts",
            "XKS proxy calls that ran out of time",
            xks_timeouts.clone(),
        );
        registry.register(
            "xks_proxy_retries",
            "Second attempts of XKS proxy calls (after a connect failure or a timeout), whatever the outcome",
            xks_retries.clone(),
        );
        registry.register(
            "external_key_store_throttle",
            "XKS calls throttled by the proxy (CloudWatch ExternalKeyStoreThrottle)",
            xks_throttle.clone(),
        );
        registry.register_with_unit(
            "xks_proxy_credential_age",
            "Time since the proxy credential of each custom key store was set (CloudWatch XksProxyCredentialAge)",
            Unit::Seconds,
            xks_credential_age.clone(),
        );
        registry.register(
            "xks_external_key_manager_states",
            "1 for the current connection state of each custom key store (CloudWatch XksExternalKeyManagerStates)",
            xks_states.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            throttled,
            xks_latency,
            xks_requests,
            xks_errors,
            xks_timeouts,
            xks_retries,
            xks_attempts,
            xks_attempts_seen: Mutex::new(HashMap::new()),
            xks_throttle,
            xks_states,
            xks_credential_age,
            xks_certificate_days,
            audit,
            shell: Arc::new(http_shell::ShellStats::default()),
            shell_metrics,
        }
    }

    /// Where the API listener counts connections and TLS handshake
    /// failures (`kms_open_connections`, `kms_tls_handshake_failures_total`...).
    pub fn shell_stats(&self) -> Arc<http_shell::ShellStats> {
        Arc::clone(&self.shell)
    }

    /// Mirrors the audit sink's counters (`kms_audit_records_written_total`
    /// and the others).
    pub fn watch_audit(&self, sink: audit_sink::AuditSink) {
        self.audit.watch(sink);
    }

    /// Counts a finished request.
    pub fn request(&self, operation: &'static str, outcome: &'static str, latency: Duration) {
        if outcome == "ThrottlingException" {
            self.throttled.inc();
        }
        self.requests
            .get_or_create(&RequestLabels { operation, outcome })
            .inc();
        self.duration
            .get_or_create(&OperationLabels { operation })
            .observe(latency.as_secs_f64());
    }

    /// Tracks a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records one XKS proxy call of `store`.
    pub fn xks_call(
        &self,
        store: &str,
        operation: &'static str,
        latency: Duration,
        error: Option<&xks_client::Error>,
    ) {
        let l = XksCallLabels {
            custom_key_store_id: store.to_owned(),
            operation,
        };
        self.xks_requests.get_or_create(&l).inc();
        self.xks_latency
            .get_or_create(&l)
            .observe(latency.as_secs_f64());
        if let Some(e) = error {
            self.xks_errors
                .get_or_create(&XksErrorLabels {
                    custom_key_store_id: store.to_owned(),
                    operation,
                    retryable: if e.is_retryable() { "true" } else { "false" },
                })
                .inc();
            let s = StoreLabels {
                custom_key_store_id: store.to_owned(),
            };
            if matches!(e, xks_client::Error::Timeout { .. }) {
                self.xks_timeouts.get_or_create(&s).inc();
            }
            if e.kind() == xks_client::ErrorKind::Throttled {
                self.xks_throttle.get_or_create(&s).inc();
            }
        }
    }

    /// The text exposition, with these custom key stores' gauges.
    pub fn encode(&self, stores: &[StoreReport]) -> String {
        self.audit.refresh();
        self.shell_metrics.refresh(&self.shell);
        self.xks_states.clear();
        self.xks_credential_age.clear();
        self.xks_certificate_days.clear();
        for r in stores {
            let store = StoreLabels {
                custom_key_store_id: r.id.clone(),
            };
            if let Some(state) = r.state {
                for s in STATES {
                    self.xks_states
                        .get_or_create(&StateLabels {
                            custom_key_store_id: r.id.clone(),
                            state: s,
                        })
                        .set(i64::from(s == state));
                }
            }
            if let Some(age) = r.credential_age_seconds {
                self.xks_credential_age
                    .get_or_create(&store)
                    .set(age.max(0.0) as i64);
            }
            if let Some(days) = r.certificate_days_to_expire {
                self.xks_certificate_days.get_or_create(&store).set(days);
            }
            if let Some((attempts, retries)) = r.attempts_and_retries {
                let mut seen = self
                    .xks_attempts_seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let last = seen.entry(r.id.clone()).or_default();
                self.xks_attempts
                    .get_or_create(&store)
                    .inc_by(attempts.saturating_sub(last.0));
                self.xks_retries
                    .get_or_create(&store)
                    .inc_by(retries.saturating_sub(last.1));
                *last = (attempts.max(last.0), retries.max(last.1));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// What a scrape reports of one custom key store.
#[derive(Debug, Clone, Default)]
pub struct StoreReport {
    pub id: String,
    /// The connection state, when the store has a connection.
    pub state: Option<&'static str>,
    pub credential_age_seconds: Option<f64>,
    pub certificate_days_to_expire: Option<f64>,
    /// The store's XKS attempts and retries so far (a running total).
    pub attempts_and_retries: Option<(u64, u64)>,
}

/// Decrements the in-flight gauge on drop.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.request("Encrypt", "success", Duration::from_micros(40));
        let text = m.encode(&[StoreReport {
            id: "cks-1234567890abcdef0".into(),
            state: Some("CONNECTED"),
            credential_age_seconds: Some(86_400.5),
            certificate_days_to_expire: Some(364.5),
            attempts_and_retries: Some((7, 2)),
        }]);
        for want in [
            "kms_build_info{version=",
            "kms_requests_total{operation=\"Encrypt\",outcome=\"success\"} 1",
            "kms_request_duration_seconds_bucket{le=\"0.00005\",operation=\"Encrypt\"} 1",
            "kms_xks_external_key_manager_states{custom_key_store_id=\"cks-1234567890abcdef0\",state=\"CONNECTED\"} 1",
            "kms_xks_external_key_manager_states{custom_key_store_id=\"cks-1234567890abcdef0\",state=\"FAILED\"} 0",
            "kms_xks_proxy_credential_age_seconds{custom_key_store_id=\"cks-1234567890abcdef0\"} 86400",
            "kms_xks_proxy_certificate_days_to_expire{custom_key_store_id=\"cks-1234567890abcdef0\"} 364.5",
            "kms_xks_proxy_attempts_total{custom_key_store_id=\"cks-1234567890abcdef0\"} 7",
            "kms_xks_proxy_retries_total{custom_key_store_id=\"cks-1234567890abcdef0\"} 2",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
