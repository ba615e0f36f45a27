//! The thin async transport: TLS 1.3/1.2 with a client certificate
//! (tokio-rustls, aws-lc-rs), a bounded connection pool, deadlines on every
//! step, and protocol version negotiation with Discover Versions.
//!
//! KMIP over TLS has no extra framing: a message is one TTLV structure, so
//! its length is in its first 8 bytes. One request is in flight per
//! connection; concurrency comes from the pool.

use crate::error::Error;
use crate::message::{
    decode_response, Attribute, KeyAttributes, ProtocolVersion, Request, Response, ResponseMessage,
};
use crate::spec::{CryptographicAlgorithm, ObjectType, ResultReason, RevocationReasonCode};
use crate::ttlv::{framed_len, HEADER_LEN};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

/// The PEM material of a client: the CA that signed the server's
/// certificate, and the client's own certificate chain and key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Zeroizing<Vec<u8>>,
}

impl TlsIdentity {
    pub fn from_files(
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<TlsIdentity, Error> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| Error::Config(format!("reading {}: {e}", p.display())))
        };
        Ok(TlsIdentity {
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: Zeroizing::new(read(key)?),
        })
    }

    /// A rustls client configuration: TLS 1.3 and 1.2 (many KMIP servers,
    /// PyKMIP among them, speak only 1.2), the server verified against the
    /// CA, the client certificate presented.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        let cfg = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&self.ca_pem) {
            roots
                .add(c.map_err(|e| cfg("CA certificate", &e))?)
                .map_err(|e| cfg("CA certificate", &e))?;
        }
        if roots.is_empty() {
            return Err(Error::Config("no CA certificate in the CA file".into()));
        }
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cfg("client certificate", &e))?;
        if chain.is_empty() {
            return Err(Error::Config(
                "no certificate in the client certificate file".into(),
            ));
        }
        let key =
            PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| cfg("client key", &e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| cfg("TLS versions", &e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| cfg("client certificate and key", &e))
    }
}

/// How to reach one KMIP server.
#[derive(Clone)]
pub struct ClientSettings {
    /// `host:port`.
    pub address: String,
    /// The name the server certificate must carry (DNS name or IP).
    pub server_name: String,
    pub tls: TlsIdentity,
    pub connect_timeout: Duration,
    /// Budget of one call: pool wait, connect, send and receive.
    pub request_timeout: Duration,
    /// Most connections open at once (= most requests in flight).
    pub pool_size: usize,
    /// Idle connections older than this are closed rather than reused
    /// (servers drop idle sessions; PyKMIP after 10 s).
    pub idle_timeout: Duration,
    /// Versions this client speaks, preferred first. Encrypt/Decrypt with
    /// AAD need 1.4.
    pub versions: Vec<ProtocolVersion>,
    /// Ask the server with Discover Versions; otherwise use `versions[0]`.
    pub negotiate: bool,
    /// Largest response accepted (also sent as Maximum Response Size).
    pub max_response_bytes: usize,
}

impl ClientSettings {
    pub fn new(address: &str, server_name: &str, tls: TlsIdentity) -> ClientSettings {
        ClientSettings {
            address: address.to_owned(),
            server_name: server_name.to_owned(),
            tls,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            pool_size: 8,
            idle_timeout: Duration::from_secs(5),
            versions: vec![ProtocolVersion::V1_4],
            negotiate: true,
            max_response_bytes: 1 << 20,
        }
    }
}

struct Idle {
    conn: TlsStream<TcpStream>,
    since: Instant,
}

