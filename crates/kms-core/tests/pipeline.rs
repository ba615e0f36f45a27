//! The typed request pipeline through `Kms::handle` (the function the
//! server and the fuzz target call): every operation of the model reaches
//! its typed request and a dispatch arm, the request context, unreadable
//! stored records, and the fidelity fixes against responses recorded from
//! AWS (issue 15) — checked on the exact JSON bodies.

use base64::Engine;
use kms_core::api::model::Model;
use kms_core::api::Operation;
use kms_core::auth::AuthMode;
use kms_core::context::{KeyRole, Outcome, Peer};
use kms_core::pipeline::dispatch::NOT_IMPLEMENTED;
use kms_core::service::Kms;
use kms_core::store::{MemoryStore, SqliteStore, Store};
use serde_json::{json, Value};
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

fn kms() -> Kms {
    Kms::new(AuthMode::Development, Arc::new(MemoryStore::in_memory())).unwrap()
}

fn headers(op: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-target",
        format!("TrentService.{op}").parse().unwrap(),
    );
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    h.insert("user-agent", "pipeline-test/1".parse().unwrap());
    h.insert(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={ACCOUNT}/20260101/{REGION}/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        )
        .parse()
        .unwrap(),
    );
    h
}

/// (status, JSON body) of `op` with `body`, from `peer`.
async fn call_from(
    kms: &Kms,
    op: &str,
    body: Value,
    peer: Peer,
) -> (u16, Value, kms_core::service::Reply) {
    let h = headers(op);
    let bytes = serde_json::to_vec(&body).unwrap();
    let reply = kms
        .handle_from(
            &sigv4::RequestParts {
                method: "POST",
                path: "/",
                query: None,
                headers: &h,
                authority: Some("localhost"),
                body: &bytes,
            },
            peer,
        )
        .await;
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    (reply.status, v, reply)
}

async fn call(kms: &Kms, op: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = call_from(kms, op, body, Peer::default()).await;
    (s, v)
}

async fn ok(kms: &Kms, op: &str, body: Value) -> Value {
    let (status, v) = call(kms, op, body).await;
    assert_eq!(status, 200, "{op}: {v}");
    v
}

