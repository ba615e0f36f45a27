//! KMS timestamps: seconds since the epoch, as floats on the wire.
//!
//! The service's clock is the system clock plus an offset, so tests and
//! demos can move time forward (automatic rotation, deletion windows)
//! without waiting: [`set_offset`], or `KMS_CORE_CLOCK_OFFSET_SECONDS` for
//! the binary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The offset in seconds, as the bits of an `f64` (0 bits = 0.0).
static OFFSET: AtomicU64 = AtomicU64::new(0);

/// Now, in epoch seconds (the system clock plus the offset).
pub fn now() -> f64 {
    let system = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    system + offset()
}

/// The current offset in seconds.
pub fn offset() -> f64 {
    f64::from_bits(OFFSET.load(Ordering::Relaxed))
}

/// Moves the service's clock `seconds` away from the system clock
/// (process-wide; for tests and demos).
pub fn set_offset(seconds: f64) {
    let s = if seconds.is_finite() { seconds } else { 0.0 };
    OFFSET.store(s.to_bits(), Ordering::Relaxed);
}
