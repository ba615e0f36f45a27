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
    /// Lifetime limit of RotateKeyOnDemand per key (AWS: 25; the older
    /// developer guide said 10).
    #[arg(long, default_value_t = kms_core::keys::material::DEFAULT_ON_DEMAND_ROTATION_LIMIT)]
    on_demand_rotation_limit: u32,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
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
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            AuthMode::configured_from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
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
        tokio::signal::ctrl_c().await?;
        handle.shutdown().await;
        if let Some(p) = demo_proxy {
            p.handle.shutdown().await;
        }
        Ok(())
    })
}
