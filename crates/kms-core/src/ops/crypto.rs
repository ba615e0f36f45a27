//! The cryptographic operations, one handler each for every kind of key.
//! The key provides its cryptography: symmetric keys their local AES-GCM
//! material, external key store keys that material plus the external key
//! (through [`crate::xks::keys`]), RSA, ECC, HMAC and ML-KEM/ML-DSA keys
//! their parsed material ([`crate::crypto::asymmetric`]).
//!
//! Order of checks, as AWS: the key's state (and, for external key store
//! keys, its store's connection), the key type table
//! ([`crate::keys::spec::check_usage`]), the algorithm against the key's
//! spec, then DryRun, then the work.

use super::ignores_ciphertext;
use super::{dry_run, no_recipient, Ctx};
use crate::api::blob::{Blob, SensitiveBlob};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::crypto::asymmetric::{self, AsymError, KeyMaterial, MessageType as Mt};
use crate::crypto::{self, Secret};
use crate::keys::spec::{self, EncryptionAlgorithm};
use crate::keys::{KeyState, Operation};
use crate::store::KeyEntry;
use crate::xks::keys as xks;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

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
pub(crate) async fn off_runtime<T: Send + 'static>(
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

pub(crate) fn material_error(_: AsymError) -> KmsError {
    KmsError::Internal("Key material generation failed.".into())
}

fn asym_internal(e: AsymError) -> KmsError {
    match e {
        AsymError::Unsupported => KmsError::UnsupportedOperation(
            "This key was created before kms-core supported MessageType EXTERNAL_MU; sign the RAW message.".into(),
        ),
        e => KmsError::Internal(format!("Cryptographic failure: {e}")),
    }
}

fn invalid_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext(String::new())
}

/// The canonical encryption context (AAD) of a request.
fn aad(context: &Option<BTreeMap<String, String>>) -> Vec<u8> {
    crypto::canonical_context(
        context
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

/// Whether the key is a symmetric encryption key (local or external).
fn symmetric(entry: &KeyEntry) -> bool {
    entry.record.key_spec == KeySpec::SymmetricDefault
}

/// The key's state allows `op` (an external key store key whose store is
/// not connected is `Unavailable`).
pub fn usable(ctx: &Ctx<'_>, entry: &KeyEntry, op: Operation) -> Result<(), KmsError> {
    let r = &entry.record;
    if xks::is_xks(r)
        && matches!(r.key_state, KeyState::Enabled | KeyState::Disabled)
        && !xks::connected(ctx.registry, r)
    {
        return Err(KmsError::InvalidState(format!("{} is unavailable.", r.arn)));
    }
    r.check(op).map_err(|e| super::state_error(e, &r.arn))
}

/// State, then the key type table.
fn check(ctx: &Ctx<'_>, entry: &KeyEntry, op: Operation) -> Result<(), KmsError> {
    usable(ctx, entry, op)?;
    spec::check_usage(&entry.record, op)
}

/// An external key store key's store must be reachable before DryRun
/// answers.
fn ready(ctx: &Ctx<'_>, entry: &KeyEntry) -> Result<(), KmsError> {
    if xks::is_xks(&entry.record) {
        xks::client_for(ctx.registry, &entry.record)?;
    }
    Ok(())
}

fn call<'a>(ctx: &'a Ctx<'a>, operation: Operation) -> xks::Call<'a> {
    xks::Call {
        registry: ctx.registry,
        principal_arn: &ctx.caller.principal_arn,
        request_id: ctx.request_id,
        operation,
    }
}

/// A ciphertext and the `KeyMaterialId` of the material that made it
/// (none for external key store keys).
type Sealed = (Vec<u8>, Option<String>);

/// Encrypts under the current material of a local symmetric key.
fn seal_local(entry: &KeyEntry, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KmsError> {
    let key = entry
        .current()
        .ok_or(crypto::CryptoError::InvalidKeyMaterial)?;
    Ok((
        key.encrypt(plaintext, aad)?,
        Some(key.material_id().to_string()),
    ))
}

/// Encrypts under a symmetric key of either kind.
async fn seal(
    ctx: &Ctx<'_>,
    entry: &KeyEntry,
    plaintext: &[u8],
    aad: &[u8],
    op: Operation,
) -> Result<Sealed, KmsError> {
    if xks::is_xks(&entry.record) {
        Ok((
            xks::seal(&call(ctx, op), entry, plaintext, aad).await?,
            None,
        ))
    } else {
        seal_local(entry, plaintext, aad)
    }
}

/// Decrypts a symmetric ciphertext of `entry` (the key the blob names,
/// resolved by the pipeline); `dry` stops after every check, before the
/// external key store is called.
async fn open(
    ctx: &Ctx<'_>,
    entry: &KeyEntry,
    blob: &[u8],
    aad: &[u8],
    op: Operation,
    dry: bool,
) -> Result<(Secret, Option<String>), KmsError> {
    if crate::xks::envelope::is_xks_blob(blob) {
        let parsed = xks::parse(entry, blob)?;
        usable(ctx, entry, op)?;
        ready(ctx, entry)?;
        dry_run(Some(dry))?;
        return Ok((xks::open(&call(ctx, op), entry, &parsed, aad).await?, None));
    }
    if xks::is_xks(&entry.record) {
        // External key store keys never make single-layer blobs.
        return Err(invalid_ciphertext());
    }
    let parsed = crypto::Blob::parse(blob).map_err(|_| invalid_ciphertext())?;
    usable(ctx, entry, op)?;
    let key = entry
        .version(parsed.version)
        .ok_or_else(invalid_ciphertext)?;
    let plaintext = key
        .decrypt(&parsed, aad)
        .map_err(|_| invalid_ciphertext())?;
    dry_run(Some(dry))?;
    Ok((plaintext, Some(key.material_id().to_string())))
}

/// Symmetric keys take only SYMMETRIC_DEFAULT.
fn symmetric_algorithm(alg: Option<EncryptionAlgorithmSpec>) -> Result<(), KmsError> {
    match alg {
        None | Some(EncryptionAlgorithmSpec::SymmetricDefault) => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "The encryption algorithm {other} is not valid for a symmetric encryption KMS key."
        ))),
    }
}

