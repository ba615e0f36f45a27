//! `kms-core authz explain`: the decision for a caller, action, key and
//! encryption context, evaluated by the same code as requests, with a
//! statement-by-statement trace of why each statement did or did not
//! apply. For operators and policy authors; callers of the API only ever
//! see AWS's AccessDeniedException message.

use super::condition::Found;
use super::context::{AuthzInput, Caller, KeyFacts, RequestFacts};
use super::eval::{authorize, match_statement, PrincipalMatch, StatementMatch};
use super::grants::Grant;
use super::policy::{PolicyDocument, PolicyError, PolicyKind, Statement};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// What to explain. Policies are given as text, as stored.
#[derive(Debug, Clone, Default)]
pub struct ExplainRequest<'a> {
    pub key_policy: &'a str,
    /// The caller's identity policies; `None`: none configured.
    pub identity_policies: Option<Vec<&'a str>>,
    pub caller_arn: &'a str,
    /// The caller's account; taken from the ARN when empty.
    pub caller_account: &'a str,
    /// `kms:Decrypt` (a bare `Decrypt` is accepted).
    pub action: &'a str,
    pub key_arn: &'a str,
    pub key_spec: &'a str,
    pub key_usage: &'a str,
    pub encryption_context: BTreeMap<String, String>,
    pub grants: Vec<Arc<Grant>>,
    pub strict: bool,
    /// The configured caller (principal tags and identity policies as
    /// requests see them); when given, `caller_arn`, `caller_account` and
    /// `identity_policies` are not used.
    pub principal: Option<&'a Caller>,
    /// The key's facts as requests see them (origin, multi-Region, tags,
    /// aliases); when given, `key_arn`, `key_spec` and `key_usage` are not
    /// used.
    pub key: Option<KeyFacts<'a>>,
    /// `aws:SourceIp` of the imagined request.
    pub source_ip: Option<&'a str>,
    /// `aws:SecureTransport` of the imagined request (requests to kms-core
    /// over TLS: true).
    pub secure_transport: bool,
    /// `aws:CurrentTime`/`aws:EpochTime` (epoch seconds); the service clock
    /// when absent.
    pub now: Option<f64>,
}

/// The account of an ARN (its fifth field).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// Evaluates and formats the explanation. Fails only when a policy does
/// not parse (with the MalformedPolicyDocumentException message).
pub fn explain(req: &ExplainRequest<'_>) -> Result<String, PolicyError> {
    let key_policy = PolicyDocument::parse(req.key_policy, PolicyKind::Key)
        .map_err(|e| PolicyError(format!("key policy: {e}")))?;
    let mut caller = match req.principal {
        Some(c) => c.clone(),
        None => Caller::new(
            req.caller_arn,
            if req.caller_account.is_empty() {
                account_of(req.caller_arn)
            } else {
                req.caller_account
            },
        ),
    };
    if let (None, Some(texts)) = (req.principal, &req.identity_policies) {
        let mut parsed = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            parsed.push(Arc::new(
                PolicyDocument::parse(t, PolicyKind::Identity)
                    .map_err(|e| PolicyError(format!("identity policy {}: {e}", i + 1)))?,
            ));
        }
        caller = caller.with_identity_policies(parsed);
    }
    let action = if req.action.contains(':') {
        req.action.to_owned()
    } else {
        format!("kms:{}", req.action)
    };
    let tags = BTreeMap::new();
    let key = req.key.unwrap_or(KeyFacts {
        arn: req.key_arn,
        account: account_of(req.key_arn),
        key_spec: if req.key_spec.is_empty() {
            "SYMMETRIC_DEFAULT"
        } else {
            req.key_spec
        },
        key_usage: if req.key_usage.is_empty() {
            "ENCRYPT_DECRYPT"
        } else {
            req.key_usage
        },
        key_origin: "AWS_KMS",
        multi_region: false,
        tags: &tags,
        aliases: &[],
    });
    let (current_time, epoch_time) =
        super::context::clock_values(req.now.unwrap_or_else(crate::clock::now));
    let input = AuthzInput {
        caller: &caller,
        action: &action,
        key,
        key_policy: &key_policy,
        request: RequestFacts {
            encryption_context: Some(&req.encryption_context),
            source_ip: req.source_ip,
            secure_transport: req.secure_transport,
            current_time: &current_time,
            epoch_time: &epoch_time,
            ..RequestFacts::default()
        },
        grants: &req.grants,
        token_grants: &[],
        strict: req.strict,
    };
    let d = authorize(&input);
    let mut out = String::new();
    let _ = writeln!(out, "{}", d.summary());
    if let Some(m) = d.access_denied_message() {
        let _ = writeln!(out, "AccessDeniedException: {m}");
    }
    let _ = writeln!(out, "key policy:");
    trace(&mut out, &key_policy.statements, &input);
    match &caller.identity_policies {
        None if req.strict => {
            let _ = writeln!(
                out,
                "identity policies: none (strict mode: no IAM permission)"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "identity policies: none (treated as Allow kms:* on *; strict mode off)"
            );
        }
        Some(ps) => {
            for (i, p) in ps.iter().enumerate() {
                let _ = writeln!(out, "identity policy {}:", i + 1);
                trace(&mut out, &p.statements, &input);
            }
        }
    }
    if !req.grants.is_empty() {
        let _ = writeln!(out, "grants: {}", req.grants.len());
    }
    Ok(out)
}

fn trace(out: &mut String, statements: &[Statement], input: &AuthzInput<'_>) {
    for s in statements {
        let effect = match s.effect {
            super::policy::Effect::Allow => "Allow",
            super::policy::Effect::Deny => "Deny",
        };
        let why = match match_statement(s, input) {
            StatementMatch::Applies(PrincipalMatch::Account) => {
                "applies (to the caller's account: delegation to identity policies)".to_owned()
            }
            StatementMatch::Applies(_) => "applies".to_owned(),
            StatementMatch::PrincipalNotMatched => "does not apply: principal".to_owned(),
            StatementMatch::ActionNotCovered => "does not apply: action".to_owned(),
            StatementMatch::ResourceNotCovered => "does not apply: resource".to_owned(),
            StatementMatch::ConditionFailed(_, c) => {
                let present = !matches!(input.lookup(&c.key), Found::Absent);
                format!(
                    "does not apply: condition {}{}{} on {} ({})",
                    match c.qualifier {
                        super::condition::Qualifier::None => "",
                        super::condition::Qualifier::ForAnyValue => "ForAnyValue:",
                        super::condition::Qualifier::ForAllValues => "ForAllValues:",
                    },
                    c.operator.as_str(),
                    if c.if_exists { "IfExists" } else { "" },
                    c.key_name,
                    if present {
                        "value does not match"
                    } else {
                        "key absent from the request"
                    }
                )
            }
        };
        let _ = writeln!(out, "  {} [{effect}]: {why}", s.label());
    }
}
