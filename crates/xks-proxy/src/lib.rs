//! xks-proxy: the XKS Proxy API v1.0.3 in front of pluggable key managers.
//!
//! Layout: [`service`] is the protocol core (no I/O), [`server`] the HTTP/TLS
//! shell, [`keystore`] the logical key stores and routing, [`backend`] the
//! key manager interface and the embedded software key manager, [`authz`]
//! secondary authorization, [`health`] cached deep health checks,
//! [`config`] the typed configuration, [`admin`] the key admin CLI.
#![forbid(unsafe_code)]

pub mod admin;
pub mod authz;
pub mod backend;
pub mod ciphertext;
pub mod config;
pub mod demo;
pub mod error;
pub mod health;
pub mod keystore;
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
    pub proxy: Arc<Proxy>,
    backends: HashMap<String, BackendHandle>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
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
    backends: HashMap<String, BackendHandle>,
) -> anyhow::Result<ProxyHandle> {
    let routing = Routing::build(cfg, &backends)?;
    let tls = match &cfg.server.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            t,
            cfg.server.http2,
        )?)),
        None => None,
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
        async {
            let _ = rx.await;
        },
    ));
    tracing::info!(%addr, tls = cfg.server.tls.is_some(), key_stores = cfg.key_stores.len(), "xks-proxy listening");
    Ok(ProxyHandle {
        addr,
        proxy,
        backends,
        shutdown: Some(tx),
        task,
    })
}

impl ProxyHandle {
    /// Applies a new configuration's key stores (credentials, allowed keys,
    /// rate limits, authorization rules) without dropping connections.
    /// Backends, TLS and the listen address need a restart.
    pub fn reload(&self, cfg: &Config) -> anyhow::Result<()> {
        if cfg.backends.len() != self.backends.len()
            || cfg
                .backends
                .iter()
                .any(|(n, b)| self.backends.get(n).is_none_or(|h| &h.config != b))
        {
            bail!("backend definitions changed: restart the proxy to apply them");
        }
        let routing = Routing::build(cfg, &self.backends)?;
        self.proxy.swap_routing(routing);
        Ok(())
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}
