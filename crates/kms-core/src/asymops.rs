//! Operations on HMAC and asymmetric keys: CreateKey of every key spec
//! (material generated off the async runtime when slow), GetPublicKey,
//! Sign/Verify, GenerateMac/VerifyMac, DeriveSharedSecret,
//! Encapsulate/Decapsulate, Encrypt/Decrypt/ReEncrypt with RSA keys, and
//! GenerateDataKeyPair(WithoutPlaintext).
//!
//! Every operation resolves the key, checks its state (`keys::check_state`)
//! and then the key type table (`keyspec::check_usage`), then the
//! algorithm against the key's spec.

use crate::asymmetric::{self, AsymError, KeyMaterial, MessageType};
use crate::crypto::{self, Secret};
use crate::api::error::KmsError;
use crate::keyops::{
    self, b64_field, context, crypto_internal, dry_run, state_error, str_field, Ctx,
};
use crate::keys::Operation;
use crate::keyspec::{self, EncryptionAlgorithm, KeySpec, KeyUsage, SigningAlgorithm};
use crate::store::KeyEntry;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Slow key generation (RSA) runs on the blocking pool, at most this many
/// at once: one core stays free for request handling.
fn generation_permits() -> &'static Semaphore {
    static SEM: OnceLock<Semaphore> = OnceLock::new();
    SEM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new(cores.saturating_sub(1).max(1))
    })
}

/// Runs `f` on the blocking pool under the generation limit.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, KmsError> {
    let _permit = generation_permits()
        .acquire()
        .await
        .map_err(|_| KmsError::Internal("Key generation is shutting down.".into()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| KmsError::Internal("Key generation failed.".into()))
}

fn material_error(_: AsymError) -> KmsError {
    KmsError::Internal("Key material generation failed.".into())
}

/// Fresh material for a key of `spec`/`usage` (synchronously).
pub fn new_material(spec: KeySpec, usage: KeyUsage) -> Result<Secret, KmsError> {
    if spec == KeySpec::SymmetricDefault {
        return crypto::new_key_material().map_err(crypto_internal);
    }
    asymmetric::generate(spec, usage).map_err(material_error)
}

/// CreateKey for every key spec; RSA material is generated on the
/// blocking pool so that other requests are not held up.
pub async fn create_key(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let (spec, usage) = keyspec::parse_create(body)?;
    if !spec.slow_to_generate() {
        return keyops::create_key(ctx, body);
    }
    let material = off_runtime(move || asymmetric::generate(spec, usage))
        .await?
        .map_err(material_error)?;
    keyops::create_key_with_material(ctx, body, Some(material))
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn secret_b64(s: &Secret) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(s.expose()))
}

/// The key of `field`, if the request names one that is not a symmetric
/// encryption key (the hook for Encrypt and Decrypt).
pub fn non_symmetric_key(
    ctx: &Ctx<'_>,
    body: &Value,
    field: &str,
) -> Result<Option<Arc<KeyEntry>>, KmsError> {
    let Some(reference) = str_field(body, field) else {
        return Ok(None);
    };
    let entry = ctx.resolve(reference)?;
    Ok((!keyspec::is_symmetric(&entry.record)).then_some(entry))
}

/// State, then key type table.
fn check(entry: &KeyEntry, op: Operation) -> Result<(), KmsError> {
    entry
        .record
        .check(op)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    keyspec::check_usage(&entry.record, op)
}

fn resolve_typed(
    ctx: &Ctx<'_>,
    body: &Value,
    field: &str,
    op: Operation,
) -> Result<Arc<KeyEntry>, KmsError> {
    let entry = ctx.resolve(str_field(body, field).unwrap_or_default())?;
    check(&entry, op)?;
    Ok(entry)
}

fn material(entry: &KeyEntry) -> Result<&Arc<KeyMaterial>, KmsError> {
    entry
        .current_material()
        .ok_or_else(|| KmsError::Internal("The key's current material is missing.".into()))
}

fn required_b64(body: &Value, field: &str) -> Result<Secret, KmsError> {
    Ok(b64_field(body, field)?.unwrap_or_else(|| Secret::new(Vec::new())))
}