/// The encryption algorithm for an asymmetric key: one of the key's (the
/// default SYMMETRIC_DEFAULT never is).
fn asymmetric_algorithm(
    entry: &KeyEntry,
    alg: Option<EncryptionAlgorithmSpec>,
) -> Result<EncryptionAlgorithm, KmsError> {
    let (s, usage) = spec::of_record(&entry.record);
    let alg = alg.unwrap_or(EncryptionAlgorithmSpec::SymmetricDefault);
    if s.encryption_algorithms(usage).contains(&alg) {
        Ok(alg)
    } else {
        Err(spec::incompatible_algorithm(alg.as_str(), s))
    }
}

/// Asymmetric keys take no encryption context.
fn no_context(context: &Option<BTreeMap<String, String>>, field: &str) -> Result<(), KmsError> {
    if context.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(KmsError::Validation(format!(
            "{field} is not supported with asymmetric KMS keys; an encryption context is valid only with symmetric encryption KMS keys."
        )));
    }
    Ok(())
}

fn material(entry: &KeyEntry) -> Result<&Arc<KeyMaterial>, KmsError> {
    entry
        .current_material()
        .ok_or_else(|| KmsError::Internal("The key's current material is missing.".into()))
}

fn rsa_encrypt(
    entry: &KeyEntry,
    alg: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let (s, _) = spec::of_record(&entry.record);
    let max = alg.max_plaintext(s).unwrap_or(0);
    if plaintext.len() > max {
        return Err(KmsError::Validation(format!(
            "Algorithm {} and key spec {} cannot encrypt data larger than {max} bytes.",
            alg.as_str(),
            s.as_str()
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
            AsymError::BadCiphertext => invalid_ciphertext(),
            other => asym_internal(other),
        })
}

fn blob_bytes(b: &Option<Blob>) -> &[u8] {
    b.as_ref().map_or(&[][..], Blob::as_bytes)
}

// --- Encrypt / Decrypt / ReEncrypt -----------------------------------------

pub async fn encrypt(ctx: &Ctx<'_>, req: EncryptRequest) -> Result<EncryptResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let op = Operation::Encrypt;
    let (blob, alg) = if symmetric(entry) {
        symmetric_algorithm(req.encryption_algorithm)?;
        usable(ctx, entry, op)?;
        ready(ctx, entry)?;
        dry_run(req.dry_run)?;
        let (blob, _) = seal(
            ctx,
            entry,
            req.plaintext.as_bytes(),
            &aad(&req.encryption_context),
            op,
        )
        .await?;
        (blob, EncryptionAlgorithmSpec::SymmetricDefault)
    } else {
        check(ctx, entry, op)?;
        let alg = asymmetric_algorithm(entry, req.encryption_algorithm)?;
        no_context(&req.encryption_context, "EncryptionContext")?;
        dry_run(req.dry_run)?;
        (rsa_encrypt(entry, alg, req.plaintext.as_bytes())?, alg)
    };
    Ok(EncryptResponse {
        ciphertext_blob: Some(Blob(blob)),
        key_id: Some(entry.record.arn.clone()),
        encryption_algorithm: Some(alg),
    })
}

pub async fn decrypt(ctx: &Ctx<'_>, req: DecryptRequest) -> Result<DecryptResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    no_recipient(&req.recipient)?;
    let op = Operation::Decrypt;
    let blob = blob_bytes(&req.ciphertext_blob);
    if ignores_ciphertext(req.dry_run, &req.dry_run_modifiers) {
        // Authorization passed (the pipeline's step); the key must allow
        // the operation; the ciphertext is not read.
        check(ctx, entry, op)?;
        ready(ctx, entry)?;
        return Err(KmsError::DryRunOperation);
    }
    let (plaintext, alg, material_id) = if symmetric(entry) {
        symmetric_algorithm(req.encryption_algorithm)?;
        let (pt, material_id) = open(
            ctx,
            entry,
            blob,
            &aad(&req.encryption_context),
            op,
            req.dry_run == Some(true),
        )
        .await?;
        (pt, EncryptionAlgorithmSpec::SymmetricDefault, material_id)
    } else {
        check(ctx, entry, op)?;
        let alg = asymmetric_algorithm(entry, req.encryption_algorithm)?;
        no_context(&req.encryption_context, "EncryptionContext")?;
        dry_run(req.dry_run)?;
        (rsa_decrypt(entry, alg, blob)?, alg, None)
    };
    Ok(DecryptResponse {
        key_id: Some(entry.record.arn.clone()),
        plaintext: Some(plaintext.into()),
        encryption_algorithm: Some(alg),
        key_material_id: material_id,
        ..Default::default()
    })
}

pub async fn re_encrypt(
    ctx: &Ctx<'_>,
    req: ReEncryptRequest,
) -> Result<ReEncryptResponse, KmsError> {
    let source = ctx.key(KeyRole::Source)?;
    let destination = ctx.key(KeyRole::Destination)?;
    let op = Operation::ReEncrypt;
    let dry = req.dry_run == Some(true);
    let check_destination = || -> Result<(), KmsError> {
        check(ctx, destination, op)?;
        ready(ctx, destination)
    };
    let blob = blob_bytes(&req.ciphertext_blob);
    if ignores_ciphertext(req.dry_run, &req.dry_run_modifiers) {
        check(ctx, source, op)?;
        ready(ctx, source)?;
        check_destination()?;
        return Err(KmsError::DryRunOperation);
    }
    let (source_alg, plaintext, source_material_id) = if symmetric(source) {
        symmetric_algorithm(req.source_encryption_algorithm)?;
        if symmetric(destination) {
            symmetric_algorithm(req.destination_encryption_algorithm)?;
        }
        if dry {
            // Every check of both sides, no external key store call.
            check_destination()?;
        }
        let (pt, material_id) = open(
            ctx,
            source,
            blob,
            &aad(&req.source_encryption_context),
            op,
            dry,
        )
        .await?;
        (EncryptionAlgorithmSpec::SymmetricDefault, pt, material_id)
    } else {
        check(ctx, source, op)?;
        let alg = asymmetric_algorithm(source, req.source_encryption_algorithm)?;
        no_context(&req.source_encryption_context, "SourceEncryptionContext")?;
        (alg, rsa_decrypt(source, alg, blob)?, None)
    };
    check_destination()?;
    let (destination_alg, out, destination_material_id) = if symmetric(destination) {
        symmetric_algorithm(req.destination_encryption_algorithm)?;
        dry_run(req.dry_run)?;
        let (out, material_id) = seal(
            ctx,
            destination,
            plaintext.expose(),
            &aad(&req.destination_encryption_context),
            op,
        )
        .await?;
        (EncryptionAlgorithmSpec::SymmetricDefault, out, material_id)
    } else {
        let alg = asymmetric_algorithm(destination, req.destination_encryption_algorithm)?;
        no_context(
            &req.destination_encryption_context,
            "DestinationEncryptionContext",
        )?;
        dry_run(req.dry_run)?;
        (
            alg,
            rsa_encrypt(destination, alg, plaintext.expose())?,
            None,
        )
    };
    Ok(ReEncryptResponse {
        ciphertext_blob: Some(Blob(out)),
        source_key_id: Some(source.record.arn.clone()),
        key_id: Some(destination.record.arn.clone()),
        source_encryption_algorithm: Some(source_alg),
        destination_encryption_algorithm: Some(destination_alg),
        source_key_material_id: source_material_id,
        destination_key_material_id: destination_material_id,
    })
}

// --- Data keys ---------------------------------------------------------------

/// GenerateDataKey and GenerateDataKeyWithoutPlaintext: the data key and
/// its ciphertext.
async fn data_key(
    ctx: &Ctx<'_>,
    op: Operation,
    key_spec: Option<DataKeySpec>,
    number_of_bytes: Option<i32>,
    recipient: &Option<RecipientInfo>,
    context: &Option<BTreeMap<String, String>>,
    dry: Option<bool>,
) -> Result<(Secret, Sealed, String), KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, op)?;
    let len = crypto::data_key_len(
        key_spec.map(DataKeySpec::as_str),
        number_of_bytes.map(i64::from),
    )
    .map_err(|_| {
        KmsError::Validation("Please specify either number of bytes or key spec.".into())
    })?;
    no_recipient(recipient)?;
    ready(ctx, entry)?;
    dry_run(dry)?;
    let data_key = crypto::generate_data_key(len)?;
    let sealed = seal(ctx, entry, data_key.expose(), &aad(context), op).await?;
    Ok((data_key, sealed, entry.record.arn.clone()))
}

