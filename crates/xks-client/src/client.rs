//! The I/O shell: one pooled HTTPS client per key store, the time budget,
//! and tracing. Protocol decisions live in `config`, `request` and
//! `validate`.

use crate::config::{ConfigError, ValidConfig, XksClientConfig, MAX_RESPONSE_BYTES};
use crate::error::{Error, InvalidResponse};
use crate::request::{encode_body, prepare, PreparedRequest};
use crate::tls::rustls_config;
use crate::validate::{self, RawResponse};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tracing::{field, Instrument};
use xks_wire::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, ExternalKeyId,
    GetKeyMetadataRequest, GetKeyMetadataResponse, HealthRequest, HealthResponse, Operation,
    RequestMetadata,
};
use zeroize::Zeroizing;

/// A client for one key store's XKS proxy. Cheap to clone (shares the
/// connection pool).
#[derive(Clone)]
pub struct XksClient {
    http: reqwest::Client,
    config: ValidConfig,
    credential: sigv4::Credential,
    base_url: String,
    /// The same TLS configuration reqwest uses, for [`XksClient::probe_tls`].
    tls: Arc<rustls::ClientConfig>,
    /// Attempts counted for the caller's metrics (shared across clients
    /// of one key store, see [`XksClient::with_stats`]).
    stats: Option<Arc<CallStats>>,
}

/// What a client counts for metrics: every attempt, and the second
/// attempts among them (retries), whatever the call's outcome.
#[derive(Debug, Default)]
pub struct CallStats {
    attempts: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
}

impl CallStats {
    /// (attempts, retries) so far.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.attempts.load(Relaxed), self.retries.load(Relaxed))
    }

    fn attempt(&self, n: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        self.attempts.fetch_add(1, Relaxed);
        if n > 1 {
            self.retries.fetch_add(1, Relaxed);
        }
    }
}

impl std::fmt::Debug for XksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksClient")
            .field("config", &self.config)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// A received response: status, content type and (zeroized) body.
struct Received {
    status: u16,
    content_type: Option<String>,
    body: Zeroizing<Vec<u8>>,
}

impl Received {
    fn raw(&self) -> RawResponse<'_> {
        RawResponse {
            status: self.status,
            content_type: self.content_type.as_deref(),
            body: &self.body,
        }
    }
}

/// How one attempt failed.
enum Failure {
    /// Retryable: no connection could be made.
    Connect(String),
    /// Retryable: the attempt ran out of time.
    Timeout,
    /// Not retryable.
    Final(Error),
}

