//! KMS keys in external key stores: CreateKey with Origin
//! EXTERNAL_KEY_STORE, and the double-encrypting Encrypt, Decrypt,
//! ReEncrypt and GenerateDataKey(WithoutPlaintext) (see [`super::envelope`]).

use super::envelope::{self, XksBlob};
use super::errors::{self, ks, KeyStoreErrorKind as K};
use super::registry::{ConnState, Registry};
use crate::crypto::{self, Blob, Secret};
use crate::api::error::KmsError;
use crate::ids::KeyId;
use crate::keyops::{self, str_field, Ctx};
use crate::keys::{KeyRecord, KeyState, Operation};
use crate::store::KeyEntry;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use xks_client::{decrypt_request, encrypt_request, XksClient};
use xks_wire::{ExternalKeyId, RequestMetadata};

pub const ORIGIN_EXTERNAL_KEY_STORE: &str = "EXTERNAL_KEY_STORE";
const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// An operation's context: the KMS context, the connections, and the KMS
/// request id (sent to the proxy as kmsRequestId).
pub struct XCtx<'a> {
    pub ctx: &'a Ctx<'a>,
    pub registry: &'a Arc<Registry>,
    pub request_id: &'a str,
}

pub fn is_xks(entry: &KeyEntry) -> bool {
    entry.record.custom_key_store_id.is_some()
}

/// The `requestMetadata` of a call made for a KMS request: the caller's
/// principal, the KMS key, the KMS operation and the KMS request id (the
/// `x-amzn-RequestId` of the reply). kms-core has no `kmsViaService`.
pub fn request_metadata(
    principal_arn: &str,
    key_arn: &str,
    operation: &str,
    request_id: &str,
) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some(principal_arn.to_owned()),
        kms_key_arn: Some(key_arn.to_owned()),
        kms_operation: Some(operation.to_owned()),
        kms_request_id: Some(request_id.to_owned()),
        ..Default::default()
    }
}

