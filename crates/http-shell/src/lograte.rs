//! Rate-limited warnings and the accept-error backoff: a flood of failing
//! accepts or refused connections gives a bounded number of log lines and
//! no busy loop.

use std::time::{Duration, Instant};

/// At most one line per this period for one kind of event.
pub const LOG_PERIOD: Duration = Duration::from_secs(10);

/// Lets one line through per [`LOG_PERIOD`], counting the ones held back.
#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(n)`: write a line now, `n` events were held back since the last
    /// one; `None`: stay silent.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < LOG_PERIOD => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// First and largest pause after a failed accept.
pub(crate) const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
pub(crate) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Exponential backoff over consecutive accept failures, reset by a success.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    consecutive: u32,
}

impl AcceptBackoff {
    pub(crate) fn failed(&mut self) -> Duration {
        let d = ACCEPT_BACKOFF_MIN.saturating_mul(1u32 << self.consecutive.min(16));
        self.consecutive = self.consecutive.saturating_add(1);
        d.min(ACCEPT_BACKOFF_MAX)
    }
    pub(crate) fn succeeded(&mut self) {
        self.consecutive = 0;
    }
}

/// Accept errors that mean the process is out of file descriptors (shedding
/// an idle connection frees one).
pub(crate) fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_held_back() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        let mut lines = 1;
        for i in 1..10_000u64 {
            if l.allow(t0 + Duration::from_millis(i)).is_some() {
                lines += 1;
            }
        }
        assert_eq!(lines, 1, "10 s of events within one period: one line");
        assert_eq!(l.allow(t0 + LOG_PERIOD), Some(9_999));
        assert_eq!(l.allow(t0 + LOG_PERIOD), None);
    }

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut b = AcceptBackoff::default();
        assert_eq!(b.failed(), ACCEPT_BACKOFF_MIN);
        assert_eq!(b.failed(), ACCEPT_BACKOFF_MIN * 2);
        for _ in 0..40 {
            assert!(b.failed() <= ACCEPT_BACKOFF_MAX);
        }
        assert_eq!(b.failed(), ACCEPT_BACKOFF_MAX);
        b.succeeded();
        assert_eq!(b.failed(), ACCEPT_BACKOFF_MIN);
    }

    #[test]
    fn emfile_and_enfile_are_fd_exhaustion() {
        assert!(is_fd_exhaustion(&std::io::Error::from_raw_os_error(24)));
        assert!(is_fd_exhaustion(&std::io::Error::from_raw_os_error(23)));
        assert!(!is_fd_exhaustion(&std::io::Error::from_raw_os_error(104)));
    }
}
