//! The grant model: the grant record, which operations a grant may allow
//! for which kind of key, CreateGrant input checks with AWS's errors, grant
//! tokens, the encryption context constraints, and who may retire a grant.
//! Pure functions and types; persistence is [`crate::store::grants`].

use crate::keyspec::KeyClass;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most grants one key may have (AWS's quota).
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// The model's `GrantOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GrantOperation {
    Decrypt,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    ReEncryptFrom,
    ReEncryptTo,
    Sign,
    Verify,
    GetPublicKey,
    CreateGrant,
    RetireGrant,
    DescribeKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    VerifyMac,
    DeriveSharedSecret,
    Encapsulate,
    Decapsulate,
}

impl GrantOperation {
    /// Every operation, in the model's order.
    pub const ALL: [GrantOperation; 19] = [
        GrantOperation::Decrypt,
        GrantOperation::Encrypt,
        GrantOperation::GenerateDataKey,
        GrantOperation::GenerateDataKeyWithoutPlaintext,
        GrantOperation::ReEncryptFrom,
        GrantOperation::ReEncryptTo,
        GrantOperation::Sign,
        GrantOperation::Verify,
        GrantOperation::GetPublicKey,
        GrantOperation::CreateGrant,
        GrantOperation::RetireGrant,
        GrantOperation::DescribeKey,
        GrantOperation::GenerateDataKeyPair,
        GrantOperation::GenerateDataKeyPairWithoutPlaintext,
        GrantOperation::GenerateMac,
        GrantOperation::VerifyMac,
        GrantOperation::DeriveSharedSecret,
        GrantOperation::Encapsulate,
        GrantOperation::Decapsulate,
    ];

    /// The model's name (`GenerateDataKey`).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantOperation::Decrypt => "Decrypt",
            GrantOperation::Encrypt => "Encrypt",
            GrantOperation::GenerateDataKey => "GenerateDataKey",
            GrantOperation::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            GrantOperation::ReEncryptFrom => "ReEncryptFrom",
            GrantOperation::ReEncryptTo => "ReEncryptTo",
            GrantOperation::Sign => "Sign",
            GrantOperation::Verify => "Verify",
            GrantOperation::GetPublicKey => "GetPublicKey",
            GrantOperation::CreateGrant => "CreateGrant",
            GrantOperation::RetireGrant => "RetireGrant",
            GrantOperation::DescribeKey => "DescribeKey",
            GrantOperation::GenerateDataKeyPair => "GenerateDataKeyPair",
            GrantOperation::GenerateDataKeyPairWithoutPlaintext => {
                "GenerateDataKeyPairWithoutPlaintext"
            }
            GrantOperation::GenerateMac => "GenerateMac",
            GrantOperation::VerifyMac => "VerifyMac",
            GrantOperation::DeriveSharedSecret => "DeriveSharedSecret",
            GrantOperation::Encapsulate => "Encapsulate",
            GrantOperation::Decapsulate => "Decapsulate",
        }
    }

    /// Parses a model name (exact case, as the model's enum).
    pub fn parse(s: &str) -> Option<GrantOperation> {
        Self::ALL.iter().copied().find(|o| o.as_str() == s)
    }

    /// The operation a `kms:<Action>` names, if grants can allow it.
    pub fn of_action(action: &str) -> Option<GrantOperation> {
        action.strip_prefix("kms:").and_then(Self::parse)
    }

    /// Whether the operation takes an encryption context on a symmetric
    /// key (only these are subject to grant constraints).
    pub fn takes_encryption_context(self) -> bool {
        matches!(
            self,
            GrantOperation::Decrypt
                | GrantOperation::Encrypt
                | GrantOperation::GenerateDataKey
                | GrantOperation::GenerateDataKeyWithoutPlaintext
                | GrantOperation::ReEncryptFrom
                | GrantOperation::ReEncryptTo
                | GrantOperation::GenerateDataKeyPair
                | GrantOperation::GenerateDataKeyPairWithoutPlaintext
        )
    }

    /// Whether AWS lets a grant on a key of `class` allow this operation
    /// (AWS's "grant operations" table; CreateGrant, RetireGrant and
    /// DescribeKey for every key).
    pub fn allowed_for(self, class: KeyClass) -> bool {
        use GrantOperation as G;
        if matches!(self, G::CreateGrant | G::RetireGrant | G::DescribeKey) {
            return true;
        }
        match class {
            KeyClass::Symmetric => self.takes_encryption_context(),
            KeyClass::Hmac => matches!(self, G::GenerateMac | G::VerifyMac),
            KeyClass::AsymmetricEncrypt => matches!(
                self,
                G::Encrypt | G::Decrypt | G::ReEncryptFrom | G::ReEncryptTo | G::GetPublicKey
            ),
            KeyClass::AsymmetricSign => matches!(self, G::Sign | G::Verify | G::GetPublicKey),
            KeyClass::AsymmetricAgreement => {
                matches!(self, G::DeriveSharedSecret | G::GetPublicKey)
            }
            KeyClass::Kem => matches!(self, G::Encapsulate | G::Decapsulate | G::GetPublicKey),
        }
    }
}

