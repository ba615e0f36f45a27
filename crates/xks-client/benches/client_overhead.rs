//! The client's own CPU work per call, without network: building, encoding
//! and signing a 32-byte Encrypt request, and validating its response.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::SystemTime;
use xks_client::request::{encode_body, prepare};
use xks_client::validate::{encrypt_response, RawResponse};
use xks_client::{encrypt_request, XksClientConfig};
use xks_wire::b64::encode;
use xks_wire::{cdiv_sha256, ExternalKeyId, Operation, RequestMetadata};

const AKID: &str = "ABCDEFGHIJKLMNOPQRST";
const SECRET: &str = "K6pTUf2vJrcNFWcL2rH0a6xSrcqGsX8Lzv2wXv1Qd4I=";

fn metadata() -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some("arn:aws:iam::111122223333:user/Alice".into()),
        kms_key_arn: Some(
            "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        ),
        kms_operation: Some("Encrypt".into()),
        kms_request_id: Some("4112f4d6-db54-4af4-ae30-c55a22a8dfae".into()),
        kms_via_service: Some("ebs".into()),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let config = XksClientConfig::new(
        "https://xks.example.com",
        "/kms/xks/v1",
        "us-east-2",
        AKID,
        SECRET,
        Vec::new(),
    )
    .validate()
    .expect("valid config");
    let credential = sigv4::Credential::new(AKID, SECRET);
    let key: ExternalKeyId = "key-1".parse().expect("valid key id");
    let plaintext = [0x42u8; 32];
    let aad = b"project=nile,department=marketing";
    let md = metadata();

    c.bench_function("encrypt_request_build_encode_sign_32B", |b| {
        b.iter(|| {
            let request = encrypt_request(md.clone(), black_box(&plaintext), Some(aad), true);
            let body = encode_body(&request).expect("encodes");
            let prepared = prepare(
                &config,
                &credential,
                Operation::Encrypt,
                Some(&key),
                body,
                SystemTime::now(),
            )
            .expect("signs");
            black_box(prepared)
        })
    });

    let request = encrypt_request(md.clone(), &plaintext, Some(aad), true);
    let valid = request.validate().expect("valid request");
    let (ct, iv, tag, meta) = ([1u8; 32], [2u8; 12], [3u8; 16], b"kv=1");
    let body = serde_json::json!({
        "ciphertext": encode(&ct),
        "ciphertextMetadata": encode(meta),
        "initializationVector": encode(&iv),
        "authenticationTag": encode(&tag),
        "ciphertextDataIntegrityValue": encode(&cdiv_sha256(aad, meta, &iv, &ct, &tag)),
    })
    .to_string();
    c.bench_function("encrypt_response_validate_with_cdiv_32B", |b| {
        b.iter(|| {
            let resp = RawResponse {
                status: 200,
                content_type: Some("application/json"),
                body: black_box(body.as_bytes()),
            };
            black_box(encrypt_response(&valid, &resp).expect("valid response"))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
