//! `xks-conformance load`: drive an XKS proxy with KMS-shaped traffic and
//! report throughput and latency.
//!
//! Two modes: closed loop (`--concurrency N`: N keep-alive connections each
//! sending back to back) and open loop (`--rate R`: requests are scheduled
//! at fixed intervals; a request that had to wait for a busy connection is
//! timed from its scheduled time, so a stalled server cannot hide its
//! queueing delay — no coordinated omission).
//!
//! Requests are signed with SigV4 like KMS signs them. To keep the load
//! generator's CPU off the measurement, a pool of distinct signed requests
//! (unique kmsRequestId each) is prepared up front and re-signed every
//! 60 s, well inside the proxy's 5-minute skew window.

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    Encrypt,
    Decrypt,
    /// Half encrypt, half decrypt (the GenerateDataKey/Decrypt pattern).
    Mixed,
}

#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub addr: SocketAddr,
    pub host: String,
    pub uri_path: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub key_id: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub server_name: String,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub sizes: Vec<usize>,
    pub mix: Mix,
    pub cdiv: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
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
    pub errors: BTreeMap<String, u64>,
    /// Share of requests slower than KMS's 250 ms per-attempt timeout.
    pub over_250ms: u64,
    pub verdict: String,
}

struct Pool {
    requests: Vec<(String, Bytes, http::HeaderMap)>,
}

fn request_metadata(i: usize, op: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::111122223333:role/load",
        "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
        "kmsOperation": op,
        "kmsRequestId": format!("00000000-0000-4000-8000-{i:012}"),
    })
}

fn sign(s: &LoadSettings, path: &str, body: &[u8]) -> anyhow::Result<http::HeaderMap> {
    let cred = sigv4::Credential::new(&s.access_key_id, &s.secret_access_key);
    let sig = sigv4::sign(
        "POST",
        &s.host,
        path,
        &[],
        body,
        &cred,
        &s.region,
        xks_wire::SIGV4_SERVICE,
        SystemTime::now(),
    )
    .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    let mut h = http::HeaderMap::new();
    h.insert(http::header::HOST, s.host.parse()?);
    h.insert("x-amz-date", sig.amz_date.parse()?);
    h.insert(http::header::AUTHORIZATION, sig.authorization.parse()?);
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(h)
}

