//! xks-proxy: the XKS Proxy API v1.0.3 in front of pluggable key managers.
//!
//! Layout: [`service`] is the protocol core (no I/O), [`server`] the HTTP/TLS
//! shell, [`keystore`] the logical key stores and routing, [`backend`] the
//! key manager interface and the embedded software key manager, [`authz`]
//! secondary authorization, [`health`] cached deep health checks,
//! [`config`] the typed configuration, [`admin`] the key admin CLI.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod authz;
pub mod backend;
pub mod ciphertext;
pub mod config;
pub mod demo;
pub mod error;
pub mod health;
pub mod keystore;
pub mod metrics;
/// The development/test PKI (the `dev-pki` crate), re-exported for the demo and tests.
pub use dev_pki as pki;
pub mod server;
pub mod service;
pub mod tls;

use anyhow::{bail, Context};
use config::Config;
use keystore::{BackendHandle, Routing};
use service::{Proxy, Settings};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running proxy.
pub struct ProxyHandle {
    pub addr: SocketAddr,
    /// The metrics listener, when `[metrics]` is configured.
    pub metrics_addr: Option<SocketAddr>,
    pub proxy: Arc<Proxy>,
    pub metrics: Option<Arc<metrics::Metrics>>,
    backends: HashMap<String, BackendHandle>,
    tls: Option<tls::TlsReloader>,
    audit: Option<audit_sink::SinkGuard>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    metrics_task: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

fn settings(cfg: &Config) -> Settings {
    Settings {
        max_plaintext_bytes: cfg.server.max_plaintext_bytes,
        max_aad_bytes: cfg.server.max_aad_bytes,
        backend_timeout: Duration::from_millis(cfg.server.backend_timeout_ms),
        max_clock_skew: Duration::from_secs(cfg.server.max_clock_skew_secs),
        load_balancer_health_path: cfg.server.load_balancer_health_path.clone(),
        fleet_size: cfg.health.fleet_size,
        vendor: cfg.health.vendor.clone(),
        model: cfg.health.model.clone(),
    }
}

/// Opens the backends, binds the listener and starts serving.
/// `cfg` must already be validated (`Config::load` does it).
pub async fn start(cfg: &Config) -> anyhow::Result<ProxyHandle> {
    let backends = keystore::open_backends(cfg)?;
    start_with_backends(cfg, backends).await
}

/// Like [`start`], over backends opened by the caller (tests use this to
/// put a deliberately slow or failing key manager behind the proxy).
pub async fn start_with_backends(
    cfg: &Config,
    mut backends: HashMap<String, BackendHandle>,
) -> anyhow::Result<ProxyHandle> {
    let metrics = cfg
        .metrics
        .as_ref()
        .map(|_| Arc::new(metrics::Metrics::new()));
    if let Some(m) = &metrics {
        for (name, b) in backends.iter_mut() {
            b.backend = m.instrument(name, Arc::clone(&b.backend));
        }
    }
    let routing = Routing::build(cfg, &backends)?;
    let (tls, tls_reloader) = match &cfg.server.tls {
        Some(t) => {
            let (config, reloader) = tls::server_config(t, cfg.server.http2)?;
            (
                Some(tokio_rustls::TlsAcceptor::from(config)),
                Some(reloader),
            )
        }
        None => (None, None),
    };
    let (audit, audit_guard) = match &cfg.audit {
        Some(a) => {
            let (sink, guard) = audit_sink::AuditSink::open(a)
                .with_context(|| format!("opening the audit log {}", a.path.display()))?;
            if let Some(m) = &metrics {
                m.watch_audit(sink.clone());
            }
            (Some(sink), Some(guard))
        }
        None => (None, None),
    };
    let metrics_task = match (&cfg.metrics, &metrics) {
        (Some(mc), Some(m)) => {
            let listener = tokio::net::TcpListener::bind(mc.listen)
                .await
                .with_context(|| format!("binding the metrics listener {}", mc.listen))?;
            let addr = listener.local_addr()?;
            let (tx, rx) = oneshot::channel::<()>();
            let task = tokio::spawn(server::serve_metrics(listener, Arc::clone(m), async {
                let _ = rx.await;
            }));
            tracing::info!(%addr, "metrics listening");
            Some((addr, tx, task))
        }
        _ => None,
    };
    let budget = Duration::from_millis(cfg.server.backend_timeout_ms);
    for b in backends.values() {
        // Prime the cache, then keep it fresh in the background.
        b.health.refresh(budget.max(Duration::from_secs(5))).await;
        b.health
            .spawn_refresh(Duration::from_secs(cfg.health.refresh_secs), budget);
    }
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let proxy = Arc::new(Proxy::new(routing, settings(cfg)));
    let limits = http_shell::ShellLimits {
        max_body_bytes: cfg.server.max_body_bytes,
        request_timeout: Duration::from_millis(cfg.server.request_timeout_ms),
        max_header_bytes: 16 * 1024,
        connections: cfg.server.connections.limits(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(
        listener,
        tls,
        Arc::clone(&proxy),
        limits,
        server::Observers {
            audit,
            metrics: metrics.clone(),
        },
        async {
            let _ = rx.await;
        },
    ));
    tracing::info!(%addr, tls = cfg.server.tls.is_some(), key_stores = cfg.key_stores.len(), "xks-proxy listening");
    let metrics_addr = metrics_task.as_ref().map(|(a, _, _)| *a);
    Ok(ProxyHandle {
        addr,
        metrics_addr,
        proxy,
        metrics,
        backends,
        tls: tls_reloader,
        audit: audit_guard,
        shutdown: Some(tx),
        task,
        metrics_task: metrics_task.map(|(_, tx, t)| (tx, t)),
    })
}

impl ProxyHandle {
    /// Applies a new configuration (SIGHUP) without dropping connections:
    /// key stores (credentials, allowed keys, rate limits, authorization
    /// rules) and the TLS certificate, key and client CA. Everything is
    /// checked before anything changes: a bad configuration leaves the
    /// current one in force. Backends, the listen addresses, the audit and
    /// metrics settings need a restart.
    pub fn reload(&self, cfg: &Config) -> anyhow::Result<()> {
        let r = self.reload_inner(cfg);
        if let Some(m) = &self.metrics {
            m.reload(r.is_ok());
        }
        r
    }

    fn reload_inner(&self, cfg: &Config) -> anyhow::Result<()> {
        if cfg.backends.len() != self.backends.len()
            || cfg
                .backends
                .iter()
                .any(|(n, b)| self.backends.get(n).is_none_or(|h| &h.config != b))
        {
            bail!("backend definitions changed: restart the proxy to apply them");
        }
        let routing = Routing::build(cfg, &self.backends)?;
        match (&self.tls, &cfg.server.tls) {
            (Some(reloader), Some(t)) => reloader.reload(t)?,
            (None, None) => {}
            _ => bail!("switching between TLS and plain HTTP needs a restart"),
        }
        // TLS is in force now; the routing swap cannot fail.
        self.proxy.swap_routing(routing);
        Ok(())
    }

    /// Stops accepting connections, lets in-flight requests finish (within
    /// [`http_shell::SHUTDOWN_GRACE`]), then flushes the audit log.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        if let Some((tx, task)) = self.metrics_task.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
        if let Some(guard) = self.audit.take() {
            let _ = tokio::task::spawn_blocking(move || guard.close()).await;
        }
    }
}