fn spec_of(entry: &KeyEntry) -> (KeySpec, KeyUsage) {
    keyspec::of_record(&entry.record)
}

// --- GetPublicKey ---------------------------------------------------------

pub fn get_public_key(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::GetPublicKey)?;
    let key = material(&entry)?;
    let mut m = Map::new();
    m.insert("KeyId".into(), json!(entry.record.arn));
    m.insert("PublicKey".into(), json!(b64(key.public_key_der())));
    m.insert("KeyUsage".into(), json!(entry.record.key_usage));
    keyspec::insert_type_fields(&mut m, &entry.record);
    Ok(Value::Object(m))
}

// --- Sign / Verify --------------------------------------------------------

fn signing_params(
    entry: &KeyEntry,
    body: &Value,
    message: &[u8],
) -> Result<(SigningAlgorithm, MessageType), KmsError> {
    let (spec, usage) = spec_of(entry);
    let name = str_field(body, "SigningAlgorithm").unwrap_or_default();
    let alg = SigningAlgorithm::parse(name)
        .filter(|a| spec.signing_algorithms(usage).contains(a))
        .ok_or_else(|| keyspec::incompatible_algorithm(name, spec))?;
    let kind = match str_field(body, "MessageType").unwrap_or("RAW") {
        "DIGEST" => {
            let Some(len) = alg.digest_len() else {
                return Err(KmsError::Validation(format!(
                    "MessageType DIGEST is not valid for signing algorithm {name}; use RAW."
                )));
            };
            if message.len() != len {
                return Err(KmsError::Validation(format!(
                    "Digest is invalid length for algorithm {name}."
                )));
            }
            MessageType::Digest
        }
        "EXTERNAL_MU" => {
            if alg != SigningAlgorithm::MlDsaShake256 {
                return Err(KmsError::Validation(format!(
                    "MessageType EXTERNAL_MU is valid only with ML_DSA_SHAKE_256, not {name}."
                )));
            }
            if message.len() != 64 {
                return Err(KmsError::Validation(
                    "With MessageType EXTERNAL_MU the message must be the 64-byte representative μ."
                        .into(),
                ));
            }
            MessageType::ExternalMu
        }
        _ => MessageType::Raw,
    };
    Ok((alg, kind))
}

fn asym_internal(e: AsymError) -> KmsError {
    match e {
        AsymError::Unsupported => KmsError::UnsupportedOperation(
            "This key was created before kms-core supported MessageType EXTERNAL_MU; sign the RAW message.".into(),
        ),
        e => KmsError::Internal(format!("Cryptographic failure: {e}")),
    }
}

pub async fn sign(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::Sign)?;
    let message = required_b64(body, "Message")?;
    let (alg, kind) = signing_params(&entry, body, message.expose())?;
    dry_run(body)?;
    let key = Arc::clone(material(&entry)?);
    let signature = if spec_of(&entry).0.is_rsa() {
        // An RSA private-key operation costs 0.3 ms (2048) to several ms
        // (4096) of CPU: keep it off the async workers so it cannot stall
        // other requests.
        tokio::task::spawn_blocking(move || key.sign(alg, kind, message.expose()))
            .await
            .map_err(|_| KmsError::Internal("Signing failed.".into()))?
    } else {
        key.sign(alg, kind, message.expose())
    }
    .map_err(asym_internal)?;
    Ok(json!({
        "KeyId": entry.record.arn,
        "Signature": b64(&signature),
        "SigningAlgorithm": alg.as_str(),
    }))
}

pub fn verify(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::Verify)?;
    let message = required_b64(body, "Message")?;
    let signature = required_b64(body, "Signature")?;
    let (alg, kind) = signing_params(&entry, body, message.expose())?;
    dry_run(body)?;
    match material(&entry)?.verify(alg, kind, message.expose(), signature.expose()) {
        Ok(()) => Ok(json!({
            "KeyId": entry.record.arn,
            "SignatureValid": true,
            "SigningAlgorithm": alg.as_str(),
        })),
        Err(AsymError::BadSignature) => Err(KmsError::KmsInvalidSignature(String::new())),
        Err(e) => Err(asym_internal(e)),
    }
}