impl XCtx<'_> {
    fn metadata(&self, key_arn: &str, operation: &str) -> RequestMetadata {
        request_metadata(
            &self.ctx.caller.principal_arn,
            key_arn,
            operation,
            self.request_id,
        )
    }

    /// The client of the key's store and the external key id; a key whose
    /// store is not connected is `Unavailable`.
    fn client_for(&self, r: &KeyRecord) -> Result<(XksClient, ExternalKeyId), KmsError> {
        let unavailable = || KmsError::InvalidState(format!("{} is unavailable.", r.arn));
        let store_id = r.custom_key_store_id.as_deref().ok_or_else(unavailable)?;
        let conn = self.registry.conn(store_id).ok_or_else(unavailable)?;
        let client = match (&conn.state, &conn.client) {
            (ConnState::Connected, Some(c)) => c.clone(),
            _ => return Err(unavailable()),
        };
        let xid = r
            .xks_key_id
            .as_deref()
            .and_then(|x| x.parse::<ExternalKeyId>().ok())
            .ok_or_else(|| KmsError::Internal("The key's external key id is invalid.".into()))?;
        Ok((client, xid))
    }

    /// Both layers: kms-core's own material, then the external key.
    async fn xks_seal(
        &self,
        entry: &KeyEntry,
        plaintext: &[u8],
        ctx_bytes: &[u8],
        op: Operation,
    ) -> Result<Vec<u8>, KmsError> {
        let r = &entry.record;
        let (client, xid) = self.client_for(r)?;
        let inner = zeroize::Zeroizing::new(keyops::seal(entry, plaintext, ctx_bytes)?);
        let aad = envelope::outer_aad(&r.arn, xid.as_str(), ctx_bytes);
        let request = encrypt_request(self.metadata(&r.arn, op.name()), &inner, Some(&aad), true);
        let sealed = client
            .encrypt(&xid, &request)
            .await
            .map_err(|e| errors::crypto_error(&e))?;
        let bad = || {
            KmsError::InvalidState(
                "KMS cannot interpret the response from the external key store proxy.".into(),
            )
        };
        let tag: [u8; crypto::TAG_LEN] = sealed.authentication_tag.0[..]
            .try_into()
            .map_err(|_| bad())?;
        XksBlob {
            key_id: crypto::key_id_to_bytes(&r.key_id).map_err(keyops::crypto_internal)?,
            iv: sealed.initialization_vector.0,
            tag,
            metadata: sealed.ciphertext_metadata.map(|m| m.0).unwrap_or_default(),
            ciphertext: sealed.ciphertext.0,
        }
        .to_bytes()
        .ok_or_else(bad)
    }

    /// Both layers in reverse.
    async fn xks_open(
        &self,
        entry: &KeyEntry,
        blob: &XksBlob,
        ctx_bytes: &[u8],
        op: Operation,
    ) -> Result<Secret, KmsError> {
        let r = &entry.record;
        let (client, xid) = self.client_for(r)?;
        let aad = envelope::outer_aad(&r.arn, xid.as_str(), ctx_bytes);
        let request = decrypt_request(
            self.metadata(&r.arn, op.name()),
            &blob.ciphertext,
            (!blob.metadata.is_empty()).then_some(&blob.metadata[..]),
            &blob.iv,
            &blob.tag,
            Some(&aad),
        );
        let opened = client
            .decrypt(&xid, &request)
            .await
            .map_err(|e| errors::crypto_error(&e))?;
        let inner = Blob::parse(&opened.plaintext.0).map_err(|_| keyops::invalid_ciphertext())?;
        if inner.key_id != blob.key_id {
            return Err(keyops::invalid_ciphertext());
        }
        let key = entry
            .version(inner.version)
            .ok_or_else(keyops::invalid_ciphertext)?;
        key.decrypt(&inner, ctx_bytes)
            .map_err(|_| keyops::invalid_ciphertext())
    }

    /// Seals with any key: double encryption for external key store keys.
    async fn seal_any(
        &self,
        entry: &KeyEntry,
        plaintext: &[u8],
        ctx_bytes: &[u8],
        op: Operation,
    ) -> Result<Vec<u8>, KmsError> {
        if is_xks(entry) {
            self.xks_seal(entry, plaintext, ctx_bytes, op).await
        } else {
            keyops::seal(entry, plaintext, ctx_bytes)
        }
    }

    /// Opens a blob of either format; `dry_run` stops before the proxy is
    /// called (after every check).
    async fn open_any(
        &self,
        blob: &[u8],
        ctx_bytes: &[u8],
        expected: Option<&str>,
        op: Operation,
        dry_run: bool,
    ) -> Result<(Arc<KeyEntry>, Secret), KmsError> {
        let ctx = self.ctx;
        if !envelope::is_xks_blob(blob) {
            if let Some(entry) = named_key(ctx, blob) {
                if is_xks(&entry) {
                    // External key store keys never make single-layer blobs.
                    return Err(keyops::invalid_ciphertext());
                }
            }
            let (entry, pt) = keyops::open(ctx, blob, ctx_bytes, expected, op)?;
            if dry_run {
                return Err(KmsError::DryRunOperation);
            }
            return Ok((entry, pt));
        }
        let parsed = XksBlob::parse(blob).map_err(|_| keyops::invalid_ciphertext())?;
        let entry = named_key(ctx, blob)
            .filter(|e| is_xks(e))
            .ok_or_else(keyops::invalid_ciphertext)?;
        if let Some(reference) = expected {
            let wanted = ctx.resolve(reference)?;
            if wanted.record.key_id != entry.record.key_id {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
        }
        let entry = self.checked(entry, op)?;
        self.client_for(&entry.record)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let pt = self.xks_open(&entry, &parsed, ctx_bytes, op).await?;
        Ok((entry, pt))
    }
}

/// The key a blob (of either format) names, in the caller's namespace.
fn named_key(ctx: &Ctx<'_>, blob: &[u8]) -> Option<Arc<KeyEntry>> {
    let id = envelope::named_key_id(blob)?;
    ctx.store.key(
        ctx.caller.scope.account.as_str(),
        &ctx.caller.scope.region,
        &crypto::key_id_from_bytes(&id),
    )
}

fn is_dry_run(body: &Value) -> bool {
    body.get("DryRun").and_then(Value::as_bool) == Some(true)
}

/// The key `field` names, checked for `op`, if it is an external key store
/// key (`None` otherwise, or when it does not resolve: the ordinary path
/// reports that).
pub fn xks_target(ctx: &Ctx<'_>, body: &Value, field: &str) -> Option<Arc<KeyEntry>> {
    ctx.resolve(str_field(body, field)?)
        .ok()
        .filter(|e| is_xks(e))
}

