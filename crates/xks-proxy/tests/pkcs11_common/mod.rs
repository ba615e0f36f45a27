//! SoftHSM2 set-up shared by the PKCS#11 test binaries.
#![allow(dead_code)]

use crate::common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use xks_proxy::backend::pkcs11::provision::{softhsm, NewKey};
use xks_proxy::backend::pkcs11::Pkcs11KeyManager;
use xks_proxy::backend::KeyManager;
use xks_proxy::config::{BackendConfig, Config};
use xks_proxy::health::HealthMonitor;
use xks_proxy::keystore::BackendHandle;
use xks_proxy::pki::Ca;

pub const HEALTH: &str = "xks-health";

/// Writes TLS material and a configuration whose key store "a" (PATH_A,
/// AK_A1) uses a pkcs11 backend with the given extra settings.
pub fn pkcs11_env_config(
    token: &softhsm::TestToken,
    backend_extra: &str,
    server_extra: &str,
) -> (tempfile::TempDir, Ca, std::path::PathBuf) {
    let hsm = softhsm::shared().unwrap();
    let (dir, ca) = pki_dir();
    std::fs::write(dir.path().join("pin"), format!("{}\n", token.user_pin)).unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[server.tls]
cert_file = "server.pem"
key_file = "server.key"

[health]
refresh_secs = 1

[backends.hsm]
type = "pkcs11"
module = "{module}"
token_label = "{label}"
user_pin_file = "pin"
health_key_label = "{HEALTH}"
{backend_extra}

[[key_stores]]
name = "a"
uri_path = "{PATH_A}"
region = "{REGION}"
backend = "hsm"
[[key_stores.credentials]]
access_key_id = "{AK_A1}"
secret_access_key = "{SK_A1}"
"#,
        module = hsm.module.display(),
        label = token.label,
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    (dir, ca, path)
}

pub async fn start_env(token: &softhsm::TestToken, backend_extra: &str, server_extra: &str) -> Env {
    let (dir, ca, config_path) = pkcs11_env_config(token, backend_extra, server_extra);
    start_prepared(dir, ca, config_path).await
}

pub fn token_with(prefix: &str, keys: &[NewKey<'_>]) -> softhsm::TestToken {
    let hsm = softhsm::shared().unwrap();
    let token = hsm.new_token(prefix).unwrap();
    hsm.key(&token, &NewKey::aes256(HEALTH)).unwrap();
    for k in keys {
        hsm.key(&token, k).unwrap();
    }
    token
}

pub fn health_body() -> Value {
    json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}})
}

pub async fn metadata_of(env: &Env, key: &str) -> Resp {
    env.call(
        format!("{PATH_A}/keys/{key}/metadata"),
        json!({"requestMetadata": metadata("DescribeKey")}),
    )
    .await
}

pub async fn encrypt_raw(env: &Env, key: &str, pt: &[u8], aad: Option<&[u8]>) -> Resp {
    env.call(
        format!("{PATH_A}/keys/{key}/encrypt"),
        encrypt_body(pt, aad, true),
    )
    .await
}

pub async fn decrypt_raw(env: &Env, key: &str, body: Value) -> Resp {
    env.call(format!("{PATH_A}/keys/{key}/decrypt"), body).await
}

pub fn backend_of(env: &Env) -> Arc<Pkcs11KeyManager> {
    let BackendConfig::Pkcs11(cfg) = &env.config.backends["hsm"] else {
        panic!("not pkcs11")
    };
    // A second manager on the same token shares the loaded module.
    Pkcs11KeyManager::open(cfg).unwrap()
}

/// Starts the proxy over a backend the test keeps a handle on (to occupy
/// its sessions or reset its module).
pub async fn start_env_with_backend(
    token: &softhsm::TestToken,
    backend_extra: &str,
    server_extra: &str,
) -> (Env, Arc<Pkcs11KeyManager>) {
    let (dir, ca, config_path) = pkcs11_env_config(token, backend_extra, server_extra);
    let config = Config::load(&config_path).unwrap();
    let BackendConfig::Pkcs11(p) = &config.backends["hsm"] else {
        panic!("not pkcs11")
    };
    let km = Pkcs11KeyManager::open(p).unwrap();
    let backend: Arc<dyn KeyManager> = km.clone();
    let backends = HashMap::from([(
        "hsm".to_owned(),
        BackendHandle {
            health: HealthMonitor::new(Arc::clone(&backend)),
            backend,
            config: config.backends["hsm"].clone(),
        },
    )]);
    let handle = xks_proxy::start_with_backends(&config, backends)
        .await
        .unwrap();
    (
        Env {
            dir,
            handle,
            ca,
            config,
            config_path,
        },
        km,
    )
}