pub async fn generate_data_key(
    ctx: &Ctx<'_>,
    req: GenerateDataKeyRequest,
) -> Result<GenerateDataKeyResponse, KmsError> {
    let (key, (blob, material_id), arn) = data_key(
        ctx,
        Operation::GenerateDataKey,
        req.key_spec,
        req.number_of_bytes,
        &req.recipient,
        &req.encryption_context,
        req.dry_run,
    )
    .await?;
    Ok(GenerateDataKeyResponse {
        ciphertext_blob: Some(Blob(blob)),
        key_id: Some(arn),
        plaintext: Some(key.into()),
        key_material_id: material_id,
        ..Default::default()
    })
}

pub async fn generate_data_key_without_plaintext(
    ctx: &Ctx<'_>,
    req: GenerateDataKeyWithoutPlaintextRequest,
) -> Result<GenerateDataKeyWithoutPlaintextResponse, KmsError> {
    let (_, (blob, material_id), arn) = data_key(
        ctx,
        Operation::GenerateDataKeyWithoutPlaintext,
        req.key_spec,
        req.number_of_bytes,
        &None,
        &req.encryption_context,
        req.dry_run,
    )
    .await?;
    Ok(GenerateDataKeyWithoutPlaintextResponse {
        ciphertext_blob: Some(Blob(blob)),
        key_id: Some(arn),
        key_material_id: material_id,
    })
}

