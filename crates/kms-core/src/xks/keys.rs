//! The cryptography of KMS keys in external key stores: kms-core's own
//! layer (the key's local AES-256-GCM material), then the external key
//! through the store's XKS proxy (see [`super::envelope`]). The
//! operations ([`crate::ops::crypto`]) call these for keys whose record
//! names a custom key store.

use super::envelope::{self, XksBlob};
use super::errors;
use super::registry::{ConnState, Registry};
use crate::api::error::KmsError;
use crate::crypto::{self, Blob, Secret};
use crate::keys::{KeyRecord, Operation};
use crate::store::KeyEntry;
use xks_client::{decrypt_request, encrypt_request, XksClient};
use xks_wire::{ExternalKeyId, RequestMetadata};

/// Whether the key lives in an external key store.
pub fn is_xks(r: &KeyRecord) -> bool {
    r.custom_key_store_id.is_some()
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

/// Who asks, for the proxy's request metadata.
pub struct Call<'a> {
    pub registry: &'a Registry,
    pub principal_arn: &'a str,
    pub request_id: &'a str,
    pub operation: Operation,
}

impl Call<'_> {
    fn metadata(&self, key_arn: &str) -> RequestMetadata {
        request_metadata(
            self.principal_arn,
            key_arn,
            self.operation.name(),
            self.request_id,
        )
    }
}

/// Whether the key's store is CONNECTED.
pub fn connected(registry: &Registry, r: &KeyRecord) -> bool {
    r.custom_key_store_id
        .as_deref()
        .and_then(|id| registry.conn(id))
        .is_some_and(|c| c.state == ConnState::Connected)
}

/// The client of the key's store and the external key id; a key whose
/// store is not connected is `Unavailable`.
pub fn client_for(
    registry: &Registry,
    r: &KeyRecord,
) -> Result<(XksClient, ExternalKeyId), KmsError> {
    let unavailable = || KmsError::InvalidState(format!("{} is unavailable.", r.arn));
    let store_id = r.custom_key_store_id.as_deref().ok_or_else(unavailable)?;
    let conn = registry.conn(store_id).ok_or_else(unavailable)?;
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

/// Counts one XKS call in the metrics, when they are on.
fn observe(
    registry: &Registry,
    r: &KeyRecord,
    operation: &'static str,
    start: std::time::Instant,
    error: Option<&xks_client::Error>,
) {
    if let (Some(m), Some(store)) = (registry.metrics(), r.custom_key_store_id.as_deref()) {
        m.xks_call(store, operation, start.elapsed(), error);
    }
}

fn invalid_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext(String::new())
}

/// Both layers: the key's own material, then the external key.
pub async fn seal(
    call: &Call<'_>,
    entry: &KeyEntry,
    plaintext: &[u8],
    ctx_bytes: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let r = &entry.record;
    let (client, xid) = client_for(call.registry, r)?;
    let inner = zeroize::Zeroizing::new(entry.seal(plaintext, ctx_bytes)?);
    let aad = envelope::outer_aad(&r.arn, xid.as_str(), ctx_bytes);
    let request = encrypt_request(call.metadata(&r.arn), &inner, Some(&aad), true);
    let start = std::time::Instant::now();
    let sealed = client.encrypt(&xid, &request).await;
    observe(call.registry, r, "Encrypt", start, sealed.as_ref().err());
    let sealed = sealed.map_err(|e| errors::crypto_error(&e))?;
    let bad = || {
        KmsError::InvalidState(
            "KMS cannot interpret the response from the external key store proxy.".into(),
        )
    };
    let tag: [u8; crypto::TAG_LEN] = sealed.authentication_tag.0[..]
        .try_into()
        .map_err(|_| bad())?;
    XksBlob {
        key_id: crypto::key_id_to_bytes(&r.key_id)?,
        iv: sealed.initialization_vector.0,
        tag,
        metadata: sealed.ciphertext_metadata.map(|m| m.0).unwrap_or_default(),
        ciphertext: sealed.ciphertext.0,
    }
    .to_bytes()
    .ok_or_else(bad)
}

/// Parses a double-encrypted blob of `entry`.
pub fn parse(entry: &KeyEntry, blob: &[u8]) -> Result<XksBlob, KmsError> {
    let parsed = XksBlob::parse(blob).map_err(|_| invalid_ciphertext())?;
    if !is_xks(&entry.record) {
        return Err(invalid_ciphertext());
    }
    Ok(parsed)
}

/// Both layers in reverse.
pub async fn open(
    call: &Call<'_>,
    entry: &KeyEntry,
    blob: &XksBlob,
    ctx_bytes: &[u8],
) -> Result<Secret, KmsError> {
    let r = &entry.record;
    let (client, xid) = client_for(call.registry, r)?;
    let aad = envelope::outer_aad(&r.arn, xid.as_str(), ctx_bytes);
    let request = decrypt_request(
        call.metadata(&r.arn),
        &blob.ciphertext,
        (!blob.metadata.is_empty()).then_some(&blob.metadata[..]),
        &blob.iv,
        &blob.tag,
        Some(&aad),
    );
    let start = std::time::Instant::now();
    let opened = client.decrypt(&xid, &request).await;
    observe(call.registry, r, "Decrypt", start, opened.as_ref().err());
    let opened = opened.map_err(|e| errors::crypto_error(&e))?;
    let inner = Blob::parse(&opened.plaintext.0).map_err(|_| invalid_ciphertext())?;
    if inner.key_id != blob.key_id {
        return Err(invalid_ciphertext());
    }
    let key = entry
        .version(inner.version)
        .ok_or_else(invalid_ciphertext)?;
    key.decrypt(&inner, ctx_bytes)
        .map_err(|_| invalid_ciphertext())
}

/// Operations AWS does not support on external key store keys.
pub fn unsupported(r: &KeyRecord) -> KmsError {
    KmsError::UnsupportedOperation(format!(
        "{} origin is {} which is not valid for this operation.",
        r.arn,
        r.origin.as_str()
    ))
}

/// Operations AWS refuses on KMS keys in external key stores.
pub const UNSUPPORTED_ON_XKS_KEYS: &[Operation] = &[
    Operation::EnableKeyRotation,
    Operation::DisableKeyRotation,
    Operation::RotateKeyOnDemand,
    Operation::GetParametersForImport,
    Operation::ImportKeyMaterial,
    Operation::DeleteImportedKeyMaterial,
    Operation::GenerateDataKeyPair,
    Operation::GenerateDataKeyPairWithoutPlaintext,
    Operation::ReplicateKey,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
