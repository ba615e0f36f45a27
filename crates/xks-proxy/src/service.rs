//! The protocol core: one XKS request in, one reply out, no sockets.
//!
//! Order of checks (cheapest and least revealing first): route → key store
//! → method → SigV4 → rate limit → JSON and field validation → secondary
//! authorization → key lookup and state → cryptography. The HTTP shell
//! (`server.rs`) only collects the body and writes the reply.

use crate::authz::Decision;
use crate::backend::{BackendError, HealthStatus, KeyInfo};
use crate::ciphertext;
use crate::error::XksError;
use crate::keystore::{KeyStore, Routing};
use arc_swap::ArcSwap;
use http::{HeaderMap, Method};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use xks_wire::{
    cdiv_sha256, gcm_aad, parse_api_path, Bytes64, DecryptRequest, DecryptResponse, EkmFleetDetail,
    EncryptRequest, EncryptResponse, ErrorName, ExternalKeyId, GetKeyMetadataRequest,
    GetKeyMetadataResponse, HealthRequest, HealthResponse, Operation, RequestMetadata,
    SecretBytes64,
};

/// Settings of the core that do not belong to one key store.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_plaintext_bytes: usize,
    pub max_aad_bytes: usize,
    pub backend_timeout: Duration,
    pub max_clock_skew: Duration,
    pub load_balancer_health_path: String,
    pub fleet_size: u32,
    pub vendor: String,
    pub model: String,
}

/// A received request, as the core sees it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// HTTP/2 `:authority` (stands in for Host in SigV4).
    pub authority: Option<&'a str>,
    pub body: &'a [u8],
}

/// What the access log records about a request. Never plaintext, AAD,
/// key material or signatures.
#[derive(Default)]
pub struct RequestLog {
    pub key_store: Option<Arc<KeyStore>>,
    pub operation: Option<Operation>,
    pub key_id: Option<String>,
    pub kms_request_id: Option<String>,
    pub kms_operation: Option<String>,
    pub principal: Option<String>,
    pub kms_key_arn: Option<String>,
    pub kms_via_service: Option<String>,
    pub source_vpc: Option<String>,
    pub source_vpce: Option<String>,
    pub access_key_id: Option<String>,
    pub error: Option<ErrorName>,
    pub detail: Option<String>,
}

impl RequestLog {
    fn record_metadata(&mut self, md: &RequestMetadata) {
        self.kms_request_id.clone_from(&md.kms_request_id);
        self.kms_operation.clone_from(&md.kms_operation);
        self.principal.clone_from(&md.aws_principal_arn);
        self.kms_key_arn.clone_from(&md.kms_key_arn);
        self.kms_via_service.clone_from(&md.kms_via_service);
        self.source_vpc.clone_from(&md.aws_source_vpc);
        self.source_vpce.clone_from(&md.aws_source_vpce);
        if let Some(id) = &md.kms_request_id {
            tracing::Span::current().record("kms_request_id", id.as_str());
        }
    }
}

/// The core's answer.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// `Allow` header value for 405 replies.
    pub allow: Option<&'static str>,
    pub log: RequestLog,
}

impl Reply {
    pub fn error(e: XksError, mut log: RequestLog) -> Reply {
        log.error = Some(e.name);
        log.detail = e.detail.clone();
        Reply {
            status: e.status(),
            body: e.body(),
            content_type: xks_wire::CONTENT_TYPE,
            allow: None,
            log,
        }
    }
}

pub struct Proxy {
    routing: ArcSwap<Routing>,
    settings: Settings,
}

fn invalid_uri() -> XksError {
    XksError::new(
        ErrorName::InvalidUriPathException,
        "The URI path is not a valid XKS API path for this proxy.",
    )
}

fn key_not_found() -> XksError {
    XksError::new(
        ErrorName::KeyNotFoundException,
        "The specified external key was not found.",
    )
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, XksError> {
    serde_json::to_vec(v).map_err(|e| {
        XksError::new(
            ErrorName::InternalException,
            "Failed to encode the response.",
        )
        .with_detail(e.to_string())
    })
}

fn parse_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, XksError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field and position, never the value.
        XksError::validation(format!("The request body is not valid: {e}"))
    })
}

impl Proxy {
    pub fn new(routing: Routing, settings: Settings) -> Self {
        Proxy {
            routing: ArcSwap::from_pointee(routing),
            settings,
        }
    }

