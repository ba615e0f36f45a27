//! The catalogue: every case with its id, one-line description, the spec
//! clause it enforces, and how its request is built from the run's
//! context. Pure: building a request does no I/O, so the catalogue itself
//! is unit-tested (unique ids, each defect really is the one it claims).

use crate::check::{Ambiguity, EncryptExpect, Expect, Usage};
use crate::request::{AfterSign, Req, Signing};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use xks_wire::{
    key_status, EncryptResponse, ErrorName, GetKeyMetadataRequest, HealthRequest, Operation,
    RequestMetadata,
};
use zeroize::Zeroizing;

/// Spec clauses (XKS Proxy API specification v1.0.3 section names).
pub mod clause {
    pub const ROUTE_405: &str = "API operations: a GET at any of the four API URIs MUST be rejected with 405 (RFC 9110 §15.5.6: with Allow)";
    pub const URI_404: &str =
        "API operations (URI forms) + Error codes: 404 InvalidUriPathException";
    pub const SIGV4: &str = "Authentication + Appendix A: every request MUST carry a valid SigV4 signature (service kms-xks-proxy); else 401 AuthenticationFailedException";
    pub const SIGV4_SKEW: &str = "Appendix A, Task 4: requests more than 5 minutes in the past or future SHOULD fail authentication (401)";
    pub const SIGV4_HEADERS: &str = "Appendix A, Task 1: the canonical headers are those listed in SignedHeaders (KMS signs host;x-amz-date)";
    pub const SIGV4_PREFIX: &str = "API operations (optional path prefix isolates customers) + Authentication: a key store's credential is not valid on another prefix (401)";
    pub const REQUIRED: &str = "Operation request parameters: field is REQUIRED; Error codes: 400 ValidationException (ALL except GetHealthStatus)";
    pub const TYPES: &str =
        "Operation request syntax (JSON types); Error codes: 400 ValidationException";
    pub const ALGORITHM: &str = "Encrypt/Decrypt: encryptionAlgorithm MUST be AES_GCM; ciphertextDataIntegrityValueAlgorithm MUST be SHA_256; else 400 ValidationException";
    pub const BASE64: &str =
        "Background: standard Base64 (RFC 4648 §4); malformed input is 400 ValidationException";
    pub const METADATA_SIZE: &str =
        "Decrypt: ciphertextMetadata MUST NOT exceed 20 bytes; 400 ValidationException";
    pub const UNKNOWN_FIELDS: &str =
        "Appendix B: KMS may add requestMetadata fields over time (a proxy must not reject them)";
    pub const KMS_OPERATION: &str = "requestMetadata.kmsOperation: the proxy MUST NOT reject a kmsOperation other than those listed";
    pub const REQUEST_ID: &str =
        "requestMetadata.kmsRequestId: an opaque string; the proxy MUST NOT validate its structure";
    pub const ARN_LENGTH: &str =
        "API operations: the proxy MUST support ARN lengths of up to 2048 characters";
    pub const OPTIONAL_FIELDS: &str =
        "requestMetadata: awsSourceVpc, awsSourceVpce and kmsViaService are OPTIONAL fields";
    pub const KEY_ARN_OPTIONAL: &str =
        "GetKeyMetadata: kmsKeyArn is OPTIONAL (absent for CreateKey)";
    pub const KEY_NOT_FOUND: &str = "Error codes: 404 KeyNotFoundException (ALL except GetHealthStatus); externalKeyId: up to 128 of [A-Za-z0-9._-]";
    pub const KEY_USAGE: &str =
        "Error codes: 400 InvalidKeyUsageException (the key does not support the operation)";
    pub const KEY_STATE: &str = "GetKeyMetadata keyStatus (ENABLED/DISABLED) + Error codes: 400 InvalidStateException (key disabled)";
    pub const METADATA: &str = "GetKeyMetadata response: keySpec AES_256; keyUsage ENCRYPT and DECRYPT (upper case) as supported, at most ten; keyStatus";
    pub const ROUND_TRIP: &str = "Encrypt/Decrypt: plaintext up to 4300 bytes and AAD up to 8192 bytes MUST be supported; ciphertext length = plaintext length; IV 12 or 16 bytes; tag 16 bytes; ciphertextMetadata <= 20 bytes; CDIV per Appendix C; decrypt returns the plaintext";
    pub const CDIV_ONLY_WHEN_ASKED: &str = "Encrypt response: ciphertextDataIntegrityValue is included when the request has ciphertextDataIntegrityValueAlgorithm (issue 4: and only then)";
    pub const FRESH_IV: &str = "Encrypt: AES-GCM with an IV generated per encryption (NIST SP 800-38D §8: an IV never repeats under one key)";
    pub const TAMPER: &str = "Decrypt + Error codes: 400 InvalidCiphertextException for corrupted ciphertext, IV, AAD or tag";
    pub const TAMPER_METADATA: &str = "Encrypt/Decrypt: ciphertextMetadata is bound into the AES-GCM AAD with explicit lengths; modified metadata MUST be detected (400 InvalidCiphertextException)";
    pub const HEALTH: &str = "GetHealthStatus: 200 with xksProxyFleetSize > 0, vendor/model fields, 1-10 ekmFleetDetails with ACTIVE/DEGRADED/UNAVAILABLE; any kmsOperation accepted";
    pub const HEALTH_AUTHZ: &str =
        "GetHealthStatus: MUST be excluded from secondary authorization (never 403)";
    pub const HEALTH_VALIDATION: &str =
        "Error codes: ValidationException applies to ALL except GetHealthStatus";
    pub const MTLS: &str = "Authentication: with mTLS the proxy MUST terminate the TLS handshake if the client certificate has a different subject name or chains to a different CA (or is invalid)";
    pub const MTLS_OK: &str = "Authentication: a client certificate with the configured subject, chained to the configured CA, is accepted";
    pub const KMS_CLIENT: &str = "GetKeyMetadata/Encrypt/Decrypt/GetHealthStatus KMS considerations: KMS times out after 250 ms and refuses malformed responses";
    pub const CDIV_USAGE: &str = "Encrypt + Appendix C: a CDIV is KMS's assurance that a later Decrypt will succeed (the proxy decrypts to verify; a failed decrypt returns an error): a key that may not decrypt gets 400 InvalidKeyUsageException";
    pub const CDIV_LITERAL: &str = "Encrypt response: ciphertextDataIntegrityValue MUST be included whenever the request includes ciphertextDataIntegrityValueAlgorithm";
    pub const CDIV_KEY: &str = "Encrypt + Error codes: a CDIV request changes nothing about key checks (404 KeyNotFoundException, 400 InvalidKeyUsageException, 400 InvalidStateException)";
    pub const HEALTH_REQUIRED: &str = "GetHealthStatus request: requestMetadata with kmsRequestId and kmsOperation is REQUIRED (AWS's test client and sample proxy: 400 ValidationException)";
    pub const KMS_OPERATION_AUTHZ: &str = "requestMetadata.kmsOperation: a proxy MUST NOT reject an unlisted kmsOperation as invalid; with secondary authorization a new KMS operation (BulkEncrypt, say) may fail authorization (403 AccessDeniedException)";
    pub const PRINCIPAL: &str = "requestMetadata.awsPrincipalArn: an IAM principal ARN, a service principal ending in amazonaws.com or \"AWS Internal\" (JSON strings are Unicode, RFC 8259); secondary authorization may deny (403)";
    pub const LIMITS: &str = "Encrypt/Decrypt: 4300-byte plaintext and 8192-byte AAD MUST be supported; a larger input may be refused (400 ValidationException or 501 UnsupportedOperationException), never answered 500 or cut off";
    pub const KEY_ID_FORM: &str = "API operations: an externalKeyId is at most 128 characters of A-Z a-z 0-9 . _ -; anything else names no key (404 KeyNotFoundException or InvalidUriPathException, or 400 ValidationException)";
    pub const KEY_DESTROYED: &str = "Error codes: a key the key manager no longer has is 404 KeyNotFoundException (400 InvalidStateException where destroyed keys are kept)";
    pub const THROTTLING: &str = "API operations: a proxy MAY implement request quotas per path prefix and respond with 429 ThrottlingException when they are exceeded; service resumes once the rate drops";
    pub const BACKEND_FAULT: &str = "Error codes: 503 DependencyTimeoutException when the external key manager does not answer in time (KMS gives up after 250 ms)";
    pub const BACKEND_RECOVERY: &str = "GetHealthStatus / KMS considerations: once the external key manager is back, requests succeed again without restarting the proxy";
}

/// Case groups, in running order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    Routing,
    Sigv4,
    Validation,
    Keys,
    Metadata,
    Crypto,
    Health,
    Mtls,
    KmsClient,
    RequestMetadata,
    Limits,
    Cdiv,
    Throttling,
    BackendFault,
}

impl Group {
    /// Running order: the disruptive groups last, throttling at the very end
    /// (its burst leaves the proxy's rate limiter empty).
    pub const ALL: [Group; 14] = [
        Group::Routing,
        Group::Sigv4,
        Group::Validation,
        Group::RequestMetadata,
        Group::Limits,
        Group::Keys,
        Group::Metadata,
        Group::Crypto,
        Group::Cdiv,
        Group::Health,
        Group::Mtls,
        Group::KmsClient,
        Group::BackendFault,
        Group::Throttling,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Routing => "routing",
            Group::Sigv4 => "sigv4",
            Group::Validation => "validation",
            Group::Keys => "keys",
            Group::Metadata => "metadata",
            Group::Crypto => "crypto",
            Group::Health => "health",
            Group::Mtls => "mtls",
            Group::KmsClient => "kms-client",
            Group::RequestMetadata => "request-metadata",
            Group::Limits => "limits",
            Group::Cdiv => "cdiv",
            Group::Throttling => "throttling",
            Group::BackendFault => "backend-fault",
        }
    }

    /// The heading of the group in reports.
    pub fn title(self) -> &'static str {
        match self {
            Group::Routing => "Routing",
            Group::Sigv4 => "SigV4 authentication",
            Group::Validation => "Request validation",
            Group::Keys => "Keys: usage and state",
            Group::Metadata => "GetKeyMetadata",
            Group::Crypto => "Encrypt / Decrypt",
            Group::Health => "GetHealthStatus",
            Group::Mtls => "Mutual TLS",
            Group::KmsClient => "Through the KMS-side client",
            Group::RequestMetadata => "requestMetadata edge cases",
            Group::Limits => "Payload limits",
            Group::Cdiv => "CDIV per key usage",
            Group::Throttling => "Throttling",
            Group::BackendFault => "Backend faults",
        }
    }
}

/// The external keys the suite may use.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// AES-256, ENCRYPT and DECRYPT, enabled. Required.
    pub main: String,
    pub encrypt_only: Option<String>,
    pub decrypt_only: Option<String>,
    pub no_usage: Option<String>,
    pub disabled: Option<String>,
    /// A key the key manager has destroyed (or never had under that id
    /// after deletion).
    pub destroyed: Option<String>,
}

/// A ciphertext made at the start of the run, for the Decrypt cases.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub key: String,
    pub plaintext: Zeroizing<Vec<u8>>,
    pub aad: Option<Vec<u8>>,
    pub response: EncryptResponse,
}

/// The fixtures a run prepares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureId {
    /// Main key, with AAD.
    MainWithAad,
    /// Main key, without AAD.
    MainNoAad,
    /// Encrypt-only key, with AAD.
    EncryptOnly,
}

impl FixtureId {
    pub const ALL: [FixtureId; 3] = [
        FixtureId::MainWithAad,
        FixtureId::MainNoAad,
        FixtureId::EncryptOnly,
    ];
}

/// What a run knows when it builds requests.
pub struct Ctx {
    pub uri_path: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub keys: Keys,
    /// Another key store's URI path on the same proxy.
    pub second_uri_path: Option<String>,
    pub principal_arn: String,
    pub kms_key_arn: String,
    /// Filled by the runner before the cases run.
    pub fixtures: Vec<(FixtureId, Result<Fixture, String>)>,
    run_id: u64,
    counter: AtomicU64,
}

/// Why a case did not run its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    /// An input it needs was not given (reported as SKIP with this reason).
    Skip(String),
    /// A step it depends on failed (reported as FAIL).
    Setup(String),
}

/// One request and what must come back.
#[derive(Debug, Clone)]
pub struct Step {
    pub req: Req,
    pub expect: Expect,
}

pub type Builder = Box<dyn Fn(&Ctx) -> Result<Step, NotRun> + Send + Sync>;

/// The client certificate a handshake case offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertChoice {
    None,
    SelfSigned,
    UntrustedCa,
    Expired,
    WrongSubject,
    Trusted,
}

impl CertChoice {
    /// Whether the certificate must be minted by the proxy's client CA.
    pub fn needs_ca(self) -> bool {
        matches!(
            self,
            CertChoice::Expired | CertChoice::WrongSubject | CertChoice::Trusted
        )
    }
}

