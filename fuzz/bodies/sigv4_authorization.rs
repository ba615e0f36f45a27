//! Fuzz body: the SigV4 Authorization header parser, and verification (date
//! parsing, scope checks, canonical request) over arbitrary request parts.
//! Input: lines `authorization`, `x-amz-date`, `path`, `query`, then body.

use std::time::{Duration, UNIX_EPOCH};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let auth = parts.next().unwrap_or("");
    let date = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/");
    let query = parts.next().filter(|q| !q.is_empty());
    let body = parts.next().unwrap_or("");
    if let Ok(a) = sigv4::parse_authorization(auth) {
        // What was parsed is a part of the header.
        assert!(auth.contains(a.access_key_id));
        assert!(auth.contains(a.region));
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(auth) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(date) {
        headers.insert("x-amz-date", v);
    }
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("localhost"),
    );
    let req = sigv4::RequestParts {
        method: "POST",
        path,
        query,
        headers: &headers,
        authority: None,
        body: body.as_bytes(),
    };
    let cred = sigv4::Credential::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let now =
        sigv4::parse_amz_date(date).unwrap_or(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let _ = sigv4::verify(
        &req,
        now,
        "kms",
        sigv4::DEFAULT_MAX_SKEW,
        |_| true,
        |ak| (ak == "AKIDEXAMPLE").then_some(&cred),
    );
}