// --- GenerateMac / VerifyMac ----------------------------------------------

fn mac_algorithm(entry: &KeyEntry, body: &Value) -> Result<&'static str, KmsError> {
    let (spec, _) = spec_of(entry);
    let name = str_field(body, "MacAlgorithm").unwrap_or_default();
    match spec.mac_algorithm() {
        Some(alg) if alg == name => Ok(alg),
        _ => Err(keyspec::incompatible_algorithm(name, spec)),
    }
}

pub fn generate_mac(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::GenerateMac)?;
    let alg = mac_algorithm(&entry, body)?;
    let message = required_b64(body, "Message")?;
    dry_run(body)?;
    let mac = material(&entry)?
        .mac(message.expose())
        .map_err(asym_internal)?;
    Ok(json!({
        "KeyId": entry.record.arn,
        "Mac": b64(&mac),
        "MacAlgorithm": alg,
    }))
}

pub fn verify_mac(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::VerifyMac)?;
    let alg = mac_algorithm(&entry, body)?;
    let message = required_b64(body, "Message")?;
    let mac = required_b64(body, "Mac")?;
    dry_run(body)?;
    match material(&entry)?.verify_mac(message.expose(), mac.expose()) {
        Ok(()) => Ok(json!({
            "KeyId": entry.record.arn,
            "MacValid": true,
            "MacAlgorithm": alg,
        })),
        Err(AsymError::BadSignature) => Err(KmsError::KmsInvalidMac(String::new())),
        Err(e) => Err(asym_internal(e)),
    }
}

// --- DeriveSharedSecret ---------------------------------------------------

fn no_recipient(body: &Value) -> Result<(), KmsError> {
    if body.get("Recipient").is_some_and(|v| !v.is_null()) {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by kms-core.".into(),
        ));
    }
    Ok(())
}

pub fn derive_shared_secret(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::DeriveSharedSecret)?;
    let (spec, _) = spec_of(&entry);
    let alg = str_field(body, "KeyAgreementAlgorithm").unwrap_or_default();
    if alg != "ECDH" {
        return Err(keyspec::incompatible_algorithm(alg, spec));
    }
    no_recipient(body)?;
    let peer = required_b64(body, "PublicKey")?;
    dry_run(body)?;
    let secret = material(&entry)?
        .derive(peer.expose())
        .map_err(|e| match e {
            AsymError::BadPublicKey => KmsError::Validation(format!(
                "PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo of a point on the curve of key spec {}.",
                spec.as_str()
            )),
            other => asym_internal(other),
        })?;
    Ok(json!({
        "KeyId": entry.record.arn,
        "SharedSecret": secret_b64(&secret).as_str(),
        "KeyAgreementAlgorithm": "ECDH",
        "KeyOrigin": entry.record.origin,
    }))
}

// --- Encapsulate / Decapsulate --------------------------------------------

fn encapsulation_algorithm(entry: &KeyEntry, body: &Value) -> Result<(), KmsError> {
    let alg = str_field(body, "EncapsulationAlgorithm").unwrap_or_default();
    if alg != "ML_KEM" {
        return Err(keyspec::incompatible_algorithm(alg, spec_of(entry).0));
    }
    Ok(())
}

pub fn encapsulate(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::Encapsulate)?;
    encapsulation_algorithm(&entry, body)?;
    dry_run(body)?;
    let (ciphertext, secret) = material(&entry)?.encapsulate().map_err(asym_internal)?;
    Ok(json!({
        "KeyId": entry.record.arn,
        "SharedSecret": secret_b64(&secret).as_str(),
        "SharedSecretCiphertextBlob": b64(&ciphertext),
        "EncapsulationAlgorithm": "ML_KEM",
    }))
}