/// A pooled KMIP client. Cheap to share (`Arc<Client>`); all methods take
/// `&self`.
pub struct Client {
    settings: ClientSettings,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    permits: Semaphore,
    idle: Mutex<Vec<Idle>>,
    version: OnceCell<ProtocolVersion>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("kmip::Client")
            .field("address", &self.settings.address)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Client {
    /// Pool use for metrics: (size, connections in use by calls now).
    pub fn pool_usage(&self) -> (usize, usize) {
        let size = self.settings.pool_size;
        (size, size.saturating_sub(self.permits.available_permits()))
    }

    /// Builds the client; connections are opened on demand.
    pub fn new(settings: ClientSettings) -> Result<Client, Error> {
        if settings.pool_size == 0 {
            return Err(Error::Config("pool size must be at least 1".into()));
        }
        if settings.versions.is_empty() {
            return Err(Error::Config("no protocol version to speak".into()));
        }
        let server_name = ServerName::try_from(settings.server_name.clone())
            .map_err(|e| Error::Config(format!("server name {:?}: {e}", settings.server_name)))?;
        let connector = TlsConnector::from(Arc::new(settings.tls.client_config()?));
        Ok(Client {
            permits: Semaphore::new(settings.pool_size),
            idle: Mutex::new(Vec::with_capacity(settings.pool_size)),
            version: OnceCell::new(),
            settings,
            connector,
            server_name,
        })
    }

    pub fn address(&self) -> &str {
        &self.settings.address
    }

    /// The protocol version in use, once negotiated.
    pub fn negotiated_version(&self) -> Option<ProtocolVersion> {
        self.version.get().copied()
    }

    /// Sends one request and returns the successful response's payload.
    pub async fn call(&self, request: &Request<'_>) -> Result<Response, Error> {
        let deadline = Instant::now() + self.settings.request_timeout;
        let version = self.version(deadline).await?;
        Ok(self.exchange(request, version, deadline).await?.response)
    }

    async fn version(&self, deadline: Instant) -> Result<ProtocolVersion, Error> {
        if let Some(v) = self.version.get() {
            return Ok(*v);
        }
        let v = self
            .version
            .get_or_try_init(|| async {
                if !self.settings.negotiate {
                    return Ok(self.settings.versions[0]);
                }
                self.negotiate(deadline).await
            })
            .await?;
        Ok(*v)
    }

    /// Discover Versions (KMIP 1.1+), sent with a 1.1 header: the server
    /// answers with the offered versions it supports, its preferred first.
    async fn negotiate(&self, deadline: Instant) -> Result<ProtocolVersion, Error> {
        let offered = self.settings.versions.clone();
        let request = Request::DiscoverVersions {
            versions: offered.clone(),
        };
        match self
            .exchange(&request, ProtocolVersion::V1_1, deadline)
            .await
        {
            Ok(ResponseMessage {
                response: Response::DiscoverVersions(server),
                ..
            }) => {
                let chosen = server.iter().find(|v| offered.contains(v)).copied();
                tracing::info!(server = %self.settings.address, offered = ?offered, answered = ?server, chosen = ?chosen, "KMIP version negotiation");
                chosen.ok_or(Error::NoCommonVersion { offered, server })
            }
            Ok(_) => Err(Error::Malformed(
                "Discover Versions answered with another payload".into(),
            )),
            // A server without Discover Versions: speak our preferred version.
            Err(Error::Failed {
                reason: Some(ResultReason::OperationNotSupported),
                ..
            }) => Ok(offered[0]),
            Err(e) => Err(e),
        }
    }

    async fn exchange(
        &self,
        request: &Request<'_>,
        version: ProtocolVersion,
        deadline: Instant,
    ) -> Result<ResponseMessage, Error> {
        let timeout = Error::Timeout(ms(self.settings.request_timeout));
        let max = self.settings.max_response_bytes;
        let bytes = request.encode(version, Some(i32::try_from(max).unwrap_or(i32::MAX)));
        let _permit = timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| timeout.clone())?
            .map_err(|_| Error::Io("connection pool closed".into()))?;
        let mut retried = false;
        loop {
            let pooled = if retried { None } else { self.take_idle() };
            let (mut conn, reused) = match pooled {
                Some(c) => (c, true),
                None => (self.connect(deadline).await?, false),
            };
            match timeout_at(deadline, round_trip(&mut conn, &bytes, max)).await {
                Err(_) => return Err(timeout),
                Ok(Ok(response)) => {
                    let decoded = decode_response(&response, request.operation());
                    if matches!(decoded, Ok(_) | Err(Error::Failed { .. })) {
                        self.put_idle(conn);
                    }
                    return decoded;
                }
                // A reused connection the server closed while idle: once
                // more on a fresh one, if the request is safe to repeat.
                Ok(Err(e)) if reused && !retried && request.is_idempotent() => {
                    tracing::debug!(error = %e, "KMIP pooled connection failed; retrying on a new one");
                    // The other idle connections are likely as stale.
                    self.clear_idle();
                    retried = true;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    fn take_idle(&self) -> Option<TlsStream<TcpStream>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if c.since.elapsed() < self.settings.idle_timeout {
                return Some(c.conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: TlsStream<TcpStream>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.settings.pool_size {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Closes every idle connection (the next call connects afresh).
    pub fn clear_idle(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn connect(&self, deadline: Instant) -> Result<TlsStream<TcpStream>, Error> {
        let limit = deadline.min(Instant::now() + self.settings.connect_timeout);
        let timeout = Error::Timeout(ms(self
            .settings
            .connect_timeout
            .min(self.settings.request_timeout)));
        let addr = &self.settings.address;
        let tcp = timeout_at(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| timeout.clone())?
            .map_err(|e| Error::Unreachable(format!("{addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        timeout_at(limit, self.connector.connect(self.server_name.clone(), tcp))
            .await
            .map_err(|_| timeout)?
            .map_err(|e| Error::Unreachable(format!("{addr}: TLS handshake: {e}")))
    }

    // ----- typed helpers -----

    /// Unique identifiers of the objects whose Name is `name`.
    pub async fn locate_by_name(&self, name: &str) -> Result<Vec<String>, Error> {
        match self
            .call(&Request::Locate {
                maximum_items: Some(2),
                attributes: vec![Attribute::name(name)],
            })
            .await?
        {
            Response::Locate { unique_identifiers } => Ok(unique_identifiers),
            other => Err(unexpected(&other)),
        }
    }

    /// Object type, algorithm, length, usage mask and state of an object.
    pub async fn key_attributes(&self, uid: &str) -> Result<KeyAttributes, Error> {
        match self
            .call(&Request::GetAttributes {
                unique_identifier: uid,
                names: KeyAttributes::NAMES.to_vec(),
            })
            .await?
        {
            Response::GetAttributes { attributes, .. } => {
                Ok(KeyAttributes::from_attributes(&attributes))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// AES-GCM encryption with a caller-chosen IV; returns ciphertext and tag.
    pub async fn encrypt_gcm(
        &self,
        uid: &str,
        plaintext: &[u8],
        iv: &[u8],
        aad: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        match self
            .call(&Request::Encrypt {
                unique_identifier: uid,
                data: plaintext,
                iv,
                aad,
            })
            .await?
        {
            Response::Encrypt {
                data,
                tag,
                iv: returned,
                ..
            } => {
                if returned.as_deref().is_some_and(|r| r != iv) {
                    return Err(Error::Malformed("server replaced the IV".into()));
                }
                let tag = tag.ok_or_else(|| {
                    Error::Malformed("Encrypt response has no authentication tag".into())
                })?;
                Ok((data.to_vec(), tag))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// AES-GCM decryption; the server verifies the tag.
    pub async fn decrypt_gcm(
        &self,
        uid: &str,
        ciphertext: &[u8],
        iv: &[u8],
        aad: &[u8],
        tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self
            .call(&Request::Decrypt {
                unique_identifier: uid,
                data: ciphertext,
                iv,
                aad,
                tag,
            })
            .await?
        {
            Response::Decrypt { data, .. } => Ok(data),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates a named AES key (Pre-Active) and returns its identifier.
    pub async fn create_aes_key(
        &self,
        name: &str,
        bits: i32,
        usage_mask: i32,
    ) -> Result<String, Error> {
        match self
            .call(&Request::Create {
                object_type: ObjectType::SymmetricKey,
                attributes: vec![
                    Attribute::cryptographic_algorithm(CryptographicAlgorithm::Aes),
                    Attribute::cryptographic_length(bits),
                    Attribute::usage_mask(usage_mask),
                    Attribute::name(name),
                ],
            })
            .await?
        {
            Response::Create {
                unique_identifier, ..
            } => Ok(unique_identifier),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn activate(&self, uid: &str) -> Result<(), Error> {
        self.call(&Request::Activate {
            unique_identifier: uid,
        })
        .await
        .map(drop)
    }

    /// A symmetric key's raw material (for tests that check the server's
    /// cryptography independently; XKS keys never leave the key manager).
    pub async fn get_key_material(&self, uid: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self
            .call(&Request::Get {
                unique_identifier: uid,
            })
            .await?
        {
            Response::Get { key_material, .. } => Ok(key_material),
            other => Err(unexpected(&other)),
        }
    }

    /// Revokes (Deactivates) a key for "cessation of operation".
    pub async fn revoke(&self, uid: &str) -> Result<(), Error> {
        self.call(&Request::Revoke {
            unique_identifier: uid,
            reason: RevocationReasonCode::CessationOfOperation,
            message: None,
        })
        .await
        .map(drop)
    }

    pub async fn destroy(&self, uid: &str) -> Result<(), Error> {
        self.call(&Request::Destroy {
            unique_identifier: uid,
        })
        .await
        .map(drop)
    }
}

fn unexpected(r: &Response) -> Error {
    Error::Malformed(format!("unexpected payload {r:?}"))
}

/// Writes one request and reads one framed response.
async fn round_trip(
    conn: &mut TlsStream<TcpStream>,
    request: &[u8],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let io = |e: std::io::Error| Error::Io(e.to_string());
    conn.write_all(request).await.map_err(io)?;
    conn.flush().await.map_err(io)?;
    let mut header = [0u8; HEADER_LEN];
    conn.read_exact(&mut header).await.map_err(io)?;
    let total = framed_len(&header).map_err(|e| Error::Malformed(e.to_string()))?;
    if total > max {
        return Err(Error::Malformed(format!(
            "response of {total} bytes exceeds the {max}-byte limit"
        )));
    }
    let mut buf = Zeroizing::new(vec![0u8; total]);
    buf[..HEADER_LEN].copy_from_slice(&header);
    conn.read_exact(&mut buf[HEADER_LEN..]).await.map_err(io)?;
    Ok(buf)
}