/// One step of the backend-fault group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStep {
    /// With the key manager stopped: Encrypt on the main key.
    Encrypt,
    /// With the key manager stopped: Decrypt of a fixture.
    Decrypt,
    /// With the key manager stopped: GetKeyMetadata.
    Metadata,
    /// Resume the key manager; requests succeed again.
    Recover,
}

/// A call through the KMS-side client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsOp {
    Health,
    KeyMetadata,
    RoundTrip,
}

/// How a case runs.
pub enum Plan {
    /// One request, judged by [`crate::check::judge`].
    Request(Builder),
    /// Encrypt (with CDIV) then Decrypt, main key.
    RoundTrip { size: usize, aad_len: Option<usize> },
    /// Two encryptions of the same plaintext.
    FreshIv,
    /// A TLS connection offering a certificate; `refused` = must fail.
    Handshake { cert: CertChoice, refused: bool },
    /// A call through `xks_client::XksClient`.
    KmsClient(KmsOp),
    /// A burst above the proxy's rate (`recover`: then back under it).
    Throttle { recover: bool },
    /// A request while the vendor's key manager is stopped, or recovery.
    BackendFault(FaultStep),
}

pub struct Case {
    pub id: String,
    pub group: Group,
    pub description: String,
    pub clause: &'static str,
    pub plan: Plan,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Case({})", self.id)
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("uri_path", &self.uri_path)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub fn new(
        uri_path: String,
        region: String,
        access_key_id: String,
        secret_access_key: Zeroizing<String>,
        keys: Keys,
        run_id: u64,
    ) -> Self {
        Ctx {
            kms_key_arn: format!(
                "arn:aws:kms:{region}:111122223333:key/0c0f0a0e-0000-4000-8000-000000000001"
            ),
            principal_arn: "arn:aws:iam::111122223333:role/xks-conformance".into(),
            uri_path,
            region,
            access_key_id,
            secret_access_key,
            keys,
            second_uri_path: None,
            fixtures: Vec::new(),
            run_id,
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh UUID-shaped kmsRequestId.
    pub fn request_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let r = self.run_id;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            (r & 0xfff) as u16,
            (n >> 48) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }

    pub fn metadata(&self, kms_operation: &str) -> RequestMetadata {
        RequestMetadata {
            aws_principal_arn: Some(self.principal_arn.clone()),
            kms_key_arn: Some(self.kms_key_arn.clone()),
            kms_operation: Some(kms_operation.into()),
            kms_request_id: Some(self.request_id()),
            ..Default::default()
        }
    }

    pub fn health_metadata(&self, kms_operation: &str) -> RequestMetadata {
        RequestMetadata {
            kms_operation: Some(kms_operation.into()),
            kms_request_id: Some(self.request_id()),
            ..Default::default()
        }
    }

    pub fn key_path(&self, key: &str, op: Operation) -> String {
        format!(
            "{}/keys/{key}/{}",
            self.uri_path,
            op.key_suffix().unwrap_or("metadata")
        )
    }

    pub fn health_path(&self) -> String {
        format!("{}/health", self.uri_path)
    }

    pub fn fixture(&self, id: FixtureId) -> Result<&Fixture, NotRun> {
        match self.fixtures.iter().find(|(f, _)| *f == id) {
            Some((_, Ok(f))) => Ok(f),
            Some((_, Err(e))) => Err(NotRun::Setup(e.clone())),
            None => match id {
                FixtureId::EncryptOnly => Err(NotRun::Skip(KeyRole::EncryptOnly.missing())),
                _ => Err(NotRun::Setup("the fixture was not prepared".into())),
            },
        }
    }

    pub fn key(&self, role: KeyRole) -> Result<String, NotRun> {
        let k = &self.keys;
        let found = match role {
            KeyRole::Main => Some(k.main.clone()),
            KeyRole::EncryptOnly => k.encrypt_only.clone(),
            KeyRole::DecryptOnly => k.decrypt_only.clone(),
            KeyRole::NoUsage => k.no_usage.clone(),
            KeyRole::Disabled => k.disabled.clone(),
            KeyRole::Destroyed => k.destroyed.clone(),
            KeyRole::Unknown => Some("xks-conformance-no-such-key-0c0f0a0e".into()),
            KeyRole::UnknownLong => Some(unknown_long_key_id()),
        };
        found.ok_or_else(|| NotRun::Skip(role.missing()))
    }
}

/// A 128-character key id using every punctuation mark ids may hold.
pub fn unknown_long_key_id() -> String {
    let mut s = "xks-conformance.unknown_key".to_owned();
    while s.len() < 128 {
        s.push_str("-Z9._");
    }
    s.truncate(128);
    s
}

/// Which key a case addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Main,
    EncryptOnly,
    DecryptOnly,
    NoUsage,
    Disabled,
    Destroyed,
    Unknown,
    UnknownLong,
}

impl KeyRole {
    pub fn flag(self) -> &'static str {
        match self {
            KeyRole::EncryptOnly => "--encrypt-only-key-id",
            KeyRole::DecryptOnly => "--decrypt-only-key-id",
            KeyRole::NoUsage => "--no-usage-key-id",
            KeyRole::Disabled => "--disabled-key-id",
            KeyRole::Destroyed => "--destroyed-key-id",
            _ => "--key-id",
        }
    }

    fn missing(self) -> String {
        format!("needs {} (no such key was given)", self.flag())
    }
}

// ---------------------------------------------------------------------------
// Request bodies (built with xks-client's request builders and xks-wire types).

const PAYLOAD: &[u8] = b"xks-conformance payload";
const AAD: &[u8] = b"project=nile,department=marketing";

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn to_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// An Encrypt body as KMS sends it.
pub fn encrypt_value(ctx: &Ctx, plaintext: &[u8], aad: Option<&[u8]>, cdiv: bool) -> Value {
    to_value(&xks_client::encrypt_request(
        ctx.metadata("Encrypt"),
        plaintext,
        aad,
        cdiv,
    ))
}

/// A Decrypt body for a fixture, as KMS sends it.
pub fn decrypt_value(ctx: &Ctx, f: &Fixture) -> Value {
    let r = &f.response;
    to_value(&xks_client::decrypt_request(
        ctx.metadata("Decrypt"),
        &r.ciphertext.0,
        r.ciphertext_metadata.as_ref().map(|m| m.0.as_slice()),
        &r.initialization_vector.0,
        &r.authentication_tag.0,
        f.aad.as_deref(),
    ))
}

pub fn metadata_value(ctx: &Ctx, kms_operation: &str) -> Value {
    to_value(&GetKeyMetadataRequest {
        request_metadata: Some(ctx.metadata(kms_operation)),
    })
}

pub fn health_value(ctx: &Ctx, kms_operation: &str) -> Value {
    to_value(&HealthRequest {
        request_metadata: Some(ctx.health_metadata(kms_operation)),
    })
}

/// The EncryptExpect of an Encrypt body (what its answer must satisfy).
pub fn encrypt_expect(v: &Value) -> Result<EncryptExpect, NotRun> {
    let field = |name: &str| -> Result<Option<Vec<u8>>, NotRun> {
        match v.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => xks_wire::b64::decode(s)
                .map(Some)
                .map_err(|_| NotRun::Setup(format!("{name} is not Base64"))),
            Some(_) => Err(NotRun::Setup(format!("{name} is not a string"))),
        }
    };
    Ok(EncryptExpect {
        plaintext_len: field("plaintext")?.map_or(0, |p| p.len()),
        aad: field("additionalAuthenticatedData")?.unwrap_or_default(),
        cdiv_requested: v.get("ciphertextDataIntegrityValueAlgorithm").is_some(),
    })
}

/// Deterministic plaintext of `n` bytes (not all equal, so that a
/// misplaced byte shows).
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The Encrypt request of a round trip and its expectation.
pub fn round_trip_encrypt(
    ctx: &Ctx,
    size: usize,
    aad_len: Option<usize>,
) -> (Req, EncryptExpect, Zeroizing<Vec<u8>>, Option<Vec<u8>>) {
    let plaintext = Zeroizing::new(pattern(size, 7));
    let aad = aad_len.map(|n| pattern(n, 101));
    let v = encrypt_value(ctx, &plaintext, aad.as_deref(), true);
    let exp = EncryptExpect {
        plaintext_len: size,
        aad: aad.clone().unwrap_or_default(),
        cdiv_requested: true,
    };
    let req = Req::post(
        ctx.key_path(&ctx.keys.main, Operation::Encrypt),
        to_body(&v),
    );
    (req, exp, plaintext, aad)
}

/// The Decrypt request for an Encrypt answer.
pub fn round_trip_decrypt(ctx: &Ctx, key: &str, r: &EncryptResponse, aad: Option<&[u8]>) -> Req {
    let v = to_value(&xks_client::decrypt_request(
        ctx.metadata("Decrypt"),
        &r.ciphertext.0,
        r.ciphertext_metadata.as_ref().map(|m| m.0.as_slice()),
        &r.initialization_vector.0,
        &r.authentication_tag.0,
        aad,
    ));
    Req::post(ctx.key_path(key, Operation::Decrypt), to_body(&v))
}

/// The Encrypt request of a fixture.
pub fn fixture_encrypt(ctx: &Ctx, id: FixtureId) -> Option<(Req, EncryptExpect, Fixture)> {
    let (key, aad) = match id {
        FixtureId::MainWithAad => (ctx.keys.main.clone(), Some(AAD.to_vec())),
        FixtureId::MainNoAad => (ctx.keys.main.clone(), None),
        FixtureId::EncryptOnly => (ctx.keys.encrypt_only.clone()?, Some(AAD.to_vec())),
    };
    let plaintext = Zeroizing::new(b"Hello World!".to_vec());
    // A CDIV promises a later Decrypt succeeds: never asked of a key that
    // may not decrypt (see the cdiv group).
    let cdiv = id != FixtureId::EncryptOnly;
    let v = encrypt_value(ctx, &plaintext, aad.as_deref(), cdiv);
    let exp = EncryptExpect {
        plaintext_len: plaintext.len(),
        aad: aad.clone().unwrap_or_default(),
        cdiv_requested: cdiv,
    };
    let req = Req::post(ctx.key_path(&key, Operation::Encrypt), to_body(&v));
    let partial = Fixture {
        key,
        plaintext,
        aad,
        response: EncryptResponse {
            ciphertext: Default::default(),
            ciphertext_metadata: None,
            initialization_vector: Default::default(),
            authentication_tag: Default::default(),
            ciphertext_data_integrity_value: None,
        },
    };
    Some((req, exp, partial))
}

// ---------------------------------------------------------------------------
// Body mutations.

type Mutate = Box<dyn Fn(&mut Value) -> Result<(), NotRun> + Send + Sync>;

fn keep() -> Mutate {
    Box::new(|_| Ok(()))
}

fn remove(field: &'static str) -> Mutate {
    Box::new(move |v| {
        if let Some(o) = v.as_object_mut() {
            o.remove(field);
        }
        Ok(())
    })
}

fn set(field: &'static str, value: Value) -> Mutate {
    Box::new(move |v| {
        v[field] = value.clone();
        Ok(())
    })
}

fn md_remove(field: &'static str) -> Mutate {
    Box::new(move |v| {
        if let Some(o) = v.get_mut("requestMetadata").and_then(Value::as_object_mut) {
            o.remove(field);
        }
        Ok(())
    })
}

fn md_set(field: &'static str, value: Value) -> Mutate {
    Box::new(move |v| {
        v["requestMetadata"][field] = value.clone();
        Ok(())
    })
}

fn bytes_of(v: &Value, field: &str) -> Result<Vec<u8>, NotRun> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| xks_wire::b64::decode(s).ok())
        .ok_or_else(|| NotRun::Setup(format!("the fixture has no {field}")))
}

/// Changes the Base64 field with `f` over its bytes.
fn edit(field: &'static str, f: fn(&mut Vec<u8>)) -> Mutate {
    Box::new(move |v| {
        let mut b = bytes_of(v, field)?;
        f(&mut b);
        v[field] = json!(xks_wire::b64::encode(&b));
        Ok(())
    })
}

fn flip_first(b: &mut [u8]) {
    if let Some(x) = b.first_mut() {
        *x ^= 0x01;
    }
}

fn flip_last(b: &mut [u8]) {
    if let Some(x) = b.last_mut() {
        *x ^= 0x80;
    }
}

const NO_METADATA: &str =
    "the proxy returns no ciphertextMetadata, so there is none to tamper with";

fn needs_metadata(v: &Value) -> Result<(), NotRun> {
    if v.get("ciphertextMetadata").is_some() {
        Ok(())
    } else {
        Err(NotRun::Skip(NO_METADATA.into()))
    }
}

