//! Fuzz body: kms-core's whole request path (`Kms::handle`: X-Amz-Target,
//! authentication in development mode, JSON, model validation, dispatch)
//! over an in-memory store. Input: first line the operation name (e.g.
//! `CreateKey`), the rest the JSON body. Every reply is a well-formed AWS
//! JSON 1.1 answer; bad input is never a 500.

use std::sync::{Arc, OnceLock};

struct Fixture {
    rt: tokio::runtime::Runtime,
    kms: kms_core::service::Kms,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        kms: kms_core::service::Kms::new(
            kms_core::auth::AuthMode::Development,
            Arc::new(kms_core::store::MemoryStore::in_memory()),
        )
        .expect("model"),
    })
}

pub fn run(data: &[u8]) {
    let f = fixture();
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let op = String::from_utf8_lossy(&data[..split]);
    // Connecting a custom key store opens connections to the endpoint the
    // input names: never from a fuzzer.
    if op.contains("ConnectCustomKeyStore") || op.contains("UpdateCustomKeyStore") {
        return;
    }
    let body = data.get(split + 1..).unwrap_or(&[]);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("TrentService.{op}")) {
        headers.insert("x-amz-target", v);
    }
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
    let req = sigv4::RequestParts {
        method: "POST",
        path: "/",
        query: None,
        headers: &headers,
        authority: None,
        body,
    };
    let reply = f.rt.block_on(f.kms.handle(&req));
    assert!(
        reply.status == 200 || (400..500).contains(&reply.status),
        "status {} for {op}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("reply is JSON");
    if reply.status != 200 {
        assert!(json.get("__type").is_some(), "error without __type");
        // Error messages stay small whatever was sent.
        assert!(
            reply.body.len() <= 4096 + body.len().min(4096) * 2,
            "error body {} bytes",
            reply.body.len()
        );
    }
}
