//! The client against small, deliberately misbehaving TLS servers.
//! Timing assertions leave generous slack: CI runs on 2 busy cores.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xks_client::{
    decrypt_request, encrypt_request, Error, ErrorKind, InvalidResponse, ProxyErrorName, XksClient,
};
use xks_wire::ErrorName;

fn health_md() -> xks_wire::RequestMetadata {
    xks_wire::RequestMetadata {
        kms_operation: Some("KmsHealthCheck".into()),
        kms_request_id: Some("req-health".into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_over_mtls_with_verified_signatures() {
    let pki = Pki::new();
    let server = TestServer::start(pki.server_tls(true, &[]), fake_proxy(SECRET)).await;
    let client = XksClient::new(&pki.mtls_client_config(server.addr)).unwrap();

    let health = client.get_health_status(&health_md()).await.unwrap();
    assert_eq!(health.xks_proxy_fleet_size, 1);
    let meta = client
        .get_key_metadata(&key(), &metadata("CreateKey"))
        .await
        .unwrap();
    assert_eq!(meta.key_usage, ["ENCRYPT", "DECRYPT"]);

    let plaintext = [0x42u8; 32];
    let aad = b"project=nile";
    let sealed = client
        .encrypt(
            &key(),
            &encrypt_request(metadata("Encrypt"), &plaintext, Some(aad), true),
        )
        .await
        .unwrap();
    assert_eq!(sealed.ciphertext.0.len(), 32);
    assert!(sealed.ciphertext_data_integrity_value.is_some());
    let opened = client
        .decrypt(
            &key(),
            &decrypt_request(
                metadata("Decrypt"),
                &sealed.ciphertext.0,
                sealed.ciphertext_metadata.as_ref().map(|m| &m.0[..]),
                &sealed.initialization_vector.0,
                &sealed.authentication_tag.0,
                Some(aad),
            ),
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_ref(), &plaintext);

    // Every request was signed over host;x-amz-date for kms-xks-proxy in
    // the configured region, with the paths and content type of the spec.
    let seen = server.seen();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/test-ks/kms/xks/v1/health",
            "/test-ks/kms/xks/v1/keys/test-key-1/metadata",
            "/test-ks/kms/xks/v1/keys/test-key-1/encrypt",
            "/test-ks/kms/xks/v1/keys/test-key-1/decrypt",
        ]
    );
    // requestMetadata carries exactly the members the spec lists: health
    // only kmsRequestId and kmsOperation; GetKeyMetadata for CreateKey no
    // kmsKeyArn (the key does not exist yet); Encrypt/Decrypt everything.
    let members = |r: &Request| -> Vec<String> {
        let v: serde_json::Value = r.json();
        let mut m: Vec<String> = v["requestMetadata"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        m.sort();
        m
    };
    assert_eq!(members(&seen[0]), ["kmsOperation", "kmsRequestId"]);
    assert_eq!(
        members(&seen[1]),
        [
            "awsPrincipalArn",
            "kmsOperation",
            "kmsRequestId",
            "kmsViaService"
        ]
    );
    for r in &seen[2..] {
        assert_eq!(
            members(r),
            [
                "awsPrincipalArn",
                "kmsKeyArn",
                "kmsOperation",
                "kmsRequestId",
                "kmsViaService"
            ]
        );
    }
    for r in &seen {
        assert_eq!(r.method, "POST");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["host"], server.addr.to_string().as_str());
        let auth = r.headers["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=host;x-amz-date,"), "{auth}");
        let v = r.verify_signature(SECRET).unwrap();
        assert_eq!(
            (v.region.as_str(), v.service.as_str()),
            (REGION, "kms-xks-proxy")
        );
        assert!(r.verify_signature(OTHER_SECRET).is_err());
    }
    // Keep-alive: connections are reused. (hyper hands an HTTP/1.1
    // connection back to the pool a moment after the body ends, so a call
    // made right after another may still open a second one.)
    assert!(server.connections() <= 2, "{}", server.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_an_authentication_error_not_retried() {
    let pki = Pki::new();
    // The server knows a different secret for our access key id.
    let server = TestServer::start(pki.server_tls(false, &[]), fake_proxy(OTHER_SECRET)).await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    let err = client.get_health_status(&health_md()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert!(matches!(err, Error::Proxy { status: 401, .. }), "{err:?}");
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_answering_server_times_out_after_exactly_two_attempts() {
    let pki = Pki::new();
    let server = TestServer::start(
        pki.server_tls(false, &[]),
        Arc::new(|_: &Request, _| Action::Hang),
    )
    .await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    let start = Instant::now();
    let err = client.get_health_status(&health_md()).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
    assert!(err.is_retryable() && err.kind() == ErrorKind::Unreachable);
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed <= Duration::from_millis(1500),
        "{elapsed:?}"
    );
    // No third attempt shows up later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_is_configurable() {
    let pki = Pki::new();
    let server = TestServer::start(
        pki.server_tls(false, &[]),
        Arc::new(|_: &Request, _| Action::Hang),
    )
    .await;
    let cfg = pki
        .client_config(server.addr)
        .with_budget(Duration::from_millis(100), Duration::from_millis(150));
    let client = XksClient::new(&cfg).unwrap();
    let start = Instant::now();
    let err = client.get_health_status(&health_md()).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
    assert!(
        elapsed >= Duration::from_millis(130) && elapsed <= Duration::from_millis(1000),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_first_attempt_is_retried_and_succeeds() {
    let pki = Pki::new();
    let handler: Handler = Arc::new(|req: &Request, n| {
        let reply = Reply::json(200, proxy_answer(req));
        if n == 1 {
            Action::DelayThen(Duration::from_millis(600), reply)
        } else {
            Action::Reply(reply)
        }
    });
    let server = TestServer::start(pki.server_tls(false, &[]), handler).await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    let start = Instant::now();
    let meta = client
        .get_key_metadata(&key(), &metadata("DescribeKey"))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(meta.key_status, "ENABLED");
    assert_eq!(server.requests(), 2);
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed <= Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_a_connect_error_retried_once() {
    let pki = Pki::new();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = XksClient::new(&pki.client_config(addr)).unwrap();
    let start = Instant::now();
    let err = client.get_health_status(&health_md()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { attempts: 2, .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(start.elapsed() < Duration::from_millis(1500));
}

/// Serves one fixed reply to everything.
async fn fixed(pki: &Pki, reply: Reply) -> TestServer {
    TestServer::start(
        pki.server_tls(false, &[]),
        Arc::new(move |_: &Request, _| Action::Reply(reply.clone())),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_responses_are_refused_and_not_retried() {
    use xks_wire::b64::encode;
    let pki = Pki::new();
    let plaintext = [7u8; 32];
    let aad = b"ctx";
    let ct: Vec<u8> = plaintext.iter().map(|b| b ^ XOR).collect();
    let good_cdiv = xks_wire::cdiv_sha256(aad, META, &IV, &ct, &TAG);
    let body = |ct: &[u8], meta: &[u8], iv: &[u8], cdiv: &[u8]| {
        serde_json::json!({
            "ciphertext": encode(ct),
            "ciphertextMetadata": encode(meta),
            "initializationVector": encode(iv),
            "authenticationTag": encode(&TAG),
            "ciphertextDataIntegrityValue": encode(cdiv),
        })
        .to_string()
    };
    type Check = fn(&InvalidResponse) -> bool;
    let cases: Vec<(&str, Reply, Check)> = vec![
        (
            "garbage",
            Reply::json(200, "\u{0}\u{1}not json at all"),
            |e| matches!(e, InvalidResponse::Json(_)),
        ),
        (
            "oversize metadata",
            Reply::json(200, body(&ct, &[0u8; 21], &IV, &good_cdiv)),
            |e| *e == InvalidResponse::MetadataTooLong(21),
        ),
        (
            "wrong IV length",
            Reply::json(200, body(&ct, META, &[0u8; 8], &good_cdiv)),
            |e| *e == InvalidResponse::IvLength(8),
        ),
        (
            "bad CDIV",
            Reply::json(200, body(&ct, META, &IV, &[0u8; 32])),
            |e| *e == InvalidResponse::CdivMismatch,
        ),
        (
            "short ciphertext",
            Reply::json(200, body(&ct[..16], META, &IV, &good_cdiv)),
            |e| {
                matches!(
                    e,
                    InvalidResponse::CiphertextLength {
                        expected: 32,
                        got: 16
                    }
                )
            },
        ),
        (
            "wrong content type",
            Reply {
                status: 200,
                content_type: Some("text/plain".into()),
                body: body(&ct, META, &IV, &good_cdiv).into_bytes(),
            },
            |e| matches!(e, InvalidResponse::ContentType(Some(c)) if c == "text/plain"),
        ),
        (
            "no content type",
            Reply {
                status: 200,
                content_type: None,
                body: body(&ct, META, &IV, &good_cdiv).into_bytes(),
            },
            |e| *e == InvalidResponse::ContentType(None),
        ),
        (
            "oversize body",
            Reply::json(200, vec![b' '; 300 * 1024]),
            |e| matches!(e, InvalidResponse::TooLarge(_)),
        ),
        (
            "HTML error page",
            Reply {
                status: 502,
                content_type: Some("text/html".into()),
                body: b"<html>Bad Gateway</html>".to_vec(),
            },
            |e| *e == InvalidResponse::UnparseableErrorBody { status: 502 },
        ),
    ];
    for (name, reply, check) in cases {
        let server = fixed(&pki, reply).await;
        let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
        let err = client
            .encrypt(
                &key(),
                &encrypt_request(metadata("Encrypt"), &plaintext, Some(aad), true),
            )
            .await
            .unwrap_err();
        match &err {
            Error::InvalidResponse(e) => assert!(check(e), "{name}: {e:?}"),
            other => panic!("{name}: expected InvalidResponse, got {other:?}"),
        }
        assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{name}");
        assert_eq!(server.requests(), 1, "{name}: must not retry");
    }

    // The good body passes, proving the cases above differ by one thing.
    let server = fixed(&pki, Reply::json(200, body(&ct, META, &IV, &good_cdiv))).await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    client
        .encrypt(
            &key(),
            &encrypt_request(metadata("Encrypt"), &plaintext, Some(aad), true),
        )
        .await
        .unwrap();

    // Health: fleet size 0 and 11 EKM entries.
    let entry = serde_json::json!({"id": "h", "model": "m", "healthStatus": "ACTIVE"});
    for (size, entries, want) in [
        (0, 1, InvalidResponse::FleetSizeZero),
        (1, 11, InvalidResponse::EkmFleetCount(11)),
        (1, 0, InvalidResponse::EkmFleetCount(0)),
    ] {
        let h = serde_json::json!({
            "xksProxyFleetSize": size, "xksProxyVendor": "v", "xksProxyModel": "m",
            "ekmVendor": "e", "ekmFleetDetails": vec![entry.clone(); entries],
        });
        let server = fixed(&pki, Reply::json(200, h.to_string())).await;
        let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
        let err = client.get_health_status(&health_md()).await.unwrap_err();
        assert_eq!(err, Error::InvalidResponse(want));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_proxy_error_maps_to_its_variant_and_is_not_retried() {
    let pki = Pki::new();
    let handler: Handler = Arc::new(|_: &Request, n| {
        let name = ErrorName::ALL[(n as usize - 1) % ErrorName::ALL.len()];
        let body =
            serde_json::json!({"errorName": name.as_str(), "errorMessage": format!("no: {name}")});
        Action::Reply(Reply::json(name.status(), body.to_string()))
    });
    let server = TestServer::start(pki.server_tls(false, &[]), handler).await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    for (i, name) in ErrorName::ALL.iter().enumerate() {
        let err = client
            .decrypt(
                &key(),
                &decrypt_request(metadata("Decrypt"), &[1; 8], None, &IV, &TAG, None),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::Proxy {
                name: ProxyErrorName::Known(*name),
                status: name.status(),
                message: Some(format!("no: {name}")),
            }
        );
        assert_eq!(err.proxy_error_name(), Some(*name));
        assert!(!err.is_retryable());
        assert_eq!(
            server.requests(),
            i as u32 + 1,
            "{name} must not be retried"
        );
    }
    let kinds: Vec<ErrorKind> = ErrorName::ALL
        .iter()
        .map(|n| {
            Error::Proxy {
                name: ProxyErrorName::Known(*n),
                status: n.status(),
                message: None,
            }
            .kind()
        })
        .collect();
    assert!(kinds.contains(&ErrorKind::KeyNotFound));
    assert!(kinds.contains(&ErrorKind::InvalidCiphertext));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_server_certificate_is_a_tls_error() {
    let pki = Pki::new();
    let server = TestServer::start(pki.server_tls(false, &[]), fake_proxy(SECRET)).await;
    let mut cfg = pki.client_config(server.addr);
    cfg.trusted_ca_pem = pki.other_ca_pem.as_bytes().to_vec();
    let client = XksClient::new(&cfg).unwrap();
    let start = Instant::now();
    let err = client.get_health_status(&health_md()).await.unwrap_err();
    match &err {
        Error::Tls { reason } => assert!(reason.contains("certificate"), "{reason}"),
        other => panic!("expected Tls, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(!err.is_retryable());
    assert!(start.elapsed() < Duration::from_millis(1500));
    assert_eq!(server.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_client_certificate_is_a_tls_error() {
    let pki = Pki::new();
    let server = TestServer::start(pki.server_tls(true, &[]), fake_proxy(SECRET)).await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    let err = client.get_health_status(&health_md()).await.unwrap_err();
    match &err {
        Error::Tls { reason } => assert!(reason.contains("Certificate"), "{reason}"),
        other => panic!("expected Tls, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.requests(), 0);
    // The server counts a failure just after sending its alert. Two when
    // hyper dropped the alert and the client redid the handshake to
    // diagnose the broken connection (see `probe_tls`).
    let start = Instant::now();
    while server.handshake_failures() == 0 && start.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failures = server.handshake_failures();
    assert!((1..=2).contains(&failures), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_never_sent() {
    let pki = Pki::new();
    let server = TestServer::start(pki.server_tls(false, &[]), fake_proxy(SECRET)).await;
    let client = XksClient::new(&pki.client_config(server.addr)).unwrap();
    let mut md = metadata("Encrypt");
    md.kms_key_arn = None;
    let err = client
        .encrypt(&key(), &encrypt_request(md, b"x", None, false))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    let err = client
        .encrypt(
            &key(),
            &encrypt_request(metadata("Encrypt"), b"", None, false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let err = client
        .get_health_status(&xks_wire::RequestMetadata::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(server.connections(), 0);
}

#[test]
fn bad_tls_material_is_a_config_error() {
    let pki = Pki::new();
    let addr = "127.0.0.1:9".parse().unwrap();
    let mut cfg = pki.client_config(addr);
    cfg.trusted_ca_pem = b"not pem".to_vec();
    assert!(matches!(
        XksClient::new(&cfg),
        Err(Error::Config(xks_client::ConfigError::TrustedCa(_)))
    ));
    let cfg = pki
        .client_config(addr)
        .with_client_identity(pki.client.cert_pem.as_bytes().to_vec(), b"garbage".to_vec());
    assert!(matches!(
        XksClient::new(&cfg),
        Err(Error::Config(xks_client::ConfigError::ClientIdentity(_)))
    ));
    let mut cfg = pki.client_config(addr);
    cfg.endpoint = "http://127.0.0.1:9".into();
    assert!(matches!(
        XksClient::new(&cfg),
        Err(Error::Config(xks_client::ConfigError::Endpoint(_)))
    ));
}
