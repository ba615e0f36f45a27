//! Small, deliberately misbehaving XKS test servers: TLS (rustls, aws-lc-rs)
//! on 127.0.0.1 with dev-pki certificates, raw HTTP/1.1 so that each test
//! decides exactly what goes on the wire (or that nothing does).
#![allow(dead_code)]

use rustls::crypto::aws_lc_rs;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use xks_client::XksClientConfig;

pub const AKID: &str = "ABCDEFGHIJKLMNOPQRSTUVWX";
pub const SECRET: &str = "K6pTUf2vJrcNFWcL2rH0a6xSrcqGsX8Lzv2wXv1Qd4I=";
pub const OTHER_SECRET: &str = "ZZpTUf2vJrcNFWcL2rH0a6xSrcqGsX8Lzv2wXv1Qd4I=";
pub const REGION: &str = "us-east-2";
pub const URI_PATH: &str = "/test-ks/kms/xks/v1";

/// A certificate and its key (PEM), from the workspace's one test PKI.
pub type Leaf = dev_pki::Issued;

/// Test PKI: a server CA with a 127.0.0.1 certificate, an unrelated CA,
/// and a client CA with a client certificate.
pub struct Pki {
    pub server_ca_pem: String,
    pub server: Leaf,
    pub other_ca_pem: String,
    pub client_ca_pem: String,
    pub client: Leaf,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = |name: &str| dev_pki::Ca::new(name).unwrap();
        let (server_ca, other_ca, client_ca) = (
            ca("XKS test server CA"),
            ca("Unrelated CA"),
            ca("XKS test client CA"),
        );
        Pki {
            server: server_ca.server(&["127.0.0.1"]).unwrap(),
            server_ca_pem: server_ca.cert_pem(),
            other_ca_pem: other_ca.cert_pem(),
            client: client_ca.kms_client("kms.test", None).unwrap(),
            client_ca_pem: client_ca.cert_pem(),
        }
    }

    /// The server side TLS configuration.
    pub fn server_tls(&self, require_client_cert: bool, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(self.client_ca_pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let chain = CertificateDer::pem_slice_iter(self.server.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.server.key_pem.as_bytes()).unwrap();
        let mut cfg = builder.with_single_cert(chain, key).unwrap();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// A client configuration for `addr`, trusting the server CA.
    pub fn client_config(&self, addr: SocketAddr) -> XksClientConfig {
        XksClientConfig::new(
            format!("https://{addr}"),
            URI_PATH,
            REGION,
            AKID,
            SECRET,
            self.server_ca_pem.as_bytes().to_vec(),
        )
    }

    /// The same, with the client certificate for mTLS.
    pub fn mtls_client_config(&self, addr: SocketAddr) -> XksClientConfig {
        self.client_config(addr).with_client_identity(
            self.client.cert_pem.as_bytes().to_vec(),
            self.client.key_pem.as_bytes().to_vec(),
        )
    }
}

/// One HTTP/1.1 request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Request {
    /// Checks the SigV4 signature the way the proxy does.
    pub fn verify_signature(&self, secret: &str) -> Result<sigv4::Verified, sigv4::VerifyError> {
        let cred = sigv4::Credential::new(AKID, secret);
        let parts = sigv4::RequestParts {
            method: &self.method,
            path: &self.path,
            query: None,
            headers: &self.headers,
            authority: None,
            body: &self.body,
        };
        sigv4::verify(
            &parts,
            SystemTime::now(),
            xks_wire::SIGV4_SERVICE,
            sigv4::DEFAULT_MAX_SKEW,
            |r| r == REGION,
            |id| (id == AKID).then_some(&cred),
        )
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the server does with a request.
pub enum Action {
    /// Answer at once.
    Reply(Reply),
    /// Answer after a delay.
    DelayThen(Duration, Reply),
    /// Never answer (keep the connection open).
    Hang,
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type: Some("application/json".into()),
            body: body.into(),
        }
    }
}

/// `handler(request, n)` where n counts requests from 1.
pub type Handler = Arc<dyn Fn(&Request, u32) -> Action + Send + Sync>;