async fn create(kms: &Kms, body: Value) -> String {
    ok(kms, "CreateKey", body).await["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A minimal valid body for an input shape: every required member with a
/// value its constraints accept.
fn minimal(model: &Model, shape: &str) -> Value {
    use kms_core::api::model::ShapeType as T;
    let s = model.shape(shape).unwrap();
    match s.kind {
        T::Structure => {
            let mut m = serde_json::Map::new();
            for r in &s.required {
                m.insert(r.clone(), minimal(model, &s.members[r].shape));
            }
            Value::Object(m)
        }
        T::String => match &s.enum_values {
            Some(v) => json!(v[0]),
            None => {
                let len = s.min.unwrap_or(1).max(1) as usize;
                let fits = |c: &&str| {
                    c.len() >= len
                        && s.max.is_none_or(|m| c.len() as i64 <= m)
                        && model.pattern(shape).is_none_or(|p| p.is_match(c))
                };
                let candidates = [
                    "1234abcd-12ab-34cd-56ef-1234567890ab",
                    "alias/walk",
                    "us-west-2",
                    "cks-1234567890abcdefg",
                    "/kms/xks/v1",
                    "https://localhost",
                ];
                match candidates.iter().find(|c| fits(c)) {
                    Some(c) => json!(c),
                    None => json!("x".repeat(len)),
                }
            }
        },
        T::Blob => json!("eA=="),
        T::Integer | T::Long => json!(s.min.unwrap_or(1).max(1)),
        T::Boolean => json!(false),
        T::Timestamp => json!(0),
        T::List => json!([]),
        T::Map => json!({}),
    }
}

/// Every operation of the vendored model has its typed request and
/// response and a dispatch arm; UnsupportedOperationException ("not
/// implemented") only for the operations listed as not implemented.
#[tokio::test]
async fn every_operation_of_the_model_is_typed_and_dispatched() {
    let model = Model::load().unwrap();
    let kms = kms();
    assert_eq!(model.operations.len(), Operation::ALL.len());
    for (name, def) in &model.operations {
        let op = Operation::from_name(name).unwrap_or_else(|| panic!("{name}: no Operation"));
        let (input, output) = op.shapes();
        assert_eq!(Some(input), def.input.as_ref().map(|s| s.shape.as_str()));
        assert_eq!(output, def.output.as_ref().map(|s| s.shape.as_str()));
        let body = minimal(&model, input);
        let typed = kms_core::api::Request::decode(op, body.clone())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(typed.operation(), op);
        let (status, v) = call(&kms, name, body).await;
        let kind = v["__type"].as_str().unwrap_or("");
        let message = v["message"].as_str().unwrap_or("");
        let not_implemented = message.contains("is not implemented");
        if NOT_IMPLEMENTED.contains(&op) {
            assert!(
                not_implemented || kind == "NotFoundException",
                "{name}: {status} {v}"
            );
        } else {
            assert!(!not_implemented, "{name}: {v}");
            assert_ne!(status, 500, "{name}: {v}");
        }
    }
}

#[tokio::test]
async fn the_request_context_carries_the_request() {
    let kms = kms();
    let key = create(&kms, json!({})).await;
    let peer = Peer {
        address: Some("127.0.0.1:4242".parse().unwrap()),
        tls: true,
    };
    let body = json!({"KeyId": key, "Plaintext": b64(b"x")});
    let (status, _, reply) = call_from(&kms, "Encrypt", body, peer).await;
    assert_eq!(status, 200);
    let cx = &reply.context;
    assert_eq!(cx.request_id, reply.request_id);
    assert_eq!(cx.operation, Some(Operation::Encrypt));
    assert_eq!(cx.source, peer.address);
    assert!(cx.tls);
    assert_eq!(cx.user_agent.as_deref(), Some("pipeline-test/1"));
    let caller = cx.caller.as_ref().unwrap();
    assert_eq!(caller.principal_arn, format!("arn:aws:iam::{ACCOUNT}:root"));
    assert_eq!(cx.resolved.keys.len(), 1);
    assert_eq!(cx.resolved.get(KeyRole::Key).unwrap().record.arn, key);
    assert_eq!(cx.outcome, Outcome::Success);

    // ReEncrypt: the ciphertext's key as source, the destination.
    let blob = ok(
        &kms,
        "Encrypt",
        json!({"KeyId": key, "Plaintext": b64(b"x")}),
    )
    .await["CiphertextBlob"]
        .clone();
    let other = create(&kms, json!({})).await;
    let body = json!({"CiphertextBlob": blob, "DestinationKeyId": other});
    let (_, _, reply) = call_from(&kms, "ReEncrypt", body, Peer::default()).await;
    let r = &reply.context.resolved;
    assert_eq!(r.get(KeyRole::Source).unwrap().record.arn, key);
    assert_eq!(r.get(KeyRole::Destination).unwrap().record.arn, other);

    let (_, _, reply) = call_from(
        &kms,
        "Encrypt",
        json!({"KeyId": "alias/none", "Plaintext": "eA=="}),
        Peer::default(),
    )
    .await;
    assert_eq!(reply.context.outcome, Outcome::Error("NotFoundException"));
}

/// A stored key whose spec this version does not know is an internal error
/// naming the key in the log, never a symmetric key; the other keys work.
#[tokio::test]
async fn an_unknown_stored_key_spec_is_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let open = || -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open_with_key(
                dir.path(),
                local_key::MasterKey::from_bytes(&[3; 32]).unwrap(),
            )
            .unwrap(),
        )
    };
    let (bad, good) = {
        let kms = Kms::new(AuthMode::Development, open()).unwrap();
        (create(&kms, json!({})).await, create(&kms, json!({})).await)
    };
    let bad_id = bad.rsplit('/').next().unwrap().to_owned();
    {
        let conn = rusqlite::Connection::open(dir.path().join("kms.db")).unwrap();
        let json: String = conn
            .query_row("SELECT record FROM keys WHERE id = ?1", [&bad_id], |r| {
                r.get(0)
            })
            .unwrap();
        let changed = json.replace("\"SYMMETRIC_DEFAULT\"", "\"QUANTUM_9000\"");
        assert_ne!(changed, json);
        conn.execute(
            "UPDATE keys SET record = ?2 WHERE id = ?1",
            [&bad_id, &changed],
        )
        .unwrap();
    }
    let kms = Kms::new(AuthMode::Development, open()).unwrap();
    for (op, body) in [
        ("DescribeKey", json!({"KeyId": bad})),
        ("Encrypt", json!({"KeyId": bad_id, "Plaintext": "eA=="})),
    ] {
        let (status, v) = call(&kms, op, body).await;
        assert_eq!(status, 500, "{op}: {v}");
        assert_eq!(v["__type"], "KMSInternalException");
        assert!(!v["message"].as_str().unwrap().contains("QUANTUM"), "{v}");
    }
    ok(&kms, "DescribeKey", json!({"KeyId": good})).await;
}

