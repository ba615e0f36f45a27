//! Operations: the audit log (records parsed and type-checked, secret scan),
//! /metrics scraped over HTTP and parsed as Prometheus text, certificate and
//! credential reload under load, and graceful shutdown under load.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OPS_SECTIONS: &str =
    "\n[audit]\npath = \"audit/audit.log\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n";

async fn start_with_ops() -> Env {
    let (dir, ca, config_path) = prepare(&Options::default());
    let mut text = std::fs::read_to_string(&config_path).unwrap();
    text.push_str(OPS_SECTIONS);
    std::fs::write(&config_path, text).unwrap();
    start_prepared(dir, ca, config_path).await
}

/// GET over plain HTTP/1.1 with hyper; (status, content type, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
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
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

/// Parses the Prometheus/OpenMetrics text format strictly enough to catch
/// malformed output: every sample is `name{labels} value` with a declared
/// family and a float value. Returns (series with labels → value, family → type).
fn parse_prometheus(text: &str) -> (HashMap<String, f64>, HashMap<String, String>) {
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    assert!(text.ends_with("# EOF\n"), "no # EOF terminator");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("TYPE name type");
            assert!(
                [
                    "counter",
                    "gauge",
                    "histogram",
                    "info",
                    "summary",
                    "unknown"
                ]
                .contains(&ty),
                "{line}"
            );
            types.insert(name.to_owned(), ty.to_owned());
            continue;
        }
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# UNIT ") || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || ["_total", "_info", "_bucket", "_sum", "_count", "_created"]
                        .iter()
                        .any(|s| name == format!("{f}{s}"))
            })
            .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
        assert!(!family.is_empty());
        samples.insert(series.to_owned(), value);
    }
    (samples, types)
}

fn check_str_or_null(rec: &Value, field: &str) {
    assert!(
        rec[field].is_string() || rec[field].is_null(),
        "{field} must be a string or null: {rec}"
    );
}

