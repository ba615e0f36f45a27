//! The PKCS#11 backend when the module fails: a device reset is recovered
//! by re-initialising, a busy pool and a dead token answer 503 within
//! bounds, and service comes back by itself. Its own test binary: it
//! finalizes the module and hides the token directory, which would disturb
//! other tests sharing the process's SoftHSM.

mod common;
mod pkcs11_common;

use common::*;
use pkcs11_common::*;
use std::time::{Duration, Instant};
use xks_proxy::backend::pkcs11::provision::{softhsm, NewKey};
use xks_proxy::backend::{HealthStatus, KeyManager};

/// A device reset (the library finalized under us) is recovered by
/// re-initialising the module; a pool with every session busy answers
/// 503 DependencyTimeoutException within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_reset_and_busy_pool() {
    let token = token_with("reset", &[NewKey::aes256("k")]);
    let (env, km) = start_env_with_backend(
        &token,
        "max_sessions = 2\nsession_wait_ms = 100\nreinit_backoff_ms = 50",
        "backend_timeout_ms = 2000",
    )
    .await;
    let enc = env.encrypt("k", b"before", None).await;

    km.module().finalize_behind_users_backs();
    // The next call meets CKR_CRYPTOKI_NOT_INITIALIZED, re-initialises the
    // module, logs in again, looks the key up again and succeeds.
    let dec = decrypt_raw(&env, "k", decrypt_body(&enc, None)).await;
    assert_eq!(unb64(&dec.assert_ok()["plaintext"]), b"before");
    env.encrypt("k", b"after", None).await;
    assert_eq!(km.health().await[0].status, HealthStatus::Active);

    // Every session busy (as with a hung HSM): a bounded wait, then 503,
    // well inside the 2 s backend budget.
    let busy = km.occupy_all_sessions().await;
    let started = Instant::now();
    encrypt_raw(&env, "k", b"x", None)
        .await
        .assert_error(503, "DependencyTimeoutException");
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    drop(busy);
    env.encrypt("k", b"free again", None).await;

    // The token goes away (a dead or unreachable device): the library is
    // reset and its token directory hidden, so re-initialisation finds
    // nothing. Requests get 503 at once, health turns UNAVAILABLE.
    let hsm = softhsm::shared().unwrap();
    let hidden = hsm.dir.join("tokens-hidden");
    std::fs::rename(&hsm.tokens, &hidden).unwrap();
    km.module().finalize_behind_users_backs();
    let started = Instant::now();
    encrypt_raw(&env, "k", b"x", None)
        .await
        .assert_error(503, "DependencyTimeoutException");
    decrypt_raw(&env, "k", decrypt_body(&enc, None))
        .await
        .assert_error(503, "DependencyTimeoutException");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let report = km.health().await;
    assert_eq!(report[0].status, HealthStatus::Unavailable, "{report:?}");
    let mut health_500 = false;
    for _ in 0..50 {
        let h = env.call(format!("{PATH_A}/health"), health_body()).await;
        if h.status == 500 {
            h.assert_error(500, "InternalException");
            health_500 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(health_500, "GetHealthStatus never reported the outage");

    // The token comes back: the proxy recovers by itself.
    std::fs::rename(&hidden, &hsm.tokens).unwrap();
    let mut recovered = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if encrypt_raw(&env, "k", b"x", None).await.status == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "no recovery after the token came back");
    let dec = decrypt_raw(&env, "k", decrypt_body(&enc, None)).await;
    assert_eq!(unb64(&dec.assert_ok()["plaintext"]), b"before");
    env.handle.shutdown().await;
}
