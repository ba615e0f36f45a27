//! Property tests of kms-core's cryptographic invariants, through the
//! public crypto functions and through `Kms::handle` (development auth,
//! memory store, no sockets): round trips for every key type that encrypts
//! and every blob format, the canonical encryption context independent of
//! order, and any single-bit change of a ciphertext refused as
//! InvalidCiphertextException. Case counts are bounded to keep CI short.

use base64::Engine as _;
use kms_core::auth::AuthMode;
use kms_core::crypto::{canonical_context, Blob, Secret, SymmetricKey};
use kms_core::service::Kms;
use kms_core::store::MemoryStore;
use kms_core::xks::envelope::XksBlob;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Service {
    rt: tokio::runtime::Runtime,
    kms: Kms,
}

impl Service {
    fn new() -> Service {
        Service {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
            kms: Kms::new(AuthMode::Development, Arc::new(MemoryStore::in_memory())).unwrap(),
        }
    }

    fn call(&self, op: &str, body: &Value) -> (u16, Value) {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-amz-target",
            http::HeaderValue::from_str(&format!("TrentService.{op}")).unwrap(),
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=111122223333/20250101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        ));
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
        let body = serde_json::to_vec(body).unwrap();
        let req = sigv4::RequestParts {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            authority: None,
            body: &body,
        };
        let reply = self.rt.block_on(self.kms.handle(&req));
        (reply.status, serde_json::from_slice(&reply.body).unwrap())
    }

    fn ok(&self, op: &str, body: Value) -> Value {
        let (status, reply) = self.call(op, &body);
        assert_eq!(status, 200, "{op}: {reply}");
        reply
    }

    fn create_key(&self, spec: &str, usage: &str) -> String {
        let r = self.ok("CreateKey", json!({"KeySpec": spec, "KeyUsage": usage}));
        r["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
    }
}

/// `cases` by default (CI), `PROPTEST_CASES` for a longer run.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    })
}

fn error_type(reply: &Value) -> &str {
    reply["__type"].as_str().unwrap_or("")
}

fn context_strategy() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    btree_map("[a-zA-Z0-9:_/.-]{1,16}", "[ -~]{0,24}", 0..5)
}

/// Encrypt → Decrypt gives the plaintext back for every key spec that
/// encrypts, every algorithm, plaintexts up to each one's limit, any
/// encryption context (symmetric); another context is refused.
#[test]
fn every_encrypting_key_type_round_trips() {
    let svc = Service::new();
    let cases: [(&str, &str, usize); 7] = [
        ("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT", 4096),
        ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
        ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
        ("RSA_3072", "RSAES_OAEP_SHA_1", 342),
        ("RSA_3072", "RSAES_OAEP_SHA_256", 318),
        ("RSA_4096", "RSAES_OAEP_SHA_1", 470),
        ("RSA_4096", "RSAES_OAEP_SHA_256", 446),
    ];
    let mut keys = std::collections::HashMap::new();
    for (spec, alg, max) in cases {
        let key = keys
            .entry(spec)
            .or_insert_with(|| svc.create_key(spec, "ENCRYPT_DECRYPT"))
            .clone();
        let symmetric = spec == "SYMMETRIC_DEFAULT";
        runner(12)
            .run(
                &(vec(any::<u8>(), 1..=max), context_strategy()),
                |(plaintext, context)| {
                    let context = if symmetric { context } else { Default::default() };
                    let enc = svc.ok(
                        "Encrypt",
                        json!({"KeyId": key, "Plaintext": B64.encode(&plaintext),
                               "EncryptionAlgorithm": alg, "EncryptionContext": context}),
                    );
                    let blob = enc["CiphertextBlob"].as_str().unwrap().to_string();
                    let mut dec = json!({"CiphertextBlob": blob, "EncryptionAlgorithm": alg,
                                         "EncryptionContext": context});
                    if !symmetric {
                        dec["KeyId"] = json!(key);
                    }
                    let out = svc.ok("Decrypt", dec.clone());
                    prop_assert_eq!(B64.decode(out["Plaintext"].as_str().unwrap()).unwrap(), plaintext);
                    prop_assert!(out["KeyId"].as_str().unwrap().ends_with(&key));
                    if symmetric {
                        dec["EncryptionContext"] = json!({"other": "context"});
                        let (status, reply) = svc.call("Decrypt", &dec);
                        prop_assert_eq!(status, 400);
                        prop_assert_eq!(error_type(&reply), "InvalidCiphertextException");
                    }
                    // One more byte than the limit is refused.
                    let too_long = vec![0u8; max + 1];
                    let (status, _) = svc.call(
                        "Encrypt",
                        &json!({"KeyId": key, "Plaintext": B64.encode(&too_long), "EncryptionAlgorithm": alg}),
                    );
                    prop_assert_eq!(status, 400);
                    Ok(())
                },
            )
            .unwrap_or_else(|e| panic!("{spec}/{alg}: {e}"));
    }
    // Data keys: GenerateDataKey's ciphertext decrypts to its plaintext.
    let key = keys["SYMMETRIC_DEFAULT"].clone();
    runner(16)
        .run(&(1usize..=1024, context_strategy()), |(bytes, context)| {
            let dk = svc.ok(
                "GenerateDataKey",
                json!({"KeyId": key, "NumberOfBytes": bytes, "EncryptionContext": context}),
            );
            let out = svc.ok(
                "Decrypt",
                json!({"CiphertextBlob": dk["CiphertextBlob"], "EncryptionContext": context}),
            );
            prop_assert_eq!(&out["Plaintext"], &dk["Plaintext"]);
            prop_assert_eq!(
                B64.decode(dk["Plaintext"].as_str().unwrap()).unwrap().len(),
                bytes
            );
            Ok(())
        })
        .unwrap();
}

