//! GenerateRandom: 1–1024 random bytes from aws-lc-rs's generator.

use super::{no_recipient, Ctx};
use crate::api::error::KmsError;
use crate::api::types::{GenerateRandomRequest, GenerateRandomResponse};

pub fn generate_random(
    ctx: &Ctx<'_>,
    req: GenerateRandomRequest,
) -> Result<GenerateRandomResponse, KmsError> {
    if let Some(id) = &req.custom_key_store_id {
        let exists = ctx
            .store
            .custom_key_stores(ctx.account(), ctx.region())
            .iter()
            .any(|r| r.id == *id);
        return Err(if exists {
            KmsError::UnsupportedOperation(
                "GenerateRandom with a CustomKeyStoreId is supported only for AWS CloudHSM key stores.".into(),
            )
        } else {
            KmsError::CustomKeyStoreNotFound(format!("Custom key store {id} does not exist."))
        });
    }
    no_recipient(&req.recipient)?;
    // The model leaves NumberOfBytes optional; AWS requires it.
    let n = req
        .number_of_bytes
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| KmsError::Validation("NumberOfBytes is required.".into()))?;
    let bytes = crate::crypto::generate_random(n)?;
    Ok(GenerateRandomResponse {
        plaintext: Some(bytes.into()),
        ..Default::default()
    })
}
