use super::*;
use http::{HeaderMap, HeaderValue};

const AK: &str = "AKIDEXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn at(s: &str) -> SystemTime {
    parse_amz_date(s).unwrap()
}

fn run(
    h: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    cred: &Credential,
    service: &str,
) -> Result<Verified, VerifyError> {
    let req = RequestParts {
        method: "POST",
        path: "/kms/xks/v1/keys/k/encrypt",
        query: None,
        headers: h,
        authority: None,
        body,
    };
    verify(
        &req,
        now,
        service,
        DEFAULT_MAX_SKEW,
        |r| r == "us-east-1",
        |ak| (ak == cred.access_key_id()).then_some(cred),
    )
}

/// `get-vanilla` from AWS's published SigV4 test suite: an independent
/// vector, not produced by the signer under test.
#[test]
fn aws_test_suite_get_vanilla() {
    let h = headers(&[
        ("host", "example.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    ]);
    let cred = Credential::new(AK, SK);
    let req = RequestParts {
        method: "GET",
        path: "/",
        query: None,
        headers: &h,
        authority: None,
        body: b"",
    };
    let ok = verify(
        &req,
        at("20150830T123600Z"),
        "service",
        DEFAULT_MAX_SKEW,
        |_| true,
        |_| Some(&cred),
    )
    .unwrap();
    assert_eq!(ok.region, "us-east-1");
    assert_eq!(ok.access_key_id, AK);
}

fn signed(body: &[u8], extra: &[(&str, &str)], time: &str, cred: &Credential) -> HeaderMap {
    let s = sign(
        "POST",
        "xks.example.com",
        "/kms/xks/v1/keys/k/encrypt",
        extra,
        body,
        cred,
        "us-east-1",
        "kms-xks-proxy",
        at(time),
    )
    .unwrap();
    let mut pairs = vec![
        ("host", "xks.example.com"),
        ("x-amz-date", s.amz_date.as_str()),
        ("authorization", s.authorization.as_str()),
    ];
    pairs.extend_from_slice(extra);
    headers(&pairs)
}

#[test]
fn sign_then_verify_both_signed_header_sets() {
    let cred = Credential::new(AK, SK);
    let t = "20240101T000000Z";
    for extra in [&[][..], &[("content-type", "application/json")][..]] {
        let h = signed(b"{}", extra, t, &cred);
        let v = run(&h, b"{}", at(t), &cred, "kms-xks-proxy").unwrap();
        assert_eq!(v.signed_at, at(t));
    }
}

#[test]
fn every_tampering_fails() {
    let cred = Credential::new(AK, SK);
    let t = "20240101T000000Z";
    let now = at(t);
    let h = signed(b"{}", &[("content-type", "application/json")], t, &cred);

    // Body changed after signing.
    assert_eq!(
        run(&h, b"{ }", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::SignatureMismatch)
    );
    // Signed header altered.
    let mut h2 = h.clone();
    h2.insert("content-type", HeaderValue::from_static("text/plain"));
    assert_eq!(
        run(&h2, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::SignatureMismatch)
    );
    // Signed header removed.
    let mut h3 = h.clone();
    h3.remove("content-type");
    assert!(matches!(
        run(&h3, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::SignedHeaderAbsent(_))
    ));
    // Wrong secret.
    let other = Credential::new(AK, "another-secret-another-secret-another-secret");
    assert_eq!(
        run(&h, b"{}", now, &other, "kms-xks-proxy"),
        Err(VerifyError::SignatureMismatch)
    );
    // Unknown access key.
    let stranger = Credential::new("AKIDOTHER", SK);
    assert_eq!(
        run(&h, b"{}", now, &stranger, "kms-xks-proxy"),
        Err(VerifyError::UnknownAccessKey)
    );
    // Wrong service.
    assert!(matches!(
        run(&h, b"{}", now, &cred, "kms"),
        Err(VerifyError::WrongService(_))
    ));
    // Skew both ways, and the edges.
    let five = Duration::from_secs(300);
    assert!(run(&h, b"{}", now + five, &cred, "kms-xks-proxy").is_ok());
    assert!(run(&h, b"{}", now - five, &cred, "kms-xks-proxy").is_ok());
    let late = now + five + Duration::from_secs(1);
    let early = now - five - Duration::from_secs(1);
    assert_eq!(
        run(&h, b"{}", late, &cred, "kms-xks-proxy"),
        Err(VerifyError::Skew(301))
    );
    assert_eq!(
        run(&h, b"{}", early, &cred, "kms-xks-proxy"),
        Err(VerifyError::Skew(301))
    );
}

#[test]
fn scope_rules() {
    let cred = Credential::new(AK, SK);
    let t = "20240101T000000Z";
    let now = at(t);
    let s = sign(
        "POST",
        "xks.example.com",
        "/kms/xks/v1/keys/k/encrypt",
        &[],
        b"{}",
        &cred,
        "eu-west-1",
        "kms-xks-proxy",
        now,
    )
    .unwrap();
    let h = headers(&[
        ("host", "xks.example.com"),
        ("x-amz-date", &s.amz_date),
        ("authorization", &s.authorization),
    ]);
    assert_eq!(
        run(&h, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::WrongRegion("eu-west-1".into()))
    );

    // x-amz-date on another day than the scope.
    let h = signed(b"{}", &[], t, &cred);
    let mut h2 = h.clone();
    h2.insert("x-amz-date", HeaderValue::from_static("20240102T000000Z"));
    assert_eq!(
        run(&h2, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::ScopeDateMismatch)
    );
    // Same day, other time: signature no longer matches.
    h2.insert("x-amz-date", HeaderValue::from_static("20240101T000001Z"));
    assert_eq!(
        run(&h2, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::SignatureMismatch)
    );
    let mut h3 = h.clone();
    h3.remove("x-amz-date");
    assert_eq!(
        run(&h3, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::MissingDate)
    );
    let mut h4 = h.clone();
    h4.remove("authorization");
    assert_eq!(
        run(&h4, b"{}", now, &cred, "kms-xks-proxy"),
        Err(VerifyError::MissingAuthorization)
    );
}

#[test]
fn host_and_date_must_be_signed() {
    let cred = Credential::new(AK, SK);
    let t = "20240101T000000Z";
    let h = signed(b"{}", &[], t, &cred);
    let auth = h["authorization"].to_str().unwrap();
    let without_host = auth.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    let mut h2 = h.clone();
    h2.insert(
        "authorization",
        HeaderValue::from_str(&without_host).unwrap(),
    );
    assert_eq!(
        run(&h2, b"{}", at(t), &cred, "kms-xks-proxy"),
        Err(VerifyError::RequiredHeaderNotSigned("host"))
    );
}

#[test]
fn http2_authority_stands_in_for_host() {
    let cred = Credential::new(AK, SK);
    let t = "20240101T000000Z";
    let mut h = signed(b"{}", &[], t, &cred);
    h.remove("host");
    let req = RequestParts {
        method: "POST",
        path: "/kms/xks/v1/keys/k/encrypt",
        query: None,
        headers: &h,
        authority: Some("xks.example.com"),
        body: b"{}",
    };
    assert!(verify(
        &req,
        at(t),
        "kms-xks-proxy",
        DEFAULT_MAX_SKEW,
        |_| true,
        |_| Some(&cred)
    )
    .is_ok());
    let req = RequestParts {
        authority: Some("other.example.com"),
        ..req
    };
    assert_eq!(
        verify(
            &req,
            at(t),
            "kms-xks-proxy",
            DEFAULT_MAX_SKEW,
            |_| true,
            |_| Some(&cred)
        ),
        Err(VerifyError::SignatureMismatch)
    );
}

#[test]
fn authorization_header_parsing() {
    let ok = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/kms/aws4_request,SignedHeaders=host;x-amz-date,Signature=0000000000000000000000000000000000000000000000000000000000000000",
    )
    .unwrap();
    assert_eq!(ok.signed_headers, vec!["host", "x-amz-date"]);
    for bad in [
        "AWS4-HMAC-SHA1 Credential=a/20240101/r/s/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/20240101/r/s/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=a/2024/r/s/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=a/20240101/r/s/aws5_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=a/20240101/r/s/aws4_request, SignedHeaders=Host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=a/20240101/r/s/aws4_request, SignedHeaders=host, Signature=XYZ",
        "",
    ] {
        assert!(parse_authorization(bad).is_err(), "{bad}");
    }
}

/// Found by the sigv4_authorization fuzz target: a request target that is
/// not `/path[?query]` made aws-sigv4 panic; it is a refusal now.
#[test]
fn a_request_target_not_in_origin_form_is_refused_not_a_panic() {
    let cred = Credential::new(AK, SK);
    let t = "20240101T000000Z";
    let h = signed(b"{}", &[], t, &cred);
    for (path, query) in [
        ("s,aws", None),
        ("", None),
        ("s", Some("a=b")),
        ("/a b", None),
    ] {
        let req = RequestParts {
            method: "POST",
            path,
            query,
            headers: &h,
            authority: None,
            body: b"{}",
        };
        let r = verify(
            &req,
            at(t),
            "kms-xks-proxy",
            DEFAULT_MAX_SKEW,
            |_| true,
            |ak| (ak == cred.access_key_id()).then_some(&cred),
        );
        assert!(
            matches!(r, Err(VerifyError::Canonicalization(_))),
            "{path:?} {query:?}: {r:?}"
        );
    }
}
