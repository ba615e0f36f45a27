//! A durable JSON-lines audit log with bounded buffering and rotation by
//! size, shared by kms-core (CloudTrail-format records) and xks-proxy (one
//! record per XKS request).
//!
//! Requests hand a serialized record to a bounded queue (awaiting room when
//! it is full: backpressure, never a silent drop); one writer thread drains
//! the queue in batches, appends, flushes and optionally `fsync`s once per
//! batch (group commit), and rotates the file when it would grow past
//! `max_file_bytes` (`audit.log` → `audit.log.1` → … → `audit.log.N`).
//!
//! When the file cannot be written, [`FailurePolicy`] decides: `FailClosed`
//! makes [`AuditSink::record`] fail (the server refuses requests) until a
//! later batch succeeds again; `CountAndContinue` counts the lost records and
//! lets requests through. The writer retries on every batch either way.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// What to do when the audit file cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Refuse requests while records cannot be written (the default: no
    /// request goes unaudited).
    #[default]
    FailClosed,
    /// Count the lost records and serve requests anyway.
    CountAndContinue,
}

/// How far a batch is pushed before the writer takes the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `write` + flush to the kernel (survives a process crash).
    Flush,
    /// Also `fdatasync` (survives a power loss), once per batch.
    #[default]
    Fsync,
}

/// Configuration of one sink (the `[audit]` section of both servers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The live file; rotated files get `.1`, `.2`, … appended.
    pub path: PathBuf,
    /// Rotate before the live file would grow past this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept (older ones are deleted).
    #[serde(default = "default_max_files")]
    pub max_files: u32,
    /// Records queued before requests wait for the writer.
    #[serde(default = "default_buffer")]
    pub buffer_records: usize,
    #[serde(default)]
    pub on_failure: FailurePolicy,
    #[serde(default)]
    pub durability: Durability,
}

fn default_max_file_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_max_files() -> u32 {
    10
}
fn default_buffer() -> usize {
    8192
}

impl SinkConfig {
    /// A configuration with the defaults for everything but the path.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SinkConfig {
            path: path.into(),
            max_file_bytes: default_max_file_bytes(),
            max_files: default_max_files(),
            buffer_records: default_buffer(),
            on_failure: FailurePolicy::default(),
            durability: Durability::default(),
        }
    }

    /// Checks the bounds (called by the servers' configuration loaders).
    pub fn validate(&self) -> Result<(), String> {
        if self.max_file_bytes < 4096 {
            return Err("audit max_file_bytes must be at least 4096".into());
        }
        if self.max_files == 0 || self.max_files > 1000 {
            return Err("audit max_files must be between 1 and 1000".into());
        }
        if self.buffer_records == 0 || self.buffer_records > 1_000_000 {
            return Err("audit buffer_records must be between 1 and 1000000".into());
        }
        Ok(())
    }
}

/// Why a record was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditError {
    /// The sink is failing and the policy is `FailClosed`.
    Unavailable,
    /// The record could not be serialized (a bug; never expected).
    Encode(String),
    /// The sink was closed.
    Closed,
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditError::Unavailable => f.write_str("the audit log cannot be written"),
            AuditError::Encode(e) => write!(f, "audit record could not be encoded: {e}"),
            AuditError::Closed => f.write_str("the audit log is closed"),
        }
    }
}

impl std::error::Error for AuditError {}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records written to the file.
    pub written: AtomicU64,
    /// Records lost (write failures under `CountAndContinue`, or queued
    /// records of a failed batch).
    pub lost: AtomicU64,
    /// Failed batch writes.
    pub write_failures: AtomicU64,
    /// Rotations done.
    pub rotations: AtomicU64,
    /// Requests refused because the sink was failing (`FailClosed`).
    pub refused: AtomicU64,
}

struct Shared {
    healthy: AtomicBool,
    stats: SinkStats,
}

/// A running sink. Cheap to clone; [`AuditSink::close`] (or dropping the
/// last clone of the [`SinkGuard`]) drains and flushes.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    policy: FailurePolicy,
}

enum Msg {
    Line(Vec<u8>),
    /// Write what is queued, then stop.
    Close,
}

/// Owns the writer thread: closing it flushes every queued record.
pub struct SinkGuard {
    thread: Mutex<Option<JoinHandle<()>>>,
    tx: mpsc::Sender<Msg>,
}

impl SinkGuard {
    /// Stops taking records, writes the queued ones and waits for the
    /// writer. Blocking: call from a blocking context or at exit.
    pub fn close(&self) {
        // Records queued before the close are written; later ones get
        // `AuditError::Closed`.
        // `try_send` rather than `blocking_send`: close may run on a runtime
        // thread (a guard dropped in async code), where blocking_send panics.
        while let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(Msg::Close) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.close();
    }
}

