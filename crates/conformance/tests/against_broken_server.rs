//! The suite against deliberately non-conformant servers (plain HTTP, so
//! the mTLS and KMS-client cases skip): no case passes vacuously.

use bytes::Bytes;
use conformance::report::Verdict;
use conformance::{ServerTrust, Settings};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

type Answer = fn(&http::Request<Incoming>) -> (u16, &'static str, &'static str);

/// A plain-HTTP server giving every request the same kind of answer.
async fn serve(answer: Answer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| async move {
                    let (status, content_type, body) = answer(&req);
                    let resp = http::Response::builder()
                        .status(status)
                        .header("content-type", content_type)
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn run_against(answer: Answer) -> conformance::Report {
    let addr = serve(answer).await;
    let mut s = Settings::new(
        format!("http://127.0.0.1:{}", addr.port()),
        "/kms/xks/v1",
        "us-east-1",
        "AKIAI2SFODNN7EXAMPLE",
        "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE",
        ServerTrust::Insecure,
        "main-key",
    );
    s.keys.encrypt_only = Some("enc".into());
    s.keys.decrypt_only = Some("dec".into());
    s.keys.no_usage = Some("none".into());
    s.keys.disabled = Some("off".into());
    s.keys.destroyed = Some("gone".into());
    // Every group runs: a small burst, no-op key-manager commands.
    s.throttling_burst = Some(20);
    s.backend_stop_cmd = Some("true".into());
    s.backend_resume_cmd = Some("true".into());
    s.recovery_timeout = std::time::Duration::from_secs(1);
    s.second_uri_path = Some("/b/kms/xks/v1".into());
    s.mtls.expect = true;
    conformance::run(s).await.unwrap()
}

fn ids(report: &conformance::Report, v: Verdict) -> Vec<&str> {
    report
        .cases
        .iter()
        .filter(|c| c.result == v)
        .map(|c| c.id.as_str())
        .collect()
}

/// Answers 200 to everything, with a body that is not XKS at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_says_ok_to_everything_fails_every_case() {
    let report = run_against(|_| (200, "text/plain", "OK")).await;
    assert_eq!(ids(&report, Verdict::Pass), Vec::<&str>::new());
    for c in &report.cases {
        let expect_skip = c.id.starts_with("mtls.") || c.id.starts_with("kms-client.");
        let want = if expect_skip {
            Verdict::Skip
        } else {
            Verdict::Fail
        };
        assert_eq!(c.result, want, "{}", c.id);
        if want == Verdict::Fail {
            assert!(!c.mismatches.is_empty(), "{}", c.id);
        }
    }
    assert!(report.has_failures());
}

/// The cases a server answering ValidationException to everything may
/// pass: those that expect it (alone or among other refusals).
fn expects_validation(id: &str) -> bool {
    (id.starts_with("validation.") && !id.contains("accepts"))
        || id.starts_with("cdiv.algorithm-")
        || (id.starts_with("limits.") && id != "limits.plaintext-4300-aad-8192")
        || [
            "health.empty-body",
            "health.empty-request-metadata",
            "health.no-kms-request-id",
            "health.no-kms-operation",
            "health.request-metadata-not-object",
            "health.not-json",
        ]
        .contains(&id)
}

/// Answers a well-formed ValidationException to everything: only the
/// cases that expect exactly that pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_rejects_everything_passes_only_rejection_cases() {
    let report = run_against(|_| {
        (
            400,
            "application/json",
            r#"{"errorName":"ValidationException","errorMessage":"no"}"#,
        )
    })
    .await;
    let passed = ids(&report, Verdict::Pass);
    assert!(passed.len() >= 15, "{passed:?}");
    for id in &passed {
        assert!(
            expects_validation(id),
            "{id} passed against a server that rejects everything"
        );
    }
    // The right status and name with the wrong content type is a failure.
    let report =
        run_against(|_| (400, "text/html", r#"{"errorName":"ValidationException"}"#)).await;
    assert_eq!(ids(&report, Verdict::Pass), Vec::<&str>::new());
    let case = report
        .cases
        .iter()
        .find(|c| c.id == "validation.encrypt.no-plaintext")
        .unwrap();
    assert_eq!(case.mismatches.len(), 1);
    assert_eq!(case.mismatches[0].check, "content-type");
    assert_eq!(case.mismatches[0].observed, "text/html");
}

/// A server that answers 405 without Allow and 404 without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_status_codes_are_not_enough() {
    let report = run_against(|req| {
        if req.method() == http::Method::GET {
            (405, "text/plain", "")
        } else {
            (404, "application/json", "")
        }
    })
    .await;
    assert_eq!(ids(&report, Verdict::Pass), Vec::<&str>::new());
    let get = report
        .cases
        .iter()
        .find(|c| c.id == "routing.get-health")
        .unwrap();
    assert_eq!(get.mismatches.len(), 1, "{:?}", get.mismatches);
    assert_eq!(get.mismatches[0].check, "Allow header");
    let uri = report
        .cases
        .iter()
        .find(|c| c.id == "routing.unknown-operation")
        .unwrap();
    let checks: Vec<&str> = uri.mismatches.iter().map(|m| m.check.as_str()).collect();
    assert_eq!(checks, ["response shape", "errorName"]);
}
