//! Identifiers the spec constrains. They can only hold valid values.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("externalKeyId must be 1 to 128 characters")]
    KeyIdLength,
    #[error("externalKeyId may contain only A-Z, a-z, 0-9, '-', '.' and '_'")]
    KeyIdCharacters,
    #[error("XksProxyUriPath must be 10 to 128 characters")]
    UriPathLength,
    #[error("XksProxyUriPath must be \"[/<prefix>]/kms/xks/v1\" using only a-z, A-Z, 0-9, '/', '-' and '_'")]
    UriPathShape,
}

/// `externalKeyId`: 1..=128 characters of `[A-Za-z0-9._-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalKeyId(String);

impl ExternalKeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(s: &str) -> Result<(), IdError> {
        if s.is_empty() || s.len() > 128 {
            return Err(IdError::KeyIdLength);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(IdError::KeyIdCharacters);
        }
        Ok(())
    }
}

impl FromStr for ExternalKeyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::check(s)?;
        Ok(ExternalKeyId(s.to_owned()))
    }
}

impl TryFrom<String> for ExternalKeyId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::check(&s)?;
        Ok(ExternalKeyId(s))
    }
}

impl fmt::Display for ExternalKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ExternalKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalKeyId({})", self.0)
    }
}

impl Serialize for ExternalKeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExternalKeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

/// `XksProxyUriPath`: `[/<prefix>]/kms/xks/v<1-2 digits>`, at most 128
/// characters of `[A-Za-z0-9/_-]`, exactly as KMS validates it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UriPath(String);

impl UriPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The optional prefix before `/kms/xks/v1` ("" when there is none).
    pub fn prefix(&self) -> &str {
        let cut = self.0.rfind("/kms/xks/v").unwrap_or(0);
        &self.0[..cut]
    }

    /// Builds the v1 path for a prefix (`""` or `/something`).
    pub fn from_prefix(prefix: &str) -> Result<Self, IdError> {
        format!("{prefix}{}", crate::API_ROOT).parse()
    }
}

impl FromStr for UriPath {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() < 10 || s.len() > 128 {
            return Err(IdError::UriPathLength);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        {
            return Err(IdError::UriPathShape);
        }
        let Some(cut) = s.rfind("/kms/xks/v") else {
            return Err(IdError::UriPathShape);
        };
        let version = &s[cut + "/kms/xks/v".len()..];
        if version.is_empty() || version.len() > 2 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::UriPathShape);
        }
        let prefix = &s[..cut];
        // The model's pattern: a prefix, when present, is "/" followed by at
        // least one allowed character.
        if !prefix.is_empty() && (prefix.len() < 2 || !prefix.starts_with('/')) {
            return Err(IdError::UriPathShape);
        }
        Ok(UriPath(s.to_owned()))
    }
}

impl fmt::Display for UriPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UriPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UriPath({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_key_ids() {
        assert!("a".parse::<ExternalKeyId>().is_ok());
        assert!("Ab-0._z".parse::<ExternalKeyId>().is_ok());
        assert!("x".repeat(128).parse::<ExternalKeyId>().is_ok());
        assert_eq!(
            "x".repeat(129).parse::<ExternalKeyId>(),
            Err(IdError::KeyIdLength)
        );
        assert_eq!("".parse::<ExternalKeyId>(), Err(IdError::KeyIdLength));
        assert_eq!(
            "a/b".parse::<ExternalKeyId>(),
            Err(IdError::KeyIdCharacters)
        );
        assert_eq!(
            "a%20".parse::<ExternalKeyId>(),
            Err(IdError::KeyIdCharacters)
        );
    }

    #[test]
    fn uri_paths() {
        let p: UriPath = "/kms/xks/v1".parse().unwrap();
        assert_eq!(p.prefix(), "");
        let p: UriPath = "/keystores/ab_c-1/kms/xks/v1".parse().unwrap();
        assert_eq!(p.prefix(), "/keystores/ab_c-1");
        assert_eq!(
            UriPath::from_prefix("/a").unwrap().as_str(),
            "/a/kms/xks/v1"
        );
        assert!("/kms/xks/v12".parse::<UriPath>().is_ok());
        assert!("/kms/xks/v123".parse::<UriPath>().is_err());
        assert!("kms/xks/v1".parse::<UriPath>().is_err());
        assert!("/a.b/kms/xks/v1".parse::<UriPath>().is_err());
        assert!("/kms/xks/v1/".parse::<UriPath>().is_err());
        assert!(format!("/{}/kms/xks/v1", "a".repeat(120))
            .parse::<UriPath>()
            .is_err());
    }
}
