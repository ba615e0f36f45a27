//! The protocol core of kms-core: one request in, one reply out, no
//! sockets. Order: operation (X-Amz-Target) → authentication → JSON →
//! model validation → operation.

use crate::auth::{AuthMode, Caller};
use crate::api::error::KmsError;
use crate::keyops::{self, Ctx};
use crate::api::model::{Model, ModelError};
use crate::resourceops as res;
use crate::store::Store;
use crate::api::{protocol, validate};
use crate::{asymops, ops};
use sigv4::RequestParts;
use std::sync::Arc;
use std::time::SystemTime;

pub struct Kms {
    model: Model,
    auth: AuthMode,
    store: Arc<dyn Store>,
    xks: Arc<crate::xks::Registry>,
}

/// The reply and what the access log records about it.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: String,
    pub operation: Option<String>,
    pub caller: Option<Caller>,
    pub error: Option<&'static str>,
}

impl Kms {
    pub fn new(auth: AuthMode, store: Arc<dyn Store>) -> Result<Kms, ModelError> {
        Ok(Kms {
            model: Model::load()?,
            auth,
            store,
            xks: crate::xks::Registry::new(crate::xks::XksSettings::default()),
        })
    }

    /// Uses these external key store settings (TLS trust toward proxies,
    /// budget, health interval).
    pub fn with_xks_settings(mut self, settings: crate::xks::XksSettings) -> Kms {
        self.xks = crate::xks::Registry::new(settings);
        self
    }

    /// The external key store connections.
    pub fn xks(&self) -> &Arc<crate::xks::Registry> {
        &self.xks
    }

    /// Reconnects the external key stores that were connected when the
    /// service last stopped (call inside the runtime).
    pub fn resume_custom_key_stores(&self) {
        self.xks.resume(&self.store.all_custom_key_stores());
    }

    pub fn auth(&self) -> &AuthMode {
        &self.auth
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn handle(&self, req: &RequestParts<'_>) -> Reply {
        let mut reply = Reply {
            status: 200,
            body: Vec::new(),
            request_id: protocol::request_id(),
            operation: None,
            caller: None,
            error: None,
        };
        match self.dispatch(req, &mut reply).await {
            Ok(body) => reply.body = body,
            Err(e) => {
                reply.status = e.status();
                reply.body = e.body();
                reply.error = Some(e.type_name());
            }
        }
        reply
    }

    async fn dispatch(
        &self,
        req: &RequestParts<'_>,
        reply: &mut Reply,
    ) -> Result<Vec<u8>, KmsError> {
        let target = req
            .headers
            .get(protocol::TARGET_HEADER)
            .and_then(|v| v.to_str().ok());
        if req.method != "POST" {
            return Err(KmsError::UnknownOperation(format!(
                "{} {}",
                req.method, req.path
            )));
        }
        let op = protocol::operation(&self.model, target)?;
        reply.operation = Some(op.to_owned());
        let content_type = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !protocol::content_type_ok(content_type) {
            return Err(KmsError::Serialization(format!(
                "Content-Type must be {}",
                protocol::CONTENT_TYPE
            )));
        }
        let caller = self.auth.authenticate(req, SystemTime::now())?;
        reply.caller = Some(caller.clone());
        let body = protocol::parse_body(req.body)?;
        validate::validate_input(&self.model, op, &body)?;
        let ctx = Ctx {
            store: self.store.as_ref(),
            caller: &caller,
        };
        let x = crate::xks::keys::XCtx {
            ctx: &ctx,
            registry: &self.xks,
            request_id: &reply.request_id,
        };
        if let Some(out) = crate::xks::route(&x, op, &body).await? {
            return serde_json::to_vec(&out)
                .map_err(|e| KmsError::Internal(format!("Failed to encode the response: {e}")));
        }
        let out = match op {
            "GenerateRandom" => ops::generate_random(&body)?,
            "CreateKey" => asymops::create_key(&ctx, &body).await?,
            "DescribeKey" => keyops::describe_key(&ctx, &body)?,
            "ListKeys" => keyops::list_keys(&ctx, &body)?,
            "EnableKey" => keyops::set_enabled(&ctx, &body, true)?,
            "DisableKey" => keyops::set_enabled(&ctx, &body, false)?,
            "Encrypt" => keyops::encrypt(&ctx, &body)?,
            "Decrypt" => keyops::decrypt(&ctx, &body)?,
            "ReEncrypt" => keyops::re_encrypt(&ctx, &body)?,
            "GenerateDataKey" => keyops::generate_data_key(&ctx, &body, true)?,
            "GenerateDataKeyWithoutPlaintext" => keyops::generate_data_key(&ctx, &body, false)?,
            "CreateAlias" => res::create_alias(&ctx, &body)?,
            "UpdateAlias" => res::update_alias(&ctx, &body)?,
            "DeleteAlias" => res::delete_alias(&ctx, &body)?,
            "ListAliases" => res::list_aliases(&ctx, &body)?,
            "TagResource" => res::tag_resource(&ctx, &body)?,
            "UntagResource" => res::untag_resource(&ctx, &body)?,
            "ListResourceTags" => res::list_resource_tags(&ctx, &body)?,
            "GetKeyPolicy" => res::get_key_policy(&ctx, &body)?,
            "PutKeyPolicy" => res::put_key_policy(&ctx, &body)?,
            "ListKeyPolicies" => res::list_key_policies(&ctx, &body)?,
            "UpdateKeyDescription" => res::update_key_description(&ctx, &body)?,
            "ScheduleKeyDeletion" => res::schedule_key_deletion(&ctx, &body)?,
            "CancelKeyDeletion" => res::cancel_key_deletion(&ctx, &body)?,
            "GetKeyRotationStatus" => res::get_key_rotation_status(&ctx, &body)?,
            "GetPublicKey" => asymops::get_public_key(&ctx, &body)?,
            "Sign" => asymops::sign(&ctx, &body).await?,
            "Verify" => asymops::verify(&ctx, &body)?,
            "GenerateMac" => asymops::generate_mac(&ctx, &body)?,
            "VerifyMac" => asymops::verify_mac(&ctx, &body)?,
            "DeriveSharedSecret" => asymops::derive_shared_secret(&ctx, &body)?,
            "Encapsulate" => asymops::encapsulate(&ctx, &body)?,
            "Decapsulate" => asymops::decapsulate(&ctx, &body)?,
            "GenerateDataKeyPair" => asymops::generate_data_key_pair(&ctx, &body, true).await?,
            "GenerateDataKeyPairWithoutPlaintext" => {
                asymops::generate_data_key_pair(&ctx, &body, false).await?
            }
            other => {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{other} is not implemented by this version of kms-core yet."
                )))
            }
        };
        serde_json::to_vec(&out)
            .map_err(|e| KmsError::Internal(format!("Failed to encode the response: {e}")))
    }
}
