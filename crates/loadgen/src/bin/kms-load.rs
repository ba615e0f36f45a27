#![forbid(unsafe_code)]
//! `kms-load`: load on a KMS endpoint (kms-core or any AWS KMS compatible
//! service) with SigV4-signed Encrypt, GenerateDataKey, Sign, Verify,
//! GenerateMac or CreateKey requests.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use loadgen::{Conn, Prepared, Shape, Target};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, ValueEnum)]
enum Op {
    Encrypt,
    GenerateDataKey,
    /// Sign `--size` bytes (RAW) with a `--key-spec` SIGN_VERIFY key.
    Sign,
    /// Verify a signature of `--size` bytes with a `--key-spec` key.
    Verify,
    /// GenerateMac over `--size` bytes with a `--key-spec` HMAC key.
    GenerateMac,
    /// CreateKey of `--key-spec` (e.g. a burst of RSA_4096 key creations).
    CreateKey,
}

/// Drive a KMS endpoint and report throughput and latency.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// http://host:port (https needs --ca-file).
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "111122223333")]
    access_key_id: String,
    #[arg(long, default_value = "load-test-secret-load-test-secret")]
    secret_access_key: String,
    #[arg(long, value_enum, default_value = "encrypt")]
    op: Op,
    /// Plaintext size for Encrypt, message size for Sign/Verify/GenerateMac.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Key spec of the key used (Sign/Verify/GenerateMac) or created
    /// (CreateKey): SYMMETRIC_DEFAULT, RSA_2048, ECC_NIST_P256, ML_DSA_65,
    /// HMAC_256, ...
    #[arg(long)]
    key_spec: Option<String>,
    /// Signing algorithm for Sign/Verify (default: the key spec's first).
    #[arg(long)]
    signing_algorithm: Option<String>,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open-loop rate in requests/s (closed loop when absent).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long)]
    json: bool,
    /// Use this key (id, ARN or alias) instead of creating one.
    #[arg(long)]
    key_id: Option<String>,
}

struct Signer {
    host: String,
    region: String,
    cred: sigv4::Credential,
}