/// `GrantConstraints`: at most one of the two maps is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrantConstraints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
}

impl GrantConstraints {
    /// `kms:GrantConstraintType`.
    pub fn constraint_type(&self) -> Option<&'static str> {
        if self.encryption_context_equals.is_some() {
            Some("EncryptionContextEquals")
        } else if self.encryption_context_subset.is_some() {
            Some("EncryptionContextSubset")
        } else {
            None
        }
    }

    /// Whether a request's encryption context satisfies the constraints:
    /// constraint keys compare case-insensitively, values exactly
    /// (AWS's rule for grant constraints).
    pub fn allow(&self, context: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        let ctx = context.unwrap_or(&empty);
        let has = |k: &str, v: &str| {
            ctx.iter()
                .any(|(ck, cv)| ck.eq_ignore_ascii_case(k) && cv == v)
        };
        if let Some(eq) = &self.encryption_context_equals {
            if eq.len() != ctx.len() || !eq.iter().all(|(k, v)| has(k, v)) {
                return false;
            }
        }
        if let Some(sub) = &self.encryption_context_subset {
            if !sub.iter().all(|(k, v)| has(k, v)) {
                return false;
            }
        }
        true
    }
}

impl GrantConstraints {
    /// Whether a new grant with these `subset`/`equals` constraints is at
    /// least as strict as `self` (a grant passing on CreateGrant): every
    /// encryption context the new grant admits, this one admits too.
    pub fn admits_constraints(
        &self,
        subset: Option<&BTreeMap<String, String>>,
        equals: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let contains = |outer: &BTreeMap<String, String>, inner: &BTreeMap<String, String>| {
            inner.iter().all(|(k, v)| {
                outer
                    .iter()
                    .any(|(ok, ov)| ok.eq_ignore_ascii_case(k) && ov == v)
            })
        };
        if let Some(eq) = &self.encryption_context_equals {
            // Only the same exact context is as strict.
            return equals.is_some_and(|e| e.len() == eq.len() && contains(e, eq));
        }
        if let Some(sub) = &self.encryption_context_subset {
            return match (equals, subset) {
                (Some(e), _) => contains(e, sub),
                (None, Some(s)) => contains(s, sub),
                (None, None) => false,
            };
        }
        true
    }
}

/// One grant (`GrantListEntry` plus what kms-core keeps beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The key's id (the key's account and region are the grant's).
    pub key_id: String,
    /// The key's ARN (ListGrants' `KeyId` is the ARN).
    pub key_arn: String,
    pub account: String,
    pub region: String,
    /// 64 hex digits.
    pub grant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub grantee_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    /// `arn:aws:iam::<account of the creator>:root`.
    pub issuing_account: String,
    /// Sorted, without duplicates.
    pub operations: Vec<GrantOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
    /// Epoch seconds.
    pub creation_date: f64,
}

/// How a grant's grantee names a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GranteeMatch {
    /// The caller's ARN (or, for an assumed-role session, its role).
    Principal,
    /// The caller's account (`arn:aws:iam::A:root`): the account's
    /// identity policies must allow the use too.
    Account,
}