pub fn decapsulate(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = resolve_typed(ctx, body, "KeyId", Operation::Decapsulate)?;
    encapsulation_algorithm(&entry, body)?;
    let ciphertext = required_b64(body, "SharedSecretCiphertextBlob")?;
    dry_run(body)?;
    let secret = material(&entry)?
        .decapsulate(ciphertext.expose())
        .map_err(|e| match e {
            AsymError::BadCiphertext => KmsError::InvalidCiphertext(String::new()),
            other => asym_internal(other),
        })?;
    Ok(json!({
        "KeyId": entry.record.arn,
        "SharedSecret": secret_b64(&secret).as_str(),
        "EncapsulationAlgorithm": "ML_KEM",
    }))
}

// --- Encrypt / Decrypt / ReEncrypt with RSA keys ---------------------------

/// The request's encryption algorithm for an asymmetric key: required
/// (the default SYMMETRIC_DEFAULT does not fit) and one of the key's.
fn encryption_algorithm(
    entry: &KeyEntry,
    body: &Value,
    field: &str,
) -> Result<EncryptionAlgorithm, KmsError> {
    let (spec, usage) = spec_of(entry);
    let name = str_field(body, field).unwrap_or("SYMMETRIC_DEFAULT");
    EncryptionAlgorithm::parse(name)
        .filter(|a| spec.encryption_algorithms(usage).contains(a))
        .ok_or_else(|| keyspec::incompatible_algorithm(name, spec))
}

/// Asymmetric keys take no encryption context.
fn no_context(body: &Value, field: &str) -> Result<(), KmsError> {
    if body
        .get(field)
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(KmsError::Validation(format!(
            "{field} is not supported with asymmetric KMS keys; an encryption context is valid only with symmetric encryption KMS keys."
        )));
    }
    Ok(())
}

fn rsa_encrypt(
    entry: &KeyEntry,
    alg: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let (spec, _) = spec_of(entry);
    let max = alg.max_plaintext(spec).unwrap_or(0);
    if plaintext.len() > max {
        return Err(KmsError::Validation(format!(
            "Plaintext is {} bytes; {} with key spec {} encrypts at most {max} bytes.",
            plaintext.len(),
            alg.as_str(),
            spec.as_str()
        )));
    }
    material(entry)?
        .encrypt(alg, plaintext)
        .map_err(asym_internal)
}

