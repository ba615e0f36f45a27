//! Response validation: one pure function per operation, applying the rules
//! KMS applies to a proxy's answers. No sockets, no clocks.

use crate::error::{Error, InvalidResponse, ProxyErrorName};
use serde_json::error::Category;
use xks_wire::error::sanitize_message;
use xks_wire::{
    cdiv_sha256, health_status, DecryptResponse, EncryptResponse, ErrorBody,
    GetKeyMetadataResponse, HealthResponse, ValidDecrypt, ValidEncrypt, IV_LENS,
    MAX_CIPHERTEXT_METADATA, MAX_EKM_FLEET_ENTRIES, MAX_KEY_USAGE_ENTRIES, TAG_LEN,
};

/// What the HTTP layer received: status, `Content-Type` and body.
#[derive(Debug, Clone, Copy)]
pub struct RawResponse<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// `application/json`, parameters (such as `charset`) allowed, case-insensitive.
pub fn is_json_content_type(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case(xks_wire::CONTENT_TYPE)
}

/// Turns a non-200 status into the proxy's error, or refuses the response.
///
/// Error bodies are parsed whatever their content type: a proxy that names a
/// spec error is believed. A 4xx/5xx without a valid error body (an HTML
/// page from a load balancer, say) is an invalid response.
pub fn check_status(resp: &RawResponse<'_>) -> Result<(), Error> {
    match resp.status {
        200 => Ok(()),
        400..=599 => match serde_json::from_slice::<ErrorBody>(resp.body) {
            Ok(body) if !body.error_name.is_empty() => Err(Error::Proxy {
                name: ProxyErrorName::parse(&body.error_name),
                status: resp.status,
                message: body.error_message.as_deref().map(sanitize_message),
            }),
            _ => Err(InvalidResponse::UnparseableErrorBody {
                status: resp.status,
            }
            .into()),
        },
        other => Err(InvalidResponse::UnexpectedStatus(other).into()),
    }
}

fn check_success(resp: &RawResponse<'_>) -> Result<(), Error> {
    check_status(resp)?;
    match resp.content_type {
        Some(ct) if is_json_content_type(ct) => Ok(()),
        other => Err(InvalidResponse::ContentType(
            other.map(|c| sanitize_message(c).chars().take(100).collect()),
        )
        .into()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| InvalidResponse::Json(e.to_string()).into())
}

/// Like [`parse`], but the message names only the error category and
/// position, so that no part of a (secret) body can reach a log.
fn parse_secret<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| {
        let category = match e.classify() {
            Category::Io => "I/O",
            Category::Syntax => "syntax",
            Category::Data => "missing or mistyped field",
            Category::Eof => "truncated JSON",
        };
        InvalidResponse::Json(format!(
            "{category} error at line {} column {}",
            e.line(),
            e.column()
        ))
        .into()
    })
}

/// GetHealthStatus: fleet size > 0, 1..=10 EKM entries with a known status.
pub fn health_response(resp: &RawResponse<'_>) -> Result<HealthResponse, Error> {
    check_success(resp)?;
    let h: HealthResponse = parse(resp.body)?;
    if h.xks_proxy_fleet_size == 0 {
        return Err(InvalidResponse::FleetSizeZero.into());
    }
    let n = h.ekm_fleet_details.len();
    if n == 0 || n > MAX_EKM_FLEET_ENTRIES {
        return Err(InvalidResponse::EkmFleetCount(n).into());
    }
    if let Some(bad) = h
        .ekm_fleet_details
        .iter()
        .find(|d| !health_status::ALL.contains(&d.health_status.as_str()))
    {
        return Err(InvalidResponse::HealthStatus(
            sanitize_message(&bad.health_status)
                .chars()
                .take(64)
                .collect(),
        )
        .into());
    }
    Ok(h)
}

/// GetKeyMetadata: at most 10 keyUsage entries. The values of keySpec,
/// keyUsage and keyStatus are returned as sent, for kms-core to judge
/// (it decides what makes an external key unusable).
pub fn key_metadata_response(resp: &RawResponse<'_>) -> Result<GetKeyMetadataResponse, Error> {
    check_success(resp)?;
    let m: GetKeyMetadataResponse = parse(resp.body)?;
    if m.key_usage.len() > MAX_KEY_USAGE_ENTRIES {
        return Err(InvalidResponse::KeyUsageCount(m.key_usage.len()).into());
    }
    Ok(m)
}

