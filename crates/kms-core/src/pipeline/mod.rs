//! One request, step by step, each step its own module:
//!
//! 1. [`decode`] — method and `X-Amz-Target` → [`Operation`], content type;
//! 2. [`authenticate`] — SigV4 → the caller (before the body is parsed:
//!    an unauthenticated caller learns nothing about its body);
//! 3. [`decode::body`] — the JSON object;
//! 4. [`validate`] — the model's constraints (AWS's ValidationException
//!    text), then the typed [`Request`], parsed once;
//! 5. [`resolve`] — every key the request names, resolved once (aliases
//!    followed, the ciphertext's key for Decrypt and ReEncrypt) into the
//!    request context;
//! 6. [`authorize`] — the [`authorize::Authorizer`] decides (by default
//!    [`authorize::PolicyAuthorizer`]: key policies, identity policies and
//!    grants, evaluated by [`crate::authz`]);
//! 7. [`dispatch`] — the one match from operation to handler ([`crate::ops`]),
//!    whose typed response is serialized;
//! 8. [`encode`] — the reply: status and body, errors in AWS's format,
//!    internal causes logged with the request id, the outcome recorded.
//!
//! 9. the audit record ([`crate::audit`]), written by
//!    [`crate::service::Kms::handle_from`] from the finished context.
//!
//! The [`RequestContext`] carries what each step learns.

pub mod authenticate;
pub mod authorize;
pub mod decode;
pub mod dispatch;
pub mod encode;
pub mod resolve;
pub mod validate;

use crate::api::error::KmsError;
use crate::api::model::Model;
use crate::api::{Operation, Request};
use crate::auth::AuthMode;
use crate::context::RequestContext;
use crate::store::Store;
use crate::xks::Registry;
use sigv4::RequestParts;
use std::sync::Arc;

/// What the steps need from the service.
pub struct Services<'a> {
    pub model: &'a Model,
    pub auth: &'a AuthMode,
    pub store: &'a dyn Store,
    pub registry: &'a Arc<Registry>,
    pub authorizer: &'a dyn authorize::Authorizer,
}

/// Runs steps 1–7; the caller encodes the result (step 8).
pub async fn run(
    s: &Services<'_>,
    req: &RequestParts<'_>,
    cx: &mut RequestContext,
) -> Result<Vec<u8>, KmsError> {
    let op: Operation = decode::operation(s.model, req)?;
    cx.operation = Some(op);
    let caller = authenticate::authenticate(s.auth, req)?;
    cx.caller = Some(caller.clone());
    let body = decode::body(req.body)?;
    cx.request_parameters = crate::audit::request_parameters(&body);
    after_authentication(s, cx, caller, op, body).await
}

/// Steps 4–7 for an already authenticated caller (also used by kms-core
/// itself, e.g. the demo stack's bootstrap).
pub async fn after_authentication(
    s: &Services<'_>,
    cx: &mut RequestContext,
    caller: crate::auth::Caller,
    op: Operation,
    body: serde_json::Value,
) -> Result<Vec<u8>, KmsError> {
    cx.operation = Some(op);
    cx.caller = Some(caller.clone());
    let request: Request = validate::typed(s.model, op, body)?;
    cx.resolved = resolve::resolve(s.store, &caller, &request)?;
    authorize::authorize(s.authorizer, cx, &caller, &request)?;
    let ctx = crate::ops::Ctx {
        store: s.store,
        caller: &caller,
        registry: s.registry,
        request_id: &cx.request_id,
        resolved: &cx.resolved,
        source: cx.source,
        tls: cx.tls,
    };
    dispatch::dispatch(&ctx, request).await
}
