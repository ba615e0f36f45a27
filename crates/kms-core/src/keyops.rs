//! Operations on symmetric keys: create, describe, list, enable/disable,
//! and the cryptographic operations (Encrypt, Decrypt, ReEncrypt,
//! GenerateDataKey, GenerateDataKeyWithoutPlaintext).
//!
//! Every key reference form AWS accepts works (key id, key ARN, alias name,
//! alias ARN); a reference into another account or region is NotFound. Key
//! states follow AWS's table (`keys::check_state`).

use crate::auth::Caller;
use crate::crypto::{self, Blob, CryptoError, Secret};
use crate::api::error::KmsError;
use crate::ids::{KeyId, KeyRef};
use crate::keys::{KeyRecord, KeyState, Operation, StateError, StateErrorKind};
use crate::store::{KeyEntry, Store, StoreError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Symmetric encryption algorithm of `SYMMETRIC_DEFAULT` keys.
const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// Seconds since the epoch, as KMS timestamps are.
pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

pub(crate) fn b64_field(body: &Value, name: &str) -> Result<Option<Secret>, KmsError> {
    match str_field(body, name) {
        None => Ok(None),
        Some(s) => STANDARD
            .decode(s)
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| KmsError::Serialization(format!("{name} is not valid Base64"))),
    }
}

/// Maps a state refusal to AWS's exception for `arn`.
pub fn state_error(e: StateError, arn: &str) -> KmsError {
    let message = e.message(arn);
    match e.kind {
        StateErrorKind::Disabled => KmsError::Disabled(message),
        StateErrorKind::InvalidState => KmsError::InvalidState(message),
    }
}

/// The one mapping of store failures to AWS errors, for the key `arn`.
pub fn store_error(e: StoreError, arn: &str) -> KmsError {
    match e {
        StoreError::NotFound => KmsError::NotFound(format!("Key '{arn}' does not exist")),
        StoreError::AlreadyExists => KmsError::AlreadyExists(format!("Key '{arn}' already exists")),
        StoreError::InvalidMarker => KmsError::InvalidMarker("Invalid marker".into()),
        StoreError::Rejected(refusal) => match refusal.downcast::<StateError>() {
            Ok(state) => state_error(*state, arn),
            Err(other) => match other.downcast::<KmsError>() {
                Ok(kms) => *kms,
                Err(other) => KmsError::Internal(other.to_string()),
            },
        },
        other => KmsError::Internal(format!("The key store failed: {other}")),
    }
}

/// The operation context: who calls, and the store.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub caller: &'a Caller,
}

impl Ctx<'_> {
    fn account(&self) -> &str {
        self.caller.scope.account.as_str()
    }

    fn region(&self) -> &str {
        &self.caller.scope.region
    }

    fn key_not_found(&self, key_id: &str) -> KmsError {
        KmsError::NotFound(format!(
            "Key '{}' does not exist",
            self.caller.scope.key_arn_str(key_id)
        ))
    }

    /// Resolves any key reference form to the cached key.
    pub fn resolve(&self, reference: &str) -> Result<Arc<KeyEntry>, KmsError> {
        let parsed = KeyRef::parse(reference).map_err(|e| match e {
            crate::ids::IdError::Arn(_) => KmsError::NotFound(format!("Invalid arn {reference}")),
            _ => KmsError::NotFound(format!("Invalid keyId '{reference}'")),
        })?;
        if !parsed.in_scope(&self.caller.scope) {
            return Err(KmsError::NotFound(format!("Invalid arn {reference}")));
        }
        let key_id = match &parsed {
            KeyRef::Id(id) | KeyRef::KeyArn { id, .. } => id.as_str().to_owned(),
            KeyRef::Alias(alias) | KeyRef::AliasArn { alias, .. } => {
                self.store
                    .alias(self.account(), self.region(), alias.as_str())
                    .ok_or_else(|| {
                        KmsError::NotFound(format!(
                            "Alias '{}' is not found.",
                            self.caller.scope.alias_arn(alias)
                        ))
                    })?
                    .target_key_id
            }
        };
        self.store
            .key(self.account(), self.region(), &key_id)
            .ok_or_else(|| self.key_not_found(&key_id))
    }

    pub(crate) fn resolve_for(
        &self,
        body: &Value,
        field: &str,
        op: Operation,
    ) -> Result<Arc<KeyEntry>, KmsError> {
        let reference = str_field(body, field).unwrap_or_default();
        let entry = self.resolve(reference)?;
        entry
            .record
            .check(op)
            .map_err(|e| state_error(e, &entry.record.arn))?;
        Ok(entry)
    }
}