// ---------------------------------------------------------------------------
// Case constructors.

/// What a variant must answer.
#[derive(Debug, Clone, Copy)]
enum Want {
    Error(ErrorName),
    /// The operation's success answer for the (mutated) request.
    Ok,
    /// A GetKeyMetadata answer with this status and usage.
    Metadata(&'static str, Usage),
    /// The success answer, or this error (the spec allows both).
    OkOr(ErrorName),
    /// Any of these errors.
    AnyError(&'static [ErrorName]),
    /// AWS's tools want this error; the conflicting spec text (the clause)
    /// wants the success answer.
    AwsError(ErrorName, &'static str),
}

impl Want {
    /// The expectation, given the operation's success expectation.
    fn expect(self, ok: impl FnOnce() -> Result<Expect, NotRun>) -> Result<Expect, NotRun> {
        Ok(match self {
            Want::Error(e) => Expect::Error(e),
            Want::Ok | Want::Metadata(..) => ok()?,
            Want::OkOr(e) => Expect::OneOf(vec![ok()?, Expect::Error(e)]),
            Want::AnyError(all) => Expect::OneOf(all.iter().map(|e| Expect::Error(*e)).collect()),
            Want::AwsError(e, clause) => Expect::Ambiguous(Box::new(Ambiguity {
                aws_tools: Expect::Error(e),
                spec_text: ok()?,
                clause,
            })),
        })
    }
}

const VALIDATION: Want = Want::Error(ErrorName::ValidationException);

fn case(
    id: impl Into<String>,
    group: Group,
    description: impl Into<String>,
    clause: &'static str,
    plan: Plan,
) -> Case {
    Case {
        id: id.into(),
        group,
        description: description.into(),
        clause,
        plan,
    }
}

fn request(
    id: impl Into<String>,
    group: Group,
    description: impl Into<String>,
    clause: &'static str,
    build: impl Fn(&Ctx) -> Result<Step, NotRun> + Send + Sync + 'static,
) -> Case {
    case(
        id,
        group,
        description,
        clause,
        Plan::Request(Box::new(build)),
    )
}

/// An Encrypt on `role`'s key, body changed by `mutate`.
fn encrypt_variant(
    id: impl Into<String>,
    group: Group,
    description: impl Into<String>,
    clause: &'static str,
    role: KeyRole,
    mutate: Mutate,
    want: Want,
) -> Case {
    request(id, group, description, clause, move |ctx| {
        let key = ctx.key(role)?;
        let mut v = encrypt_value(ctx, PAYLOAD, Some(b"xks-conformance aad"), true);
        mutate(&mut v)?;
        let expect = want.expect(|| Ok(Expect::Encrypt(encrypt_expect(&v)?)))?;
        Ok(Step {
            req: Req::post(ctx.key_path(&key, Operation::Encrypt), to_body(&v)),
            expect,
        })
    })
}

/// A Decrypt of `fixture` on `role`'s key, body changed by `mutate`.
#[allow(clippy::too_many_arguments)]
fn decrypt_variant(
    id: impl Into<String>,
    group: Group,
    description: impl Into<String>,
    clause: &'static str,
    role: KeyRole,
    fixture: FixtureId,
    mutate: Mutate,
    want: Want,
) -> Case {
    request(id, group, description, clause, move |ctx| {
        let key = ctx.key(role)?;
        let f = ctx.fixture(fixture)?;
        let mut v = decrypt_value(ctx, f);
        mutate(&mut v)?;
        let expect = want.expect(|| Ok(Expect::Decrypt(f.plaintext.clone())))?;
        Ok(Step {
            req: Req::post(ctx.key_path(&key, Operation::Decrypt), to_body(&v)),
            expect,
        })
    })
}

/// A GetKeyMetadata on `role`'s key, body changed by `mutate`.
fn metadata_variant(
    id: impl Into<String>,
    group: Group,
    description: impl Into<String>,
    clause: &'static str,
    role: KeyRole,
    mutate: Mutate,
    want: Want,
) -> Case {
    request(id, group, description, clause, move |ctx| {
        let key = ctx.key(role)?;
        let mut v = metadata_value(ctx, "DescribeKey");
        mutate(&mut v)?;
        let expect = match want {
            Want::Metadata(status, usage) => Expect::KeyMetadata { status, usage },
            w => w.expect(|| {
                Ok(Expect::KeyMetadata {
                    status: key_status::ENABLED,
                    usage: Usage::Any,
                })
            })?,
        };
        Ok(Step {
            req: Req::post(ctx.key_path(&key, Operation::GetKeyMetadata), to_body(&v)),
            expect,
        })
    })
}

/// id, description, clause, how to sign.
type SigningCase = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Ctx) -> Signing,
);

/// GetKeyMetadata on the main key with special signing, for SigV4 cases.
fn sigv4_case(
    id: &str,
    description: &str,
    clause: &'static str,
    signing: fn(&Ctx) -> Signing,
    want: Want,
) -> Case {
    request(id, Group::Sigv4, description, clause, move |ctx| {
        let v = metadata_value(ctx, "DescribeKey");
        let expect = match want {
            Want::Error(e) => Expect::Error(e),
            _ => Expect::KeyMetadata {
                status: key_status::ENABLED,
                usage: Usage::Any,
            },
        };
        Ok(Step {
            req: Req::post(
                ctx.key_path(&ctx.keys.main, Operation::GetKeyMetadata),
                to_body(&v),
            )
            .with(signing(ctx)),
            expect,
        })
    })
}

/// An access key id that is well-formed but not the target's.
pub fn unknown_access_key_id(own: &str) -> String {
    let candidate = "XKSCONFORMANCEUNKNOWNKEYA";
    if own == candidate {
        "XKSCONFORMANCEUNKNOWNKEYB".into()
    } else {
        candidate.into()
    }
}

/// The target's secret with its last character changed.
pub fn wrong_secret(own: &str) -> String {
    let mut s = own.to_owned();
    let last = s.pop().unwrap_or('A');
    s.push(if last == 'A' { 'B' } else { 'A' });
    s
}

/// A region other than the target's.
pub fn other_region(own: &str) -> String {
    if own == "us-west-2" {
        "eu-west-1".into()
    } else {
        "us-west-2".into()
    }
}

/// A prefix the proxy cannot serve: the target's path behind an unknown
/// first segment.
pub fn unknown_prefix_path(uri_path: &str) -> String {
    format!("/xks-conformance-unknown-prefix{uri_path}/health")
}

const UNAUTH: Want = Want::Error(ErrorName::AuthenticationFailedException);

fn camel_to_kebab(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every case, in running order.
pub fn catalogue() -> Vec<Case> {
    let mut cases = Vec::new();
    routing(&mut cases);
    sigv4(&mut cases);
    validation(&mut cases);
    request_metadata(&mut cases);
    limits(&mut cases);
    keys(&mut cases);
    metadata(&mut cases);
    crypto(&mut cases);
    cdiv(&mut cases);
    health(&mut cases);
    mtls(&mut cases);
    kms_client(&mut cases);
    backend_fault(&mut cases);
    // Last: the burst leaves the proxy's rate limiter empty, and a case run
    // after it could meet 429 instead of what it checks.
    throttling(&mut cases);
    cases
}

fn routing(cases: &mut Vec<Case>) {
    for op in [
        Operation::GetHealthStatus,
        Operation::GetKeyMetadata,
        Operation::Encrypt,
        Operation::Decrypt,
    ] {
        let name = op.key_suffix().unwrap_or("health");
        cases.push(request(
            format!("routing.get-{name}"),
            Group::Routing,
            format!("a signed GET on the {op} URI is refused with 405 and Allow: POST"),
            clause::ROUTE_405,
            move |ctx| {
                let path = match op {
                    Operation::GetHealthStatus => ctx.health_path(),
                    _ => ctx.key_path(&ctx.keys.main, op),
                };
                Ok(Step {
                    req: Req {
                        method: "GET",
                        ..Req::post(path, Vec::new())
                    },
                    expect: Expect::MethodNotAllowed,
                })
            },
        ));
    }
    let not_found = Expect::Error(ErrorName::InvalidUriPathException);
    let e = not_found.clone();
    cases.push(request(
        "routing.unknown-operation",
        Group::Routing,
        "POST {uri}/keys/{key}/sign (an operation v1 does not have) is 404 InvalidUriPathException",
        clause::URI_404,
        move |ctx| {
            Ok(Step {
                req: Req::post(
                    format!("{}/keys/{}/sign", ctx.uri_path, ctx.keys.main),
                    to_body(&metadata_value(ctx, "DescribeKey")),
                ),
                expect: e.clone(),
            })
        },
    ));
    let e = not_found.clone();
    cases.push(request(
        "routing.unknown-prefix",
        Group::Routing,
        "a signed health request under an unknown path prefix is 404 InvalidUriPathException",
        clause::URI_404,
        move |ctx| {
            Ok(Step {
                req: Req::post(
                    unknown_prefix_path(&ctx.uri_path),
                    to_body(&health_value(ctx, "KmsHealthCheck")),
                ),
                expect: e.clone(),
            })
        },
    ));
    let e = not_found.clone();
    cases.push(request(
        "routing.trailing-slash-health",
        Group::Routing,
        "POST {uri}/health/ (trailing slash) is 404 InvalidUriPathException",
        clause::URI_404,
        move |ctx| {
            Ok(Step {
                req: Req::post(
                    format!("{}/", ctx.health_path()),
                    to_body(&health_value(ctx, "KmsHealthCheck")),
                ),
                expect: e.clone(),
            })
        },
    ));
    cases.push(request(
        "routing.trailing-slash-encrypt",
        Group::Routing,
        "POST {uri}/keys/{key}/encrypt/ (trailing slash) is 404 InvalidUriPathException",
        clause::URI_404,
        move |ctx| {
            Ok(Step {
                req: Req::post(
                    format!("{}/", ctx.key_path(&ctx.keys.main, Operation::Encrypt)),
                    to_body(&encrypt_value(ctx, PAYLOAD, None, false)),
                ),
                expect: not_found.clone(),
            })
        },
    ));
}

fn sigv4(cases: &mut Vec<Case>) {
    cases.push(sigv4_case(
        "sigv4.kms-signed-headers",
        "GetKeyMetadata signed over host;x-amz-date (as KMS signs) is accepted",
        clause::SIGV4_HEADERS,
        |_| Signing::default(),
        Want::Ok,
    ));
    cases.push(sigv4_case(
        "sigv4.content-type-signed",
        "GetKeyMetadata signed over content-type;host;x-amz-date (as curl signs) is accepted",
        clause::SIGV4_HEADERS,
        |_| Signing {
            extra_signed: vec![("content-type".into(), xks_wire::CONTENT_TYPE.into())],
            ..Default::default()
        },
        Want::Ok,
    ));
    let table: [SigningCase; 11] = [
        (
            "sigv4.no-authorization",
            "a request without an Authorization header is 401",
            clause::SIGV4,
            |_| Signing {
                after: vec![AfterSign::RemoveHeader("authorization")],
                ..Default::default()
            },
        ),
        (
            "sigv4.no-x-amz-date",
            "a signed request without its X-Amz-Date header is 401",
            clause::SIGV4,
            |_| Signing {
                after: vec![AfterSign::RemoveHeader("x-amz-date")],
                ..Default::default()
            },
        ),
        (
            "sigv4.unknown-access-key",
            "a signature by an access key id the proxy does not know is 401",
            clause::SIGV4,
            |ctx| Signing {
                access_key_id: Some(unknown_access_key_id(&ctx.access_key_id)),
                ..Default::default()
            },
        ),
        (
            "sigv4.wrong-secret",
            "the right access key id with a signature made with another secret is 401",
            clause::SIGV4,
            |ctx| Signing {
                secret_access_key: Some(wrong_secret(&ctx.secret_access_key)),
                ..Default::default()
            },
        ),
        (
            "sigv4.wrong-service",
            "a signature for service kms instead of kms-xks-proxy is 401",
            clause::SIGV4,
            |_| Signing {
                service: Some("kms".into()),
                ..Default::default()
            },
        ),
        (
            "sigv4.wrong-region",
            "a signature whose credential scope names another region is 401",
            clause::SIGV4,
            |ctx| Signing {
                region: Some(other_region(&ctx.region)),
                ..Default::default()
            },
        ),
        (
            "sigv4.scope-date-mismatch",
            "a credential scope date one day before X-Amz-Date is 401",
            clause::SIGV4,
            |_| Signing {
                after: vec![AfterSign::ScopeDateDaysBack(1)],
                ..Default::default()
            },
        ),
        (
            "sigv4.too-old",
            "a request signed 6 minutes in the past is 401",
            clause::SIGV4_SKEW,
            |_| Signing {
                skew_secs: -360,
                ..Default::default()
            },
        ),
        (
            "sigv4.too-new",
            "a request signed 6 minutes in the future is 401",
            clause::SIGV4_SKEW,
            |_| Signing {
                skew_secs: 360,
                ..Default::default()
            },
        ),
        (
            "sigv4.body-changed",
            "a body changed after signing (one trailing space) is 401",
            clause::SIGV4,
            |_| Signing {
                after: vec![AfterSign::AppendBody(b" ".to_vec())],
                ..Default::default()
            },
        ),
        (
            "sigv4.signed-header-altered",
            "a signed header (x-xks-conformance) altered after signing is 401",
            clause::SIGV4,
            |_| Signing {
                extra_signed: vec![("x-xks-conformance".into(), "signed".into())],
                after: vec![AfterSign::SetHeader("x-xks-conformance", "altered".into())],
                ..Default::default()
            },
        ),
    ];
    for (id, description, clause, signing) in table {
        cases.push(sigv4_case(id, description, clause, signing, UNAUTH));
    }
    cases.push(request(
        "sigv4.health-wrong-secret",
        Group::Sigv4,
        "GetHealthStatus is authenticated too: a wrong-secret signature is 401",
        clause::SIGV4,
        |ctx| {
            Ok(Step {
                req: Req::post(
                    ctx.health_path(),
                    to_body(&health_value(ctx, "KmsHealthCheck")),
                )
                .with(Signing {
                    secret_access_key: Some(wrong_secret(&ctx.secret_access_key)),
                    ..Default::default()
                }),
                expect: Expect::Error(ErrorName::AuthenticationFailedException),
            })
        },
    ));
    cases.push(request(
        "sigv4.other-key-store-credential",
        Group::Sigv4,
        "this key store's credential on another key store's URI path (--second-uri-path) is 401",
        clause::SIGV4_PREFIX,
        |ctx| {
            let other = ctx.second_uri_path.as_deref().ok_or_else(|| {
                NotRun::Skip(
                    "needs --second-uri-path (another key store on the proxy with its own credential)"
                        .into(),
                )
            })?;
            Ok(Step {
                req: Req::post(format!("{other}/health"), to_body(&health_value(ctx, "KmsHealthCheck"))),
                expect: Expect::Error(ErrorName::AuthenticationFailedException),
            })
        },
    ));
}

fn validation(cases: &mut Vec<Case>) {
    let g = Group::Validation;
    // requestMetadata missing or empty, for each key operation.
    for (op, label) in [
        (Operation::Encrypt, "encrypt"),
        (Operation::Decrypt, "decrypt"),
        (Operation::GetKeyMetadata, "metadata"),
    ] {
        for (what, mutate) in [
            ("no-request-metadata", remove("requestMetadata")),
            ("empty-request-metadata", set("requestMetadata", json!({}))),
        ] {
            let id = format!("validation.{label}.{what}");
            let description = format!(
                "{op} with {} is 400 ValidationException",
                if what.starts_with("no") {
                    "no requestMetadata"
                } else {
                    "an empty requestMetadata object"
                }
            );
            cases.push(match op {
                Operation::Encrypt => encrypt_variant(
                    id,
                    g,
                    description,
                    clause::REQUIRED,
                    KeyRole::Main,
                    mutate,
                    VALIDATION,
                ),
                Operation::Decrypt => decrypt_variant(
                    id,
                    g,
                    description,
                    clause::REQUIRED,
                    KeyRole::Main,
                    FixtureId::MainWithAad,
                    mutate,
                    VALIDATION,
                ),
                _ => metadata_variant(
                    id,
                    g,
                    description,
                    clause::REQUIRED,
                    KeyRole::Main,
                    mutate,
                    VALIDATION,
                ),
            });
        }
    }
    // Each required requestMetadata field, per operation.
    const ENC: [&str; 4] = [
        "awsPrincipalArn",
        "kmsKeyArn",
        "kmsOperation",
        "kmsRequestId",
    ];
    for field in ENC {
        cases.push(encrypt_variant(
            format!("validation.encrypt.no-{}", camel_to_kebab(field)),
            g,
            format!("Encrypt without requestMetadata.{field} is 400 ValidationException"),
            clause::REQUIRED,
            KeyRole::Main,
            md_remove(field),
            VALIDATION,
        ));
        cases.push(decrypt_variant(
            format!("validation.decrypt.no-{}", camel_to_kebab(field)),
            g,
            format!("Decrypt without requestMetadata.{field} is 400 ValidationException"),
            clause::REQUIRED,
            KeyRole::Main,
            FixtureId::MainWithAad,
            md_remove(field),
            VALIDATION,
        ));
    }
    for field in ["awsPrincipalArn", "kmsOperation", "kmsRequestId"] {
        cases.push(metadata_variant(
            format!("validation.metadata.no-{}", camel_to_kebab(field)),
            g,
            format!("GetKeyMetadata without requestMetadata.{field} is 400 ValidationException"),
            clause::REQUIRED,
            KeyRole::Main,
            md_remove(field),
            VALIDATION,
        ));
    }
    // Each required top-level field.
    for field in ["plaintext", "encryptionAlgorithm"] {
        cases.push(encrypt_variant(
            format!("validation.encrypt.no-{}", camel_to_kebab(field)),
            g,
            format!("Encrypt without {field} is 400 ValidationException"),
            clause::REQUIRED,
            KeyRole::Main,
            remove(field),
            VALIDATION,
        ));
    }
    for field in [
        "ciphertext",
        "initializationVector",
        "authenticationTag",
        "encryptionAlgorithm",
    ] {
        cases.push(decrypt_variant(
            format!("validation.decrypt.no-{}", camel_to_kebab(field)),
            g,
            format!("Decrypt without {field} is 400 ValidationException"),
            clause::REQUIRED,
            KeyRole::Main,
            FixtureId::MainWithAad,
            remove(field),
            VALIDATION,
        ));
    }
    // Wrong JSON types and bodies that are not JSON.
    cases.push(encrypt_variant(
        "validation.encrypt.request-metadata-not-object",
        g,
        "Encrypt with requestMetadata a string is 400 ValidationException",
        clause::TYPES,
        KeyRole::Main,
        set("requestMetadata", json!("metadata")),
        VALIDATION,
    ));
    cases.push(encrypt_variant(
        "validation.encrypt.plaintext-not-string",
        g,
        "Encrypt with plaintext a number is 400 ValidationException",
        clause::TYPES,
        KeyRole::Main,
        set("plaintext", json!(42)),
        VALIDATION,
    ));
    cases.push(encrypt_variant(
        "validation.encrypt.kms-request-id-not-string",
        g,
        "Encrypt with requestMetadata.kmsRequestId a number is 400 ValidationException",
        clause::TYPES,
        KeyRole::Main,
        md_set("kmsRequestId", json!(5)),
        VALIDATION,
    ));
    cases.push(decrypt_variant(
        "validation.decrypt.ciphertext-not-string",
        g,
        "Decrypt with ciphertext an array is 400 ValidationException",
        clause::TYPES,
        KeyRole::Main,
        FixtureId::MainWithAad,
        set("ciphertext", json!([1, 2, 3])),
        VALIDATION,
    ));
    cases.push(request(
        "validation.encrypt.not-json",
        g,
        "an Encrypt body that is not JSON is 400 ValidationException",
        clause::TYPES,
        |ctx| {
            Ok(Step {
                req: Req::post(
                    ctx.key_path(&ctx.keys.main, Operation::Encrypt),
                    b"plaintext=SGVsbG8=".to_vec(),
                ),
                expect: Expect::Error(ErrorName::ValidationException),
            })
        },
    ));
    // Algorithms.
    cases.push(encrypt_variant(
        "validation.encrypt.unknown-encryption-algorithm",
        g,
        "Encrypt with encryptionAlgorithm AES_CBC is 400 ValidationException",
        clause::ALGORITHM,
        KeyRole::Main,
        set("encryptionAlgorithm", json!("AES_CBC")),
        VALIDATION,
    ));
    cases.push(decrypt_variant(
        "validation.decrypt.unknown-encryption-algorithm",
        g,
        "Decrypt with encryptionAlgorithm AES_CBC is 400 ValidationException",
        clause::ALGORITHM,
        KeyRole::Main,
        FixtureId::MainWithAad,
        set("encryptionAlgorithm", json!("AES_CBC")),
        VALIDATION,
    ));
    cases.push(encrypt_variant(
        "validation.encrypt.unknown-cdiv-algorithm",
        g,
        "Encrypt with ciphertextDataIntegrityValueAlgorithm SHA_512 is 400 ValidationException",
        clause::ALGORITHM,
        KeyRole::Main,
        set("ciphertextDataIntegrityValueAlgorithm", json!("SHA_512")),
        VALIDATION,
    ));
    // Base64.
    for (id, description, mutate) in [
        (
            "validation.encrypt.plaintext-url-safe-base64",
            "Encrypt with a URL-safe Base64 plaintext (\"-_-_\") is 400 ValidationException",
            set("plaintext", json!("-_-_")),
        ),
        (
            "validation.encrypt.plaintext-unpadded-base64",
            "Encrypt with an unpadded Base64 plaintext (\"aGk\") is 400 ValidationException",
            set("plaintext", json!("aGk")),
        ),
        (
            "validation.encrypt.plaintext-not-base64",
            "Encrypt with a plaintext that is not Base64 (\"not base64!\") is 400 ValidationException",
            set("plaintext", json!("not base64!")),
        ),
        (
            "validation.encrypt.aad-url-safe-base64",
            "Encrypt with a URL-safe Base64 additionalAuthenticatedData is 400 ValidationException",
            set("additionalAuthenticatedData", json!("-_-_")),
        ),
    ] {
        cases.push(encrypt_variant(id, g, description, clause::BASE64, KeyRole::Main, mutate, VALIDATION));
    }
    cases.push(decrypt_variant(
        "validation.decrypt.iv-url-safe-base64",
        g,
        "Decrypt with a 12-byte IV in URL-safe Base64 is 400 ValidationException",
        clause::BASE64,
        KeyRole::Main,
        FixtureId::MainWithAad,
        set("initializationVector", json!("-_-_-_-_-_-_-_-_")),
        VALIDATION,
    ));
    cases.push(decrypt_variant(
        "validation.decrypt.metadata-over-20-bytes",
        g,
        "Decrypt with a 21-byte ciphertextMetadata is 400 ValidationException",
        clause::METADATA_SIZE,
        KeyRole::Main,
        FixtureId::MainWithAad,
        set(
            "ciphertextMetadata",
            json!(xks_wire::b64::encode(&[0x5a; 21])),
        ),
        VALIDATION,
    ));
    // What must be accepted.
    cases.push(encrypt_variant(
        "validation.accepts-unknown-fields",
        g,
        "Encrypt with unknown fields at the top level and in requestMetadata succeeds",
        clause::UNKNOWN_FIELDS,
        KeyRole::Main,
        Box::new(|v| {
            v["xksConformanceFutureField"] = json!({"nested": [1, 2, 3]});
            v["requestMetadata"]["kmsRecipientAttestationImageSha384"] = json!("abc");
            v["requestMetadata"]["xksConformanceTag"] = json!(["a", "b"]);
            Ok(())
        }),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "validation.accepts-unknown-kms-operation",
        g,
        "Encrypt with kmsOperation BulkEncrypt (not a KMS API today) succeeds or fails secondary authorization (403), never ValidationException",
        clause::KMS_OPERATION_AUTHZ,
        KeyRole::Main,
        md_set("kmsOperation", json!("BulkEncrypt")),
        Want::OkOr(ErrorName::AccessDeniedException),
    ));
    cases.push(encrypt_variant(
        "validation.accepts-opaque-kms-request-id",
        g,
        "Encrypt with a kmsRequestId that is not a UUID succeeds",
        clause::REQUEST_ID,
        KeyRole::Main,
        md_set("kmsRequestId", json!("not a uuid: xks/conformance#1")),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "validation.accepts-2048-char-arns",
        g,
        "Encrypt with a 2048-character awsPrincipalArn and kmsKeyArn succeeds",
        clause::ARN_LENGTH,
        KeyRole::Main,
        Box::new(|v| {
            let principal = "arn:aws:iam::111122223333:role/";
            let key = "arn:aws:kms:us-east-1:111122223333:key/";
            v["requestMetadata"]["awsPrincipalArn"] =
                json!(format!("{principal}{}", "r".repeat(2048 - principal.len())));
            v["requestMetadata"]["kmsKeyArn"] =
                json!(format!("{key}{}", "k".repeat(2048 - key.len())));
            Ok(())
        }),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "validation.accepts-optional-fields",
        g,
        "Encrypt with awsSourceVpc, awsSourceVpce and kmsViaService succeeds",
        clause::OPTIONAL_FIELDS,
        KeyRole::Main,
        Box::new(|v| {
            v["requestMetadata"]["awsSourceVpc"] = json!("vpc-0123456789abcdef0");
            v["requestMetadata"]["awsSourceVpce"] = json!("vpce-0123456789abcdef0");
            v["requestMetadata"]["kmsViaService"] = json!("ebs");
            Ok(())
        }),
        Want::Ok,
    ));
    cases.push(metadata_variant(
        "validation.metadata.accepts-no-kms-key-arn",
        g,
        "GetKeyMetadata for CreateKey without kmsKeyArn succeeds",
        clause::KEY_ARN_OPTIONAL,
        KeyRole::Main,
        Box::new(|v| {
            v["requestMetadata"]["kmsOperation"] = json!("CreateKey");
            if let Some(o) = v["requestMetadata"].as_object_mut() {
                o.remove("kmsKeyArn");
            }
            Ok(())
        }),
        Want::Ok,
    ));
}

fn keys(cases: &mut Vec<Case>) {
    let g = Group::Keys;
    let not_found = Want::Error(ErrorName::KeyNotFoundException);
    let usage = Want::Error(ErrorName::InvalidKeyUsageException);
    let state = Want::Error(ErrorName::InvalidStateException);
    cases.push(metadata_variant(
        "keys.unknown-key.metadata",
        g,
        "GetKeyMetadata on a key that does not exist is 404 KeyNotFoundException",
        clause::KEY_NOT_FOUND,
        KeyRole::Unknown,
        keep(),
        not_found,
    ));
    cases.push(encrypt_variant(
        "keys.unknown-key.encrypt",
        g,
        "Encrypt on a key that does not exist is 404 KeyNotFoundException",
        clause::KEY_NOT_FOUND,
        KeyRole::Unknown,
        keep(),
        not_found,
    ));
    cases.push(decrypt_variant(
        "keys.unknown-key.decrypt",
        g,
        "Decrypt on a key that does not exist is 404 KeyNotFoundException",
        clause::KEY_NOT_FOUND,
        KeyRole::Unknown,
        FixtureId::MainWithAad,
        keep(),
        not_found,
    ));
    cases.push(metadata_variant(
        "keys.unknown-long-key-id",
        g,
        "GetKeyMetadata on an absent 128-character id using '.', '_' and '-' is 404 KeyNotFoundException",
        clause::KEY_NOT_FOUND,
        KeyRole::UnknownLong,
        keep(),
        not_found,
    ));
    cases.push(encrypt_variant(
        "keys.encrypt-only.encrypt",
        g,
        "Encrypt without a CDIV on the encrypt-only key succeeds (with a CDIV: see the cdiv group)",
        clause::KEY_USAGE,
        KeyRole::EncryptOnly,
        remove("ciphertextDataIntegrityValueAlgorithm"),
        Want::Ok,
    ));
    cases.push(decrypt_variant(
        "keys.encrypt-only.decrypt",
        g,
        "Decrypt on the encrypt-only key (of its own ciphertext) is 400 InvalidKeyUsageException",
        clause::KEY_USAGE,
        KeyRole::EncryptOnly,
        FixtureId::EncryptOnly,
        keep(),
        usage,
    ));
    cases.push(encrypt_variant(
        "keys.decrypt-only.encrypt",
        g,
        "Encrypt on the decrypt-only key is 400 InvalidKeyUsageException",
        clause::KEY_USAGE,
        KeyRole::DecryptOnly,
        keep(),
        usage,
    ));
    cases.push(encrypt_variant(
        "keys.no-usage.encrypt",
        g,
        "Encrypt on the key allowing neither operation is 400 InvalidKeyUsageException",
        clause::KEY_USAGE,
        KeyRole::NoUsage,
        keep(),
        usage,
    ));
    cases.push(decrypt_variant(
        "keys.no-usage.decrypt",
        g,
        "Decrypt on the key allowing neither operation is 400 InvalidKeyUsageException",
        clause::KEY_USAGE,
        KeyRole::NoUsage,
        FixtureId::MainWithAad,
        keep(),
        usage,
    ));
    cases.push(metadata_variant(
        "keys.disabled.metadata",
        g,
        "GetKeyMetadata on the disabled key succeeds with keyStatus DISABLED",
        clause::KEY_STATE,
        KeyRole::Disabled,
        keep(),
        Want::Metadata(key_status::DISABLED, Usage::Any),
    ));
    cases.push(encrypt_variant(
        "keys.disabled.encrypt",
        g,
        "Encrypt on the disabled key is 400 InvalidStateException",
        clause::KEY_STATE,
        KeyRole::Disabled,
        keep(),
        state,
    ));
    cases.push(decrypt_variant(
        "keys.disabled.decrypt",
        g,
        "Decrypt on the disabled key is 400 InvalidStateException",
        clause::KEY_STATE,
        KeyRole::Disabled,
        FixtureId::MainWithAad,
        keep(),
        state,
    ));
    const GONE: &[ErrorName] = &[
        ErrorName::KeyNotFoundException,
        ErrorName::InvalidStateException,
    ];
    cases.push(metadata_variant(
        "keys.destroyed.metadata",
        g,
        "GetKeyMetadata on a destroyed key is 404 KeyNotFoundException (or 400 InvalidStateException)",
        clause::KEY_DESTROYED,
        KeyRole::Destroyed,
        keep(),
        Want::AnyError(GONE),
    ));
    cases.push(encrypt_variant(
        "keys.destroyed.encrypt",
        g,
        "Encrypt on a destroyed key is 404 KeyNotFoundException (or 400 InvalidStateException)",
        clause::KEY_DESTROYED,
        KeyRole::Destroyed,
        keep(),
        Want::AnyError(GONE),
    ));
    cases.push(decrypt_variant(
        "keys.destroyed.decrypt",
        g,
        "Decrypt on a destroyed key is 404 KeyNotFoundException (or 400 InvalidStateException)",
        clause::KEY_DESTROYED,
        KeyRole::Destroyed,
        FixtureId::MainWithAad,
        keep(),
        Want::AnyError(GONE),
    ));
}

fn metadata(cases: &mut Vec<Case>) {
    let g = Group::Metadata;
    for (id, description, role, usage) in [
        (
            "metadata.key",
            "the main key: keySpec AES_256, keyUsage ENCRYPT and DECRYPT, keyStatus ENABLED",
            KeyRole::Main,
            Usage::Both,
        ),
        (
            "metadata.encrypt-only",
            "the encrypt-only key: ENCRYPT without DECRYPT, AES_256, ENABLED",
            KeyRole::EncryptOnly,
            Usage::EncryptOnly,
        ),
        (
            "metadata.decrypt-only",
            "the decrypt-only key: DECRYPT without ENCRYPT, AES_256, ENABLED",
            KeyRole::DecryptOnly,
            Usage::DecryptOnly,
        ),
        (
            "metadata.no-usage",
            "the no-usage key: neither ENCRYPT nor DECRYPT, AES_256, ENABLED",
            KeyRole::NoUsage,
            Usage::Neither,
        ),
    ] {
        cases.push(metadata_variant(
            id,
            g,
            description,
            clause::METADATA,
            role,
            keep(),
            Want::Metadata(key_status::ENABLED, usage),
        ));
    }
}

fn crypto(cases: &mut Vec<Case>) {
    let g = Group::Crypto;
    for size in [1usize, 32, 4096, 4300] {
        for aad_len in [None, Some(1usize), Some(8192)] {
            let aad_id = aad_len.map_or("no-aad".to_owned(), |n| format!("aad-{n}"));
            let aad_text = aad_len.map_or("no AAD".to_owned(), |n| format!("{n}-byte AAD"));
            cases.push(case(
                format!("crypto.round-trip.{size}.{aad_id}"),
                g,
                format!("{size}-byte plaintext, {aad_text}: encrypt with CDIV (lengths, Appendix C value), decrypt to the same plaintext"),
                clause::ROUND_TRIP,
                Plan::RoundTrip { size, aad_len },
            ));
        }
    }
    cases.push(encrypt_variant(
        "crypto.cdiv-only-when-requested",
        g,
        "Encrypt without ciphertextDataIntegrityValueAlgorithm returns no ciphertextDataIntegrityValue",
        clause::CDIV_ONLY_WHEN_ASKED,
        KeyRole::Main,
        remove("ciphertextDataIntegrityValueAlgorithm"),
        Want::Ok,
    ));
    cases.push(case(
        "crypto.fresh-iv",
        g,
        "two encryptions of the same plaintext use different IVs",
        clause::FRESH_IV,
        Plan::FreshIv,
    ));
    let bad = Want::Error(ErrorName::InvalidCiphertextException);
    let tampers: Vec<(&str, &str, &'static str, FixtureId, Mutate)> = vec![
        (
            "crypto.tamper.aad-changed",
            "Decrypt with one AAD bit flipped is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            edit("additionalAuthenticatedData", |b| flip_first(b)),
        ),
        (
            "crypto.tamper.aad-removed",
            "Decrypt without the AAD used to encrypt is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            remove("additionalAuthenticatedData"),
        ),
        (
            "crypto.tamper.aad-added",
            "Decrypt with an AAD where encryption had none is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainNoAad,
            set("additionalAuthenticatedData", json!(xks_wire::b64::encode(b"xks-conformance"))),
        ),
        (
            "crypto.tamper.ciphertext-bit-flip",
            "Decrypt with one ciphertext bit flipped is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            edit("ciphertext", |b| flip_first(b)),
        ),
        (
            "crypto.tamper.ciphertext-truncated",
            "Decrypt with the last ciphertext byte removed is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            edit("ciphertext", |b| {
                b.pop();
            }),
        ),
        (
            "crypto.tamper.iv-bit-flip",
            "Decrypt with one IV bit flipped is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            edit("initializationVector", |b| flip_last(b)),
        ),
        (
            "crypto.tamper.tag-bit-flip",
            "Decrypt with one authentication tag bit flipped is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            edit("authenticationTag", |b| flip_last(b)),
        ),
        (
            "crypto.tamper.tag-truncated",
            "Decrypt with the tag cut to 12 bytes is 400 InvalidCiphertextException",
            clause::TAMPER,
            FixtureId::MainWithAad,
            edit("authenticationTag", |b| b.truncate(12)),
        ),
        (
            "crypto.tamper.metadata-changed",
            "Decrypt with one ciphertextMetadata bit flipped is 400 InvalidCiphertextException",
            clause::TAMPER_METADATA,
            FixtureId::MainWithAad,
            Box::new(|v| {
                needs_metadata(v)?;
                edit("ciphertextMetadata", |b| flip_last(b))(v)
            }),
        ),
        (
            "crypto.tamper.metadata-removed",
            "Decrypt without the ciphertextMetadata returned by Encrypt is 400 InvalidCiphertextException",
            clause::TAMPER_METADATA,
            FixtureId::MainWithAad,
            Box::new(|v| {
                needs_metadata(v)?;
                remove("ciphertextMetadata")(v)
            }),
        ),
        (
            "crypto.tamper.metadata-added",
            "Decrypt with a byte added to (or, if Encrypt returned none, a 1-byte) ciphertextMetadata is 400 InvalidCiphertextException",
            clause::TAMPER_METADATA,
            FixtureId::MainWithAad,
            Box::new(|v| {
                let mut m = match v.get("ciphertextMetadata") {
                    Some(_) => bytes_of(v, "ciphertextMetadata")?,
                    None => Vec::new(),
                };
                if m.len() >= xks_wire::MAX_CIPHERTEXT_METADATA {
                    return Err(NotRun::Skip(
                        "the proxy's ciphertextMetadata already has 20 bytes".into(),
                    ));
                }
                m.push(0x00);
                v["ciphertextMetadata"] = json!(xks_wire::b64::encode(&m));
                Ok(())
            }),
        ),
        (
            "crypto.tamper.metadata-moved-into-aad",
            "Decrypt with the ciphertextMetadata passed as AAD instead (encrypted without AAD) is 400 InvalidCiphertextException",
            clause::TAMPER_METADATA,
            FixtureId::MainNoAad,
            Box::new(|v| {
                needs_metadata(v)?;
                v["additionalAuthenticatedData"] = v["ciphertextMetadata"].clone();
                remove("ciphertextMetadata")(v)
            }),
        ),
    ];
    for (id, description, clause, fixture, mutate) in tampers {
        cases.push(decrypt_variant(
            id,
            g,
            description,
            clause,
            KeyRole::Main,
            fixture,
            mutate,
            bad,
        ));
    }
    cases.push(decrypt_variant(
        "crypto.tamper.other-key",
        g,
        "the main key's ciphertext decrypted with another key (the decrypt-only key) is 400 InvalidCiphertextException",
        clause::TAMPER,
        KeyRole::DecryptOnly,
        FixtureId::MainWithAad,
        keep(),
        bad,
    ));
}

