//! Building and signing requests (pure: the caller passes the time).

use crate::config::ValidConfig;
use crate::error::Error;
use serde::Serialize;
use std::time::SystemTime;
use xks_wire::{
    Bytes64, DecryptRequest, EncryptRequest, ExternalKeyId, Operation, RequestMetadata,
    SecretBytes64, AES_GCM, SHA_256, SIGV4_SERVICE,
};
use zeroize::Zeroizing;

/// A request ready for the wire: path, JSON body and SigV4 headers.
/// The body may hold a Base64 plaintext: it is zeroized on drop.
pub struct PreparedRequest {
    /// Absolute path, `{uri_path}/health` or `{uri_path}/keys/{id}/{op}`.
    pub path: String,
    pub body: Zeroizing<Vec<u8>>,
    /// `Authorization` header value (signed over `host;x-amz-date`).
    pub authorization: String,
    /// `X-Amz-Date` header value.
    pub amz_date: String,
}

impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRequest")
            .field("path", &self.path)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("amz_date", &self.amz_date)
            .finish_non_exhaustive()
    }
}

/// Serializes a request body to JSON.
pub fn encode_body<T: Serialize>(body: &T) -> Result<Zeroizing<Vec<u8>>, Error> {
    serde_json::to_vec(body)
        .map(Zeroizing::new)
        .map_err(|e| Error::InvalidRequest(format!("cannot encode the request: {e}")))
}

/// Builds the path of `op` and signs `body` for it: SigV4, service
/// `kms-xks-proxy`, the configured region, signed headers `host;x-amz-date`.
pub fn prepare(
    config: &ValidConfig,
    credential: &sigv4::Credential,
    op: Operation,
    key: Option<&ExternalKeyId>,
    body: Zeroizing<Vec<u8>>,
    now: SystemTime,
) -> Result<PreparedRequest, Error> {
    if op != Operation::GetHealthStatus && key.is_none() {
        return Err(Error::InvalidRequest(format!(
            "{op} needs an externalKeyId"
        )));
    }
    let path = op.path(config.uri_path.as_str(), key);
    let signed = sigv4::sign(
        "POST",
        &config.authority,
        &path,
        &[],
        &body,
        credential,
        &config.region,
        SIGV4_SERVICE,
        now,
    )
    .map_err(|e| Error::InvalidRequest(format!("cannot sign the request: {e}")))?;
    Ok(PreparedRequest {
        path,
        body,
        authorization: signed.authorization,
        amz_date: signed.amz_date,
    })
}

/// An Encrypt request as KMS builds it: AES_GCM, with the AAD when there is
/// one and `ciphertextDataIntegrityValueAlgorithm: SHA_256` when asked.
pub fn encrypt_request(
    metadata: RequestMetadata,
    plaintext: &[u8],
    aad: Option<&[u8]>,
    want_cdiv: bool,
) -> EncryptRequest {
    EncryptRequest {
        request_metadata: Some(metadata),
        additional_authenticated_data: aad.map(|a| Bytes64(a.to_vec())),
        plaintext: Some(SecretBytes64::new(plaintext.to_vec())),
        encryption_algorithm: Some(AES_GCM.to_owned()),
        ciphertext_data_integrity_value_algorithm: want_cdiv.then(|| SHA_256.to_owned()),
    }
}

