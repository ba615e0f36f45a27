//! Identifiers of KMS resources. Each newtype can only hold a valid value.
//!
//! AWS accepts four spellings of a key wherever a `KeyId` goes: the key id
//! (a UUID, or `mrk-` + 32 hex digits for multi-Region keys), the key ARN,
//! an alias name (`alias/...`) and an alias ARN. [`KeyRef::parse`] tells
//! them apart; resolving aliases is the store's business.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("Invalid keyId '{0}'")]
    KeyId(String),
    #[error("Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")]
    AliasPrefix,
    #[error("Alias name {0} is not valid: it must be 1 to 256 characters of a-z, A-Z, 0-9, '/', '_' and '-' after \"alias/\"")]
    AliasName(String),
    #[error(
        "Alias {0} must not begin with alias/aws/: that prefix is reserved for AWS managed keys"
    )]
    ReservedAlias(String),
    #[error("Invalid arn {0}")]
    Arn(String),
    #[error("{0} is not a valid AWS account id (12 digits)")]
    Account(String),
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A key id: a UUID (`1234abcd-12ab-34cd-56ef-1234567890ab`) or a
/// multi-Region key id (`mrk-` + 32 hex digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(s: &str) -> Result<KeyId, IdError> {
        let uuid = s.len() == 36
            && s.split('-').map(str::len).eq([8, 4, 4, 4, 12])
            && s.split('-').all(is_hex);
        let mrk = s.len() == 36 && s.starts_with("mrk-") && is_hex(&s[4..]);
        if uuid || mrk {
            Ok(KeyId(s.to_ascii_lowercase()))
        } else {
            Err(IdError::KeyId(s.to_owned()))
        }
    }

    /// A new random (version 4) UUID key id.
    pub fn random() -> KeyId {
        use aws_lc_rs::rand::{SecureRandom, SystemRandom};
        let mut b = [0u8; 16];
        // The system RNG failing is not recoverable; fall back to a
        // time-derived value rather than panicking on a request path.
        if SystemRandom::new().fill(&mut b).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            b.copy_from_slice(&t.to_be_bytes());
        }
        KeyId(
            uuid::Builder::from_random_bytes(b)
                .into_uuid()
                .hyphenated()
                .to_string(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// An alias name: `alias/` + 1..=250 characters of `[a-zA-Z0-9/_-]`
/// (256 in all).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AliasName(String);

impl AliasName {
    /// Any syntactically valid alias, AWS managed ones (`alias/aws/...`)
    /// included: those can be looked up and listed.
    pub fn parse(s: &str) -> Result<AliasName, IdError> {
        let rest = s.strip_prefix("alias/").ok_or(IdError::AliasPrefix)?;
        if rest.is_empty()
            || s.len() > 256
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        {
            return Err(IdError::AliasName(s.to_owned()));
        }
        Ok(AliasName(s.to_owned()))
    }

    /// An alias a customer may create or update: not under `alias/aws/`.
    pub fn parse_customer(s: &str) -> Result<AliasName, IdError> {
        let a = AliasName::parse(s)?;
        if a.is_aws_managed() {
            return Err(IdError::ReservedAlias(s.to_owned()));
        }
        Ok(a)
    }

    pub fn is_aws_managed(&self) -> bool {
        self.0.starts_with("alias/aws/")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AliasName({})", self.0)
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub const DEFAULT: &'static str = "000000000000";

    pub fn parse(s: &str) -> Result<AccountId, IdError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(IdError::Account(s.to_owned()))
        }
    }

    pub fn default_account() -> AccountId {
        AccountId(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The namespace keys and aliases live in: one (account, region) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: AccountId,
    pub region: String,
}

impl Scope {
    pub fn key_arn(&self, id: &KeyId) -> String {
        self.key_arn_str(id.as_str())
    }

    pub fn key_arn_str(&self, id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{}", self.region, self.account, id)
    }

    pub fn alias_arn(&self, alias: &AliasName) -> String {
        format!("arn:aws:kms:{}:{}:{}", self.region, self.account, alias)
    }
}

/// A reference to a key in any of the four forms AWS accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Id(KeyId),
    KeyArn { scope: Scope, id: KeyId },
    Alias(AliasName),
    AliasArn { scope: Scope, alias: AliasName },
}

impl KeyRef {
    pub fn parse(s: &str) -> Result<KeyRef, IdError> {
        if let Some(rest) = s.strip_prefix("arn:") {
            // arn:<partition>:kms:<region>:<account>:<resource>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts[..] else {
                return Err(IdError::Arn(s.to_owned()));
            };
            if !partition.starts_with("aws") || service != "kms" || region.is_empty() {
                return Err(IdError::Arn(s.to_owned()));
            }
            let scope = Scope {
                account: AccountId::parse(account).map_err(|_| IdError::Arn(s.to_owned()))?,
                region: region.to_owned(),
            };
            if let Some(id) = resource.strip_prefix("key/") {
                let id = KeyId::parse(id).map_err(|_| IdError::Arn(s.to_owned()))?;
                return Ok(KeyRef::KeyArn { scope, id });
            }
            if resource.starts_with("alias/") {
                let alias = AliasName::parse(resource)?;
                return Ok(KeyRef::AliasArn { scope, alias });
            }
            return Err(IdError::Arn(s.to_owned()));
        }
        if s.starts_with("alias/") {
            return Ok(KeyRef::Alias(AliasName::parse(s)?));
        }
        Ok(KeyRef::Id(KeyId::parse(s)?))
    }

    /// Whether this reference names something in `scope` (ARNs carry their
    /// own account and region; ids and alias names are relative).
    pub fn in_scope(&self, scope: &Scope) -> bool {
        match self {
            KeyRef::Id(_) | KeyRef::Alias(_) => true,
            KeyRef::KeyArn { scope: s, .. } | KeyRef::AliasArn { scope: s, .. } => s == scope,
        }
    }
}

/// Identifier errors as AWS reports them: an alias name without the
/// `alias/` prefix or with characters an alias may not hold is a
/// ValidationException; a reserved `alias/aws/` name is
/// InvalidAliasNameException.
impl From<IdError> for crate::api::error::KmsError {
    fn from(e: IdError) -> Self {
        use crate::api::error::KmsError;
        match e {
            IdError::AliasPrefix => KmsError::Validation(e.to_string()),
            IdError::AliasName(name) => {
                KmsError::Validation(format!("{name} contains invalid characters for an alias"))
            }
            IdError::ReservedAlias(_) => KmsError::InvalidAliasName(e.to_string()),
            IdError::Arn(_) => KmsError::InvalidArn(e.to_string()),
            IdError::KeyId(_) => KmsError::NotFound(e.to_string()),
            IdError::Account(_) => KmsError::Validation(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            account: AccountId::parse("111122223333").unwrap(),
            region: "us-east-2".into(),
        }
    }

    #[test]
    fn key_ids() {
        let id = KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        assert_eq!(id.as_str(), "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert!(KeyId::parse("1234ABCD-12ab-34cd-56ef-1234567890ab").is_ok());
        assert!(KeyId::parse("mrk-1234abcd12ab34cd56ef1234567890ab").is_ok());
        for bad in [
            "",
            "1234abcd",
            "1234abcd-12ab-34cd-56ef-1234567890ag",
            "1234abcd-12ab-34cd-56ef1-234567890ab",
            "mrk-12",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad}");
        }
        let r = KeyId::random();
        assert_eq!(KeyId::parse(r.as_str()).unwrap(), r);
        assert_eq!(&r.as_str()[14..15], "4");
        assert_ne!(KeyId::random(), r);
    }

    #[test]
    fn aliases() {
        assert!(AliasName::parse("alias/my-app_key/2").is_ok());
        assert_eq!(AliasName::parse("my-app"), Err(IdError::AliasPrefix));
        assert!(AliasName::parse("alias/").is_err());
        assert!(AliasName::parse("alias/has space").is_err());
        assert!(AliasName::parse(&format!("alias/{}", "a".repeat(250))).is_ok());
        assert!(AliasName::parse(&format!("alias/{}", "a".repeat(251))).is_err());
        assert!(AliasName::parse("alias/aws/s3").unwrap().is_aws_managed());
        assert!(matches!(
            AliasName::parse_customer("alias/aws/s3"),
            Err(IdError::ReservedAlias(_))
        ));
        assert!(AliasName::parse_customer("alias/awsome").is_ok());
    }

    #[test]
    fn key_refs_in_every_form() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(matches!(KeyRef::parse(id), Ok(KeyRef::Id(_))));
        let arn = format!("arn:aws:kms:us-east-2:111122223333:key/{id}");
        let r = KeyRef::parse(&arn).unwrap();
        assert!(matches!(&r, KeyRef::KeyArn { id: k, .. } if k.as_str() == id));
        assert!(r.in_scope(&scope()));
        assert_eq!(scope().key_arn(&KeyId::parse(id).unwrap()), arn);
        assert!(matches!(KeyRef::parse("alias/app"), Ok(KeyRef::Alias(_))));
        let alias_arn = "arn:aws:kms:us-east-2:111122223333:alias/app";
        let r = KeyRef::parse(alias_arn).unwrap();
        assert!(matches!(&r, KeyRef::AliasArn { alias, .. } if alias.as_str() == "alias/app"));
        assert_eq!(
            scope().alias_arn(&AliasName::parse("alias/app").unwrap()),
            alias_arn
        );
        let other = Scope {
            region: "eu-west-1".into(),
            ..scope()
        };
        assert!(!r.in_scope(&other));
        for bad in [
            "arn:aws:s3:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-2:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-2:111122223333:key/nope",
            "arn:aws:kms:us-east-2:111122223333:grant/x",
            "arn:aws:kms",
            "not-a-key",
        ] {
            assert!(KeyRef::parse(bad).is_err(), "{bad}");
        }
    }
}
