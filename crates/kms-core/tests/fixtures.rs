//! Ciphertexts made by an earlier release still decrypt.
//!
//! `tests/fixtures/v1/` was written by kms-core as it was before the typed
//! request pipeline (issue 15), with `make_fixtures` below: a SQLite key
//! store (root key `[7; 32]`), the external key store proxy's data
//! directory (software key manager, its own `master.key`), and
//! `blobs.json` with a symmetric, an RSA (RSAES_OAEP_SHA_256) and an
//! external key store ciphertext of known plaintexts. The test copies the
//! fixture into a temporary directory, starts a real proxy and kms-core on
//! it, points the custom key store at the new proxy port and decrypts
//! every blob through aws-sdk-kms.

#[macro_use]
mod xks_env;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::EncryptionAlgorithmSpec;
use base64::Engine;
use kms_core::service::Kms;
use kms_core::store::{SqliteStore, Store};
use kms_core::xks::settings::{ClientCert, XksSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xks_env::*;
use xks_proxy::admin;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::pki::Ca;
use zeroize::Zeroizing;

const ROOT: [u8; 32] = [7; 32];
const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
            // Git keeps no permission bits but the executable one; key
            // files must be private to their owner to be loaded.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
}

/// A running proxy (fresh PKI) over `dir/data`, and kms-core over the
/// SQLite store in `dir/kms`.
struct Bed {
    _proxy: xks_proxy::ProxyHandle,
    proxy_port: u16,
    kms: kms_core::server::KmsHandle,
    sdk: aws_sdk_kms::Client,
}

async fn start(dir: &Path) -> Bed {
    let ca = Ca::new("kms-core fixture CA").unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    ca.server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir, "server")
        .unwrap();
    let client_cert = ca.client(CLIENT_CN, &[], None).unwrap();
    let config = proxy_config(dir, "127.0.0.1:0".parse().unwrap(), &[(AKID_A, SECRET_A)]);
    let proxy = xks_proxy::start(&config).await.unwrap();
    let settings = XksSettings::default().with_default_trust(
        ca.cert_pem().into_bytes(),
        Some(ClientCert {
            cert_pem: client_cert.cert_pem.as_bytes().to_vec(),
            key_pem: Zeroizing::new(client_cert.key_pem.as_bytes().to_vec()),
        }),
    );
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_with_key(
            &dir.join("kms"),
            local_key::MasterKey::from_bytes(&ROOT).unwrap(),
        )
        .unwrap(),
    );
    let kms = kms_core::server::start(
        "127.0.0.1:0".parse().unwrap(),
        Kms::new(kms_core::auth::AuthMode::Development, store)
            .unwrap()
            .with_xks_settings(settings),
        None,
    )
    .await
    .unwrap();
    let sdk = client_for(kms.addr);
    Bed {
        proxy_port: proxy.addr.port(),
        _proxy: proxy,
        kms,
        sdk,
    }
}

async fn decrypt(
    c: &aws_sdk_kms::Client,
    blob: &str,
    alg: Option<&str>,
    key: Option<&str>,
) -> Vec<u8> {
    let mut req = c
        .decrypt()
        .ciphertext_blob(Blob::new(B64.decode(blob).unwrap()));
    if let Some(a) = alg {
        req = req.encryption_algorithm(EncryptionAlgorithmSpec::from(a));
    }
    if let Some(k) = key {
        req = req.key_id(k);
    }
    if alg.is_none() {
        req = req.encryption_context("purpose", "fixture");
    }
    req.send()
        .await
        .unwrap()
        .plaintext()
        .unwrap()
        .as_ref()
        .to_vec()
}