/// Encrypt: IV 12 or 16 bytes, tag 16 bytes, ciphertext as long as the
/// plaintext sent, metadata at most 20 bytes, and, when it was requested, a
/// CDIV equal to SHA-256(aad || metadata || iv || ciphertext || tag).
/// A CDIV that was not requested is ignored.
pub fn encrypt_response(
    request: &ValidEncrypt<'_>,
    resp: &RawResponse<'_>,
) -> Result<EncryptResponse, Error> {
    check_success(resp)?;
    let r: EncryptResponse = parse(resp.body)?;
    let iv = r.initialization_vector.0.len();
    if !IV_LENS.contains(&iv) {
        return Err(InvalidResponse::IvLength(iv).into());
    }
    let tag = r.authentication_tag.0.len();
    if tag != TAG_LEN {
        return Err(InvalidResponse::TagLength(tag).into());
    }
    if r.ciphertext.0.len() != request.plaintext.len() {
        return Err(InvalidResponse::CiphertextLength {
            expected: request.plaintext.len(),
            got: r.ciphertext.0.len(),
        }
        .into());
    }
    let metadata = r.ciphertext_metadata.as_ref().map_or(&[][..], |m| &m.0[..]);
    if metadata.len() > MAX_CIPHERTEXT_METADATA {
        return Err(InvalidResponse::MetadataTooLong(metadata.len()).into());
    }
    if request.want_cdiv {
        let got = r
            .ciphertext_data_integrity_value
            .as_ref()
            .ok_or(InvalidResponse::CdivMissing)?;
        let expected = cdiv_sha256(
            request.aad,
            metadata,
            &r.initialization_vector.0,
            &r.ciphertext.0,
            &r.authentication_tag.0,
        );
        if got.0[..] != expected[..] {
            return Err(InvalidResponse::CdivMismatch.into());
        }
    }
    Ok(r)
}