impl Grant {
    /// Whether and how the grantee names the caller (its ARN, its role
    /// ARN for an assumed-role session, its account id).
    pub fn grantee_match(&self, arn: &str, role_arn: &str, account: &str) -> Option<GranteeMatch> {
        principal_match(&self.grantee_principal, arn, role_arn, account)
    }

    /// Whether the caller is the grantee by its own ARN or role.
    pub fn is_grantee(&self, arn: &str, role_arn: &str, account: &str) -> bool {
        self.grantee_match(arn, role_arn, account) == Some(GranteeMatch::Principal)
    }

    /// Whether the grant allows `op` for a request with `context` on a key
    /// of `class` (constraints apply only to symmetric cryptographic
    /// operations).
    pub fn allows(
        &self,
        op: GrantOperation,
        class: KeyClass,
        context: Option<&BTreeMap<String, String>>,
    ) -> bool {
        if !self.operations.contains(&op) {
            return false;
        }
        match &self.constraints {
            Some(c) if class == KeyClass::Symmetric && op.takes_encryption_context() => {
                c.allow(context)
            }
            _ => true,
        }
    }

    /// The parameters CreateGrant's idempotency compares.
    pub fn same_parameters(&self, other: &Grant) -> bool {
        self.key_id == other.key_id
            && self.name == other.name
            && self.grantee_principal == other.grantee_principal
            && self.retiring_principal == other.retiring_principal
            && self.operations == other.operations
            && self.constraints == other.constraints
    }
}

/// Whether a grant principal names the caller: its exact ARN or the role
/// of its assumed-role session ([`GranteeMatch::Principal`]), or its
/// account (`arn:aws:iam::A:root`, [`GranteeMatch::Account`]).
pub fn principal_match(p: &str, arn: &str, role_arn: &str, account: &str) -> Option<GranteeMatch> {
    if p == arn || p == role_arn {
        Some(GranteeMatch::Principal)
    } else if p
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.strip_suffix(":root"))
        .is_some_and(|a| a == account)
    {
        Some(GranteeMatch::Account)
    } else {
        None
    }
}

/// An AWS error for a grant operation: the `__type` and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidGrantId(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    NotFound(String),
}

impl GrantError {
    /// The `__type` of the error on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            GrantError::Validation(_) => "ValidationException",
            GrantError::InvalidArn(_) => "InvalidArnException",
            GrantError::InvalidGrantId(_) => "InvalidGrantIdException",
            GrantError::InvalidGrantToken(_) => "InvalidGrantTokenException",
            GrantError::LimitExceeded(_) => "LimitExceededException",
            GrantError::NotFound(_) => "NotFoundException",
        }
    }
}

impl From<GrantError> for crate::api::error::KmsError {
    fn from(e: GrantError) -> crate::api::error::KmsError {
        use crate::api::error::KmsError;
        use GrantError as G;
        match e {
            G::Validation(m) => KmsError::Validation(m),
            G::InvalidArn(m) => KmsError::InvalidArn(m),
            G::InvalidGrantId(m) => KmsError::InvalidGrantId(m),
            G::InvalidGrantToken(m) => KmsError::InvalidGrantToken(m),
            G::LimitExceeded(m) => KmsError::LimitExceeded(m),
            G::NotFound(m) => KmsError::NotFound(m),
        }
    }
}

/// The checked inputs of a CreateGrant.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateGrantInput {
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub operations: Vec<GrantOperation>,
    pub constraints: Option<GrantConstraints>,
    pub name: Option<String>,
}

/// Whether a grantee/retiring principal is an ARN AWS accepts: an account
/// root, user, role, assumed-role or federated-user ARN, or a service
/// principal name (for grants to AWS services).
pub fn valid_grant_principal(p: &str) -> bool {
    use super::policy::{parse_aws_principal, AwsPrincipal};
    if p.len() > 256 {
        return false;
    }
    if p.ends_with(".amazonaws.com") && !p.contains(char::is_whitespace) {
        return true;
    }
    matches!(
        parse_aws_principal(p),
        Some(AwsPrincipal::Arn(_)) | Some(AwsPrincipal::Account(_))
    ) && p.starts_with("arn:")
}