/// Writes `tests/fixtures/v1` (run once, by hand, with the release whose
/// ciphertexts must stay readable): `cargo test -p kms-core --test
/// fixtures -- --ignored make_fixtures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn make_fixtures() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("kms")).unwrap();
    admin::provision(
        &admin_target(&dir),
        &[(KEY_1, StoredUsage::EncryptDecrypt)],
        &[],
    )
    .unwrap();
    let bed = start(&dir).await;
    let c = &bed.sdk;
    let sym = c.create_key().send().await.unwrap();
    let sym = sym.key_metadata().unwrap().arn().unwrap().to_owned();
    let sym_blob = c
        .encrypt()
        .key_id(&sym)
        .plaintext(Blob::new(b"symmetric fixture".to_vec()))
        .encryption_context("purpose", "fixture")
        .send()
        .await
        .unwrap();
    let rsa = c
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap();
    let rsa = rsa.key_metadata().unwrap().arn().unwrap().to_owned();
    let rsa_blob = c
        .encrypt()
        .key_id(&rsa)
        .plaintext(Blob::new(b"rsa fixture".to_vec()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    let store_id = StoreSpec {
        name: "fixture".into(),
        endpoint: format!("https://localhost:{}", bed.proxy_port),
        path: PATH_MAIN.into(),
        connectivity: aws_sdk_kms::types::XksProxyConnectivityType::PublicEndpoint,
        credential: (AKID_A, SECRET_A),
    }
    .create(c)
    .await
    .unwrap();
    c.connect_custom_key_store()
        .custom_key_store_id(&store_id)
        .send()
        .await
        .unwrap();
    assert_eq!(settled_state_of(c, &store_id).await.0, "CONNECTED");
    let xks = xks_key_request(c, &store_id, KEY_1)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let xks_blob = c
        .encrypt()
        .key_id(&xks)
        .plaintext(Blob::new(b"external key store fixture".to_vec()))
        .encryption_context("purpose", "fixture")
        .send()
        .await
        .unwrap();
    c.disconnect_custom_key_store()
        .custom_key_store_id(&store_id)
        .send()
        .await
        .unwrap();
    let enc = |o: &aws_sdk_kms::operation::encrypt::EncryptOutput| {
        B64.encode(o.ciphertext_blob().unwrap().as_ref())
    };
    let blobs = serde_json::json!({
        "custom_key_store_id": store_id,
        "symmetric": { "key": sym, "blob": enc(&sym_blob), "plaintext": "symmetric fixture" },
        "rsa": { "key": rsa, "blob": enc(&rsa_blob), "plaintext": "rsa fixture" },
        "xks": { "key": xks, "blob": enc(&xks_blob), "plaintext": "external key store fixture" },
    });
    std::fs::write(
        dir.join("blobs.json"),
        serde_json::to_string_pretty(&blobs).unwrap(),
    )
    .unwrap();
    bed.kms.shutdown().await;
    // The PKI is made fresh by every run; only the data is the fixture.
    for f in ["ca.pem", "server.pem", "server.key"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ciphertexts_of_the_previous_release_still_decrypt() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    let blobs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("blobs.json")).unwrap()).unwrap();
    let bed = start(tmp.path()).await;
    let c = &bed.sdk;
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();

    let sym = &blobs["symmetric"];
    let got = decrypt(c, &s(&sym["blob"]), None, None).await;
    assert_eq!(got, s(&sym["plaintext"]).as_bytes());

    let rsa = &blobs["rsa"];
    let got = decrypt(
        c,
        &s(&rsa["blob"]),
        Some("RSAES_OAEP_SHA_256"),
        Some(&s(&rsa["key"])),
    )
    .await;
    assert_eq!(got, s(&rsa["plaintext"]).as_bytes());

    // The external key store: the proxy listens on a new port now.
    let store_id = s(&blobs["custom_key_store_id"]);
    c.update_custom_key_store()
        .custom_key_store_id(&store_id)
        .xks_proxy_uri_endpoint(format!("https://localhost:{}", bed.proxy_port))
        .send()
        .await
        .unwrap();
    c.connect_custom_key_store()
        .custom_key_store_id(&store_id)
        .send()
        .await
        .unwrap();
    assert_eq!(settled_state_of(c, &store_id).await.0, "CONNECTED");
    let xks = &blobs["xks"];
    let got = decrypt(c, &s(&xks["blob"]), None, None).await;
    assert_eq!(got, s(&xks["plaintext"]).as_bytes());
    bed.kms.shutdown().await;
}
