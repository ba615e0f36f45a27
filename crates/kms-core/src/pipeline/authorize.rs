//! Step 6: may this caller do this? The [`Authorizer`] sees the request
//! context (caller, source address, TLS, operation), every resource the
//! request names with the IAM action it needs on it (ReEncrypt:
//! `kms:ReEncryptFrom` on the source key, `kms:ReEncryptTo` on the
//! destination; CreateAlias/UpdateAlias/DeleteAlias: the alias and the
//! key), and the typed request (encryption context, algorithms, grant
//! tokens, DryRun). [`PolicyAuthorizer`] (the default) decides with key
//! policies, identity policies and grants ([`crate::authz`]); [`AllowAll`]
//! allows everything (benchmarks, embedding).

use super::resolve::action;
use crate::api::error::KmsError;
use crate::api::{Operation, Request};
use crate::auth::Caller;
use crate::authz::context::clock_values;
use crate::authz::policy::NO_POLICY;
use crate::authz::{self, AuthzInput, Decision, Grant, KeyFacts, RequestFacts};
use crate::context::{KeyRole, NamedAlias, RequestContext};
use crate::store::{KeyEntry, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One resource a request acts on, with the action it needs.
#[derive(Debug)]
pub enum Resource<'a> {
    Key {
        role: KeyRole,
        /// `kms:Encrypt`, `kms:ReEncryptFrom`...
        action: &'static str,
        entry: &'a KeyEntry,
    },
    Alias {
        action: &'static str,
        alias: &'a NamedAlias,
    },
}

/// What an authorizer decides on.
#[derive(Debug)]
pub struct Question<'a> {
    pub context: &'a RequestContext,
    pub caller: &'a Caller,
    pub operation: Operation,
    /// The operation's IAM action (`kms:<Operation>`).
    pub action: &'static str,
    /// Every key and alias the request names; empty for operations on no
    /// resource (CreateKey, ListKeys, GenerateRandom, custom key stores).
    pub resources: Vec<Resource<'a>>,
    pub request: &'a Request,
}

/// Decides whether a request may proceed. An `Err` is the caller's answer
/// (AccessDeniedException with AWS's message).
pub trait Authorizer: Send + Sync {
    fn authorize(&self, question: &Question<'_>) -> Result<(), KmsError>;
}

/// Allows everything: kms-core before key policies are enforced.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _question: &Question<'_>) -> Result<(), KmsError> {
        Ok(())
    }
}

/// Key policies, identity policies and grants, evaluated by
/// [`crate::authz`] for every resource of the request: the default
/// authorizer of [`crate::service::Kms`].
pub struct PolicyAuthorizer {
    store: Arc<dyn Store>,
}

impl PolicyAuthorizer {
    pub fn new(store: Arc<dyn Store>) -> PolicyAuthorizer {
        PolicyAuthorizer { store }
    }
}

impl std::fmt::Debug for PolicyAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyAuthorizer")
    }
}

/// The grant tokens of a request (the operations that take GrantTokens).
pub fn grant_tokens(request: &Request) -> &[String] {
    let t = match request {
        Request::CreateGrant(r) => &r.grant_tokens,
        Request::Decapsulate(r) => &r.grant_tokens,
        Request::Decrypt(r) => &r.grant_tokens,
        Request::DeriveSharedSecret(r) => &r.grant_tokens,
        Request::DescribeKey(r) => &r.grant_tokens,
        Request::Encapsulate(r) => &r.grant_tokens,
        Request::Encrypt(r) => &r.grant_tokens,
        Request::GenerateDataKeyPair(r) => &r.grant_tokens,
        Request::GenerateDataKeyPairWithoutPlaintext(r) => &r.grant_tokens,
        Request::GenerateDataKey(r) => &r.grant_tokens,
        Request::GenerateDataKeyWithoutPlaintext(r) => &r.grant_tokens,
        Request::GenerateMac(r) => &r.grant_tokens,
        Request::GetPublicKey(r) => &r.grant_tokens,
        Request::ReEncrypt(r) => &r.grant_tokens,
        Request::Sign(r) => &r.grant_tokens,
        Request::VerifyMac(r) => &r.grant_tokens,
        Request::Verify(r) => &r.grant_tokens,
        _ => return &[],
    };
    t.as_deref().unwrap_or(&[])
}