/// GenerateDataKeyPair(WithoutPlaintext): (public key, private key, its
/// ciphertext, key ARN, pair spec).
async fn data_key_pair(
    ctx: &Ctx<'_>,
    op: Operation,
    pair_spec: DataKeyPairSpec,
    recipient: &Option<RecipientInfo>,
    context: &Option<BTreeMap<String, String>>,
    dry: Option<bool>,
) -> Result<(Vec<u8>, Secret, Sealed, String, DataKeyPairSpec), KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    if xks::is_xks(&entry.record) {
        return Err(xks::unsupported(&entry.record));
    }
    check(ctx, entry, op)?;
    let s = spec::parse_data_key_pair_spec(pair_spec.as_str())?;
    no_recipient(recipient)?;
    dry_run(dry)?;
    let (public, private) = if s.slow_to_generate() {
        off_runtime(move || asymmetric::generate_data_key_pair(s)).await?
    } else {
        asymmetric::generate_data_key_pair(s)
    }
    .map_err(material_error)?;
    let sealed = seal_local(entry, private.expose(), &aad(context))?;
    Ok((public, private, sealed, entry.record.arn.clone(), pair_spec))
}

pub async fn generate_data_key_pair(
    ctx: &Ctx<'_>,
    req: GenerateDataKeyPairRequest,
) -> Result<GenerateDataKeyPairResponse, KmsError> {
    let (public, private, (blob, material_id), arn, s) = data_key_pair(
        ctx,
        Operation::GenerateDataKeyPair,
        req.key_pair_spec,
        &req.recipient,
        &req.encryption_context,
        req.dry_run,
    )
    .await?;
    Ok(GenerateDataKeyPairResponse {
        private_key_ciphertext_blob: Some(Blob(blob)),
        private_key_plaintext: Some(private.into()),
        public_key: Some(Blob(public)),
        key_id: Some(arn),
        key_pair_spec: Some(s),
        key_material_id: material_id,
        ..Default::default()
    })
}