/// A TLS server on 127.0.0.1:0 speaking HTTP/1.1 with keep-alive.
pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicU32>,
    connections: Arc<AtomicU32>,
    handshake_failures: Arc<AtomicU32>,
    seen: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(tls: Arc<ServerConfig>, handler: Handler) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU32::new(0));
        let connections = Arc::new(AtomicU32::new(0));
        let handshake_failures = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let acceptor = TlsAcceptor::from(tls);
        let (r, c, h, s) = (
            requests.clone(),
            connections.clone(),
            handshake_failures.clone(),
            seen.clone(),
        );
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every
            // connection task, hanging ones included.
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (acceptor, handler, r, h, s) = (
                    acceptor.clone(),
                    handler.clone(),
                    r.clone(),
                    h.clone(),
                    s.clone(),
                );
                conns.spawn(async move {
                    let mut tls = match acceptor.accept(tcp).into_fallible().await {
                        Ok(tls) => tls,
                        Err((_, mut tcp)) => {
                            h.fetch_add(1, Ordering::SeqCst);
                            // The alert is sent; drain what the client
                            // already wrote so that closing sends FIN, not
                            // RST (which could discard the alert).
                            let mut sink = [0u8; 4096];
                            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                while let Ok(n) = tcp.read(&mut sink).await {
                                    if n == 0 {
                                        break;
                                    }
                                }
                            })
                            .await;
                            return;
                        }
                    };
                    while let Some(req) = read_request(&mut tls).await {
                        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                        let action = handler(&req, n);
                        s.lock().unwrap().push(req);
                        let reply = match action {
                            Action::Reply(reply) => reply,
                            Action::DelayThen(d, reply) => {
                                tokio::time::sleep(d).await;
                                reply
                            }
                            Action::Hang => {
                                std::future::pending::<()>().await;
                                return;
                            }
                        };
                        if write_reply(&mut tls, &reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            requests,
            connections,
            handshake_failures,
            seen,
            task,
        }
    }

    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn handshake_failures(&self) -> u32 {
        self.handshake_failures.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            http::HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn write_reply<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(ct) = &reply.content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.flush().await
}

/// A well-behaved fake proxy: checks the signature of every request, then
/// "encrypts" by XOR (the client checks shapes, not cryptography) and
/// computes the CDIV like a real proxy.
pub fn fake_proxy(secret: &'static str) -> Handler {
    Arc::new(move |req: &Request, _n| {
        if let Err(e) = req.verify_signature(secret) {
            let body = serde_json::json!({
                "errorName": "AuthenticationFailedException",
                "errorMessage": format!("{e}"),
            });
            return Action::Reply(Reply::json(401, body.to_string()));
        }
        Action::Reply(Reply::json(200, proxy_answer(req)))
    })
}

pub const XOR: u8 = 0x5a;
pub const TAG: [u8; 16] = [0xee; 16];
pub const IV: [u8; 12] = [0x11; 12];
pub const META: &[u8] = b"kv=1";

pub fn proxy_answer(req: &Request) -> String {
    use xks_wire::b64::encode;
    let route = xks_wire::parse_api_path(&req.path).unwrap();
    match route.operation {
        xks_wire::Operation::GetHealthStatus => serde_json::json!({
            "xksProxyFleetSize": 1,
            "xksProxyVendor": "test",
            "xksProxyModel": "fake",
            "ekmVendor": "test",
            "ekmFleetDetails": [{"id": "hsm1", "model": "soft", "healthStatus": "ACTIVE"}],
        })
        .to_string(),
        xks_wire::Operation::GetKeyMetadata => {
            r#"{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}"#.into()
        }
        xks_wire::Operation::Encrypt => {
            let r: xks_wire::EncryptRequest = req.json();
            let v = r.validate().unwrap();
            let ct: Vec<u8> = v.plaintext.iter().map(|b| b ^ XOR).collect();
            let mut body = serde_json::json!({
                "ciphertext": encode(&ct),
                "ciphertextMetadata": encode(META),
                "initializationVector": encode(&IV),
                "authenticationTag": encode(&TAG),
            });
            if v.want_cdiv {
                let cdiv = xks_wire::cdiv_sha256(v.aad, META, &IV, &ct, &TAG);
                body["ciphertextDataIntegrityValue"] = encode(&cdiv).into();
            }
            body.to_string()
        }
        xks_wire::Operation::Decrypt => {
            let r: xks_wire::DecryptRequest = req.json();
            let v = r.validate().unwrap();
            let pt: Vec<u8> = v.ciphertext.iter().map(|b| b ^ XOR).collect();
            serde_json::json!({ "plaintext": encode(&pt) }).to_string()
        }
    }
}

pub fn metadata(op: &str) -> xks_wire::RequestMetadata {
    xks_wire::RequestMetadata {
        aws_principal_arn: Some("arn:aws:iam::111122223333:user/Alice".into()),
        kms_key_arn: Some("arn:aws:kms:us-east-2:111122223333:key/1234abcd".into()),
        kms_operation: Some(op.into()),
        kms_request_id: Some(format!("req-{op}")),
        kms_via_service: Some("ebs".into()),
        ..Default::default()
    }
}

pub fn key() -> xks_wire::ExternalKeyId {
    "test-key-1".parse().unwrap()
}