/// The grants a request's grant tokens name (usable at once: the store's
/// index is updated before CreateGrant answers). A token that is not one
/// is InvalidGrantTokenException; a token of a retired or revoked grant
/// names nothing.
pub fn token_grants(store: &dyn Store, request: &Request) -> Result<Vec<Arc<Grant>>, KmsError> {
    let tokens = grant_tokens(request);
    let mut out = Vec::new();
    for t in tokens {
        authz::grants::check_token_form(t)?;
        if let Some(g) = store.grant_by_token(&authz::grants::token_digest(t)) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Owned condition values derived from the request (strings the typed
/// request holds as enums).
#[derive(Default)]
struct Derived {
    encryption_algorithm: Option<&'static str>,
    signing_algorithm: Option<&'static str>,
    mac_algorithm: Option<&'static str>,
    key_agreement_algorithm: Option<&'static str>,
    grant_operations: Option<Vec<String>>,
    request_tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
    pending_window: Option<String>,
}

/// The request's condition values for a key in `role` (ReEncrypt: the
/// source context and algorithm on the source key, the destination's on
/// the destination key).
fn derive(request: &Request, role: KeyRole) -> Derived {
    let mut d = Derived::default();
    match request {
        Request::Encrypt(r) => d.encryption_algorithm = r.encryption_algorithm.map(|a| a.as_str()),
        Request::Decrypt(r) => d.encryption_algorithm = r.encryption_algorithm.map(|a| a.as_str()),
        Request::ReEncrypt(r) => {
            d.encryption_algorithm = match role {
                KeyRole::Source => r.source_encryption_algorithm.map(|a| a.as_str()),
                _ => r.destination_encryption_algorithm.map(|a| a.as_str()),
            }
        }
        Request::Sign(r) => d.signing_algorithm = Some(r.signing_algorithm.as_str()),
        Request::Verify(r) => d.signing_algorithm = Some(r.signing_algorithm.as_str()),
        Request::GenerateMac(r) => d.mac_algorithm = Some(r.mac_algorithm.as_str()),
        Request::VerifyMac(r) => d.mac_algorithm = Some(r.mac_algorithm.as_str()),
        Request::DeriveSharedSecret(r) => {
            d.key_agreement_algorithm = Some(r.key_agreement_algorithm.as_str())
        }
        Request::CreateGrant(r) => {
            d.grant_operations = Some(r.operations.iter().map(|o| o.as_str().to_owned()).collect())
        }
        Request::CreateKey(r) => {
            let tags: Option<BTreeMap<String, String>> = r.tags.as_ref().map(|t| {
                t.iter()
                    .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
                    .collect()
            });
            d.tag_keys = tags.as_ref().map(|t| t.keys().cloned().collect());
            d.request_tags = tags;
        }
        Request::TagResource(r) => {
            let tags: BTreeMap<String, String> = r
                .tags
                .iter()
                .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
                .collect();
            d.tag_keys = Some(tags.keys().cloned().collect());
            d.request_tags = Some(tags);
        }
        Request::UntagResource(r) => d.tag_keys = Some(r.tag_keys.clone()),
        Request::ScheduleKeyDeletion(r) => {
            d.pending_window = Some(r.pending_window_in_days.unwrap_or(30).to_string())
        }
        _ => {}
    }
    d
}

fn encryption_context(request: &Request, role: KeyRole) -> Option<&BTreeMap<String, String>> {
    match request {
        Request::Encrypt(r) => r.encryption_context.as_ref(),
        Request::Decrypt(r) => r.encryption_context.as_ref(),
        Request::GenerateDataKey(r) => r.encryption_context.as_ref(),
        Request::GenerateDataKeyWithoutPlaintext(r) => r.encryption_context.as_ref(),
        Request::GenerateDataKeyPair(r) => r.encryption_context.as_ref(),
        Request::GenerateDataKeyPairWithoutPlaintext(r) => r.encryption_context.as_ref(),
        Request::ReEncrypt(r) => match role {
            KeyRole::Source => r.source_encryption_context.as_ref(),
            _ => r.destination_encryption_context.as_ref(),
        },
        _ => None,
    }
}

/// The denial the caller sees (AWS's message); the explanation goes to
/// the service log only.
fn denied(decision: &Decision<'_>, request_id: &str) -> KmsError {
    tracing::info!(
        request_id,
        explanation = %decision.summary(),
        "access denied"
    );
    KmsError::AccessDenied(decision.access_denied_message().unwrap_or_default())
}

/// What every decision of one request shares.
struct Common<'a> {
    source_ip: Option<&'a str>,
    tls: bool,
    current_time: &'a str,
    epoch_time: &'a str,
}

/// `alias/x` when the request names the key in `role` by alias
/// (`kms:RequestAlias`; ReEncrypt names two keys).
fn request_alias(request: &Request, role: KeyRole) -> Option<&str> {
    let id = match (request, role) {
        (Request::ReEncrypt(r), KeyRole::Source) => r.source_key_id.as_deref()?,
        (Request::ReEncrypt(r), _) => r.destination_key_id.as_str(),
        (other, _) => other.key_id()?,
    };
    if id.starts_with("alias/") {
        Some(id)
    } else {
        id.split_once(":alias/")
            .map(|(_, n)| &id[id.len() - n.len() - 6..])
    }
}

fn request_facts<'a>(
    d: &'a Derived,
    request: &'a Request,
    role: KeyRole,
    c: &Common<'a>,
) -> RequestFacts<'a> {
    let cg = match request {
        Request::CreateGrant(r) => Some(r),
        _ => None,
    };
    let constraint = cg.and_then(|r| r.constraints.as_ref()).and_then(|c| {
        if c.encryption_context_equals.is_some() {
            Some("EncryptionContextEquals")
        } else if c.encryption_context_subset.is_some() {
            Some("EncryptionContextSubset")
        } else {
            None
        }
    });
    RequestFacts {
        encryption_context: encryption_context(request, role),
        encryption_algorithm: d.encryption_algorithm,
        signing_algorithm: d.signing_algorithm,
        mac_algorithm: d.mac_algorithm,
        key_agreement_algorithm: d.key_agreement_algorithm,
        grant_operations: d.grant_operations.as_deref(),
        grantee_principal: cg.and_then(|r| r.grantee_principal.as_deref()),
        retiring_principal: cg.and_then(|r| r.retiring_principal.as_deref()),
        grant_constraint_type: constraint,
        grant_subset: cg
            .and_then(|r| r.constraints.as_ref())
            .and_then(|c| c.encryption_context_subset.as_ref()),
        grant_equals: cg
            .and_then(|r| r.constraints.as_ref())
            .and_then(|c| c.encryption_context_equals.as_ref()),
        grant_is_for_aws_resource: cg.map(|_| false),
        request_alias: request_alias(request, role),
        bypass_policy_lockout_safety_check: match request {
            Request::CreateKey(r) => r.bypass_policy_lockout_safety_check,
            Request::PutKeyPolicy(r) => r.bypass_policy_lockout_safety_check,
            _ => None,
        },
        pending_window_in_days: d.pending_window.as_deref(),
        request_tags: d.request_tags.as_ref(),
        tag_keys: d.tag_keys.as_deref(),
        source_ip: c.source_ip,
        secure_transport: c.tls,
        current_time: c.current_time,
        epoch_time: c.epoch_time,
    }
}

