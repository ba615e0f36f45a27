#![forbid(unsafe_code)]
//! `kms-core`: the AWS KMS compatible service.

use anyhow::Context;
use clap::Parser;
use kms_core::auth::AuthMode;
use kms_core::service::Kms;
use std::net::SocketAddr;
use std::path::PathBuf;

/// AWS KMS compatible key management service (work in progress: see README).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Credentials file (TOML `[[credentials]]` with access_key_id,
    /// secret_access_key, account_id, principal_arn). Without it, any
    /// credentials are accepted (development mode, loopback only).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Allow development-mode authentication on a non-loopback address.
    #[arg(long)]
    force_dev_auth: bool,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where keys are stored (SQLite; the root key is `root.key` in it,
    /// created 0600 on first start, unless --root-key-env is given).
    #[arg(long, default_value = "kms-data", conflicts_with = "in_memory")]
    data_dir: PathBuf,
    /// Read the root key (Base64 of 32 bytes) from this environment variable.
    #[arg(long)]
    root_key_env: Option<String>,
    /// Keep everything in memory (lost on exit): throwaway test runs.
    #[arg(long)]
    in_memory: bool,
    /// External key store settings (TOML): TLS trust and client
    /// certificate toward XKS proxies, time budget, health check interval.
    /// See docs/kms-core.md.
    #[arg(long, conflicts_with = "demo_xks")]
    xks_config: Option<PathBuf>,
    /// Start the whole external key store stack in-process: an xks-proxy on
    /// the embedded key manager (mutual TLS, local CA), a connected external
    /// key store and a demo key with alias/demo-xks.
    #[arg(long)]
    demo_xks: bool,
    /// Where the demo stack keeps its CA, certificates, credential and
    /// external keys (default: <data dir>/demo-xks).
    #[arg(long, value_name = "DIR", requires = "demo_xks")]
    demo_xks_dir: Option<PathBuf>,
    /// Listen address of the demo xks-proxy.
    #[arg(long, default_value = "127.0.0.1:4567")]
    demo_xks_listen: SocketAddr,
    /// Account (and region) of the demo external key store and key.
    #[arg(long, default_value = "111122223333")]
    demo_account: String,
    #[arg(long, default_value = "us-east-1")]
    demo_region: String,
    /// Write the CloudTrail-format audit log (one JSON object per line) to
    /// this file. See docs/operations.md.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// When the audit log cannot be written: refuse requests
    /// (fail-closed) or count the lost records and serve (count-and-continue).
    #[arg(
        long,
        value_enum,
        default_value = "fail-closed",
        requires = "audit_log"
    )]
    audit_on_failure: AuditFailure,
    /// Rotate the audit log before it grows past this many bytes.
    #[arg(long, default_value_t = 100 * 1024 * 1024, requires = "audit_log")]
    audit_max_file_bytes: u64,
    /// Rotated audit files kept.
    #[arg(long, default_value_t = 10, requires = "audit_log")]
    audit_max_files: u32,
    /// fsync every batch of audit records (power-loss safe) or only flush
    /// them to the kernel (crash safe).
    #[arg(long, value_enum, default_value = "fsync", requires = "audit_log")]
    audit_durability: AuditDurability,
    /// Log format of the service log (stdout): text or json (one object per
    /// line, the request id on every line of a request).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Serve Prometheus metrics (`GET /metrics`, plain HTTP) on this
    /// address. Unauthenticated: keep it on loopback or a management network.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Benchmarking only: skip key policies, identity policies and grants
    /// (every authenticated request is allowed). Never in production.
    #[arg(long, hide = true)]
    bench_allow_all: bool,
    /// Lifetime limit of RotateKeyOnDemand per key (AWS: 25; the older
    /// developer guide said 10).
    #[arg(long, default_value_t = kms_core::keys::material::DEFAULT_ON_DEMAND_ROTATION_LIMIT)]
    on_demand_rotation_limit: u32,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AuditFailure {
    FailClosed,
    CountAndContinue,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AuditDurability {
    Fsync,
    Flush,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn load_auth(path: &std::path::Path) -> anyhow::Result<AuthMode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    AuthMode::configured_from_toml_at(&text, base)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `kms-core authz explain`: why a caller may or may not do an action on
/// a key of the data directory, evaluated by the code requests use.
#[derive(Parser)]
#[command(name = "kms-core authz")]
struct AuthzCli {
    #[command(subcommand)]
    command: AuthzCommand,
}

#[derive(clap::Subcommand)]
enum AuthzCommand {
    /// Prints ALLOW or DENY, the statement or grant that decided, and one
    /// line per policy statement.
    Explain {
        /// The caller's ARN (`arn:aws:iam::111122223333:user/alice`).
        #[arg(long)]
        principal: String,
        /// The IAM action (`kms:Decrypt`).
        #[arg(long)]
        action: String,
        /// The key ARN.
        #[arg(long)]
        key: String,
        /// Encryption context pairs, `k=v` (repeatable).
        #[arg(long = "context", value_name = "K=V")]
        context: Vec<String>,
        /// The credentials file (identity policies and tags of the
        /// principal); without it the principal has none.
        #[arg(long)]
        credentials: Option<PathBuf>,
        #[arg(long, default_value = "kms-data")]
        data_dir: PathBuf,
        #[arg(long)]
        root_key_env: Option<String>,
        /// `aws:SourceIp` of the request to imagine.
        #[arg(long, value_name = "IP")]
        source_ip: Option<std::net::IpAddr>,
        /// Imagine a request over plain HTTP (`aws:SecureTransport` false).
        #[arg(long)]
        no_tls: bool,
    },
}

fn authz_main(args: Vec<String>) -> anyhow::Result<()> {
    let cli = AuthzCli::parse_from(args);
    let AuthzCommand::Explain {
        principal,
        action,
        key,
        context,
        credentials,
        data_dir,
        root_key_env,
        source_ip,
        no_tls,
    } = cli.command;
    let mut encryption_context = std::collections::BTreeMap::new();
    for pair in &context {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--context {pair:?} is not k=v"))?;
        encryption_context.insert(k.to_owned(), v.to_owned());
    }
    // With a credentials file, the principal as requests see it (tags,
    // identity policies, strict mode); without one, a principal without
    // identity policies (development mode).
    let caller = match &credentials {
        Some(path) => Some(load_auth(path)?.principal(&principal).ok_or_else(|| {
            anyhow::anyhow!(
                "no credentials entry of {} has principal_arn {principal}",
                path.display()
            )
        })?),
        None => None,
    };
    let parts: Vec<&str> = key.split(':').collect();
    let (region, account, id) = match parts.as_slice() {
        ["arn", _, "kms", region, account, rest] => (
            *region,
            *account,
            rest.strip_prefix("key/")
                .ok_or_else(|| anyhow::anyhow!("--key must be a key ARN"))?,
        ),
        _ => anyhow::bail!("--key must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
    };
    let root = match &root_key_env {
        Some(var) => local_key::MasterKeySource::Env(var.clone()),
        None => local_key::MasterKeySource::File(data_dir.join("root.key")),
    };
    let store = kms_core::store::SqliteStore::open(&data_dir, &root)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", data_dir.display()))?;
    use kms_core::store::Store;
    let entry = store
        .key(account, region, id)
        .ok_or_else(|| anyhow::anyhow!("no key {key} in {}", data_dir.display()))?;
    let grants = store.grants_of_key(id).to_vec();
    let aliases: Vec<String> = store
        .list_aliases(account, region, Some(id), 50, None)
        .map(|p| p.items.into_iter().map(|a| a.name).collect())
        .unwrap_or_default();
    let mut key_facts = kms_core::pipeline::authorize::key_facts(&entry);
    key_facts.aliases = &aliases;
    let source_ip = source_ip.map(|ip| ip.to_string());
    let req = kms_core::authz::explain::ExplainRequest {
        key_policy: &entry.record.policy,
        caller_arn: &principal,
        action: &action,
        encryption_context,
        grants,
        principal: caller.as_deref(),
        key: Some(key_facts),
        source_ip: source_ip.as_deref(),
        secure_transport: !no_tls,
        ..Default::default()
    };
    let out = kms_core::authz::explain::explain(&req).map_err(|e| anyhow::anyhow!(e.0))?;
    print!("{out}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("authz") {
        return authz_main(args.into_iter().skip(1).collect());
    }
    let cli = Cli::parse();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(
            cli.log_format == LogFormat::Text
                && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        );
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    http_shell::raise_open_file_limit();
    kms_core::ops::rotation::set_on_demand_limit(cli.on_demand_rotation_limit);
    // Tests and demos move the service's clock (automatic rotation,
    // waiting periods) without waiting.
    if let Some(offset) = std::env::var("KMS_CORE_CLOCK_OFFSET_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        kms_core::clock::set_offset(offset);
        tracing::warn!(offset, "the service clock is offset from the system clock");
    }
    let auth = match &cli.credentials {
        Some(path) => load_auth(path)?,
        None => AuthMode::Development,
    };
    auth.check_bind(cli.listen, cli.force_dev_auth)
        .map_err(|e| anyhow::anyhow!(e))?;
    let store: std::sync::Arc<dyn kms_core::store::Store> = if cli.in_memory {
        std::sync::Arc::new(kms_core::store::MemoryStore::in_memory())
    } else {
        let root = match &cli.root_key_env {
            Some(var) => local_key::MasterKeySource::Env(var.clone()),
            None => local_key::MasterKeySource::File(cli.data_dir.join("root.key")),
        };
        std::sync::Arc::new(
            kms_core::store::SqliteStore::open(&cli.data_dir, &root)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", cli.data_dir.display()))?,
        )
    };
    let mut kms = Kms::new(auth, store)?;
    if cli.metrics_listen.is_some() {
        kms = kms.with_metrics(std::sync::Arc::new(kms_core::metrics::Metrics::new()));
    }
    let audit_guard = match &cli.audit_log {
        Some(path) => {
            let mut cfg = audit_sink::SinkConfig::new(path);
            cfg.max_file_bytes = cli.audit_max_file_bytes;
            cfg.max_files = cli.audit_max_files;
            cfg.on_failure = match cli.audit_on_failure {
                AuditFailure::FailClosed => audit_sink::FailurePolicy::FailClosed,
                AuditFailure::CountAndContinue => audit_sink::FailurePolicy::CountAndContinue,
            };
            cfg.durability = match cli.audit_durability {
                AuditDurability::Fsync => audit_sink::Durability::Fsync,
                AuditDurability::Flush => audit_sink::Durability::Flush,
            };
            let (sink, guard) = audit_sink::AuditSink::open(&cfg)
                .with_context(|| format!("opening the audit log {}", path.display()))?;
            if let Some(m) = kms.metrics() {
                m.watch_audit(sink.clone());
            }
            kms = kms.with_audit(sink);
            Some(guard)
        }
        None => None,
    };
    if cli.bench_allow_all {
        tracing::warn!("--bench-allow-all: authorization is OFF, every authenticated request is allowed (benchmarks only)");
        kms = kms.with_authorizer(std::sync::Arc::new(kms_core::pipeline::authorize::AllowAll));
    }
    if let Some(path) = &cli.xks_config {
        kms = kms.with_xks_settings(
            kms_core::xks::XksSettings::load(path).map_err(|e| anyhow::anyhow!(e))?,
        );
    }
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(http_shell::tls::simple_server_config(cert, key)?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut kms = kms;
        let mut demo_proxy = None;
        if cli.demo_xks {
            let dir = cli
                .demo_xks_dir
                .clone()
                .unwrap_or_else(|| cli.data_dir.join("demo-xks"));
            let proxy = kms_core::xks::stack::start_local_proxy(&dir, cli.demo_xks_listen).await?;
            kms = kms.with_xks_settings(proxy.settings());
            kms.resume_custom_key_stores();
            let demo =
                kms_core::xks::stack::bootstrap(&kms, &proxy, &cli.demo_account, &cli.demo_region)
                    .await?;
            tracing::info!(
                proxy = %proxy.handle.addr,
                custom_key_store = %demo.custom_key_store_id,
                key = %demo.key_arn,
                alias = kms_core::xks::stack::DEMO_ALIAS,
                "external key store demo ready"
            );
            demo_proxy = Some(proxy);
        } else {
            kms.resume_custom_key_stores();
        }
        let handle = kms_core::server::start(cli.listen, kms, tls).await?;
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_task = match cli.metrics_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?;
                tracing::info!(addr = %listener.local_addr()?, "metrics listening");
                Some(tokio::spawn(kms_core::server::serve_metrics(
                    listener,
                    std::sync::Arc::clone(&handle.kms),
                    async {
                        let _ = metrics_stopped.await;
                    },
                )))
            }
            None => None,
        };
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    match &cli.credentials {
                        Some(path) => match load_auth(path) {
                            Ok(auth) => {
                                handle.kms.reload_auth(auth);
                                tracing::info!(file = %path.display(), "credentials reloaded");
                            }
                            Err(e) => tracing::error!(error = format!("{e:#}"), "credentials reload failed; keeping the current ones"),
                        },
                        None => tracing::info!("SIGHUP: no --credentials file to reload (development mode)"),
                    }
                    if let Some(path) = &cli.xks_config {
                        match kms_core::xks::XksSettings::load(path) {
                            Ok(settings) => {
                                let n = handle.kms.reload_xks_settings(settings);
                                tracing::info!(file = %path.display(), stores = n, "external key store TLS settings reloaded");
                            }
                            Err(e) => tracing::error!(error = %e, file = %path.display(), "external key store settings reload failed; keeping the current ones"),
                        }
                    }
                },
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        tracing::info!("shutting down: finishing in-flight requests");
        handle.shutdown().await;
        let _ = metrics_stop.send(());
        if let Some(t) = metrics_task {
            let _ = t.await;
        }
        if let Some(p) = demo_proxy {
            p.handle.shutdown().await;
        }
        if let Some(guard) = audit_guard {
            tokio::task::spawn_blocking(move || guard.close()).await?;
        }
        tracing::info!("stopped");
        Ok(())
    })
}
