//! Deep health checks, cached.
//!
//! A background task runs each backend's deep check (a real encrypt and
//! decrypt with a health-check key) every `refresh` interval; requests are
//! answered from that result while it is at most 60 s old (the spec's
//! limit). Older or missing results are recomputed inline within a budget,
//! so a slow key manager never makes GetHealthStatus exceed it.

use crate::backend::{HealthStatus, InstanceHealth, KeyManager};
use arc_swap::ArcSwapOption;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Results may be served for at most this long (spec: "MUST not be older
/// than one minute").
pub const MAX_AGE: Duration = Duration::from_secs(60);

struct Snapshot {
    at: Instant,
    entries: Vec<InstanceHealth>,
}

pub struct HealthMonitor {
    backend: Arc<dyn KeyManager>,
    cached: ArcSwapOption<Snapshot>,
}

impl HealthMonitor {
    pub fn new(backend: Arc<dyn KeyManager>) -> Arc<Self> {
        Arc::new(HealthMonitor {
            backend,
            cached: ArcSwapOption::empty(),
        })
    }

    /// Starts the periodic refresh; it stops when the monitor is dropped.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration, budget: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(m) = weak.upgrade() else { break };
                // The background check gets a generous budget: it is off the request path.
                let _ = m.refresh(budget.max(Duration::from_secs(5))).await;
            }
        });
    }

    /// Runs a deep check now (within `budget`) and caches it.
    pub async fn refresh(&self, budget: Duration) -> Vec<InstanceHealth> {
        let entries = match tokio::time::timeout(budget, self.backend.health()).await {
            Ok(entries) => entries,
            // Keep the instances we know of, marked unavailable.
            Err(_) => match self.cached.load_full() {
                Some(previous) if !previous.entries.is_empty() => previous
                    .entries
                    .iter()
                    .map(|e| InstanceHealth {
                        status: HealthStatus::Unavailable,
                        detail: Some("health check timed out".into()),
                        ..e.clone()
                    })
                    .collect(),
                _ => vec![InstanceHealth {
                    id: self.backend.vendor().to_owned(),
                    model: "not reachable".into(),
                    status: HealthStatus::Unavailable,
                    detail: Some("health check timed out".into()),
                }],
            },
        };
        for e in &entries {
            if e.status != HealthStatus::Active {
                tracing::warn!(ekm = %e.id, status = e.status.as_str(), detail = e.detail.as_deref().unwrap_or("-"), "key manager not healthy");
            }
        }
        self.cached.store(Some(Arc::new(Snapshot {
            at: Instant::now(),
            entries: entries.clone(),
        })));
        entries
    }

    /// The latest result if fresh enough, else a new check within `budget`.
    pub async fn current(&self, budget: Duration) -> Vec<InstanceHealth> {
        if let Some(s) = self.cached.load_full() {
            if s.at.elapsed() <= MAX_AGE {
                return s.entries.clone();
            }
        }
        self.refresh(budget).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendError, KeyInfo, Sealed};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, Ordering};
    use xks_wire::ExternalKeyId;
    use zeroize::Zeroizing;

    struct Flaky {
        hang: AtomicBool,
    }

    #[async_trait]
    impl KeyManager for Flaky {
        fn vendor(&self) -> &str {
            "flaky"
        }
        async fn key_info(&self, _: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
            Err(BackendError::KeyNotFound)
        }
        async fn encrypt(
            &self,
            _: &ExternalKeyId,
            _: &[u8],
            _: &[u8],
            _: &[u8],
        ) -> Result<Sealed, BackendError> {
            Err(BackendError::KeyNotFound)
        }
        async fn decrypt(
            &self,
            _: &ExternalKeyId,
            _: &[u8],
            _: &[u8],
            _: &[u8],
            _: &[u8],
            _: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
            Err(BackendError::KeyNotFound)
        }
        async fn health(&self) -> Vec<InstanceHealth> {
            if self.hang.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            vec![InstanceHealth {
                id: "hsm-1".into(),
                model: "m".into(),
                status: HealthStatus::Active,
                detail: None,
            }]
        }
    }

    #[tokio::test(start_paused = true)]
    async fn caches_for_at_most_a_minute_and_keeps_ids_on_timeout() {
        let backend = Arc::new(Flaky {
            hang: AtomicBool::new(false),
        });
        let m = HealthMonitor::new(backend.clone());
        let budget = Duration::from_millis(100);
        assert_eq!(m.current(budget).await[0].status, HealthStatus::Active);
        backend.hang.store(true, Ordering::Relaxed);
        // Fresh enough: served from the cache even though the backend hangs.
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(m.current(budget).await[0].status, HealthStatus::Active);
        // Too old: recomputed within the budget, the known instance marked unavailable.
        tokio::time::advance(Duration::from_secs(2)).await;
        let now = m.current(budget).await;
        assert_eq!(now.len(), 1);
        assert_eq!(
            (now[0].id.as_str(), now[0].status),
            ("hsm-1", HealthStatus::Unavailable)
        );
    }
}