fn health(cases: &mut Vec<Case>) {
    let g = Group::Health;
    for op in [
        "CreateCustomKeyStore",
        "ConnectCustomKeyStore",
        "UpdateCustomKeyStore",
        "KmsHealthCheck",
    ] {
        cases.push(request(
            format!("health.{}", camel_to_kebab(op).trim_start_matches('-')),
            g,
            format!("GetHealthStatus for kmsOperation {op} answers 200 with a valid status"),
            clause::HEALTH,
            move |ctx| {
                Ok(Step {
                    req: Req::post(ctx.health_path(), to_body(&health_value(ctx, op))),
                    expect: Expect::Health,
                })
            },
        ));
    }
    cases.push(request(
        "health.unknown-kms-operation",
        g,
        "GetHealthStatus for an unknown kmsOperation (BulkHealthCheck) answers 200",
        clause::HEALTH,
        |ctx| {
            Ok(Step {
                req: Req::post(
                    ctx.health_path(),
                    to_body(&health_value(ctx, "BulkHealthCheck")),
                ),
                expect: Expect::Health,
            })
        },
    ));
    cases.push(request(
        "health.unknown-principal",
        g,
        "GetHealthStatus naming a principal no policy allows answers 200, never 403",
        clause::HEALTH_AUTHZ,
        |ctx| {
            let mut md = ctx.health_metadata("KmsHealthCheck");
            md.aws_principal_arn =
                Some("arn:aws:iam::000000000000:user/xks-conformance-unauthorized".into());
            md.aws_source_vpc = Some("vpc-xks-conformance-untrusted".into());
            let v = to_value(&HealthRequest {
                request_metadata: Some(md),
            });
            Ok(Step {
                req: Req::post(ctx.health_path(), to_body(&v)),
                expect: Expect::Health,
            })
        },
    ));
    // Request validation: the section marks the fields REQUIRED and AWS's
    // tools want ValidationException; the error table says "all except
    // GetHealthStatus". Both readings are carried (docs/conformance.md).
    let health_validation = |id: &str, description: &str, body: fn(&Ctx) -> Vec<u8>| {
        request(id, g, description, clause::HEALTH_REQUIRED, move |ctx| {
            Ok(Step {
                req: Req::post(ctx.health_path(), body(ctx)),
                expect: Want::AwsError(ErrorName::ValidationException, clause::HEALTH_VALIDATION)
                    .expect(|| Ok(Expect::Health))?,
            })
        })
    };
    cases.push(health_validation(
        "health.empty-body",
        "GetHealthStatus with body {} (no requestMetadata) is 400 ValidationException",
        |_| b"{}".to_vec(),
    ));
    cases.push(health_validation(
        "health.empty-request-metadata",
        "GetHealthStatus with an empty requestMetadata object is 400 ValidationException",
        |_| br#"{"requestMetadata":{}}"#.to_vec(),
    ));
    cases.push(health_validation(
        "health.no-kms-request-id",
        "GetHealthStatus without requestMetadata.kmsRequestId is 400 ValidationException",
        |ctx| health_without(ctx, "kmsRequestId"),
    ));
    cases.push(health_validation(
        "health.no-kms-operation",
        "GetHealthStatus without requestMetadata.kmsOperation is 400 ValidationException",
        |ctx| health_without(ctx, "kmsOperation"),
    ));
    cases.push(health_validation(
        "health.request-metadata-not-object",
        "GetHealthStatus with requestMetadata a string is 400 ValidationException",
        |_| br#"{"requestMetadata":"KmsHealthCheck"}"#.to_vec(),
    ));
    cases.push(health_validation(
        "health.not-json",
        "a GetHealthStatus body that is not JSON is 400 ValidationException",
        |_| b"kmsOperation=KmsHealthCheck".to_vec(),
    ));
}