/// The condition values of a key.
/// The key's aliases (`alias/...`), for `kms:ResourceAliases` (AWS counts
/// at most 50 per key in the condition).
fn key_aliases(store: &dyn Store, r: &crate::keys::KeyRecord) -> Vec<String> {
    store
        .list_aliases(&r.account, &r.region, Some(&r.key_id), 50, None)
        .map(|page| page.items.into_iter().map(|a| a.name).collect())
        .unwrap_or_default()
}

pub fn key_facts(e: &KeyEntry) -> KeyFacts<'_> {
    KeyFacts::of_record(&e.record)
}

/// The parsed policy of a key; a stored text that does not parse (written
/// before policies were checked) allows nothing (logged).
pub fn policy_of(e: &KeyEntry) -> &authz::PolicyDocument {
    match e.key_policy() {
        Ok(p) => p,
        Err(err) => {
            tracing::warn!(key = %e.record.arn, error = %err.0, "the stored key policy does not parse; it allows nothing");
            &NO_POLICY
        }
    }
}

impl PolicyAuthorizer {
    /// One key: its policy, its grants, the request's token grants.
    #[allow(clippy::too_many_arguments)]
    fn on_key(
        &self,
        q: &Question<'_>,
        principal: &authz::Caller,
        entry: &KeyEntry,
        role: KeyRole,
        action: &str,
        tokens: &[Arc<Grant>],
        common: &Common<'_>,
    ) -> Result<(), KmsError> {
        let derived = derive(q.request, role);
        let grants = self.store.grants_of_key(&entry.record.key_id);
        let policy = policy_of(entry);
        // kms:ResourceAliases: looked up only when a policy asks for it.
        let aliases: Vec<String> = if policy.uses_resource_aliases()
            || principal
                .identity_policies
                .iter()
                .flatten()
                .any(|p| p.uses_resource_aliases())
        {
            key_aliases(self.store.as_ref(), &entry.record)
        } else {
            Vec::new()
        };
        let mut key = key_facts(entry);
        key.aliases = &aliases;
        let input = AuthzInput {
            caller: principal,
            action,
            key,
            key_policy: policy,
            request: request_facts(&derived, q.request, role, common),
            grants: &grants,
            token_grants: tokens,
            strict: false,
        };
        let decision = authz::authorize(&input);
        if decision.allowed {
            Ok(())
        } else {
            Err(denied(&decision, &q.context.request_id))
        }
    }

