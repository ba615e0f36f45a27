//! Fuzz body: kms-core's ciphertext blobs, format 1 (`crypto::Blob`) and the
//! double-encrypted format 2 (`xks::envelope::XksBlob`): parsing never
//! panics, a parsed blob re-encodes to the same bytes, and no blob decrypts
//! under a key it was not made with.

use kms_core::crypto::{Blob, Secret, SymmetricKey};
use kms_core::xks::envelope::XksBlob;
use std::sync::OnceLock;

fn key() -> &'static SymmetricKey {
    static K: OnceLock<SymmetricKey> = OnceLock::new();
    K.get_or_init(|| {
        SymmetricKey::new(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            1,
            &Secret::from_slice(&[7u8; 32]),
        )
        .expect("key")
    })
}

pub fn run(data: &[u8]) {
    if let Ok(b) = Blob::parse(data) {
        assert_eq!(b.to_bytes(), data, "format 1 round trip");
        assert!(key().decrypt(&b, b"").is_err(), "forged blob decrypted");
    }
    if let Ok(x) = XksBlob::parse(data) {
        assert_eq!(x.to_bytes().as_deref(), Some(data), "format 2 round trip");
        assert!(kms_core::xks::envelope::is_xks_blob(data));
    }
    let _ = kms_core::xks::envelope::named_key_id(data);
}
