//! Operation handlers. Each takes the validated request body and the
//! caller, and returns the response body or a [`KmsError`].

use crate::api::error::KmsError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// GenerateRandom: 1–1024 random bytes from aws-lc-rs's generator.
pub fn generate_random(body: &Value) -> Result<Value, KmsError> {
    if body.get("Recipient").is_some_and(|v| !v.is_null()) {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by kms-core.".into(),
        ));
    }
    if let Some(id) = body.get("CustomKeyStoreId").and_then(Value::as_str) {
        return Err(KmsError::CustomKeyStoreNotFound(format!(
            "Custom key store {id} does not exist."
        )));
    }
    // The model leaves NumberOfBytes optional; AWS requires it.
    let n = body
        .get("NumberOfBytes")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            KmsError::Validation(
                "1 validation error detected: Value null at 'numberOfBytes' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
    let mut bytes = Zeroizing::new(vec![0u8; n as usize]);
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KmsError::Internal("The random number generator failed.".into()))?;
    let encoded = Zeroizing::new(STANDARD.encode(&*bytes));
    Ok(json!({ "Plaintext": encoded.as_str() }))
}