/// `KeyMetadata` as AWS returns it.
pub fn key_metadata(r: &KeyRecord) -> Value {
    let mut m = Map::new();
    m.insert("AWSAccountId".into(), json!(r.account));
    m.insert("KeyId".into(), json!(r.key_id));
    m.insert("Arn".into(), json!(r.arn));
    m.insert("CreationDate".into(), json!(r.creation_date));
    m.insert("Enabled".into(), json!(r.enabled));
    m.insert("Description".into(), json!(r.description));
    m.insert("KeyUsage".into(), json!(r.key_usage));
    m.insert("KeyState".into(), json!(r.key_state.as_str()));
    if let Some(d) = r.deletion_date {
        m.insert("DeletionDate".into(), json!(d));
    }
    if let Some(w) = r.pending_deletion_window_days {
        m.insert("PendingDeletionWindowInDays".into(), json!(w));
    }
    m.insert("Origin".into(), json!(r.origin));
    if let Some(id) = &r.custom_key_store_id {
        m.insert("CustomKeyStoreId".into(), json!(id));
    }
    if let Some(id) = &r.xks_key_id {
        m.insert("XksKeyConfiguration".into(), json!({ "Id": id }));
    }
    m.insert("KeyManager".into(), json!(r.key_manager));
    m.insert("CustomerMasterKeySpec".into(), json!(r.key_spec));
    m.insert("KeySpec".into(), json!(r.key_spec));
    m.insert("EncryptionAlgorithms".into(), json!([SYMMETRIC_DEFAULT]));
    m.insert("MultiRegion".into(), json!(r.multi_region));
    crate::keyspec::insert_type_fields(&mut m, r);
    Value::Object(m)
}

pub(crate) fn dry_run(body: &Value) -> Result<(), KmsError> {
    if body.get("DryRun").and_then(Value::as_bool) == Some(true) {
        return Err(KmsError::DryRunOperation);
    }
    Ok(())
}

pub fn create_key(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    create_key_with_material(ctx, body, None)
}

