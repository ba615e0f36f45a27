//! Symmetric cryptography for KMS keys (AES-256-GCM, aws-lc-rs) and our own
//! versioned ciphertext blob.
//!
//! Blob layout (format 1), 49 bytes + plaintext length:
//!
//! ```text
//! format (1) ‖ key id (16, the UUID's bytes) ‖ material version (u32 BE)
//!            ‖ IV (12) ‖ ciphertext (n) ‖ GCM tag (16)
//! ```
//!
//! The GCM AAD is `header (first 33 bytes) ‖ canonical encryption context`,
//! so the format, key id, version and the context are all authenticated: a
//! change to any byte of the blob or of the context fails decryption with
//! [`CryptoError::InvalidCiphertext`]. The canonical context
//! ([`canonical_context`]) sorts the pairs by key bytes and length-prefixes
//! every key and value, so it is independent of the order the caller sent
//! and matches exactly (case-sensitively) or not at all.

pub mod asymmetric;
pub mod ed25519ph;
pub mod mldsa_mu;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use std::fmt;
use zeroize::Zeroizing;

/// The only blob format so far.
pub const FORMAT_V1: u8 = 1;
pub const KEY_ID_LEN: usize = 16;
pub const IV_LEN: usize = NONCE_LEN;
pub const TAG_LEN: usize = 16;
/// format ‖ key id ‖ version ‖ IV.
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN + 4 + IV_LEN;
/// A blob's size for an empty plaintext.
pub const MIN_BLOB_LEN: usize = HEADER_LEN + TAG_LEN;
/// Encrypt's plaintext limit.
pub const MAX_PLAINTEXT: usize = 4096;
/// Length of a symmetric KMS key's material.
pub const KEY_MATERIAL_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The blob is malformed, was altered, or the context differs.
    #[error("the ciphertext is invalid")]
    InvalidCiphertext,
    #[error("key material must be 32 bytes")]
    InvalidKeyMaterial,
    #[error("plaintext is longer than 4096 bytes")]
    PlaintextTooLong,
    #[error("invalid data key length")]
    InvalidLength,
    #[error("key id is not a UUID")]
    InvalidKeyId,
    #[error("the system random generator failed")]
    Random,
    #[error("encryption failed")]
    Encrypt,
}

/// Plaintext handed to the caller without a copy.
impl From<Secret> for crate::api::blob::SensitiveBlob {
    fn from(s: Secret) -> Self {
        crate::api::blob::SensitiveBlob(s.0)
    }
}

/// Cryptographic failures as the caller sees them: a plaintext over the
/// limit is AWS's ValidationException, an invalid ciphertext
/// InvalidCiphertextException (without a message), anything else an
/// internal error.
impl From<CryptoError> for crate::api::error::KmsError {
    fn from(e: CryptoError) -> Self {
        use crate::api::error::KmsError;
        match e {
            CryptoError::PlaintextTooLong => KmsError::Validation(
                "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096".into(),
            ),
            CryptoError::InvalidCiphertext => KmsError::InvalidCiphertext(String::new()),
            other => KmsError::Internal(format!("Cryptographic failure: {other}")),
        }
    }
}

/// Secret bytes (key material, plaintext, data keys), zeroized on drop and
/// never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    pub fn from_slice(bytes: &[u8]) -> Secret {
        Secret::new(bytes.to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// `len` random bytes from the system generator.
pub fn random_bytes(len: usize) -> Result<Secret, CryptoError> {
    let mut buf = Zeroizing::new(vec![0u8; len]);
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| CryptoError::Random)?;
    Ok(Secret(buf))
}

/// GenerateRandom: 1..=1024 bytes.
pub fn generate_random(number_of_bytes: usize) -> Result<Secret, CryptoError> {
    if !(1..=1024).contains(&number_of_bytes) {
        return Err(CryptoError::InvalidLength);
    }
    random_bytes(number_of_bytes)
}

/// New key material for a symmetric KMS key.
pub fn new_key_material() -> Result<Secret, CryptoError> {
    random_bytes(KEY_MATERIAL_LEN)
}

