//! External key stores when things go wrong: a stopped, slow, erroring or
//! throttling proxy, a disabled external key, connection failures with
//! their ConnectionErrorCode, health checks, credential rotation. Every
//! failure is the right AWS error within the 500 ms budget (plus slack for
//! a shared test machine), never a hang or a 500.

#[macro_use]
mod xks_env;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use kms_core::store::CksChange;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use xks_env::*;
use xks_proxy::admin::Action;

/// The budget (500 ms) plus slack for a busy machine.
const WITHIN: Duration = Duration::from_millis(1500);

async fn encrypt(env: &Env, key: &str) -> Result<Vec<u8>, (String, String)> {
    env.sdk
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"payload".to_vec()))
        .send()
        .await
        .map(|o| o.ciphertext_blob().unwrap().as_ref().to_vec())
        .map_err(code_and_message)
}

async fn decrypt(env: &Env, ct: &[u8]) -> Result<Vec<u8>, (String, String)> {
    env.sdk
        .decrypt()
        .ciphertext_blob(Blob::new(ct.to_vec()))
        .send()
        .await
        .map(|o| o.plaintext().unwrap().as_ref().to_vec())
        .map_err(code_and_message)
}

/// (code, message) of a failed call.
fn code_and_message<E: ProvideErrorMetadata, R>(
    e: aws_sdk_kms::error::SdkError<E, R>,
) -> (String, String) {
    (
        e.code().unwrap_or("?").to_owned(),
        e.message().unwrap_or("").to_owned(),
    )
}

