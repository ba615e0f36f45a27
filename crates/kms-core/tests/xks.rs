//! External key stores end to end: aws-sdk-kms → kms-core (real socket) →
//! mutual TLS + SigV4 → a real xks-proxy on the embedded key manager.
//! Custom key store management, XKS keys, double-encrypted cryptographic
//! operations.

#[macro_use]
mod xks_env;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
use aws_sdk_kms::operation::encrypt::builders::EncryptFluentBuilder;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, XksProxyConnectivityType};
use xks_env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_key_store_lifecycle() {
    let env = Env::start().await;
    let c = &env.sdk;
    let id = env.create_store("store-1", PATH_MAIN).await;
    assert!(id.starts_with("cks-") && id.len() == 21, "{id}");

    // Described without the secret, DISCONNECTED.
    let out = c.describe_custom_key_stores().send().await.unwrap();
    assert_eq!(out.custom_key_stores().len(), 1);
    let s = &out.custom_key_stores()[0];
    assert_eq!(s.custom_key_store_id(), Some(id.as_str()));
    assert_eq!(s.custom_key_store_name(), Some("store-1"));
    assert_eq!(
        s.custom_key_store_type().unwrap().as_str(),
        "EXTERNAL_KEY_STORE"
    );
    assert_eq!(s.connection_state().unwrap().as_str(), "DISCONNECTED");
    assert!(s.creation_date().is_some());
    let p = s.xks_proxy_configuration().unwrap();
    assert_eq!(p.access_key_id(), Some(AKID_A));
    assert_eq!(p.uri_endpoint(), Some(env.endpoint().as_str()));
    assert_eq!(p.uri_path(), Some(PATH_MAIN));
    assert_eq!(p.connectivity().unwrap().as_str(), "PUBLIC_ENDPOINT");

    let refused = [
        // Uniqueness: name, and endpoint + path.
        (
            env.spec("store-1", PATH_SECOND),
            "CustomKeyStoreNameInUseException",
        ),
        (env.spec("store-2", PATH_MAIN), "XksProxyUriInUseException"),
        // A wrong credential, a path no key store serves: the proxy is probed.
        (
            env.spec("store-2", PATH_SECOND)
                .credential(AKID_B, SECRET_B),
            "XksProxyIncorrectAuthenticationCredentialException",
        ),
        (
            env.spec("store-2", "/nowhere/kms/xks/v1"),
            "XksProxyInvalidConfigurationException",
        ),
        (
            env.spec("store-2", PATH_MAIN)
                .endpoint("https://127.0.0.1:1"),
            "XksProxyUriUnreachableException",
        ),
        // Validation from the model (the endpoint pattern allows a port).
        (
            env.spec("store-2", PATH_MAIN)
                .endpoint("http://localhost:1234"),
            "ValidationException",
        ),
        (
            env.spec("store-2", PATH_MAIN)
                .connectivity(XksProxyConnectivityType::VpcEndpointService),
            "UnsupportedOperationException",
        ),
    ];
    for (spec, want) in refused {
        let what = format!("{} {} {}", spec.name, spec.endpoint, spec.path);
        assert_eq!(env.create_store_error(spec).await, want, "{what}");
    }

    // Filters and their errors.
    assert_fails!(
        c.describe_custom_key_stores()
            .custom_key_store_id("cks-00000000000000000"),
        "CustomKeyStoreNotFoundException"
    );
    assert_fails!(
        c.describe_custom_key_stores().custom_key_store_name("nope"),
        "CustomKeyStoreNotFoundException"
    );
    assert_fails!(
        c.describe_custom_key_stores()
            .custom_key_store_name("store-1")
            .custom_key_store_id(&id),
        "ValidationException"
    );
    let by_name = c
        .describe_custom_key_stores()
        .custom_key_store_name("store-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_name.custom_key_stores()[0].custom_key_store_id(),
        Some(id.as_str())
    );

    // Pagination over three stores.
    let id2 = env.create_store("store-2", PATH_SECOND).await;
    let id3 = env
        .spec("store-3", PATH_MAIN)
        .endpoint(format!("https://127.0.0.1:{}", env.proxy_addr.port()))
        .create(c)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .describe_custom_key_stores()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.custom_key_stores()
                .iter()
                .map(|s| s.custom_key_store_id().unwrap().to_owned()),
        );
        assert!(page.custom_key_stores().len() <= 2);
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_owned);
    }
    let mut want = vec![id.clone(), id2.clone(), id3.clone()];
    want.sort();
    assert_eq!(seen, want);
    assert_fails!(
        c.describe_custom_key_stores().marker("!!"),
        "InvalidMarkerException"
    );

    // Connect: asynchronous, then CONNECTED.
    assert_eq!(env.connect(&id).await, ("CONNECTED".into(), None));
    // Connecting a connected store is accepted.
    c.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    // Endpoint changes need DISCONNECTED; name/credential/path do not.
    assert_fails!(
        c.update_custom_key_store()
            .custom_key_store_id(&id)
            .xks_proxy_uri_endpoint(format!(
                "https://localhost:{}",
                env.proxy_addr.port() as u32 + 1
            )),
        "CustomKeyStoreInvalidStateException"
    );
    c.update_custom_key_store()
        .custom_key_store_id(&id)
        .new_custom_key_store_name("store-1-renamed")
        .send()
        .await
        .unwrap();
    assert_fails!(
        c.update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("store-2"),
        "CustomKeyStoreNameInUseException"
    );
    // Delete needs DISCONNECTED.
    assert_fails!(
        c.delete_custom_key_store().custom_key_store_id(&id),
        "CustomKeyStoreInvalidStateException"
    );

    // A key makes the store undeletable.
    let key = env.create_key(&id, KEY_1).await;
    env.disconnect(&id).await;
    assert_eq!(env.state(&id).await, ("DISCONNECTED".into(), None));
    assert_fails!(
        c.disconnect_custom_key_store().custom_key_store_id(&id),
        "CustomKeyStoreInvalidStateException"
    );
    assert_fails!(
        c.delete_custom_key_store().custom_key_store_id(&id),
        "CustomKeyStoreHasCMKsException"
    );
    // Keys of a disconnected store are Unavailable.
    let d = c.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state().unwrap().as_str(),
        "Unavailable"
    );
    assert_fails!(encrypt_x(c, &key), "KMSInvalidStateException");
    // Even a disabled key is Unavailable (not Disabled) while disconnected.
    c.disable_key().key_id(&key).send().await.unwrap();
    let e = encrypt_x(c, &key)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("KMSInvalidStateException"));
    assert_eq!(e.message(), Some(format!("{key} is unavailable.").as_str()));
    c.enable_key().key_id(&key).send().await.unwrap();
    // Update while disconnected: endpoint change (probed) is accepted.
    c.update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_uri_endpoint(format!("https://127.0.0.1:{}", env.proxy_addr.port()))
        .xks_proxy_uri_path("/second/kms/xks/v1")
        .send()
        .await
        .map(|_| ())
        .unwrap_or_else(|e| {
            // store-2 already uses that endpoint+path? No: localhost vs 127.0.0.1.
            panic!("{:?}", e.into_service_error())
        });
    // Delete the key (pending deletion still counts), then the store.
    c.delete_custom_key_store()
        .custom_key_store_id(&id2)
        .send()
        .await
        .unwrap();
    assert_fails!(
        c.delete_custom_key_store().custom_key_store_id(&id2),
        "CustomKeyStoreNotFoundException"
    );
    let out = c.describe_custom_key_stores().send().await.unwrap();
    assert_eq!(out.custom_key_stores().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_keys_are_validated_through_the_proxy() {
    let env = Env::start().await;
    let c = &env.sdk;
    let id = env.create_store("s", PATH_MAIN).await;
    // Not connected yet.
    assert_fails!(
        xks_key_request(c, &id, KEY_1),
        "CustomKeyStoreInvalidStateException"
    );
    assert_eq!(env.connect(&id).await.0, "CONNECTED");
    let create = |xks: &str| xks_key_request(c, &id, xks).send();
    let out = create(KEY_1).await.unwrap();
    let m = out.key_metadata().unwrap();
    assert_eq!(m.origin().unwrap().as_str(), "EXTERNAL_KEY_STORE");
    assert_eq!(m.custom_key_store_id(), Some(id.as_str()));
    assert_eq!(m.xks_key_configuration().unwrap().id(), Some(KEY_1));
    assert_eq!(m.key_state().unwrap().as_str(), "Enabled");
    let arn = m.arn().unwrap().to_owned();
    let d = c.describe_key().key_id(&arn).send().await.unwrap();
    let dm = d.key_metadata().unwrap();
    assert_eq!(dm.xks_key_configuration().unwrap().id(), Some(KEY_1));
    assert_eq!(dm.custom_key_store_id(), Some(id.as_str()));

    assert_eq!(
        code(create(KEY_1).await.unwrap_err()),
        "XksKeyAlreadyInUseException"
    );
    assert_eq!(
        code(create("no-such-key").await.unwrap_err()),
        "XksKeyNotFoundException"
    );
    assert_eq!(
        code(create(ENCRYPT_ONLY).await.unwrap_err()),
        "XksKeyInvalidConfigurationException"
    );
    assert_eq!(
        code(create(DISABLED).await.unwrap_err()),
        "XksKeyInvalidConfigurationException"
    );
    // Only symmetric keys; unknown stores; XksKeyId needs the origin.
    assert_fails!(
        xks_key_request(c, &id, KEY_2).key_spec(aws_sdk_kms::types::KeySpec::Rsa2048),
        "UnsupportedOperationException"
    );
    assert_fails!(
        xks_key_request(c, "cks-00000000000000000", KEY_2),
        "CustomKeyStoreNotFoundException"
    );
    let e = c.create_key().xks_key_id(KEY_2).send().await.unwrap_err();
    assert_eq!(code(e), "ValidationException");
    // Operations AWS does not support on XKS keys.
    assert_fails!(
        c.enable_key_rotation().key_id(&arn),
        "UnsupportedOperationException"
    );
    assert_fails!(
        c.get_parameters_for_import()
            .key_id(&arn)
            .wrapping_algorithm(aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256)
            .wrapping_key_spec(aws_sdk_kms::types::WrappingKeySpec::Rsa2048),
        "UnsupportedOperationException"
    );
    assert_fails!(
        c.generate_data_key_pair()
            .key_id(&arn)
            .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccNistP256),
        "UnsupportedOperationException"
    );
    // The same external key in another store is fine.
    let id2 = env.create_store("s2", PATH_SECOND).await;
    assert_eq!(env.connect(&id2).await.0, "CONNECTED");
    env.create_key(&id2, KEY_1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_encrypted_round_trips() {
    let env = Env::start().await;
    let c = &env.sdk;
    let (store, key_a) = env.connected_key("s", KEY_1).await;
    // Key B on the same external key (another store, same proxy).
    let store_b = env.create_store("s-b", PATH_SECOND).await;
    env.connect(&store_b).await;
    let key_b = env.create_key(&store_b, KEY_1).await;
    let plain_key = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();

    for len in [0usize, 1, 32, 4096] {
        let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut req = c.encrypt().key_id(&key_a).encryption_context("app", "xks");
        if len > 0 {
            req = req.plaintext(Blob::new(pt.clone()));
        }
        let ct = match req.send().await {
            Ok(o) => o.ciphertext_blob().unwrap().as_ref().to_vec(),
            Err(e) if len == 0 => {
                assert_eq!(code(e), "ValidationException");
                continue;
            }
            Err(e) => panic!("{len}: {:?}", e.into_service_error()),
        };
        assert_eq!(ct[0], 2, "double-encrypted blob format");
        assert!(ct.len() > len + 49);
        let out = decrypt_in_app(c, ct.clone()).send().await.unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), &pt[..]);
        assert_eq!(out.key_id(), Some(key_a.as_str()));
    }
    let ct = c
        .encrypt()
        .key_id(&key_a)
        .plaintext(Blob::new(b"secret".to_vec()))
        .encryption_context("app", "xks")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .as_ref()
        .to_vec();
    // Wrong context, altered bytes: InvalidCiphertextException.
    assert_fails!(
        c.decrypt()
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_context("app", "other"),
        "InvalidCiphertextException"
    );
    for at in [20usize, 40, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[at] ^= 1;
        let e = decrypt_in_app(c, bad).send().await.unwrap_err();
        assert_eq!(code(e), "InvalidCiphertextException", "byte {at}");
    }
    // Key A's ciphertext relabelled as key B's (same external key): refused.
    let b_id = key_b.rsplit('/').next().unwrap();
    let b_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&b_id.replace('-', "")[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut relabelled = ct.clone();
    relabelled[1..17].copy_from_slice(&b_bytes);
    assert_fails!(decrypt_in_app(c, relabelled), "InvalidCiphertextException");
    // Naming another key: IncorrectKeyException.
    assert_fails!(
        decrypt_in_app(c, ct.clone()).key_id(&key_b),
        "IncorrectKeyException"
    );

    // GenerateDataKey(WithoutPlaintext).
    let dk = c
        .generate_data_key()
        .key_id(&key_a)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    let plain = dk.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let back = c
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), &plain[..]);
    let wp = c
        .generate_data_key_without_plaintext()
        .key_id(&key_a)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert_eq!(wp.ciphertext_blob().unwrap().as_ref()[0], 2);
    let back = c
        .decrypt()
        .ciphertext_blob(wp.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref().len(), 64);

    // ReEncrypt: XKS → XKS (A → B), XKS → AWS_KMS, AWS_KMS → XKS.
    let to_b = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(ct.clone()))
        .source_encryption_context("app", "xks")
        .destination_key_id(&key_b)
        .destination_encryption_context("d", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(to_b.source_key_id(), Some(key_a.as_str()));
    assert_eq!(to_b.key_id(), Some(key_b.as_str()));
    let to_plain = c
        .re_encrypt()
        .ciphertext_blob(to_b.ciphertext_blob().unwrap().clone())
        .source_encryption_context("d", "1")
        .destination_key_id(&plain_key)
        .send()
        .await
        .unwrap();
    assert_eq!(to_plain.ciphertext_blob().unwrap().as_ref()[0], 1);
    let back_to_a = c
        .re_encrypt()
        .ciphertext_blob(to_plain.ciphertext_blob().unwrap().clone())
        .destination_key_id(&key_a)
        .send()
        .await
        .unwrap();
    let out = c
        .decrypt()
        .ciphertext_blob(back_to_a.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"secret");

    // DryRun never reaches the proxy and says so.
    assert_fails!(
        encrypt_x(c, &key_a).dry_run(true),
        "DryRunOperationException"
    );

    assert_fails!(
        c.re_encrypt()
            .ciphertext_blob(Blob::new(ct.clone()))
            .source_encryption_context("app", "xks")
            .destination_key_id(&key_b)
            .dry_run(true),
        "DryRunOperationException"
    );
    assert_fails!(
        c.re_encrypt()
            .ciphertext_blob(Blob::new(ct.clone()))
            .source_encryption_context("app", "xks")
            .destination_key_id("alias/none")
            .dry_run(true),
        "NotFoundException"
    );
    assert_fails!(
        c.generate_random()
            .number_of_bytes(8)
            .custom_key_store_id(&store),
        "UnsupportedOperationException"
    );

    // Disabled KMS key: DisabledException; aliases work.
    c.create_alias()
        .alias_name("alias/xks-a")
        .target_key_id(&key_a)
        .send()
        .await
        .unwrap();
    c.encrypt()
        .key_id("alias/xks-a")
        .plaintext(Blob::new(b"via alias".to_vec()))
        .send()
        .await
        .unwrap();
    c.disable_key().key_id(&key_a).send().await.unwrap();
    assert_fails!(encrypt_x(c, &key_a), "DisabledException");
    assert_fails!(decrypt_in_app(c, ct.clone()), "DisabledException");
    c.enable_key().key_id(&key_a).send().await.unwrap();
    assert_fails!(encrypt_too_long(c, &key_a), "ValidationException");
    let _ = e_message_is_kept(c, &key_a).await;
}

