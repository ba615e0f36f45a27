//! Test harness: starts a real proxy (TLS on 127.0.0.1:0, embedded key
//! manager in a temp dir) and talks to it with a hyper/rustls client that
//! signs requests with the workspace's SigV4 signer.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use xks_proxy::admin::{self, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::config::Config;
use xks_proxy::pki::{Ca, Issued};
use xks_proxy::ProxyHandle;

pub const REGION: &str = "us-east-1";
/// Key store "a": two credentials (a rotation pair).
pub const AK_A1: &str = "AKIAAAAAAAAAAAAAAAAAAA22";
pub const SK_A1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA";
pub const AK_A2: &str = "AKIAAAAAAAAAAAAAAAAAAA33";
pub const SK_A2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbB";
/// Key store "b": its own credential and authorization rules.
pub const AK_B: &str = "AKIABBBBBBBBBBBBBBBBBB44";
pub const SK_B: &str = "cccccccccccccccccccccccccccccccccccccccccccC";
/// Key store "limited": rate limit of 1 request/s, burst 2.
pub const AK_L: &str = "AKIALLLLLLLLLLLLLLLLLL55";
pub const SK_L: &str = "ddddddddddddddddddddddddddddddddddddddddddddD";

pub const PATH_A: &str = "/a/kms/xks/v1";
pub const PATH_B: &str = "/tenants/b_2/kms/xks/v1";
pub const PATH_L: &str = "/limited/kms/xks/v1";

pub const ALICE: &str = "arn:aws:iam::111122223333:user/Alice";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

pub struct Options {
    pub mtls: bool,
    pub backend_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mtls: false,
            backend_timeout_ms: 200,
        }
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub handle: ProxyHandle,
    pub ca: Ca,
    pub config: Config,
    pub config_path: PathBuf,
}

pub fn config_text(port: u16, opts: &Options) -> String {
    let mtls = if opts.mtls {
        "client_ca_file = \"ca.pem\"\nclient_subject_names = [\"cks.kms.us-east-1.amazonaws.com\", \"kms-san.example.com\"]\n"
    } else {
        ""
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
backend_timeout_ms = {timeout}

[server.tls]
cert_file = "server.pem"
key_file = "server.key"
{mtls}
[health]
vendor = "Test Vendor"
model = "Test Proxy 1.0"

[backends.embedded]
type = "software"
data_dir = "data"
reload_interval_ms = 50

[[key_stores]]
name = "a"
uri_path = "{PATH_A}"
region = "{REGION}"
backend = "embedded"
allowed_keys = ["key-a", "key-b", "enc-only", "dec-only", "no-usage", "disabled-key", "{long}"]
[[key_stores.credentials]]
access_key_id = "{AK_A1}"
secret_access_key = "{SK_A1}"
[[key_stores.credentials]]
access_key_id = "{AK_A2}"
secret_access_key_file = "secret_a2"

[[key_stores]]
name = "b"
uri_path = "{PATH_B}"
region = "{REGION}"
backend = "embedded"
[[key_stores.credentials]]
access_key_id = "{AK_B}"
secret_access_key = "{SK_B}"
[[key_stores.authorization_rules]]
name = "allow-alice"
effect = "allow"
principals = ["arn:aws:iam::*:user/Alice"]
[[key_stores.authorization_rules]]
name = "no-decrypt-from-bad-vpc"
effect = "deny"
kms_operations = ["Decrypt"]
source_vpcs = ["vpc-bad*"]

[[key_stores]]
name = "limited"
uri_path = "{PATH_L}"
region = "{REGION}"
backend = "embedded"
rate_limit = {{ requests_per_second = 1, burst = 2 }}
[[key_stores.credentials]]
access_key_id = "{AK_L}"
secret_access_key = "{SK_L}"
"#,
        timeout = opts.backend_timeout_ms,
        long = long_key_id(),
    )
}

/// A valid 128-character key id using every allowed punctuation mark.
pub fn long_key_id() -> String {
    let mut s = "Ab0.-_".repeat(21);
    s.push_str("zz");
    assert_eq!(s.len(), 128);
    s
}

