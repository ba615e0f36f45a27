//! The all-in-one local stack (`kms-core --demo-xks DIR`): an in-process
//! xks-proxy on the embedded key manager behind mutual TLS (a local CA
//! with server and client certificates), kms-core trusting that CA and
//! presenting the client certificate, an external key store created and
//! connected, and a demo external key store key with the alias
//! `alias/demo-xks`. Everything lives in DIR and is reused on restart.

use super::settings::{ClientCert, XksSettings};
use crate::api::Operation;
use crate::auth::Caller;
use crate::keys::ids::{AccountId, Scope};
use crate::service::Kms;
use crate::store::AliasRecord;
use anyhow::{bail, Context};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use xks_proxy::admin::{self, Action, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::pki::Ca;

pub const DEMO_STORE_NAME: &str = "demo-xks";
pub const DEMO_ALIAS: &str = "alias/demo-xks";
pub const DEMO_EXTERNAL_KEY: &str = "demo-xks-key-1";
pub const DEMO_URI_PATH: &str = "/demo/kms/xks/v1";
/// The name in kms-core's client certificate (the proxy checks it).
pub const CLIENT_NAME: &str = "cks.kms.us-east-1.amazonaws.com";

/// A local proxy and what kms-core needs to reach it.
pub struct LocalProxy {
    pub dir: PathBuf,
    pub handle: xks_proxy::ProxyHandle,
    pub ca_pem: Vec<u8>,
    pub client: ClientCert,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub uri_path: String,
    /// `https://localhost:<port>`.
    pub endpoint: String,
}

impl LocalProxy {
    /// kms-core settings trusting this proxy's CA with the client
    /// certificate.
    pub fn settings(&self) -> XksSettings {
        XksSettings::default().with_default_trust(self.ca_pem.clone(), Some(self.client.clone()))
    }
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Prepares `dir` (idempotent: CA, certificates, credential, the external
/// key) and starts the proxy on `listen` with mutual TLS.
pub async fn start_local_proxy(dir: &Path, listen: SocketAddr) -> anyhow::Result<LocalProxy> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if !dir.join("ca.pem").exists() {
        let ca = Ca::new("kms-core demo CA")?;
        ca.server(&["localhost", "127.0.0.1"])?
            .write(&dir, "server")?;
        ca.kms_client(CLIENT_NAME, None)?.write(&dir, "client")?;
        std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
    }
    let cred_path = dir.join("xks-credential.json");
    let (access_key_id, secret_access_key) = if cred_path.exists() {
        let v: serde_json::Value = serde_json::from_slice(&read(&cred_path)?)?;
        (
            v["AccessKeyId"].as_str().context("AccessKeyId")?.to_owned(),
            v["RawSecretAccessKey"]
                .as_str()
                .context("RawSecretAccessKey")?
                .to_owned(),
        )
    } else {
        let ak = xks_proxy::demo::random_access_key_id()?;
        let sk = xks_proxy::demo::random_secret()?;
        write_private(
            &cred_path,
            &json!({"AccessKeyId": ak, "RawSecretAccessKey": sk}).to_string(),
        )?;
        (ak, sk)
    };
    let target = Target {
        data_dir: dir.join("proxy-data"),
        master_key: MasterKeySource::File(dir.join("proxy-data").join("master.key")),
    };
    let listing = admin::run(&target, Action::List { json: false })?;
    if !listing
        .lines()
        .any(|l| l.split_whitespace().next() == Some(DEMO_EXTERNAL_KEY))
    {
        admin::run(
            &target,
            Action::Create {
                id: DEMO_EXTERNAL_KEY.into(),
                usage: StoredUsage::EncryptDecrypt,
            },
        )?;
    }
    let d = dir.display();
    let text = format!(
        r#"
[server]
listen = "{listen}"

[server.tls]
cert_file = "{d}/server.pem"
key_file = "{d}/server.key"
client_ca_file = "{d}/ca.pem"
client_subject_names = ["{CLIENT_NAME}"]

[backends.embedded]
type = "software"
data_dir = "{d}/proxy-data"

[[key_stores]]
name = "demo"
uri_path = "{DEMO_URI_PATH}"
region = "us-east-1"
backend = "embedded"
rate_limit = {{ requests_per_second = 100000, burst = 100000 }}

[[key_stores.credentials]]
access_key_id = "{access_key_id}"
secret_access_key = "{secret_access_key}"
"#
    );
    let config = xks_proxy::config::Config::parse(&text)?;
    config.validate()?;
    let handle = xks_proxy::start(&config).await?;
    let endpoint = format!("https://localhost:{}", handle.addr.port());
    Ok(LocalProxy {
        ca_pem: read(&dir.join("ca.pem"))?,
        client: ClientCert {
            cert_pem: read(&dir.join("client.pem"))?,
            key_pem: zeroize::Zeroizing::new(read(&dir.join("client.key"))?),
        },
        dir,
        handle,
        access_key_id,
        secret_access_key,
        uri_path: DEMO_URI_PATH.to_owned(),
        endpoint,
    })
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// What [`bootstrap`] set up.
#[derive(Debug, Clone)]
pub struct Demo {
    pub custom_key_store_id: String,
    pub key_arn: String,
}

/// In `kms`, for `account`/`region`: the external key store for `proxy`
/// (created, or updated to the proxy's current endpoint), connected; the
/// demo key and `alias/demo-xks`.
pub async fn bootstrap(
    kms: &Kms,
    proxy: &LocalProxy,
    account: &str,
    region: &str,
) -> anyhow::Result<Demo> {
    let caller = Caller::root(
        Scope {
            account: AccountId::parse(account).map_err(|e| anyhow::anyhow!("{e}"))?,
            region: region.to_owned(),
        },
        "kms-core-demo",
    );
    let call = |op: Operation, body: serde_json::Value| {
        let caller = &caller;
        async move {
            kms.call(caller, op, body)
                .await
                .map_err(|e| anyhow::anyhow!("{op}: {e}"))
        }
    };
    let existing = kms
        .store()
        .custom_key_stores(account, region)
        .into_iter()
        .find(|r| r.name == DEMO_STORE_NAME);
    let id = match existing {
        Some(r) => {
            if r.uri_endpoint != proxy.endpoint || r.access_key_id != proxy.access_key_id {
                if kms.xks().describe(&r.id).0 != "DISCONNECTED" {
                    call(
                        Operation::DisconnectCustomKeyStore,
                        json!({"CustomKeyStoreId": r.id}),
                    )
                    .await?;
                }
                call(
                    Operation::UpdateCustomKeyStore,
                    json!({
                        "CustomKeyStoreId": r.id,
                        "XksProxyUriEndpoint": proxy.endpoint,
                        "XksProxyUriPath": proxy.uri_path,
                        "XksProxyAuthenticationCredential": {
                            "AccessKeyId": proxy.access_key_id,
                            "RawSecretAccessKey": proxy.secret_access_key,
                        },
                    }),
                )
                .await?;
            }
            r.id
        }
        None => call(
            Operation::CreateCustomKeyStore,
            json!({
                "CustomKeyStoreName": DEMO_STORE_NAME,
                "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
                "XksProxyUriEndpoint": proxy.endpoint,
                "XksProxyUriPath": proxy.uri_path,
                "XksProxyConnectivity": "PUBLIC_ENDPOINT",
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": proxy.access_key_id,
                    "RawSecretAccessKey": proxy.secret_access_key,
                },
            }),
        )
        .await?["CustomKeyStoreId"]
            .as_str()
            .context("CustomKeyStoreId")?
            .to_owned(),
    };
    if kms.xks().describe(&id).0 == "FAILED" {
        call(
            Operation::DisconnectCustomKeyStore,
            json!({"CustomKeyStoreId": id}),
        )
        .await?;
    }
    call(
        Operation::ConnectCustomKeyStore,
        json!({"CustomKeyStoreId": id}),
    )
    .await?;
    wait_connected(kms, &id, Duration::from_secs(10)).await?;
    let key_arn = match kms.store().alias(account, region, DEMO_ALIAS) {
        Some(a) => caller.scope.key_arn_str(&a.target_key_id),
        None => {
            let out = call(
                Operation::CreateKey,
                json!({
                    "Origin": "EXTERNAL_KEY_STORE",
                    "CustomKeyStoreId": id,
                    "XksKeyId": DEMO_EXTERNAL_KEY,
                    "Description": "kms-core demo key in an external key store",
                }),
            )
            .await?;
            let key_id = out["KeyMetadata"]["KeyId"]
                .as_str()
                .context("KeyId")?
                .to_owned();
            let now = crate::clock::now();
            kms.store()
                .create_alias(AliasRecord {
                    account: account.to_owned(),
                    region: region.to_owned(),
                    name: DEMO_ALIAS.to_owned(),
                    target_key_id: key_id.clone(),
                    creation_date: now,
                    last_updated_date: now,
                })
                .map_err(|e| anyhow::anyhow!("creating {DEMO_ALIAS}: {e}"))?;
            caller.scope.key_arn_str(&key_id)
        }
    };
    Ok(Demo {
        custom_key_store_id: id,
        key_arn,
    })
}

/// Waits until the store is CONNECTED (or fails with its error code).
pub async fn wait_connected(kms: &Kms, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match kms.xks().describe(id) {
            ("CONNECTED", _) => return Ok(()),
            ("FAILED", code) => bail!("external key store {id} failed to connect: {code:?}"),
            _ if tokio::time::Instant::now() > deadline => {
                bail!("external key store {id} did not connect in {timeout:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