/// Encrypt of "x" under `key`, to be completed and sent.
fn encrypt_x(c: &aws_sdk_kms::Client, key: &str) -> EncryptFluentBuilder {
    c.encrypt().key_id(key).plaintext(Blob::new(b"x".to_vec()))
}

/// Encrypt of 4097 bytes (one too many) under `key`, to be completed and
/// sent.
fn encrypt_too_long(c: &aws_sdk_kms::Client, key: &str) -> EncryptFluentBuilder {
    c.encrypt().key_id(key).plaintext(Blob::new(vec![0; 4097]))
}

/// The ciphertext blob of `plaintext` under `key` (Encrypt must succeed).
async fn ciphertext_of(c: &aws_sdk_kms::Client, key: &str, plaintext: &[u8]) -> Blob {
    c.encrypt()
        .key_id(key)
        .plaintext(Blob::new(plaintext.to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone()
}

/// Decrypt of `ct` in the encryption context app=xks, to be completed and
/// sent.
fn decrypt_in_app(c: &aws_sdk_kms::Client, ct: Vec<u8>) -> DecryptFluentBuilder {
    c.decrypt()
        .ciphertext_blob(Blob::new(ct))
        .encryption_context("app", "xks")
}

/// ValidationException for a too long plaintext keeps AWS's message.
async fn e_message_is_kept(c: &aws_sdk_kms::Client, key: &str) -> String {
    let e = encrypt_too_long(c, key)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let m = e.message().unwrap_or_default().to_owned();
    assert!(m.contains("4096"), "{m}");
    m
}

/// A durable kms-core keeps its external key stores (the credential
/// wrapped under the root key), reconnects the connected ones when it
/// restarts, and decrypts what it encrypted before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_key_stores_survive_a_restart() {
    use kms_core::store::{SqliteStore, Store};
    use std::sync::Arc;
    let env = Env::start().await;
    let data = tempfile::tempdir().unwrap();
    let root = local_key::MasterKeySource::File(data.path().join("root.key"));
    let settings = || {
        kms_core::xks::XksSettings::default().with_default_trust(
            env.ca.cert_pem().into_bytes(),
            Some(kms_core::xks::settings::ClientCert {
                cert_pem: env.kms_client_cert.cert_pem.as_bytes().to_vec(),
                key_pem: zeroize::Zeroizing::new(env.kms_client_cert.key_pem.as_bytes().to_vec()),
            }),
        )
    };
    let start = |store: Arc<dyn Store>| {
        let kms = kms_core::service::Kms::new(kms_core::auth::AuthMode::Development, store)
            .unwrap()
            .with_xks_settings(settings());
        kms.resume_custom_key_stores();
        kms_core::server::start("127.0.0.1:0".parse().unwrap(), kms, None)
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path(), &root).unwrap());
    let kms = start(store).await.unwrap();
    let c = xks_env::client_for(kms.addr);
    let id = env.spec("durable", PATH_MAIN).create(&c).await.unwrap();
    c.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let mut key = None;
    for _ in 0..200 {
        let r = xks_key_request(&c, &id, KEY_1).send().await;
        match r {
            Ok(o) => {
                key = Some(o.key_metadata().unwrap().arn().unwrap().to_owned());
                break;
            }
            Err(e) => {
                assert_eq!(code(e), "CustomKeyStoreInvalidStateException");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    let key = key.expect("the store never connected");
    let ct = ciphertext_of(&c, &key, b"durable").await;
    kms.shutdown().await;
    // The secret is not in the database in clear.
    let db = std::fs::read(data.path().join("kms.db")).unwrap();
    assert!(!db.windows(SECRET_A.len()).any(|w| w == SECRET_A.as_bytes()));

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path(), &root).unwrap());
    let kms = start(store).await.unwrap();
    let c = xks_env::client_for(kms.addr);
    let mut plain = None;
    for _ in 0..200 {
        match c.decrypt().ciphertext_blob(ct.clone()).send().await {
            Ok(o) => {
                plain = Some(o.plaintext().unwrap().as_ref().to_vec());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    assert_eq!(plain.as_deref(), Some(&b"durable"[..]));
    let out = c
        .describe_custom_key_stores()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let s = &out.custom_key_stores()[0];
    assert_eq!(s.connection_state().unwrap().as_str(), "CONNECTED");
    assert_eq!(s.custom_key_store_name(), Some("durable"));
    kms.shutdown().await;
}

/// requestMetadata reaches the proxy: its authorization rules see the
/// caller's principal (Mallory denied) and the KMS operation (ReEncrypt
/// denied), both with KMSInvalidStateException as AWS reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metadata_reaches_the_proxy_authorization_rules() {
    let auth = kms_core::auth::AuthMode::configured_from_toml(
        r#"
[[credentials]]
access_key_id = "AKIAALICEALICEALICE0"
secret_access_key = "alice-secret-alice-secret-alice-secret"
account_id = "111122223333"
principal_arn = "arn:aws:iam::111122223333:user/Alice"

[[credentials]]
access_key_id = "AKIAMALLORYMALLORY00"
secret_access_key = "mallory-secret-mallory-secret-mallory"
account_id = "111122223333"
principal_arn = "arn:aws:iam::111122223333:user/Mallory"
"#,
    )
    .unwrap();
    let env = Env::start_with(Options {
        auth,
        credentials: (
            "AKIAALICEALICEALICE0",
            "alice-secret-alice-secret-alice-secret",
        ),
        ..Default::default()
    })
    .await;
    let id = env.create_store("guarded", PATH_GUARDED).await;
    assert_eq!(env.connect(&id).await.0, "CONNECTED");
    let key = env.create_key(&id, KEY_1).await;
    let alice = &env.sdk;
    let ct = ciphertext_of(alice, &key, b"for alice").await;
    let mallory = xks_env::common_client(
        env.kms.addr,
        "AKIAMALLORYMALLORY00",
        "mallory-secret-mallory-secret-mallory",
    );
    let e = mallory
        .decrypt()
        .ciphertext_blob(ct.clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("KMSInvalidStateException"));
    assert!(e.message().unwrap().contains("denied access"), "{e:?}");
    let e = alice
        .re_encrypt()
        .ciphertext_blob(ct.clone())
        .destination_key_id(&key)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("KMSInvalidStateException"));
    assert!(e.message().unwrap().contains("denied access"), "{e:?}");
    let back = alice.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"for alice");
}

/// The proxy sees the real caller in requestMetadata.awsPrincipalArn also
/// when a grant (Mallory, whose identity policy allows no Decrypt) or
/// another account's key policy statement (Grace) authorized the call: the
/// proxy's rules deny both principals (KMSInvalidStateException "denied
/// access"), which they would not if kms-core sent the key owner's ARN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_cross_account_calls_carry_the_real_caller() {
    let auth = kms_core::auth::AuthMode::configured_from_toml(
        r#"
[[credentials]]
access_key_id = "AKIAALICEALICEALICE0"
secret_access_key = "alice-secret-alice-secret-alice-secret"
account_id = "111122223333"
principal_arn = "arn:aws:iam::111122223333:user/Alice"

[[credentials]]
access_key_id = "AKIAMALLORYMALLORY00"
secret_access_key = "mallory-secret-mallory-secret-mallory"
account_id = "111122223333"
principal_arn = "arn:aws:iam::111122223333:user/Mallory"
identity_policies = ['{"Statement":{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*"}}']

[[credentials]]
access_key_id = "AKIAGRACEGRACEGRACE0"
secret_access_key = "grace-secret-grace-secret-grace-secret"
account_id = "444455556666"
principal_arn = "arn:aws:iam::444455556666:user/Grace"
"#,
    )
    .unwrap();
    let env = Env::start_with(Options {
        auth,
        credentials: (
            "AKIAALICEALICEALICE0",
            "alice-secret-alice-secret-alice-secret",
        ),
        ..Default::default()
    })
    .await;
    let id = env.create_store("guarded", PATH_GUARDED).await;
    assert_eq!(env.connect(&id).await.0, "CONNECTED");
    let key = env.create_key(&id, KEY_1).await;
    let alice = &env.sdk;
    let arn = alice
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let ct = ciphertext_of(alice, &key, b"guarded").await;
    let mallory = xks_env::common_client(
        env.kms.addr,
        "AKIAMALLORYMALLORY00",
        "mallory-secret-mallory-secret-mallory",
    );
    let grace = xks_env::common_client(
        env.kms.addr,
        "AKIAGRACEGRACEGRACE0",
        "grace-secret-grace-secret-grace-secret",
    );
    let decrypt =
        |c: &aws_sdk_kms::Client| c.decrypt().key_id(&arn).ciphertext_blob(ct.clone()).send();
    // Without a grant, kms-core itself refuses both.
    for c in [&mallory, &grace] {
        let e = decrypt(c).await.unwrap_err().into_service_error();
        assert_eq!(e.code(), Some("AccessDeniedException"), "{e:?}");
    }
    alice
        .create_grant()
        .key_id(&key)
        .grantee_principal("arn:aws:iam::111122223333:user/Mallory")
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    alice
        .put_key_policy()
        .key_id(&key)
        .policy(
            r#"{"Statement":[
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    // Now kms-core allows them; the proxy sees who they are and denies.
    for c in [&mallory, &grace] {
        let e = decrypt(c).await.unwrap_err().into_service_error();
        assert_eq!(e.code(), Some("KMSInvalidStateException"), "{e:?}");
        assert!(e.message().unwrap().contains("denied access"), "{e:?}");
    }
    let back = alice.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"guarded");
}

