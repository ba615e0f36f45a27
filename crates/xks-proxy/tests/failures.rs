//! Mutual TLS refusals and a key manager that does not answer in time.

mod common;

use async_trait::async_trait;
use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xks_proxy::backend::{BackendError, InstanceHealth, KeyInfo, KeyManager, Sealed};
use xks_proxy::config::Config;
use xks_proxy::keystore::{open_backends, BackendHandle};
use xks_proxy::pki::{expired, Ca};
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_what_it_must() {
    let env = start(Options {
        mtls: true,
        ..Default::default()
    })
    .await;
    let ca_pem = env.ca.cert_pem();
    let body = json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}});
    let raw = env.signed(
        &format!("{PATH_A}/health"),
        &body,
        &Signer::new(AK_A1, SK_A1),
    );
    let try_with = |client: Option<xks_proxy::pki::Issued>| {
        let tls = client_tls(&ca_pem, client.as_ref(), &[b"http/1.1"]);
        send_with(env.handle.addr, tls, raw.clone(), false)
    };

    // The right certificate: CN as KMS presents it; or a SAN DNS name.
    let kms = env
        .ca
        .client("cks.kms.us-east-1.amazonaws.com", &[], None)
        .unwrap();
    try_with(Some(kms)).await.unwrap().assert_ok();
    let by_san = env
        .ca
        .client("something-else", &["kms-san.example.com"], None)
        .unwrap();
    try_with(Some(by_san)).await.unwrap().assert_ok();

    // With TLS 1.3 the client learns of a refused certificate when it
    // reads, so "refused" means: no HTTP response comes back at all.
    let other_ca = Ca::new("other CA").unwrap();
    let refusals = [
        ("no certificate", None),
        (
            "wrong CA",
            Some(
                other_ca
                    .client("cks.kms.us-east-1.amazonaws.com", &[], None)
                    .unwrap(),
            ),
        ),
        (
            "wrong name",
            Some(
                env.ca
                    .client("cks.kms.eu-west-1.amazonaws.com", &[], None)
                    .unwrap(),
            ),
        ),
        (
            "expired",
            Some(
                env.ca
                    .client("cks.kms.us-east-1.amazonaws.com", &[], Some(expired()))
                    .unwrap(),
            ),
        ),
    ];
    for (what, client) in refusals {
        let r = try_with(client).await;
        assert!(
            r.is_err(),
            "{what}: handshake should fail, got {:?}",
            r.map(|r| r.status)
        );
    }
    // Self-signed client certificate carrying the right name.
    let self_signed =
        xks_proxy::pki::self_signed_client("cks.kms.us-east-1.amazonaws.com").unwrap();
    assert!(
        try_with(Some(self_signed)).await.is_err(),
        "self-signed: handshake should fail"
    );
}

/// Wraps a real backend and makes crypto calls hang or fail on demand.
struct Hanging {
    inner: Arc<dyn KeyManager>,
    hang: AtomicBool,
    fail: AtomicBool,
}

#[async_trait]
impl KeyManager for Hanging {
    fn vendor(&self) -> &str {
        self.inner.vendor()
    }
    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
        self.inner.key_info(key).await
    }
    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        v: &[u8],
        p: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        if self.hang.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        self.inner.encrypt(key, v, p, aad).await
    }
    async fn decrypt(
        &self,
        key: &ExternalKeyId,
        v: &[u8],
        c: &[u8],
        iv: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.inner.decrypt(key, v, c, iv, tag, aad).await
    }
    async fn health(&self) -> Vec<InstanceHealth> {
        if self.hang.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let mut h = self.inner.health().await;
        if self.fail.load(Ordering::Relaxed) {
            for e in &mut h {
                e.status = xks_proxy::backend::HealthStatus::Unavailable;
                e.detail = Some("device error".into());
            }
        }
        h
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_backend_is_dependency_timeout() {
    let opts = Options {
        backend_timeout_ms: 100,
        ..Default::default()
    };
    let (dir, ca, config_path) = prepare(&opts);
    let config = Config::load(&config_path).unwrap();
    let real = open_backends(&config).unwrap();
    let handle = &real["embedded"];
    let hanging = Arc::new(Hanging {
        inner: Arc::clone(&handle.backend),
        hang: AtomicBool::new(false),
        fail: AtomicBool::new(false),
    });
    let backend: Arc<dyn KeyManager> = hanging.clone();
    let mut backends = HashMap::new();
    backends.insert(
        "embedded".to_owned(),
        BackendHandle {
            health: xks_proxy::health::HealthMonitor::new(Arc::clone(&backend)),
            backend,
            config: handle.config.clone(),
        },
    );
    let proxy = xks_proxy::start_with_backends(&config, backends)
        .await
        .unwrap();
    let env = Env {
        dir,
        handle: proxy,
        ca,
        config,
        config_path,
    };
    env.encrypt("key-a", b"fine", None).await;
    hanging.hang.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let r = env
        .call(
            format!("{PATH_A}/keys/key-a/encrypt"),
            encrypt_body(b"slow", None, false),
        )
        .await;
    let elapsed = started.elapsed();
    r.assert_error(503, "DependencyTimeoutException");
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    // Decrypt still works: the timeout is per call, nothing is stuck.
    let enc = {
        hanging.hang.store(false, Ordering::Relaxed);
        env.encrypt("key-a", b"again", None).await
    };
    env.call(
        format!("{PATH_A}/keys/key-a/decrypt"),
        decrypt_body(&enc, None),
    )
    .await
    .assert_ok();
}