/// Writes PKI and keys into a new temp dir and returns (dir, ca).
pub fn prepare(opts: &Options) -> (tempfile::TempDir, Ca, PathBuf) {
    let (dir, ca) = pki_dir();
    std::fs::write(dir.path().join("secret_a2"), format!("{SK_A2}\n")).unwrap();
    let target = Target {
        data_dir: dir.path().join("data"),
        master_key: MasterKeySource::File(dir.path().join("data/master.key")),
    };
    let long_id = long_key_id();
    admin::provision(
        &target,
        &[
            ("key-a", StoredUsage::EncryptDecrypt),
            ("key-b", StoredUsage::EncryptDecrypt),
            ("enc-only", StoredUsage::EncryptOnly),
            ("dec-only", StoredUsage::DecryptOnly),
            ("no-usage", StoredUsage::None),
            ("disabled-key", StoredUsage::EncryptDecrypt),
            ("not-in-a", StoredUsage::EncryptDecrypt),
            (&long_id, StoredUsage::EncryptDecrypt),
        ],
        &["disabled-key"],
    )
    .unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config_text(0, opts)).unwrap();
    (dir, ca, config_path)
}

/// A new temp dir holding a new test CA (ca.pem) and a server certificate
/// it issued for localhost and 127.0.0.1 (server.pem, server.key).
pub fn pki_dir() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA").unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    ca.server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    (dir, ca)
}

pub async fn start(opts: Options) -> Env {
    let (dir, ca, config_path) = prepare(&opts);
    start_prepared(dir, ca, config_path).await
}

/// Starts the proxy from the configuration file `prepare` (or the like)
/// wrote.
pub async fn start_prepared(dir: tempfile::TempDir, ca: Ca, config_path: PathBuf) -> Env {
    let config = Config::load(&config_path).unwrap();
    let handle = xks_proxy::start(&config).await.unwrap();
    Env {
        dir,
        handle,
        ca,
        config,
        config_path,
    }
}

pub fn admin_target(dir: &Path) -> Target {
    Target {
        data_dir: dir.join("data"),
        master_key: MasterKeySource::File(dir.join("data/master.key")),
    }
}

