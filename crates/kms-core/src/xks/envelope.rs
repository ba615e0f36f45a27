//! The double-encrypted ciphertext blob of external key store keys (pure).
//!
//! Inner layer: kms-core's own AES-256-GCM key material of the KMS key
//! seals the plaintext into an ordinary format-1 blob
//! ([`crate::crypto::SymmetricKey::encrypt`]) whose AAD binds the key id,
//! the material version and the canonical encryption context.
//!
//! Outer layer: that whole inner blob is the plaintext of an XKS Encrypt on
//! the external key, with the AAD of [`outer_aad`] (the key's ARN, the
//! external key id and the canonical encryption context, hashed) and a
//! requested, verified CDIV. The proxy's answer is stored as:
//!
//! ```text
//! format = 2 (1) ‖ key id (16) ‖ IV length (1) ‖ IV (12 or 16)
//!   ‖ tag (16) ‖ metadata length (1) ‖ ciphertextMetadata (0..=20)
//!   ‖ proxy ciphertext (= inner blob length)
//! ```
//!
//! Decrypt reverses both layers. Ciphertext of KMS key A cannot be opened
//! by key B even on the same external key: B's ARN gives another outer
//! AAD, and the inner layer needs A's own material.

use crate::crypto::{KEY_ID_LEN, MIN_BLOB_LEN, TAG_LEN};
use aws_lc_rs::digest::{Context, SHA256};

/// The blob format byte of double-encrypted ciphertexts.
pub const FORMAT_XKS: u8 = 2;
const MAX_METADATA: usize = 20;
const AAD_LABEL: &[u8] = b"kms-core/xks-aad/v1:";

/// A parsed format-2 blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksBlob {
    pub key_id: [u8; KEY_ID_LEN],
    pub iv: Vec<u8>,
    pub tag: [u8; TAG_LEN],
    pub metadata: Vec<u8>,
    /// The proxy's ciphertext of the inner blob.
    pub ciphertext: Vec<u8>,
}

/// Why a blob is not a well-formed format-2 blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid external key store ciphertext")]
pub struct Malformed;

impl XksBlob {
    /// The wire bytes; `None` if the proxy's fields are out of range.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        if !matches!(self.iv.len(), 12 | 16) || self.metadata.len() > MAX_METADATA {
            return None;
        }
        let mut out = Vec::with_capacity(
            3 + KEY_ID_LEN + self.iv.len() + TAG_LEN + self.metadata.len() + self.ciphertext.len(),
        );
        out.push(FORMAT_XKS);
        out.extend_from_slice(&self.key_id);
        out.push(self.iv.len() as u8);
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&self.tag);
        out.push(self.metadata.len() as u8);
        out.extend_from_slice(&self.metadata);
        out.extend_from_slice(&self.ciphertext);
        Some(out)
    }

    /// Parses wire bytes.
    pub fn parse(bytes: &[u8]) -> Result<XksBlob, Malformed> {
        let mut r = Reader(bytes);
        if r.take(1)? != [FORMAT_XKS] {
            return Err(Malformed);
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(r.take(KEY_ID_LEN)?);
        let iv_len = r.take(1)?[0] as usize;
        if !matches!(iv_len, 12 | 16) {
            return Err(Malformed);
        }
        let iv = r.take(iv_len)?.to_vec();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(r.take(TAG_LEN)?);
        let meta_len = r.take(1)?[0] as usize;
        if meta_len > MAX_METADATA {
            return Err(Malformed);
        }
        let metadata = r.take(meta_len)?.to_vec();
        let ciphertext = r.0.to_vec();
        if ciphertext.len() < MIN_BLOB_LEN {
            return Err(Malformed);
        }
        Ok(XksBlob {
            key_id,
            iv,
            tag,
            metadata,
            ciphertext,
        })
    }
}

/// Whether `bytes` claims to be a format-2 blob (first byte).
pub fn is_xks_blob(bytes: &[u8]) -> bool {
    bytes.first() == Some(&FORMAT_XKS)
}

/// The key id bytes a blob of either format names, without parsing the rest.
pub fn named_key_id(bytes: &[u8]) -> Option<[u8; KEY_ID_LEN]> {
    let id = bytes.get(1..1 + KEY_ID_LEN)?;
    let mut out = [0u8; KEY_ID_LEN];
    out.copy_from_slice(id);
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

/// The outer layer's AAD: a label and SHA-256 over the length-prefixed KMS
/// key ARN, external key id and canonical encryption context.
pub fn outer_aad(key_arn: &str, xks_key_id: &str, canonical_context: &[u8]) -> Vec<u8> {
    let mut h = Context::new(&SHA256);
    for part in [key_arn.as_bytes(), xks_key_id.as_bytes(), canonical_context] {
        h.update(&(part.len() as u32).to_be_bytes());
        h.update(part);
    }
    let digest = h.finish();
    let mut out = Vec::with_capacity(AAD_LABEL.len() + 32);
    out.extend_from_slice(AAD_LABEL);
    out.extend_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> XksBlob {
        XksBlob {
            key_id: [7; 16],
            iv: vec![1; 12],
            tag: [2; 16],
            metadata: vec![1, 0, 0, 0, 1],
            ciphertext: vec![9; MIN_BLOB_LEN + 5],
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let b = sample();
        let bytes = b.to_bytes().unwrap();
        assert!(is_xks_blob(&bytes));
        assert_eq!(named_key_id(&bytes), Some([7; 16]));
        assert_eq!(XksBlob::parse(&bytes).unwrap(), b);
        // Every truncation into the header or the minimal inner blob is refused.
        for n in 0..bytes.len() - 5 {
            assert_eq!(XksBlob::parse(&bytes[..n]), Err(Malformed), "{n}");
        }
        let mut wrong = bytes.clone();
        wrong[0] = 1;
        assert_eq!(XksBlob::parse(&wrong), Err(Malformed));
        let mut bad_iv = bytes.clone();
        bad_iv[17] = 13;
        assert_eq!(XksBlob::parse(&bad_iv), Err(Malformed));
        let mut iv16 = sample();
        iv16.iv = vec![3; 16];
        iv16.metadata = vec![];
        assert_eq!(XksBlob::parse(&iv16.to_bytes().unwrap()).unwrap(), iv16);
        let mut long_meta = sample();
        long_meta.metadata = vec![0; 21];
        assert!(long_meta.to_bytes().is_none());
    }

    #[test]
    fn aad_binds_key_external_key_and_context() {
        let a = outer_aad("arn:a", "ext", b"ctx");
        assert_eq!(a.len(), AAD_LABEL.len() + 32);
        assert_ne!(a, outer_aad("arn:b", "ext", b"ctx"));
        assert_ne!(a, outer_aad("arn:a", "ext2", b"ctx"));
        assert_ne!(a, outer_aad("arn:a", "ext", b"ctx2"));
        // Length prefixes: moving bytes between fields changes the AAD.
        assert_ne!(outer_aad("ab", "c", b""), outer_aad("a", "bc", b""));
        assert_eq!(a, outer_aad("arn:a", "ext", b"ctx"));
    }
}