/// A KmsHealthCheck body without one requestMetadata field.
fn health_without(ctx: &Ctx, field: &str) -> Vec<u8> {
    let mut v = health_value(ctx, "KmsHealthCheck");
    if let Some(o) = v["requestMetadata"].as_object_mut() {
        o.remove(field);
    }
    to_body(&v)
}

fn request_metadata(cases: &mut Vec<Case>) {
    let g = Group::RequestMetadata;
    let deny_ok = Want::OkOr(ErrorName::AccessDeniedException);
    let principal = |p: &'static str| md_set("awsPrincipalArn", json!(p));
    cases.push(encrypt_variant(
        "request-metadata.unicode-principal",
        g,
        "Encrypt naming a principal with non-ASCII characters (role/ünïcødé-角色-🔑) succeeds or is 403",
        clause::PRINCIPAL,
        KeyRole::Main,
        principal("arn:aws:iam::111122223333:role/ünïcødé-角色-🔑"),
        deny_ok,
    ));
    cases.push(request(
        "request-metadata.escaped-unicode-principal",
        g,
        "Encrypt with the principal written with JSON \\u escapes (incl. a surrogate pair) succeeds or is 403",
        clause::PRINCIPAL,
        |ctx| {
            const MARK: &str = "xks-conformance-principal-mark";
            let key = ctx.key(KeyRole::Main)?;
            let mut v = encrypt_value(ctx, PAYLOAD, None, true);
            v["requestMetadata"]["awsPrincipalArn"] = json!(MARK);
            let text = String::from_utf8(to_body(&v)).unwrap_or_default().replace(
                MARK,
                r"arn:aws:iam::111122223333:role/\u00e9t\u00e9-\ud83d\udd10",
            );
            Ok(Step {
                req: Req::post(ctx.key_path(&key, Operation::Encrypt), text.into_bytes()),
                expect: Want::OkOr(ErrorName::AccessDeniedException)
                    .expect(|| Ok(Expect::Encrypt(encrypt_expect(&v)?)))?,
            })
        },
    ));
    cases.push(encrypt_variant(
        "request-metadata.service-principal",
        g,
        "Encrypt by the service principal ec2.amazonaws.com succeeds or is 403",
        clause::PRINCIPAL,
        KeyRole::Main,
        principal("ec2.amazonaws.com"),
        deny_ok,
    ));
    cases.push(encrypt_variant(
        "request-metadata.aws-internal-principal",
        g,
        "Encrypt by the principal \"AWS Internal\" succeeds or is 403",
        clause::PRINCIPAL,
        KeyRole::Main,
        principal("AWS Internal"),
        deny_ok,
    ));
    cases.push(encrypt_variant(
        "request-metadata.unicode-request-id",
        g,
        "Encrypt with a non-ASCII kmsRequestId succeeds (opaque)",
        clause::REQUEST_ID,
        KeyRole::Main,
        md_set("kmsRequestId", json!("requête-№1-リクエスト")),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "request-metadata.long-request-id",
        g,
        "Encrypt with a 1024-character kmsRequestId succeeds (opaque)",
        clause::REQUEST_ID,
        KeyRole::Main,
        md_set("kmsRequestId", json!("r".repeat(1024))),
        Want::Ok,
    ));
    cases.push(metadata_variant(
        "request-metadata.long-arns.metadata",
        g,
        "GetKeyMetadata with a 2048-character awsPrincipalArn and kmsKeyArn succeeds",
        clause::ARN_LENGTH,
        KeyRole::Main,
        Box::new(long_arns),
        Want::Ok,
    ));
    cases.push(decrypt_variant(
        "request-metadata.long-arns.decrypt",
        g,
        "Decrypt with a 2048-character awsPrincipalArn and kmsKeyArn succeeds",
        clause::ARN_LENGTH,
        KeyRole::Main,
        FixtureId::MainWithAad,
        Box::new(long_arns),
        Want::Ok,
    ));
    cases.push(metadata_variant(
        "request-metadata.unknown-operation.metadata",
        g,
        "GetKeyMetadata with kmsOperation BulkDescribeKey succeeds or is 403, never ValidationException",
        clause::KMS_OPERATION_AUTHZ,
        KeyRole::Main,
        md_set("kmsOperation", json!("BulkDescribeKey")),
        deny_ok,
    ));
    cases.push(decrypt_variant(
        "request-metadata.unknown-operation.decrypt",
        g,
        "Decrypt with kmsOperation BulkDecrypt succeeds or is 403, never ValidationException",
        clause::KMS_OPERATION_AUTHZ,
        KeyRole::Main,
        FixtureId::MainWithAad,
        md_set("kmsOperation", json!("BulkDecrypt")),
        deny_ok,
    ));
    cases.push(metadata_variant(
        "request-metadata.optional-fields.metadata",
        g,
        "GetKeyMetadata with awsSourceVpc, awsSourceVpce and kmsViaService succeeds",
        clause::OPTIONAL_FIELDS,
        KeyRole::Main,
        Box::new(|v| {
            v["requestMetadata"]["awsSourceVpc"] = json!("vpc-0123456789abcdef0");
            v["requestMetadata"]["awsSourceVpce"] = json!("vpce-0123456789abcdef0");
            v["requestMetadata"]["kmsViaService"] = json!("s3");
            Ok(())
        }),
        Want::Ok,
    ));
}