impl Signer {
    fn request(&self, target: &str, body: Vec<u8>) -> anyhow::Result<Prepared> {
        let amz_target = format!("TrentService.{target}");
        let ct = "application/x-amz-json-1.1";
        let extra = [("content-type", ct), ("x-amz-target", amz_target.as_str())];
        let sig = sigv4::sign(
            "POST",
            &self.host,
            "/",
            &extra,
            &body,
            &self.cred,
            &self.region,
            "kms",
            SystemTime::now(),
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        let mut h = http::HeaderMap::new();
        h.insert(http::header::HOST, self.host.parse()?);
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ct),
        );
        h.insert("x-amz-target", amz_target.parse()?);
        h.insert("x-amz-date", sig.amz_date.parse()?);
        h.insert(http::header::AUTHORIZATION, sig.authorization.parse()?);
        Ok(Prepared {
            path: "/".into(),
            body: Bytes::from(body),
            headers: h,
        })
    }

    fn resign(&self, pool: &[Prepared]) -> anyhow::Result<Vec<Prepared>> {
        pool.iter()
            .map(|p| {
                let target = p
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|t| t.strip_prefix("TrentService."))
                    .unwrap_or("Encrypt")
                    .to_owned();
                self.request(&target, p.body.to_vec())
            })
            .collect()
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (tls, rest) = if let Some(rest) = cli.endpoint.strip_prefix("https://") {
        let ca = cli
            .ca_file
            .as_ref()
            .context("https endpoints need --ca-file")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::pem::PemObject::pem_file_iter(ca)? {
            roots.add(c?)?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        (Some(Arc::new(cfg)), rest)
    } else if let Some(rest) = cli.endpoint.strip_prefix("http://") {
        (None, rest)
    } else {
        bail!("--endpoint must start with http:// or https://");
    };
    let host = rest.trim_end_matches('/').to_owned();
    let server_name = host
        .rsplit_once(':')
        .map_or(host.clone(), |(h, _)| h.to_owned());
    let addr = tokio::net::lookup_host(&host)
        .await?
        .next()
        .context("cannot resolve the endpoint")?;
    let target = Target {
        addr,
        tls,
        server_name,
    };
    let signer = Arc::new(Signer {
        host,
        region: cli.region.clone(),
        cred: sigv4::Credential::new(&cli.access_key_id, &cli.secret_access_key),
    });

    // A key to work with.
    let mut conn = Conn::open(&target).await?;
    let spec = cli.key_spec.clone().unwrap_or_else(|| match cli.op {
        Op::Sign | Op::Verify => "ECC_NIST_P256".into(),
        Op::GenerateMac => "HMAC_256".into(),
        _ => "SYMMETRIC_DEFAULT".into(),
    });
    let usage = usage_of(cli.op, &spec);
    let create_body = json!({"Description": "kms-load", "KeySpec": spec, "KeyUsage": usage});
    let key_id = match &cli.key_id {
        Some(k) => k.clone(),
        None => {
            let v = call(&mut conn, &signer, "CreateKey", &create_body).await?;
            v["KeyMetadata"]["KeyId"]
                .as_str()
                .context("CreateKey answer")?
                .to_owned()
        }
    };
    let algorithm = cli
        .signing_algorithm
        .clone()
        .unwrap_or_else(|| default_signing_algorithm(&spec).to_owned());
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let message: Vec<u8> = (0..cli.size).map(|j| j as u8).collect();
    let signature = if matches!(cli.op, Op::Verify) {
        let v = call(
            &mut conn,
            &signer,
            "Sign",
            &json!({"KeyId": key_id, "Message": b64(&message), "SigningAlgorithm": algorithm}),
        )
        .await?;
        v["Signature"].as_str().context("Sign answer")?.to_owned()
    } else {
        String::new()
    };

    let mut pool = Vec::with_capacity(256);
    for i in 0..256usize {
        let (target_name, body) = match cli.op {
            Op::Encrypt => {
                let plaintext: Vec<u8> = (0..cli.size).map(|j| (i + j) as u8).collect();
                let b64 =
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, plaintext);
                (
                    "Encrypt",
                    json!({"KeyId": key_id, "Plaintext": b64, "EncryptionContext": {"request": i.to_string()}}),
                )
            }
            Op::GenerateDataKey => (
                "GenerateDataKey",
                json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": {"request": i.to_string()}}),
            ),
            Op::Sign => (
                "Sign",
                json!({"KeyId": key_id, "Message": b64(&message), "SigningAlgorithm": algorithm}),
            ),
            Op::Verify => (
                "Verify",
                json!({"KeyId": key_id, "Message": b64(&message), "Signature": signature,
                       "SigningAlgorithm": algorithm}),
            ),
            Op::GenerateMac => (
                "GenerateMac",
                json!({"KeyId": key_id, "Message": b64(&message),
                       "MacAlgorithm": mac_algorithm(&spec)}),
            ),
            Op::CreateKey => ("CreateKey", create_body.clone()),
        };
        pool.push(signer.request(target_name, serde_json::to_vec(&body)?)?);
    }
    let shape = Shape {
        concurrency: cli.concurrency,
        rate: cli.rate,
        duration: Duration::from_secs_f64(cli.duration),
        warmup: Duration::from_secs_f64(cli.warmup),
    };
    let resign: loadgen::Resign = {
        let signer = Arc::clone(&signer);
        Arc::new(move |p: &[Prepared]| signer.resign(p))
    };
    let r = loadgen::run(target, shape, pool, Some(conn), resign).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("requests      {}", r.requests);
        println!("throughput    {:.0} req/s", r.achieved_rps);
        println!(
            "latency       p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            r.p50_us as f64 / 1e3,
            r.p90_us as f64 / 1e3,
            r.p99_us as f64 / 1e3,
            r.p999_us as f64 / 1e3,
            r.max_us as f64 / 1e3
        );
        println!("errors        {:?}", r.errors);
    }
    if !r.errors.is_empty() || r.requests == 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// One signed call outside the measured load (setup).
async fn call(
    conn: &mut Conn,
    signer: &Signer,
    target: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let req = signer.request(target, serde_json::to_vec(body)?)?;
    let (status, answer) = conn.send(&req.path, req.body, req.headers).await?;
    if status != 200 {
        bail!(
            "{target} returned {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(serde_json::from_slice(&answer)?)
}

fn usage_of(op: Op, spec: &str) -> &'static str {
    match op {
        Op::Sign | Op::Verify => "SIGN_VERIFY",
        Op::GenerateMac => "GENERATE_VERIFY_MAC",
        _ if spec.starts_with("HMAC") => "GENERATE_VERIFY_MAC",
        _ if spec.starts_with("ML_KEM") => "ENCAPSULATE_DECAPSULATE",
        _ if spec.starts_with("RSA") || spec == "SYMMETRIC_DEFAULT" => "ENCRYPT_DECRYPT",
        _ => "SIGN_VERIFY",
    }
}

fn default_signing_algorithm(spec: &str) -> &'static str {
    match spec {
        s if s.starts_with("RSA") => "RSASSA_PSS_SHA_256",
        "ECC_NIST_P384" => "ECDSA_SHA_384",
        "ECC_NIST_P521" => "ECDSA_SHA_512",
        "ECC_NIST_EDWARDS25519" => "ED25519_SHA_512",
        s if s.starts_with("ML_DSA") => "ML_DSA_SHAKE_256",
        _ => "ECDSA_SHA_256",
    }
}

fn mac_algorithm(spec: &str) -> String {
    format!("HMAC_SHA_{}", spec.strip_prefix("HMAC_").unwrap_or("256"))
}
