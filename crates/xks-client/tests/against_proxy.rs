//! The client against the real `xks-proxy`, in-process, over mutual TLS:
//! round trips, every proxy error the client can provoke, a stopped proxy,
//! and a refused client certificate. Only the client's public API talks to
//! the proxy.

mod real_proxy;

use async_trait::async_trait;
use real_proxy::*;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xks_client::{decrypt_request, encrypt_request, Error, ErrorKind, ProxyErrorName, XksClient};
use xks_proxy::backend::{BackendError, InstanceHealth, KeyInfo, KeyManager, Sealed};
use xks_proxy::keystore::{open_backends, BackendHandle};
use xks_wire::{DecryptRequest, EncryptResponse, ErrorName, ExternalKeyId};
use zeroize::Zeroizing;

fn key(id: &str) -> ExternalKeyId {
    id.parse().unwrap()
}

fn client(env: &Prepared, addr: std::net::SocketAddr, path: &str) -> XksClient {
    XksClient::new(&env.client_config(addr, path, SECRET)).unwrap()
}

/// The Decrypt request for an Encrypt response.
fn decrypt_for(sealed: &EncryptResponse, principal: &str, aad: Option<&[u8]>) -> DecryptRequest {
    decrypt_request(
        metadata(principal, "Decrypt"),
        &sealed.ciphertext.0,
        sealed.ciphertext_metadata.as_ref().map(|m| &m.0[..]),
        &sealed.initialization_vector.0,
        &sealed.authentication_tag.0,
        aad,
    )
}