/// Type-checks one proxy audit record against docs/operations.md.
fn check_record(rec: &Value) {
    let obj = rec.as_object().expect("record is an object");
    let expected = [
        "recordVersion",
        "eventTime",
        "requestId",
        "sourceIpAddress",
        "httpMethod",
        "uriPath",
        "keyStore",
        "operation",
        "accessKeyId",
        "externalKeyId",
        "requestMetadata",
        "outcome",
        "httpStatus",
        "errorName",
        "errorDetail",
        "latencyMicros",
    ];
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "fields of {rec}");
    assert_eq!(rec["recordVersion"], "1.0");
    let t = rec["eventTime"].as_str().unwrap();
    assert_eq!(t.len(), 20, "{t}");
    assert!(
        t.ends_with('Z') && &t[4..5] == "-" && &t[10..11] == "T",
        "{t}"
    );
    let id = rec["requestId"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(rec["sourceIpAddress"], "127.0.0.1");
    assert!(rec["httpMethod"].is_string() && rec["uriPath"].is_string());
    for f in [
        "keyStore",
        "operation",
        "accessKeyId",
        "externalKeyId",
        "errorName",
        "errorDetail",
    ] {
        check_str_or_null(rec, f);
    }
    let md = &rec["requestMetadata"];
    for f in [
        "kmsRequestId",
        "kmsOperation",
        "awsPrincipalArn",
        "kmsKeyArn",
        "kmsViaService",
        "awsSourceVpc",
        "awsSourceVpce",
    ] {
        check_str_or_null(md, f);
    }
    let status = rec["httpStatus"].as_u64().unwrap();
    let outcome = rec["outcome"].as_str().unwrap();
    assert_eq!(outcome == "success", status == 200, "{rec}");
    assert_eq!(rec["errorName"].is_null(), status == 200, "{rec}");
    assert!(rec["latencyMicros"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_and_metrics() {
    let env = start_with_ops().await;
    let plaintext = b"TOP-SECRET-PLAINTEXT-0123456789!";
    let aad = b"SECRET-AAD-abcdefgh";
    let enc = env.encrypt("key-a", plaintext, Some(aad)).await;
    let dec = env
        .call(
            format!("{PATH_A}/keys/key-a/decrypt"),
            decrypt_body(&enc, Some(aad)),
        )
        .await;
    assert_eq!(unb64(&dec.assert_ok()["plaintext"]), plaintext);
    // A bad signature, a request denied by store b's rules, an unknown path.
    env.send(env.signed(
        &format!("{PATH_A}/keys/key-a/encrypt"),
        &encrypt_body(plaintext, None, false),
        &Signer::new(AK_A1, "wrong-secret-wrong-secret-wrong-secret-xx"),
    ))
    .await
    .assert_error(401, "AuthenticationFailedException");
    let mut denied = encrypt_body(plaintext, None, false);
    denied["requestMetadata"]["awsPrincipalArn"] = json!("arn:aws:iam::111122223333:user/Mallory");
    env.send(env.signed(
        &format!("{PATH_B}/keys/key-a/encrypt"),
        &denied,
        &Signer::new(AK_B, SK_B),
    ))
    .await
    .assert_error(403, "AccessDeniedException");
    env.call("/nowhere/kms/xks/v1/health", json!({})).await;

    // A failed TLS handshake (plain HTTP on the TLS port) is counted.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(env.handle.addr)
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
    }

    // Metrics, scraped with a real client and parsed.
    let maddr = env.handle.metrics_addr.expect("metrics listener");
    let (status, ctype, text) = http_get(maddr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let (samples, types) = parse_prometheus(&text);
    assert_eq!(types["xks_proxy_requests"], "counter");
    assert_eq!(types["xks_proxy_request_duration_seconds"], "histogram");
    assert_eq!(types["xks_proxy_build"], "info");
    let get = |s: &str| {
        samples
            .get(s)
            .copied()
            .unwrap_or_else(|| panic!("no {s} in\n{text}"))
    };
    assert_eq!(
        get(r#"xks_proxy_requests_total{operation="Encrypt",key_store="a",outcome="success"}"#),
        1.0
    );
    assert_eq!(get("xks_proxy_tls_handshake_failures_total"), 1.0);
    assert_eq!(get("xks_proxy_tls_handshake_timeouts_total"), 0.0);
    assert_eq!(types["xks_proxy_open_connections"], "gauge");
    assert!(get("xks_proxy_open_connections") >= 0.0);
    assert_eq!(
        get(
            r#"xks_proxy_requests_total{operation="Encrypt",key_store="a",outcome="AuthenticationFailedException"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"xks_proxy_requests_total{operation="Encrypt",key_store="b",outcome="AccessDeniedException"}"#
        ),
        1.0
    );
    // Buckets reach down to 50 µs and are cumulative up to the count.
    let smallest =
        get(r#"xks_proxy_request_duration_seconds_bucket{le="0.00005",operation="Decrypt"}"#);
    let count = get(r#"xks_proxy_request_duration_seconds_count{operation="Decrypt"}"#);
    assert!((0.0..=count).contains(&smallest), "{smallest} of {count}");
    assert!(count >= 1.0);
    assert_eq!(get("xks_proxy_requests_in_flight"), 0.0);
    assert!(
        get(r#"xks_proxy_backend_call_duration_seconds_count{backend="embedded",call="encrypt"}"#)
            >= 1.0
    );
    assert!(!text.contains("key-a"), "a key id became a label");
    assert!(!text.contains("Alice"), "a principal became a label");
    assert_eq!(http_get(maddr, "/other").await.0, 404);

    let dir = env.dir;
    env.handle.shutdown().await;
    // Shutdown flushed the audit log.
    let audit = std::fs::read_to_string(dir.path().join("audit/audit.log")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), 5, "{audit}");
    for r in &records {
        check_record(r);
    }
    let e = &records[0];
    assert_eq!(e["operation"], "Encrypt");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["keyStore"], "a");
    assert_eq!(e["externalKeyId"], "key-a");
    assert_eq!(e["accessKeyId"], AK_A1);
    assert_eq!(e["requestMetadata"]["awsPrincipalArn"], ALICE);
    assert_eq!(e["requestMetadata"]["kmsKeyArn"], KEY_ARN);
    assert_eq!(e["requestMetadata"]["kmsOperation"], "Encrypt");
    assert_eq!(e["requestMetadata"]["kmsViaService"], "ebs");
    assert_eq!(records[1]["operation"], "Decrypt");
    assert_eq!(records[2]["errorName"], "AuthenticationFailedException");
    assert_eq!(records[3]["errorName"], "AccessDeniedException");
    assert!(records[3]["errorDetail"]
        .as_str()
        .unwrap()
        .contains("authorization"));
    assert_eq!(records[4]["errorName"], "InvalidUriPathException");
    let ids: std::collections::HashSet<_> = records.iter().map(|r| &r["requestId"]).collect();
    assert_eq!(ids.len(), records.len(), "request ids are unique");

    // Secret scan: no plaintext, AAD, ciphertext, tag or secret key in any
    // form the request carried them.
    let mut secrets: Vec<String> = vec![
        String::from_utf8_lossy(plaintext).into_owned(),
        b64(plaintext),
        String::from_utf8_lossy(aad).into_owned(),
        b64(aad),
        SK_A1.into(),
        SK_A2.into(),
        SK_B.into(),
        "wrong-secret".into(),
    ];
    for f in ["ciphertext", "authenticationTag"] {
        secrets.push(enc[f].as_str().unwrap().to_owned());
    }
    for s in &secrets {
        assert!(!audit.contains(s.as_str()), "audit log contains {s}");
        assert!(!text.contains(s.as_str()), "metrics contain {s}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit/audit.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "audit log readable by others");
    }
}

/// Load: `workers` tasks encrypting on fresh connections (every request is
/// a new TLS handshake) with whatever credential `cred` holds, until `stop`.
fn spawn_load(
    env: &Arc<Env>,
    tls: Arc<rustls::ClientConfig>,
    cred: Arc<Mutex<(String, String)>>,
    stop: Arc<AtomicBool>,
    workers: usize,
) -> (Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<Vec<String>>>) {
    let ok = Arc::new(AtomicUsize::new(0));
    let tasks = (0..workers)
        .map(|_| {
            let env = Arc::clone(env);
            let tls = Arc::clone(&tls);
            let cred = Arc::clone(&cred);
            let stop = Arc::clone(&stop);
            let ok = Arc::clone(&ok);
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (ak, sk) = cred.lock().unwrap().clone();
                    let raw = env.signed(
                        &format!("{PATH_A}/keys/key-a/encrypt"),
                        &encrypt_body(b"load", None, false),
                        &Signer::new(&ak, &sk),
                    );
                    match send_with(env.handle.addr, Arc::clone(&tls), raw, false).await {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures.push(format!(
                            "{} {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        )),
                        Err(e) => failures.push(e),
                    }
                }
                failures
            })
        })
        .collect();
    (ok, tasks)
}

async fn wait_for(ok: &AtomicUsize, more: usize) {
    let target = ok.load(Ordering::Relaxed) + more;
    for _ in 0..500 {
        if ok.load(Ordering::Relaxed) >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("load made no progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_credentials_reload_under_load_without_failures() {
    let mut env = start(Options::default()).await;
    let ca2 = xks_proxy::pki::Ca::new("second test CA").unwrap();
    // Clients trust both CAs during the rollover, as operators do.
    let both = format!("{}{}", env.ca.cert_pem(), ca2.cert_pem());
    let tls_both = client_tls(&both, None, &[b"http/1.1"]);
    let tls_new_only = client_tls(&ca2.cert_pem(), None, &[b"http/1.1"]);
    let probe = |env: &Env, tls: Arc<rustls::ClientConfig>| {
        let raw = env.signed(
            &format!("{PATH_A}/keys/key-a/encrypt"),
            &encrypt_body(b"probe", None, false),
            &Signer::new(AK_A2, SK_A2),
        );
        send_with(env.handle.addr, tls, raw, false)
    };
    assert!(probe(&env, Arc::clone(&tls_new_only)).await.is_err());
    let config_path = env.config_path.clone();
    let dir = env.dir.path().to_owned();
    env.config = xks_proxy::config::Config::load(&config_path).unwrap();
    let env = Arc::new(env);
    let cred = Arc::new(Mutex::new((AK_A1.to_owned(), SK_A1.to_owned())));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, tasks) = spawn_load(&env, tls_both, Arc::clone(&cred), Arc::clone(&stop), 4);
    wait_for(&ok, 20).await;

    // 1. New certificate (from another CA), same files, SIGHUP-equivalent.
    ca2.server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(&dir, "server")
        .unwrap();
    env.handle
        .reload(&xks_proxy::config::Config::load(&config_path).unwrap())
        .unwrap();
    probe(&env, Arc::clone(&tls_new_only))
        .await
        .expect("new certificate in use")
        .assert_ok();
    wait_for(&ok, 20).await;

    // 2. Credential rotation: add, switch the clients, remove the old one.
    let new_ak = "AKIANEWNEWNEWNEWNEWNEW22";
    let new_sk = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeE";
    let text = std::fs::read_to_string(&config_path).unwrap();
    let added = text.replacen(
        "[[key_stores.credentials]]",
        &format!("[[key_stores.credentials]]\naccess_key_id = \"{new_ak}\"\nsecret_access_key = \"{new_sk}\"\n\n[[key_stores.credentials]]"),
        1,
    );
    std::fs::write(&config_path, &added).unwrap();
    env.handle
        .reload(&xks_proxy::config::Config::load(&config_path).unwrap())
        .unwrap();
    wait_for(&ok, 20).await;
    *cred.lock().unwrap() = (new_ak.to_owned(), new_sk.to_owned());
    // Requests signed with the old credential before the switch finish
    // before it is removed (as KMS's would after UpdateCustomKeyStore).
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_for(&ok, 20).await;
    let removed = added.replacen(
        &format!("[[key_stores.credentials]]\naccess_key_id = \"{AK_A1}\"\nsecret_access_key = \"{SK_A1}\"\n"),
        "",
        1,
    );
    assert_ne!(removed, added);
    std::fs::write(&config_path, &removed).unwrap();
    env.handle
        .reload(&xks_proxy::config::Config::load(&config_path).unwrap())
        .unwrap();
    wait_for(&ok, 20).await;

    // 3. A bad certificate is refused and the current one stays.
    std::fs::write(dir.join("server.pem"), "not a certificate").unwrap();
    let bad = xks_proxy::config::Config::load(&config_path).and_then(|c| env.handle.reload(&c));
    assert!(bad.is_err());
    wait_for(&ok, 20).await;

    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok.load(Ordering::Relaxed) >= 120);
    // The old credential is gone.
    let raw = env.signed(
        &format!("{PATH_A}/keys/key-a/encrypt"),
        &encrypt_body(b"x", None, false),
        &Signer::new(AK_A1, SK_A1),
    );
    send_with(env.handle.addr, tls_new_only, raw, false)
        .await
        .unwrap()
        .assert_error(401, "AuthenticationFailedException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_cuts_no_request() {
    let env = start_with_ops().await;
    let addr = env.handle.addr;
    let tls = env.tls();
    // Presigned requests, so that the load does not need the handle that
    // shutdown consumes.
    let raw = env.signed(
        &format!("{PATH_A}/keys/key-a/encrypt"),
        &encrypt_body(b"load", None, false),
        &Signer::new(AK_A1, SK_A1),
    );
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (raw, tls, ok, refused) = (
                raw.clone(),
                Arc::clone(&tls),
                Arc::clone(&ok),
                Arc::clone(&refused),
            );
            tokio::spawn(async move {
                let mut cut = Vec::new();
                // Until the proxy stops accepting connections.
                for _ in 0..100_000 {
                    match send_with(addr, Arc::clone(&tls), raw.clone(), false).await {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => cut.push(format!("status {}", r.status)),
                        // Not served: the listener is closed, or the
                        // connection was closed before its request was
                        // read. A request the proxy processed but did not
                        // answer would show as an audit record without an
                        // answer (checked below).
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                cut
            })
        })
        .collect();
    wait_for(&ok, 50).await;
    let dir = env.dir;
    let before = ok.load(Ordering::Relaxed);
    env.handle.shutdown().await;
    let mut cut = Vec::new();
    for t in tasks {
        cut.extend(t.await.unwrap());
    }
    assert!(cut.is_empty(), "requests cut off: {cut:?}");
    assert_eq!(refused.load(Ordering::Relaxed), 8);
    let done = ok.load(Ordering::Relaxed);
    assert!(done >= before);
    // Every answered request is in the flushed audit log.
    let audit = std::fs::read_to_string(dir.path().join("audit/audit.log")).unwrap();
    let n = audit.lines().count();
    assert_eq!(n, done, "audit records vs answered requests");
}
