//! Base64 fields (RFC 4648 section 4, standard alphabet, canonical padding).
//!
//! Decoding is strict: URL-safe characters, missing padding, whitespace and
//! non-zero trailing bits are all rejected, because the spec names the
//! standard alphabet and a lenient decoder would accept two spellings of one
//! ciphertext.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroizing;

/// Encodes bytes as standard Base64.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard Base64 strictly.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text)
}

/// A non-secret binary field carried as Base64 (AAD, IV, tag, ciphertext...).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes64(pub Vec<u8>);

impl fmt::Debug for Bytes64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: AAD and ciphertext contents do not belong in logs.
        write!(f, "Bytes64({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes64 {
    fn from(v: Vec<u8>) -> Self {
        Bytes64(v)
    }
}

impl AsRef<[u8]> for Bytes64 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A secret binary field (plaintext): zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes64(pub Zeroizing<Vec<u8>>);

impl SecretBytes64 {
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes64(Zeroizing::new(v))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes64(<redacted {} bytes>)", self.0.len())
    }
}

impl AsRef<[u8]> for SecretBytes64 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(&self.0))
    }
}

impl Serialize for SecretBytes64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(encode(&self.0));
        s.serialize_str(&text)
    }
}

struct B64Visitor;

impl Visitor<'_> for B64Visitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a standard Base64 string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        decode(v).map_err(|_| E::custom("invalid standard Base64"))
    }
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(B64Visitor).map(Bytes64)
    }
}

impl<'de> Deserialize<'de> for SecretBytes64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(B64Visitor).map(SecretBytes64::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        assert_eq!(encode(b"Hello World!"), "SGVsbG8gV29ybGQh");
        assert_eq!(decode("SGVsbG8gV29ybGQh").unwrap(), b"Hello World!");
        // URL-safe alphabet, missing padding, whitespace, trailing bits.
        assert!(decode("-_-_").is_err());
        assert!(decode("YQ").is_err());
        assert!(decode("YQ==\n").is_err());
        assert!(decode("YR==").is_err());
        assert!(decode("+/+/").is_ok());
    }

    #[test]
    fn serde_field() {
        let v: Bytes64 = serde_json::from_str("\"AAEC\"").unwrap();
        assert_eq!(v.0, vec![0, 1, 2]);
        assert!(serde_json::from_str::<Bytes64>("\"AA_C\"").is_err());
        assert!(serde_json::from_str::<Bytes64>("12").is_err());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"AAEC\"");
        let s: SecretBytes64 = serde_json::from_str("\"AAEC\"").unwrap();
        assert_eq!(format!("{s:?}"), "SecretBytes64(<redacted 3 bytes>)");
    }
}
