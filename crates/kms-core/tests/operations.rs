//! Operations of kms-core: the CloudTrail-format audit log (every field
//! type-checked, a secret scan with known plaintexts, data keys and secret
//! keys), /healthz and /readyz, and the credentials reload under load.

mod common;

use aws_sdk_kms::primitives::Blob;
use common::client;
use kms_core::auth::AuthMode;
use kms_core::service::Kms;
use kms_core::store::MemoryStore;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ALICE_AK: &str = "AKIAALICEALICEALICE1";
const ALICE_SK: &str = "alice-secret-alice-secret-alice-secret-1";
const BOB_AK: &str = "AKIABOBBOBBOBBOBBOB2";
const BOB_SK: &str = "bob-secret-bob-secret-bob-secret-bob-22";
const ALICE_ARN: &str = "arn:aws:iam::111122223333:user/Alice";

fn creds(list: &[(&str, &str, &str)]) -> String {
    list.iter()
        .map(|(ak, sk, who)| {
            format!("[[credentials]]\naccess_key_id = \"{ak}\"\nsecret_access_key = \"{sk}\"\naccount_id = \"111122223333\"\nprincipal_arn = \"arn:aws:iam::111122223333:user/{who}\"\n")
        })
        .collect()
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

/// POSTs `body` bytes to `/` as a KMS request (no signature needed: it is
/// refused before authentication).
async fn http_post(addr: std::net::SocketAddr, body: Vec<u8>) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post("/")
        .header("host", "localhost")
        .header("x-amz-target", "TrentService.Encrypt")
        .header("content-type", "application/x-amz-json-1.1")
        .header("user-agent", "oversized-test")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

fn is_str(v: &Value) -> bool {
    v.is_string()
}

/// Type-checks one record against docs/operations.md (CloudTrail's format).
fn check_record(r: &Value) {
    let o = r.as_object().expect("object");
    for (f, ok) in [
        ("eventVersion", is_str(&r["eventVersion"])),
        ("userIdentity", r["userIdentity"].is_object()),
        ("eventTime", is_str(&r["eventTime"])),
        ("eventSource", r["eventSource"] == "kms.amazonaws.com"),
        ("eventName", is_str(&r["eventName"])),
        ("awsRegion", is_str(&r["awsRegion"])),
        ("sourceIPAddress", is_str(&r["sourceIPAddress"])),
        ("userAgent", is_str(&r["userAgent"])),
        (
            "requestParameters",
            r["requestParameters"].is_object() || r["requestParameters"].is_null(),
        ),
        ("responseElements", r["responseElements"].is_null()),
        ("requestID", is_str(&r["requestID"])),
        ("eventID", is_str(&r["eventID"])),
        ("readOnly", r["readOnly"].is_boolean()),
        ("resources", r["resources"].is_array()),
        (
            "eventType",
            r["eventType"] == "AwsApiCall" || r["eventType"] == "AwsServiceEvent",
        ),
        ("managementEvent", r["managementEvent"].is_boolean()),
        (
            "recipientAccountId",
            is_str(&r["recipientAccountId"]) || r["recipientAccountId"].is_null(),
        ),
        ("eventCategory", r["eventCategory"] == "Management"),
    ] {
        assert!(o.contains_key(f), "{f} missing in {r}");
        assert!(ok, "{f} has the wrong type in {r}");
    }
    assert_eq!(r["eventVersion"], "1.08");
    let t = r["eventTime"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T",
        "{t}"
    );
    let u = &r["userIdentity"];
    assert!(["Root", "IAMUser", "AssumedRole", "AWSService", "Unknown"]
        .contains(&u["type"].as_str().unwrap()));
    for f in ["principalId", "arn", "accountId", "accessKeyId"] {
        assert!(
            u[f].is_string() || u[f].is_null(),
            "userIdentity.{f} in {r}"
        );
    }
    for res in r["resources"].as_array().unwrap() {
        assert_eq!(res["type"], "AWS::KMS::Key");
        assert!(res["ARN"].as_str().unwrap().starts_with("arn:aws:kms:"));
        assert!(is_str(&res["accountId"]));
    }
    match (o.get("errorCode"), o.get("errorMessage")) {
        (None, None) => {}
        (Some(c), Some(m)) => assert!(c.is_string() && m.is_string(), "{r}"),
        _ => panic!("errorCode and errorMessage go together: {r}"),
    }
    // Unique ids.
    assert_eq!(r["eventID"].as_str().unwrap().len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_is_cloudtrail_format_for_every_request_and_has_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.log");
    let (sink, guard) =
        audit_sink::AuditSink::open(&audit_sink::SinkConfig::new(&audit_path)).unwrap();
    let auth = AuthMode::configured_from_toml(&creds(&[(ALICE_AK, ALICE_SK, "Alice")])).unwrap();
    let kms = Kms::new(auth, Arc::new(MemoryStore::in_memory()))
        .unwrap()
        .with_audit(sink);
    let handle = kms_core::server::start("127.0.0.1:0".parse().unwrap(), kms, None)
        .await
        .unwrap();
    let alice = client(handle.addr, ALICE_AK, ALICE_SK, "us-east-1");

    let key = alice
        .create_key()
        .description("audited")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let key_id = key.key_id().to_owned();
    let key_arn = key.arn().unwrap().to_owned();
    let plaintext = b"KNOWN-PLAINTEXT-do-not-log-0123456789";
    let enc = alice
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.to_vec()))
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap();
    let blob = enc.ciphertext_blob.unwrap();
    alice
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap();
    let dk = alice
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let data_key = dk.plaintext.unwrap().into_inner();
    // Failures: a wrong secret, an unknown key, a wrong context.
    let mallory = client(
        handle.addr,
        ALICE_AK,
        "guessed-secret-guessed-secret-xx",
        "us-east-1",
    );
    assert!(mallory.list_keys().send().await.is_err());
    assert!(alice
        .describe_key()
        .key_id("11111111-2222-3333-4444-555555555555")
        .send()
        .await
        .is_err());
    assert!(alice
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "other")
        .send()
        .await
        .is_err());
    alice
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    // A body over the limit is refused before it is read: audited too.
    let (status, err) = http_post(handle.addr, vec![b' '; 300 * 1024]).await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("ValidationException"))
    );

    // Health endpoints: JSON per dependency, never audited.
    let (status, live) = http_get(handle.addr, "/healthz").await;
    assert_eq!((status, live["status"].as_str()), (200, Some("ok")));
    let (status, ready) = http_get(handle.addr, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["store"]["status"], "ok");
    assert_eq!(ready["checks"]["rootKey"]["status"], "ok");
    assert_eq!(ready["checks"]["auditLog"]["status"], "ok");
    assert!(ready["checks"]["customKeyStores"].is_array());

    handle.shutdown().await;
    tokio::task::spawn_blocking(move || guard.close())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&audit_path).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CreateKey",
            "Encrypt",
            "Decrypt",
            "GenerateDataKey",
            "ListKeys",
            "DescribeKey",
            "Decrypt",
            "ScheduleKeyDeletion",
            "Unknown"
        ],
        "{text}"
    );
    let oversized = &records[8];
    assert_eq!(oversized["errorCode"], "ValidationException");
    assert_eq!(oversized["userAgent"], "oversized-test");
    assert_eq!(oversized["userIdentity"]["type"], "Unknown");
    for r in &records {
        check_record(r);
    }
    let e = &records[1];
    assert_eq!(e["userIdentity"]["type"], "IAMUser");
    assert_eq!(e["userIdentity"]["arn"], ALICE_ARN);
    assert_eq!(e["userIdentity"]["accountId"], "111122223333");
    assert_eq!(e["userIdentity"]["accessKeyId"], ALICE_AK);
    assert_eq!(e["awsRegion"], "us-east-1");
    assert_eq!(e["sourceIPAddress"], "127.0.0.1");
    assert!(e["userAgent"].as_str().unwrap().contains("aws-sdk-rust"));
    assert_eq!(e["requestParameters"]["keyId"], key_id.as_str());
    assert_eq!(
        e["requestParameters"]["encryptionContext"]["purpose"],
        "audit-test"
    );
    assert_eq!(e["readOnly"], true);
    assert_eq!(e["resources"][0]["ARN"], key_arn.as_str());
    assert_eq!(e["recipientAccountId"], "111122223333");
    // Decrypt names no key; its resource is the ciphertext's key.
    assert_eq!(records[2]["resources"][0]["ARN"], key_arn.as_str());
    assert_eq!(records[3]["requestParameters"]["keySpec"], "AES_256");
    // The denied request: unknown caller, the error AWS returned.
    let denied = &records[4];
    assert_eq!(denied["errorCode"], "InvalidSignatureException");
    assert_eq!(denied["userIdentity"]["type"], "Unknown");
    assert_eq!(records[5]["errorCode"], "NotFoundException");
    assert_eq!(records[6]["errorCode"], "InvalidCiphertextException");
    assert_eq!(records[7]["readOnly"], false);
    assert_eq!(records[7]["requestParameters"]["pendingWindowInDays"], 7);
    let ids: std::collections::HashSet<_> = records.iter().map(|r| &r["requestID"]).collect();
    assert_eq!(ids.len(), records.len());

    // Secret scan over the audit log.
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let secrets = [
        String::from_utf8_lossy(plaintext).into_owned(),
        b64(plaintext),
        b64(&data_key),
        hex::encode(&data_key),
        b64(blob.as_ref()),
        ALICE_SK.to_owned(),
        "guessed-secret".to_owned(),
    ];
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "the audit log contains {s}");
    }
}

