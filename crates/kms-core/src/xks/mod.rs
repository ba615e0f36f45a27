//! External key stores: KMS keys whose cryptography happens in an external
//! key manager behind an XKS proxy.
//!
//! * [`settings`] — kms-core's TLS trust, client certificate, budget and
//!   health interval toward proxies (`--xks-config`);
//! * [`registry`] — connection state per store, the connect task and the
//!   health poller;
//! * [`envelope`] — the double-encrypted blob (pure);
//! * [`keys`] — CreateKey with Origin EXTERNAL_KEY_STORE and the
//!   cryptographic operations on such keys;
//! * [`errors`] — the custom key store exceptions and the one mapping of
//!   XKS client failures to AWS errors;
//! * [`stack`] — the all-in-one local stack (`kms-core --demo-xks`).
//!
//! [`route`] is called by the service dispatch before the ordinary
//! (synchronous) operations: it handles what involves a custom key store
//! and leaves everything else to them.

pub mod envelope;
pub mod errors;
pub mod keys;
pub mod registry;
pub mod settings;
pub mod stack;

use crate::custom_key_stores as cks;
use crate::api::error::KmsError;
use crate::keyops::str_field;
use keys::{xks_target, XCtx};
use serde_json::Value;

pub use registry::Registry;
pub use settings::XksSettings;

/// Operations AWS refuses on KMS keys in external key stores.
const UNSUPPORTED_ON_XKS_KEYS: &[&str] = &[
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKeyOnDemand",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "ReplicateKey",
];

/// Handles `op` if it concerns custom key stores or their keys;
/// `Ok(None)` leaves the request to the ordinary operations.
pub async fn route(x: &XCtx<'_>, op: &str, body: &Value) -> Result<Option<Value>, KmsError> {
    let ctx = x.ctx;
    let out = match op {
        "CreateCustomKeyStore" => cks::create(x, body).await?,
        "DescribeCustomKeyStores" => cks::describe(x, body)?,
        "UpdateCustomKeyStore" => cks::update(x, body).await?,
        "ConnectCustomKeyStore" => cks::connect(x, body)?,
        "DisconnectCustomKeyStore" => cks::disconnect(x, body)?,
        "DeleteCustomKeyStore" => cks::delete(x, body)?,
        "CreateKey" => {
            let origin = str_field(body, "Origin");
            if origin == Some(keys::ORIGIN_EXTERNAL_KEY_STORE) {
                keys::create_key(x, body).await?
            } else if body.get("XksKeyId").is_some_and(|v| !v.is_null()) {
                return Err(KmsError::Validation(
                    "XksKeyId is valid only when Origin is EXTERNAL_KEY_STORE.".into(),
                ));
            } else if let Some(id) = str_field(body, "CustomKeyStoreId") {
                let exists = ctx
                    .store
                    .custom_key_stores(ctx.caller.scope.account.as_str(), &ctx.caller.scope.region)
                    .iter()
                    .any(|r| r.id == id);
                return Err(if exists {
                    KmsError::Validation(
                        "To create a KMS key in an external key store, Origin must be EXTERNAL_KEY_STORE.".into(),
                    )
                } else {
                    KmsError::CustomKeyStoreNotFound(format!(
                        "Custom key store {id} does not exist."
                    ))
                });
            } else {
                return Ok(None);
            }
        }
        "DescribeKey" => match xks_target(ctx, body, "KeyId") {
            Some(entry) => keys::describe_key(x, &entry),
            None => return Ok(None),
        },
        "Encrypt" => match xks_target(ctx, body, "KeyId") {
            Some(entry) => keys::encrypt(x, entry, body).await?,
            None => return Ok(None),
        },
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            match xks_target(ctx, body, "KeyId") {
                Some(entry) => {
                    keys::generate_data_key(x, entry, body, op == "GenerateDataKey").await?
                }
                None => return Ok(None),
            }
        }
        "Decrypt" if keys::blob_needs_xks(ctx, body) => keys::decrypt(x, body).await?,
        "ReEncrypt"
            if keys::blob_needs_xks(ctx, body)
                || xks_target(ctx, body, "DestinationKeyId").is_some() =>
        {
            keys::re_encrypt(x, body).await?
        }
        "GenerateRandom" => match str_field(body, "CustomKeyStoreId") {
            Some(id)
                if ctx
                    .store
                    .custom_key_stores(ctx.caller.scope.account.as_str(), &ctx.caller.scope.region)
                    .iter()
                    .any(|r| r.id == id) =>
            {
                return Err(KmsError::UnsupportedOperation(
                    "GenerateRandom with a CustomKeyStoreId is supported only for AWS CloudHSM key stores.".into(),
                ))
            }
            _ => return Ok(None),
        },
        _ if UNSUPPORTED_ON_XKS_KEYS.contains(&op) => match xks_target(ctx, body, "KeyId") {
            Some(entry) => return Err(keys::unsupported(&entry)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(out))
}