    /// An operation on no key, or on an alias: identity policies decide.
    fn without_key(
        &self,
        q: &Question<'_>,
        principal: &authz::Caller,
        resource: &str,
        action: &str,
        common: &Common<'_>,
    ) -> Result<(), KmsError> {
        let derived = derive(q.request, KeyRole::Key);
        let no_tags = BTreeMap::new();
        let (spec, usage, origin, multi) = match q.request {
            Request::CreateKey(r) => (
                r.key_spec
                    .map(|s| s.as_str())
                    .or(r.customer_master_key_spec.map(|s| s.as_str()))
                    .unwrap_or("SYMMETRIC_DEFAULT"),
                r.key_usage.map_or("ENCRYPT_DECRYPT", |u| u.as_str()),
                r.origin.map_or("AWS_KMS", |o| o.as_str()),
                r.multi_region.unwrap_or(false),
            ),
            _ => ("", "", "", false),
        };
        let input = AuthzInput {
            caller: principal,
            action,
            key: KeyFacts {
                arn: resource,
                account: principal.account.as_str(),
                key_spec: spec,
                key_usage: usage,
                key_origin: origin,
                multi_region: multi,
                tags: &no_tags,
                aliases: &[],
            },
            key_policy: &NO_POLICY,
            request: request_facts(&derived, q.request, KeyRole::Key, common),
            grants: &[],
            token_grants: &[],
            strict: false,
        };
        let decision = authz::authorize_without_key(&input);
        if decision.allowed {
            Ok(())
        } else {
            Err(denied(&decision, &q.context.request_id))
        }
    }
}

