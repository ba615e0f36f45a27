#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;
use xks_proxy::admin::{self, Action, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::config::{Config, LogFormat};

/// XKS Proxy API v1.0.3 server with pluggable key managers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (runs the proxy when no subcommand is given).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Set up a demo directory (CA, certificates, credentials, demo key) and run.
    Demo {
        #[arg(long, default_value = "xks-demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
    },
    /// Manage keys of the embedded software key manager.
    Keys(KeysArgs),
}

#[derive(Args)]
struct KeysArgs {
    /// Backend name in the configuration (when it has several).
    #[arg(long)]
    backend: Option<String>,
    /// Use this data directory instead of a configuration.
    #[arg(long, conflicts_with = "backend")]
    data_dir: Option<PathBuf>,
    /// With --data-dir: read the master key from this variable instead of
    /// <data-dir>/master.key.
    #[arg(long, requires = "data_dir")]
    master_key_env: Option<String>,
    #[command(subcommand)]
    action: KeyAction,
}

#[derive(Subcommand)]
enum KeyAction {
    /// Create an AES-256 key.
    Create {
        id: String,
        /// encrypt-decrypt, encrypt-only, decrypt-only or none.
        #[arg(long, default_value = "encrypt-decrypt")]
        usage: StoredUsage,
    },
    /// List keys.
    List {
        #[arg(long)]
        json: bool,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Change a key's usage restriction.
    SetUsage {
        id: String,
        usage: StoredUsage,
    },
    /// New key material for new ciphertexts; old ones still decrypt.
    Rotate {
        id: String,
    },
    /// Destroy a key and all its versions (irreversible).
    Delete {
        id: String,
        #[arg(long)]
        yes: bool,
    },
}

fn init_logging(level: &str, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Access lines are an audit trail: apply backpressure rather than drop them.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The worker drains the queue then flushes: buffering turns one write
        // syscall per line into one per batch under load.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(true);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    guard
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Keys(args) => {
            let target = match (&args.data_dir, &cli.config) {
                (Some(dir), _) => Target {
                    data_dir: dir.clone(),
                    master_key: match &args.master_key_env {
                        Some(v) => MasterKeySource::Env(v.clone()),
                        None => MasterKeySource::File(dir.join("master.key")),
                    },
                },
                (None, Some(path)) => {
                    Target::from_config(&Config::load(path)?, args.backend.as_deref())?
                }
                (None, None) => anyhow::bail!("give --config FILE or --data-dir DIR"),
            };
            let action = match args.action {
                KeyAction::Create { id, usage } => Action::Create { id, usage },
                KeyAction::List { json } => Action::List { json },
                KeyAction::Enable { id } => Action::Enable { id },
                KeyAction::Disable { id } => Action::Disable { id },
                KeyAction::SetUsage { id, usage } => Action::SetUsage { id, usage },
                KeyAction::Rotate { id } => Action::Rotate { id },
                KeyAction::Delete { id, yes } => Action::Delete { id, confirmed: yes },
            };
            print!("{}", admin::run(&target, action)?);
            Ok(())
        }
        Command::CheckConfig => {
            let path = cli.config.context("give --config FILE")?;
            Config::load(&path)?;
            println!("{}: configuration is valid", path.display());
            Ok(())
        }
        Command::Demo { dir, listen } => {
            let demo = xks_proxy::demo::prepare(&dir, listen)?;
            run(demo.config_path.clone(), Some(demo))
        }
        Command::Run => {
            let path = cli
                .config
                .context("give --config FILE (or try `xks-proxy demo`)")?;
            run(path, None)
        }
    }
}

fn run(path: PathBuf, demo: Option<xks_proxy::demo::Demo>) -> anyhow::Result<()> {
    let cfg = Config::load(&path)?;
    let _guard = init_logging(&cfg.log.level, cfg.log.format);
    http_shell::raise_open_file_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let handle = xks_proxy::start(&cfg).await?;
        if let Some(demo) = &demo {
            print!("{}", xks_proxy::demo::banner(demo, handle.addr));
        }
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = hup.recv() => match Config::load(&path).and_then(|c| handle.reload(&c)) {
                    Ok(()) => tracing::info!("configuration reloaded (key stores, credentials, rules, limits)"),
                    Err(e) => tracing::error!(error = format!("{e:#}"), "configuration reload failed; keeping the current one"),
                },
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        tracing::info!("shutting down");
        handle.shutdown().await;
        Ok(())
    })
}