/// Checks CreateGrant's inputs against the key's class, as AWS does.
pub fn check_create_grant(
    class: KeyClass,
    grantee_principal: &str,
    retiring_principal: Option<&str>,
    operations: &[String],
    constraints: Option<GrantConstraints>,
    name: Option<&str>,
) -> Result<CreateGrantInput, GrantError> {
    if !valid_grant_principal(grantee_principal) {
        return Err(GrantError::Validation(format!(
            "Invalid principal: {grantee_principal:?} is not a valid grantee principal."
        )));
    }
    if let Some(r) = retiring_principal {
        if !valid_grant_principal(r) {
            return Err(GrantError::Validation(format!(
                "Invalid principal: {r:?} is not a valid retiring principal."
            )));
        }
    }
    if operations.is_empty() {
        return Err(GrantError::Validation(
            "1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ));
    }
    let mut ops = Vec::with_capacity(operations.len());
    for o in operations {
        let op = GrantOperation::parse(o).ok_or_else(|| {
            GrantError::Validation(format!(
                "1 validation error detected: Value '[{o}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                GrantOperation::ALL.map(GrantOperation::as_str).join(", ")
            ))
        })?;
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    ops.sort_unstable();
    if ops == [GrantOperation::CreateGrant] {
        return Err(GrantError::Validation(
            "Grants must not contain only the CreateGrant operation.".into(),
        ));
    }
    let refused: Vec<&str> = ops
        .iter()
        .filter(|o| !o.allowed_for(class))
        .map(|o| o.as_str())
        .collect();
    if !refused.is_empty() {
        return Err(GrantError::Validation(format!(
            "Grant operations [{}] are not supported for this KMS key's key usage.",
            refused.join(", ")
        )));
    }
    let constraints = constraints.filter(|c| c.constraint_type().is_some());
    if let Some(c) = &constraints {
        if c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some() {
            return Err(GrantError::Validation(
                "Specify either EncryptionContextEquals or EncryptionContextSubset in grant constraints, not both.".into(),
            ));
        }
        if class != KeyClass::Symmetric
            || !ops
                .iter()
                .any(|o| o.takes_encryption_context() || *o == GrantOperation::CreateGrant)
        {
            return Err(GrantError::Validation(
                "Grant constraints are supported only for grants on symmetric encryption KMS keys that allow cryptographic operations with an encryption context.".into(),
            ));
        }
    }
    if let Some(n) = name {
        let ok = !n.is_empty()
            && n.len() <= 256
            && n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'/' | b'_' | b'-'));
        if !ok {
            return Err(GrantError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
            )));
        }
    }
    Ok(CreateGrantInput {
        grantee_principal: grantee_principal.to_owned(),
        retiring_principal: retiring_principal.map(str::to_owned),
        operations: ops,
        constraints,
        name: name.map(str::to_owned),
    })
}