impl Authorizer for PolicyAuthorizer {
    fn authorize(&self, q: &Question<'_>) -> Result<(), KmsError> {
        let principal: &authz::Caller = &q.caller.principal;
        // RetireGrant: the retiring principal and the grantee of a grant
        // that allows RetireGrant need no policy (AWS); anyone else needs
        // kms:RetireGrant on the key. A grant that cannot be found is the
        // operation's error to report.
        if let Request::RetireGrant(r) = q.request {
            let key = q.context.resolved.get(KeyRole::Key);
            let Ok(grant) = crate::ops::grants::grant_to_retire(self.store.as_ref(), key, r) else {
                return Ok(());
            };
            let right = authz::grants::retire_right(
                &grant,
                &principal.arn,
                &principal.principal_arn,
                &principal.account,
            );
            if right != authz::grants::RetireRight::NeedsPolicy {
                return Ok(());
            }
            let entry = match key {
                Some(k) => k.clone(),
                None => match self.store.key(&grant.account, &grant.region, &grant.key_id) {
                    Some(k) => k,
                    None => return Ok(()),
                },
            };
            let (current_time, epoch_time) = clock_values(crate::clock::now());
            let source_ip = q.context.source.map(|a| a.ip().to_string());
            let common = Common {
                source_ip: source_ip.as_deref(),
                tls: q.context.tls,
                current_time: &current_time,
                epoch_time: &epoch_time,
            };
            return self.on_key(
                q,
                principal,
                &entry,
                KeyRole::Key,
                "kms:RetireGrant",
                &[],
                &common,
            );
        }
        let tokens = token_grants(self.store.as_ref(), q.request)?;
        let source_ip = q.context.source.map(|a| a.ip().to_string());
        let (current_time, epoch_time) = clock_values(crate::clock::now());
        let common = Common {
            source_ip: source_ip.as_deref(),
            tls: q.context.tls,
            current_time: &current_time,
            epoch_time: &epoch_time,
        };
        if q.resources.is_empty() {
            return self.without_key(q, principal, "*", q.action, &common);
        }
        for r in &q.resources {
            match r {
                Resource::Key {
                    role,
                    action,
                    entry,
                } => self.on_key(q, principal, entry, *role, action, &tokens, &common)?,
                Resource::Alias { action, alias } => {
                    self.without_key(q, principal, &alias.arn, action, &common)?
                }
            }
        }
        // UpdateAlias: also kms:UpdateAlias on the key the alias points to
        // now (AWS documents both keys).
        if let Request::UpdateAlias(r) = q.request {
            let s = &q.caller.scope;
            let current = self
                .store
                .alias(s.account.as_str(), &s.region, &r.alias_name)
                .and_then(|a| {
                    self.store
                        .key(s.account.as_str(), &s.region, &a.target_key_id)
                });
            if let Some(entry) = current {
                self.on_key(
                    q,
                    principal,
                    &entry,
                    KeyRole::Key,
                    q.action,
                    &tokens,
                    &common,
                )?;
            }
        }
        Ok(())
    }
}

/// The question for this request, asked of `authorizer`.
pub fn authorize(
    authorizer: &dyn Authorizer,
    cx: &RequestContext,
    caller: &Caller,
    request: &Request,
) -> Result<(), KmsError> {
    let operation = request.operation();
    let mut resources: Vec<Resource<'_>> = cx
        .resolved
        .keys
        .iter()
        .map(|k| Resource::Key {
            role: k.role,
            action: action(operation, k.role),
            entry: &k.entry,
        })
        .collect();
    resources.extend(cx.resolved.aliases.iter().map(|alias| Resource::Alias {
        action: operation.iam_action(),
        alias,
    }));
    authorizer.authorize(&Question {
        context: cx,
        caller,
        operation,
        action: operation.iam_action(),
        resources,
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reencrypt_needs_both_actions() {
        assert_eq!(
            action(Operation::ReEncrypt, KeyRole::Source),
            "kms:ReEncryptFrom"
        );
        assert_eq!(
            action(Operation::ReEncrypt, KeyRole::Destination),
            "kms:ReEncryptTo"
        );
        assert_eq!(action(Operation::Encrypt, KeyRole::Key), "kms:Encrypt");
        assert_eq!(Operation::CreateAlias.iam_action(), "kms:CreateAlias");
    }

    #[test]
    fn clock_values_are_iso_8601_and_epoch_seconds() {
        assert_eq!(
            clock_values(0.0),
            ("1970-01-01T00:00:00Z".into(), "0".into())
        );
        assert_eq!(
            clock_values(1_709_251_199.9),
            ("2024-02-29T23:59:59Z".into(), "1709251199".into())
        );
        assert_eq!(clock_values(951_868_800.0).0, "2000-03-01T00:00:00Z");
    }

    #[test]
    fn request_alias_is_the_alias_name() {
        let req = |key: &str| {
            Request::decode(
                Operation::Encrypt,
                serde_json::json!({"KeyId": key, "Plaintext": "eA=="}),
            )
            .unwrap()
        };
        assert_eq!(
            request_alias(&req("alias/app"), KeyRole::Key),
            Some("alias/app")
        );
        assert_eq!(
            request_alias(
                &req("arn:aws:kms:us-east-1:111122223333:alias/app"),
                KeyRole::Key
            ),
            Some("alias/app")
        );
        assert_eq!(
            request_alias(&req("1234abcd-12ab-34cd-56ef-1234567890ab"), KeyRole::Key),
            None
        );
        assert_eq!(
            grant_tokens(&req("alias/app")),
            &[] as &[String],
            "no GrantTokens member given"
        );
    }
}