impl AuditSink {
    /// Opens (creating as needed) the file and starts the writer thread.
    pub fn open(cfg: &SinkConfig) -> std::io::Result<(AuditSink, SinkGuard)> {
        cfg.validate().map_err(std::io::Error::other)?;
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&cfg.path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = mpsc::channel(cfg.buffer_records);
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            stats: SinkStats::default(),
        });
        let writer = Writer {
            cfg: cfg.clone(),
            file: Some(file),
            size,
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))?;
        let sink = AuditSink {
            tx,
            shared,
            policy: cfg.on_failure,
        };
        let guard = SinkGuard {
            thread: Mutex::new(Some(thread)),
            tx: sink.tx.clone(),
        };
        Ok((sink, guard))
    }

    /// Queues one record (one JSON line). Waits while the queue is full.
    /// Fails only under `FailClosed` while the file cannot be written.
    pub async fn record<T: Serialize + ?Sized>(&self, record: &T) -> Result<(), AuditError> {
        let line = encode(record)?;
        if self.refuses() {
            self.refuse(line)
        } else {
            // Under CountAndContinue a failing sink still gets the record:
            // the writer retries the file on every batch.
            self.tx
                .send(Msg::Line(line))
                .await
                .map_err(|_| AuditError::Closed)
        }
    }

    /// Like [`AuditSink::record`] for callers outside the async runtime
    /// (background jobs on blocking threads).
    pub fn record_blocking<T: Serialize + ?Sized>(&self, record: &T) -> Result<(), AuditError> {
        let line = encode(record)?;
        if self.refuses() {
            self.refuse(line)
        } else {
            self.tx
                .blocking_send(Msg::Line(line))
                .map_err(|_| AuditError::Closed)
        }
    }

    /// The record of a refused request still goes to the writer when there
    /// is room: it is the probe whose success brings the sink back.
    fn refuse(&self, line: Vec<u8>) -> Result<(), AuditError> {
        self.shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.try_send(Msg::Line(line));
        Err(AuditError::Unavailable)
    }

    /// Whether the last batch was written (readiness checks use this).
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Whether requests must be refused now (`FailClosed` and failing).
    pub fn refuses(&self) -> bool {
        self.policy == FailurePolicy::FailClosed && !self.is_healthy()
    }

    pub fn stats(&self) -> &SinkStats {
        &self.shared.stats
    }

    /// Records waiting for the writer.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// CloudTrail's `eventTime` format: `2025-01-31T23:59:59Z` (UTC, whole
/// seconds).
pub fn event_time(t: std::time::SystemTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let t = time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(FORMAT).unwrap_or_default()
}