/// Client TLS configuration trusting `ca_pem`, optionally with a client cert.
pub fn client_tls(
    ca_pem: &str,
    client: Option<&Issued>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    xks_proxy::pki::client_config(
        xks_proxy::pki::Trust::CaPem(ca_pem.as_bytes()),
        client.map(|i| (i.cert_pem.as_bytes(), i.key_pem.as_bytes())),
        alpn,
    )
    .unwrap()
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    pub body: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn error_name(&self) -> &str {
        self.json["errorName"].as_str().unwrap_or("")
    }

    /// Asserts an XKS error with the spec's status, JSON content type and a
    /// well-formed message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, name: &str) {
        assert_eq!(
            (self.status, self.error_name()),
            (status, name),
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        let msg = self.json["errorMessage"].as_str().unwrap_or("");
        assert!(
            msg.len() < 512 && msg.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{msg}"
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(
            self.status,
            200,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        &self.json
    }
}

/// A request as it goes on the wire.
#[derive(Clone, Debug)]
pub struct Raw {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct Signer<'a> {
    pub ak: &'a str,
    pub sk: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

impl<'a> Signer<'a> {
    pub fn new(ak: &'a str, sk: &'a str) -> Self {
        Signer {
            ak,
            sk,
            region: REGION,
            service: "kms-xks-proxy",
            time: SystemTime::now(),
        }
    }
}

impl Env {
    pub fn port(&self) -> u16 {
        self.handle.addr.port()
    }

    pub fn host(&self) -> String {
        format!("localhost:{}", self.port())
    }

    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        client_tls(&self.ca.cert_pem(), None, &[b"http/1.1"])
    }

    /// Builds a request signed over `host;x-amz-date` (as KMS does).
    pub fn signed(&self, path: &str, body: &Value, s: &Signer) -> Raw {
        let body = serde_json::to_vec(body).unwrap();
        self.signed_bytes(path, body, s)
    }

    pub fn signed_bytes(&self, path: &str, body: Vec<u8>, s: &Signer) -> Raw {
        let cred = sigv4::Credential::new(s.ak, s.sk);
        let sig = sigv4::sign(
            "POST",
            &self.host(),
            path,
            &[],
            &body,
            &cred,
            s.region,
            s.service,
            s.time,
        )
        .unwrap();
        Raw {
            method: "POST",
            path: path.to_owned(),
            headers: vec![
                ("host".into(), self.host()),
                ("x-amz-date".into(), sig.amz_date),
                ("authorization".into(), sig.authorization),
                ("content-type".into(), "application/json".into()),
            ],
            body,
        }
    }

    pub async fn send(&self, raw: Raw) -> Resp {
        send_with(self.handle.addr, self.tls(), raw, false)
            .await
            .unwrap()
    }

    /// POST a signed request with store a's first credential.
    pub async fn call(&self, path: impl AsRef<str>, body: Value) -> Resp {
        let raw = self.signed(path.as_ref(), &body, &Signer::new(AK_A1, SK_A1));
        self.send(raw).await
    }

    pub async fn encrypt(&self, key: &str, plaintext: &[u8], aad: Option<&[u8]>) -> Value {
        let r = self
            .call(
                &format!("{PATH_A}/keys/{key}/encrypt"),
                encrypt_body(plaintext, aad, true),
            )
            .await;
        r.assert_ok().clone()
    }
}

pub fn b64(b: &[u8]) -> String {
    xks_wire::b64::encode(b)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    xks_wire::b64::decode(v.as_str().expect("string field")).expect("base64")
}

pub fn metadata(op: &str) -> Value {
    json!({
        "awsPrincipalArn": ALICE,
        "kmsKeyArn": KEY_ARN,
        "kmsOperation": op,
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsViaService": "ebs"
    })
}

pub fn encrypt_body(plaintext: &[u8], aad: Option<&[u8]>, cdiv: bool) -> Value {
    let mut v = json!({
        "requestMetadata": metadata("Encrypt"),
        "plaintext": b64(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(a) = aad {
        v["additionalAuthenticatedData"] = json!(b64(a));
    }
    if cdiv {
        v["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
    }
    v
}

/// A decrypt body from an encrypt response.
pub fn decrypt_body(enc: &Value, aad: Option<&[u8]>) -> Value {
    let mut v = json!({
        "requestMetadata": metadata("Decrypt"),
        "ciphertext": enc["ciphertext"],
        "initializationVector": enc["initializationVector"],
        "authenticationTag": enc["authenticationTag"],
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(m) = enc.get("ciphertextMetadata") {
        v["ciphertextMetadata"] = m.clone();
    }
    if let Some(a) = aad {
        v["additionalAuthenticatedData"] = json!(b64(a));
    }
    v
}

/// Sends one request on a fresh connection (HTTP/1.1, or HTTP/2 with
/// `h2 = true`; the TLS config's ALPN must match).
pub async fn send_with(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    raw: Raw,
    h2: bool,
) -> Result<Resp, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let io = TokioIo::new(stream);
    let mut builder = http::Request::builder().method(raw.method);
    if h2 {
        builder = builder.uri(format!("https://localhost:{}{}", addr.port(), raw.path));
    } else {
        builder = builder.uri(raw.path.as_str());
    }
    for (k, v) in &raw.headers {
        if h2 && k == "host" {
            continue; // carried as :authority
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let req = builder.body(Full::new(Bytes::from(raw.body))).unwrap();
    let resp = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2: {e}"))?;
        tokio::spawn(conn);
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("h1: {e}"))?;
        tokio::spawn(conn);
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?
    };
    let status = resp.status().as_u16();
    let header = |n: http::HeaderName| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let allow = header(http::header::ALLOW);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes()
        .to_vec();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Resp {
        status,
        content_type,
        allow,
        body,
        json,
    })
}

pub fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}