/// awsPrincipalArn and kmsKeyArn at the 2048 characters the spec requires.
fn long_arns(v: &mut Value) -> Result<(), NotRun> {
    let principal = "arn:aws:iam::111122223333:role/";
    let key = "arn:aws:kms:us-east-1:111122223333:key/";
    v["requestMetadata"]["awsPrincipalArn"] =
        json!(format!("{principal}{}", "r".repeat(2048 - principal.len())));
    v["requestMetadata"]["kmsKeyArn"] = json!(format!("{key}{}", "k".repeat(2048 - key.len())));
    Ok(())
}

/// Bytes well over any proxy's limits and well under a sane body limit of
/// the suite's own (what a proxy must refuse cleanly).
const OVERSIZE: usize = 300 * 1024;

fn limits(cases: &mut Vec<Case>) {
    let g = Group::Limits;
    const TOO_BIG: &[ErrorName] = &[
        ErrorName::ValidationException,
        ErrorName::UnsupportedOperationException,
    ];
    cases.push(encrypt_variant(
        "limits.plaintext-300k",
        g,
        "Encrypt of a 300 KiB plaintext is 400 ValidationException or 501 UnsupportedOperationException",
        clause::LIMITS,
        KeyRole::Main,
        set("plaintext", json!(xks_wire::b64::encode(&vec![0x41; OVERSIZE]))),
        Want::AnyError(TOO_BIG),
    ));
    cases.push(encrypt_variant(
        "limits.aad-300k",
        g,
        "Encrypt with a 300 KiB AAD is 400 ValidationException or 501 UnsupportedOperationException",
        clause::LIMITS,
        KeyRole::Main,
        set(
            "additionalAuthenticatedData",
            json!(xks_wire::b64::encode(&vec![0x42; OVERSIZE])),
        ),
        Want::AnyError(TOO_BIG),
    ));
    cases.push(decrypt_variant(
        "limits.ciphertext-300k",
        g,
        "Decrypt of a 300 KiB ciphertext is 400 ValidationException, 501 UnsupportedOperationException or 400 InvalidCiphertextException",
        clause::LIMITS,
        KeyRole::Main,
        FixtureId::MainWithAad,
        set("ciphertext", json!(xks_wire::b64::encode(&vec![0x43; OVERSIZE]))),
        Want::AnyError(&[
            ErrorName::ValidationException,
            ErrorName::UnsupportedOperationException,
            ErrorName::InvalidCiphertextException,
        ]),
    ));
    cases.push(encrypt_variant(
        "limits.body-1m",
        g,
        "a 1 MiB Encrypt body (an unknown field padded out) is 400 ValidationException or 501 UnsupportedOperationException",
        clause::LIMITS,
        KeyRole::Main,
        set("xksConformancePadding", json!("p".repeat(1024 * 1024))),
        Want::AnyError(TOO_BIG),
    ));
    cases.push(encrypt_variant(
        "limits.plaintext-4300-aad-8192",
        g,
        "Encrypt of the largest inputs the spec requires (4300-byte plaintext, 8192-byte AAD) with CDIV succeeds",
        clause::ROUND_TRIP,
        KeyRole::Main,
        Box::new(|v| {
            v["plaintext"] = json!(xks_wire::b64::encode(&pattern(4300, 9)));
            v["additionalAuthenticatedData"] = json!(xks_wire::b64::encode(&pattern(8192, 17)));
            Ok(())
        }),
        Want::Ok,
    ));
    const NO_KEY: &[ErrorName] = &[
        ErrorName::KeyNotFoundException,
        ErrorName::InvalidUriPathException,
        ErrorName::ValidationException,
    ];
    for (id, description, key) in [
        (
            "limits.key-id-129-chars",
            "GetKeyMetadata on a 129-character externalKeyId is 404 KeyNotFoundException/InvalidUriPathException or 400 ValidationException",
            "k".repeat(129),
        ),
        (
            "limits.key-id-bad-characters",
            "GetKeyMetadata on an externalKeyId with characters outside [A-Za-z0-9._-] (key~1+2) is 404 or 400, never 200 or 500",
            "key~1+2".to_owned(),
        ),
    ] {
        cases.push(request(id, g, description, clause::KEY_ID_FORM, move |ctx| {
            Ok(Step {
                req: Req::post(
                    ctx.key_path(&key, Operation::GetKeyMetadata),
                    to_body(&metadata_value(ctx, "DescribeKey")),
                ),
                expect: Want::AnyError(NO_KEY).expect(|| Err(NotRun::Skip(String::new())))?,
            })
        }));
    }
}