/// Does this Decrypt/ReEncrypt blob need the external key store path?
pub fn blob_needs_xks(ctx: &Ctx<'_>, body: &Value) -> bool {
    let Some(b64) = str_field(body, "CiphertextBlob") else {
        return false;
    };
    // Only the format byte and the key id are needed: the first 24
    // Base64 characters (18 bytes), whatever the blob's length.
    let Some(prefix) = b64.get(..24) else {
        return false;
    };
    let Ok(bytes) = STANDARD.decode(prefix) else {
        return false;
    };
    // Only blobs naming an external key store key: other ciphertexts
    // (including RSA ones, whose first byte is arbitrary) stay on the
    // ordinary path.
    named_key(ctx, &bytes).is_some_and(|e| is_xks(&e))
}

impl XCtx<'_> {
    /// The key state check as AWS applies it to external key store keys: a
    /// key whose store is not CONNECTED is `Unavailable` (unless it is
    /// pending deletion).
    fn checked(&self, entry: Arc<KeyEntry>, op: Operation) -> Result<Arc<KeyEntry>, KmsError> {
        let r = &entry.record;
        if is_xks(&entry)
            && matches!(r.key_state, KeyState::Enabled | KeyState::Disabled)
            && !self.connected(r)
        {
            return Err(KmsError::InvalidState(format!("{} is unavailable.", r.arn)));
        }
        r.check(op).map_err(|e| keyops::state_error(e, &r.arn))?;
        Ok(entry)
    }

    fn connected(&self, r: &KeyRecord) -> bool {
        r.custom_key_store_id
            .as_deref()
            .and_then(|id| self.registry.conn(id))
            .is_some_and(|c| c.state == ConnState::Connected)
    }
}