impl XksClient {
    /// Validates the configuration and builds the TLS and HTTP clients.
    /// Must be called inside a Tokio runtime only when used; building is
    /// synchronous.
    pub fn new(config: &XksClientConfig) -> Result<Self, Error> {
        let valid = config.validate()?;
        let tls = rustls_config(config)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .no_proxy()
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .pool_idle_timeout(Some(Duration::from_secs(60)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Http(error_chain(&e)))?;
        let credential = sigv4::Credential::new(&config.access_key_id, &config.secret_access_key);
        let base_url = format!("https://{}", valid.authority);
        Ok(XksClient {
            http,
            config: valid,
            credential,
            base_url,
            tls: Arc::new(tls),
            stats: None,
        })
    }

    /// Counts this client's attempts in `stats` (a key store keeps one
    /// across the clients it replaces on credential or TLS changes).
    pub fn with_stats(mut self, stats: Arc<CallStats>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// The validated configuration.
    pub fn config(&self) -> &ValidConfig {
        &self.config
    }

    /// GetHealthStatus. Sends only `kmsRequestId` and `kmsOperation` of
    /// `metadata`: the members the spec lists for this API.
    pub async fn get_health_status(
        &self,
        metadata: &RequestMetadata,
    ) -> Result<HealthResponse, Error> {
        let op = Operation::GetHealthStatus;
        traced(op, metadata, None, async {
            check_metadata(metadata, op)?;
            let body = encode_body(&HealthRequest {
                request_metadata: Some(metadata.for_wire(op)),
            })?;
            let received = self.call(op, None, body).await?;
            validate::health_response(&received.raw())
        })
        .await
    }

    /// GetKeyMetadata. Without `kmsKeyArn` when `kmsOperation` is
    /// `CreateKey` (the spec: the key ARN does not exist yet).
    pub async fn get_key_metadata(
        &self,
        key: &ExternalKeyId,
        metadata: &RequestMetadata,
    ) -> Result<GetKeyMetadataResponse, Error> {
        let op = Operation::GetKeyMetadata;
        traced(op, metadata, Some(key), async {
            let request = GetKeyMetadataRequest {
                request_metadata: Some(metadata.for_wire(op)),
            };
            request.validate().map_err(Error::InvalidRequest)?;
            let received = self.call(op, Some(key), encode_body(&request)?).await?;
            validate::key_metadata_response(&received.raw())
        })
        .await
    }

    /// Encrypt. The request is validated before anything is sent (see
    /// [`crate::encrypt_request`] to build one); the response is validated
    /// against it (lengths, metadata size, CDIV when requested).
    pub async fn encrypt(
        &self,
        key: &ExternalKeyId,
        request: &EncryptRequest,
    ) -> Result<EncryptResponse, Error> {
        let op = Operation::Encrypt;
        let metadata = request.request_metadata.clone().unwrap_or_default();
        traced(op, &metadata, Some(key), async {
            let valid = request.validate().map_err(Error::InvalidRequest)?;
            let received = self.call(op, Some(key), encode_body(request)?).await?;
            validate::encrypt_response(&valid, &received.raw())
        })
        .await
    }

    /// Decrypt. The plaintext comes back in a zeroizing buffer.
    pub async fn decrypt(
        &self,
        key: &ExternalKeyId,
        request: &DecryptRequest,
    ) -> Result<DecryptResponse, Error> {
        let op = Operation::Decrypt;
        let metadata = request.request_metadata.clone().unwrap_or_default();
        traced(op, &metadata, Some(key), async {
            let valid = request.validate().map_err(Error::InvalidRequest)?;
            let received = self.call(op, Some(key), encode_body(request)?).await?;
            validate::decrypt_response(&valid, &received.raw())
        })
        .await
    }

    /// Signs and sends one request within the budget: each attempt is cut
    /// at the attempt timeout, a connect failure or timeout is retried once
    /// if time remains, and nothing runs past the deadline.
    async fn call(
        &self,
        op: Operation,
        key: Option<&ExternalKeyId>,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<Received, Error> {
        let prepared = prepare(
            &self.config,
            &self.credential,
            op,
            key,
            body,
            SystemTime::now(),
        )?;
        let url = format!("{}{}", self.base_url, prepared.path);
        let budget = self.config.budget;
        let start = Instant::now();
        let mut attempts = 0;
        let mut last = Failure::Timeout;
        while let Some(window) = budget.attempt_window(attempts + 1, start.elapsed()) {
            attempts += 1;
            if let Some(s) = &self.stats {
                s.attempt(attempts);
            }
            tracing::Span::current().record("attempts", attempts);
            let attempt_start = Instant::now();
            let attempt_deadline = attempt_start + window;
            let outcome =
                tokio::time::timeout(window, self.attempt(&url, &prepared, attempt_deadline))
                    .instrument(tracing::debug_span!("xks_attempt", attempt = attempts))
                    .await;
            let latency_us = micros(attempt_start.elapsed());
            match outcome {
                Ok(Ok(received)) => {
                    tracing::debug!(
                        attempt = attempts,
                        latency_us,
                        status = received.status,
                        "xks attempt answered"
                    );
                    return Ok(received);
                }
                Ok(Err(Failure::Final(e))) => {
                    tracing::debug!(attempt = attempts, latency_us, error = %e, "xks attempt failed");
                    return Err(e);
                }
                Ok(Err(f)) => {
                    if let Failure::Connect(reason) = &f {
                        tracing::debug!(attempt = attempts, latency_us, reason = %reason, "xks attempt could not connect");
                    }
                    last = f;
                }
                Err(_elapsed) => {
                    tracing::debug!(attempt = attempts, latency_us, "xks attempt timed out");
                    last = Failure::Timeout;
                }
            }
        }
        Err(match last {
            Failure::Connect(reason) => Error::Connect { attempts, reason },
            Failure::Final(e) => e,
            Failure::Timeout => Error::Timeout {
                attempts,
                elapsed: start.elapsed(),
            },
        })
    }

    /// One attempt: connect (or reuse a pooled connection), send, read.
    async fn attempt(
        &self,
        url: &str,
        req: &PreparedRequest,
        deadline: Instant,
    ) -> Result<Received, Failure> {
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, xks_wire::CONTENT_TYPE)
            .header("x-amz-date", &req.amz_date)
            .header(reqwest::header::AUTHORIZATION, &req.authorization)
            .body(req.body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Err(match classify(&e) {
                    Failure::Final(Error::Disconnected { reason }) => {
                        match self.probe_tls(deadline).await {
                            Some(tls) => Failure::Final(Error::Tls { reason: tls }),
                            None => Failure::Final(Error::Disconnected { reason }),
                        }
                    }
                    other => other,
                })
            }
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(Failure::Final(
                InvalidResponse::TooLarge(MAX_RESPONSE_BYTES).into(),
            ));
        }
        let mut response = response;
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Failure::Final(
                    InvalidResponse::TooLarge(MAX_RESPONSE_BYTES).into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Received {
            status,
            content_type,
            body,
        })
    }
}

impl XksClient {
    /// Diagnoses a connection that broke before any response.
    ///
    /// With TLS 1.3 a proxy that refuses our client certificate (or its
    /// absence) sends its alert after the handshake has completed on our
    /// side; hyper may then fail the request as "canceled" and drop the
    /// alert. To tell kms-core "TLS configuration" rather than
    /// "unreachable", one handshake is redone here with the same TLS
    /// configuration and the first read is inspected for a TLS alert.
    /// Bounded by `min(PROBE_TIMEOUT, deadline - 5 ms)`; returns the TLS
    /// error, if any.
    async fn probe_tls(&self, deadline: Instant) -> Option<String> {
        let window = deadline
            .checked_duration_since(Instant::now())?
            .checked_sub(Duration::from_millis(5))?
            .min(PROBE_TIMEOUT);
        let probe = async {
            let tcp = tokio::net::TcpStream::connect((self.config.host.as_str(), self.config.port))
                .await
                .ok()?;
            let name = rustls_pki_types::ServerName::try_from(self.config.host.clone()).ok()?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let mut stream = match connector.connect(name, tcp).await {
                Ok(s) => s,
                Err(e) => return find_tls_error(&e),
            };
            let mut byte = [0u8; 1];
            match stream.read(&mut byte).await {
                Err(e) => find_tls_error(&e),
                Ok(_) => None,
            }
        };
        let found = tokio::time::timeout(window, probe).await.ok().flatten();
        tracing::debug!(
            tls_error = found.is_some(),
            "xks TLS probe after a broken connection"
        );
        found
    }
}

impl XksClient {
    /// The `notAfter` of the proxy's TLS certificate (epoch seconds), from
    /// a fresh handshake with this client's trust and identity: what
    /// CloudWatch reports as XksProxyCertificateDaysToExpire. Sends no
    /// request.
    pub async fn server_certificate_not_after(&self, timeout: Duration) -> Result<i64, Error> {
        let handshake = async {
            let tcp = tokio::net::TcpStream::connect((self.config.host.as_str(), self.config.port))
                .await
                .map_err(|e| Error::Connect {
                    attempts: 1,
                    reason: e.to_string(),
                })?;
            let name =
                rustls_pki_types::ServerName::try_from(self.config.host.clone()).map_err(|e| {
                    Error::Tls {
                        reason: e.to_string(),
                    }
                })?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let stream = connector.connect(name, tcp).await.map_err(|e| Error::Tls {
                reason: find_tls_error(&e).unwrap_or_else(|| e.to_string()),
            })?;
            let (_, session) = stream.get_ref();
            let leaf = session
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or_else(|| Error::Tls {
                    reason: "the proxy presented no certificate".into(),
                })?;
            let (_, cert) =
                x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| Error::Tls {
                    reason: format!("the proxy's certificate does not parse: {e}"),
                })?;
            Ok(cert.validity().not_after.timestamp())
        };
        let start = Instant::now();
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| Error::Timeout {
                attempts: 1,
                elapsed: start.elapsed(),
            })?
    }
}