pub async fn generate_data_key_pair_without_plaintext(
    ctx: &Ctx<'_>,
    req: GenerateDataKeyPairWithoutPlaintextRequest,
) -> Result<GenerateDataKeyPairWithoutPlaintextResponse, KmsError> {
    let (public, _, (blob, material_id), arn, s) = data_key_pair(
        ctx,
        Operation::GenerateDataKeyPairWithoutPlaintext,
        req.key_pair_spec,
        &None::<RecipientInfo>,
        &req.encryption_context,
        req.dry_run,
    )
    .await?;
    Ok(GenerateDataKeyPairWithoutPlaintextResponse {
        private_key_ciphertext_blob: Some(Blob(blob)),
        public_key: Some(Blob(public)),
        key_id: Some(arn),
        key_pair_spec: Some(s),
        key_material_id: material_id,
    })
}

// --- GetPublicKey ------------------------------------------------------------

pub fn get_public_key(
    ctx: &Ctx<'_>,
    _req: GetPublicKeyRequest,
) -> Result<GetPublicKeyResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, Operation::GetPublicKey)?;
    let key = material(entry)?;
    let t = super::keys::type_fields(&entry.record);
    Ok(GetPublicKeyResponse {
        key_id: Some(entry.record.arn.clone()),
        public_key: Some(Blob(key.public_key_der().to_vec())),
        key_usage: Some(entry.record.key_usage),
        key_spec: Some(entry.record.key_spec),
        customer_master_key_spec: t.customer_master_key_spec,
        encryption_algorithms: t.encryption_algorithms,
        signing_algorithms: t.signing_algorithms,
        key_agreement_algorithms: t.key_agreement_algorithms,
        encapsulation_algorithms: t.encapsulation_algorithms,
    })
}

// --- Sign / Verify -----------------------------------------------------------

fn signing_params(
    entry: &KeyEntry,
    alg: SigningAlgorithmSpec,
    message_type: Option<MessageType>,
    message: &[u8],
) -> Result<Mt, KmsError> {
    let (s, usage) = spec::of_record(&entry.record);
    let name = alg.as_str();
    if !s.signing_algorithms(usage).contains(&alg) {
        return Err(spec::incompatible_algorithm(name, s));
    }
    Ok(match message_type.unwrap_or(MessageType::Raw) {
        MessageType::Digest => {
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
            Mt::Digest
        }
        MessageType::ExternalMu => {
            if alg != SigningAlgorithmSpec::MlDsaShake256 {
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
            Mt::ExternalMu
        }
        MessageType::Raw => Mt::Raw,
    })
}

pub async fn sign(ctx: &Ctx<'_>, req: SignRequest) -> Result<SignResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, Operation::Sign)?;
    let alg = req.signing_algorithm;
    let kind = signing_params(entry, alg, req.message_type, req.message.as_bytes())?;
    dry_run(req.dry_run)?;
    let key = Arc::clone(material(entry)?);
    let message = req.message;
    let signature = if spec::of_record(&entry.record).0.is_rsa() {
        // An RSA private-key operation costs 0.3 ms (2048) to several ms
        // (4096) of CPU: keep it off the async workers so it cannot stall
        // other requests.
        tokio::task::spawn_blocking(move || key.sign(alg, kind, message.as_bytes()))
            .await
            .map_err(|_| KmsError::Internal("Signing failed.".into()))?
    } else {
        key.sign(alg, kind, message.as_bytes())
    }
    .map_err(asym_internal)?;
    Ok(SignResponse {
        key_id: Some(entry.record.arn.clone()),
        signature: Some(Blob(signature)),
        signing_algorithm: Some(alg),
    })
}

pub fn verify(ctx: &Ctx<'_>, req: VerifyRequest) -> Result<VerifyResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, Operation::Verify)?;
    let alg = req.signing_algorithm;
    let kind = signing_params(entry, alg, req.message_type, req.message.as_bytes())?;
    dry_run(req.dry_run)?;
    match material(entry)?.verify(alg, kind, req.message.as_bytes(), req.signature.as_bytes()) {
        Ok(()) => Ok(VerifyResponse {
            key_id: Some(entry.record.arn.clone()),
            signature_valid: Some(true),
            signing_algorithm: Some(alg),
        }),
        Err(AsymError::BadSignature) => Err(KmsError::KmsInvalidSignature(String::new())),
        Err(e) => Err(asym_internal(e)),
    }
}

// --- GenerateMac / VerifyMac -------------------------------------------------

fn mac_algorithm(entry: &KeyEntry, alg: MacAlgorithmSpec) -> Result<MacAlgorithmSpec, KmsError> {
    let (s, _) = spec::of_record(&entry.record);
    match s.mac_algorithm() {
        Some(a) if a == alg => Ok(alg),
        _ => Err(spec::incompatible_algorithm(alg.as_str(), s)),
    }
}

pub fn generate_mac(
    ctx: &Ctx<'_>,
    req: GenerateMacRequest,
) -> Result<GenerateMacResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, Operation::GenerateMac)?;
    let alg = mac_algorithm(entry, req.mac_algorithm)?;
    dry_run(req.dry_run)?;
    let mac = material(entry)?
        .mac(req.message.as_bytes())
        .map_err(asym_internal)?;
    Ok(GenerateMacResponse {
        key_id: Some(entry.record.arn.clone()),
        mac: Some(Blob(mac)),
        mac_algorithm: Some(alg),
    })
}

