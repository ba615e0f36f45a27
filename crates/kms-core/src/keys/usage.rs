//! Last usage of a key (GetKeyLastUsage): the last successful
//! cryptographic operation, recorded in memory per key on the hot path (one
//! uncontended per-key lock, no I/O) and written to the store in batches by
//! the background sweeper and at shutdown — never a database write per
//! request.

use crate::api::types::KeyLastUsageTrackingOperation;
use crate::api::Operation;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One recorded use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub operation: KeyLastUsageTrackingOperation,
    /// Epoch seconds.
    pub timestamp: f64,
    /// The KMS request id of the operation.
    pub request_id: String,
}

/// The operations GetKeyLastUsage tracks (the model's
/// `KeyLastUsageTrackingOperation`; GetPublicKey and DeriveSharedSecret's
/// peers aside, every cryptographic operation).
pub fn tracked(op: Operation) -> Option<KeyLastUsageTrackingOperation> {
    KeyLastUsageTrackingOperation::parse(op.name())
}

/// A key's last usage, shared by every cached snapshot of the key.
#[derive(Debug, Default)]
pub struct UsageCell {
    last: Mutex<Option<Usage>>,
    /// Set by [`UsageCell::record`], cleared when a flush takes the value.
    dirty: AtomicBool,
}

impl UsageCell {
    /// A cell holding `usage` as loaded from the store (not dirty).
    pub fn loaded(usage: Option<Usage>) -> UsageCell {
        UsageCell {
            last: Mutex::new(usage),
            dirty: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Usage>> {
        // The guarded value is replaced whole; poisoning cannot leave it
        // half-written.
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a use (keeps the latest by timestamp).
    pub fn record(&self, usage: Usage) {
        let mut last = self.lock();
        if last.as_ref().is_none_or(|l| l.timestamp <= usage.timestamp) {
            *last = Some(usage);
            self.dirty.store(true, Ordering::Release);
        }
    }

    pub fn get(&self) -> Option<Usage> {
        self.lock().clone()
    }

    /// The value to write if it changed since the last flush.
    pub fn take_dirty(&self) -> Option<Usage> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.get()
        } else {
            None
        }
    }

    /// A flush failed: the value must be written again.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(t: f64, op: KeyLastUsageTrackingOperation) -> Usage {
        Usage {
            operation: op,
            timestamp: t,
            request_id: format!("r{t}"),
        }
    }

    #[test]
    fn keeps_the_latest_and_flushes_once() {
        let c = UsageCell::default();
        assert_eq!(c.take_dirty(), None);
        c.record(u(2.0, KeyLastUsageTrackingOperation::Encrypt));
        c.record(u(1.0, KeyLastUsageTrackingOperation::Decrypt));
        assert_eq!(c.get().unwrap().timestamp, 2.0);
        assert_eq!(
            c.take_dirty().unwrap().operation,
            KeyLastUsageTrackingOperation::Encrypt
        );
        assert_eq!(c.take_dirty(), None);
        c.mark_dirty();
        assert!(c.take_dirty().is_some());
        let l = UsageCell::loaded(Some(u(5.0, KeyLastUsageTrackingOperation::Sign)));
        assert_eq!(l.take_dirty(), None);
        assert_eq!(l.get().unwrap().timestamp, 5.0);
    }

    #[test]
    fn tracked_operations_follow_the_model() {
        assert_eq!(
            tracked(Operation::Encrypt),
            Some(KeyLastUsageTrackingOperation::Encrypt)
        );
        assert_eq!(
            tracked(Operation::VerifyMac),
            Some(KeyLastUsageTrackingOperation::VerifyMac)
        );
        assert_eq!(tracked(Operation::GetPublicKey), None);
        assert_eq!(tracked(Operation::DescribeKey), None);
    }
}