/// Longest TLS diagnosis after a connection broke (see `probe_tls`).
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);

fn check_metadata(metadata: &RequestMetadata, op: Operation) -> Result<(), Error> {
    metadata.validate_for(op).map_err(Error::InvalidRequest)
}

fn call_span(
    op: Operation,
    metadata: &RequestMetadata,
    key: Option<&ExternalKeyId>,
) -> tracing::Span {
    tracing::info_span!(
        "xks_call",
        operation = op.as_str(),
        kms_request_id = metadata.kms_request_id.as_deref().unwrap_or(""),
        kms_operation = metadata.kms_operation.as_deref().unwrap_or(""),
        external_key_id = key.map(ExternalKeyId::as_str).unwrap_or(""),
        attempts = field::Empty,
        latency_us = field::Empty,
        outcome = field::Empty,
    )
}

/// Runs one call inside its `xks_call` span and records latency and outcome.
async fn traced<T>(
    op: Operation,
    metadata: &RequestMetadata,
    key: Option<&ExternalKeyId>,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let span = call_span(op, metadata, key);
    async {
        let start = Instant::now();
        let result = work.await;
        finish(start, &result);
        result
    }
    .instrument(span)
    .await
}

fn finish<T>(start: Instant, result: &Result<T, Error>) {
    let span = tracing::Span::current();
    let latency_us = micros(start.elapsed());
    span.record("latency_us", latency_us);
    match result {
        Ok(_) => {
            span.record("outcome", "ok");
            tracing::debug!(latency_us, "xks call succeeded");
        }
        Err(e) => {
            span.record("outcome", e.label());
            tracing::info!(latency_us, error = %e, "xks call failed");
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Sorts a reqwest failure into TLS (anywhere in the chain), connect, or a
/// connection that broke after it was made.
fn classify(err: &reqwest::Error) -> Failure {
    if let Some(tls) = find_tls_error(err) {
        return Failure::Final(Error::Tls { reason: tls });
    }
    if err.is_timeout() {
        return Failure::Timeout;
    }
    if err.is_connect() {
        return Failure::Connect(error_chain(err));
    }
    Failure::Final(Error::Disconnected {
        reason: error_chain(err),
    })
}

/// The first rustls error in the source chain, looking inside `io::Error`s
/// (whose `source()` skips the error they wrap).
fn find_tls_error(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(found) = find_tls_error(inner) {
                    return Some(found);
                }
            }
        }
        current = e.source();
    }
    None
}

/// "outer: inner: innermost", each message once.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
