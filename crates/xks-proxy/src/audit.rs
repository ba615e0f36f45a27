//! The proxy's audit record: one JSON line per request (the sink is the
//! shared `audit-sink` crate). Documented field by field in
//! docs/operations.md; never plaintext, AAD, ciphertext, key material,
//! signatures or secrets.

use crate::service::RequestLog;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Version of the record format below.
pub const RECORD_VERSION: &str = "1.0";

/// KMS's requestMetadata as the request carried it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditMetadata<'a> {
    pub kms_request_id: Option<&'a str>,
    pub kms_operation: Option<&'a str>,
    pub aws_principal_arn: Option<&'a str>,
    pub kms_key_arn: Option<&'a str>,
    pub kms_via_service: Option<&'a str>,
    pub aws_source_vpc: Option<&'a str>,
    pub aws_source_vpce: Option<&'a str>,
}

/// One request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord<'a> {
    pub record_version: &'static str,
    /// UTC, `2025-01-31T23:59:59Z`.
    pub event_time: String,
    /// The proxy's own id of this request (also on every log line).
    pub request_id: &'a str,
    pub source_ip_address: String,
    pub http_method: &'a str,
    pub uri_path: &'a str,
    /// Configured key store name, when the path matched one.
    pub key_store: Option<&'a str>,
    /// XKS operation: GetHealthStatus, GetKeyMetadata, Encrypt, Decrypt.
    pub operation: Option<&'static str>,
    /// SigV4 access key id that signed the request (never the secret).
    pub access_key_id: Option<&'a str>,
    pub external_key_id: Option<&'a str>,
    pub request_metadata: AuditMetadata<'a>,
    /// `success` or `failure`.
    pub outcome: &'static str,
    pub http_status: u16,
    pub error_name: Option<&'static str>,
    /// Why, for operators (authorization rule, signature problem...).
    pub error_detail: Option<&'a str>,
    pub latency_micros: u64,
}

/// What the HTTP shell knows of a request besides the core's log.
pub struct RequestFacts<'a> {
    pub request_id: &'a str,
    pub peer: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency: Duration,
}

impl<'a> AuditRecord<'a> {
    pub fn new(facts: &RequestFacts<'a>, log: &'a RequestLog) -> Self {
        AuditRecord {
            record_version: RECORD_VERSION,
            event_time: audit_sink::event_time(SystemTime::now()),
            request_id: facts.request_id,
            source_ip_address: facts.peer.ip().to_string(),
            http_method: facts.method,
            uri_path: facts.path,
            key_store: log.key_store.as_ref().map(|k| k.name.as_str()),
            operation: log.operation.map(|o| o.as_str()),
            access_key_id: log.access_key_id.as_deref(),
            external_key_id: log.key_id.as_deref(),
            request_metadata: AuditMetadata {
                kms_request_id: log.kms_request_id.as_deref(),
                kms_operation: log.kms_operation.as_deref(),
                aws_principal_arn: log.principal.as_deref(),
                kms_key_arn: log.kms_key_arn.as_deref(),
                kms_via_service: log.kms_via_service.as_deref(),
                aws_source_vpc: log.source_vpc.as_deref(),
                aws_source_vpce: log.source_vpce.as_deref(),
            },
            outcome: if facts.status == 200 {
                "success"
            } else {
                "failure"
            },
            http_status: facts.status,
            error_name: log.error.map(|e| e.as_str()),
            error_detail: log.detail.as_deref(),
            latency_micros: u64::try_from(facts.latency.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// A random request id in UUID v4 form.
pub fn new_request_id() -> String {
    let mut b = [0u8; 16];
    if SystemRandom::new().fill(&mut b).is_err() {
        // Never expected; an id need not be secret, only unique enough.
        let n = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = n.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
    }

    #[test]
    fn record_of_an_unrouted_request() {
        let log = RequestLog::default();
        let facts = RequestFacts {
            request_id: "r1",
            peer: "127.0.0.1:5".parse().unwrap(),
            method: "POST",
            path: "/nope",
            status: 404,
            latency: Duration::from_micros(12),
        };
        let v = serde_json::to_value(AuditRecord::new(&facts, &log)).unwrap();
        assert_eq!(v["outcome"], "failure");
        assert_eq!(v["sourceIpAddress"], "127.0.0.1");
        assert_eq!(v["latencyMicros"], 12);
        assert!(v["requestMetadata"]["kmsRequestId"].is_null());
    }
}