fn cdiv(cases: &mut Vec<Case>) {
    let g = Group::Cdiv;
    let usage = Want::Error(ErrorName::InvalidKeyUsageException);
    let no_aad = || remove("additionalAuthenticatedData");
    cases.push(encrypt_variant(
        "cdiv.main.aad",
        g,
        "Encrypt with AAD asking a CDIV of a key that may decrypt: 200 with the Appendix C value",
        clause::ROUND_TRIP,
        KeyRole::Main,
        keep(),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "cdiv.main.no-aad",
        g,
        "Encrypt without AAD asking a CDIV of a key that may decrypt: 200 with the Appendix C value",
        clause::ROUND_TRIP,
        KeyRole::Main,
        no_aad(),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "cdiv.encrypt-only.aad",
        g,
        "Encrypt with AAD asking a CDIV of the encrypt-only key is 400 InvalidKeyUsageException (no later Decrypt can succeed)",
        clause::CDIV_USAGE,
        KeyRole::EncryptOnly,
        keep(),
        Want::AwsError(ErrorName::InvalidKeyUsageException, clause::CDIV_LITERAL),
    ));
    cases.push(encrypt_variant(
        "cdiv.encrypt-only.no-aad",
        g,
        "Encrypt without AAD asking a CDIV of the encrypt-only key is 400 InvalidKeyUsageException",
        clause::CDIV_USAGE,
        KeyRole::EncryptOnly,
        no_aad(),
        Want::AwsError(ErrorName::InvalidKeyUsageException, clause::CDIV_LITERAL),
    ));
    cases.push(encrypt_variant(
        "cdiv.encrypt-only.not-asked",
        g,
        "Encrypt without AAD and without a CDIV on the encrypt-only key succeeds, with no CDIV",
        clause::KEY_USAGE,
        KeyRole::EncryptOnly,
        Box::new(|v| {
            remove("additionalAuthenticatedData")(v)?;
            remove("ciphertextDataIntegrityValueAlgorithm")(v)
        }),
        Want::Ok,
    ));
    cases.push(encrypt_variant(
        "cdiv.decrypt-only",
        g,
        "Encrypt asking a CDIV of the decrypt-only key is 400 InvalidKeyUsageException",
        clause::CDIV_KEY,
        KeyRole::DecryptOnly,
        keep(),
        usage,
    ));
    cases.push(encrypt_variant(
        "cdiv.no-usage",
        g,
        "Encrypt asking a CDIV of the key allowing neither operation is 400 InvalidKeyUsageException",
        clause::CDIV_KEY,
        KeyRole::NoUsage,
        keep(),
        usage,
    ));
    cases.push(encrypt_variant(
        "cdiv.disabled",
        g,
        "Encrypt asking a CDIV of the disabled key is 400 InvalidStateException",
        clause::CDIV_KEY,
        KeyRole::Disabled,
        keep(),
        Want::Error(ErrorName::InvalidStateException),
    ));
    cases.push(encrypt_variant(
        "cdiv.unknown-key",
        g,
        "Encrypt asking a CDIV of a key that does not exist is 404 KeyNotFoundException",
        clause::CDIV_KEY,
        KeyRole::Unknown,
        keep(),
        Want::Error(ErrorName::KeyNotFoundException),
    ));
    cases.push(encrypt_variant(
        "cdiv.algorithm-lower-case",
        g,
        "Encrypt with ciphertextDataIntegrityValueAlgorithm sha_256 (lower case) is 400 ValidationException",
        clause::ALGORITHM,
        KeyRole::Main,
        set("ciphertextDataIntegrityValueAlgorithm", json!("sha_256")),
        VALIDATION,
    ));
    cases.push(encrypt_variant(
        "cdiv.algorithm-empty",
        g,
        "Encrypt with an empty ciphertextDataIntegrityValueAlgorithm is 400 ValidationException",
        clause::ALGORITHM,
        KeyRole::Main,
        set("ciphertextDataIntegrityValueAlgorithm", json!("")),
        VALIDATION,
    ));
}

fn throttling(cases: &mut Vec<Case>) {
    let g = Group::Throttling;
    cases.push(case(
        "throttling.burst",
        g,
        "a burst of signed health checks above the proxy's configured rate gets 429 ThrottlingException (well-formed), nothing else but 200",
        clause::THROTTLING,
        Plan::Throttle { recover: false },
    ));
    cases.push(case(
        "throttling.recovers",
        g,
        "after the burst, requests under the rate are answered 200 again",
        clause::THROTTLING,
        Plan::Throttle { recover: true },
    ));
}

fn backend_fault(cases: &mut Vec<Case>) {
    let g = Group::BackendFault;
    for (id, description, step, clause) in [
        (
            "backend-fault.encrypt",
            "with the key manager stopped (--backend-stop-cmd), Encrypt is 503 DependencyTimeoutException within the proxy's deadline",
            FaultStep::Encrypt,
            clause::BACKEND_FAULT,
        ),
        (
            "backend-fault.decrypt",
            "with the key manager stopped, Decrypt is 503 DependencyTimeoutException within the deadline",
            FaultStep::Decrypt,
            clause::BACKEND_FAULT,
        ),
        (
            "backend-fault.metadata",
            "with the key manager stopped, GetKeyMetadata is 503 DependencyTimeoutException within the deadline",
            FaultStep::Metadata,
            clause::BACKEND_FAULT,
        ),
        (
            "backend-fault.recovers",
            "after --backend-resume-cmd, an Encrypt/Decrypt round trip succeeds again (no proxy restart)",
            FaultStep::Recover,
            clause::BACKEND_RECOVERY,
        ),
    ] {
        cases.push(case(id, g, description, clause, Plan::BackendFault(step)));
    }
}

fn mtls(cases: &mut Vec<Case>) {
    let g = Group::Mtls;
    for (id, description, cert, refused, clause) in [
        (
            "mtls.no-client-cert",
            "a TLS client offering no certificate is refused at the handshake",
            CertChoice::None,
            true,
            clause::MTLS,
        ),
        (
            "mtls.self-signed",
            "a self-signed certificate with the expected subject is refused at the handshake",
            CertChoice::SelfSigned,
            true,
            clause::MTLS,
        ),
        (
            "mtls.untrusted-ca",
            "a certificate with the expected subject from another CA is refused at the handshake",
            CertChoice::UntrustedCa,
            true,
            clause::MTLS,
        ),
        (
            "mtls.expired",
            "an expired certificate from the trusted CA (2000-2001) is refused at the handshake",
            CertChoice::Expired,
            true,
            clause::MTLS,
        ),
        (
            "mtls.wrong-subject",
            "a certificate from the trusted CA for another subject (cks.kms.<other-region>.amazonaws.com) is refused",
            CertChoice::WrongSubject,
            true,
            clause::MTLS,
        ),
        (
            "mtls.trusted-cert",
            "a freshly minted certificate from the trusted CA with the expected subject is accepted",
            CertChoice::Trusted,
            false,
            clause::MTLS_OK,
        ),
    ] {
        cases.push(case(id, g, description, clause, Plan::Handshake { cert, refused }));
    }
}

fn kms_client(cases: &mut Vec<Case>) {
    let g = Group::KmsClient;
    for (id, description, op) in [
        (
            "kms-client.health",
            "GetHealthStatus through the KMS-side client (HTTP/2 when offered, 250 ms attempts) is accepted",
            KmsOp::Health,
        ),
        (
            "kms-client.key-metadata",
            "GetKeyMetadata through the KMS-side client: accepted, and usable by CreateKey (AES_256, ENCRYPT+DECRYPT, ENABLED)",
            KmsOp::KeyMetadata,
        ),
        (
            "kms-client.round-trip",
            "GenerateDataKey-style Encrypt (32 bytes, AAD, CDIV) and Decrypt through the KMS-side client",
            KmsOp::RoundTrip,
        ),
    ] {
        cases.push(case(id, g, description, clause::KMS_CLIENT, Plan::KmsClient(op)));
    }
}