pub async fn encrypt(x: &XCtx<'_>, entry: Arc<KeyEntry>, body: &Value) -> Result<Value, KmsError> {
    keyops::check_algorithm(body, "EncryptionAlgorithm")?;
    let entry = x.checked(entry, Operation::Encrypt)?;
    let plaintext =
        keyops::b64_field(body, "Plaintext")?.unwrap_or_else(|| Secret::new(Vec::new()));
    if plaintext.len() > crypto::MAX_PLAINTEXT {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096".into(),
        ));
    }
    x.client_for(&entry.record)?;
    keyops::dry_run(body)?;
    let blob = x
        .xks_seal(
            &entry,
            plaintext.expose(),
            &keyops::context(body, "EncryptionContext"),
            Operation::Encrypt,
        )
        .await?;
    Ok(json!({
        "CiphertextBlob": STANDARD.encode(blob),
        "KeyId": entry.record.arn,
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

pub async fn generate_data_key(
    x: &XCtx<'_>,
    entry: Arc<KeyEntry>,
    body: &Value,
    with_plaintext: bool,
) -> Result<Value, KmsError> {
    let op = if with_plaintext {
        Operation::GenerateDataKey
    } else {
        Operation::GenerateDataKeyWithoutPlaintext
    };
    let entry = x.checked(entry, op)?;
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
    x.client_for(&entry.record)?;
    keyops::dry_run(body)?;
    let data_key = crypto::generate_data_key(len).map_err(keyops::crypto_internal)?;
    let blob = x
        .xks_seal(
            &entry,
            data_key.expose(),
            &keyops::context(body, "EncryptionContext"),
            op,
        )
        .await?;
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

pub async fn decrypt(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    keyops::check_algorithm(body, "EncryptionAlgorithm")?;
    let blob = keyops::b64_field(body, "CiphertextBlob")?.unwrap_or_else(|| Secret::new(vec![]));
    let (entry, plaintext) = x
        .open_any(
            blob.expose(),
            &keyops::context(body, "EncryptionContext"),
            str_field(body, "KeyId"),
            Operation::Decrypt,
            is_dry_run(body),
        )
        .await?;
    let encoded = zeroize::Zeroizing::new(STANDARD.encode(plaintext.expose()));
    Ok(json!({
        "KeyId": entry.record.arn,
        "Plaintext": encoded.as_str(),
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

/// ReEncrypt where the source blob or the destination key is in an
/// external key store.
pub async fn re_encrypt(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    keyops::check_algorithm(body, "SourceEncryptionAlgorithm")?;
    keyops::check_algorithm(body, "DestinationEncryptionAlgorithm")?;
    let blob = keyops::b64_field(body, "CiphertextBlob")?.unwrap_or_else(|| Secret::new(vec![]));
    let dry = is_dry_run(body);
    let check_destination = || {
        let reference = str_field(body, "DestinationKeyId").unwrap_or_default();
        let destination = x.checked(x.ctx.resolve(reference)?, Operation::ReEncrypt)?;
        if is_xks(&destination) {
            x.client_for(&destination.record)?;
        }
        Ok::<_, KmsError>(destination)
    };
    if dry {
        // Every check of both sides, no proxy call.
        check_destination()?;
    }
    let (source, plaintext) = x
        .open_any(
            blob.expose(),
            &keyops::context(body, "SourceEncryptionContext"),
            str_field(body, "SourceKeyId"),
            Operation::ReEncrypt,
            dry,
        )
        .await?;
    let destination = check_destination()?;
    keyops::dry_run(body)?;
    let out = x
        .seal_any(
            &destination,
            plaintext.expose(),
            &keyops::context(body, "DestinationEncryptionContext"),
            Operation::ReEncrypt,
        )
        .await?;
    Ok(json!({
        "CiphertextBlob": STANDARD.encode(out),
        "SourceKeyId": source.record.arn,
        "KeyId": destination.record.arn,
        "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

/// DescribeKey of an external key store key: the key state is
/// `Unavailable` while its store is not connected (unless the key is
/// pending deletion), as in AWS.
pub fn describe_key(x: &XCtx<'_>, entry: &KeyEntry) -> Value {
    let mut meta = keyops::key_metadata(&entry.record);
    if !x.connected(&entry.record)
        && matches!(meta["KeyState"].as_str(), Some("Enabled" | "Disabled"))
    {
        meta["KeyState"] = json!("Unavailable");
    }
    json!({ "KeyMetadata": meta })
}

/// Operations AWS does not support on external key store keys.
pub fn unsupported(entry: &KeyEntry) -> KmsError {
    KmsError::UnsupportedOperation(format!(
        "{} origin is {} which is not valid for this operation.",
        entry.record.arn, entry.record.origin
    ))
}

/// CreateKey with Origin EXTERNAL_KEY_STORE: the store must be connected,
/// the external key unused by another KMS key of the store, and the
/// proxy's GetKeyMetadata must show an enabled AES_256 key that encrypts
/// and decrypts.
pub async fn create_key(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let ctx = x.ctx;
    let spec = str_field(body, "KeySpec")
        .or_else(|| str_field(body, "CustomerMasterKeySpec"))
        .unwrap_or(SYMMETRIC_DEFAULT);
    if spec != SYMMETRIC_DEFAULT {
        return Err(KmsError::UnsupportedOperation(format!(
            "KeySpec {spec} is not supported for KMS keys in a custom key store."
        )));
    }
    let usage = str_field(body, "KeyUsage").unwrap_or("ENCRYPT_DECRYPT");
    if usage != "ENCRYPT_DECRYPT" {
        return Err(KmsError::UnsupportedOperation(format!(
            "KeyUsage {usage} is not supported for KMS keys in a custom key store."
        )));
    }
    if body.get("MultiRegion").and_then(Value::as_bool) == Some(true) {
        return Err(KmsError::UnsupportedOperation(
            "Multi-Region keys are not supported in a custom key store.".into(),
        ));
    }
    let store_id = str_field(body, "CustomKeyStoreId").ok_or_else(|| {
        KmsError::Validation(
            "CustomKeyStoreId is required when Origin is EXTERNAL_KEY_STORE.".into(),
        )
    })?;
    let xks_key_id = str_field(body, "XksKeyId").ok_or_else(|| {
        KmsError::Validation("XksKeyId is required when Origin is EXTERNAL_KEY_STORE.".into())
    })?;
    let account = ctx.caller.scope.account.as_str();
    let region = ctx.caller.scope.region.as_str();
    let store = ctx
        .store
        .custom_key_stores(account, region)
        .into_iter()
        .find(|s| s.id == store_id)
        .ok_or_else(|| {
            KmsError::CustomKeyStoreNotFound(format!("Custom key store {store_id} does not exist."))
        })?;
    let client = match x.registry.conn(store_id) {
        Some(c) if c.state == ConnState::Connected => c.client.clone(),
        _ => None,
    }
    .ok_or_else(|| {
        ks(
            K::InvalidState,
            format!("Custom key store {store_id} is not connected."),
        )
    })?;
    let xid: ExternalKeyId = xks_key_id.parse().map_err(|_| {
        ks(
            K::XksKeyInvalidConfiguration,
            format!("XksKeyId {xks_key_id} is not a valid external key id."),
        )
    })?;
    let mut record = KeyRecord::new_symmetric(
        KeyId::random().as_str(),
        account,
        region,
        str_field(body, "Description").unwrap_or(""),
        keyops::now(),
        str_field(body, "Policy").map(str::to_owned),
    );
    record.origin = ORIGIN_EXTERNAL_KEY_STORE.to_owned();
    record.custom_key_store_id = Some(store.id.clone());
    record.xks_key_id = Some(xks_key_id.to_owned());
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
    let lock = x.registry.create_lock(store_id);
    let _guard = lock.lock().await;
    if in_use(ctx, store_id, xks_key_id)? {
        return Err(ks(
            K::XksKeyAlreadyInUse,
            format!(
                "The external key {xks_key_id} is already associated with another KMS key in custom key store {store_id}."
            ),
        ));
    }
    let meta = client
        .get_key_metadata(&xid, &x.metadata(&record.arn, "CreateKey"))
        .await
        .map_err(|e| errors::create_key_error(&e, xks_key_id))?;
    let encrypts = meta.key_usage.iter().any(|u| u == "ENCRYPT");
    let decrypts = meta.key_usage.iter().any(|u| u == "DECRYPT");
    if meta.key_spec != "AES_256" || !encrypts || !decrypts {
        return Err(ks(
            K::XksKeyInvalidConfiguration,
            format!(
                "The external key {xks_key_id} must be an AES_256 key that supports ENCRYPT and DECRYPT (it is {} with {:?}).",
                meta.key_spec, meta.key_usage
            ),
        ));
    }
    if meta.key_status != "ENABLED" {
        return Err(ks(
            K::XksKeyInvalidConfiguration,
            format!(
                "The external key {xks_key_id} is not enabled (key status {}).",
                meta.key_status
            ),
        ));
    }
    keyops::dry_run(body)?;
    let material = crypto::new_key_material().map_err(keyops::crypto_internal)?;
    let arn = record.arn.clone();
    let entry = ctx
        .store
        .create_key(record, &material)
        .map_err(|e| keyops::store_error(e, &arn))?;
    Ok(json!({ "KeyMetadata": keyops::key_metadata(&entry.record) }))
}

/// Whether a KMS key of the store already uses the external key.
fn in_use(ctx: &Ctx<'_>, store_id: &str, xks_key_id: &str) -> Result<bool, KmsError> {
    keys_of_store(ctx, store_id).map(|keys| {
        keys.iter()
            .any(|r| r.xks_key_id.as_deref() == Some(xks_key_id))
    })
}

/// The KMS keys of a custom key store (every state).
pub fn keys_of_store(ctx: &Ctx<'_>, store_id: &str) -> Result<Vec<KeyRecord>, KmsError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            .store
            .list_keys(
                ctx.caller.scope.account.as_str(),
                &ctx.caller.scope.region,
                1000,
                marker.as_deref(),
            )
            .map_err(|e| keyops::store_error(e, ""))?;
        out.extend(
            page.items
                .into_iter()
                .filter(|r| r.custom_key_store_id.as_deref() == Some(store_id)),
        );
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_metadata_carries_the_kms_request() {
        let m = request_metadata(
            "arn:aws:iam::111122223333:user/Alice",
            "arn:aws:kms:us-east-1:111122223333:key/k",
            "Encrypt",
            "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        );
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            json!({
                "awsPrincipalArn": "arn:aws:iam::111122223333:user/Alice",
                "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k",
                "kmsOperation": "Encrypt",
                "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
            })
        );
        m.validate_for(xks_wire::Operation::Encrypt).unwrap();
    }
}