#[test]
fn background_deletion_event_is_a_service_event() {
    let r = kms_core::audit::Record::service_event(
        "DeleteKey",
        "111122223333",
        "eu-west-1",
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        serde_json::json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
    );
    let v = serde_json::to_value(&r).unwrap();
    check_record(&v);
    assert_eq!(v["eventType"], "AwsServiceEvent");
    assert_eq!(v["userIdentity"]["type"], "AWSService");
    assert_eq!(v["userIdentity"]["invokedBy"], "kms.amazonaws.com");
    assert_eq!(v["awsRegion"], "eu-west-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reload_under_load_without_failures() {
    let auth = AuthMode::configured_from_toml(&creds(&[(ALICE_AK, ALICE_SK, "Alice")])).unwrap();
    let handle = common::start_with(auth, Arc::new(MemoryStore::in_memory())).await;
    let addr = handle.addr;
    let current = Arc::new(Mutex::new(client(addr, ALICE_AK, ALICE_SK, "us-east-1")));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (current, stop, ok) = (Arc::clone(&current), Arc::clone(&stop), Arc::clone(&ok));
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let c = current.lock().unwrap().clone();
                    match c.generate_random().number_of_bytes(16).send().await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(format!("{e:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    let wait = |n: usize| {
        let ok = Arc::clone(&ok);
        async move {
            let target = ok.load(Ordering::Relaxed) + n;
            for _ in 0..1000 {
                if ok.load(Ordering::Relaxed) >= target {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no progress");
        }
    };
    wait(20).await;
    // Add Bob next to Alice, move the clients to Bob, remove Alice.
    handle.kms.reload_auth(
        AuthMode::configured_from_toml(&creds(&[
            (ALICE_AK, ALICE_SK, "Alice"),
            (BOB_AK, BOB_SK, "Bob"),
        ]))
        .unwrap(),
    );
    wait(20).await;
    *current.lock().unwrap() = client(addr, BOB_AK, BOB_SK, "us-east-1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait(20).await;
    handle
        .kms
        .reload_auth(AuthMode::configured_from_toml(&creds(&[(BOB_AK, BOB_SK, "Bob")])).unwrap());
    wait(20).await;
    // A bad file is refused by the parser: the running one stays.
    assert!(AuthMode::configured_from_toml("[[credentials]]\nnope = 1\n").is_err());
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let f = t.await.unwrap();
        assert!(f.is_empty(), "failed requests: {f:?}");
    }
    let alice = client(addr, ALICE_AK, ALICE_SK, "us-east-1");
    let e = alice
        .generate_random()
        .number_of_bytes(16)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(e), "UnrecognizedClientException");
    handle.shutdown().await;
}

/// Every sample line is `name{labels} value` of a declared family.
fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"));
    let mut families = Vec::new();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram", "info"].contains(&ty),
                "{line}"
            );
            families.push(name.to_owned());
        } else if !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            assert!(
                families.iter().any(|f| name == f
                    || ["_total", "_info", "_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name == format!("{f}{s}"))),
                "undeclared: {line}"
            );
            samples.insert(series.to_owned(), v);
        }
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_parse_as_prometheus_text() {
    let metrics = Arc::new(kms_core::metrics::Metrics::new());
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard) =
        audit_sink::AuditSink::open(&audit_sink::SinkConfig::new(dir.path().join("audit.log")))
            .unwrap();
    metrics.watch_audit(sink.clone());
    let kms = Kms::new(AuthMode::Development, Arc::new(MemoryStore::in_memory()))
        .unwrap()
        .with_metrics(metrics)
        .with_audit(sink);
    let handle = kms_core::server::start("127.0.0.1:0".parse().unwrap(), kms, None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let maddr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(kms_core::server::serve_metrics(
        listener,
        Arc::clone(&handle.kms),
        async {
            let _ = rx.await;
        },
    ));
    let c = client(handle.addr, "111122223333", "x", "us-east-1");
    let key = c.create_key().send().await.unwrap().key_metadata.unwrap();
    c.encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(b"m".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(c.describe_key().key_id("alias/none").send().await.is_err());
    // Health checks are not counted as API requests.
    http_get(handle.addr, "/healthz").await;
    // The audit writer gathers a batch for a few ms: wait for its write.
    let sink = handle.kms.audit().expect("audit sink");
    for _ in 0..500 {
        if sink
            .stats()
            .written
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(maddr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            http::Request::get("/metrics")
                .header("host", "localhost")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let s = parse_prometheus(&text);
    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(
        get(r#"kms_requests_total{operation="Encrypt",outcome="success"}"#),
        1.0
    );
    assert_eq!(
        get(r#"kms_requests_total{operation="CreateKey",outcome="success"}"#),
        1.0
    );
    assert_eq!(
        get(r#"kms_requests_total{operation="DescribeKey",outcome="NotFoundException"}"#),
        1.0
    );
    assert_eq!(
        get(r#"kms_request_duration_seconds_count{operation="Encrypt"}"#),
        1.0
    );
    assert!(
        s.contains_key(r#"kms_request_duration_seconds_bucket{le="0.00005",operation="Encrypt"}"#)
    );
    assert_eq!(get("kms_requests_in_flight"), 0.0);
    assert!(text.contains("kms_build_info{version="));
    assert!(!text.contains(key.key_id()), "a key id became a label");
    assert_eq!(get("kms_audit_records_written_total"), 3.0);
    // The SDK client's keep-alive connection (plain HTTP: no handshakes).
    assert!(get("kms_open_connections") >= 1.0);
    assert_eq!(get("kms_tls_handshake_failures_total"), 0.0);
    assert_eq!(get("kms_audit_records_lost_total"), 0.0);
    assert_eq!(get("kms_audit_refused_requests_total"), 0.0);
    let _ = tx.send(());
    task.await.unwrap();
    handle.shutdown().await;
    tokio::task::spawn_blocking(move || guard.close())
        .await
        .unwrap();
}
