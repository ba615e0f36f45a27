//! Authorization: key policies, identity policies and grants, evaluated as
//! AWS KMS documents it. Pure code: no I/O, no locks, no allocation on the
//! evaluation path.
//!
//! * [`policy`] parses a policy document once into typed form
//!   ([`PolicyDocument`]), refusing every grammar error with the message of
//!   MalformedPolicyDocumentException, and keeps the original text.
//! * [`condition`] is the `Condition` element: operators, `IfExists`,
//!   `ForAnyValue:`/`ForAllValues:`, condition keys.
//! * [`context`] is what a request is evaluated against ([`AuthzInput`]):
//!   the [`Caller`] (ARN, account, tags, identity policies), the key
//!   ([`KeyFacts`]), the request's condition values ([`RequestFacts`]),
//!   the key's grants and the grants named by grant tokens.
//! * [`eval`] decides ([`authorize`] → [`Decision`]: allowed or not, why,
//!   and AWS's AccessDeniedException message).
//! * [`grants`] is the grant model (operations per key type, CreateGrant
//!   checks, tokens, constraints, who may retire).
//! * [`explain`] formats a decision with a statement-by-statement trace.
//!
//! # Calling it from the pipeline
//!
//! Per resolved key, the pipeline has the key record: it keeps the parsed
//! key policy beside it (parse once when the key is loaded or its policy
//! changes; `PolicyDocument::parse(&record.policy, PolicyKind::Key)`), and
//! the key's grants (`Store::grants_of_key`). Per request it builds:
//!
//! ```ignore
//! let input = AuthzInput {
//!     caller: &caller,                 // from authentication (shared Arc per principal)
//!     action: "kms:Decrypt",
//!     key: KeyFacts { arn: &rec.arn, account: &rec.account, key_spec: &rec.key_spec,
//!                     key_usage: &rec.key_usage, key_origin: &rec.origin, multi_region: false,
//!                     tags: &rec.tags, aliases: &alias_names },
//!     key_policy: &parsed_policy,
//!     request: RequestFacts { encryption_context: Some(&ctx), ..Default::default() },
//!     grants: &key_grants,
//!     token_grants: &grants_from_tokens,   // Store::grant_by_token for each GrantTokens entry
//!     strict: config.strict,
//! };
//! let decision = authorize(&input);
//! if !decision.allowed {
//!     tracing::info!(explanation = %decision.summary(), "access denied");
//!     return Err(KmsError::AccessDenied(decision.access_denied_message().unwrap_or_default()));
//! }
//! ```
//!
//! Operations naming two keys (ReEncrypt: `kms:ReEncryptFrom` on the
//! source, `kms:ReEncryptTo` on the destination; CreateAlias/UpdateAlias:
//! the alias and the key) call [`authorize`] once per resource.

pub mod condition;
pub mod context;
pub mod eval;
pub mod explain;
pub mod grants;
pub mod policy;
pub mod wildcard;

pub use context::{AuthzInput, Caller, KeyFacts, RequestFacts};
pub use eval::{authorize, authorize_without_key, lockout_check, Decision, Reason};
pub use grants::{Grant, GrantConstraints, GrantOperation};
pub use policy::{PolicyDocument, PolicyError, PolicyKind};

#[cfg(test)]
mod tests;
