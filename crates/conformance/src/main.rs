#![forbid(unsafe_code)]
//! xks-conformance: conformance and load suite for XKS proxies.

mod load;
mod tls;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Conformance and load suite for XKS Proxy API v1 implementations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive a proxy with KMS-shaped traffic and report throughput and latency.
    Load(LoadArgs),
}

/// How to reach the proxy under test.
#[derive(Args)]
struct Target {
    /// https://host[:port] (http:// only for proxies serving plain HTTP).
    #[arg(long)]
    endpoint: String,
    /// XksProxyUriPath, e.g. /kms/xks/v1 or /prefix/kms/xks/v1.
    #[arg(long)]
    uri_path: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long)]
    access_key_id: String,
    /// The secret (prefer --secret-access-key-file or XKS_SECRET_ACCESS_KEY).
    #[arg(long, env = "XKS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    #[arg(long, conflicts_with = "secret_access_key")]
    secret_access_key_file: Option<PathBuf>,
    /// CA certificate(s) that issued the proxy's server certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Do not check the proxy's server certificate.
    #[arg(long)]
    insecure: bool,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    target: Target,
    /// External key id to use.
    #[arg(long)]
    key_id: String,
    /// Keep-alive connections (closed loop unless --rate is given).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open-loop request rate in requests/s (1800 is the KMS default quota).
    #[arg(long)]
    rate: Option<f64>,
    /// Measured duration in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Plaintext sizes in bytes, comma separated (KMS data keys are 32 bytes).
    #[arg(long, value_delimiter = ',', default_value = "32")]
    sizes: Vec<usize>,
    #[arg(long, value_enum, default_value = "encrypt")]
    mix: load::Mix,
    /// Ask for a CDIV on every encrypt (as KMS does).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    cdiv: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Runtime worker threads for the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn secret(t: &Target) -> anyhow::Result<String> {
    match (&t.secret_access_key, &t.secret_access_key_file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(f)) => Ok(std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .to_owned()),
        (None, None) => {
            bail!("give --secret-access-key-file, --secret-access-key or XKS_SECRET_ACCESS_KEY")
        }
    }
}

async fn load_settings(a: &LoadArgs) -> anyhow::Result<load::LoadSettings> {
    let t = &a.target;
    let (tls, rest) = if let Some(rest) = t.endpoint.strip_prefix("https://") {
        let client = match (&t.client_cert, &t.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        (
            Some(tls::client_config(
                t.ca_file.as_deref(),
                client,
                t.insecure,
            )?),
            rest,
        )
    } else if let Some(rest) = t.endpoint.strip_prefix("http://") {
        (None, rest)
    } else {
        bail!("--endpoint must start with https:// (or http://)");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse::<u16>().context("endpoint port")?),
        None => (rest.to_owned(), if tls.is_some() { 443 } else { 80 }),
    };
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .with_context(|| format!("cannot resolve {host}"))?;
    let default_port = if tls.is_some() { 443 } else { 80 };
    let host_header = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    t.uri_path
        .parse::<xks_wire::UriPath>()
        .with_context(|| format!("--uri-path {}", t.uri_path))?;
    Ok(load::LoadSettings {
        addr,
        host: host_header,
        uri_path: t.uri_path.clone(),
        region: t.region.clone(),
        access_key_id: t.access_key_id.clone(),
        secret_access_key: secret(t)?,
        key_id: a.key_id.clone(),
        tls,
        server_name: host,
        concurrency: a.concurrency,
        rate: a.rate,
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(a.warmup),
        sizes: a.sizes.clone(),
        mix: a.mix,
        cdiv: a.cdiv,
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(a) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(a.threads.max(1))
                .enable_all()
                .build()?;
            let report = rt.block_on(async {
                let s = load_settings(&a).await?;
                load::run(s).await
            })?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_table());
            }
            if report.verdict.starts_with("FAIL") {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