fn encode<T: Serialize + ?Sized>(record: &T) -> Result<Vec<u8>, AuditError> {
    let mut line = serde_json::to_vec(record).map_err(|e| AuditError::Encode(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Audit records name principals and keys: owner-only.
        o.mode(0o600);
    }
    o.open(path)
}

/// Rotated file number `n` of `path`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

struct Writer {
    cfg: SinkConfig,
    file: Option<File>,
    size: u64,
    shared: Arc<Shared>,
}

/// Most records taken in one batch (one write + one fsync).
const BATCH: usize = 1024;

/// How long the writer lets records gather after the first one of a batch.
/// Waking the writer per record (a context switch each) cost more than the
/// rest of the audit path together; requests never wait for it (a record
/// is acknowledged when queued), so durability moves by at most this.
const BATCH_LINGER: std::time::Duration = std::time::Duration::from_millis(2);

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
        let mut closing = false;
        loop {
            if !closing {
                match rx.blocking_recv() {
                    Some(Msg::Line(l)) => {
                        batch.push(l);
                        std::thread::sleep(BATCH_LINGER);
                    }
                    Some(Msg::Close) | None => closing = true,
                }
            }
            if closing {
                // Refuse new records; what is queued still gets written.
                rx.close();
            }
            let mut drained = false;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(Msg::Line(l)) => batch.push(l),
                    Ok(Msg::Close) => {
                        closing = true;
                        rx.close();
                    }
                    Err(_) => {
                        drained = true;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                if closing && drained {
                    break;
                }
                continue;
            }
            let n = batch.len() as u64;
            match self.write_batch(&batch) {
                Ok(()) => {
                    self.shared.stats.written.fetch_add(n, Ordering::Relaxed);
                    if !self.shared.healthy.swap(true, Ordering::Relaxed) {
                        tracing::warn!(path = %self.cfg.path.display(), "audit log writable again");
                    }
                }
                Err(e) => {
                    self.shared.stats.lost.fetch_add(n, Ordering::Relaxed);
                    self.shared
                        .stats
                        .write_failures
                        .fetch_add(1, Ordering::Relaxed);
                    if self.shared.healthy.swap(false, Ordering::Relaxed) {
                        tracing::error!(path = %self.cfg.path.display(), error = %e, lost = n,
                            policy = ?self.cfg.on_failure, "audit log write failed");
                    }
                    // Reopen on the next batch (the file may have been
                    // removed or the disk freed).
                    self.file = None;
                }
            }
            batch.clear();
            if closing && drained {
                break;
            }
        }
    }

    fn write_batch(&mut self, batch: &[Vec<u8>]) -> std::io::Result<()> {
        let mut start = 0;
        while start < batch.len() {
            // Take as many lines as fit before the rotation threshold (at
            // least one, so that an oversized record still goes out).
            let mut end = start;
            let mut bytes = 0u64;
            while end < batch.len() {
                let len = batch[end].len() as u64;
                if end > start && self.size + bytes + len > self.cfg.max_file_bytes {
                    break;
                }
                if end == start && self.size > 0 && self.size + len > self.cfg.max_file_bytes {
                    break;
                }
                bytes += len;
                end += 1;
            }
            if end == start {
                self.rotate()?;
                continue;
            }
            let mut buf = Vec::with_capacity(bytes as usize);
            for l in &batch[start..end] {
                buf.extend_from_slice(l);
            }
            let fsync = self.cfg.durability == Durability::Fsync;
            let file = self.file()?;
            file.write_all(&buf)?;
            if fsync {
                file.sync_data()?;
            }
            self.size += bytes;
            start = end;
        }
        Ok(())
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let f = open_append(&self.cfg.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("audit file not open"))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        let path = &self.cfg.path;
        let last = rotated_path(path, self.cfg.max_files);
        if last.exists() {
            std::fs::remove_file(&last)?;
        }
        for n in (1..self.cfg.max_files).rev() {
            let from = rotated_path(path, n);
            if from.exists() {
                std::fs::rename(&from, rotated_path(path, n + 1))?;
            }
        }
        std::fs::rename(path, rotated_path(path, 1))?;
        self.size = 0;
        self.shared.stats.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The sink's counters as Prometheus counters (both servers export them).
#[cfg(feature = "prometheus")]
pub mod metrics {
    use super::AuditSink;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Mutex, PoisonError};

    /// Mirrors a sink's [`super::SinkStats`] into counters at scrape time.
    #[derive(Default)]
    pub struct AuditMetrics {
        written: Counter,
        lost: Counter,
        refused: Counter,
        write_failures: Counter,
        /// The stats at the previous scrape.
        last: Mutex<[u64; 4]>,
        sink: Mutex<Option<AuditSink>>,
    }

    impl AuditMetrics {
        /// Registers `<prefix>_audit_records_written_total` and the others.
        pub fn register(&self, registry: &mut Registry) {
            registry.register(
                "audit_records_written",
                "Audit records written to the audit log",
                self.written.clone(),
            );
            registry.register(
                "audit_records_lost",
                "Audit records that could not be written",
                self.lost.clone(),
            );
            registry.register(
                "audit_refused_requests",
                "Requests refused because the audit log could not be written (fail closed)",
                self.refused.clone(),
            );
            registry.register(
                "audit_write_failures",
                "Failed audit log batch writes",
                self.write_failures.clone(),
            );
        }

        /// Mirrors this sink from now on.
        pub fn watch(&self, sink: AuditSink) {
            *self.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        }

        /// Brings the counters up to the sink's stats (call before encoding).
        pub fn refresh(&self) {
            let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(sink) = sink.as_ref() else { return };
            let s = sink.stats();
            let now = [
                s.written.load(Relaxed),
                s.lost.load(Relaxed),
                s.refused.load(Relaxed),
                s.write_failures.load(Relaxed),
            ];
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let counters = [
                &self.written,
                &self.lost,
                &self.refused,
                &self.write_failures,
            ];
            for ((c, n), l) in counters.iter().zip(now).zip(last.iter_mut()) {
                c.inc_by(n.saturating_sub(*l));
                *l = n.max(*l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    #[tokio::test]
    async fn records_are_json_lines_flushed_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/audit.log");
        let (sink, guard) = AuditSink::open(&SinkConfig::new(&path)).unwrap();
        for i in 0..100 {
            sink.record(&json!({"n": i, "s": "x\ny"})).await.unwrap();
        }
        drop(sink);
        tokio::task::spawn_blocking(move || guard.close())
            .await
            .unwrap();
        let got = lines(&path);
        assert_eq!(got.len(), 100);
        assert_eq!(got[99]["n"], 99);
        assert_eq!(got[0]["s"], "x\ny");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut cfg = SinkConfig::new(&path);
        cfg.max_file_bytes = 4096;
        cfg.max_files = 2;
        cfg.durability = Durability::Flush;
        let (sink, guard) = AuditSink::open(&cfg).unwrap();
        let pad = "p".repeat(90);
        for i in 0..400 {
            sink.record(&json!({"n": i, "pad": pad})).await.unwrap();
        }
        let stats_sink = sink.clone();
        drop(sink);
        tokio::task::spawn_blocking(move || guard.close())
            .await
            .unwrap();
        for p in [&path, &rotated_path(&path, 1), &rotated_path(&path, 2)] {
            let len = std::fs::metadata(p).unwrap().len();
            assert!(len <= 4096, "{} is {len} bytes", p.display());
        }
        assert!(!rotated_path(&path, 3).exists());
        assert!(stats_sink.stats().rotations.load(Ordering::Relaxed) >= 3);
        // The newest records are in the live file, in order, none torn.
        let live = lines(&path);
        assert_eq!(live.last().unwrap()["n"], 399);
        let older = lines(&rotated_path(&path, 1));
        assert_eq!(
            older.last().unwrap()["n"].as_u64().unwrap() + 1,
            live[0]["n"].as_u64().unwrap()
        );
    }

    /// A non-empty directory where the oldest rotated file should be makes
    /// the next rotation fail (with `max_files = 1`).
    fn break_rotation(path: &Path) -> PathBuf {
        let blocker = rotated_path(path, 1);
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("x"), b"x").unwrap();
        blocker
    }

    async fn wait_health(sink: &AuditSink, healthy: bool) {
        for _ in 0..500 {
            if sink.is_healthy() == healthy {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("sink never became healthy={healthy}");
    }

    fn small_cfg(path: &Path, policy: FailurePolicy) -> SinkConfig {
        let mut cfg = SinkConfig::new(path);
        cfg.max_file_bytes = 4096;
        cfg.max_files = 1;
        cfg.on_failure = policy;
        cfg
    }

    #[tokio::test]
    async fn fail_closed_refuses_then_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let (sink, guard) = AuditSink::open(&small_cfg(&path, FailurePolicy::FailClosed)).unwrap();
        sink.record(&json!({"n": 0})).await.unwrap();
        let blocker = break_rotation(&path);
        sink.record(&json!({"big": "b".repeat(5000)}))
            .await
            .unwrap();
        wait_health(&sink, false).await;
        assert!(sink.refuses());
        assert_eq!(
            sink.record(&json!({"n": 1})).await,
            Err(AuditError::Unavailable)
        );
        assert!(sink.stats().refused.load(Ordering::Relaxed) >= 1);
        // The disk is fixed: the next refused request's record is the probe
        // that brings the sink back.
        std::fs::remove_dir_all(&blocker).unwrap();
        let _ = sink.record(&json!({"n": 2})).await;
        wait_health(&sink, true).await;
        sink.record(&json!({"n": 3})).await.unwrap();
        let s = sink.clone();
        drop(sink);
        tokio::task::spawn_blocking(move || guard.close())
            .await
            .unwrap();
        drop(s);
        let got = lines(&path);
        assert_eq!(got.last().unwrap()["n"], 3);
    }

    #[tokio::test]
    async fn count_and_continue_counts_lost_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let (sink, guard) =
            AuditSink::open(&small_cfg(&path, FailurePolicy::CountAndContinue)).unwrap();
        sink.record(&json!({"n": 0})).await.unwrap();
        break_rotation(&path);
        sink.record(&json!({"big": "b".repeat(5000)}))
            .await
            .unwrap();
        wait_health(&sink, false).await;
        assert!(!sink.refuses());
        sink.record(&json!({"n": 1})).await.unwrap();
        let s = sink.clone();
        drop(sink);
        tokio::task::spawn_blocking(move || guard.close())
            .await
            .unwrap();
        assert!(s.stats().lost.load(Ordering::Relaxed) >= 1);
        assert!(s.stats().write_failures.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn event_time_is_cloudtrail_format() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(event_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            event_time(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
            "2015-08-30T12:36:00Z"
        );
        assert_eq!(
            event_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn config_bounds_and_names() {
        let c: SinkConfig =
            toml_like(r#"{"path":"/x","on_failure":"count-and-continue","durability":"flush"}"#);
        assert_eq!(c.on_failure, FailurePolicy::CountAndContinue);
        assert_eq!(c.durability, Durability::Flush);
        assert!(c.validate().is_ok());
        let mut bad = c.clone();
        bad.max_files = 0;
        assert!(bad.validate().is_err());
        assert!(serde_json::from_str::<SinkConfig>(r#"{"path":"/x","typo":1}"#).is_err());
    }

    fn toml_like(s: &str) -> SinkConfig {
        serde_json::from_str(s).unwrap()
    }
}
