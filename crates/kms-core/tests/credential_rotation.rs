//! Zero-downtime rotation of an external key store's proxy credential,
//! end to end through kms-core (docs/xks-proxy.md): add the new credential
//! to the proxy, UpdateCustomKeyStore while connected, remove the old one —
//! under load, with no failed request.

mod xks_env;

use aws_sdk_kms::primitives::Blob;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use xks_env::*;

async fn progress(ok: &AtomicUsize, more: usize) {
    let target = ok.load(Ordering::Relaxed) + more;
    for _ in 0..1000 {
        if ok.load(Ordering::Relaxed) >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no progress under load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_credential_rotates_while_connected_without_failures() {
    let env = Env::start().await;
    let (id, key) = env.connected_key("rotating", KEY_1).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (sdk, key, stop, ok) = (
                env.sdk.clone(),
                key.clone(),
                Arc::clone(&stop),
                Arc::clone(&ok),
            );
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = sdk
                        .encrypt()
                        .key_id(&key)
                        .plaintext(Blob::new(b"rotation".to_vec()))
                        .send()
                        .await;
                    let blob = match r {
                        Ok(r) => r.ciphertext_blob.unwrap(),
                        Err(e) => {
                            failures.push(format!("encrypt: {e:?}"));
                            continue;
                        }
                    };
                    // Decrypt too: both directions cross the proxy.
                    match sdk.decrypt().ciphertext_blob(blob).send().await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(format!("decrypt: {e:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    progress(&ok, 10).await;

    // 1. The proxy accepts both credentials (SIGHUP-style reload).
    env.proxy_credentials(&[(AKID_A, SECRET_A), (AKID_B, SECRET_B)]);
    progress(&ok, 10).await;
    // 2. KMS switches while the store stays connected.
    env.update_store(&id)
        .xks_proxy_authentication_credential(Env::credential(AKID_B, SECRET_B))
        .send()
        .await
        .unwrap();
    assert_eq!(env.state(&id).await, ("CONNECTED".into(), None));
    // Requests that started with the old credential finish first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    progress(&ok, 10).await;
    // 3. The old credential is removed from the proxy.
    env.proxy_credentials(&[(AKID_B, SECRET_B)]);
    progress(&ok, 20).await;

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let f = t.await.unwrap();
        assert!(f.is_empty(), "failed requests during the rotation: {f:?}");
    }
    assert_eq!(env.state(&id).await, ("CONNECTED".into(), None));
    // The store's health check uses the new credential too.
    env.disconnect(&id).await;
    assert_eq!(env.connect(&id).await, ("CONNECTED".into(), None));
}
