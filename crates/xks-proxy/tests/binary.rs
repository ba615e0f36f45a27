//! The shipped binary: admin CLI, `curl --aws-sigv4` against the running
//! proxy, and durability across `kill -9`.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_xks-proxy");

/// Starts the proxy and returns it with the port it bound (read from its
/// JSON log line).
fn spawn(config: &Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start xks-proxy");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["message"] == "xks-proxy listening" {
                    let addr: std::net::SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
                    let _ = tx.send(addr.port());
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("proxy did not report its address");
    (child, port)
}

fn curl(dir: &Path, port: u16, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--aws-sigv4",
            "aws:amz:us-east-1:kms-xks-proxy",
            "--user",
        ])
        .arg(format!("{AK_A1}:{SK_A1}"))
        .args(["-H", "Content-Type: application/json", "--cacert"])
        .arg(dir.join("ca.pem"))
        .args(["-w", "\n%{http_code}", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("curl must be installed (the test command installs it)");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (json, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(json).unwrap_or_default(),
    )
}

fn keys(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("keys")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_curl_and_kill_9() {
    let (dir, _ca, config) = prepare(&Options::default());
    let text = std::fs::read_to_string(&config).unwrap() + "\n[log]\nformat = \"json\"\n";
    std::fs::write(&config, text).unwrap();

    // Admin CLI.
    let out = keys(&config, &["--backend", "embedded", "create", "cli-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = keys(&config, &["create", "cli-key"]);
    assert!(!out.status.success(), "duplicate create must fail");
    let out = keys(&config, &["delete", "not-in-a"]);
    assert!(!out.status.success(), "delete without --yes must refuse");
    let out = keys(&config, &["list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == "cli-key"));

    let (mut child, port) = spawn(&config);
    let ks = "/a/kms/xks/v1";
    // curl signs content-type;host;x-amz-date.
    let (code, health) = curl(
        dir.path(),
        port,
        &format!("{ks}/health"),
        &serde_json::json!({"requestMetadata": {"kmsRequestId": "1", "kmsOperation": "KmsHealthCheck"}}),
    );
    assert_eq!(code, 200, "{health}");
    // A key created while the proxy runs is served without restart.
    let out = keys(&config, &["create", "key-made-live"]);
    assert!(out.status.success());
    let (code, enc) = curl(
        dir.path(),
        port,
        &format!("{ks}/keys/key-a/encrypt"),
        &encrypt_body(b"survives kill -9", Some(b"ctx"), true),
    );
    assert_eq!(code, 200, "{enc}");
    let (code, err) = curl(
        dir.path(),
        port,
        &format!("{ks}/keys/nope/encrypt"),
        &encrypt_body(b"x", None, false),
    );
    assert_eq!(
        (code, err["errorName"].as_str()),
        (404, Some("KeyNotFoundException"))
    );

    // kill -9 and restart: the ciphertext still decrypts.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, port) = spawn(&config);
    let (code, dec) = curl(
        dir.path(),
        port,
        &format!("{ks}/keys/key-a/decrypt"),
        &decrypt_body(&enc, Some(b"ctx")),
    );
    assert_eq!(code, 200, "{dec}");
    assert_eq!(unb64(&dec["plaintext"]), b"survives kill -9");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn check_config_reports_precise_errors() {
    let (_dir, _ca, config) = prepare(&Options::default());
    let ok = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("/tenants/b_2/kms/xks/v1", "/tenants/b.2/kms/xks/v1");
    std::fs::write(&config, text).unwrap();
    let bad = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("key store \"b\"") && err.contains("uri_path"),
        "{err}"
    );
}

#[test]
fn demo_starts_with_tls_and_prints_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut banner = String::new();
    for line in lines.by_ref() {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Manage keys") || started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let field = |name: &str| {
        banner
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("{name} missing in banner:\n{banner}"))
            .to_owned()
    };
    let endpoint = field("endpoint");
    let ak = field("access key id");
    let sk = field("secret access key");
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--aws-sigv4",
            "aws:amz:us-east-1:kms-xks-proxy",
            "--user",
        ])
        .arg(format!("{ak}:{sk}"))
        .args(["-H", "Content-Type: application/json", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .args(["--data-binary"])
        .arg(encrypt_body(b"demo", None, true).to_string())
        .arg(format!(
            "https://localhost:{port}/demo/kms/xks/v1/keys/demo-key-1/encrypt"
        ))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        v["ciphertext"].is_string(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
