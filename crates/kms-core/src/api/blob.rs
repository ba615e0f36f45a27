//! Blob members: Base64 strings on the wire, bytes in memory. Sensitive
//! blobs (plaintext, key material) and sensitive strings (secrets) are
//! zeroized when dropped and never shown by `Debug`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

fn decode<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    STANDARD
        .decode(s.as_bytes())
        .map_err(|_| D::Error::custom("not valid Base64"))
}

/// A non-sensitive blob (ciphertexts, signatures, public keys).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(v)
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        decode(d).map(Blob)
    }
}

/// A sensitive blob (plaintext, data keys, shared secrets, private keys):
/// zeroized on drop, its Base64 form too.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SensitiveBlob(pub Zeroizing<Vec<u8>>);

impl SensitiveBlob {
    pub fn new(bytes: Vec<u8>) -> Self {
        SensitiveBlob(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SensitiveBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SensitiveBlob({} bytes)", self.0.len())
    }
}

impl Serialize for SensitiveBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = Zeroizing::new(STANDARD.encode(&*self.0));
        s.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for SensitiveBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        decode(d).map(SensitiveBlob::new)
    }
}

/// A sensitive string (XKS proxy secret access key, key store password).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SensitiveString(pub Zeroizing<String>);

impl SensitiveString {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SensitiveString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SensitiveString(***)")
    }
}

impl Serialize for SensitiveString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SensitiveString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SensitiveString(Zeroizing::new(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_both_ways_and_redacted_debug() {
        let b: SensitiveBlob = serde_json::from_str("\"aGVsbG8=\"").unwrap();
        assert_eq!(b.as_bytes(), b"hello");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGVsbG8=\"");
        assert!(!format!("{b:?}").contains("hello"));
        assert!(serde_json::from_str::<Blob>("\"@@\"").is_err());
        let s: SensitiveString = serde_json::from_str("\"secret\"").unwrap();
        assert!(!format!("{s:?}").contains("secret"));
    }
}