/// SIGHUP's reload of the external key store TLS settings reaches
/// connected stores without a disconnect: a CA that does not sign the
/// proxy's certificate makes calls fail at once, the right one heals them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_tls_settings_reload_reaches_connected_stores() {
    let env = Env::start().await;
    let (id, key) = env.connected_key("reload", KEY_1).await;
    let c = &env.sdk;
    let encrypt = || {
        c.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"tls".to_vec()))
            .send()
    };
    encrypt().await.unwrap();
    let other = xks_proxy::pki::Ca::new("another CA").unwrap();
    assert_eq!(
        env.kms
            .kms
            .reload_xks_settings(env.settings_trusting(&other)),
        1
    );
    let e = encrypt().await.unwrap_err();
    assert_ne!(e.code(), None, "{e:?}");
    assert_eq!(
        env.kms
            .kms
            .reload_xks_settings(env.settings_trusting(&env.ca)),
        1
    );
    encrypt().await.unwrap();
    assert_eq!(env.state(&id).await.0, "CONNECTED");
}

/// The credential date behind `kms_xks_proxy_credential_age_seconds`
/// (CloudWatch's XksProxyCredentialAge) moves only when the credential
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_date_follows_credential_changes() {
    let env = Env::start().await;
    let id = env.create_store("credential-age", PATH_MAIN).await;
    let record = || {
        env.store
            .all_custom_key_stores()
            .into_iter()
            .find(|r| r.id == id)
            .unwrap()
    };
    let first = record();
    assert_eq!(first.credential_set_at(), first.creation_date);
    env.update_store(&id)
        .new_custom_key_store_name("renamed")
        .send()
        .await
        .unwrap();
    assert_eq!(record().credential_date, first.credential_date);
    env.proxy_credentials(&[(AKID_A, SECRET_A), (AKID_B, SECRET_B)]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    env.update_store(&id)
        .xks_proxy_authentication_credential(Env::credential(AKID_B, SECRET_B))
        .send()
        .await
        .unwrap();
    assert!(record().credential_date > first.credential_date);
}

/// The proxy certificate's expiry is read at connect (and each health
/// check), for kms_xks_proxy_certificate_days_to_expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_certificate_expiry_is_known_once_connected() {
    let env = Env::start().await;
    let (id, _) = env.connected_key("certificate", KEY_1).await;
    let conn = env.kms.kms.xks().conn(&id).expect("connected");
    let not_after = conn
        .health
        .as_ref()
        .and_then(|h| h.certificate_not_after)
        .expect("the proxy's certificate expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // The test PKI's certificates run to rcgen's default, 4096-01-01.
    assert_eq!(not_after, 67_090_118_400, "{not_after} vs now {now}");
    // Attempts are counted per store whatever the outcome (the connect's
    // health check, CreateKey's GetKeyMetadata); no retries were needed.
    let (attempts, retries) = env.kms.kms.xks().call_stats(&id).counts();
    assert!(attempts >= 2, "{attempts}");
    assert_eq!(retries, 0);
}
