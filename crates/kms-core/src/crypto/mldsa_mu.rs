//! ML-DSA with an external μ (`MessageType: EXTERNAL_MU`, FIPS 204
//! Algorithms 2/3 with a pre-computed message representative
//! μ = SHAKE256(SHAKE256(pk, 64) ‖ M′, 64)).
//!
//! aws-lc-rs signs and verifies only pure ML-DSA over the message, so these
//! two steps use RustCrypto's `ml-dsa` on the same key: both libraries derive
//! the key from the same 32-byte FIPS 204 seed (ML-DSA.KeyGen_internal), and
//! loading checks that they agree on the public key. Signing with μ is the
//! deterministic variant FIPS 204 allows (rnd = 0).

use crate::keys::spec::KeySpec;
use hybrid_array::sizes::U64;
use hybrid_array::Array;
use ml_dsa::{
    ExpandedSigningKey, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Signature, VerifyingKey, B32,
};

struct Pair<P: MlDsaParams> {
    signing: ExpandedSigningKey<P>,
    verifying: VerifyingKey<P>,
}

impl<P: MlDsaParams> Pair<P> {
    fn new(seed: &[u8; 32]) -> Self {
        let signing = ExpandedSigningKey::<P>::from_seed(&B32::from(*seed));
        let verifying = signing.verifying_key();
        Pair { signing, verifying }
    }

    fn public(&self) -> Vec<u8> {
        self.verifying.encode().as_slice().to_vec()
    }

    fn sign_mu(&self, mu: &Array<u8, U64>) -> Vec<u8> {
        self.signing
            .sign_mu_deterministic(mu)
            .encode()
            .as_slice()
            .to_vec()
    }

    fn verify_mu(&self, mu: &Array<u8, U64>, signature: &[u8]) -> bool {
        Signature::<P>::try_from(signature).is_ok_and(|s| self.verifying.verify_mu(mu, &s))
    }
}

enum Inner {
    P44(Box<Pair<MlDsa44>>),
    P65(Box<Pair<MlDsa65>>),
    P87(Box<Pair<MlDsa87>>),
}

/// An ML-DSA key ready for external-μ signing and verification.
pub struct MuKey(Inner);

impl MuKey {
    /// The key of `spec` (ML_DSA_44/65/87) derived from `seed`.
    pub fn from_seed(spec: KeySpec, seed: &[u8; 32]) -> Option<MuKey> {
        Some(MuKey(match spec {
            KeySpec::MlDsa44 => Inner::P44(Box::new(Pair::new(seed))),
            KeySpec::MlDsa65 => Inner::P65(Box::new(Pair::new(seed))),
            KeySpec::MlDsa87 => Inner::P87(Box::new(Pair::new(seed))),
            _ => return None,
        }))
    }

    /// The encoded public key (FIPS 204 pkEncode).
    pub fn public_key(&self) -> Vec<u8> {
        match &self.0 {
            Inner::P44(p) => p.public(),
            Inner::P65(p) => p.public(),
            Inner::P87(p) => p.public(),
        }
    }

    /// Signs a 64-byte μ; `None` if `mu` is not 64 bytes.
    pub fn sign_mu(&self, mu: &[u8]) -> Option<Vec<u8>> {
        let mu = Array::<u8, U64>::try_from(mu).ok()?;
        Some(match &self.0 {
            Inner::P44(p) => p.sign_mu(&mu),
            Inner::P65(p) => p.sign_mu(&mu),
            Inner::P87(p) => p.sign_mu(&mu),
        })
    }

    /// Verifies a signature of a 64-byte μ.
    pub fn verify_mu(&self, mu: &[u8], signature: &[u8]) -> bool {
        let Ok(mu) = Array::<u8, U64>::try_from(mu) else {
            return false;
        };
        match &self.0 {
            Inner::P44(p) => p.verify_mu(&mu, signature),
            Inner::P65(p) => p.verify_mu(&mu, signature),
            Inner::P87(p) => p.verify_mu(&mu, signature),
        }
    }
}

/// μ of `message` under `public_key` with an empty context (what pure
/// ML-DSA signs): SHAKE256(SHAKE256(pk, 64) ‖ 0x00 ‖ 0x00 ‖ M, 64). For
/// tests and tools.
pub fn external_mu(spec: KeySpec, public_key: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    fn mu<P: MlDsaParams>(pk: &[u8], message: &[u8]) -> Option<Vec<u8>> {
        let enc = ml_dsa::EncodedVerifyingKey::<P>::try_from(pk).ok()?;
        let vk = VerifyingKey::<P>::decode(&enc);
        let mu = vk
            .compute_mu(
                |h| {
                    ml_dsa::signature::digest::Update::update(h, message);
                    Ok(())
                },
                &[],
            )
            .ok()?;
        Some(mu.as_slice().to_vec())
    }
    match spec {
        KeySpec::MlDsa44 => mu::<MlDsa44>(public_key, message),
        KeySpec::MlDsa65 => mu::<MlDsa65>(public_key, message),
        KeySpec::MlDsa87 => mu::<MlDsa87>(public_key, message),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self as sig, KeyPair as _};

    /// Both libraries derive the same key from a seed; a μ signature
    /// verifies with aws-lc as pure ML-DSA over the message and vice versa.
    #[test]
    fn agrees_with_aws_lc() {
        for (spec, alg, valg) in [
            (KeySpec::MlDsa44, &sig::ML_DSA_44_SIGNING, &sig::ML_DSA_44),
            (KeySpec::MlDsa65, &sig::ML_DSA_65_SIGNING, &sig::ML_DSA_65),
            (KeySpec::MlDsa87, &sig::ML_DSA_87_SIGNING, &sig::ML_DSA_87),
        ] {
            let seed = [7u8; 32];
            let lc = sig::PqdsaKeyPair::from_seed(alg, &seed).unwrap();
            let k = MuKey::from_seed(spec, &seed).unwrap();
            assert_eq!(k.public_key(), lc.public_key().as_ref(), "{spec:?}");
            let mu = external_mu(spec, &k.public_key(), b"message").unwrap();
            let s = k.sign_mu(&mu).unwrap();
            sig::UnparsedPublicKey::new(valg, lc.public_key().as_ref())
                .verify(b"message", &s)
                .unwrap();
            let mut s2 = vec![0u8; alg.signature_len()];
            let n = lc.sign(b"message", &mut s2).unwrap();
            assert!(k.verify_mu(&mu, &s2[..n]));
            assert!(!k.verify_mu(&mu, &s2[..n - 1]));
            let other = external_mu(spec, &k.public_key(), b"messagE").unwrap();
            assert!(!k.verify_mu(&other, &s2[..n]));
            assert!(k.sign_mu(&mu[1..]).is_none());
        }
    }
}