/// CreateKey with material generated beforehand (off the async runtime,
/// see `asymops::create_key`); `None` generates it here.
pub fn create_key_with_material(
    ctx: &Ctx<'_>,
    body: &Value,
    material: Option<Secret>,
) -> Result<Value, KmsError> {
    let (spec, usage) = crate::keyspec::parse_create(body)?;
    let origin = str_field(body, "Origin").unwrap_or("AWS_KMS");
    if origin != "AWS_KMS" {
        return Err(KmsError::UnsupportedOperation(format!(
            "Origin {origin} is not supported by this version of kms-core yet."
        )));
    }
    if body.get("MultiRegion").and_then(Value::as_bool) == Some(true) {
        return Err(KmsError::UnsupportedOperation(
            "Multi-Region keys are not supported by kms-core.".into(),
        ));
    }
    if body.get("CustomKeyStoreId").is_some_and(|v| !v.is_null()) {
        return Err(KmsError::CustomKeyStoreNotFound(
            "Custom key stores are not supported by this version of kms-core yet.".into(),
        ));
    }
    let mut record = KeyRecord::new_symmetric(
        KeyId::random().as_str(),
        ctx.account(),
        ctx.region(),
        str_field(body, "Description").unwrap_or(""),
        now(),
        str_field(body, "Policy").map(str::to_owned),
    );
    record.key_spec = spec.as_str().to_owned();
    record.key_usage = usage.as_str().to_owned();
    if let Some(tags) = body.get("Tags").and_then(Value::as_array) {
        for t in tags {
            if let (Some(k), Some(v)) = (str_field(t, "TagKey"), str_field(t, "TagValue")) {
                if k.starts_with("aws:") {
                    return Err(KmsError::Tag(format!(
                        "Tag keys beginning with \"aws:\" are reserved: {k}"
                    )));
                }
                record.tags.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let material = match material {
        Some(m) => m,
        None => crate::asymops::new_material(spec, usage)?,
    };
    let arn = record.arn.clone();
    let entry = ctx
        .store
        .create_key(record, &material)
        .map_err(|e| store_error(e, &arn))?;
    Ok(json!({ "KeyMetadata": key_metadata(&entry.record) }))
}

pub fn describe_key(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = ctx.resolve_for(body, "KeyId", Operation::DescribeKey)?;
    Ok(json!({ "KeyMetadata": key_metadata(&entry.record) }))
}

pub fn list_keys(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let limit = body.get("Limit").and_then(Value::as_u64).unwrap_or(100) as usize;
    let page = ctx
        .store
        .list_keys(
            ctx.account(),
            ctx.region(),
            limit,
            str_field(body, "Marker"),
        )
        .map_err(|e| store_error(e, ""))?;
    let keys: Vec<Value> = page
        .items
        .iter()
        .map(|r| json!({"KeyId": r.key_id, "KeyArn": r.arn}))
        .collect();
    let mut out = json!({ "Keys": keys, "Truncated": page.next_marker.is_some() });
    if let Some(m) = page.next_marker {
        out["NextMarker"] = json!(m);
    }
    Ok(out)
}

/// EnableKey / DisableKey.
pub fn set_enabled(ctx: &Ctx<'_>, body: &Value, enable: bool) -> Result<Value, KmsError> {
    let entry = ctx.resolve(str_field(body, "KeyId").unwrap_or_default())?;
    let op = if enable {
        Operation::EnableKey
    } else {
        Operation::DisableKey
    };
    let arn = entry.record.arn.clone();
    ctx.store
        .modify_key(
            ctx.account(),
            ctx.region(),
            &entry.record.key_id,
            &mut |r| {
                r.check(op)
                    .map_err(|e| Box::new(e) as crate::store::Refusal)?;
                r.enabled = enable;
                r.key_state = if enable {
                    KeyState::Enabled
                } else {
                    KeyState::Disabled
                };
                Ok(())
            },
        )
        .map_err(|e| store_error(e, &arn))?;
    Ok(json!({}))
}

pub(crate) fn crypto_internal(e: CryptoError) -> KmsError {
    KmsError::Internal(format!("Cryptographic failure: {e}"))
}

/// The canonical encryption context of a request (AAD).
pub(crate) fn context(body: &Value, field: &str) -> Vec<u8> {
    let pairs: Vec<(&str, &str)> = body
        .get(field)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                .collect()
        })
        .unwrap_or_default();
    crypto::canonical_context(pairs)
}

pub(crate) fn check_algorithm(body: &Value, field: &str) -> Result<(), KmsError> {
    match str_field(body, field) {
        None | Some(SYMMETRIC_DEFAULT) => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "The encryption algorithm {other} is not valid for a symmetric encryption KMS key."
        ))),
    }
}

pub(crate) fn seal(
    entry: &KeyEntry,
    plaintext: &[u8],
    ctx_bytes: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let key = entry
        .current()
        .ok_or_else(|| KmsError::Internal("The key's current material is missing.".into()))?;
    key.encrypt(plaintext, ctx_bytes).map_err(|e| match e {
        CryptoError::PlaintextTooLong => KmsError::Validation(
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096".into(),
        ),
        other => crypto_internal(other),
    })
}

pub(crate) fn invalid_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext(String::new())
}

/// Decrypts a blob with the key it names, in the caller's namespace.
pub(crate) fn open(
    ctx: &Ctx<'_>,
    blob_bytes: &[u8],
    ctx_bytes: &[u8],
    expected: Option<&str>,
    op: Operation,
) -> Result<(Arc<KeyEntry>, Secret), KmsError> {
    let blob = Blob::parse(blob_bytes).map_err(|_| invalid_ciphertext())?;
    let key_id = blob.key_id_string();
    let entry = ctx
        .store
        .key(ctx.account(), ctx.region(), &key_id)
        .ok_or_else(invalid_ciphertext)?;
    if let Some(reference) = expected {
        let wanted = ctx.resolve(reference)?;
        if wanted.record.key_id != entry.record.key_id {
            return Err(KmsError::IncorrectKey(
                "The key ID in the request does not identify a CMK that can perform this operation.".into(),
            ));
        }
    }
    entry
        .record
        .check(op)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    let key = entry.version(blob.version).ok_or_else(invalid_ciphertext)?;
    let plaintext = key
        .decrypt(&blob, ctx_bytes)
        .map_err(|_| invalid_ciphertext())?;
    Ok((entry, plaintext))
}

