#![forbid(unsafe_code)]
//! xks-conformance: conformance and load suite for XKS proxies.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use conformance::{cases, load, mtls, runner, tls};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

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
    /// Run the conformance cases against a proxy (exit status 1 on any FAIL).
    Run(Box<RunArgs>),
    /// List the conformance cases (id, group, spec clause, description).
    List(ListArgs),
    /// Drive a proxy with KMS-shaped traffic and report throughput and latency.
    Load(Box<LoadArgs>),
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// External key id of an enabled AES-256 key allowing ENCRYPT and DECRYPT.
    #[arg(long)]
    key_id: String,
    /// An enabled key allowing ENCRYPT only.
    #[arg(long)]
    encrypt_only_key_id: Option<String>,
    /// An enabled key allowing DECRYPT only.
    #[arg(long)]
    decrypt_only_key_id: Option<String>,
    /// An enabled key allowing neither ENCRYPT nor DECRYPT.
    #[arg(long)]
    no_usage_key_id: Option<String>,
    /// A disabled key.
    #[arg(long)]
    disabled_key_id: Option<String>,
    /// A key the key manager has destroyed.
    #[arg(long)]
    destroyed_key_id: Option<String>,
    /// Which reading of a rule where the spec and AWS's tools disagree
    /// passes; an answer following the other one is a warning.
    #[arg(long, value_enum, default_value = "aws-tools")]
    follow: Follow,
    /// Throttling group: send this many requests at once (more than the
    /// proxy's configured rate admits) and expect 429 ThrottlingException.
    #[arg(long)]
    throttling_burst: Option<usize>,
    /// Backend-fault group: shell command that stops (or freezes) your key
    /// manager, e.g. "kill -STOP 1234".
    #[arg(long, requires = "backend_resume_cmd")]
    backend_stop_cmd: Option<String>,
    /// Shell command that resumes it, e.g. "kill -CONT 1234".
    #[arg(long, requires = "backend_stop_cmd")]
    backend_resume_cmd: Option<String>,
    /// The proxy's deadline for an unresponsive key manager, in ms.
    #[arg(long, default_value_t = 5000)]
    backend_deadline_ms: u64,
    /// How long throttling or a resumed key manager may take to recover, in s.
    #[arg(long, default_value_t = 30)]
    recovery_timeout_secs: u64,
    /// URI path of another key store on the same proxy, with other credentials.
    #[arg(long)]
    second_uri_path: Option<String>,
    /// The proxy requires client certificates: run the no-cert, self-signed
    /// and untrusted-CA refusal cases.
    #[arg(long)]
    expect_mtls: bool,
    /// CA certificate the proxy trusts for client certificates (PEM); with
    /// --mtls-ca-key the suite mints its own client certificates, including
    /// expired and wrong-subject ones. Implies --expect-mtls.
    #[arg(long, requires = "mtls_ca_key")]
    mtls_ca_file: Option<PathBuf>,
    /// Private key of --mtls-ca-file (PEM).
    #[arg(long, requires = "mtls_ca_file")]
    mtls_ca_key: Option<PathBuf>,
    /// Client certificate subject the proxy expects
    /// [default: cks.kms.<region>.amazonaws.com].
    #[arg(long)]
    mtls_subject: Option<String>,
    /// requestMetadata.awsPrincipalArn to send (if the proxy has
    /// authorization rules, one they allow).
    #[arg(long)]
    principal_arn: Option<String>,
    /// requestMetadata.kmsKeyArn to send.
    #[arg(long)]
    kms_key_arn: Option<String>,
    /// Run only the cases whose id is or starts with one of these
    /// (comma separated, e.g. sigv4,crypto.tamper).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Per-attempt timeout of the KMS-side client in ms (KMS uses 250).
    #[arg(long, default_value_t = 250)]
    kms_timeout_ms: u64,
    /// Timeout of one raw request in seconds.
    #[arg(long, default_value_t = 10)]
    request_timeout_secs: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also write a self-contained HTML report to this file.
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Follow {
    /// AWS's XKS proxy test client and sample proxy.
    AwsTools,
    /// The conflicting spec text read literally.
    SpecText,
}

