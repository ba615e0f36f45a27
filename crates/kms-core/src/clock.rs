//! KMS timestamps: seconds since the epoch, as floats on the wire.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in epoch seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
