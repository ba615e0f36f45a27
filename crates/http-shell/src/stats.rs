//! What the shell counts for a server's metrics: open connections,
//! connections refused at a cap, TLS handshakes that failed or timed out.
//! Plain relaxed atomics, bumped once per connection (never per request).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The shell's counters ([`crate::serve_counted`] fills them).
#[derive(Debug, Default)]
pub struct ShellStats {
    open: AtomicI64,
    refused: AtomicU64,
    handshake_failures: AtomicU64,
    handshake_timeouts: AtomicU64,
}

/// A snapshot of [`ShellStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShellCounts {
    pub open_connections: i64,
    pub refused_connections: u64,
    pub tls_handshake_failures: u64,
    pub tls_handshake_timeouts: u64,
}

impl ShellStats {
    pub fn counts(&self) -> ShellCounts {
        ShellCounts {
            open_connections: self.open.load(Relaxed),
            refused_connections: self.refused.load(Relaxed),
            tls_handshake_failures: self.handshake_failures.load(Relaxed),
            tls_handshake_timeouts: self.handshake_timeouts.load(Relaxed),
        }
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn handshake_timed_out(&self) {
        self.handshake_timeouts.fetch_add(1, Relaxed);
    }

    /// Counts an admitted connection until the guard drops.
    pub(crate) fn opened(self: &Arc<Self>) -> OpenConnection {
        self.open.fetch_add(1, Relaxed);
        OpenConnection(Arc::clone(self))
    }
}

/// One open connection (the gauge goes down when it drops).
pub(crate) struct OpenConnection(Arc<ShellStats>);

impl OpenConnection {
    pub(crate) fn stats(&self) -> &ShellStats {
        &self.0
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// The counters as Prometheus metrics, mirrored at scrape time.
#[cfg(feature = "prometheus")]
#[derive(Default)]
pub struct ShellMetrics {
    open: prometheus_client::metrics::gauge::Gauge,
    refused: prometheus_client::metrics::counter::Counter,
    handshake_failures: prometheus_client::metrics::counter::Counter,
    handshake_timeouts: prometheus_client::metrics::counter::Counter,
    last: std::sync::Mutex<ShellCounts>,
}

#[cfg(feature = "prometheus")]
impl ShellMetrics {
    /// Registers `<prefix>_open_connections`, `_refused_connections_total`,
    /// `_tls_handshake_failures_total`, `_tls_handshake_timeouts_total`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "open_connections",
            "Open client connections",
            self.open.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused at the connection caps",
            self.refused.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed (bad certificate, protocol, cipher...)",
            self.handshake_failures.clone(),
        );
        registry.register(
            "tls_handshake_timeouts",
            "TLS handshakes that did not finish within their deadline",
            self.handshake_timeouts.clone(),
        );
    }

    /// Brings the metrics up to `stats` (call before encoding).
    pub fn refresh(&self, stats: &ShellStats) {
        let now = stats.counts();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.open.set(now.open_connections);
        self.refused.inc_by(
            now.refused_connections
                .saturating_sub(last.refused_connections),
        );
        self.handshake_failures.inc_by(
            now.tls_handshake_failures
                .saturating_sub(last.tls_handshake_failures),
        );
        self.handshake_timeouts.inc_by(
            now.tls_handshake_timeouts
                .saturating_sub(last.tls_handshake_timeouts),
        );
        *last = now;
    }
}