pub fn verify_mac(ctx: &Ctx<'_>, req: VerifyMacRequest) -> Result<VerifyMacResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, Operation::VerifyMac)?;
    let alg = mac_algorithm(entry, req.mac_algorithm)?;
    dry_run(req.dry_run)?;
    match material(entry)?.verify_mac(req.message.as_bytes(), req.mac.as_bytes()) {
        Ok(()) => Ok(VerifyMacResponse {
            key_id: Some(entry.record.arn.clone()),
            mac_valid: Some(true),
            mac_algorithm: Some(alg),
        }),
        Err(AsymError::BadSignature) => Err(KmsError::KmsInvalidMac(String::new())),
        Err(e) => Err(asym_internal(e)),
    }
}

// --- DeriveSharedSecret, Encapsulate, Decapsulate ----------------------------

pub fn derive_shared_secret(
    ctx: &Ctx<'_>,
    req: DeriveSharedSecretRequest,
) -> Result<DeriveSharedSecretResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, Operation::DeriveSharedSecret)?;
    no_recipient(&req.recipient)?;
    dry_run(req.dry_run)?;
    let secret = material(entry)?
        .derive(req.public_key.as_bytes())
        .map_err(|e| match e {
            // AWS answers an unusable public key without a message.
            AsymError::BadPublicKey => KmsError::Validation(String::new()),
            other => asym_internal(other),
        })?;
    Ok(DeriveSharedSecretResponse {
        key_id: Some(entry.record.arn.clone()),
        shared_secret: Some(secret.into()),
        key_agreement_algorithm: Some(req.key_agreement_algorithm),
        key_origin: Some(entry.record.origin),
        ..Default::default()
    })
}

fn kem_key<'a>(ctx: &'a Ctx<'a>, op: Operation) -> Result<&'a Arc<KeyEntry>, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    check(ctx, entry, op)?;
    Ok(entry)
}

pub fn encapsulate(
    ctx: &Ctx<'_>,
    req: EncapsulateRequest,
) -> Result<EncapsulateResponse, KmsError> {
    let entry = kem_key(ctx, Operation::Encapsulate)?;
    dry_run(req.dry_run)?;
    let (ciphertext, secret) = material(entry)?.encapsulate().map_err(asym_internal)?;
    Ok(EncapsulateResponse {
        key_id: Some(entry.record.arn.clone()),
        shared_secret: Some(secret.into()),
        shared_secret_ciphertext_blob: Some(Blob(ciphertext)),
        encapsulation_algorithm: Some(req.encapsulation_algorithm),
    })
}

pub fn decapsulate(
    ctx: &Ctx<'_>,
    req: DecapsulateRequest,
) -> Result<DecapsulateResponse, KmsError> {
    let entry = kem_key(ctx, Operation::Decapsulate)?;
    dry_run(req.dry_run)?;
    let secret = material(entry)?
        .decapsulate(req.shared_secret_ciphertext_blob.as_bytes())
        .map_err(|e| match e {
            AsymError::BadCiphertext => invalid_ciphertext(),
            other => asym_internal(other),
        })?;
    Ok(DecapsulateResponse {
        key_id: Some(entry.record.arn.clone()),
        shared_secret: Some(SensitiveBlob::from(secret)),
        encapsulation_algorithm: Some(req.encapsulation_algorithm),
    })
}