#[track_caller]
fn assert_invalid_state(r: Result<Vec<u8>, (String, String)>, contains: &str) {
    match r {
        Err((code, message)) => {
            assert_eq!(code, "KMSInvalidStateException", "{message}");
            assert!(
                message.contains(contains),
                "{message:?} should contain {contains:?}"
            );
        }
        Ok(_) => panic!("expected KMSInvalidStateException ({contains})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_slow_and_failing_proxy() {
    let mut env = Env::start().await;
    let (_, key) = env.connected_key("s", KEY_1).await;
    let ct = encrypt(&env, &key).await.unwrap();

    // Slow: 300 ms per key manager call > the 250 ms attempt budget.
    env.faulty.delay_ms.store(300, Ordering::SeqCst);
    env.faulty.mode.store(FAULT_SLOW, Ordering::SeqCst);
    let t = Instant::now();
    let r = encrypt(&env, &key).await;
    let took = t.elapsed();
    assert_invalid_state(r, "timeout period");
    assert!(
        took >= Duration::from_millis(450) && took < WITHIN,
        "{took:?}"
    );
    let t = Instant::now();
    assert_invalid_state(decrypt(&env, &ct).await, "timeout period");
    assert!(t.elapsed() < WITHIN, "{:?}", t.elapsed());
    // 100 ms is slow but within budget.
    env.faulty.delay_ms.store(100, Ordering::SeqCst);
    assert_eq!(decrypt(&env, &ct).await.unwrap(), b"payload");

    // Erroring key manager: the proxy answers InternalException.
    env.faulty.mode.store(FAULT_FAIL, Ordering::SeqCst);
    let t = Instant::now();
    assert_invalid_state(
        encrypt(&env, &key).await,
        "failure of the external key manager",
    );
    assert_invalid_state(
        decrypt(&env, &ct).await,
        "failure of the external key manager",
    );
    assert!(t.elapsed() < WITHIN);
    env.faulty.mode.store(FAULT_NONE, Ordering::SeqCst);
    assert_eq!(decrypt(&env, &ct).await.unwrap(), b"payload");

    // Stopped proxy.
    env.stop_proxy().await;
    for _ in 0..2 {
        let t = Instant::now();
        let r = encrypt(&env, &key).await;
        let took = t.elapsed();
        match &r {
            Err((code, m)) => {
                assert_eq!(code, "KMSInvalidStateException", "{m}");
                assert!(
                    m.contains("cannot communicate") || m.contains("timeout period"),
                    "{m}"
                );
            }
            Ok(_) => panic!("encrypt through a stopped proxy"),
        }
        assert!(took < WITHIN, "{took:?}");
    }
    let t = Instant::now();
    assert_invalid_state(decrypt(&env, &ct).await, "cannot communicate");
    assert!(t.elapsed() < WITHIN);
    // The key store stays CONNECTED (AWS does not disconnect on errors).
    let id = env.sdk.describe_custom_key_stores().send().await.unwrap();
    assert_eq!(
        id.custom_key_stores()[0]
            .connection_state()
            .unwrap()
            .as_str(),
        "CONNECTED"
    );
    // Back: works again on the same address.
    env.restart_proxy().await;
    assert_eq!(decrypt(&env, &ct).await.unwrap(), b"payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_external_key_and_throttling() {
    let env = Env::start().await;
    let (_, key) = env.connected_key("s", KEY_2).await;
    let ct = encrypt(&env, &key).await.unwrap();
    env.admin(Action::Disable { id: KEY_2.into() });
    // The key manager's watcher picks the change up within ~50 ms.
    let mut r = encrypt(&env, &key).await;
    for _ in 0..100 {
        if r.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        r = encrypt(&env, &key).await;
    }
    assert_invalid_state(r, "disabled");
    assert_invalid_state(decrypt(&env, &ct).await, "disabled");
    let d = env.sdk.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state().unwrap().as_str(),
        "Enabled",
        "the KMS key itself is still enabled"
    );
    env.admin(Action::Enable { id: KEY_2.into() });
    let mut back = decrypt(&env, &ct).await;
    for _ in 0..100 {
        if back.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        back = decrypt(&env, &ct).await;
    }
    assert_eq!(back.unwrap(), b"payload");

    // A key store on the proxy's 1 request/s path: throttled.
    let limited = env.create_store("limited", PATH_LIMITED).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(env.connect(&limited).await.0, "CONNECTED");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lkey = env.create_key(&limited, KEY_1).await;
    let mut throttled = None;
    for _ in 0..5 {
        if let Err(e) = encrypt(&env, &lkey).await {
            throttled = Some(e);
            break;
        }
    }
    assert_invalid_state(Err(throttled.expect("never throttled")), "request rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_rotation_with_update_custom_key_store() {
    let env = Env::start().await;
    let (id, key) = env.connected_key("s", KEY_1).await;
    let ct = encrypt(&env, &key).await.unwrap();
    // The proxy admin rotates: B added, then A removed.
    env.proxy_credentials(&[(AKID_A, SECRET_A), (AKID_B, SECRET_B)]);
    assert_eq!(decrypt(&env, &ct).await.unwrap(), b"payload");
    env.proxy_credentials(&[(AKID_B, SECRET_B)]);
    assert_invalid_state(decrypt(&env, &ct).await, "XksProxyAuthenticationCredential");
    // A wrong credential is refused by the probe; nothing changes.
    assert_fails!(
        env.update_store(&id)
            .xks_proxy_authentication_credential(Env::credential(AKID_A, SECRET_B)),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    // The right one, while CONNECTED: kms-core continues with it.
    env.update_store(&id)
        .xks_proxy_authentication_credential(Env::credential(AKID_B, SECRET_B))
        .send()
        .await
        .unwrap();
    assert_eq!(decrypt(&env, &ct).await.unwrap(), b"payload");
    let ct2 = encrypt(&env, &key).await.unwrap();
    assert_eq!(decrypt(&env, &ct2).await.unwrap(), b"payload");
    let out = env
        .sdk
        .describe_custom_key_stores()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.custom_key_stores()[0]
            .xks_proxy_configuration()
            .unwrap()
            .access_key_id(),
        Some(AKID_B)
    );
    // Reconnecting uses the new credential too.
    env.disconnect(&id).await;
    assert_eq!(env.connect(&id).await, ("CONNECTED".into(), None));
    assert_eq!(decrypt(&env, &ct2).await.unwrap(), b"payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_have_error_codes() {
    let mut env = Env::start().await;
    let id = env.create_store("s", PATH_MAIN).await;

    // The proxy no longer accepts the credential: INVALID_CREDENTIALS.
    env.proxy_credentials(&[(AKID_B, SECRET_B)]);
    assert_eq!(
        env.connect(&id).await,
        ("FAILED".into(), Some("INVALID_CREDENTIALS".into()))
    );
    // FAILED must be disconnected before connecting again.
    assert_fails!(
        env.sdk.connect_custom_key_store().custom_key_store_id(&id),
        "CustomKeyStoreInvalidStateException"
    );
    env.disconnect(&id).await;
    env.proxy_credentials(&[(AKID_A, SECRET_A)]);

    // A path the proxy does not serve: XKS_PROXY_INVALID_CONFIGURATION.
    // (Create/Update probe the proxy, so the record is changed directly.)
    let set_endpoint = |endpoint: String, path: &'static str| {
        env.store
            .change_custom_key_store(ACCOUNT, REGION, &id, &mut |cur, _| {
                let mut r = cur.unwrap().clone();
                r.uri_endpoint = endpoint.clone();
                r.uri_path = path.into();
                Ok(CksChange::Put(Box::new(r)))
            })
            .unwrap();
    };
    set_endpoint(env.endpoint(), "/nowhere/kms/xks/v1");
    assert_eq!(
        env.connect(&id).await,
        (
            "FAILED".into(),
            Some("XKS_PROXY_INVALID_CONFIGURATION".into())
        )
    );
    env.disconnect(&id).await;

    // A peer that accepts TCP and never answers: XKS_PROXY_TIMED_OUT.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = blackhole.local_addr().unwrap();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = blackhole.accept().await {
            held.push(s);
        }
    });
    set_endpoint(format!("https://localhost:{}", hole.port()), PATH_MAIN);
    let t = Instant::now();
    assert_eq!(
        env.connect(&id).await,
        ("FAILED".into(), Some("XKS_PROXY_TIMED_OUT".into()))
    );
    assert!(t.elapsed() < WITHIN, "{:?}", t.elapsed());
    keep.abort();
    env.disconnect(&id).await;

    // A server certificate kms-core does not trust:
    // XKS_PROXY_INVALID_TLS_CONFIGURATION (a second kms-core on the same
    // store, trusting another CA).
    set_endpoint(env.endpoint(), PATH_MAIN);
    let other_ca = xks_proxy::pki::Ca::new("unrelated CA").unwrap();
    let other = kms_core::server::start(
        "127.0.0.1:0".parse().unwrap(),
        kms_core::service::Kms::new(
            kms_core::auth::AuthMode::Development,
            std::sync::Arc::clone(&env.store),
        )
        .unwrap()
        .with_xks_settings(
            kms_core::xks::XksSettings::default()
                .with_default_trust(other_ca.cert_pem().into_bytes(), None),
        ),
        None,
    )
    .await
    .unwrap();
    let other_sdk = xks_env::client_for(other.addr);
    other_sdk
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        settled_state_of(&other_sdk, &id).await,
        (
            "FAILED".into(),
            Some("XKS_PROXY_INVALID_TLS_CONFIGURATION".into())
        )
    );
    other.shutdown().await;

    // The proxy stopped: XKS_PROXY_NOT_REACHABLE.
    env.stop_proxy().await;
    let t = Instant::now();
    assert_eq!(
        env.connect(&id).await,
        ("FAILED".into(), Some("XKS_PROXY_NOT_REACHABLE".into()))
    );
    assert!(t.elapsed() < WITHIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_while_connected() {
    let mut env = Env::start_with(Options {
        health_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let (id, key) = env.connected_key("s", KEY_1).await;
    assert_eq!(env.state(&id).await, ("CONNECTED".into(), None));
    // The kms-core extension member shows the latest check.
    let raw = env.raw_describe();
    let health = &raw["CustomKeyStores"][0]["XksProxyHealth"];
    assert_eq!(health["Status"], "HEALTHY", "{raw}");
    assert!(health["LastCheckedDate"].as_f64().unwrap() > 0.0);
    assert!(health["XksProxyFleetSize"].as_u64().unwrap() >= 1);
    assert!(!health["EkmFleetDetails"].as_array().unwrap().is_empty());
    assert!(!raw.to_string().contains(SECRET_A));
    env.stop_proxy().await;
    let mut seen = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s = env.state(&id).await;
        if s.1.is_some() {
            seen = Some(s);
            break;
        }
    }
    assert_eq!(
        seen,
        Some(("CONNECTED".into(), Some("XKS_PROXY_NOT_REACHABLE".into())))
    );
    let raw = env.raw_describe();
    assert_eq!(
        raw["CustomKeyStores"][0]["XksProxyHealth"]["Status"], "UNHEALTHY",
        "{raw}"
    );
    env.restart_proxy().await;
    let mut healthy = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if env.state(&id).await == ("CONNECTED".into(), None) {
            healthy = true;
            break;
        }
    }
    assert!(healthy, "the health check never recovered");
    encrypt(&env, &key).await.unwrap();
}

/// Rotation happens in the external key manager: ciphertexts made before
/// stay decryptable (the proxy's ciphertextMetadata is kept in the blob),
/// new ones use the new material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_key_rotation_in_the_key_manager() {
    let env = Env::start().await;
    let (_, key) = env.connected_key("s", KEY_1).await;
    let before = encrypt(&env, &key).await.unwrap();
    env.admin(Action::Rotate { id: KEY_1.into() });
    // The key manager's watcher reloads within ~50 ms; poll until a new
    // ciphertext carries different proxy metadata.
    let meta = |ct: &[u8]| {
        let iv_len = ct[17] as usize;
        let at = 18 + iv_len + 16;
        ct[at + 1..at + 1 + ct[at] as usize].to_vec()
    };
    let mut after = encrypt(&env, &key).await.unwrap();
    for _ in 0..100 {
        if meta(&after) != meta(&before) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = encrypt(&env, &key).await.unwrap();
    }
    assert_ne!(
        meta(&after),
        meta(&before),
        "the proxy never used new material"
    );
    assert_eq!(decrypt(&env, &before).await.unwrap(), b"payload");
    assert_eq!(decrypt(&env, &after).await.unwrap(), b"payload");
}
