//! Ed25519ph (RFC 8032 §5.1: HashEdDSA with PH = SHA-512 and an empty
//! context) for the `ED25519_PH_SHA_512` signing algorithm.
//!
//! aws-lc-rs offers only pure Ed25519, so this module does the HashEdDSA
//! steps itself on top of `curve25519-dalek` (the well-known Edwards-curve
//! arithmetic crate; group operations only) with SHA-512 from aws-lc-rs. The
//! key is the same 32-byte Ed25519 seed aws-lc-rs keeps, so one key signs with
//! both ED25519_SHA_512 and ED25519_PH_SHA_512, as in AWS KMS. Checked
//! against RFC 8032's Ed25519ph test vector.

use aws_lc_rs::digest::{Context, SHA512};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

/// dom2(phflag = 1, context = empty).
const DOM2: &[u8] = b"SigEd25519 no Ed25519 collisions\x01\x00";

fn sha512(parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let mut c = Context::new(&SHA512);
    for p in parts {
        c.update(p);
    }
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// The SHA-512 pre-hash of a message (PH(M)).
pub fn prehash(message: &[u8]) -> [u8; 64] {
    *sha512(&[message])
}

/// An Ed25519 key expanded for Ed25519ph signing.
pub struct Ed25519ph {
    secret: Zeroizing<Scalar>,
    prefix: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl Ed25519ph {
    /// Expands a 32-byte Ed25519 private key (seed) as RFC 8032 §5.1.5.
    pub fn from_seed(seed: &[u8; 32]) -> Ed25519ph {
        let h = sha512(&[seed]);
        let mut a = Zeroizing::new([0u8; 32]);
        a.copy_from_slice(&h[..32]);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let secret = Zeroizing::new(Scalar::from_bytes_mod_order(*a));
        let mut prefix = Zeroizing::new([0u8; 32]);
        prefix.copy_from_slice(&h[32..]);
        let public = EdwardsPoint::mul_base(&secret).compress().to_bytes();
        Ed25519ph {
            secret,
            prefix,
            public,
        }
    }

    /// The encoded public key A.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// Signs PH(M) (a SHA-512 digest of the message).
    pub fn sign_prehashed(&self, ph: &[u8; 64]) -> [u8; 64] {
        let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&sha512(&[
            DOM2,
            &self.prefix[..],
            ph,
        ])));
        let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let k = Scalar::from_bytes_mod_order_wide(&sha512(&[DOM2, &big_r, &self.public, ph]));
        let s = *r + k * *self.secret;
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&big_r);
        out[32..].copy_from_slice(&s.to_bytes());
        out
    }
}

/// Verifies an Ed25519ph signature of PH(M) under the encoded public key:
/// `[S]B = R + [k]A` with S canonical (RFC 8032 §5.1.7).
pub fn verify_prehashed(public: &[u8; 32], ph: &[u8; 64], signature: &[u8]) -> bool {
    let Ok(sig) = <&[u8; 64]>::try_from(signature) else {
        return false;
    };
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let Some(a) = CompressedEdwardsY(*public).decompress() else {
        return false;
    };
    if CompressedEdwardsY(r_bytes).decompress().is_none() {
        return false;
    }
    let k = Scalar::from_bytes_mod_order_wide(&sha512(&[DOM2, &r_bytes, public, ph]));
    // [S]B − [k]A must encode to R.
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    check.compress().to_bytes() == r_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        ::hex::decode(s).unwrap()
    }

    /// RFC 8032 §7.3, "TEST abc".
    #[test]
    fn rfc8032_test_vector() {
        let seed: [u8; 32] =
            hex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
                .try_into()
                .unwrap();
        let key = Ed25519ph::from_seed(&seed);
        assert_eq!(
            key.public_key().to_vec(),
            hex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
        );
        let sig = key.sign_prehashed(&prehash(b"abc"));
        assert_eq!(
            sig.to_vec(),
            hex(concat!(
                "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41",
                "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
            ))
        );
        assert!(verify_prehashed(&key.public_key(), &prehash(b"abc"), &sig));
        assert!(!verify_prehashed(&key.public_key(), &prehash(b"abd"), &sig));
        let mut bad = sig;
        bad[40] ^= 1;
        assert!(!verify_prehashed(&key.public_key(), &prehash(b"abc"), &bad));
        assert!(!verify_prehashed(
            &key.public_key(),
            &prehash(b"abc"),
            &sig[..63]
        ));
    }
}
