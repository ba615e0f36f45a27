//! AWS KMS's authorization logic over parsed policies and grants.
//!
//! 1. An explicit `Deny` in the key policy or in one of the caller's
//!    identity policies wins over everything.
//! 2. Otherwise the request is allowed when
//!    * the key policy allows the caller directly (its ARN, its role, or
//!      `"*"`) and the caller is in the key's account; or
//!    * the key policy allows the caller's account (`arn:aws:iam::A:root`
//!      or `A`) — delegation to IAM — and an identity policy of the
//!      caller allows too (a caller without configured identity policies
//!      counts as "Allow kms:* on *" unless strict mode; the account root
//!      user is never limited by identity policies); for a caller of
//!      another account, any key policy allow needs an identity allow; or
//!    * a grant on the key (or named by a grant token) has the caller as
//!      grantee and allows the operation (constraints satisfied); a grant
//!      to an account needs an identity allow, like delegation.
//!
//! Evaluation allocates nothing: it borrows the parsed policies, the
//! grants and the request, and returns a [`Decision`] that borrows them.

use super::condition::Found;
use super::context::{AuthzInput, Caller};
use super::grants::{Grant, GrantOperation, GranteeMatch};
use super::policy::{AwsPrincipal, Effect, Negatable, PolicyDocument, Principals, Statement};
use crate::keyspec::{self, KeyClass, KeySpec, KeyUsage};

/// Which policy a statement is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    KeyPolicy,
    /// The caller's identity policy at this position.
    IdentityPolicy(usize),
}

/// Why the caller's IAM side allowed a delegated request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IdentityBasis<'a> {
    /// A statement of one of the caller's identity policies.
    Statement {
        policy: usize,
        statement: &'a Statement,
    },
    /// No identity policies configured: "Allow kms:* on *" (not strict).
    ImplicitAdmin,
    /// The account root user.
    AccountRoot,
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason<'a> {
    /// A key policy statement naming the caller allowed it.
    KeyPolicy { statement: &'a Statement },
    /// A key policy statement allowed the caller's account (or the caller
    /// of another account) and the identity side allowed too.
    Delegated {
        statement: &'a Statement,
        identity: IdentityBasis<'a>,
    },
    /// A grant allowed it.
    Grant {
        grant: &'a Grant,
        /// Found through a grant token of the request.
        via_token: bool,
    },
    /// An explicit Deny.
    ExplicitDeny {
        source: PolicySource,
        statement: &'a Statement,
    },
    /// No key policy statement and no grant allowed it.
    NoKeyPolicyAllow,
    /// An operation without a key: the identity side allowed it.
    Identity { identity: IdentityBasis<'a> },
    /// An operation without a key: no identity policy allowed it.
    NoIdentityPolicyAllow,
    /// The key policy allowed the account (delegation) but no identity
    /// policy of the caller allowed it.
    NoIdentityAllow { statement: &'a Statement },
}

/// The outcome of one evaluation: allow or deny, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision<'a> {
    pub allowed: bool,
    pub reason: Reason<'a>,
    /// `kms:Decrypt`.
    pub action: &'a str,
    pub caller_arn: &'a str,
    pub resource_arn: &'a str,
}

impl Decision<'_> {
    /// The AccessDeniedException message AWS sends for this denial
    /// (`None` when allowed). Never contains policy text.
    pub fn access_denied_message(&self) -> Option<String> {
        if self.allowed {
            return None;
        }
        // Operations without a resource (CreateKey, ListKeys...) name none.
        let head = if self.resource_arn.is_empty() {
            format!(
                "User: {} is not authorized to perform: {}",
                self.caller_arn, self.action
            )
        } else {
            format!(
                "User: {} is not authorized to perform: {} on resource: {}",
                self.caller_arn, self.action, self.resource_arn
            )
        };
        Some(match self.reason {
            Reason::ExplicitDeny {
                source: PolicySource::KeyPolicy,
                ..
            } => format!("{head} with an explicit deny in a resource-based policy"),
            Reason::ExplicitDeny {
                source: PolicySource::IdentityPolicy(_),
                ..
            } => format!("{head} with an explicit deny in an identity-based policy"),
            Reason::NoIdentityAllow { .. } | Reason::NoIdentityPolicyAllow => format!(
                "{head} because no identity-based policy allows the {} action",
                self.action
            ),
            _ => format!(
                "{head} because no resource-based policy allows the {} action",
                self.action
            ),
        })
    }

    /// A one-line explanation for operators (the service log, `explain`):
    /// which statement (Sid or position) of which policy, or which grant.
    pub fn summary(&self) -> String {
        let verdict = if self.allowed { "ALLOW" } else { "DENY" };
        let why = match self.reason {
            Reason::KeyPolicy { statement } => {
                format!("key policy {} allows the caller", statement.label())
            }
            Reason::Delegated {
                statement,
                identity,
            } => format!(
                "key policy {} allows the caller's account, and {}",
                statement.label(),
                identity_text(identity)
            ),
            Reason::Grant { grant, via_token } => format!(
                "grant {}{} allows {}",
                grant.grant_id,
                if via_token { " (by grant token)" } else { "" },
                self.action
            ),
            Reason::ExplicitDeny { source, statement } => format!(
                "{} {} denies explicitly",
                match source {
                    PolicySource::KeyPolicy => "key policy".to_owned(),
                    PolicySource::IdentityPolicy(i) => format!("identity policy {}", i + 1),
                },
                statement.label()
            ),
            Reason::NoKeyPolicyAllow => {
                "no key policy statement and no grant allows the caller".into()
            }
            Reason::Identity { identity } => identity_text(identity),
            Reason::NoIdentityPolicyAllow => "no identity policy of the caller allows".into(),
            Reason::NoIdentityAllow { statement } => format!(
                "key policy {} allows only through the caller's identity policies, and none allows",
                statement.label()
            ),
        };
        format!(
            "{verdict} {} by {} on {}: {why}",
            self.action, self.caller_arn, self.resource_arn
        )
    }
}

