//! A small load generator: keep-alive HTTP/1.1 (optionally TLS)
//! connections replaying a pool of prepared requests, closed loop
//! (`concurrency` connections back to back) or open loop (`rate`
//! requests/s). In open loop a request that had to wait for a busy
//! connection is timed from its scheduled time (no coordinated omission);
//! the generator's own 1 ms timer granularity is not counted. Used by
//! `xks-conformance load` (XKS) and `kms-load` (kms-core).
//!
//! The pool is prepared up front (signing costs the generator CPU that
//! would otherwise compete with the server on a small machine) and
//! re-prepared every 60 s through the caller's `resign` function, so
//! SigV4 signatures stay inside the 5-minute window.
#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub server_name: String,
}

/// How the load is shaped.
#[derive(Debug, Clone)]
pub struct Shape {
    pub concurrency: usize,
    /// Open-loop rate (requests/s); closed loop when `None`.
    pub rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
}

/// One ready-to-send POST.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: String,
    pub body: Bytes,
    pub headers: http::HeaderMap,
}

/// Re-signs a pool (called every 60 s).
pub type Resign = Arc<dyn Fn(&[Prepared]) -> anyhow::Result<Vec<Prepared>> + Send + Sync>;

/// Throughput and latency of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub requests: u64,
    pub seconds: f64,
    pub achieved_rps: f64,
    pub target_rps: Option<f64>,
    pub concurrency: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Failed requests by "status errorName/__type" (or transport error).
    pub errors: BTreeMap<String, u64>,
    /// Requests slower than KMS's 250 ms per-attempt timeout.
    pub over_250ms: u64,
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(s: &Target) -> anyhow::Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(s.addr)
            .await
            .with_context(|| format!("connecting to {}", s.addr))?;
        tcp.set_nodelay(true)?;
        let sender = match &s.tls {
            Some(tls) => {
                let name = ServerName::try_from(s.server_name.clone())?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                    .connect(name, tcp)
                    .await
                    .context("TLS handshake")?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                sender
            }
            None => {
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(conn);
                sender
            }
        };
        Ok(Conn { sender })
    }

    pub async fn send(
        &mut self,
        path: &str,
        body: Bytes,
        headers: http::HeaderMap,
    ) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let mut req = http::Request::post(path).body(Full::new(body))?;
        *req.headers_mut() = headers;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// "status name" of an error reply: the XKS `errorName` or the AWS JSON
/// `__type`.
pub fn error_key(status: u16, body: &[u8]) -> String {
    let name = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v["errorName"]
                .as_str()
                .or_else(|| v["__type"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "-".into());
    format!("{status} {name}")
}

/// The `p` quantile (0..=1) of sorted latencies.
pub fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    u64::from(sorted[idx.min(sorted.len() - 1)])
}

/// Runs the load and returns the report.
pub async fn run(
    s: Target,
    shape: Shape,
    initial: Vec<Prepared>,
    first_conn: Option<Conn>,
    resign: Resign,
) -> anyhow::Result<Report> {
    if shape.concurrency == 0 || initial.is_empty() {
        bail!("concurrency and the request pool must not be empty");
    }
    if shape.duration > Duration::from_secs(3600) {
        bail!("the duration is limited to one hour");
    }
    let pool = Arc::new(Mutex::new(Arc::new(initial)));
    let mut first = first_conn;
    let settings = Arc::new(s);
    let shape = Arc::new(shape);

    // Re-sign the pool every 60 s so that long runs stay inside the skew window.
    let resigner = {
        let pool = Arc::clone(&pool);
        let resign = Arc::clone(&resign);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let current = pool.lock().map(|p| Arc::clone(&p));
                if let Ok(current) = current {
                    if let Ok(fresh) = resign(&current) {
                        if let Ok(mut p) = pool.lock() {
                            *p = Arc::new(fresh);
                        }
                    }
                }
            }
        })
    };

    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + shape.warmup;
    let end = measure_from + shape.duration;
    let ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(shape.concurrency);
    for c in 0..shape.concurrency {
        let settings = Arc::clone(&settings);
        let shape = Arc::clone(&shape);
        let pool = Arc::clone(&pool);
        let ticket = Arc::clone(&ticket);
        let conn = if c == 0 { first.take() } else { None };
        tasks.push(tokio::spawn(async move {
            let mut conn = match conn {
                Some(c) => c,
                None => Conn::open(&settings).await?,
            };
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = c;
            let mut free_since = Instant::now();
            loop {
                let scheduled = match shape.rate {
                    Some(rate) => {
                        let n = ticket.fetch_add(1, Ordering::Relaxed);
                        let at = start + Duration::from_secs_f64(n as f64 / rate);
                        if at >= end {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        // A request that waited for this connection to become
                        // free counts from its scheduled time (no coordinated
                        // omission); one that only waited for the generator's
                        // 1 ms timer counts from when it was actually sent.
                        if free_since > at {
                            at
                        } else {
                            Instant::now()
                        }
                    }
                    None => {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        now
                    }
                };
                let current = pool
                    .lock()
                    .map(|p| Arc::clone(&p))
                    .map_err(|_| anyhow::anyhow!("pool lock"))?;
                let p = &current[i % current.len()];
                let (path, body, headers) = (&p.path, &p.body, &p.headers);
                i += shape.concurrency;
                let result = conn.send(path, body.clone(), headers.clone()).await;
                let done = Instant::now();
                free_since = done;
                if scheduled < measure_from {
                    if result.is_err() {
                        conn = Conn::open(&settings).await?;
                    }
                    continue;
                }
                let micros = done
                    .duration_since(scheduled)
                    .as_micros()
                    .min(u128::from(u32::MAX)) as u32;
                lat.push(micros);
                match result {
                    Ok((200, _)) => {}
                    Ok((status, body)) => *errors.entry(error_key(status, &body)).or_default() += 1,
                    Err(e) => {
                        *errors.entry(format!("transport: {e}")).or_default() += 1;
                        conn = Conn::open(&settings).await?;
                    }
                }
            }
            Ok::<_, anyhow::Error>((lat, errors))
        }));
    }
    let mut all: Vec<u32> = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (lat, errs) = t.await??;
        all.extend(lat);
        for (k, v) in errs {
            *errors.entry(k).or_default() += v;
        }
    }
    resigner.abort();
    all.sort_unstable();
    let seconds = shape.duration.as_secs_f64();
    let requests = all.len() as u64;
    let over_250ms = all.iter().filter(|&&us| us > 250_000).count() as u64;
    Ok(Report {
        requests,
        seconds,
        achieved_rps: requests as f64 / seconds,
        target_rps: shape.rate,
        concurrency: shape.concurrency,
        p50_us: percentile(&all, 0.50),
        p90_us: percentile(&all, 0.90),
        p99_us: percentile(&all, 0.99),
        p999_us: percentile(&all, 0.999),
        max_us: all.last().copied().map_or(0, u64::from),
        errors,
        over_250ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 501);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 1.0), 1000);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn error_keys() {
        assert_eq!(
            error_key(429, br#"{"errorName":"ThrottlingException"}"#),
            "429 ThrottlingException"
        );
        assert_eq!(
            error_key(400, br#"{"__type":"NotFoundException","message":"m"}"#),
            "400 NotFoundException"
        );
        assert_eq!(error_key(502, b"garbage"), "502 -");
    }
}