#[tokio::test]
async fn errors_without_a_message_omit_it() {
    let kms = kms();
    let sign_key = create(
        &kms,
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await;
    let (_, v) = call(
        &kms,
        "Verify",
        json!({"KeyId": sign_key, "Message": "eA==", "Signature": b64(&[0x30, 0x06, 2, 1, 1, 2, 1, 1]), "SigningAlgorithm": "ECDSA_SHA_256"}),
    )
    .await;
    assert_eq!(v, json!({"__type": "KMSInvalidSignatureException"}));
    let mac_key = create(
        &kms,
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await;
    let (_, v) = call(
        &kms,
        "VerifyMac",
        json!({"KeyId": mac_key, "Message": "eA==", "Mac": b64(&[0; 32]), "MacAlgorithm": "HMAC_SHA_256"}),
    )
    .await;
    assert_eq!(v, json!({"__type": "KMSInvalidMacException"}));
    let key = create(&kms, json!({})).await;
    let blob = ok(
        &kms,
        "Encrypt",
        json!({"KeyId": key, "Plaintext": "eA==", "EncryptionContext": {"a": "b"}}),
    )
    .await["CiphertextBlob"]
        .clone();
    let (_, v) = call(
        &kms,
        "Decrypt",
        json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "c"}}),
    )
    .await;
    assert_eq!(v, json!({"__type": "InvalidCiphertextException"}));
    // DeriveSharedSecret with a public key that is none.
    let agree = create(
        &kms,
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}),
    )
    .await;
    let (status, v) = call(
        &kms,
        "DeriveSharedSecret",
        json!({"KeyId": agree, "KeyAgreementAlgorithm": "ECDH", "PublicKey": "AAAA"}),
    )
    .await;
    assert_eq!((status, v), (400, json!({"__type": "ValidationException"})));
}

/// Decrypt and ReEncrypt check that the KeyId names the ciphertext's key
/// before anything about that key.
#[tokio::test]
async fn a_key_id_that_is_not_the_ciphertexts_key_is_incorrect_key() {
    let kms = kms();
    let key = create(&kms, json!({})).await;
    let hmac = create(
        &kms,
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await;
    let other = create(&kms, json!({})).await;
    let blob = ok(&kms, "Encrypt", json!({"KeyId": key, "Plaintext": "eA=="})).await
        ["CiphertextBlob"]
        .clone();
    let incorrect = json!({
        "__type": "IncorrectKeyException",
        "message": "The key ID in the request does not identify a CMK that can perform this operation.",
    });
    for wrong in [&hmac, &other] {
        let (_, v) = call(
            &kms,
            "Decrypt",
            json!({"CiphertextBlob": blob, "KeyId": wrong}),
        )
        .await;
        assert_eq!(v, incorrect, "Decrypt with {wrong}");
        let (_, v) = call(
            &kms,
            "ReEncrypt",
            json!({"CiphertextBlob": blob, "SourceKeyId": wrong, "DestinationKeyId": other}),
        )
        .await;
        assert_eq!(v, incorrect, "ReEncrypt from {wrong}");
    }
}

#[tokio::test]
async fn alias_names_are_validated_as_aws_does() {
    let kms = kms();
    let key = create(&kms, json!({})).await;
    let (_, v) = call(
        &kms,
        "CreateAlias",
        json!({"AliasName": "orders", "TargetKeyId": key}),
    )
    .await;
    assert_eq!(v["__type"], "ValidationException");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("Alias must start with the prefix \"alias/\"."));
    let (_, v) = call(&kms, "DeleteAlias", json!({"AliasName": "orders"})).await;
    assert_eq!(v["__type"], "ValidationException");
    let (_, v) = call(
        &kms,
        "CreateAlias",
        json!({"AliasName": "alias/a:b", "TargetKeyId": key}),
    )
    .await;
    assert_eq!(
        v,
        json!({"__type": "ValidationException", "message": "alias/a:b contains invalid characters for an alias"})
    );
    let (_, v) = call(
        &kms,
        "CreateAlias",
        json!({"AliasName": "alias/aws/x", "TargetKeyId": key}),
    )
    .await;
    assert_eq!(v["__type"], "InvalidAliasNameException");
}