fn identity_text(identity: IdentityBasis<'_>) -> String {
    match identity {
        IdentityBasis::Statement { policy, statement } => {
            format!(
                "identity policy {} {} allows",
                policy + 1,
                statement.label()
            )
        }
        IdentityBasis::ImplicitAdmin => {
            "the caller has no identity policies (treated as Allow kms:* on *)".into()
        }
        IdentityBasis::AccountRoot => "the caller is the account root user".into(),
    }
}

/// How a statement's principal element names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalMatch {
    No,
    /// By ARN, role, or `"*"`.
    Direct,
    /// By the caller's account (delegation to IAM).
    Account,
}

/// Whether a principal ARN of a policy names the caller: its ARN, or its
/// role (for an assumed-role session) — a role is named by account and
/// role name, whatever its path (role names are unique in an account).
fn names_caller(x: &str, c: &Caller) -> bool {
    if x == c.arn || x == c.principal_arn {
        return true;
    }
    role_of(x).is_some_and(|r| role_of(&c.principal_arn) == Some(r))
}

/// (account, role name) of a role ARN.
fn role_of(a: &str) -> Option<(&str, &str)> {
    let rest = a.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(":iam::")?;
    let (account, path) = rest.split_once(':')?;
    let name = path.strip_prefix("role/")?.rsplit('/').next()?;
    Some((account, name))
}

fn match_principals(p: &Negatable<Principals>, c: &Caller) -> PrincipalMatch {
    let ps = &p.items;
    if !p.not {
        if ps.any {
            return PrincipalMatch::Direct;
        }
        let mut best = PrincipalMatch::No;
        for a in &ps.aws {
            match a {
                AwsPrincipal::Any => return PrincipalMatch::Direct,
                AwsPrincipal::Arn(x) if names_caller(x, c) => return PrincipalMatch::Direct,
                AwsPrincipal::Account(a) if *a == c.account => best = PrincipalMatch::Account,
                _ => {}
            }
        }
        best
    } else {
        // NotPrincipal: everyone but the listed principals. An account
        // listed here excludes only its root user, as in IAM.
        let listed = ps.any
            || ps.aws.iter().any(|a| match a {
                AwsPrincipal::Any => true,
                AwsPrincipal::Arn(x) => names_caller(x, c),
                AwsPrincipal::Account(a) => *a == c.account && c.is_account_root(),
            });
        if listed {
            PrincipalMatch::No
        } else {
            PrincipalMatch::Direct
        }
    }
}

/// Why a statement did or did not apply (for explanations).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StatementMatch<'a> {
    Applies(PrincipalMatch),
    PrincipalNotMatched,
    ActionNotCovered,
    ResourceNotCovered,
    /// The first condition that does not hold (index in the statement).
    ConditionFailed(usize, &'a super::condition::Condition),
}