#[derive(Args)]
struct ListArgs {
    /// Print a Markdown table.
    #[arg(long)]
    markdown: bool,
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
    /// Also write a self-contained HTML report (percentiles against KMS's
    /// 250 ms budget) to this file.
    #[arg(long)]
    html: Option<PathBuf>,
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

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn run_settings(a: &RunArgs) -> anyhow::Result<runner::Settings> {
    let t = &a.target;
    let trust = if t.insecure {
        tls::ServerTrust::Insecure
    } else if t.endpoint.starts_with("https://") {
        let ca = t
            .ca_file
            .as_deref()
            .context("give --ca-file (or --insecure to skip server certificate checks)")?;
        tls::ServerTrust::CaPem(
            std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
        )
    } else {
        tls::ServerTrust::Insecure
    };
    let client_identity = match (&t.client_cert, &t.client_key) {
        (Some(c), Some(k)) => Some(mtls::Identity {
            cert_pem: read_text(c)?,
            key_pem: Zeroizing::new(read_text(k)?),
        }),
        _ => None,
    };
    let ca = match (&a.mtls_ca_file, &a.mtls_ca_key) {
        (Some(c), Some(k)) => Some(mtls::Identity {
            cert_pem: read_text(c)?,
            key_pem: Zeroizing::new(read_text(k)?),
        }),
        _ => None,
    };
    let mut s = runner::Settings::new(
        t.endpoint.clone(),
        t.uri_path.clone(),
        t.region.clone(),
        t.access_key_id.clone(),
        secret(t)?,
        trust,
        a.key_id.clone(),
    );
    s.client_identity = client_identity;
    s.keys = cases::Keys {
        main: a.key_id.clone(),
        encrypt_only: a.encrypt_only_key_id.clone(),
        decrypt_only: a.decrypt_only_key_id.clone(),
        no_usage: a.no_usage_key_id.clone(),
        disabled: a.disabled_key_id.clone(),
        destroyed: a.destroyed_key_id.clone(),
    };
    s.follow = match a.follow {
        Follow::AwsTools => conformance::check::Reading::AwsTools,
        Follow::SpecText => conformance::check::Reading::SpecText,
    };
    s.throttling_burst = a.throttling_burst;
    s.backend_stop_cmd = a.backend_stop_cmd.clone();
    s.backend_resume_cmd = a.backend_resume_cmd.clone();
    s.backend_deadline = Duration::from_millis(a.backend_deadline_ms.max(1));
    s.recovery_timeout = Duration::from_secs(a.recovery_timeout_secs.max(1));
    s.second_uri_path = a.second_uri_path.clone();
    s.mtls = runner::MtlsSettings {
        expect: a.expect_mtls,
        ca,
        subject: a.mtls_subject.clone(),
    };
    s.principal_arn = a.principal_arn.clone();
    s.kms_key_arn = a.kms_key_arn.clone();
    s.only = a.only.clone();
    s.kms_attempt_timeout = Duration::from_millis(a.kms_timeout_ms.max(1));
    s.request_timeout = Duration::from_secs(a.request_timeout_secs.max(1));
    Ok(s)
}

fn list(markdown: bool) {
    let all = cases::catalogue();
    if markdown {
        println!("| id | description | spec clause |");
        println!("|---|---|---|");
        for c in &all {
            println!(
                "| `{}` | {} | {} |",
                c.id,
                c.description.replace('|', "\\|"),
                c.clause.replace('|', "\\|")
            );
        }
    } else {
        for c in &all {
            println!("{:<48} {}", c.id, c.description);
        }
        println!("\n{} cases", all.len());
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::List(a) => {
            list(a.markdown);
            Ok(())
        }
        Command::Run(a) => {
            let settings = match run_settings(&a) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(2);
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let report = match rt.block_on(runner::run(settings)) {
                Ok(r) => r,
                Err(e) => {
                    // 1 means "the proxy failed a case"; 2 "the suite could not run".
                    eprintln!("error: {e:#}");
                    std::process::exit(2);
                }
            };
            if a.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            if let Some(path) = &a.junit {
                std::fs::write(path, report.to_junit())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = &a.html {
                std::fs::write(path, conformance::html::render(&report, None))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if report.has_failures() {
                std::process::exit(1);
            }
            Ok(())
        }
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
            if let Some(path) = &a.html {
                let t = &a.target;
                let empty = conformance::Report::new(
                    conformance::report::TargetInfo {
                        endpoint: t.endpoint.clone(),
                        uri_path: t.uri_path.clone(),
                        region: t.region.clone(),
                        tls_version: None,
                        tls_suite: None,
                        server_subject: None,
                    },
                    Vec::new(),
                    (report.seconds * 1000.0) as u64,
                );
                std::fs::write(path, conformance::html::render(&empty, Some(&report)))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if report.verdict.starts_with("FAIL") {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