/// Any single-bit change of a ciphertext blob (symmetric and RSA) is
/// InvalidCiphertextException, never another error and never a plaintext.
#[test]
fn any_single_bit_flip_is_invalid_ciphertext() {
    let svc = Service::new();
    for (spec, alg) in [
        ("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT"),
        ("RSA_2048", "RSAES_OAEP_SHA_256"),
    ] {
        let key = svc.create_key(spec, "ENCRYPT_DECRYPT");
        let enc = svc.ok(
            "Encrypt",
            json!({"KeyId": key, "Plaintext": B64.encode(b"attack at dawn"), "EncryptionAlgorithm": alg,
                   "EncryptionContext": if spec == "SYMMETRIC_DEFAULT" { json!({"purpose": "test"}) } else { json!({}) }}),
        );
        let blob = B64.decode(enc["CiphertextBlob"].as_str().unwrap()).unwrap();
        let bits = blob.len() * 8;
        runner(96)
            .run(&(0..bits), |bit| {
                let mut bad = blob.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let mut req =
                    json!({"CiphertextBlob": B64.encode(&bad), "EncryptionAlgorithm": alg});
                if spec == "SYMMETRIC_DEFAULT" {
                    req["EncryptionContext"] = json!({"purpose": "test"});
                } else {
                    req["KeyId"] = json!(key);
                }
                let (status, reply) = svc.call("Decrypt", &req);
                prop_assert_eq!(status, 400, "bit {}: {}", bit, reply);
                prop_assert_eq!(
                    error_type(&reply),
                    "InvalidCiphertextException",
                    "bit {}",
                    bit
                );
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

/// The canonical encryption context does not depend on the order pairs
/// come in, and different contexts never share a canonical form.
#[test]
fn canonical_context_is_order_independent_and_injective() {
    runner(256)
        .run(
            &(context_strategy(), context_strategy(), any::<u64>()),
            |(a, b, seed)| {
                let pairs: Vec<(&str, &str)> =
                    a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let mut shuffled = pairs.clone();
                // A deterministic permutation from the seed.
                let n = shuffled.len();
                for i in (1..n).rev() {
                    let j = (seed.rotate_left(i as u32) as usize) % (i + 1);
                    shuffled.swap(i, j);
                }
                let mut reversed = pairs.clone();
                reversed.reverse();
                let canon = canonical_context(pairs.iter().copied());
                prop_assert_eq!(&canon, &canonical_context(shuffled));
                prop_assert_eq!(&canon, &canonical_context(reversed));
                let other = canonical_context(b.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                prop_assert_eq!(canon == other, a == b);
                Ok(())
            },
        )
        .unwrap();
}

/// Format 1 and format 2 blobs: encode → parse is the identity, and a
/// format-1 blob decrypts only under its key, version and context.
#[test]
fn blob_formats_round_trip() {
    let key_id = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let key = SymmetricKey::new(key_id, 3, &Secret::from_slice(&[9u8; 32])).unwrap();
    let other = SymmetricKey::new(key_id, 3, &Secret::from_slice(&[8u8; 32])).unwrap();
    runner(128)
        .run(
            &(vec(any::<u8>(), 0..=4096), vec(any::<u8>(), 0..64)),
            |(plaintext, context)| {
                let bytes = key.encrypt(&plaintext, &context).unwrap();
                let blob = Blob::parse(&bytes).unwrap();
                prop_assert_eq!(blob.to_bytes(), bytes.clone());
                prop_assert_eq!(blob.version, 3);
                prop_assert_eq!(blob.key_id_string(), key_id);
                let decrypted = key.decrypt(&blob, &context).unwrap();
                prop_assert_eq!(decrypted.expose(), &plaintext[..]);
                prop_assert!(other.decrypt(&blob, &context).is_err());
                let mut wrong = context.clone();
                wrong.push(0);
                prop_assert!(key.decrypt(&blob, &wrong).is_err());
                Ok(())
            },
        )
        .unwrap();
    let xks = (
        any::<[u8; 16]>(),
        prop_oneof![vec(any::<u8>(), 12..=12), vec(any::<u8>(), 16..=16)],
        any::<[u8; 16]>(),
        vec(any::<u8>(), 0..=20),
        vec(any::<u8>(), 49..200),
    );
    runner(256)
        .run(&xks, |(key_id, iv, tag, metadata, ciphertext)| {
            let blob = XksBlob {
                key_id,
                iv,
                tag,
                metadata,
                ciphertext,
            };
            let bytes = blob.to_bytes().unwrap();
            prop_assert_eq!(XksBlob::parse(&bytes).unwrap(), blob);
            prop_assert!(kms_core::xks::envelope::is_xks_blob(&bytes));
            prop_assert!(
                Blob::parse(&bytes).is_err(),
                "a format-2 blob parsed as format 1"
            );
            Ok(())
        })
        .unwrap();
}
