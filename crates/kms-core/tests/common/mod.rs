//! Shared by the kms-core integration tests: a server on 127.0.0.1:0 and
//! an official SDK client pointed at it.
#![allow(dead_code)]

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::ProvideErrorMetadata;
use kms_core::auth::AuthMode;
use kms_core::service::Kms;
use kms_core::store::{MemoryStore, Store};
use std::sync::Arc;

/// Starts kms-core (plain HTTP) over `store`.
pub async fn start_with(auth: AuthMode, store: Arc<dyn Store>) -> kms_core::server::KmsHandle {
    kms_core::server::start(
        "127.0.0.1:0".parse().unwrap(),
        Kms::new(auth, store).unwrap(),
        None,
    )
    .await
    .unwrap()
}

/// Development mode over a fresh in-memory store.
pub async fn start_dev() -> kms_core::server::KmsHandle {
    start_with(AuthMode::Development, Arc::new(MemoryStore::in_memory())).await
}

/// An aws-sdk-kms client for `addr` with these credentials and region.
pub fn client(addr: std::net::SocketAddr, ak: &str, sk: &str, region: &str) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// The AWS error code of a failed call.
pub fn code<E: ProvideErrorMetadata, R>(e: aws_sdk_kms::error::SdkError<E, R>) -> String {
    ProvideErrorMetadata::code(&e).unwrap_or("?").to_owned()
}

/// The kms-core binary on 127.0.0.1:0 with `args` and `envs` (RUST_LOG
/// is info); returns it with the port it logged.
pub fn spawn_binary(
    args: &[&std::ffi::OsStr],
    envs: &[(&str, &str)],
) -> (std::process::Child, u16) {
    let (child, port, _) = spawn_binary_logged(args, envs);
    (child, port)
}

/// [`spawn_binary`], also keeping every line the binary writes to stdout
/// (its service log).
pub fn spawn_binary_logged(
    args: &[&std::ffi::OsStr],
    envs: &[(&str, &str)],
) -> (
    std::process::Child,
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kms-core"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("kms-core listening") {
                let port = line
                    .split("addr")
                    .nth(1)
                    .map(|rest| rest.trim_start_matches(['=', '"', ':']))
                    .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '"').next())
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let Some(p) = port {
                    let _ = tx.send(p);
                }
            }
            kept.lock().unwrap().push(line);
        }
    });
    let port = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("kms-core did not start");
    (child, port, lines)
}