/// GenerateDataKey's size: `KeySpec` (AES_128 / AES_256) or
/// `NumberOfBytes` (1..=1024); exactly one of them.
pub fn data_key_len(
    key_spec: Option<&str>,
    number_of_bytes: Option<i64>,
) -> Result<usize, CryptoError> {
    match (key_spec, number_of_bytes) {
        (Some("AES_256"), None) => Ok(32),
        (Some("AES_128"), None) => Ok(16),
        (None, Some(n)) if (1..=1024).contains(&n) => {
            usize::try_from(n).map_err(|_| CryptoError::InvalidLength)
        }
        _ => Err(CryptoError::InvalidLength),
    }
}

/// A fresh data key of `len` bytes.
pub fn generate_data_key(len: usize) -> Result<Secret, CryptoError> {
    if !(1..=1024).contains(&len) {
        return Err(CryptoError::InvalidLength);
    }
    random_bytes(len)
}

/// The 16 bytes of a UUID key id (`8-4-4-4-12` hex).
pub fn key_id_to_bytes(key_id: &str) -> Result<[u8; KEY_ID_LEN], CryptoError> {
    // Only the hyphenated form (the uuid crate also takes braced, URN and
    // simple forms).
    if key_id.len() != 36 {
        return Err(CryptoError::InvalidKeyId);
    }
    uuid::Uuid::try_parse(key_id)
        .map(|u| *u.as_bytes())
        .map_err(|_| CryptoError::InvalidKeyId)
}

/// The lowercase UUID text of 16 key id bytes.
pub fn key_id_from_bytes(b: &[u8; KEY_ID_LEN]) -> String {
    uuid::Uuid::from_bytes(*b).hyphenated().to_string()
}

/// The canonical byte form of an encryption context: pairs sorted by key
/// bytes, then `u32 count ‖ (u32 len ‖ key ‖ u32 len ‖ value)*` (big
/// endian). An absent and an empty context are the same.
pub fn canonical_context<'a, I>(pairs: I) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut v: Vec<(&str, &str)> = pairs.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(b.1)));
    let mut out =
        Vec::with_capacity(4 + v.iter().map(|(k, x)| 8 + k.len() + x.len()).sum::<usize>());
    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
    for (k, x) in v {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(x.len() as u32).to_be_bytes());
        out.extend_from_slice(x.as_bytes());
    }
    out
}

/// A parsed ciphertext blob (format 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub key_id: [u8; KEY_ID_LEN],
    pub version: u32,
    pub iv: [u8; IV_LEN],
    pub ciphertext: Vec<u8>,
    pub tag: [u8; TAG_LEN],
}

impl Blob {
    /// The key id as UUID text.
    pub fn key_id_string(&self) -> String {
        key_id_from_bytes(&self.key_id)
    }

    fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = FORMAT_V1;
        h[1..17].copy_from_slice(&self.key_id);
        h[17..21].copy_from_slice(&self.version.to_be_bytes());
        h[21..33].copy_from_slice(&self.iv);
        h
    }

    /// The wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MIN_BLOB_LEN + self.ciphertext.len());
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.ciphertext);
        out.extend_from_slice(&self.tag);
        out
    }

    /// Parses wire bytes; anything but a well-formed format-1 blob is
    /// [`CryptoError::InvalidCiphertext`].
    pub fn parse(bytes: &[u8]) -> Result<Blob, CryptoError> {
        if bytes.len() < MIN_BLOB_LEN || bytes[0] != FORMAT_V1 {
            return Err(CryptoError::InvalidCiphertext);
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&bytes[1..17]);
        let mut ver = [0u8; 4];
        ver.copy_from_slice(&bytes[17..21]);
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&bytes[21..33]);
        let tag_at = bytes.len() - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&bytes[tag_at..]);
        Ok(Blob {
            key_id,
            version: u32::from_be_bytes(ver),
            iv,
            ciphertext: bytes[HEADER_LEN..tag_at].to_vec(),
            tag,
        })
    }
}

/// One version of a symmetric KMS key's material, ready for AES-256-GCM
/// (the key schedule is computed once, when the key is loaded).
pub struct SymmetricKey {
    key_id: [u8; KEY_ID_LEN],
    version: u32,
    /// The material's `KeyMaterialId`, computed once (responses name it).
    material_id: crate::keys::material::KeyMaterialId,
    key: LessSafeKey,
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SymmetricKey({}, v{}, <redacted>)",
            key_id_from_bytes(&self.key_id),
            self.version
        )
    }
}