/// A Decrypt request for the fields an Encrypt response returned.
pub fn decrypt_request(
    metadata: RequestMetadata,
    ciphertext: &[u8],
    ciphertext_metadata: Option<&[u8]>,
    iv: &[u8],
    tag: &[u8],
    aad: Option<&[u8]>,
) -> DecryptRequest {
    DecryptRequest {
        request_metadata: Some(metadata),
        additional_authenticated_data: aad.map(|a| Bytes64(a.to_vec())),
        encryption_algorithm: Some(AES_GCM.to_owned()),
        ciphertext: Some(Bytes64(ciphertext.to_vec())),
        ciphertext_metadata: ciphertext_metadata.map(|m| Bytes64(m.to_vec())),
        initialization_vector: Some(Bytes64(iv.to_vec())),
        authentication_tag: Some(Bytes64(tag.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::XksClientConfig;
    use http::HeaderMap;
    use std::time::{Duration, UNIX_EPOCH};

    const AKID: &str = "ABCDEFGHIJKLMNOPQRST";
    const SECRET: &str = "K6pTUf2vJrcNFWcL2rH0a6xSrcqGsX8Lzv2wXv1Qd4I=";

    #[test]
    fn signed_requests_verify() {
        let cfg = XksClientConfig::new(
            "https://xks.example.com:8443",
            "/ks1/kms/xks/v1",
            "eu-west-1",
            AKID,
            SECRET,
            Vec::new(),
        )
        .validate()
        .unwrap();
        let cred = sigv4::Credential::new(AKID, SECRET);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let key: ExternalKeyId = "key-1".parse().unwrap();
        let body = encode_body(&encrypt_request(
            RequestMetadata::default(),
            b"0123456789abcdef0123456789abcdef",
            Some(b"aad"),
            true,
        ))
        .unwrap();
        let p = prepare(&cfg, &cred, Operation::Encrypt, Some(&key), body, now).unwrap();
        assert_eq!(p.path, "/ks1/kms/xks/v1/keys/key-1/encrypt");
        assert!(p.authorization.contains(
            "Credential=ABCDEFGHIJKLMNOPQRST/20231114/eu-west-1/kms-xks-proxy/aws4_request, SignedHeaders=host;x-amz-date, Signature="
        ));
        assert_eq!(p.amz_date, "20231114T221320Z");
        assert!(!format!("{p:?}").contains("MDEy")); // no Base64 plaintext in Debug

        let mut headers = HeaderMap::new();
        headers.insert("host", "xks.example.com:8443".parse().unwrap());
        headers.insert("x-amz-date", p.amz_date.parse().unwrap());
        headers.insert("authorization", p.authorization.parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let parts = sigv4::RequestParts {
            method: "POST",
            path: &p.path,
            query: None,
            headers: &headers,
            authority: None,
            body: &p.body,
        };
        let verified = sigv4::verify(
            &parts,
            now,
            "kms-xks-proxy",
            sigv4::DEFAULT_MAX_SKEW,
            |r| r == "eu-west-1",
            |id| (id == AKID).then_some(&cred),
        )
        .unwrap();
        assert_eq!(verified.access_key_id, AKID);

        // A body changed after signing does not verify.
        let tampered = sigv4::RequestParts {
            body: b"{}",
            ..parts
        };
        assert!(sigv4::verify(
            &tampered,
            now,
            "kms-xks-proxy",
            sigv4::DEFAULT_MAX_SKEW,
            |_| true,
            |_| Some(&cred),
        )
        .is_err());

        // Health has no key; key operations need one.
        let h = prepare(
            &cfg,
            &cred,
            Operation::GetHealthStatus,
            None,
            Zeroizing::new(b"{}".to_vec()),
            now,
        )
        .unwrap();
        assert_eq!(h.path, "/ks1/kms/xks/v1/health");
        assert!(prepare(
            &cfg,
            &cred,
            Operation::Decrypt,
            None,
            Zeroizing::new(Vec::new()),
            now
        )
        .is_err());
    }

    #[test]
    fn request_builders_validate() {
        let md = RequestMetadata {
            aws_principal_arn: Some("arn:aws:iam::123456789012:user/Alice".into()),
            kms_key_arn: Some("arn:aws:kms:us-east-2:123456789012:key/1".into()),
            kms_operation: Some("Encrypt".into()),
            kms_request_id: Some("r-1".into()),
            ..Default::default()
        };
        let e = encrypt_request(md.clone(), b"pt", None, false);
        let v = e.validate().unwrap();
        assert!(!v.want_cdiv);
        assert_eq!(v.plaintext, b"pt");
        let json = String::from_utf8(encode_body(&e).unwrap().to_vec()).unwrap();
        assert!(!json.contains("ciphertextDataIntegrityValueAlgorithm"));
        assert!(!json.contains("additionalAuthenticatedData"));
        let d = decrypt_request(md, b"ct", Some(b"m"), &[0; 12], &[0; 16], Some(b"a"));
        let v = d.validate().unwrap();
        assert_eq!(v.ciphertext_metadata, Some(&b"m"[..]));
        assert_eq!(v.aad, b"a");
    }
}