/// A new grant id: 64 hex digits from the system CSPRNG.
pub fn new_grant_id() -> Result<String, GrantError> {
    let mut b = [0u8; 32];
    fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn fill(b: &mut [u8]) -> Result<(), GrantError> {
    use aws_lc_rs::rand::SecureRandom;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(b)
        .map_err(|_| GrantError::Validation("random generator failure".into()))
}

/// A new grant token: opaque and unguessable (256 random bits, Base64url),
/// returned once by CreateGrant. Only its digest ([`token_digest`]) is
/// stored.
pub fn new_grant_token() -> Result<String, GrantError> {
    let mut b = [0u8; 48];
    fill(&mut b)?;
    Ok(format!("kmscore-gt1.{}", URL_SAFE_NO_PAD.encode(b)))
}

/// The digest a token is stored and looked up by (SHA-256, hex).
pub fn token_digest(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks a grant token's form before any lookup (AWS:
/// InvalidGrantTokenException for a token that is not one).
pub fn check_token_form(token: &str) -> Result<(), GrantError> {
    let ok = token
        .strip_prefix("kmscore-gt1.")
        .is_some_and(|b| URL_SAFE_NO_PAD.decode(b).is_ok_and(|v| v.len() == 48));
    if ok {
        Ok(())
    } else {
        Err(GrantError::InvalidGrantToken(
            "The grant token is not valid.".into(),
        ))
    }
}

/// A grant id's form (InvalidGrantIdException otherwise).
pub fn check_grant_id(id: &str) -> Result<(), GrantError> {
    if id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(GrantError::InvalidGrantId(format!(
            "Invalid grant ID: {}",
            if id.len() <= 128 { id } else { "<too long>" }
        )))
    }
}

/// Why a caller may retire a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireRight {
    /// The caller is the grant's retiring principal.
    RetiringPrincipal,
    /// The caller is the grantee and the grant allows RetireGrant.
    GranteeWithRetireGrant,
    /// Neither: the caller needs `kms:RetireGrant` on the key from policies
    /// (the key's account can delegate it; AWS's "principals to whom
    /// permission for retiring a grant is delegated").
    NeedsPolicy,
}