impl SymmetricKey {
    pub fn new(key_id: &str, version: u32, material: &Secret) -> Result<SymmetricKey, CryptoError> {
        if material.len() != KEY_MATERIAL_LEN {
            return Err(CryptoError::InvalidKeyMaterial);
        }
        let unbound = UnboundKey::new(&AES_256_GCM, material.expose())
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        Ok(SymmetricKey {
            key_id: key_id_to_bytes(key_id)?,
            version,
            material_id: crate::keys::material::KeyMaterialId::derive(key_id, version),
            key: LessSafeKey::new(unbound),
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The `KeyMaterialId` of this material.
    pub fn material_id(&self) -> &crate::keys::material::KeyMaterialId {
        &self.material_id
    }

    /// Encrypts `plaintext` (≤ 4096 bytes) bound to `context` (see
    /// [`canonical_context`]); returns the blob bytes.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(CryptoError::PlaintextTooLong);
        }
        let mut iv = [0u8; IV_LEN];
        SystemRandom::new()
            .fill(&mut iv)
            .map_err(|_| CryptoError::Random)?;
        let mut blob = Blob {
            key_id: self.key_id,
            version: self.version,
            iv,
            ciphertext: plaintext.to_vec(),
            tag: [0u8; TAG_LEN],
        };
        let aad = aad(&blob.header(), context);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad[..]),
                &mut blob.ciphertext,
            )
            .map_err(|_| CryptoError::Encrypt)?;
        blob.tag.copy_from_slice(tag.as_ref());
        Ok(blob.to_bytes())
    }

    /// Decrypts a parsed blob made by this key (id and version must match).
    pub fn decrypt(&self, blob: &Blob, context: &[u8]) -> Result<Secret, CryptoError> {
        if blob.key_id != self.key_id || blob.version != self.version {
            return Err(CryptoError::InvalidCiphertext);
        }
        let aad = aad(&blob.header(), context);
        let mut buf = Zeroizing::new(Vec::with_capacity(blob.ciphertext.len() + TAG_LEN));
        buf.extend_from_slice(&blob.ciphertext);
        buf.extend_from_slice(&blob.tag);
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(blob.iv),
                Aad::from(&aad[..]),
                &mut buf,
            )
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .len();
        buf.truncate(len);
        Ok(Secret(buf))
    }
}

