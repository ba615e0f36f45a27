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

use anyhow::bail;
use bytes::Bytes;
use loadgen::Prepared;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

async fn build_pool(s: &LoadSettings, conn: &mut loadgen::Conn) -> anyhow::Result<Vec<Prepared>> {
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
        requests.push(Prepared {
            path,
            body: Bytes::from(body),
            headers,
        });
    }
    Ok(requests)
}

fn resign(s: &LoadSettings, pool: &[Prepared]) -> anyhow::Result<Vec<Prepared>> {
    pool.iter()
        .map(|p| {
            Ok(Prepared {
                path: p.path.clone(),
                body: p.body.clone(),
                headers: sign(s, &p.path, &p.body)?,
            })
        })
        .collect()
}

/// Runs the load and returns the report.
pub async fn run(s: LoadSettings) -> anyhow::Result<LoadReport> {
    if s.concurrency == 0 || s.sizes.is_empty() {
        bail!("concurrency and sizes must be positive");
    }
    let target = loadgen::Target {
        addr: s.addr,
        tls: s.tls.clone(),
        server_name: s.server_name.clone(),
    };
    let mut first = loadgen::Conn::open(&target).await?;
    let pool = build_pool(&s, &mut first).await?;
    let shape = loadgen::Shape {
        concurrency: s.concurrency,
        rate: s.rate,
        duration: s.duration,
        warmup: s.warmup,
    };
    let settings = Arc::new(s);
    let resigner: loadgen::Resign = {
        let settings = Arc::clone(&settings);
        Arc::new(move |pool: &[Prepared]| resign(&settings, pool))
    };
    let r = loadgen::run(target, shape, pool, Some(first), resigner).await?;
    let error_total: u64 = r.errors.values().sum();
    let verdict = if r.requests == 0 {
        "FAIL: no request completed".to_owned()
    } else if r.over_250ms > 0 || error_total > 0 {
        format!(
            "FAIL: {} requests over KMS's 250 ms timeout, {error_total} errors",
            r.over_250ms
        )
    } else {
        "PASS: every request answered within KMS's 250 ms timeout without error".to_owned()
    };
    Ok(LoadReport {
        requests: r.requests,
        seconds: r.seconds,
        achieved_rps: r.achieved_rps,
        target_rps: r.target_rps,
        concurrency: r.concurrency,
        p50_us: r.p50_us,
        p90_us: r.p90_us,
        p99_us: r.p99_us,
        p999_us: r.p999_us,
        max_us: r.max_us,
        errors: r.errors,
        over_250ms: r.over_250ms,
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