pub fn encrypt(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    if let Some(entry) = crate::asymops::non_symmetric_key(ctx, body, "KeyId")? {
        return crate::asymops::encrypt(ctx, body, &entry);
    }
    check_algorithm(body, "EncryptionAlgorithm")?;
    let entry = ctx.resolve_for(body, "KeyId", Operation::Encrypt)?;
    let plaintext = b64_field(body, "Plaintext")?.unwrap_or_else(|| Secret::new(Vec::new()));
    dry_run(body)?;
    let blob = seal(
        &entry,
        plaintext.expose(),
        &context(body, "EncryptionContext"),
    )?;
    Ok(json!({
        "CiphertextBlob": STANDARD.encode(blob),
        "KeyId": entry.record.arn,
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

pub fn decrypt(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    if let Some(entry) = crate::asymops::non_symmetric_key(ctx, body, "KeyId")? {
        return crate::asymops::decrypt(ctx, body, &entry);
    }
    check_algorithm(body, "EncryptionAlgorithm")?;
    let blob = b64_field(body, "CiphertextBlob")?.unwrap_or_else(|| Secret::new(Vec::new()));
    let (entry, plaintext) = open(
        ctx,
        blob.expose(),
        &context(body, "EncryptionContext"),
        str_field(body, "KeyId"),
        Operation::Decrypt,
    )?;
    dry_run(body)?;
    let encoded = zeroize::Zeroizing::new(STANDARD.encode(plaintext.expose()));
    Ok(json!({
        "KeyId": entry.record.arn,
        "Plaintext": encoded.as_str(),
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

pub fn re_encrypt(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    if let Some(out) = crate::asymops::re_encrypt(ctx, body)? {
        return Ok(out);
    }
    check_algorithm(body, "SourceEncryptionAlgorithm")?;
    check_algorithm(body, "DestinationEncryptionAlgorithm")?;
    let blob = b64_field(body, "CiphertextBlob")?.unwrap_or_else(|| Secret::new(Vec::new()));
    let (source, plaintext) = open(
        ctx,
        blob.expose(),
        &context(body, "SourceEncryptionContext"),
        str_field(body, "SourceKeyId"),
        Operation::ReEncrypt,
    )?;
    let destination = ctx.resolve_for(body, "DestinationKeyId", Operation::ReEncrypt)?;
    dry_run(body)?;
    let out = seal(
        &destination,
        plaintext.expose(),
        &context(body, "DestinationEncryptionContext"),
    )?;
    Ok(json!({
        "CiphertextBlob": STANDARD.encode(out),
        "SourceKeyId": source.record.arn,
        "KeyId": destination.record.arn,
        "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

/// GenerateDataKey (`with_plaintext`) and GenerateDataKeyWithoutPlaintext.
pub fn generate_data_key(
    ctx: &Ctx<'_>,
    body: &Value,
    with_plaintext: bool,
) -> Result<Value, KmsError> {
    let op = if with_plaintext {
        Operation::GenerateDataKey
    } else {
        Operation::GenerateDataKeyWithoutPlaintext
    };
    let entry = ctx.resolve_for(body, "KeyId", op)?;
    crate::keyspec::check_usage(&entry.record, op)?;
    let len = crypto::data_key_len(
        str_field(body, "KeySpec"),
        body.get("NumberOfBytes").and_then(Value::as_i64),
    )
    .map_err(|_| {
        KmsError::Validation("Please specify either number of bytes or key spec.".into())
    })?;
    if body.get("Recipient").is_some_and(|v| !v.is_null()) {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by kms-core.".into(),
        ));
    }
    dry_run(body)?;
    let data_key = crypto::generate_data_key(len).map_err(crypto_internal)?;
    let blob = seal(
        &entry,
        data_key.expose(),
        &context(body, "EncryptionContext"),
    )?;
    let mut out = json!({
        "CiphertextBlob": STANDARD.encode(blob),
        "KeyId": entry.record.arn,
    });
    if with_plaintext {
        let encoded = zeroize::Zeroizing::new(STANDARD.encode(data_key.expose()));
        out["Plaintext"] = json!(encoded.as_str());
    }
    Ok(out)
}
