//! End-to-end tests of the proxy over real TLS sockets on 127.0.0.1.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::SystemTime;
use xks_wire::cdiv_sha256;

fn health_body(op: &str) -> Value {
    json!({"requestMetadata": {"kmsRequestId": "r-1", "kmsOperation": op}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_fleet_and_is_never_denied() {
    let env = start(Options::default()).await;
    for op in [
        "CreateCustomKeyStore",
        "ConnectCustomKeyStore",
        "UpdateCustomKeyStore",
        "KmsHealthCheck",
        "SomeFutureOperation",
    ] {
        let r = env.call(&format!("{PATH_A}/health"), health_body(op)).await;
        let v = r.assert_ok();
        assert_eq!(v["xksProxyFleetSize"], 1);
        assert_eq!(v["xksProxyVendor"], "Test Vendor");
        assert_eq!(v["xksProxyModel"], "Test Proxy 1.0");
        assert!(v["ekmVendor"].as_str().is_some_and(|s| !s.is_empty()));
        let fleet = v["ekmFleetDetails"].as_array().unwrap();
        assert_eq!(fleet.len(), 1);
        assert_eq!(fleet[0]["healthStatus"], "ACTIVE");
        assert!(fleet[0]["id"].is_string() && fleet[0]["model"].is_string());
    }
    // Key store b has authorization rules that would deny Bob; health is exempt.
    let body = json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck", "awsPrincipalArn": "arn:aws:iam::1:user/Bob"}});
    let raw = env.signed(&format!("{PATH_B}/health"), &body, &Signer::new(AK_B, SK_B));
    env.send(raw).await.assert_ok();
    // The GetHealthStatus section marks requestMetadata.kmsRequestId and
    // kmsOperation REQUIRED (AWS's test client agrees): ValidationException
    // without them, whatever the principal.
    for body in [
        "{}",
        r#"{"requestMetadata":{}}"#,
        r#"{"requestMetadata":{"kmsOperation":"KmsHealthCheck"}}"#,
        r#"{"requestMetadata":{"kmsRequestId":"r-1"}}"#,
        r#"{"requestMetadata":{"kmsRequestId":"r-1","kmsOperation":7}}"#,
        "not json",
    ] {
        let raw = env.signed_bytes(
            &format!("{PATH_A}/health"),
            body.as_bytes().to_vec(),
            &Signer::new(AK_A1, SK_A1),
        );
        env.send(raw).await.assert_error(400, "ValidationException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_at_every_size_with_cdiv() {
    let env = start(Options::default()).await;
    let aads: [Option<Vec<u8>>; 3] = [None, Some(vec![7]), Some(vec![0xA5; 8192])];
    for size in [1usize, 32, 4096, 4300] {
        for aad in &aads {
            let plaintext: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let enc = env.encrypt("key-a", &plaintext, aad.as_deref()).await;
            let ct = unb64(&enc["ciphertext"]);
            let iv = unb64(&enc["initializationVector"]);
            let tag = unb64(&enc["authenticationTag"]);
            let meta = unb64(&enc["ciphertextMetadata"]);
            assert_eq!(ct.len(), size);
            assert_eq!(iv.len(), 12);
            assert_eq!(tag.len(), 16);
            assert!(!meta.is_empty() && meta.len() <= 20);
            assert_ne!(ct, plaintext);
            let cdiv = cdiv_sha256(aad.as_deref().unwrap_or(&[]), &meta, &iv, &ct, &tag);
            assert_eq!(unb64(&enc["ciphertextDataIntegrityValue"]), cdiv);
            let r = env
                .call(
                    &format!("{PATH_A}/keys/key-a/decrypt"),
                    decrypt_body(&enc, aad.as_deref()),
                )
                .await;
            assert_eq!(unb64(&r.assert_ok()["plaintext"]), plaintext);
        }
    }
    // Without the CDIV algorithm there is no CDIV.
    let r = env
        .call(
            &format!("{PATH_A}/keys/key-a/encrypt"),
            encrypt_body(b"x", None, false),
        )
        .await;
    assert!(r.assert_ok().get("ciphertextDataIntegrityValue").is_none());
    // Two encryptions of the same plaintext differ (fresh IV).
    let a = env.encrypt("key-a", b"same", None).await;
    let b = env.encrypt("key-a", b"same", None).await;
    assert_ne!(a["initializationVector"], b["initializationVector"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_is_invalid_ciphertext() {
    let env = start(Options::default()).await;
    let aad = b"project=nile".to_vec();
    let enc = env.encrypt("key-a", b"Hello World!", Some(&aad)).await;
    let good = decrypt_body(&enc, Some(&aad));
    let path = format!("{PATH_A}/keys/key-a/decrypt");
    env.call(&path, good.clone()).await.assert_ok();

    let flip = |v: &Value, field: &str, byte: usize| -> Value {
        let mut b = unb64(&v[field]);
        b[byte] ^= 1;
        let mut out = v.clone();
        out[field] = json!(b64(&b));
        out
    };
    let meta = unb64(&enc["ciphertextMetadata"]);
    let mut cases: Vec<(&str, Value)> = vec![
        ("ciphertext bit flip", flip(&good, "ciphertext", 0)),
        ("iv bit flip", flip(&good, "initializationVector", 11)),
        ("tag bit flip", flip(&good, "authenticationTag", 15)),
        ("aad changed", flip(&good, "additionalAuthenticatedData", 0)),
        (
            "metadata changed",
            flip(&good, "ciphertextMetadata", meta.len() - 1),
        ),
    ];
    let mut v = good.clone();
    v["authenticationTag"] = json!(b64(&unb64(&good["authenticationTag"])[..12]));
    cases.push(("truncated tag", v));
    let mut v = good.clone();
    v.as_object_mut()
        .unwrap()
        .remove("additionalAuthenticatedData");
    cases.push(("aad removed", v));
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("ciphertextMetadata");
    cases.push(("metadata removed", v));
    let mut v = good.clone();
    let mut longer = meta.clone();
    longer.push(0);
    v["ciphertextMetadata"] = json!(b64(&longer));
    cases.push(("metadata extended", v));
    let mut v = good.clone();
    v["initializationVector"] = json!(b64(&[0u8; 16]));
    cases.push(("16-byte IV", v));
    let mut v = good.clone();
    v["initializationVector"] = json!(b64(&[0u8; 8]));
    cases.push(("8-byte IV", v));
    let mut v = good.clone();
    v["ciphertext"] = json!(b64(&unb64(&good["ciphertext"])[..11]));
    cases.push(("truncated ciphertext", v));

    // AAD added where there was none, and metadata moved into the AAD.
    let plain_enc = env.encrypt("key-a", b"Hello World!", None).await;
    let plain = decrypt_body(&plain_enc, None);
    let mut v = plain.clone();
    v["additionalAuthenticatedData"] = json!(b64(b"extra"));
    cases.push(("aad added", v));
    let mut v = plain.clone();
    v["additionalAuthenticatedData"] = v["ciphertextMetadata"].clone();
    v.as_object_mut().unwrap().remove("ciphertextMetadata");
    cases.push(("metadata moved into aad", v));

    for (what, body) in cases {
        let r = env.call(&path, body).await;
        assert_eq!(
            r.error_name(),
            "InvalidCiphertextException",
            "{what}: {:?}",
            r.json
        );
        r.assert_error(400, "InvalidCiphertextException");
    }
    // Key A's ciphertext on key B.
    let r = env
        .call(&format!("{PATH_A}/keys/key-b/decrypt"), good.clone())
        .await;
    r.assert_error(400, "InvalidCiphertextException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_rules() {
    let env = start(Options::default()).await;
    let enc_path = format!("{PATH_A}/keys/key-a/encrypt");
    let good = encrypt_body(b"hello", Some(b"aad"), true);

    let mut bad: Vec<(&str, Value)> = vec![
        ("no requestMetadata", {
            let mut v = good.clone();
            v.as_object_mut().unwrap().remove("requestMetadata");
            v
        }),
        ("empty requestMetadata", {
            let mut v = good.clone();
            v["requestMetadata"] = json!({});
            v
        }),
        ("requestMetadata not an object", {
            let mut v = good.clone();
            v["requestMetadata"] = json!("x");
            v
        }),
        ("plaintext wrong type", {
            let mut v = good.clone();
            v["plaintext"] = json!(42);
            v
        }),
        ("unknown algorithm", {
            let mut v = good.clone();
            v["encryptionAlgorithm"] = json!("AES_CBC");
            v
        }),
        ("unknown CDIV algorithm", {
            let mut v = good.clone();
            v["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_512");
            v
        }),
        ("url-safe base64", {
            let mut v = good.clone();
            v["plaintext"] = json!("-_-_");
            v
        }),
        ("unpadded base64", {
            let mut v = good.clone();
            v["plaintext"] = json!("aGk");
            v
        }),
        ("kmsRequestId wrong type", {
            let mut v = good.clone();
            v["requestMetadata"]["kmsRequestId"] = json!(5);
            v
        }),
    ];
    for field in ["plaintext", "encryptionAlgorithm"] {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(field);
        bad.push(("missing top-level field", v));
    }
    for field in [
        "awsPrincipalArn",
        "kmsKeyArn",
        "kmsOperation",
        "kmsRequestId",
    ] {
        let mut v = good.clone();
        v["requestMetadata"].as_object_mut().unwrap().remove(field);
        bad.push(("missing metadata field", v));
    }
    for (what, body) in bad {
        let r = env.call(&enc_path, body).await;
        assert_eq!(
            r.error_name(),
            "ValidationException",
            "{what}: {:?}",
            r.json
        );
        r.assert_error(400, "ValidationException");
    }
    // Not JSON at all.
    let raw = env.signed_bytes(&enc_path, b"not json".to_vec(), &Signer::new(AK_A1, SK_A1));
    env.send(raw).await.assert_error(400, "ValidationException");

    // Decrypt: metadata over 20 bytes, missing IV/tag.
    let enc = env.encrypt("key-a", b"x", None).await;
    let dec_path = format!("{PATH_A}/keys/key-a/decrypt");
    let mut v = decrypt_body(&enc, None);
    v["ciphertextMetadata"] = json!(b64(&[1u8; 21]));
    env.call(&dec_path, v)
        .await
        .assert_error(400, "ValidationException");
    for field in [
        "initializationVector",
        "authenticationTag",
        "ciphertext",
        "encryptionAlgorithm",
    ] {
        let mut v = decrypt_body(&enc, None);
        v.as_object_mut().unwrap().remove(field);
        env.call(&dec_path, v)
            .await
            .assert_error(400, "ValidationException");
    }
    // GetKeyMetadata needs awsPrincipalArn but not kmsKeyArn.
    let md_path = format!("{PATH_A}/keys/key-a/metadata");
    let mut md = metadata("CreateKey");
    md.as_object_mut().unwrap().remove("kmsKeyArn");
    env.call(&md_path, json!({"requestMetadata": md.clone()}))
        .await
        .assert_ok();
    md.as_object_mut().unwrap().remove("awsPrincipalArn");
    env.call(&md_path, json!({"requestMetadata": md}))
        .await
        .assert_error(400, "ValidationException");

    // Tolerated: unknown fields, unknown operations, opaque request ids,
    // 2048-character ARNs, the optional VPC fields.
    let mut v = good.clone();
    v["someNewField"] = json!({"nested": [1, 2]});
    v["requestMetadata"]["kmsOperation"] = json!("BulkEncrypt");
    v["requestMetadata"]["kmsRequestId"] = json!("not a uuid at all");
    v["requestMetadata"]["awsPrincipalArn"] = json!(format!(
        "arn:aws:iam::111122223333:role/{}",
        "r".repeat(2048 - 36)
    ));
    v["requestMetadata"]["kmsKeyArn"] = json!(format!(
        "arn:aws:kms:us-east-1:111122223333:key/{}",
        "k".repeat(2048 - 40)
    ));
    v["requestMetadata"]["awsSourceVpc"] = json!("vpc-0123456789abcdef0");
    v["requestMetadata"]["awsSourceVpce"] = json!("vpce-0123456789abcdef0");
    v["requestMetadata"]["someFutureMetadata"] = json!("x");
    env.call(&enc_path, v).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_and_methods() {
    let env = start(Options::default()).await;
    let tls = env.tls();
    let get = |path: &str| Raw {
        method: "GET",
        path: path.to_owned(),
        headers: vec![("host".into(), env.host())],
        body: vec![],
    };
    for path in [
        format!("{PATH_A}/health"),
        format!("{PATH_A}/keys/key-a/encrypt"),
        format!("{PATH_A}/keys/key-a/decrypt"),
        format!("{PATH_A}/keys/key-a/metadata"),
    ] {
        let r = send_with(env.handle.addr, tls.clone(), get(&path), false)
            .await
            .unwrap();
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.allow.as_deref(), Some("POST"));
    }
    // Load balancer health check.
    let r = send_with(env.handle.addr, tls.clone(), get("/ping"), false)
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    for path in [
        format!("{PATH_A}/keys/key-a/sign"),
        format!("{PATH_A}/health/"),
        format!("{PATH_A}/keys/key-a/encrypt/"),
        "/nope/kms/xks/v1/health".to_owned(),
        "/kms/xks/v1/health".to_owned(),
        "/a/kms/xks/v2/health".to_owned(),
        "/".to_owned(),
    ] {
        let r = env.call(&path, health_body("KmsHealthCheck")).await;
        r.assert_error(404, "InvalidUriPathException");
    }
    let md = json!({"requestMetadata": metadata("DescribeKey")});
    // Unknown keys, including a valid 128-character id and one over 128.
    for key in [
        "missing",
        &long_key_id().replace('z', "y"),
        &format!("{}x", long_key_id()),
        "not-in-a",
    ] {
        let r = env
            .call(&format!("{PATH_A}/keys/{key}/metadata"), md.clone())
            .await;
        r.assert_error(404, "KeyNotFoundException");
    }
    // The 128-character id with '.', '_' and '-' that exists works.
    let r = env
        .call(&format!("{PATH_A}/keys/{}/metadata", long_key_id()), md)
        .await;
    r.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_rules() {
    let env = start(Options::default()).await;
    let path = format!("{PATH_A}/keys/key-a/metadata");
    let body = json!({"requestMetadata": metadata("DescribeKey")});
    // Both credentials of the rotation pair work.
    for (ak, sk) in [(AK_A1, SK_A1), (AK_A2, SK_A2)] {
        env.send(env.signed(&path, &body, &Signer::new(ak, sk)))
            .await
            .assert_ok();
    }
    let now = SystemTime::now();
    let failing: Vec<(&str, Raw)> = vec![
        (
            "unknown access key",
            env.signed(
                &path,
                &body,
                &Signer::new("AKIAZZZZZZZZZZZZZZZZZZ22", SK_A1),
            ),
        ),
        (
            "wrong secret",
            env.signed(&path, &body, &Signer::new(AK_A1, SK_A2)),
        ),
        (
            "wrong service",
            env.signed(
                &path,
                &body,
                &Signer {
                    service: "kms",
                    ..Signer::new(AK_A1, SK_A1)
                },
            ),
        ),
        (
            "wrong region",
            env.signed(
                &path,
                &body,
                &Signer {
                    region: "eu-west-1",
                    ..Signer::new(AK_A1, SK_A1)
                },
            ),
        ),
        (
            "6 minutes old",
            env.signed(
                &path,
                &body,
                &Signer {
                    time: now - minutes(6),
                    ..Signer::new(AK_A1, SK_A1)
                },
            ),
        ),
        (
            "6 minutes ahead",
            env.signed(
                &path,
                &body,
                &Signer {
                    time: now + minutes(6),
                    ..Signer::new(AK_A1, SK_A1)
                },
            ),
        ),
        (
            "store b's credential on store a",
            env.signed(&path, &body, &Signer::new(AK_B, SK_B)),
        ),
        ("no authorization header", {
            let mut r = env.signed(&path, &body, &Signer::new(AK_A1, SK_A1));
            r.headers.retain(|(k, _)| k != "authorization");
            r
        }),
        ("no x-amz-date", {
            let mut r = env.signed(&path, &body, &Signer::new(AK_A1, SK_A1));
            r.headers.retain(|(k, _)| k != "x-amz-date");
            r
        }),
        ("scope date differs from x-amz-date", {
            let mut r = env.signed(&path, &body, &Signer::new(AK_A1, SK_A1));
            let other = sigv4::format_amz_date(now - minutes(60 * 24 * 2));
            for (k, v) in r.headers.iter_mut() {
                if k == "x-amz-date" {
                    *v = other.clone();
                }
            }
            r
        }),
        ("body changed after signing", {
            let mut r = env.signed(&path, &body, &Signer::new(AK_A1, SK_A1));
            r.body.push(b' ');
            r
        }),
        ("host altered", {
            let mut r = env.signed(&path, &body, &Signer::new(AK_A1, SK_A1));
            for (k, v) in r.headers.iter_mut() {
                if k == "host" {
                    *v = "127.0.0.1:1".into();
                }
            }
            r
        }),
    ];
    for (what, raw) in failing {
        let r = env.send(raw).await;
        assert_eq!(r.error_name(), "AuthenticationFailedException", "{what}");
        r.assert_error(401, "AuthenticationFailedException");
        // The reason stays in the log, not in the body.
        assert!(!String::from_utf8_lossy(&r.body)
            .to_lowercase()
            .contains("secret"));
    }
    // Store a's credential is accepted only on a; b's only on b.
    let raw = env.signed(
        &format!("{PATH_B}/keys/key-a/metadata"),
        &body,
        &Signer::new(AK_A1, SK_A1),
    );
    env.send(raw)
        .await
        .assert_error(401, "AuthenticationFailedException");
    let raw = env.signed(
        &format!("{PATH_B}/keys/key-a/metadata"),
        &body,
        &Signer::new(AK_B, SK_B),
    );
    env.send(raw).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_uses_authority_for_sigv4() {
    let env = start(Options::default()).await;
    let tls = client_tls(&env.ca.cert_pem(), None, &[b"h2"]);
    let raw = env.signed(
        &format!("{PATH_A}/health"),
        &health_body("KmsHealthCheck"),
        &Signer::new(AK_A1, SK_A1),
    );
    let r = send_with(env.handle.addr, tls.clone(), raw, true)
        .await
        .unwrap();
    r.assert_ok();
    let enc = encrypt_body(b"over h2", None, true);
    let raw = env.signed(
        &format!("{PATH_A}/keys/key-a/encrypt"),
        &enc,
        &Signer::new(AK_A1, SK_A1),
    );
    send_with(env.handle.addr, tls, raw, true)
        .await
        .unwrap()
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_states_and_usages() {
    let env = start(Options::default()).await;
    let md = json!({"requestMetadata": metadata("DescribeKey")});
    let get = |key: &str| env.call(format!("{PATH_A}/keys/{key}/metadata"), md.clone());
    let v = get("key-a").await;
    let v = v.assert_ok();
    assert_eq!(v["keySpec"], "AES_256");
    assert_eq!(v["keyUsage"], json!(["ENCRYPT", "DECRYPT"]));
    assert_eq!(v["keyStatus"], "ENABLED");
    assert_eq!(
        get("enc-only").await.assert_ok()["keyUsage"],
        json!(["ENCRYPT"])
    );
    assert_eq!(
        get("dec-only").await.assert_ok()["keyUsage"],
        json!(["DECRYPT"])
    );
    assert_eq!(get("no-usage").await.assert_ok()["keyUsage"], json!([]));
    assert_eq!(
        get("disabled-key").await.assert_ok()["keyStatus"],
        "DISABLED"
    );

    let enc = |key: &str| {
        env.call(
            format!("{PATH_A}/keys/{key}/encrypt"),
            encrypt_body(b"x", None, false),
        )
    };
    enc("disabled-key")
        .await
        .assert_error(400, "InvalidStateException");
    enc("dec-only")
        .await
        .assert_error(400, "InvalidKeyUsageException");
    enc("no-usage")
        .await
        .assert_error(400, "InvalidKeyUsageException");
    let ct = enc("enc-only").await.assert_ok().clone();
    // A CDIV promises a later Decrypt succeeds: not from an encrypt-only
    // key, with or without AAD.
    for aad in [None, Some(&b"ctx"[..])] {
        env.call(
            format!("{PATH_A}/keys/enc-only/encrypt"),
            encrypt_body(b"x", aad, true),
        )
        .await
        .assert_error(400, "InvalidKeyUsageException");
    }
    env.call(
        &format!("{PATH_A}/keys/enc-only/decrypt"),
        decrypt_body(&ct, None),
    )
    .await
    .assert_error(400, "InvalidKeyUsageException");

    // Disabling a key through the admin CLI takes effect in the running proxy.
    let good = env.encrypt("key-b", b"payload", None).await;
    xks_proxy::admin::run(
        &admin_target(env.dir.path()),
        xks_proxy::admin::Action::Disable { id: "key-b".into() },
    )
    .unwrap();
    let mut state = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let r = env
            .call(
                &format!("{PATH_A}/keys/key-b/decrypt"),
                decrypt_body(&good, None),
            )
            .await;
        state = r.error_name().to_owned();
        if state == "InvalidStateException" {
            break;
        }
    }
    assert_eq!(state, "InvalidStateException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_ciphertexts() {
    let env = start(Options::default()).await;
    let before = env.encrypt("key-a", b"v1 data", None).await;
    xks_proxy::admin::run(
        &admin_target(env.dir.path()),
        xks_proxy::admin::Action::Rotate { id: "key-a".into() },
    )
    .unwrap();
    let mut after = before.clone();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        after = env.encrypt("key-a", b"v2 data", None).await;
        if after["ciphertextMetadata"] != before["ciphertextMetadata"] {
            break;
        }
    }
    assert_ne!(
        after["ciphertextMetadata"], before["ciphertextMetadata"],
        "rotation not picked up"
    );
    for (enc, plain) in [(&before, &b"v1 data"[..]), (&after, &b"v2 data"[..])] {
        let r = env
            .call(
                &format!("{PATH_A}/keys/key-a/decrypt"),
                decrypt_body(enc, None),
            )
            .await;
        assert_eq!(unb64(&r.assert_ok()["plaintext"]), plain);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_authorization() {
    let env = start(Options::default()).await;
    let s = Signer::new(AK_B, SK_B);
    let enc_path = format!("{PATH_B}/keys/key-a/encrypt");
    let enc = env
        .send(env.signed(&enc_path, &encrypt_body(b"x", None, false), &s))
        .await;
    let enc = enc.assert_ok().clone();
    let mut bob = encrypt_body(b"x", None, false);
    bob["requestMetadata"]["awsPrincipalArn"] = json!("arn:aws:iam::111122223333:user/Bob");
    env.send(env.signed(&enc_path, &bob, &s))
        .await
        .assert_error(403, "AccessDeniedException");
    let mut dec = decrypt_body(&enc, None);
    dec["requestMetadata"]["awsSourceVpc"] = json!("vpc-bad-1");
    env.send(env.signed(&format!("{PATH_B}/keys/key-a/decrypt"), &dec, &s))
        .await
        .assert_error(403, "AccessDeniedException");
    dec["requestMetadata"]["awsSourceVpc"] = json!("vpc-good-1");
    env.send(env.signed(&format!("{PATH_B}/keys/key-a/decrypt"), &dec, &s))
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_throttles() {
    let env = start(Options::default()).await;
    let s = Signer::new(AK_L, SK_L);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = env
            .send(env.signed(
                &format!("{PATH_L}/health"),
                &health_body("KmsHealthCheck"),
                &s,
            ))
            .await;
        if r.status == 429 {
            r.assert_error(429, "ThrottlingException");
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Other key stores have their own quota.
    env.call(&format!("{PATH_A}/health"), health_body("KmsHealthCheck"))
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_are_unsupported_operation() {
    let env = start(Options::default()).await;
    let path = format!("{PATH_A}/keys/key-a/encrypt");
    env.call(
        &path,
        encrypt_body(&vec![1; 8192], Some(&vec![2; 16384]), false),
    )
    .await
    .assert_ok();
    env.call(&path, encrypt_body(&vec![1; 8193], None, false))
        .await
        .assert_error(501, "UnsupportedOperationException");
    env.call(&path, encrypt_body(b"x", Some(&vec![2; 16385]), false))
        .await
        .assert_error(501, "UnsupportedOperationException");
    let huge = vec![b' '; 70 * 1024];
    let raw = env.signed_bytes(&path, huge, &Signer::new(AK_A1, SK_A1));
    env.send(raw)
        .await
        .assert_error(501, "UnsupportedOperationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_rotation_by_reload_without_restart() {
    let env = start(Options::default()).await;
    let path = format!("{PATH_A}/health");
    let new_ak = "AKIANEWNEWNEWNEWNEWNEW22";
    let new_sk = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeE";
    // Step 1: add the new credential next to the old ones.
    let text = std::fs::read_to_string(&env.config_path).unwrap().replacen(
        "[[key_stores.credentials]]",
        &format!("[[key_stores.credentials]]\naccess_key_id = \"{new_ak}\"\nsecret_access_key = \"{new_sk}\"\n\n[[key_stores.credentials]]"),
        1,
    );
    std::fs::write(&env.config_path, &text).unwrap();
    env.handle
        .reload(&xks_proxy::config::Config::load(&env.config_path).unwrap())
        .unwrap();
    for (ak, sk) in [(AK_A1, SK_A1), (new_ak, new_sk)] {
        env.send(env.signed(&path, &health_body("KmsHealthCheck"), &Signer::new(ak, sk)))
            .await
            .assert_ok();
    }
    // Step 4: remove the old one.
    let text = text.replacen(
        &format!("access_key_id = \"{AK_A1}\"\nsecret_access_key = \"{SK_A1}\""),
        &format!("access_key_id = \"{AK_A2}\"\nsecret_access_key = \"{SK_A2}\""),
        1,
    );
    let text = text.replacen(&format!("[[key_stores.credentials]]\naccess_key_id = \"{AK_A2}\"\nsecret_access_key_file = \"secret_a2\"\n"), "", 1);
    std::fs::write(&env.config_path, &text).unwrap();
    env.handle
        .reload(&xks_proxy::config::Config::load(&env.config_path).unwrap())
        .unwrap();
    env.send(env.signed(
        &path,
        &health_body("KmsHealthCheck"),
        &Signer::new(AK_A1, SK_A1),
    ))
    .await
    .assert_error(401, "AuthenticationFailedException");
    env.send(env.signed(
        &path,
        &health_body("KmsHealthCheck"),
        &Signer::new(new_ak, new_sk),
    ))
    .await
    .assert_ok();
}
