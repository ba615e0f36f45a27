//! The PKCS#11 backend against a real SoftHSM2 token (made at test time,
//! keys generated through cryptoki), behind the real proxy over TLS.

mod common;
mod pkcs11_common;

use common::*;
use pkcs11_common::*;
use serde_json::json;
use std::sync::Arc;
use xks_proxy::backend::pkcs11::provision::{self, softhsm, NewKey};
use xks_proxy::backend::pkcs11::Pkcs11KeyManager;
use xks_proxy::backend::{BackendError, HealthStatus, KeyManager};
use xks_proxy::config::{BackendConfig, Config};
use xks_wire::ExternalKeyId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn softhsm_keys_over_tls() {
    let token = token_with(
        "tls",
        &[
            NewKey::aes256("key-a"),
            NewKey::aes256("key-flip"),
            NewKey::aes256("key-gone"),
            NewKey::aes256("enc-only").usage(true, false),
            NewKey::aes256("dec-only").usage(false, true),
            NewKey::aes256("off-key").usage(false, false),
            NewKey {
                value_len: 16,
                ..NewKey::aes256("aes-128")
            },
        ],
    );
    let hsm = softhsm::shared().unwrap();
    provision::generate_generic_secret(&hsm.module, &token.label, &token.user_pin, "generic")
        .unwrap();
    // A long cache, so that attribute changes behind the proxy's back are
    // met by the HSM's own checks.
    // Generous time bounds: this test is about correctness under
    // concurrency on a busy CI machine, not latency.
    let env = start_env(
        &token,
        "key_cache_ms = 600000\nmax_sessions = 4\nsession_wait_ms = 5000",
        "backend_timeout_ms = 5000",
    )
    .await;

    // Health without kmsRequestId/kmsOperation is ValidationException.
    env.call(format!("{PATH_A}/health"), json!({}))
        .await
        .assert_error(400, "ValidationException");
    env.call(
        format!("{PATH_A}/health"),
        json!({"requestMetadata": {"kmsOperation": "KmsHealthCheck"}}),
    )
    .await
    .assert_error(400, "ValidationException");
    // Health: a real round trip with the health key.
    let h = env.call(format!("{PATH_A}/health"), health_body()).await;
    let h = h.assert_ok().clone();
    assert!(h["ekmVendor"].as_str().unwrap().contains("SoftHSM"), "{h}");
    assert_eq!(h["ekmFleetDetails"][0]["healthStatus"], "ACTIVE");

    // Metadata from the token's attributes.
    let m = metadata_of(&env, "key-a").await;
    assert_eq!(
        m.assert_ok(),
        &json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"})
    );
    let m = metadata_of(&env, "enc-only").await;
    assert_eq!(m.assert_ok()["keyUsage"], json!(["ENCRYPT"]));
    let m = metadata_of(&env, "dec-only").await;
    assert_eq!(m.assert_ok()["keyUsage"], json!(["DECRYPT"]));
    let m = metadata_of(&env, "off-key").await;
    assert_eq!(m.assert_ok()["keyStatus"], "DISABLED");
    for missing in ["nope", "aes-128", "generic", HEALTH] {
        metadata_of(&env, missing)
            .await
            .assert_error(404, "KeyNotFoundException");
    }

    // Round trip with AAD and CDIV.
    let aad = b"context";
    let enc = env.encrypt("key-a", b"hello hsm", Some(aad)).await;
    assert_eq!(unb64(&enc["ciphertext"]).len(), 9);
    assert_eq!(unb64(&enc["initializationVector"]).len(), 12);
    assert_eq!(unb64(&enc["authenticationTag"]).len(), 16);
    let dec = decrypt_raw(&env, "key-a", decrypt_body(&enc, Some(aad))).await;
    assert_eq!(unb64(&dec.assert_ok()["plaintext"]), b"hello hsm");

    // Tampering of every part is InvalidCiphertext (the HSM's tag check).
    let mut bad = decrypt_body(&enc, Some(aad));
    let mut ct = unb64(&enc["ciphertext"]);
    ct[0] ^= 1;
    bad["ciphertext"] = json!(b64(&ct));
    decrypt_raw(&env, "key-a", bad)
        .await
        .assert_error(400, "InvalidCiphertextException");
    let mut bad = decrypt_body(&enc, Some(aad));
    let mut tag = unb64(&enc["authenticationTag"]);
    tag[15] ^= 0x80;
    bad["authenticationTag"] = json!(b64(&tag));
    decrypt_raw(&env, "key-a", bad)
        .await
        .assert_error(400, "InvalidCiphertextException");
    decrypt_raw(&env, "key-a", decrypt_body(&enc, Some(b"other")))
        .await
        .assert_error(400, "InvalidCiphertextException");
    let mut bad = decrypt_body(&enc, Some(aad));
    bad["initializationVector"] = json!(b64(&[0u8; 16]));
    decrypt_raw(&env, "key-a", bad)
        .await
        .assert_error(400, "InvalidCiphertextException");
    // Another key's ciphertext.
    let enc_flip = env.encrypt("key-flip", b"x", None).await;
    decrypt_raw(&env, "key-a", decrypt_body(&enc_flip, None))
        .await
        .assert_error(400, "InvalidCiphertextException");

    // Usage and state.
    encrypt_raw(&env, "dec-only", b"x", None)
        .await
        .assert_error(400, "InvalidKeyUsageException");
    // A CDIV promises a later Decrypt succeeds: not from an encrypt-only
    // key (with or without AAD); without a CDIV it encrypts.
    for aad in [None, Some(&b"ctx"[..])] {
        encrypt_raw(&env, "enc-only", b"x", aad)
            .await
            .assert_error(400, "InvalidKeyUsageException");
    }
    let enc_only = env
        .call(
            format!("{PATH_A}/keys/enc-only/encrypt"),
            encrypt_body(b"x", None, false),
        )
        .await
        .assert_ok()
        .clone();
    decrypt_raw(&env, "enc-only", decrypt_body(&enc_only, None))
        .await
        .assert_error(400, "InvalidKeyUsageException");
    encrypt_raw(&env, "off-key", b"x", None)
        .await
        .assert_error(400, "InvalidStateException");
    encrypt_raw(&env, "aes-128", b"x", None)
        .await
        .assert_error(404, "KeyNotFoundException");

    // CKA_ENCRYPT cleared behind the proxy's back (its cache still says
    // ENCRYPT): the HSM answers CKR_KEY_FUNCTION_NOT_PERMITTED, which is
    // InvalidKeyUsageException; decrypting still works.
    provision::set_usage(
        &hsm.module,
        &token.label,
        &token.user_pin,
        "key-flip",
        false,
        true,
    )
    .unwrap();
    encrypt_raw(&env, "key-flip", b"x", None)
        .await
        .assert_error(400, "InvalidKeyUsageException");
    let dec = decrypt_raw(&env, "key-flip", decrypt_body(&enc_flip, None)).await;
    assert_eq!(unb64(&dec.assert_ok()["plaintext"]), b"x");

    // A key destroyed while its handle is cached: KeyNotFound, not 500.
    env.encrypt("key-gone", b"x", None).await;
    provision::destroy_key(&hsm.module, &token.label, &token.user_pin, "key-gone").unwrap();
    encrypt_raw(&env, "key-gone", b"x", None)
        .await
        .assert_error(404, "KeyNotFoundException");
    // ...and re-created under the same label: found again.
    hsm.key(&token, &NewKey::aes256("key-gone")).unwrap();
    env.encrypt("key-gone", b"back", None).await;

    // Many concurrent requests over TLS, more than there are sessions:
    // SoftHSM with OS locking and our pool stay correct.
    let env = Arc::new(env);
    let mut tasks = Vec::new();
    for i in 0..48u32 {
        let env = Arc::clone(&env);
        tasks.push(tokio::spawn(async move {
            let pt = format!("concurrent {i}").into_bytes();
            let aad = i.to_be_bytes();
            let enc = env.encrypt("key-a", &pt, Some(&aad)).await;
            let dec = decrypt_raw(&env, "key-a", decrypt_body(&enc, Some(&aad))).await;
            assert_eq!(unb64(&dec.assert_ok()["plaintext"]), pt);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let env = Arc::into_inner(env).unwrap();
    env.handle.shutdown().await;
}

/// The backend directly, many threads at once: every result decrypts, no
/// call fails, SoftHSM survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_on_softhsm() {
    let token = token_with("conc", &[NewKey::aes256("k")]);
    let (_dir, _ca, path) =
        pkcs11_env_config(&token, "max_sessions = 6\nsession_wait_ms = 5000", "");
    let cfg = Config::load(&path).unwrap();
    let BackendConfig::Pkcs11(p) = &cfg.backends["hsm"] else {
        panic!()
    };
    let km = Pkcs11KeyManager::open(p).unwrap();
    let key: ExternalKeyId = "k".parse().unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u32 {
        let km = Arc::clone(&km);
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100u32 {
                let pt = [t.to_be_bytes(), i.to_be_bytes()].concat();
                let s = km.encrypt(&key, &[], &pt, b"aad").await.unwrap();
                let back = km
                    .decrypt(&key, &[], &s.ciphertext, &s.iv, &s.tag, b"aad")
                    .await
                    .unwrap();
                assert_eq!(back.as_slice(), pt);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let h = km.health().await;
    assert_eq!(h[0].status, HealthStatus::Active, "{h:?}");
}

/// CKA_ID lookup (hex ids), allow-list status, IVs from the token's RNG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_lookup_allow_list_and_hsm_rng() {
    let token = token_with(
        "ids",
        &[
            NewKey {
                id: Some(&[0x0a, 0x01]),
                ..NewKey::aes256("first")
            },
            NewKey {
                id: Some(&[0x0a, 0x02]),
                ..NewKey::aes256("second")
            },
        ],
    );
    let env = start_env(
        &token,
        "key_lookup = \"id_hex\"\nkey_status = \"allow_list\"\nenabled_keys = [\"0a01\"]\niv_mode = \"proxy_hsm_rng\"",
        "",
    )
    .await;
    let m = metadata_of(&env, "0a01").await;
    assert_eq!(m.assert_ok()["keyStatus"], "ENABLED");
    let m = metadata_of(&env, "0A02").await;
    assert_eq!(m.assert_ok()["keyStatus"], "DISABLED");
    encrypt_raw(&env, "0a02", b"x", None)
        .await
        .assert_error(400, "InvalidStateException");
    metadata_of(&env, "first")
        .await
        .assert_error(404, "KeyNotFoundException");
    metadata_of(&env, "0a03")
        .await
        .assert_error(404, "KeyNotFoundException");
    let enc = env.encrypt("0a01", b"by id", Some(b"a")).await;
    let dec = decrypt_raw(&env, "0a01", decrypt_body(&enc, Some(b"a"))).await;
    assert_eq!(unb64(&dec.assert_ok()["plaintext"]), b"by id");
    env.handle.shutdown().await;
}

/// Startup refuses a wrong PIN, an unknown token and a missing module,
/// saying which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_are_precise() {
    let token = token_with("startup", &[]);
    let open =
        |extra: &str, edit: &dyn Fn(&mut xks_proxy::backend::pkcs11::config::Pkcs11Config)| {
            let (dir, _ca, path) = pkcs11_env_config(&token, extra, "");
            let cfg = Config::load(&path).unwrap();
            let BackendConfig::Pkcs11(p) = &cfg.backends["hsm"] else {
                panic!()
            };
            let mut p = p.clone();
            edit(&mut p);
            let r = Pkcs11KeyManager::open(&p).map(|_| ());
            drop(dir);
            r.map_err(|e| format!("{e:#}"))
        };
    open("", &|_| {}).unwrap();
    let e = open("", &|p| {
        p.user_pin_file = None;
        p.user_pin_env = Some("XKS_TEST_WRONG_PIN".into());
    })
    .unwrap_err();
    assert!(e.contains("XKS_TEST_WRONG_PIN is not set"), "{e}");
    std::env::set_var("XKS_TEST_WRONG_PIN", "not-the-pin");
    let e = open("", &|p| {
        p.user_pin_file = None;
        p.user_pin_env = Some("XKS_TEST_WRONG_PIN".into());
    })
    .unwrap_err();
    assert!(e.contains("CKR_PIN_INCORRECT"), "{e}");
    let e = open("", &|p| p.token_label = "no-such-token".into()).unwrap_err();
    assert!(e.contains("no token labelled \"no-such-token\""), "{e}");
    assert!(e.contains(&token.label), "lists the tokens present: {e}");
    let e = open("", &|p| p.module = "/nonexistent/libpkcs11.so".into()).unwrap_err();
    assert!(
        e.contains("cannot load PKCS#11 module /nonexistent/libpkcs11.so"),
        "{e}"
    );
}

/// The key manager reports a missing health key as UNAVAILABLE (and the
/// proxy's GetHealthStatus then answers 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_health_key_is_unavailable() {
    let hsm = softhsm::shared().unwrap();
    let token = hsm.new_token("nohealth").unwrap();
    hsm.key(&token, &NewKey::aes256("k")).unwrap();
    let env = start_env(&token, "", "").await;
    let h = env.call(format!("{PATH_A}/health"), health_body()).await;
    h.assert_error(500, "InternalException");
    let km = backend_of(&env);
    let report = km.health().await;
    assert_eq!(report[0].status, HealthStatus::Unavailable);
    assert!(
        report[0].detail.as_deref().unwrap().contains("health key"),
        "{report:?}"
    );
    // Requests for customer keys are unaffected.
    env.encrypt("k", b"x", None).await;
    let err = km
        .encrypt(&"missing".parse().unwrap(), &[], b"x", b"")
        .await
        .unwrap_err();
    assert_eq!(err, BackendError::KeyNotFound);
    env.handle.shutdown().await;
}

/// The HSM-generated IV modes configured against a module that does not
/// generate IVs (SoftHSM2): the proxy notices (no IV came back, or no IV
/// appended) and answers 500 instead of returning a ciphertext under an IV
/// it cannot vouch for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_iv_modes_refuse_a_module_that_does_not_make_ivs() {
    let token = token_with("ivmodes", &[NewKey::aes256("k")]);
    for mode in ["hsm_params", "hsm_appended"] {
        let env = start_env(&token, &format!("iv_mode = \"{mode}\""), "").await;
        encrypt_raw(&env, "k", b"x", None)
            .await
            .assert_error(500, "InternalException");
        let km = backend_of(&env);
        let e = km
            .encrypt(&"k".parse().unwrap(), &[], b"x", b"")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, BackendError::Internal(m) if m.contains("check iv_mode")),
            "{mode}: {e:?}"
        );
        env.handle.shutdown().await;
    }
}
