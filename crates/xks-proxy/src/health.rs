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
use std::time::{Duration, Instant};

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
            Err(_) => vec![InstanceHealth {
                id: "unknown".into(),
                model: "unknown".into(),
                status: HealthStatus::Unavailable,
                detail: Some("health check timed out".into()),
            }],
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