/// Matches one statement against the request.
pub fn match_statement<'s>(s: &'s Statement, input: &AuthzInput<'_>) -> StatementMatch<'s> {
    let pm = match &s.principal {
        Some(p) => match match_principals(p, input.caller) {
            PrincipalMatch::No => return StatementMatch::PrincipalNotMatched,
            m => m,
        },
        None => PrincipalMatch::Direct,
    };
    if !s.covers_action(input.action) {
        return StatementMatch::ActionNotCovered;
    }
    if !s.covers_resource(input.key.arn) {
        return StatementMatch::ResourceNotCovered;
    }
    for (i, c) in s.conditions.iter().enumerate() {
        let found: Found<'_> = input.lookup(&c.key);
        if !c.holds(found) {
            return StatementMatch::ConditionFailed(i, c);
        }
    }
    StatementMatch::Applies(pm)
}

/// The result of scanning one policy: the first explicit Deny, else the
/// best Allow.
struct Scan<'a> {
    deny: Option<&'a Statement>,
    direct: Option<&'a Statement>,
    account: Option<&'a Statement>,
}

fn scan<'a>(policy: &'a PolicyDocument, input: &AuthzInput<'_>) -> Scan<'a> {
    let mut out = Scan {
        deny: None,
        direct: None,
        account: None,
    };
    for s in &policy.statements {
        if let StatementMatch::Applies(pm) = match_statement(s, input) {
            match (s.effect, pm) {
                (Effect::Deny, _) => {
                    out.deny = Some(s);
                    return out;
                }
                (Effect::Allow, PrincipalMatch::Direct) if out.direct.is_none() => {
                    out.direct = Some(s)
                }
                (Effect::Allow, PrincipalMatch::Account) if out.account.is_none() => {
                    out.account = Some(s)
                }
                _ => {}
            }
        }
    }
    out
}

/// The key's class, from the key facts (for grant rules).
fn key_class(input: &AuthzInput<'_>) -> KeyClass {
    let spec = KeySpec::parse(input.key.key_spec).unwrap_or(KeySpec::SymmetricDefault);
    let usage = KeyUsage::parse(input.key.key_usage).unwrap_or(KeyUsage::EncryptDecrypt);
    keyspec::class(spec, usage)
}

fn grant_allows(g: &Grant, op: GrantOperation, class: KeyClass, input: &AuthzInput<'_>) -> bool {
    if !g.allows(op, class, input.request.encryption_context) {
        return false;
    }
    if op == GrantOperation::CreateGrant {
        // A grant can only pass on operations it has itself, under
        // constraints at least as strict as its own.
        let Some(asked) = input.request.grant_operations else {
            return false;
        };
        let strict_enough = g.constraints.as_ref().is_none_or(|c| {
            c.admits_constraints(input.request.grant_subset, input.request.grant_equals)
        });
        return strict_enough
            && asked
                .iter()
                .all(|a| GrantOperation::parse(a).is_some_and(|o| g.operations.contains(&o)));
    }
    true
}

/// The identity side: an explicit deny in any identity policy (`Err`),
/// else what allows — the first allowing statement, the implicit
/// administrator (no identity policies, strict mode off), or the account's
/// root user, which has every IAM permission of its account (also for
/// another account's key its account may use).
fn identity_side<'a>(input: &AuthzInput<'a>) -> Result<Option<IdentityBasis<'a>>, Reason<'a>> {
    let caller = input.caller;
    let mut basis = None;
    match &caller.identity_policies {
        Some(policies) => {
            for (i, p) in policies.iter().enumerate() {
                let s = scan(p, input);
                if let Some(statement) = s.deny {
                    return Err(Reason::ExplicitDeny {
                        source: PolicySource::IdentityPolicy(i),
                        statement,
                    });
                }
                if basis.is_none() {
                    basis = s.direct.map(|statement| IdentityBasis::Statement {
                        policy: i,
                        statement,
                    });
                }
            }
        }
        None if !input.strict => basis = Some(IdentityBasis::ImplicitAdmin),
        None => {}
    }
    if caller.is_account_root() {
        basis = basis.or(Some(IdentityBasis::AccountRoot));
    }
    Ok(basis)
}