/// Decrypt: the plaintext is as long as the ciphertext sent.
pub fn decrypt_response(
    request: &ValidDecrypt<'_>,
    resp: &RawResponse<'_>,
) -> Result<DecryptResponse, Error> {
    check_success(resp)?;
    let r: DecryptResponse = parse_secret(resp.body)?;
    if r.plaintext.len() != request.ciphertext.len() {
        return Err(InvalidResponse::PlaintextLength {
            expected: request.ciphertext.len(),
            got: r.plaintext.len(),
        }
        .into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xks_wire::b64::encode;
    use xks_wire::{ErrorName, RequestMetadata};

    fn ok(body: &str) -> RawResponse<'_> {
        RawResponse {
            status: 200,
            content_type: Some("application/json"),
            body: body.as_bytes(),
        }
    }

    fn invalid(e: Error) -> InvalidResponse {
        match e {
            Error::InvalidResponse(r) => r,
            other => panic!("expected InvalidResponse, got {other:?}"),
        }
    }

    const HEALTH: &str = r#"{"xksProxyFleetSize":2,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"h1","model":"m","healthStatus":"ACTIVE"}]}"#;

    #[test]
    fn content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_content_type("text/json"));
        assert!(!is_json_content_type("application/jsonx"));
        assert!(!is_json_content_type(""));
        for ct in [None, Some("text/html"), Some("application/x-amz-json-1.1")] {
            let r = RawResponse {
                content_type: ct,
                ..ok(HEALTH)
            };
            assert!(matches!(
                invalid(health_response(&r).unwrap_err()),
                InvalidResponse::ContentType(_)
            ));
        }
    }

    #[test]
    fn health_rules() {
        let h = health_response(&ok(HEALTH)).unwrap();
        assert_eq!(h.xks_proxy_fleet_size, 2);
        let zero = HEALTH.replace("\"xksProxyFleetSize\":2", "\"xksProxyFleetSize\":0");
        assert_eq!(
            invalid(health_response(&ok(&zero)).unwrap_err()),
            InvalidResponse::FleetSizeZero
        );
        let entry = r#"{"id":"h","model":"m","healthStatus":"DEGRADED"}"#;
        let with = |n: usize| {
            let entries = vec![entry; n].join(",");
            format!(
                r#"{{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{entries}]}}"#
            )
        };
        assert!(health_response(&ok(&with(10))).is_ok());
        assert_eq!(
            invalid(health_response(&ok(&with(0))).unwrap_err()),
            InvalidResponse::EkmFleetCount(0)
        );
        assert_eq!(
            invalid(health_response(&ok(&with(11))).unwrap_err()),
            InvalidResponse::EkmFleetCount(11)
        );
        let bad = HEALTH.replace("ACTIVE", "HEALTHY");
        assert_eq!(
            invalid(health_response(&ok(&bad)).unwrap_err()),
            InvalidResponse::HealthStatus("HEALTHY".into())
        );
        let missing = HEALTH.replace("\"ekmVendor\":\"e\",", "");
        assert!(matches!(
            invalid(health_response(&ok(&missing)).unwrap_err()),
            InvalidResponse::Json(m) if m.contains("ekmVendor")
        ));
        assert!(matches!(
            invalid(health_response(&ok("not json")).unwrap_err()),
            InvalidResponse::Json(_)
        ));
        let negative = HEALTH.replace("\"xksProxyFleetSize\":2", "\"xksProxyFleetSize\":-1");
        assert!(health_response(&ok(&negative)).is_err());
    }

    #[test]
    fn key_metadata_rules() {
        let body = |n: usize| {
            let usages = vec!["\"ENCRYPT\""; n].join(",");
            format!(r#"{{"keySpec":"AES_256","keyUsage":[{usages}],"keyStatus":"ENABLED"}}"#)
        };
        let m = key_metadata_response(&ok(&body(2))).unwrap();
        assert_eq!(m.key_spec, "AES_256");
        assert!(key_metadata_response(&ok(&body(10))).is_ok());
        assert_eq!(
            invalid(key_metadata_response(&ok(&body(11))).unwrap_err()),
            InvalidResponse::KeyUsageCount(11)
        );
        assert!(key_metadata_response(&ok(r#"{"keySpec":"AES_256"}"#)).is_err());
    }

    fn md() -> RequestMetadata {
        RequestMetadata {
            aws_principal_arn: Some("arn:aws:iam::123456789012:user/Alice".into()),
            kms_key_arn: Some("arn:aws:kms:us-east-2:123456789012:key/1".into()),
            kms_operation: Some("Encrypt".into()),
            kms_request_id: Some("r-1".into()),
            ..Default::default()
        }
    }

    fn enc_body(
        ct: &[u8],
        meta: Option<&[u8]>,
        iv: &[u8],
        tag: &[u8],
        cdiv: Option<&[u8]>,
    ) -> String {
        let mut v = serde_json::json!({
            "ciphertext": encode(ct),
            "initializationVector": encode(iv),
            "authenticationTag": encode(tag),
        });
        if let Some(m) = meta {
            v["ciphertextMetadata"] = encode(m).into();
        }
        if let Some(c) = cdiv {
            v["ciphertextDataIntegrityValue"] = encode(c).into();
        }
        v.to_string()
    }

    #[test]
    fn encrypt_rules() {
        let m = md();
        let pt = [7u8; 32];
        let aad = b"context";
        let req = ValidEncrypt {
            metadata: &m,
            plaintext: &pt,
            aad,
            want_cdiv: true,
        };
        let (ct, iv, tag, meta) = ([1u8; 32], [2u8; 12], [3u8; 16], b"kv=1");
        let cdiv = cdiv_sha256(aad, meta, &iv, &ct, &tag);
        let good = enc_body(&ct, Some(meta), &iv, &tag, Some(&cdiv));
        let r = encrypt_response(&req, &ok(&good)).unwrap();
        assert_eq!(r.ciphertext.0, ct);

        // 16-byte IV is allowed too.
        let iv16 = [2u8; 16];
        let cdiv16 = cdiv_sha256(aad, b"", &iv16, &ct, &tag);
        assert!(
            encrypt_response(&req, &ok(&enc_body(&ct, None, &iv16, &tag, Some(&cdiv16)))).is_ok()
        );

        let cases: Vec<(String, InvalidResponse)> = vec![
            (
                enc_body(&ct, Some(meta), &[2u8; 8], &tag, Some(&cdiv)),
                InvalidResponse::IvLength(8),
            ),
            (
                enc_body(&ct, Some(meta), &iv, &[3u8; 12], Some(&cdiv)),
                InvalidResponse::TagLength(12),
            ),
            (
                enc_body(&ct[..31], Some(meta), &iv, &tag, Some(&cdiv)),
                InvalidResponse::CiphertextLength {
                    expected: 32,
                    got: 31,
                },
            ),
            (
                enc_body(&ct, Some(&[0u8; 21]), &iv, &tag, Some(&cdiv)),
                InvalidResponse::MetadataTooLong(21),
            ),
            (
                enc_body(&ct, Some(meta), &iv, &tag, None),
                InvalidResponse::CdivMissing,
            ),
            (
                enc_body(&ct, Some(meta), &iv, &tag, Some(&[0u8; 32])),
                InvalidResponse::CdivMismatch,
            ),
            // CDIV computed without the metadata: mismatch.
            (
                enc_body(
                    &ct,
                    Some(meta),
                    &iv,
                    &tag,
                    Some(&cdiv_sha256(aad, b"", &iv, &ct, &tag)),
                ),
                InvalidResponse::CdivMismatch,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                invalid(encrypt_response(&req, &ok(&body)).unwrap_err()),
                want
            );
        }
        // 20 bytes of metadata is the limit.
        let meta20 = [9u8; 20];
        let c20 = cdiv_sha256(aad, &meta20, &iv, &ct, &tag);
        assert!(encrypt_response(
            &req,
            &ok(&enc_body(&ct, Some(&meta20), &iv, &tag, Some(&c20)))
        )
        .is_ok());
        // Not requested: a CDIV is not required, and a wrong one is ignored.
        let no_cdiv = ValidEncrypt {
            want_cdiv: false,
            ..req
        };
        assert!(encrypt_response(&no_cdiv, &ok(&enc_body(&ct, None, &iv, &tag, None))).is_ok());
        assert!(encrypt_response(
            &no_cdiv,
            &ok(&enc_body(&ct, None, &iv, &tag, Some(&[0; 32])))
        )
        .is_ok());
        // URL-safe Base64 is not Base64.
        let urlsafe = good.replace(&encode(&ct), "-_-_");
        assert!(matches!(
            invalid(encrypt_response(&req, &ok(&urlsafe)).unwrap_err()),
            InvalidResponse::Json(_)
        ));
    }

    #[test]
    fn decrypt_rules() {
        let m = md();
        let ct = [1u8; 5];
        let req = ValidDecrypt {
            metadata: &m,
            ciphertext: &ct,
            ciphertext_metadata: None,
            iv: &[0; 12],
            tag: &[0; 16],
            aad: b"",
        };
        let body = format!(r#"{{"plaintext":"{}"}}"#, encode(b"hello"));
        assert_eq!(
            decrypt_response(&req, &ok(&body))
                .unwrap()
                .plaintext
                .as_ref(),
            b"hello"
        );
        let short = format!(r#"{{"plaintext":"{}"}}"#, encode(b"hell"));
        assert_eq!(
            invalid(decrypt_response(&req, &ok(&short)).unwrap_err()),
            InvalidResponse::PlaintextLength {
                expected: 5,
                got: 4
            }
        );
        // Parse errors never echo the body.
        let secret = r#"{"plaintext": 12345678, "x": "TOPSECRET"}"#;
        let e = invalid(decrypt_response(&req, &ok(secret)).unwrap_err());
        assert!(!format!("{e}").contains("12345678"));
        let e = invalid(decrypt_response(&req, &ok("{\"plaintext\":\"TOPSECRET!\"}")).unwrap_err());
        assert!(!format!("{e}").contains("TOPSECRET"));
    }

    #[test]
    fn error_bodies() {
        for name in ErrorName::ALL {
            let body = format!(r#"{{"errorName":"{name}","errorMessage":"why\u0007"}}"#);
            let resp = RawResponse {
                status: name.status(),
                content_type: Some("application/json"),
                body: body.as_bytes(),
            };
            match health_response(&resp).unwrap_err() {
                Error::Proxy {
                    name: n,
                    status,
                    message,
                } => {
                    assert_eq!(n, ProxyErrorName::Known(name));
                    assert_eq!(status, name.status());
                    assert_eq!(message.as_deref(), Some("why?"));
                }
                other => panic!("{other:?}"),
            }
        }
        let unknown = RawResponse {
            status: 418,
            content_type: None,
            body: br#"{"errorName":"TeapotException"}"#,
        };
        assert_eq!(
            check_status(&unknown).unwrap_err(),
            Error::Proxy {
                name: ProxyErrorName::Unknown("TeapotException".into()),
                status: 418,
                message: None
            }
        );
        let html = RawResponse {
            status: 502,
            content_type: Some("text/html"),
            body: b"<html>bad gateway</html>",
        };
        assert_eq!(
            invalid(check_status(&html).unwrap_err()),
            InvalidResponse::UnparseableErrorBody { status: 502 }
        );
        let empty_name = RawResponse {
            body: br#"{"errorName":""}"#,
            ..html
        };
        assert!(matches!(
            check_status(&empty_name),
            Err(Error::InvalidResponse(_))
        ));
        for status in [201, 204, 301, 302, 100] {
            let r = RawResponse {
                status,
                ..ok(HEALTH)
            };
            assert_eq!(
                invalid(check_status(&r).unwrap_err()),
                InvalidResponse::UnexpectedStatus(status)
            );
        }
    }
}