async fn build_pool(s: &LoadSettings, conn: &mut Conn) -> anyhow::Result<Pool> {
    const N: usize = 256;
    let enc_path = format!("{}/keys/{}/encrypt", s.uri_path, s.key_id);
    let dec_path = format!("{}/keys/{}/decrypt", s.uri_path, s.key_id);
    let mut requests = Vec::with_capacity(N);
    for i in 0..N {
        let size = s.sizes[i % s.sizes.len()];
        let plaintext: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
        let aad = format!("kms-ciphertext-header-{i}").into_bytes();
        let mut enc = json!({
            "requestMetadata": request_metadata(i, "GenerateDataKey"),
            "plaintext": xks_wire::b64::encode(&plaintext),
            "additionalAuthenticatedData": xks_wire::b64::encode(&aad),
            "encryptionAlgorithm": "AES_GCM",
        });
        if s.cdiv {
            enc["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
        }
        let want_decrypt = match s.mix {
            Mix::Encrypt => false,
            Mix::Decrypt => true,
            Mix::Mixed => i % 2 == 1,
        };
        let (path, body) = if want_decrypt {
            let body = serde_json::to_vec(&enc)?;
            let headers = sign(s, &enc_path, &body)?;
            let (status, resp) = conn.send(&enc_path, Bytes::from(body), headers).await?;
            if status != 200 {
                bail!(
                    "preparing ciphertexts: encrypt returned {status}: {}",
                    String::from_utf8_lossy(&resp)
                );
            }
            let r: Value = serde_json::from_slice(&resp)?;
            let mut dec = json!({
                "requestMetadata": request_metadata(i, "Decrypt"),
                "ciphertext": r["ciphertext"],
                "initializationVector": r["initializationVector"],
                "authenticationTag": r["authenticationTag"],
                "additionalAuthenticatedData": xks_wire::b64::encode(&aad),
                "encryptionAlgorithm": "AES_GCM",
            });
            if let Some(m) = r.get("ciphertextMetadata") {
                dec["ciphertextMetadata"] = m.clone();
            }
            (dec_path.clone(), serde_json::to_vec(&dec)?)
        } else {
            (enc_path.clone(), serde_json::to_vec(&enc)?)
        };
        let headers = sign(s, &path, &body)?;
        requests.push((path, Bytes::from(body), headers));
    }
    Ok(Pool { requests })
}

fn resign(s: &LoadSettings, pool: &Pool) -> anyhow::Result<Pool> {
    let mut requests = Vec::with_capacity(pool.requests.len());
    for (path, body, _) in &pool.requests {
        requests.push((path.clone(), body.clone(), sign(s, path, body)?));
    }
    Ok(Pool { requests })
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(s: &LoadSettings) -> anyhow::Result<Conn> {
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

    async fn send(
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

fn error_key(status: u16, body: &[u8]) -> String {
    let name = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["errorName"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".into());
    format!("{status} {name}")
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    u64::from(sorted[idx.min(sorted.len() - 1)])
}

/// Runs the load and returns the report.
pub async fn run(s: LoadSettings) -> anyhow::Result<LoadReport> {
    if s.concurrency == 0 || s.sizes.is_empty() {
        bail!("concurrency and sizes must be positive");
    }
    if s.duration > Duration::from_secs(3600) {
        bail!("--duration is limited to one hour");
    }
    let mut first_conn = Conn::open(&s).await?;
    let pool = Arc::new(Mutex::new(Arc::new(build_pool(&s, &mut first_conn).await?)));
    let mut first = Some(first_conn);
    let settings = Arc::new(s);

    // Re-sign the pool every 60 s so that long runs stay inside the skew window.
    let resigner = {
        let (settings, pool) = (Arc::clone(&settings), Arc::clone(&pool));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let current = pool.lock().map(|p| Arc::clone(&p));
                if let Ok(current) = current {
                    if let Ok(fresh) = resign(&settings, &current) {
                        if let Ok(mut p) = pool.lock() {
                            *p = Arc::new(fresh);
                        }
                    }
                }
            }
        })
    };

    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + settings.warmup;
    let end = measure_from + settings.duration;
    let ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(settings.concurrency);
    for c in 0..settings.concurrency {
        let settings = Arc::clone(&settings);
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
                let scheduled = match settings.rate {
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
                let (path, body, headers) = &current.requests[i % current.requests.len()];
                i += settings.concurrency;
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
    let seconds = settings.duration.as_secs_f64();
    let requests = all.len() as u64;
    let over_250ms = all.iter().filter(|&&us| us > 250_000).count() as u64;
    let error_total: u64 = errors.values().sum();
    let verdict = if requests == 0 {
        "FAIL: no request completed".to_owned()
    } else if over_250ms > 0 || error_total > 0 {
        format!("FAIL: {over_250ms} requests over KMS's 250 ms timeout, {error_total} errors")
    } else {
        "PASS: every request answered within KMS's 250 ms timeout without error".to_owned()
    };
    Ok(LoadReport {
        requests,
        seconds,
        achieved_rps: requests as f64 / seconds,
        target_rps: settings.rate,
        concurrency: settings.concurrency,
        p50_us: percentile(&all, 0.50),
        p90_us: percentile(&all, 0.90),
        p99_us: percentile(&all, 0.99),
        p999_us: percentile(&all, 0.999),
        max_us: all.last().copied().map_or(0, u64::from),
        errors,
        over_250ms,
        verdict,
    })
}

impl LoadReport {
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        use std::fmt::Write;
        let _ = writeln!(s, "requests      {}", self.requests);
        let _ = writeln!(
            s,
            "throughput    {:.0} req/s{}",
            self.achieved_rps,
            self.target_rps
                .map(|r| format!(" (target {r:.0})"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "concurrency   {}", self.concurrency);
        let _ = writeln!(
            s,
            "latency       p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            self.p50_us as f64 / 1000.0,
            self.p90_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.p999_us as f64 / 1000.0,
            self.max_us as f64 / 1000.0
        );
        if self.errors.is_empty() {
            let _ = writeln!(s, "errors        none");
        } else {
            for (k, v) in &self.errors {
                let _ = writeln!(s, "errors        {v} x {k}");
            }
        }
        let _ = writeln!(s, "verdict       {}", self.verdict);
        s
    }
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
        assert_eq!(error_key(502, b"garbage"), "502 -");
    }
}