/// Evaluates the request: the one authorization entry point (the
/// pipeline's authorize step, `explain`, the lockout check).
pub fn authorize<'a>(input: &AuthzInput<'a>) -> Decision<'a> {
    let decide = |allowed, reason| Decision {
        allowed,
        reason,
        action: input.action,
        caller_arn: &input.caller.arn,
        resource_arn: input.key.arn,
    };
    let key = scan(input.key_policy, input);
    if let Some(statement) = key.deny {
        return decide(
            false,
            Reason::ExplicitDeny {
                source: PolicySource::KeyPolicy,
                statement,
            },
        );
    }
    let caller = input.caller;
    let identity = match identity_side(input) {
        Ok(basis) => basis,
        Err(deny) => return decide(false, deny),
    };
    let same_account = caller.account == input.key.account;
    if same_account {
        if let Some(statement) = key.direct {
            return decide(true, Reason::KeyPolicy { statement });
        }
    }
    let key_allow = key.account.or(if same_account { None } else { key.direct });
    if let (Some(statement), Some(identity)) = (key_allow, identity) {
        return decide(
            true,
            Reason::Delegated {
                statement,
                identity,
            },
        );
    }
    if let Some(op) = GrantOperation::of_action(input.action) {
        if !input.grants.is_empty() || !input.token_grants.is_empty() {
            let class = key_class(input);
            let tagged = input
                .grants
                .iter()
                .map(|g| (g, false))
                .chain(input.token_grants.iter().map(|g| (g, true)));
            for (g, via_token) in tagged {
                if g.key_arn != input.key.arn {
                    continue;
                }
                let Some(m) = g.grantee_match(&caller.arn, &caller.principal_arn, &caller.account)
                else {
                    continue;
                };
                if (m == GranteeMatch::Principal || identity.is_some())
                    && grant_allows(g, op, class, input)
                {
                    return decide(
                        true,
                        Reason::Grant {
                            grant: g,
                            via_token,
                        },
                    );
                }
            }
        }
    }
    match key_allow {
        Some(statement) => decide(false, Reason::NoIdentityAllow { statement }),
        None => decide(false, Reason::NoKeyPolicyAllow),
    }
}

/// AWS's message when a new key policy would lock the caller out.
pub const LOCKOUT_MESSAGE: &str =
    "The new key policy will not allow you to update the key policy in the future.";

/// The policy lockout safety check of PutKeyPolicy and CreateKey: unless
/// the request sets BypassPolicyLockoutSafetyCheck, the caller must still
/// be allowed `kms:PutKeyPolicy` on the key under `new_policy` (its
/// identity policies and grants as in `input`). The error is the text of
/// MalformedPolicyDocumentException.
pub fn lockout_check(
    new_policy: &PolicyDocument,
    input: &AuthzInput<'_>,
    bypass: bool,
) -> Result<(), super::policy::PolicyError> {
    if bypass {
        return Ok(());
    }
    let probe = AuthzInput {
        action: "kms:PutKeyPolicy",
        key_policy: new_policy,
        ..input.clone()
    };
    if authorize(&probe).allowed {
        Ok(())
    } else {
        Err(super::policy::PolicyError(LOCKOUT_MESSAGE.into()))
    }
}

/// Authorizes an operation that names no key (CreateKey, ListKeys,
/// ListAliases, GenerateRandom, the custom key store operations,
/// ListRetirableGrants): only the caller's identity policies decide, as in
/// AWS. `input.key_policy` and the grants are ignored (pass
/// [`super::policy::NO_POLICY`] and empty slices); `input.key.arn` is the
/// resource the identity policies' `Resource` is matched against (`"*"`
/// matches any; empty: no resource in the denial message), and the other
/// key facts carry the request's values (CreateKey's `kms:KeySpec`...).
pub fn authorize_without_key<'a>(input: &AuthzInput<'a>) -> Decision<'a> {
    let decide = |allowed, reason| Decision {
        allowed,
        reason,
        action: input.action,
        caller_arn: &input.caller.arn,
        resource_arn: input.key.arn,
    };
    let allow = match identity_side(input) {
        Ok(basis) => basis,
        Err(deny) => return decide(false, deny),
    };
    match allow {
        Some(identity) => decide(true, Reason::Identity { identity }),
        None => decide(false, Reason::NoIdentityPolicyAllow),
    }
}
