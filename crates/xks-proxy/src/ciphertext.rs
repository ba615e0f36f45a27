//! The proxy's `ciphertextMetadata`: a format byte, then the backend's
//! key-material version.
//!
//! The format byte tells decrypt how the GCM AAD was built, so a future
//! change of construction keeps old ciphertexts decryptable (the spec's
//! advice). Format 1 is the spec's recommended binding
//! `len16(aad) || aad || len8(metadata) || metadata`, so the metadata itself
//! is authenticated by the tag.

use crate::backend::MAX_MATERIAL_VERSION;

/// Format 1: length-prefixed AAD and metadata (spec v1.0.x recommendation).
pub const FORMAT_V1: u8 = 1;

/// Builds the metadata for a new ciphertext.
pub fn encode(material_version: &[u8]) -> Result<Vec<u8>, &'static str> {
    if material_version.len() > MAX_MATERIAL_VERSION {
        return Err("backend key material version is longer than 19 bytes");
    }
    let mut m = Vec::with_capacity(1 + material_version.len());
    m.push(FORMAT_V1);
    m.extend_from_slice(material_version);
    Ok(m)
}

/// Returns the material version of a ciphertext's metadata.
pub fn decode(metadata: Option<&[u8]>) -> Result<&[u8], &'static str> {
    match metadata {
        None => Err("ciphertextMetadata is missing (this proxy always issues it)"),
        Some([FORMAT_V1, version @ ..]) => Ok(version),
        Some([]) => Err("ciphertextMetadata is empty"),
        Some(_) => Err("unknown ciphertextMetadata format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let m = encode(&[0, 0, 0, 7]).unwrap();
        assert_eq!(m, vec![1, 0, 0, 0, 7]);
        assert_eq!(decode(Some(&m)), Ok(&[0, 0, 0, 7][..]));
        assert_eq!(decode(Some(&[1])), Ok(&[][..]));
        assert!(decode(None).is_err());
        assert!(decode(Some(&[])).is_err());
        assert!(decode(Some(&[2, 0])).is_err());
        assert!(encode(&[0; 20]).is_err());
        assert_eq!(
            encode(&[0; 19]).unwrap().len(),
            xks_wire::MAX_CIPHERTEXT_METADATA
        );
    }
}