fn aad(header: &[u8; HEADER_LEN], context: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(HEADER_LEN + context.len());
    a.extend_from_slice(header);
    a.extend_from_slice(context);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn key(version: u32) -> SymmetricKey {
        SymmetricKey::new(ID, version, &Secret::from_slice(&[7u8; 32])).unwrap()
    }

    fn ctx(pairs: &[(&str, &str)]) -> Vec<u8> {
        canonical_context(pairs.iter().copied())
    }

    #[test]
    fn round_trip_and_layout() {
        let k = key(3);
        let c = ctx(&[("purpose", "test"), ("a", "b")]);
        let blob = k.encrypt(b"hello", &c).unwrap();
        assert_eq!(blob.len(), MIN_BLOB_LEN + 5);
        assert_eq!(blob[0], FORMAT_V1);
        let parsed = Blob::parse(&blob).unwrap();
        assert_eq!(parsed.key_id_string(), ID);
        assert_eq!(parsed.version, 3);
        assert_eq!(parsed.to_bytes(), blob);
        assert_eq!(k.decrypt(&parsed, &c).unwrap().expose(), b"hello");
        // Empty plaintext and the 4096-byte limit.
        let e = k.encrypt(b"", &[]).unwrap();
        assert_eq!(k.decrypt(&Blob::parse(&e).unwrap(), &[]).unwrap().len(), 0);
        assert!(k.encrypt(&[0u8; 4096], &[]).is_ok());
        assert_eq!(
            k.encrypt(&[0u8; 4097], &[]),
            Err(CryptoError::PlaintextTooLong)
        );
        // Two encryptions differ (random IV).
        assert_ne!(k.encrypt(b"x", &[]).unwrap(), k.encrypt(b"x", &[]).unwrap());
    }

    #[test]
    fn every_tampered_byte_is_invalid_ciphertext() {
        let k = key(1);
        let c = ctx(&[("k", "v")]);
        let blob = k.encrypt(b"some plaintext", &c).unwrap();
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = blob.clone();
                t[i] ^= bit;
                let r = Blob::parse(&t).and_then(|b| k.decrypt(&b, &c));
                assert_eq!(
                    r,
                    Err(CryptoError::InvalidCiphertext),
                    "byte {i} bit {bit:#x}"
                );
            }
        }
        // Truncation and extension.
        for n in 0..blob.len() {
            let r = Blob::parse(&blob[..n]).and_then(|b| k.decrypt(&b, &c));
            assert_eq!(r, Err(CryptoError::InvalidCiphertext), "truncated to {n}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        let r = Blob::parse(&longer).and_then(|b| k.decrypt(&b, &c));
        assert_eq!(r, Err(CryptoError::InvalidCiphertext));
    }

    #[test]
    fn context_must_match_exactly_in_any_order() {
        let k = key(1);
        let blob = k.encrypt(b"p", &ctx(&[("a", "1"), ("b", "2")])).unwrap();
        let b = Blob::parse(&blob).unwrap();
        assert!(k.decrypt(&b, &ctx(&[("b", "2"), ("a", "1")])).is_ok());
        for wrong in [
            ctx(&[]),
            ctx(&[("a", "1")]),
            ctx(&[("A", "1"), ("b", "2")]),
            ctx(&[("a", "1"), ("b", "2 ")]),
            ctx(&[("a", "1"), ("b", "2"), ("c", "3")]),
            ctx(&[("a1", ""), ("b", "2")]),
        ] {
            assert_eq!(k.decrypt(&b, &wrong), Err(CryptoError::InvalidCiphertext));
        }
        // Length prefixes: moving bytes between key and value changes it.
        assert_ne!(ctx(&[("ab", "c")]), ctx(&[("a", "bc")]));
        assert_eq!(ctx(&[]), canonical_context(std::iter::empty()));
    }

    #[test]
    fn wrong_key_or_version_is_invalid() {
        let blob = Blob::parse(&key(1).encrypt(b"p", &[]).unwrap()).unwrap();
        assert_eq!(
            key(2).decrypt(&blob, &[]),
            Err(CryptoError::InvalidCiphertext)
        );
        let other = SymmetricKey::new(ID, 1, &Secret::from_slice(&[8u8; 32])).unwrap();
        assert_eq!(
            other.decrypt(&blob, &[]),
            Err(CryptoError::InvalidCiphertext)
        );
        let other_id = SymmetricKey::new(
            "00000000-0000-4000-8000-000000000000",
            1,
            &Secret::from_slice(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(
            other_id.decrypt(&blob, &[]),
            Err(CryptoError::InvalidCiphertext)
        );
        assert!(SymmetricKey::new(ID, 1, &Secret::from_slice(&[7u8; 16])).is_err());
    }

    #[test]
    fn key_id_bytes() {
        let b = key_id_to_bytes(ID).unwrap();
        assert_eq!(key_id_from_bytes(&b), ID);
        assert_eq!(
            key_id_from_bytes(&key_id_to_bytes(&ID.to_uppercase()).unwrap()),
            ID
        );
        for bad in [
            "",
            "1234abcd12ab34cd56ef1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ag",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
        ] {
            assert!(key_id_to_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_keys_and_random() {
        assert_eq!(data_key_len(Some("AES_256"), None), Ok(32));
        assert_eq!(data_key_len(Some("AES_128"), None), Ok(16));
        assert_eq!(data_key_len(None, Some(1)), Ok(1));
        assert_eq!(data_key_len(None, Some(1024)), Ok(1024));
        for bad in [
            data_key_len(None, None),
            data_key_len(None, Some(0)),
            data_key_len(None, Some(1025)),
            data_key_len(Some("AES_256"), Some(32)),
            data_key_len(Some("AES_512"), None),
        ] {
            assert_eq!(bad, Err(CryptoError::InvalidLength));
        }
        assert_eq!(generate_data_key(32).unwrap().len(), 32);
        assert_ne!(
            generate_data_key(32).unwrap(),
            generate_data_key(32).unwrap()
        );
        assert_eq!(generate_random(1024).unwrap().len(), 1024);
        assert!(generate_random(0).is_err() && generate_random(1025).is_err());
        assert_eq!(new_key_material().unwrap().len(), 32);
        let s = Secret::from_slice(b"top secret");
        assert_eq!(format!("{s:?}"), "Secret(<10 bytes redacted>)");
        assert!(!format!("{:?}", key(1)).contains("07"));
    }
}