/// Asserts an `Error::Proxy` with exactly this name, status and kind.
#[track_caller]
fn assert_proxy_error<T: Debug>(
    result: Result<T, Error>,
    name: ErrorName,
    status: u16,
    kind: ErrorKind,
) {
    let err = match result {
        Err(e) => e,
        Ok(v) => panic!("expected {name} (HTTP {status}), got Ok({v:?})"),
    };
    match &err {
        Error::Proxy {
            name: got,
            status: got_status,
            message,
        } => {
            assert_eq!(
                (got, *got_status),
                (&ProxyErrorName::Known(name), status),
                "{err}"
            );
            assert!(
                message.as_deref().is_some_and(|m| !m.is_empty()),
                "{name}: the proxy's errorMessage is missing: {err:?}"
            );
        }
        other => panic!("expected Error::Proxy {name} (HTTP {status}), got {other:?}"),
    }
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.proxy_error_name(), Some(name));
    assert!(!err.is_retryable() && !err.is_transport(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metadata_and_round_trips() {
    let (env, proxy) = start(&Options::default()).await;
    let c = client(&env, proxy.addr, PATH_MAIN);

    let health = c
        .get_health_status(&metadata(ALICE, "KmsHealthCheck"))
        .await
        .unwrap();
    assert_eq!(health.xks_proxy_fleet_size, 1);
    assert_eq!(health.xks_proxy_vendor, "xks-client tests");
    assert_eq!(health.xks_proxy_model, "in-process proxy");
    assert!(!health.ekm_vendor.is_empty());
    assert!(!health.ekm_fleet_details.is_empty());
    for d in &health.ekm_fleet_details {
        assert_eq!(d.health_status, "ACTIVE", "{d:?}");
    }

    let md = metadata(ALICE, "DescribeKey");
    let meta = c.get_key_metadata(&key(KEY), &md).await.unwrap();
    assert_eq!(meta.key_spec, "AES_256");
    assert_eq!(meta.key_usage, ["ENCRYPT", "DECRYPT"]);
    assert_eq!(meta.key_status, "ENABLED");
    let meta = c.get_key_metadata(&key(ENCRYPT_ONLY), &md).await.unwrap();
    assert_eq!(meta.key_usage, ["ENCRYPT"]);
    let meta = c.get_key_metadata(&key(DISABLED), &md).await.unwrap();
    assert_eq!(meta.key_status, "DISABLED");

    let aad = pattern(100, 9);
    for size in [1, 32, 4096, 4300] {
        for aad in [None, Some(&aad[..])] {
            let what = format!("{size} bytes, aad {:?}", aad.map(<[u8]>::len));
            let plaintext = pattern(size, size as u8);
            let sealed = c
                .encrypt(
                    &key(KEY),
                    &encrypt_request(metadata(ALICE, "Encrypt"), &plaintext, aad, true),
                )
                .await
                .unwrap_or_else(|e| panic!("encrypt {what}: {e}"));
            assert_eq!(sealed.ciphertext.0.len(), size, "{what}");
            if size >= 32 {
                assert_ne!(sealed.ciphertext.0, plaintext, "{what}");
            }
            assert_eq!(sealed.initialization_vector.0.len(), 12, "{what}");
            assert_eq!(sealed.authentication_tag.0.len(), 16, "{what}");
            let ct_meta = sealed
                .ciphertext_metadata
                .as_ref()
                .map(|m| m.0.clone())
                .unwrap_or_default();
            assert!(
                !ct_meta.is_empty() && ct_meta.len() <= 20,
                "{what}: {ct_meta:?}"
            );
            // The CDIV, recomputed here independently of the client's check.
            let cdiv = sealed
                .ciphertext_data_integrity_value
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: CDIV requested but absent"));
            let expected = xks_wire::cdiv_sha256(
                aad.unwrap_or_default(),
                &ct_meta,
                &sealed.initialization_vector.0,
                &sealed.ciphertext.0,
                &sealed.authentication_tag.0,
            );
            assert_eq!(cdiv.0, expected, "{what}");

            let opened = c
                .decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, aad))
                .await
                .unwrap_or_else(|e| panic!("decrypt {what}: {e}"));
            assert_eq!(opened.plaintext.as_ref(), &plaintext[..], "{what}");
        }
    }

    // Without a CDIV request the proxy may omit it; the round trip holds.
    let sealed = c
        .encrypt(
            &key(KEY),
            &encrypt_request(metadata(ALICE, "Encrypt"), b"no cdiv", None, false),
        )
        .await
        .unwrap();
    let opened = c
        .decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, None))
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_ref(), b"no cdiv");

    // The largest plaintext the proxy accepts still round-trips.
    let big = pattern(MAX_PLAINTEXT, 3);
    let sealed = c
        .encrypt(
            &key(KEY),
            &encrypt_request(metadata(ALICE, "Encrypt"), &big, None, true),
        )
        .await
        .unwrap();
    let opened = c
        .decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, None))
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_ref(), &big[..]);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_ciphertext_errors() {
    let (env, proxy) = start(&Options::default()).await;
    let c = client(&env, proxy.addr, PATH_MAIN);
    let enc =
        |pt: &[u8], aad: Option<&[u8]>| encrypt_request(metadata(ALICE, "Encrypt"), pt, aad, true);
    let describe = metadata(ALICE, "DescribeKey");

    // KeyNotFoundException: a key the key manager does not have.
    assert_proxy_error(
        c.get_key_metadata(&key(UNKNOWN), &describe).await,
        ErrorName::KeyNotFoundException,
        404,
        ErrorKind::KeyNotFound,
    );
    assert_proxy_error(
        c.encrypt(&key(UNKNOWN), &enc(b"x", None)).await,
        ErrorName::KeyNotFoundException,
        404,
        ErrorKind::KeyNotFound,
    );

    // InvalidStateException: a disabled key.
    assert_proxy_error(
        c.encrypt(&key(DISABLED), &enc(b"x", None)).await,
        ErrorName::InvalidStateException,
        400,
        ErrorKind::ProxyFailure,
    );

    // InvalidKeyUsageException: an encrypt-only key asked for a CDIV (the
    // promise that a later Decrypt succeeds) or to decrypt (its own, valid
    // ciphertext, made without a CDIV), and a decrypt-only key asked to
    // encrypt.
    assert_proxy_error(
        c.encrypt(&key(ENCRYPT_ONLY), &enc(b"x", None)).await,
        ErrorName::InvalidKeyUsageException,
        400,
        ErrorKind::ProxyFailure,
    );
    let sealed = c
        .encrypt(
            &key(ENCRYPT_ONLY),
            &encrypt_request(
                metadata(ALICE, "Encrypt"),
                b"sealed by enc-only",
                None,
                false,
            ),
        )
        .await
        .unwrap();
    assert_proxy_error(
        c.decrypt(&key(ENCRYPT_ONLY), &decrypt_for(&sealed, ALICE, None))
            .await,
        ErrorName::InvalidKeyUsageException,
        400,
        ErrorKind::ProxyFailure,
    );
    assert_proxy_error(
        c.encrypt(&key(DECRYPT_ONLY), &enc(b"x", None)).await,
        ErrorName::InvalidKeyUsageException,
        400,
        ErrorKind::ProxyFailure,
    );

    // InvalidCiphertextException: tampered ciphertext, tag, AAD; and a
    // ciphertext of another key.
    let aad = b"context".as_slice();
    let sealed = c
        .encrypt(&key(KEY), &enc(&pattern(64, 1), Some(aad)))
        .await
        .unwrap();
    let good = c
        .decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, Some(aad)))
        .await
        .unwrap();
    assert_eq!(good.plaintext.as_ref(), &pattern(64, 1)[..]);
    let mut tampered = sealed.clone();
    tampered.ciphertext.0[10] ^= 0x01;
    let mut bad_tag = sealed.clone();
    bad_tag.authentication_tag.0[0] ^= 0x80;
    for (what, result) in [
        (
            "ciphertext",
            c.decrypt(&key(KEY), &decrypt_for(&tampered, ALICE, Some(aad)))
                .await,
        ),
        (
            "tag",
            c.decrypt(&key(KEY), &decrypt_for(&bad_tag, ALICE, Some(aad)))
                .await,
        ),
        (
            "aad",
            c.decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, Some(b"other")))
                .await,
        ),
        (
            "no aad",
            c.decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, None))
                .await,
        ),
    ] {
        println!("tampered {what}: {result:?}");
        assert_proxy_error(
            result,
            ErrorName::InvalidCiphertextException,
            400,
            ErrorKind::InvalidCiphertext,
        );
    }

    // UnsupportedOperationException: over max_plaintext_bytes (8192), and
    // over max_aad_bytes (16384).
    assert_proxy_error(
        c.encrypt(&key(KEY), &enc(&pattern(MAX_PLAINTEXT + 1, 0), None))
            .await,
        ErrorName::UnsupportedOperationException,
        501,
        ErrorKind::ProxyFailure,
    );
    assert_proxy_error(
        c.encrypt(&key(KEY), &enc(b"x", Some(&pattern(MAX_AAD + 1, 0))))
            .await,
        ErrorName::UnsupportedOperationException,
        501,
        ErrorKind::ProxyFailure,
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_store_errors() {
    let (env, proxy) = start(&Options::default()).await;
    let describe = |who| metadata(who, "DescribeKey");
    let health_md = metadata(ALICE, "KmsHealthCheck");

    // AuthenticationFailedException: the right access key id, a wrong
    // (well-formed) secret.
    let wrong_secret =
        XksClient::new(&env.client_config(proxy.addr, PATH_MAIN, WRONG_SECRET)).unwrap();
    assert_proxy_error(
        wrong_secret.get_health_status(&health_md).await,
        ErrorName::AuthenticationFailedException,
        401,
        ErrorKind::Authentication,
    );
    assert_proxy_error(
        wrong_secret
            .get_key_metadata(&key(KEY), &describe(ALICE))
            .await,
        ErrorName::AuthenticationFailedException,
        401,
        ErrorKind::Authentication,
    );

    // InvalidUriPathException: a URI path no key store serves.
    let unserved = client(&env, proxy.addr, PATH_UNSERVED);
    assert_proxy_error(
        unserved.get_health_status(&health_md).await,
        ErrorName::InvalidUriPathException,
        404,
        ErrorKind::InvalidUriPath,
    );
    assert_proxy_error(
        unserved.get_key_metadata(&key(KEY), &describe(ALICE)).await,
        ErrorName::InvalidUriPathException,
        404,
        ErrorKind::InvalidUriPath,
    );

    // AccessDeniedException: the guarded key store denies Alice, allows Bob;
    // health checks are never subject to the rules.
    let guarded = client(&env, proxy.addr, PATH_GUARDED);
    let meta = guarded
        .get_key_metadata(&key(KEY), &describe(BOB))
        .await
        .unwrap();
    assert_eq!(meta.key_status, "ENABLED");
    assert_proxy_error(
        guarded.get_key_metadata(&key(KEY), &describe(ALICE)).await,
        ErrorName::AccessDeniedException,
        403,
        ErrorKind::AccessDenied,
    );
    assert_proxy_error(
        guarded
            .encrypt(
                &key(KEY),
                &encrypt_request(metadata(ALICE, "Encrypt"), b"x", None, false),
            )
            .await,
        ErrorName::AccessDeniedException,
        403,
        ErrorKind::AccessDenied,
    );
    guarded.get_health_status(&health_md).await.unwrap();

    // ThrottlingException: 1 request/s, burst 1. The first call passes;
    // one of the next few (sent back to back) must be throttled.
    let limited = client(&env, proxy.addr, PATH_LIMITED);
    limited
        .get_key_metadata(&key(KEY), &describe(ALICE))
        .await
        .unwrap();
    let mut throttled = None;
    for _ in 0..5 {
        match limited.get_key_metadata(&key(KEY), &describe(ALICE)).await {
            Ok(_) => continue,
            Err(e) => {
                throttled = Some(e);
                break;
            }
        }
    }
    let throttled = throttled.expect("5 back-to-back calls at 1 request/s: none was throttled");
    assert_proxy_error::<()>(
        Err(throttled),
        ErrorName::ThrottlingException,
        429,
        ErrorKind::Throttled,
    );
    proxy.shutdown().await;
}

/// Wraps the embedded key manager; crypto calls hang while `hang` is set.
struct Hanging {
    inner: Arc<dyn KeyManager>,
    hang: AtomicBool,
}

impl Hanging {
    async fn maybe_hang(&self) {
        if self.hang.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
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
        version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        self.maybe_hang().await;
        self.inner.encrypt(key, version, plaintext, aad).await
    }
    async fn decrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        ciphertext: &[u8],
        iv: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.maybe_hang().await;
        self.inner
            .decrypt(key, version, ciphertext, iv, tag, aad)
            .await
    }
    async fn health(&self) -> Vec<InstanceHealth> {
        self.inner.health().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_key_manager_is_dependency_timeout() {
    let env = prepare(&Options {
        backend_timeout_ms: 100,
        ..Default::default()
    });
    let real = open_backends(&env.config).unwrap();
    let hanging = Arc::new(Hanging {
        inner: Arc::clone(&real["embedded"].backend),
        hang: AtomicBool::new(false),
    });
    let backend: Arc<dyn KeyManager> = hanging.clone();
    let backends = HashMap::from([(
        "embedded".to_owned(),
        BackendHandle {
            health: xks_proxy::health::HealthMonitor::new(Arc::clone(&backend)),
            backend,
            config: real["embedded"].config.clone(),
        },
    )]);
    let (env, proxy) = start_with(env, backends).await;
    // The proxy gives up after 100 ms; the client allows more than the
    // KMS budget so that a busy machine cannot turn 503 into a timeout.
    let config = env
        .client_config(proxy.addr, PATH_MAIN, SECRET)
        .with_budget(Duration::from_secs(2), Duration::from_secs(4));
    let c = XksClient::new(&config).unwrap();
    let enc = encrypt_request(metadata(ALICE, "Encrypt"), b"slow", None, true);

    let sealed = c.encrypt(&key(KEY), &enc).await.unwrap();
    hanging.hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    assert_proxy_error(
        c.encrypt(&key(KEY), &enc).await,
        ErrorName::DependencyTimeoutException,
        503,
        ErrorKind::ProxyFailure,
    );
    assert_proxy_error(
        c.decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, None))
            .await,
        ErrorName::DependencyTimeoutException,
        503,
        ErrorKind::ProxyFailure,
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(1500),
        "two calls against a 100 ms backend timeout took {elapsed:?}"
    );
    // Nothing is stuck once the key manager answers again.
    hanging.hang.store(false, Ordering::SeqCst);
    let opened = c
        .decrypt(&key(KEY), &decrypt_for(&sealed, ALICE, None))
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_ref(), b"slow");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_proxy_is_unreachable_within_budget() {
    let (env, proxy) = start(&Options::default()).await;
    let addr = proxy.addr;
    let health_md = metadata(ALICE, "KmsHealthCheck");
    client(&env, addr, PATH_MAIN)
        .get_health_status(&health_md)
        .await
        .unwrap();
    proxy.shutdown().await;
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the stopped proxy still accepts connections on {addr}"
    );

    // A new client: one with a pooled connection would still be answered
    // (see `pooled_connection_is_closed_by_shutdown`).
    let c = client(&env, addr, PATH_MAIN);
    let started = Instant::now();
    let err = c.get_health_status(&health_md).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, Error::Connect { attempts: 2, .. }),
        "expected a connect failure after 2 attempts, got {err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(err.is_retryable() && err.is_transport());
    assert_eq!(err.attempts(), Some(2));
    assert!(
        elapsed < Duration::from_millis(500 + 400),
        "refused connections took {elapsed:?}, beyond the 500 ms budget"
    );
}