/// Whether `id` is selected by `--only` prefixes (all when empty).
pub fn selected(id: &str, only: &[String]) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|p| id == p || id.starts_with(&format!("{}.", p.trim_end_matches('.'))))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::request::finalize;
    use crate::request::tests::{target, verify, AK, SK};
    use sigv4::VerifyError;
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    use xks_wire::Bytes64;

    fn fixture(aad: Option<&[u8]>, metadata: Option<&[u8]>) -> Fixture {
        Fixture {
            key: "main-key".into(),
            plaintext: Zeroizing::new(b"Hello World!".to_vec()),
            aad: aad.map(<[u8]>::to_vec),
            response: EncryptResponse {
                ciphertext: Bytes64(vec![0xaa; 12]),
                ciphertext_metadata: metadata.map(|m| Bytes64(m.to_vec())),
                initialization_vector: Bytes64(vec![0x11; 12]),
                authentication_tag: Bytes64(vec![0x22; 16]),
                ciphertext_data_integrity_value: None,
            },
        }
    }

    pub(crate) fn full_ctx() -> Ctx {
        let mut ctx = Ctx::new(
            "/ks/kms/xks/v1".into(),
            "us-east-1".into(),
            AK.into(),
            Zeroizing::new(SK.into()),
            Keys {
                main: "main-key".into(),
                encrypt_only: Some("enc-key".into()),
                decrypt_only: Some("dec-key".into()),
                no_usage: Some("none-key".into()),
                disabled: Some("off-key".into()),
                destroyed: Some("gone-key".into()),
            },
            42,
        );
        ctx.second_uri_path = Some("/other/kms/xks/v1".into());
        ctx.fixtures = vec![
            (
                FixtureId::MainWithAad,
                Ok(fixture(Some(AAD), Some(&[1, 0, 0, 0, 1]))),
            ),
            (
                FixtureId::MainNoAad,
                Ok(fixture(None, Some(&[1, 0, 0, 0, 1]))),
            ),
            (
                FixtureId::EncryptOnly,
                Ok(fixture(Some(AAD), Some(&[1, 0, 0, 0, 1]))),
            ),
        ];
        ctx
    }

    fn built(cases: &[Case], ctx: &Ctx, id: &str) -> Result<Step, NotRun> {
        let c = cases.iter().find(|c| c.id == id).expect(id);
        match &c.plan {
            Plan::Request(b) => b(ctx),
            _ => panic!("{id} is not a request case"),
        }
    }

    fn body(step: &Step) -> Value {
        serde_json::from_slice(&step.req.body).unwrap_or(Value::Null)
    }

    #[test]
    fn ids_are_unique_well_formed_and_documented() {
        let cases = catalogue();
        let mut seen = HashSet::new();
        for c in &cases {
            assert!(seen.insert(c.id.clone()), "duplicate id {}", c.id);
            assert!(
                c.id.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'-'),
                "{}",
                c.id
            );
            assert!(
                c.id.starts_with(&format!("{}.", c.group.as_str())),
                "{}",
                c.id
            );
            assert!(
                !c.description.is_empty() && !c.clause.is_empty(),
                "{}",
                c.id
            );
        }
        for g in Group::ALL {
            assert!(cases.iter().any(|c| c.group == g), "{g:?} has no case");
        }
        assert!(cases.len() >= 150, "{}", cases.len());
    }

    #[test]
    fn every_request_case_builds_with_every_input() {
        let ctx = full_ctx();
        for c in catalogue() {
            if let Plan::Request(b) = &c.plan {
                match b(&ctx) {
                    Ok(step) => {
                        assert!(step.req.path.starts_with('/'), "{}", c.id);
                    }
                    Err(e) => panic!("{} did not build: {e:?}", c.id),
                }
            }
        }
    }

    #[test]
    fn absent_inputs_skip_with_the_flag_to_give() {
        let mut ctx = full_ctx();
        ctx.keys = Keys {
            main: "main-key".into(),
            ..Default::default()
        };
        ctx.second_uri_path = None;
        ctx.fixtures.retain(|(f, _)| *f != FixtureId::EncryptOnly);
        let cases = catalogue();
        let mut skipped = Vec::new();
        for c in &cases {
            if let Plan::Request(b) = &c.plan {
                if let Err(e) = b(&ctx) {
                    match e {
                        NotRun::Skip(reason) => {
                            assert!(reason.contains("--"), "{}: {reason}", c.id);
                            skipped.push(c.id.as_str());
                        }
                        NotRun::Setup(s) => panic!("{}: {s}", c.id),
                    }
                }
            }
        }
        for id in [
            "keys.encrypt-only.encrypt",
            "keys.encrypt-only.decrypt",
            "keys.decrypt-only.encrypt",
            "keys.no-usage.decrypt",
            "keys.disabled.metadata",
            "metadata.no-usage",
            "crypto.tamper.other-key",
            "keys.destroyed.encrypt",
            "cdiv.encrypt-only.aad",
            "sigv4.other-key-store-credential",
        ] {
            assert!(skipped.contains(&id), "{id} should be skipped: {skipped:?}");
        }
        // A failed fixture makes dependent cases fail (not skip).
        ctx.fixtures = vec![(FixtureId::MainWithAad, Err("encrypt failed".into()))];
        assert_eq!(
            built(&cases, &ctx, "crypto.tamper.aad-changed").err(),
            Some(NotRun::Setup("encrypt failed".into()))
        );
        // No metadata returned: the metadata tampering cases cannot apply.
        let mut ctx = full_ctx();
        ctx.fixtures = vec![
            (FixtureId::MainWithAad, Ok(fixture(Some(AAD), None))),
            (FixtureId::MainNoAad, Ok(fixture(None, None))),
        ];
        for id in [
            "crypto.tamper.metadata-changed",
            "crypto.tamper.metadata-removed",
            "crypto.tamper.metadata-moved-into-aad",
        ] {
            assert!(
                matches!(built(&cases, &ctx, id), Err(NotRun::Skip(_))),
                "{id}"
            );
        }
        let added = body(&built(&cases, &ctx, "crypto.tamper.metadata-added").unwrap());
        assert_eq!(added["ciphertextMetadata"], json!("AA=="));
    }

    /// Each SigV4 case carries exactly the defect its id names, as the
    /// workspace's verifier (the one the proxy uses) sees it.
    #[test]
    fn sigv4_cases_carry_the_defect_they_claim() {
        let ctx = full_ctx();
        let cases = catalogue();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let outcome = |id: &str| {
            let step = built(&cases, &ctx, id).unwrap();
            let mut t = target();
            t.host = "xks.example.com:8443".into();
            let w = finalize(&step.req, &t, now).unwrap();
            verify(&w, now)
        };
        assert!(outcome("sigv4.kms-signed-headers").is_ok());
        assert!(outcome("sigv4.content-type-signed").is_ok());
        let expected = [
            ("sigv4.no-authorization", VerifyError::MissingAuthorization),
            ("sigv4.no-x-amz-date", VerifyError::MissingDate),
            ("sigv4.unknown-access-key", VerifyError::UnknownAccessKey),
            ("sigv4.wrong-secret", VerifyError::SignatureMismatch),
            (
                "sigv4.wrong-service",
                VerifyError::WrongService("kms".into()),
            ),
            (
                "sigv4.wrong-region",
                VerifyError::WrongRegion("us-west-2".into()),
            ),
            ("sigv4.scope-date-mismatch", VerifyError::ScopeDateMismatch),
            ("sigv4.too-old", VerifyError::Skew(360)),
            ("sigv4.too-new", VerifyError::Skew(360)),
            ("sigv4.body-changed", VerifyError::SignatureMismatch),
            (
                "sigv4.signed-header-altered",
                VerifyError::SignatureMismatch,
            ),
            ("sigv4.health-wrong-secret", VerifyError::SignatureMismatch),
        ];
        for (id, err) in expected {
            assert_eq!(outcome(id).err(), Some(err), "{id}");
        }
        // The other key store's case is correctly signed, on another path.
        let step = built(&cases, &ctx, "sigv4.other-key-store-credential").unwrap();
        assert_eq!(step.req.path, "/other/kms/xks/v1/health");
        let w = finalize(&step.req, &target(), now).unwrap();
        assert!(verify(&w, now).is_ok());
        assert!(SystemTime::now() > now);
    }

    #[test]
    fn tampering_changes_only_the_named_field() {
        let ctx = full_ctx();
        let cases = catalogue();
        let base = decrypt_value(&ctx, ctx.fixture(FixtureId::MainWithAad).unwrap());
        let changed = |id: &str| -> Vec<String> {
            let v = body(&built(&cases, &ctx, id).unwrap());
            let mut fields: Vec<String> = Vec::new();
            for (k, val) in v.as_object().unwrap() {
                if k != "requestMetadata" && base.get(k) != Some(val) {
                    fields.push(k.clone());
                }
            }
            for k in base.as_object().unwrap().keys() {
                if v.get(k).is_none() {
                    fields.push(format!("-{k}"));
                }
            }
            fields
        };
        assert_eq!(
            changed("crypto.tamper.aad-changed"),
            ["additionalAuthenticatedData"]
        );
        assert_eq!(
            changed("crypto.tamper.aad-removed"),
            ["-additionalAuthenticatedData"]
        );
        assert_eq!(changed("crypto.tamper.ciphertext-bit-flip"), ["ciphertext"]);
        assert_eq!(
            changed("crypto.tamper.iv-bit-flip"),
            ["initializationVector"]
        );
        assert_eq!(changed("crypto.tamper.tag-bit-flip"), ["authenticationTag"]);
        assert_eq!(
            changed("crypto.tamper.metadata-changed"),
            ["ciphertextMetadata"]
        );
        assert_eq!(
            changed("crypto.tamper.metadata-removed"),
            ["-ciphertextMetadata"]
        );
        assert_eq!(
            changed("crypto.tamper.metadata-added"),
            ["ciphertextMetadata"]
        );
        let v = body(&built(&cases, &ctx, "crypto.tamper.tag-truncated").unwrap());
        assert_eq!(bytes_of(&v, "authenticationTag").unwrap().len(), 12);
        let v = body(&built(&cases, &ctx, "crypto.tamper.ciphertext-truncated").unwrap());
        assert_eq!(bytes_of(&v, "ciphertext").unwrap().len(), 11);
        let v = body(&built(&cases, &ctx, "crypto.tamper.metadata-moved-into-aad").unwrap());
        assert_eq!(v["additionalAuthenticatedData"], json!("AQAAAAE="));
        assert!(v.get("ciphertextMetadata").is_none());
        let step = built(&cases, &ctx, "crypto.tamper.other-key").unwrap();
        assert_eq!(step.req.path, "/ks/kms/xks/v1/keys/dec-key/decrypt");
        // Every tampering expects InvalidCiphertextException.
        for c in cases.iter().filter(|c| c.id.starts_with("crypto.tamper.")) {
            let s = built(&cases, &ctx, &c.id).unwrap();
            assert_eq!(
                s.expect,
                Expect::Error(ErrorName::InvalidCiphertextException),
                "{}",
                c.id
            );
        }
    }

    #[test]
    fn validation_bodies_are_what_they_say() {
        let ctx = full_ctx();
        let cases = catalogue();
        let v = body(&built(&cases, &ctx, "validation.encrypt.no-kms-key-arn").unwrap());
        assert!(v["requestMetadata"].get("kmsKeyArn").is_none());
        assert!(v["requestMetadata"].get("awsPrincipalArn").is_some());
        let v = body(&built(&cases, &ctx, "validation.decrypt.no-authentication-tag").unwrap());
        assert!(v.get("authenticationTag").is_none() && v.get("ciphertext").is_some());
        let v = body(&built(&cases, &ctx, "validation.metadata.empty-request-metadata").unwrap());
        assert_eq!(v["requestMetadata"], json!({}));
        let s = built(&cases, &ctx, "validation.accepts-2048-char-arns").unwrap();
        let v = body(&s);
        assert_eq!(
            v["requestMetadata"]["awsPrincipalArn"]
                .as_str()
                .unwrap()
                .len(),
            2048
        );
        assert_eq!(
            v["requestMetadata"]["kmsKeyArn"].as_str().unwrap().len(),
            2048
        );
        assert!(
            matches!(s.expect, Expect::Encrypt(ref e) if e.cdiv_requested && e.plaintext_len == PAYLOAD.len())
        );
        let s = built(&cases, &ctx, "crypto.cdiv-only-when-requested").unwrap();
        assert!(matches!(s.expect, Expect::Encrypt(ref e) if !e.cdiv_requested));
        let v = body(&built(&cases, &ctx, "validation.metadata.accepts-no-kms-key-arn").unwrap());
        assert!(v["requestMetadata"].get("kmsKeyArn").is_none());
        assert_eq!(v["requestMetadata"]["kmsOperation"], "CreateKey");
        // Health bodies carry only kmsRequestId and kmsOperation.
        let v = body(&built(&cases, &ctx, "health.kms-health-check").unwrap());
        let md = v["requestMetadata"].as_object().unwrap();
        assert_eq!(md.len(), 2);
        assert_eq!(md["kmsOperation"], "KmsHealthCheck");
        // Request ids are fresh.
        assert_ne!(ctx.request_id(), ctx.request_id());
        assert_eq!(ctx.request_id().len(), 36);
        assert_eq!(unknown_long_key_id().len(), 128);
        assert!(unknown_long_key_id()
            .parse::<xks_wire::ExternalKeyId>()
            .is_ok());
    }

    /// Where the spec and AWS's tools disagree, the case carries both
    /// readings; where the spec allows several answers, all of them.
    #[test]
    fn ambiguous_and_alternative_cases_carry_every_reading() {
        let ctx = full_ctx();
        let cases = catalogue();
        for id in [
            "cdiv.encrypt-only.aad",
            "cdiv.encrypt-only.no-aad",
            "health.empty-body",
            "health.no-kms-request-id",
            "health.no-kms-operation",
            "health.not-json",
        ] {
            match built(&cases, &ctx, id).unwrap().expect {
                Expect::Ambiguous(a) => {
                    assert!(matches!(a.aws_tools, Expect::Error(_)), "{id}");
                    assert!(
                        matches!(a.spec_text, Expect::Encrypt(_) | Expect::Health),
                        "{id}"
                    );
                    assert!(!a.clause.is_empty());
                }
                e => panic!("{id}: {e:?}"),
            }
        }
        let step = built(&cases, &ctx, "cdiv.encrypt-only.no-aad").unwrap();
        assert_eq!(step.req.path, "/ks/kms/xks/v1/keys/enc-key/encrypt");
        let v = body(&step);
        assert_eq!(v["ciphertextDataIntegrityValueAlgorithm"], "SHA_256");
        assert!(v.get("additionalAuthenticatedData").is_none());
        // The plain encrypt-only case asks no CDIV (issue 14, item 3).
        let v = body(&built(&cases, &ctx, "keys.encrypt-only.encrypt").unwrap());
        assert!(v.get("ciphertextDataIntegrityValueAlgorithm").is_none());
        match built(&cases, &ctx, "validation.accepts-unknown-kms-operation")
            .unwrap()
            .expect
        {
            Expect::OneOf(all) => {
                assert_eq!(all[1], Expect::Error(ErrorName::AccessDeniedException))
            }
            e => panic!("{e:?}"),
        }
        // The escaped principal is sent as JSON \u escapes.
        let step = built(&cases, &ctx, "request-metadata.escaped-unicode-principal").unwrap();
        let text = String::from_utf8(step.req.body.clone()).unwrap();
        assert!(text.contains(r"role/\u00e9t\u00e9-\ud83d\udd10"), "{text}");
        let v = body(&step);
        assert_eq!(
            v["requestMetadata"]["awsPrincipalArn"],
            "arn:aws:iam::111122223333:role/été-🔐"
        );
    }

    #[test]
    fn selection_by_prefix() {
        let only = vec!["sigv4".to_owned(), "crypto.tamper".to_owned()];
        assert!(selected("sigv4.too-old", &only));
        assert!(selected("crypto.tamper.aad-added", &only));
        assert!(!selected("crypto.round-trip.1.no-aad", &only));
        assert!(!selected("sigv4x.other", &only));
        assert!(selected("anything", &[]));
        assert!(selected(
            "keys.disabled.encrypt",
            &["keys.disabled.encrypt".to_owned()]
        ));
    }

    #[test]
    fn helpers() {
        assert_eq!(camel_to_kebab("awsPrincipalArn"), "aws-principal-arn");
        assert_eq!(wrong_secret("abcA"), "abcB");
        assert_eq!(wrong_secret("abcd"), "abcA");
        assert_eq!(other_region("us-west-2"), "eu-west-1");
        assert_ne!(
            unknown_access_key_id("XKSCONFORMANCEUNKNOWNKEYA"),
            "XKSCONFORMANCEUNKNOWNKEYA"
        );
        assert!(xks_client::config::valid_access_key_id(
            &unknown_access_key_id(AK)
        ));
        assert_eq!(
            unknown_prefix_path("/kms/xks/v1"),
            "/xks-conformance-unknown-prefix/kms/xks/v1/health"
        );
    }
}