/// Operations documented with "the key ID or key ARN" refuse alias names
/// and alias ARNs; the others take all four forms.
#[tokio::test]
async fn key_id_or_key_arn_operations_refuse_aliases() {
    let kms = kms();
    let key = create(&kms, json!({})).await;
    ok(
        &kms,
        "CreateAlias",
        json!({"AliasName": "alias/k", "TargetKeyId": key}),
    )
    .await;
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/k");
    for (op, extra) in [
        ("EnableKey", json!({})),
        ("DisableKey", json!({})),
        ("GetKeyPolicy", json!({})),
        ("PutKeyPolicy", json!({"Policy": "{\"Statement\":[{}]}"})),
        ("TagResource", json!({"Tags": []})),
        ("UntagResource", json!({"TagKeys": []})),
        ("ListResourceTags", json!({})),
        ("UpdateKeyDescription", json!({"Description": "d"})),
        ("ScheduleKeyDeletion", json!({})),
        ("CancelKeyDeletion", json!({})),
        ("GetKeyRotationStatus", json!({})),
        ("ListKeyPolicies", json!({})),
    ] {
        for reference in ["alias/k", alias_arn.as_str()] {
            let mut body = extra.clone();
            body["KeyId"] = json!(reference);
            let (_, v) = call(&kms, op, body).await;
            assert_eq!(v["__type"], "NotFoundException", "{op} {reference}: {v}");
        }
    }
    for reference in ["alias/k", alias_arn.as_str()] {
        ok(&kms, "DescribeKey", json!({"KeyId": reference})).await;
        ok(
            &kms,
            "Encrypt",
            json!({"KeyId": reference, "Plaintext": "eA=="}),
        )
        .await;
    }
    ok(&kms, "EnableKey", json!({"KeyId": key})).await;
}

#[tokio::test]
async fn policies_and_tags_are_checked_as_aws_does() {
    let kms = kms();
    let (_, v) = call(&kms, "CreateKey", json!({"Policy": "not json"})).await;
    assert_eq!(v["__type"], "MalformedPolicyDocumentException");
    let tags: Vec<Value> = (0..51)
        .map(|i| json!({"TagKey": format!("k{i}"), "TagValue": "v"}))
        .collect();
    let (_, v) = call(&kms, "CreateKey", json!({"Tags": tags})).await;
    assert_eq!(
        v,
        json!({"__type": "TagException", "message": "Too many tags"})
    );
    let dup = json!([{"TagKey": "a", "TagValue": "1"}, {"TagKey": "a", "TagValue": "2"}]);
    let (_, v) = call(&kms, "CreateKey", json!({"Tags": dup})).await;
    assert_eq!(
        v,
        json!({"__type": "TagException", "message": "Duplicate tag keys"})
    );
    let key = create(&kms, json!({})).await;
    let (_, v) = call(&kms, "TagResource", json!({"KeyId": key, "Tags": dup})).await;
    assert_eq!(
        v,
        json!({"__type": "TagException", "message": "Duplicate tag keys"})
    );
    let reserved =
        json!({"__type": "TagException", "message": "Tags beginning with aws: are reserved"});
    for k in ["aws:x", "AWS:x", "Aws:x"] {
        let t = json!([{"TagKey": k, "TagValue": "v"}]);
        let (_, v) = call(&kms, "CreateKey", json!({"Tags": t})).await;
        assert_eq!(v, reserved, "CreateKey {k}");
        let (_, v) = call(&kms, "TagResource", json!({"KeyId": key, "Tags": t})).await;
        assert_eq!(v, reserved, "TagResource {k}");
    }
}

#[tokio::test]
async fn messages_are_awss() {
    let kms = kms();
    let key = create(&kms, json!({})).await;
    let id = key.rsplit('/').next().unwrap();
    let other_region = format!("arn:aws:kms:us-west-2:{ACCOUNT}:key/{id}");
    let (_, v) = call(&kms, "DescribeKey", json!({"KeyId": other_region})).await;
    assert_eq!(
        v,
        json!({"__type": "NotFoundException", "message": "Invalid arn us-west-2"})
    );
    let (_, v) = call(&kms, "GenerateRandom", json!({})).await;
    assert_eq!(
        v,
        json!({"__type": "ValidationException", "message": "NumberOfBytes is required."})
    );
    let (_, v) = call(&kms, "CreateKey", json!({"KeySpec": "ECC_NIST_P256"})).await;
    assert_eq!(
        v,
        json!({"__type": "ValidationException", "message": "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."})
    );
    let rsa = create(
        &kms,
        json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}),
    )
    .await;
    let (_, v) = call(
        &kms,
        "Encrypt",
        json!({"KeyId": rsa, "Plaintext": b64(&[1; 215]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}),
    )
    .await;
    assert_eq!(
        v,
        json!({"__type": "ValidationException", "message": "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes."})
    );
}
