//! Fuzz body: the KMS side of the XKS wire, xks-client's response checks
//! (status, content type, JSON, field lengths, CDIV) for every operation.
//! Input: first byte selects the status, the rest is the body.

use xks_client::validate::{
    decrypt_response, encrypt_response, health_response, key_metadata_response,
};
use xks_client::RawResponse;
use xks_wire::messages::{DecryptRequest, EncryptRequest};

const STATUSES: [u16; 8] = [200, 200, 200, 400, 401, 404, 500, 503];

pub fn run(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let resp = RawResponse {
        status: STATUSES[(first % 8) as usize],
        content_type: Some(if first & 0x80 == 0 {
            "application/json"
        } else {
            "text/plain"
        }),
        body,
    };
    let _ = health_response(&resp);
    let _ = key_metadata_response(&resp);
    let enc: EncryptRequest = serde_json::from_str(ENCRYPT).expect("encrypt request");
    let valid = enc.validate().expect("valid encrypt");
    let _ = encrypt_response(&valid, &resp);
    let dec: DecryptRequest = serde_json::from_str(DECRYPT).expect("decrypt request");
    let valid = dec.validate().expect("valid decrypt");
    let _ = decrypt_response(&valid, &resp);
}

const ENCRYPT: &str = concat!(
    "{",
    r#""requestMetadata":{"awsPrincipalArn":"arn:aws:iam::111122223333:user/Alice","kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","kmsOperation":"Encrypt","kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae","kmsViaService":"ebs"}"#,
    r#","plaintext":"SGVsbG8gV29ybGQh","encryptionAlgorithm":"AES_GCM","additionalAuthenticatedData":"cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n","ciphertextDataIntegrityValueAlgorithm":"SHA_256"}"#
);
const DECRYPT: &str = concat!(
    "{",
    r#""requestMetadata":{"awsPrincipalArn":"arn:aws:iam::111122223333:user/Alice","kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","kmsOperation":"Decrypt","kmsRequestId":"5112f4d6-db54-4af4-ae30-c55a22a8dfae"}"#,
    r#","encryptionAlgorithm":"AES_GCM","ciphertext":"bGlxdWlkIGRpbmVy","initializationVector":"HbmHUVO7IpCk4Zso","authenticationTag":"vl/yZ4n4tuSsiGAG8Hcevw=="}"#
);