/// A stopped proxy serves nothing more, not even over a connection the
/// client pooled before the shutdown (regression test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connection_is_closed_by_shutdown() {
    let (env, proxy) = start(&Options::default()).await;
    let c = client(&env, proxy.addr, PATH_MAIN);
    let health_md = metadata(ALICE, "KmsHealthCheck");
    c.get_health_status(&health_md).await.unwrap();
    proxy.shutdown().await;
    let result = c
        .encrypt(
            &key(KEY),
            &encrypt_request(metadata(ALICE, "Encrypt"), b"after shutdown", None, true),
        )
        .await;
    let err = result.expect_err("a stopped proxy encrypted over a pooled connection");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refusals_are_tls_errors() {
    let (env, proxy) = start(&Options::default()).await;
    let health_md = metadata(ALICE, "KmsHealthCheck");
    // Control: the KMS certificate is accepted.
    client(&env, proxy.addr, PATH_MAIN)
        .get_health_status(&health_md)
        .await
        .unwrap();

    let base = || env.client_config_without_identity(proxy.addr, PATH_MAIN, SECRET);
    let other_ca = xks_proxy::pki::Ca::new("unrelated CA").unwrap();
    let from_other_ca = other_ca.client(KMS_CLIENT_CN, &[], None).unwrap();
    let wrong_name = env
        .ca
        .client("cks.kms.eu-west-1.amazonaws.com", &[], None)
        .unwrap();
    let with = |issued: &xks_proxy::pki::Issued| {
        base().with_client_identity(
            issued.cert_pem.as_bytes().to_vec(),
            issued.key_pem.as_bytes().to_vec(),
        )
    };
    let mut untrusted_server = env.client_config(proxy.addr, PATH_MAIN, SECRET);
    untrusted_server.trusted_ca_pem = other_ca.cert_pem().into_bytes();

    for (what, config) in [
        ("no client certificate", base()),
        ("client certificate from another CA", with(&from_other_ca)),
        ("client certificate for another name", with(&wrong_name)),
        ("server certificate from an untrusted CA", untrusted_server),
    ] {
        let c = XksClient::new(&config).unwrap();
        let started = Instant::now();
        let result = c.get_health_status(&health_md).await;
        let elapsed = started.elapsed();
        match &result {
            Err(e @ Error::Tls { .. }) => {
                assert_eq!(e.kind(), ErrorKind::Tls, "{what}");
                assert!(!e.is_retryable() && e.is_transport(), "{what}");
            }
            other => panic!("{what}: expected Error::Tls, got {other:?}"),
        }
        assert!(
            elapsed < Duration::from_millis(500 + 400),
            "{what}: took {elapsed:?}"
        );
    }
    proxy.shutdown().await;
}