/// Who may retire `grant` (RetireGrant).
pub fn retire_right(grant: &Grant, arn: &str, role_arn: &str, account: &str) -> RetireRight {
    let is = |p: &str| p == arn || p == role_arn;
    if grant.retiring_principal.as_deref().is_some_and(is) {
        RetireRight::RetiringPrincipal
    } else if grant.is_grantee(arn, role_arn, account)
        && grant.operations.contains(&GrantOperation::RetireGrant)
    {
        RetireRight::GranteeWithRetireGrant
    } else {
        RetireRight::NeedsPolicy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operations_per_key_class() {
        use GrantOperation as G;
        use KeyClass as C;
        let table: &[(C, &[G], &[G])] = &[
            (
                C::Symmetric,
                &[
                    G::Encrypt,
                    G::Decrypt,
                    G::GenerateDataKeyPair,
                    G::ReEncryptTo,
                    G::CreateGrant,
                ],
                &[
                    G::Sign,
                    G::GetPublicKey,
                    G::GenerateMac,
                    G::DeriveSharedSecret,
                ],
            ),
            (
                C::Hmac,
                &[G::GenerateMac, G::VerifyMac, G::DescribeKey],
                &[G::Encrypt, G::Sign],
            ),
            (
                C::AsymmetricEncrypt,
                &[G::Encrypt, G::Decrypt, G::GetPublicKey, G::ReEncryptFrom],
                &[G::GenerateDataKey, G::Sign],
            ),
            (
                C::AsymmetricSign,
                &[G::Sign, G::Verify, G::GetPublicKey],
                &[G::Encrypt],
            ),
            (
                C::AsymmetricAgreement,
                &[G::DeriveSharedSecret, G::GetPublicKey, G::RetireGrant],
                &[G::Sign, G::Decrypt],
            ),
            (C::Kem, &[G::Encapsulate, G::Decapsulate], &[G::Decrypt]),
        ];
        for (class, ok, bad) in table {
            for o in *ok {
                assert!(o.allowed_for(*class), "{o:?} on {class:?}");
            }
            for o in *bad {
                assert!(!o.allowed_for(*class), "{o:?} on {class:?}");
            }
        }
        for o in GrantOperation::ALL {
            assert_eq!(GrantOperation::parse(o.as_str()), Some(o));
        }
        assert_eq!(GrantOperation::of_action("kms:Decrypt"), Some(G::Decrypt));
        assert_eq!(GrantOperation::of_action("kms:PutKeyPolicy"), None);
    }

    #[test]
    fn constraints() {
        let sub = GrantConstraints {
            encryption_context_subset: Some(ctx(&[("Dept", "IT")])),
            encryption_context_equals: None,
        };
        assert!(sub.allow(Some(&ctx(&[("Dept", "IT"), ("x", "y")]))));
        assert!(
            sub.allow(Some(&ctx(&[("dept", "IT")]))),
            "keys case-insensitive"
        );
        assert!(
            !sub.allow(Some(&ctx(&[("Dept", "it")]))),
            "values case-sensitive"
        );
        assert!(!sub.allow(None));
        let eq = GrantConstraints {
            encryption_context_subset: None,
            encryption_context_equals: Some(ctx(&[("a", "1"), ("b", "2")])),
        };
        assert!(eq.allow(Some(&ctx(&[("b", "2"), ("A", "1")]))));
        assert!(!eq.allow(Some(&ctx(&[("a", "1")]))));
        assert!(!eq.allow(Some(&ctx(&[("a", "1"), ("b", "2"), ("c", "3")]))));
        assert_eq!(eq.constraint_type(), Some("EncryptionContextEquals"));
        assert_eq!(sub.constraint_type(), Some("EncryptionContextSubset"));
    }

    fn grant(ops: &[GrantOperation], c: Option<GrantConstraints>) -> Grant {
        Grant {
            key_id: "k".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            grant_id: "0".repeat(64),
            name: None,
            grantee_principal: "arn:aws:iam::111122223333:role/app".into(),
            retiring_principal: Some("arn:aws:iam::111122223333:user/ops".into()),
            issuing_account: "arn:aws:iam::111122223333:root".into(),
            operations: ops.to_vec(),
            constraints: c,
            creation_date: 0.0,
        }
    }

    #[test]
    fn constraints_apply_only_to_symmetric_crypto() {
        use GrantOperation as G;
        let c = GrantConstraints {
            encryption_context_subset: Some(ctx(&[("a", "1")])),
            encryption_context_equals: None,
        };
        let g = grant(&[G::Decrypt, G::DescribeKey], Some(c));
        assert!(!g.allows(G::Decrypt, KeyClass::Symmetric, None));
        assert!(g.allows(G::Decrypt, KeyClass::Symmetric, Some(&ctx(&[("a", "1")]))));
        assert!(g.allows(G::DescribeKey, KeyClass::Symmetric, None));
        assert!(g.allows(G::Decrypt, KeyClass::AsymmetricEncrypt, None));
        assert!(!g.allows(G::Encrypt, KeyClass::Symmetric, Some(&ctx(&[("a", "1")]))));
    }

    /// Key class, grantee, operations, constraints, name, expected message.
    type Case = (
        KeyClass,
        &'static str,
        Vec<String>,
        Option<GrantConstraints>,
        Option<&'static str>,
        &'static str,
    );

    #[test]
    fn create_grant_checks() {
        let ops = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let role = "arn:aws:iam::111122223333:role/app";
        let ok = check_create_grant(
            KeyClass::Symmetric,
            role,
            None,
            &ops(&["Encrypt", "Decrypt", "Encrypt"]),
            None,
            Some("my-grant"),
        )
        .unwrap();
        assert_eq!(
            ok.operations,
            vec![GrantOperation::Decrypt, GrantOperation::Encrypt]
        );
        let cases: Vec<Case> = vec![
            (
                KeyClass::Symmetric,
                "nobody",
                ops(&["Encrypt"]),
                None,
                None,
                "Invalid principal",
            ),
            (
                KeyClass::Symmetric,
                "arn:aws:iam::111122223333:group/g",
                ops(&["Encrypt"]),
                None,
                None,
                "Invalid principal",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&[]),
                None,
                None,
                "length greater than or equal to 1",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&["Fly"]),
                None,
                None,
                "enum value set",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&["Sign", "Encrypt"]),
                None,
                None,
                "Grant operations [Sign]",
            ),
            (
                KeyClass::AsymmetricSign,
                role,
                ops(&["Sign"]),
                Some(GrantConstraints {
                    encryption_context_subset: Some(ctx(&[("a", "b")])),
                    encryption_context_equals: None,
                }),
                None,
                "symmetric encryption",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&["Encrypt"]),
                Some(GrantConstraints {
                    encryption_context_subset: Some(ctx(&[("a", "b")])),
                    encryption_context_equals: Some(ctx(&[("a", "b")])),
                }),
                None,
                "not both",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&["DescribeKey"]),
                Some(GrantConstraints {
                    encryption_context_subset: Some(ctx(&[("a", "b")])),
                    encryption_context_equals: None,
                }),
                None,
                "symmetric encryption",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&["CreateGrant", "CreateGrant"]),
                None,
                None,
                "must not contain only the CreateGrant operation",
            ),
            (
                KeyClass::Symmetric,
                role,
                ops(&["Encrypt"]),
                None,
                Some("bad name!"),
                "regular expression",
            ),
        ];
        for (class, grantee, o, c, name, want) in cases {
            let e = check_create_grant(class, grantee, None, &o, c, name).unwrap_err();
            assert!(e.to_string().contains(want), "{grantee} {o:?}: {e}");
            assert_eq!(e.type_name(), "ValidationException");
        }
        let e = check_create_grant(
            KeyClass::Symmetric,
            role,
            Some("x"),
            &ops(&["Encrypt"]),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("retiring principal"), "{e}");
    }

    #[test]
    fn tokens_and_ids() {
        let t = new_grant_token().unwrap();
        let u = new_grant_token().unwrap();
        assert_ne!(t, u);
        check_token_form(&t).unwrap();
        assert_eq!(
            check_token_form("garbage").unwrap_err().type_name(),
            "InvalidGrantTokenException"
        );
        assert_eq!(token_digest(&t).len(), 64);
        assert_ne!(token_digest(&t), token_digest(&u));
        let id = new_grant_id().unwrap();
        check_grant_id(&id).unwrap();
        assert_eq!(
            check_grant_id("xyz").unwrap_err().type_name(),
            "InvalidGrantIdException"
        );
    }

    #[test]
    fn who_may_retire() {
        use GrantOperation as G;
        let acct = "111122223333";
        let g = grant(&[G::Decrypt], None);
        let ops_user = "arn:aws:iam::111122223333:user/ops";
        assert_eq!(
            retire_right(&g, ops_user, ops_user, acct),
            RetireRight::RetiringPrincipal
        );
        let session = "arn:aws:sts::111122223333:assumed-role/app/s1";
        let role = "arn:aws:iam::111122223333:role/app";
        assert_eq!(
            retire_right(&g, session, role, acct),
            RetireRight::NeedsPolicy
        );
        let g2 = grant(&[G::Decrypt, G::RetireGrant], None);
        assert_eq!(
            retire_right(&g2, session, role, acct),
            RetireRight::GranteeWithRetireGrant
        );
        assert!(g2.is_grantee(session, role, acct));
        assert!(!g2.is_grantee(
            "arn:aws:iam::111122223333:user/x",
            "arn:aws:iam::111122223333:user/x",
            acct
        ));
    }

    #[test]
    fn a_grant_passes_on_only_constraints_as_strict_as_its_own() {
        let subset = GrantConstraints {
            encryption_context_subset: Some(ctx(&[("Dept", "IT")])),
            encryption_context_equals: None,
        };
        let (it, it_more) = (ctx(&[("Dept", "IT")]), ctx(&[("dept", "IT"), ("App", "x")]));
        let other = ctx(&[("Dept", "HR")]);
        assert!(subset.admits_constraints(Some(&it), None));
        assert!(subset.admits_constraints(Some(&it_more), None));
        assert!(subset.admits_constraints(None, Some(&it_more)));
        assert!(
            !subset.admits_constraints(None, None),
            "unconstrained is looser"
        );
        assert!(!subset.admits_constraints(Some(&other), None));
        assert!(!subset.admits_constraints(None, Some(&other)));
        let equals = GrantConstraints {
            encryption_context_subset: None,
            encryption_context_equals: Some(it.clone()),
        };
        assert!(equals.admits_constraints(None, Some(&it)));
        assert!(!equals.admits_constraints(None, Some(&it_more)));
        assert!(
            !equals.admits_constraints(Some(&it), None),
            "subset is looser"
        );
        assert!(!equals.admits_constraints(None, None));
        let none = GrantConstraints {
            encryption_context_subset: None,
            encryption_context_equals: None,
        };
        assert!(none.admits_constraints(None, None));
    }
}
