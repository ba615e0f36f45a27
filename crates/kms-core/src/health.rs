//! Liveness (`GET /healthz`) and readiness (`GET /readyz`) for load
//! balancers and orchestrators. Never audited, never authenticated, and
//! they reveal no key: only the state of each dependency.
//!
//! Readiness is 503 when kms-core cannot serve requests: the key store
//! (a real read) or the audit log under fail-closed. Custom key stores are
//! reported one by one (their connection state, as DescribeCustomKeyStores
//! shows it) but do not make kms-core unready: keys outside them still work.

use crate::service::Kms;
use serde_json::{json, Value};

/// Liveness: the process serves HTTP.
pub fn liveness() -> (u16, Value) {
    (200, json!({"status": "ok"}))
}

/// Readiness with one entry per dependency.
pub fn readiness(kms: &Kms) -> (u16, Value) {
    let mut ready = true;
    let store = match kms
        .store()
        .list_aliases("000000000000", "us-east-1", None, 1, None)
    {
        Ok(_) => json!({"status": "ok"}),
        Err(e) => {
            ready = false;
            tracing::warn!(error = %e, "readiness: the store does not answer");
            json!({"status": "failing", "detail": "the key store does not answer"})
        }
    };
    // The store cannot open without the root key: once open, it is loaded.
    let root_key = json!({"status": "ok", "detail": "loaded at startup"});
    let audit = match kms.audit() {
        None => json!({"status": "disabled"}),
        Some(a) if a.is_healthy() => json!({"status": "ok"}),
        Some(a) => {
            if a.refuses() {
                ready = false;
            }
            json!({"status": "failing", "detail": "the audit log cannot be written"})
        }
    };
    let stores: Vec<Value> = kms
        .store()
        .all_custom_key_stores()
        .iter()
        .map(|r| {
            let (state, error) = kms.xks().describe(&r.id);
            json!({
                "customKeyStoreId": r.id,
                "connectionState": state,
                "connectionErrorCode": error,
                "status": match (state, error) {
                    ("CONNECTED", None) | ("DISCONNECTED", None) => "ok",
                    ("CONNECTING", _) => "starting",
                    _ => "failing",
                },
            })
        })
        .collect();
    (
        if ready { 200 } else { 503 },
        json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": {
                "store": store,
                "rootKey": root_key,
                "auditLog": audit,
                "customKeyStores": stores,
            }
        }),
    )
}
