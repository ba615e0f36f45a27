//! The two byte constructions the spec defines on top of AES-GCM.

use aws_lc_rs::digest;

/// Length of a SHA_256 CDIV.
pub const CDIV_LEN: usize = 32;

/// Error: a field is too long to be length-prefixed as the spec requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AadError {
    #[error("additionalAuthenticatedData is longer than 65535 bytes")]
    AadTooLong,
    #[error("ciphertextMetadata is longer than 255 bytes")]
    MetadataTooLong,
}

/// AES-GCM AAD binding request AAD and ciphertext metadata, as the spec
/// recommends: `len16be(aad) || aad || len8(metadata) || metadata`.
/// An absent field is the empty string (length zero).
pub fn gcm_aad(aad: &[u8], metadata: &[u8]) -> Result<Vec<u8>, AadError> {
    let aad_len = u16::try_from(aad.len()).map_err(|_| AadError::AadTooLong)?;
    let meta_len = u8::try_from(metadata.len()).map_err(|_| AadError::MetadataTooLong)?;
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(meta_len);
    out.extend_from_slice(metadata);
    Ok(out)
}

/// Ciphertext Data Integrity Value (Appendix C): SHA-256 over
/// `aad || ciphertextMetadata || iv || ciphertext || tag` (no lengths).
pub fn cdiv_sha256(
    aad: &[u8],
    metadata: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> [u8; CDIV_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [aad, metadata, iv, ciphertext, tag] {
        ctx.update(part);
    }
    let mut out = [0u8; CDIV_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::{decode, encode};

    /// The worked example of the spec's Appendix C.
    #[test]
    fn appendix_c_vector() {
        let aad = b"project=nile,department=marketing";
        let meta = b"key_version=1";
        assert_eq!(aad.len(), 33);
        assert_eq!(meta.len(), 13);
        let iv = decode("HMrlRw85cAJUd5Ax").unwrap();
        let ct = decode("ghxkK1txeDNn3q8Y").unwrap();
        let tag = decode("vBxN2ncH1oEkR8WVXpmyYQ==").unwrap();
        assert_eq!(encode(meta), "a2V5X3ZlcnNpb249MQ==");
        assert_eq!(
            iv,
            [0x1c, 0xca, 0xe5, 0x47, 0x0f, 0x39, 0x70, 0x02, 0x54, 0x77, 0x90, 0x31]
        );
        let cdiv = cdiv_sha256(aad, meta, &iv, &ct, &tag);
        assert_eq!(
            hex::encode(cdiv),
            "a8703f2260bd8791ec2d15ea0b23e65a0631eedcf2a13a65cc82db3f47cf5ec7"
        );
        assert_eq!(
            encode(&cdiv),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }

    #[test]
    fn aad_binding_distinguishes_moved_metadata() {
        // Metadata passed as AAD must not produce the same GCM AAD.
        let a = gcm_aad(b"", b"meta").unwrap();
        let b = gcm_aad(b"meta", b"").unwrap();
        assert_ne!(a, b);
        assert_eq!(gcm_aad(b"", b"").unwrap(), vec![0, 0, 0]);
        assert_eq!(
            gcm_aad(b"ab", b"c").unwrap(),
            vec![0, 2, b'a', b'b', 1, b'c']
        );
        assert_eq!(gcm_aad(&vec![0; 65536], b""), Err(AadError::AadTooLong));
        assert_eq!(gcm_aad(b"", &[0; 256]), Err(AadError::MetadataTooLong));
    }
}