    /// Replaces the routing table (configuration reload). Requests in flight
    /// finish with the table they started with.
    pub fn swap_routing(&self, routing: Routing) {
        self.routing.store(Arc::new(routing));
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn routing(&self) -> arc_swap::Guard<Arc<Routing>> {
        self.routing.load()
    }

    pub async fn handle(&self, req: Incoming<'_>) -> Reply {
        if req.method == Method::GET && req.path == self.settings.load_balancer_health_path {
            return Reply {
                status: 200,
                body: b"OK\n".to_vec(),
                content_type: "text/plain",
                allow: None,
                log: RequestLog::default(),
            };
        }
        let mut log = RequestLog::default();
        if req.method != Method::POST && self.is_api_path(req.path) {
            // 405 is outside the spec's error table; the body still has the
            // XKS error shape so that clients can parse it.
            log.detail = Some(format!("method {} not allowed", req.method));
            return Reply {
                status: 405,
                body: br#"{"errorName":"MethodNotAllowedException","errorMessage":"XKS API operations accept only POST."}"#.to_vec(),
                content_type: xks_wire::CONTENT_TYPE,
                allow: Some("POST"),
                log,
            };
        }
        match self.dispatch(&req, &mut log).await {
            Ok(body) => Reply {
                status: 200,
                body,
                content_type: xks_wire::CONTENT_TYPE,
                allow: None,
                log,
            },
            Err(e) => Reply::error(e, log),
        }
    }

    /// Whether `path` is an operation of a configured key store.
    fn is_api_path(&self, path: &str) -> bool {
        parse_api_path(path).is_ok_and(|r| self.routing.load().get(r.prefix).is_some())
    }

    async fn dispatch(
        &self,
        req: &Incoming<'_>,
        log: &mut RequestLog,
    ) -> Result<Vec<u8>, XksError> {
        let route = parse_api_path(req.path).map_err(|_| invalid_uri())?;
        log.operation = Some(route.operation);
        let store = Arc::clone(
            self.routing
                .load()
                .get(route.prefix)
                .ok_or_else(invalid_uri)?,
        );
        log.key_store = Some(Arc::clone(&store));
        if req.method != Method::POST {
            return Err(invalid_uri());
        }

        let verified = sigv4::verify(
            &sigv4::RequestParts {
                method: req.method.as_str(),
                path: req.path,
                query: req.query,
                headers: req.headers,
                authority: req.authority,
                body: req.body,
            },
            SystemTime::now(),
            xks_wire::SIGV4_SERVICE,
            self.settings.max_clock_skew,
            |region| region == store.region,
            |ak| store.credentials.get(ak),
        )
        .map_err(|e| {
            XksError::new(
                ErrorName::AuthenticationFailedException,
                "The request signature could not be verified.",
            )
            .with_detail(e.to_string())
        })?;
        log.access_key_id = Some(verified.access_key_id);

        if let Some(limiter) = &store.limiter {
            if limiter.check().is_err() {
                return Err(XksError::new(
                    ErrorName::ThrottlingException,
                    "The request rate for this key store is too high.",
                ));
            }
        }

        let deadline = Instant::now() + self.settings.backend_timeout;
        match route.operation {
            Operation::GetHealthStatus => self.health(req.body, &store, log).await,
            op => {
                let raw_key = route.key.unwrap_or_default();
                log.key_id = Some(raw_key.to_owned());
                match op {
                    Operation::GetKeyMetadata => {
                        let parsed: GetKeyMetadataRequest = parse_body(req.body)?;
                        let md = parsed.validate().map_err(XksError::validation)?;
                        log.record_metadata(md);
                        let key = self.authorize_key(&store, md, raw_key, log)?;
                        let info = timed(deadline, store.backend.key_info(&key)).await?;
                        to_json(&GetKeyMetadataResponse {
                            key_spec: xks_wire::KEY_SPEC_AES_256.to_owned(),
                            key_usage: info.usage.wire_names(),
                            key_status: if info.enabled {
                                xks_wire::key_status::ENABLED
                            } else {
                                xks_wire::key_status::DISABLED
                            }
                            .to_owned(),
                        })
                    }
                    Operation::Encrypt => {
                        let parsed: EncryptRequest = parse_body(req.body)?;
                        self.encrypt(&parsed, &store, raw_key, deadline, log).await
                    }
                    Operation::Decrypt => {
                        let parsed: DecryptRequest = parse_body(req.body)?;
                        self.decrypt(&parsed, &store, raw_key, deadline, log).await
                    }
                    Operation::GetHealthStatus => Err(invalid_uri()),
                }
            }
        }
    }

    /// Secondary authorization, then key id and key store membership.
    fn authorize_key(
        &self,
        store: &KeyStore,
        md: &RequestMetadata,
        raw_key: &str,
        log: &mut RequestLog,
    ) -> Result<ExternalKeyId, XksError> {
        match store.authorizer.decide(md, raw_key) {
            Decision::Allow { .. } => {}
            Decision::Deny { rule } => {
                let why = match rule {
                    Some(r) => format!("denied by authorization rule {r:?}"),
                    None => "no authorization rule allows this request".to_owned(),
                };
                log.detail = Some(why.clone());
                return Err(XksError::new(
                    ErrorName::AccessDeniedException,
                    "The operation is not authorized by the proxy's authorization policy.",
                )
                .with_detail(why));
            }
        }
        let key: ExternalKeyId = raw_key.parse().map_err(|_| key_not_found())?;
        if !store.allows_key(key.as_str()) {
            return Err(key_not_found().with_detail("key is not in this key store's allowed_keys"));
        }
        Ok(key)
    }

    async fn encrypt(
        &self,
        parsed: &EncryptRequest,
        store: &KeyStore,
        raw_key: &str,
        deadline: Instant,
        log: &mut RequestLog,
    ) -> Result<Vec<u8>, XksError> {
        let v = parsed.validate().map_err(XksError::validation)?;
        log.record_metadata(v.metadata);
        self.check_sizes(v.plaintext.len(), v.aad.len())?;
        let key = self.authorize_key(store, v.metadata, raw_key, log)?;
        let info = timed(deadline, store.backend.key_info(&key)).await?;
        check_usable(&info, true)?;
        if v.want_cdiv && !info.usage.decrypt {
            // A CDIV is KMS's assurance that a later Decrypt succeeds
            // (Appendix C includes a verifying decrypt): a key that may not
            // decrypt cannot give it.
            return Err(BackendError::InvalidKeyUsage.into());
        }

        let metadata = ciphertext::encode(&info.current_version).map_err(internal)?;
        let aad = gcm_aad(v.aad, &metadata).map_err(|e| XksError::validation(e.to_string()))?;
        let sealed = timed(
            deadline,
            store
                .backend
                .encrypt(&key, &info.current_version, v.plaintext, &aad),
        )
        .await?;
        if sealed.ciphertext.len() != v.plaintext.len()
            || !xks_wire::IV_LENS.contains(&sealed.iv.len())
        {
            return Err(internal("backend returned a malformed AES-GCM result"));
        }
        let cdiv = if v.want_cdiv {
            // Appendix C: hash first, then prove the result decrypts (the
            // key may decrypt: checked above).
            let cdiv = cdiv_sha256(
                v.aad,
                &metadata,
                &sealed.iv,
                &sealed.ciphertext,
                &sealed.tag,
            );
            let check = timed(
                deadline,
                store.backend.decrypt(
                    &key,
                    &info.current_version,
                    &sealed.ciphertext,
                    &sealed.iv,
                    &sealed.tag,
                    &aad,
                ),
            )
            .await
            .map_err(|e| internal(format!("verification decrypt failed: {:?}", e.detail)))?;
            if check.as_slice() != v.plaintext {
                return Err(internal("verification decrypt returned other plaintext"));
            }
            Some(Bytes64(cdiv.to_vec()))
        } else {
            None
        };
        to_json(&EncryptResponse {
            ciphertext: Bytes64(sealed.ciphertext),
            ciphertext_metadata: Some(Bytes64(metadata)),
            initialization_vector: Bytes64(sealed.iv),
            authentication_tag: Bytes64(sealed.tag.to_vec()),
            ciphertext_data_integrity_value: cdiv,
        })
    }

    async fn decrypt(
        &self,
        parsed: &DecryptRequest,
        store: &KeyStore,
        raw_key: &str,
        deadline: Instant,
        log: &mut RequestLog,
    ) -> Result<Vec<u8>, XksError> {
        let v = parsed.validate().map_err(XksError::validation)?;
        log.record_metadata(v.metadata);
        self.check_sizes(v.ciphertext.len(), v.aad.len())?;
        let key = self.authorize_key(store, v.metadata, raw_key, log)?;
        let info = timed(deadline, store.backend.key_info(&key)).await?;
        check_usable(&info, false)?;

        let invalid = |why: &'static str| XksError::from(BackendError::InvalidCiphertext(why));
        if v.ciphertext.is_empty() {
            return Err(invalid("empty ciphertext"));
        }
        if !xks_wire::IV_LENS.contains(&v.iv.len()) {
            return Err(invalid("IV must be 12 or 16 bytes"));
        }
        if v.tag.len() != xks_wire::TAG_LEN {
            return Err(invalid("authentication tag must be 16 bytes"));
        }
        let version = ciphertext::decode(v.ciphertext_metadata).map_err(invalid)?;
        let metadata = v.ciphertext_metadata.unwrap_or_default();
        let aad = gcm_aad(v.aad, metadata).map_err(|e| XksError::validation(e.to_string()))?;
        let plaintext = timed(
            deadline,
            store
                .backend
                .decrypt(&key, version, v.ciphertext, v.iv, v.tag, &aad),
        )
        .await?;
        let response = DecryptResponse {
            plaintext: SecretBytes64(plaintext),
        };
        let body = to_json(&response)?;
        Ok(body)
    }

    async fn health(
        &self,
        body: &[u8],
        store: &KeyStore,
        log: &mut RequestLog,
    ) -> Result<Vec<u8>, XksError> {
        // The GetHealthStatus section marks requestMetadata.kmsRequestId and
        // kmsOperation REQUIRED and AWS's test client expects
        // ValidationException without them (docs/conformance.md: why this
        // reading beats the error table's "all except GetHealthStatus").
        // Health is never subject to secondary authorization.
        let req: HealthRequest = parse_body(body)?;
        let md = req.validate().map_err(XksError::validation)?;
        log.record_metadata(md);
        let entries = store.health.current(self.settings.backend_timeout).await;
        if entries.is_empty()
            || entries
                .iter()
                .all(|e| e.status == HealthStatus::Unavailable)
        {
            let why = entries
                .iter()
                .filter_map(|e| e.detail.clone())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(XksError::new(
                ErrorName::InternalException,
                "No external key manager instance is available.",
            )
            .with_detail(why));
        }
        to_json(&HealthResponse {
            xks_proxy_fleet_size: self.settings.fleet_size,
            xks_proxy_vendor: self.settings.vendor.clone(),
            xks_proxy_model: self.settings.model.clone(),
            ekm_vendor: store.backend.vendor().to_owned(),
            ekm_fleet_details: entries
                .into_iter()
                .take(xks_wire::MAX_EKM_FLEET_ENTRIES)
                .map(|e| EkmFleetDetail {
                    id: e.id,
                    model: e.model,
                    health_status: e.status.as_str().to_owned(),
                })
                .collect(),
        })
    }

    fn check_sizes(&self, data: usize, aad: usize) -> Result<(), XksError> {
        let limits = [
            (
                data,
                self.settings.max_plaintext_bytes,
                "Plaintext and ciphertext",
            ),
            (
                aad,
                self.settings.max_aad_bytes,
                "additionalAuthenticatedData",
            ),
        ];
        for (len, max, what) in limits {
            if len > max {
                return Err(XksError::new(
                    ErrorName::UnsupportedOperationException,
                    format!("{what} larger than {max} bytes is not supported."),
                ));
            }
        }
        Ok(())
    }
}

fn internal(detail: impl Into<String>) -> XksError {
    XksError::new(
        ErrorName::InternalException,
        "The proxy failed to process the request.",
    )
    .with_detail(detail)
}

fn check_usable(info: &KeyInfo, encrypt: bool) -> Result<(), XksError> {
    if !info.enabled {
        return Err(BackendError::InvalidState("key is disabled".into()).into());
    }
    let allowed = if encrypt {
        info.usage.encrypt
    } else {
        info.usage.decrypt
    };
    if !allowed {
        return Err(BackendError::InvalidKeyUsage.into());
    }
    Ok(())
}

/// Runs a backend call against the request's backend deadline.
async fn timed<T>(
    deadline: Instant,
    f: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, XksError> {
    match tokio::time::timeout_at(deadline, f).await {
        Ok(r) => r.map_err(XksError::from),
        Err(_) => Err(BackendError::Timeout.into()),
    }
}
