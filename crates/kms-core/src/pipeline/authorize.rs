//! Step 6: may this caller do this? The [`Authorizer`] sees the request
//! context (caller, source address, TLS, operation), every resource the
//! request names with the IAM action it needs on it (ReEncrypt:
//! `kms:ReEncryptFrom` on the source key, `kms:ReEncryptTo` on the
//! destination; CreateAlias/UpdateAlias/DeleteAlias: the alias and the
//! key), and the typed request (encryption context, algorithms, grant
//! tokens, DryRun). Key policies, identity policies and grants plug in
//! here; today every request is allowed ([`AllowAll`]).

use super::resolve::action;
use crate::api::error::KmsError;
use crate::api::{Operation, Request};
use crate::auth::Caller;
use crate::context::{KeyRole, NamedAlias, RequestContext};
use crate::store::KeyEntry;

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
}