fn rsa_decrypt(
    entry: &KeyEntry,
    alg: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<Secret, KmsError> {
    material(entry)?
        .decrypt(alg, ciphertext)
        .map_err(|e| match e {
            AsymError::BadCiphertext => KmsError::InvalidCiphertext(String::new()),
            other => asym_internal(other),
        })
}

/// Encrypt with a non-symmetric key (only RSA ENCRYPT_DECRYPT keys pass the
/// key type table).
pub fn encrypt(_ctx: &Ctx<'_>, body: &Value, entry: &Arc<KeyEntry>) -> Result<Value, KmsError> {
    check(entry, Operation::Encrypt)?;
    let alg = encryption_algorithm(entry, body, "EncryptionAlgorithm")?;
    no_context(body, "EncryptionContext")?;
    let plaintext = required_b64(body, "Plaintext")?;
    dry_run(body)?;
    let ciphertext = rsa_encrypt(entry, alg, plaintext.expose())?;
    Ok(json!({
        "CiphertextBlob": b64(&ciphertext),
        "KeyId": entry.record.arn,
        "EncryptionAlgorithm": alg.as_str(),
    }))
}

/// Decrypt with a non-symmetric key named by `KeyId` (required for
/// asymmetric ciphertexts, which carry no key id).
pub fn decrypt(_ctx: &Ctx<'_>, body: &Value, entry: &Arc<KeyEntry>) -> Result<Value, KmsError> {
    check(entry, Operation::Decrypt)?;
    let alg = encryption_algorithm(entry, body, "EncryptionAlgorithm")?;
    no_context(body, "EncryptionContext")?;
    let ciphertext = required_b64(body, "CiphertextBlob")?;
    dry_run(body)?;
    let plaintext = rsa_decrypt(entry, alg, ciphertext.expose())?;
    Ok(json!({
        "KeyId": entry.record.arn,
        "Plaintext": secret_b64(&plaintext).as_str(),
        "EncryptionAlgorithm": alg.as_str(),
    }))
}

/// ReEncrypt when the source or the destination key is asymmetric; `None`
/// when both are symmetric (the symmetric path handles it).
pub fn re_encrypt(ctx: &Ctx<'_>, body: &Value) -> Result<Option<Value>, KmsError> {
    let source = non_symmetric_key(ctx, body, "SourceKeyId")?;
    let destination = ctx.resolve(str_field(body, "DestinationKeyId").unwrap_or_default())?;
    if source.is_none() && keyspec::is_symmetric(&destination.record) {
        return Ok(None);
    }
    let blob = required_b64(body, "CiphertextBlob")?;
    let (source_arn, source_alg, plaintext) = match &source {
        Some(entry) => {
            check(entry, Operation::ReEncrypt)?;
            let alg = encryption_algorithm(entry, body, "SourceEncryptionAlgorithm")?;
            no_context(body, "SourceEncryptionContext")?;
            let plaintext = rsa_decrypt(entry, alg, blob.expose())?;
            (entry.record.arn.clone(), alg, plaintext)
        }
        None => {
            keyops::check_algorithm(body, "SourceEncryptionAlgorithm")?;
            let (entry, plaintext) = keyops::open(
                ctx,
                blob.expose(),
                &context(body, "SourceEncryptionContext"),
                str_field(body, "SourceKeyId"),
                Operation::ReEncrypt,
            )?;
            (
                entry.record.arn.clone(),
                EncryptionAlgorithm::SymmetricDefault,
                plaintext,
            )
        }
    };
    check(&destination, Operation::ReEncrypt)?;
    let (destination_alg, out) = if keyspec::is_symmetric(&destination.record) {
        keyops::check_algorithm(body, "DestinationEncryptionAlgorithm")?;
        dry_run(body)?;
        let out = keyops::seal(
            &destination,
            plaintext.expose(),
            &context(body, "DestinationEncryptionContext"),
        )?;
        (EncryptionAlgorithm::SymmetricDefault, out)
    } else {
        let alg = encryption_algorithm(&destination, body, "DestinationEncryptionAlgorithm")?;
        no_context(body, "DestinationEncryptionContext")?;
        dry_run(body)?;
        (alg, rsa_encrypt(&destination, alg, plaintext.expose())?)
    };
    Ok(Some(json!({
        "CiphertextBlob": b64(&out),
        "SourceKeyId": source_arn,
        "KeyId": destination.record.arn,
        "SourceEncryptionAlgorithm": source_alg.as_str(),
        "DestinationEncryptionAlgorithm": destination_alg.as_str(),
    })))
}

// --- GenerateDataKeyPair(WithoutPlaintext) --------------------------------

pub async fn generate_data_key_pair(
    ctx: &Ctx<'_>,
    body: &Value,
    with_plaintext: bool,
) -> Result<Value, KmsError> {
    let op = if with_plaintext {
        Operation::GenerateDataKeyPair
    } else {
        Operation::GenerateDataKeyPairWithoutPlaintext
    };
    let entry = resolve_typed(ctx, body, "KeyId", op)?;
    let spec_name = str_field(body, "KeyPairSpec").unwrap_or_default();
    let spec = keyspec::parse_data_key_pair_spec(spec_name)?;
    no_recipient(body)?;
    dry_run(body)?;
    let (public, private) = if spec.slow_to_generate() {
        off_runtime(move || asymmetric::generate_data_key_pair(spec)).await?
    } else {
        asymmetric::generate_data_key_pair(spec)
    }
    .map_err(material_error)?;
    let blob = keyops::seal(
        &entry,
        private.expose(),
        &context(body, "EncryptionContext"),
    )?;
    let mut out = json!({
        "PrivateKeyCiphertextBlob": b64(&blob),
        "PublicKey": b64(&public),
        "KeyId": entry.record.arn,
        "KeyPairSpec": spec.as_str(),
    });
    if with_plaintext {
        out["PrivateKeyPlaintext"] = json!(secret_b64(&private).as_str());
    }
    Ok(out)
}
