//! Key material of the non-symmetric key types (HMAC, RSA, ECC, Ed25519,
//! ML-DSA, ML-KEM) on aws-lc-rs: generation, the serialized form kept
//! wrapped in the store, the ready-to-use parsed form cached per key, and
//! the primitives (sign/verify incl. pre-hashed digests, RSAES-OAEP,
//! HMAC, ECDH, ML-KEM).
//!
//! Serialized form (what the store wraps under the root key):
//! * HMAC: the raw key (28/32/48/64 bytes);
//! * RSA, ECC (ECDSA and ECDH), Ed25519: PKCS#8 `PrivateKeyInfo` DER;
//! * ML-DSA: the 32-byte FIPS 204 seed (older keys: PKCS#8);
//! * ML-KEM: the raw FIPS 203 decapsulation key.
//!
//! No function here logs or formats key material; parsed keys are dropped
//! by aws-lc (which zeroizes them).

use crate::crypto::ed25519ph::{self, Ed25519ph};
use crate::crypto::mldsa_mu::MuKey;
use crate::crypto::{CryptoError, Secret};
use crate::keys::spec::{EncryptionAlgorithm, KeySpec, KeyUsage, SigningAlgorithm};
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::signature::{self as sig, KeyPair as _, VerificationAlgorithm};
use aws_lc_rs::{agreement, digest, hmac, kem, rand, rsa};
use std::fmt;

/// Failures of the primitives, mapped to AWS errors by the operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsymError {
    #[error("the key material cannot be generated or parsed")]
    Material,
    #[error("the algorithm does not fit this key")]
    Algorithm,
    #[error("the digest length does not fit the algorithm")]
    DigestLength,
    #[error("the signature is not valid")]
    BadSignature,
    #[error("the ciphertext is not valid")]
    BadCiphertext,
    #[error("the public key is not a valid key of this curve")]
    BadPublicKey,
    #[error("the operation failed")]
    Failed,
    #[error("this key does not support the operation")]
    Unsupported,
}

impl From<AsymError> for CryptoError {
    fn from(_: AsymError) -> Self {
        CryptoError::InvalidKeyMaterial
    }
}

/// What `Message` holds in Sign/Verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Raw,
    Digest,
    /// ML-DSA's 64-byte external μ.
    ExternalMu,
}

enum Inner {
    Hmac(Box<hmac::Key>),
    RsaSign(rsa::KeyPair),
    RsaDecrypt(rsa::OaepPrivateDecryptingKey),
    Ecdsa(sig::EcdsaKeyPair),
    /// Pure Ed25519 (aws-lc) and the same key expanded for Ed25519ph.
    Ed25519(sig::Ed25519KeyPair, Box<Ed25519ph>),
    /// aws-lc for pure ML-DSA; `ml-dsa` for external μ (keys stored as seeds).
    MlDsa(sig::PqdsaKeyPair, Option<Box<MuKey>>),
    Ecdh(agreement::PrivateKey),
    MlKem(kem::DecapsulationKey, kem::EncapsulationKey),
}

/// One version of a non-symmetric key, parsed and ready.
pub struct KeyMaterial {
    spec: KeySpec,
    inner: Inner,
    /// DER SubjectPublicKeyInfo (empty for HMAC).
    public_der: Vec<u8>,
    /// Pre-parsed verification keys per signing algorithm.
    verifiers: Vec<(SigningAlgorithm, sig::ParsedPublicKey)>,
    /// RSA encryption public key.
    oaep_public: Option<rsa::OaepPublicEncryptingKey>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static sig::EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&sig::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Some(&sig::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Some(&sig::ECDSA_P521_SHA512_ASN1_SIGNING),
        KeySpec::EccSecgP256k1 => Some(&sig::ECDSA_P256K1_SHA256_ASN1_SIGNING),
        _ => None,
    }
}

fn ecdh_alg(spec: KeySpec) -> Option<&'static agreement::Algorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&agreement::ECDH_P256),
        KeySpec::EccNistP384 => Some(&agreement::ECDH_P384),
        KeySpec::EccNistP521 => Some(&agreement::ECDH_P521),
        _ => None,
    }
}

fn mldsa_alg(spec: KeySpec) -> Option<&'static sig::PqdsaSigningAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Some(&sig::ML_DSA_44_SIGNING),
        KeySpec::MlDsa65 => Some(&sig::ML_DSA_65_SIGNING),
        KeySpec::MlDsa87 => Some(&sig::ML_DSA_87_SIGNING),
        _ => None,
    }
}

fn mlkem_alg(spec: KeySpec) -> Option<(&'static kem::Algorithm, u8)> {
    match spec {
        KeySpec::MlKem512 => Some((&kem::ML_KEM_512, 1)),
        KeySpec::MlKem768 => Some((&kem::ML_KEM_768, 2)),
        KeySpec::MlKem1024 => Some((&kem::ML_KEM_1024, 3)),
        _ => None,
    }
}

fn rsa_size(spec: KeySpec) -> Option<rsa::KeySize> {
    match spec {
        KeySpec::Rsa2048 => Some(rsa::KeySize::Rsa2048),
        KeySpec::Rsa3072 => Some(rsa::KeySize::Rsa3072),
        KeySpec::Rsa4096 => Some(rsa::KeySize::Rsa4096),
        _ => None,
    }
}

fn hmac_alg(spec: KeySpec) -> Option<hmac::Algorithm> {
    match spec {
        KeySpec::Hmac224 => Some(hmac::HMAC_SHA224),
        KeySpec::Hmac256 => Some(hmac::HMAC_SHA256),
        KeySpec::Hmac384 => Some(hmac::HMAC_SHA384),
        KeySpec::Hmac512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn verification(
    alg: SigningAlgorithm,
    spec: KeySpec,
) -> Option<&'static dyn VerificationAlgorithm> {
    use SigningAlgorithm as S;
    Some(match (alg, spec) {
        (S::RsassaPssSha256, _) => &sig::RSA_PSS_2048_8192_SHA256,
        (S::RsassaPssSha384, _) => &sig::RSA_PSS_2048_8192_SHA384,
        (S::RsassaPssSha512, _) => &sig::RSA_PSS_2048_8192_SHA512,
        (S::RsassaPkcs1V15Sha256, _) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (S::RsassaPkcs1V15Sha384, _) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (S::RsassaPkcs1V15Sha512, _) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (S::EcdsaSha256, KeySpec::EccNistP256) => &sig::ECDSA_P256_SHA256_ASN1,
        (S::EcdsaSha256, KeySpec::EccSecgP256k1) => &sig::ECDSA_P256K1_SHA256_ASN1,
        (S::EcdsaSha384, _) => &sig::ECDSA_P384_SHA384_ASN1,
        (S::EcdsaSha512, _) => &sig::ECDSA_P521_SHA512_ASN1,
        (S::Ed25519Sha512, _) => &sig::ED25519,
        (S::MlDsaShake256, KeySpec::MlDsa44) => &sig::ML_DSA_44,
        (S::MlDsaShake256, KeySpec::MlDsa65) => &sig::ML_DSA_65,
        (S::MlDsaShake256, KeySpec::MlDsa87) => &sig::ML_DSA_87,
        _ => return None,
    })
}

fn rsa_encoding(alg: SigningAlgorithm) -> Option<&'static dyn sig::RsaEncoding> {
    use SigningAlgorithm as S;
    Some(match alg {
        S::RsassaPssSha256 => &sig::RSA_PSS_SHA256,
        S::RsassaPssSha384 => &sig::RSA_PSS_SHA384,
        S::RsassaPssSha512 => &sig::RSA_PSS_SHA512,
        S::RsassaPkcs1V15Sha256 => &sig::RSA_PKCS1_SHA256,
        S::RsassaPkcs1V15Sha384 => &sig::RSA_PKCS1_SHA384,
        S::RsassaPkcs1V15Sha512 => &sig::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn digest_alg(alg: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    match alg.digest_len()? {
        32 => Some(&digest::SHA256),
        48 => Some(&digest::SHA384),
        64 => Some(&digest::SHA512),
        _ => None,
    }
}

fn m<T, E>(r: Result<T, E>) -> Result<T, AsymError> {
    r.map_err(|_| AsymError::Material)
}

/// Generates new key material for a key of `spec`/`usage`, serialized.
/// RSA takes up to seconds: call it off the async runtime.
pub fn generate(spec: KeySpec, usage: KeyUsage) -> Result<Secret, AsymError> {
    if let Some(len) = spec.hmac_key_len() {
        return crate::crypto::random_bytes(len).map_err(|_| AsymError::Material);
    }
    if let Some(size) = rsa_size(spec) {
        let kp = m(rsa::KeyPair::generate(size))?;
        return Ok(Secret::new(m(kp.as_der())?.as_ref().to_vec()));
    }
    if usage == KeyUsage::KeyAgreement {
        let alg = ecdh_alg(spec).ok_or(AsymError::Algorithm)?;
        let k = m(agreement::PrivateKey::generate(alg))?;
        let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = m(k.as_der())?;
        return Ok(Secret::new(der.as_ref().to_vec()));
    }
    if let Some(alg) = ecdsa_signing(spec) {
        let kp = m(sig::EcdsaKeyPair::generate(alg))?;
        return Ok(Secret::new(m(kp.to_pkcs8v1())?.as_ref().to_vec()));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let kp = m(sig::Ed25519KeyPair::generate())?;
        return Ok(Secret::new(m(kp.to_pkcs8v1())?.as_ref().to_vec()));
    }
    if mldsa_alg(spec).is_some() {
        // The seed: both aws-lc and ml-dsa (external μ) expand it.
        return crate::crypto::random_bytes(32).map_err(|_| AsymError::Material);
    }
    if let Some((alg, _)) = mlkem_alg(spec) {
        let dk = m(kem::DecapsulationKey::generate(alg))?;
        return Ok(Secret::new(m(dk.key_bytes())?.as_ref().to_vec()));
    }
    Err(AsymError::Algorithm)
}

fn verifiers(
    spec: KeySpec,
    usage: KeyUsage,
    public_raw: &[u8],
) -> Result<Vec<(SigningAlgorithm, sig::ParsedPublicKey)>, AsymError> {
    let mut out = Vec::new();
    for &alg in spec.signing_algorithms(usage) {
        if let Some(v) = verification(alg, spec) {
            out.push((alg, m(sig::UnparsedPublicKey::new(v, public_raw).parse())?));
        }
    }
    Ok(out)
}

impl KeyMaterial {
    /// Parses serialized material of a key of `spec`/`usage`.
    pub fn load(spec: KeySpec, usage: KeyUsage, bytes: &[u8]) -> Result<KeyMaterial, AsymError> {
        let mut verifiers_ = Vec::new();
        let mut oaep_public = None;
        let (inner, public_der) = if let Some(alg) = hmac_alg(spec) {
            if Some(bytes.len()) != spec.hmac_key_len() {
                return Err(AsymError::Material);
            }
            (
                Inner::Hmac(Box::new(hmac::Key::new(alg, bytes))),
                Vec::new(),
            )
        } else if spec.is_rsa() && usage == KeyUsage::EncryptDecrypt {
            let key = m(rsa::PrivateDecryptingKey::from_pkcs8(bytes))?;
            let public = key.public_key();
            let der = m(public.as_der())?.as_ref().to_vec();
            oaep_public = Some(m(rsa::OaepPublicEncryptingKey::new(public))?);
            (
                Inner::RsaDecrypt(m(rsa::OaepPrivateDecryptingKey::new(key))?),
                der,
            )
        } else if spec.is_rsa() {
            let kp = m(rsa::KeyPair::from_pkcs8(bytes))?;
            let der = m(kp.public_key().as_der())?.as_ref().to_vec();
            verifiers_ = verifiers(spec, usage, kp.public_key().as_ref())?;
            (Inner::RsaSign(kp), der)
        } else if usage == KeyUsage::KeyAgreement {
            let alg = ecdh_alg(spec).ok_or(AsymError::Algorithm)?;
            let k = m(agreement::PrivateKey::from_private_key_der(alg, bytes))?;
            let der = m(m(k.compute_public_key())?.as_der())?.as_ref().to_vec();
            (Inner::Ecdh(k), der)
        } else if let Some(alg) = ecdsa_signing(spec) {
            let kp = m(sig::EcdsaKeyPair::from_pkcs8(alg, bytes))?;
            let der = m(kp.public_key().as_der())?.as_ref().to_vec();
            verifiers_ = verifiers(spec, usage, kp.public_key().as_ref())?;
            (Inner::Ecdsa(kp), der)
        } else if spec == KeySpec::EccNistEdwards25519 {
            let kp = m(sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes))?;
            let der = m(kp.public_key().as_der())?.as_ref().to_vec();
            verifiers_ = verifiers(spec, usage, kp.public_key().as_ref())?;
            let seed = m(m(kp.seed())?.as_be_bytes())?;
            let seed: [u8; 32] = m(<[u8; 32]>::try_from(seed.as_ref()))?;
            let ph = Ed25519ph::from_seed(&zeroize::Zeroizing::new(seed));
            if ph.public_key().as_slice() != kp.public_key().as_ref() {
                return Err(AsymError::Material);
            }
            (Inner::Ed25519(kp, Box::new(ph)), der)
        } else if let Some(alg) = mldsa_alg(spec) {
            let (kp, mu) = if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
                let seed = zeroize::Zeroizing::new(seed);
                let kp = m(sig::PqdsaKeyPair::from_seed(alg, &seed[..]))?;
                let mu = MuKey::from_seed(spec, &seed).ok_or(AsymError::Material)?;
                if mu.public_key().as_slice() != kp.public_key().as_ref() {
                    return Err(AsymError::Material);
                }
                (kp, Some(Box::new(mu)))
            } else {
                (m(sig::PqdsaKeyPair::from_pkcs8(alg, bytes))?, None)
            };
            let der = m(kp.public_key().as_der())?.as_ref().to_vec();
            verifiers_ = verifiers(spec, usage, kp.public_key().as_ref())?;
            (Inner::MlDsa(kp, mu), der)
        } else if let Some((alg, n)) = mlkem_alg(spec) {
            let dk = m(kem::DecapsulationKey::new(alg, bytes))?;
            let ek = m(kem::EncapsulationKey::new(alg, mlkem_ek_of_dk(n, bytes)?))?;
            let der = mlkem_spki(n, m(ek.key_bytes())?.as_ref());
            (Inner::MlKem(dk, ek), der)
        } else {
            return Err(AsymError::Algorithm);
        };
        Ok(KeyMaterial {
            spec,
            inner,
            public_der,
            verifiers: verifiers_,
            oaep_public,
        })
    }

    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The DER SubjectPublicKeyInfo (empty for HMAC keys).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Sign `message` (or a pre-computed digest of it).
    pub fn sign(
        &self,
        alg: SigningAlgorithm,
        kind: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, AsymError> {
        let prehashed = |message: &[u8]| -> Result<digest::Digest, AsymError> {
            let d = digest_alg(alg).ok_or(AsymError::Algorithm)?;
            digest::Digest::import_less_safe(message, d).map_err(|_| AsymError::DigestLength)
        };
        match (&self.inner, kind) {
            (Inner::RsaSign(kp), _) => {
                let enc = rsa_encoding(alg).ok_or(AsymError::Algorithm)?;
                let mut out = vec![0u8; kp.public_modulus_len()];
                match kind {
                    MessageType::Raw => kp
                        .sign(enc, &rand::SystemRandom::new(), message, &mut out)
                        .map_err(|_| AsymError::Failed)?,
                    MessageType::Digest => kp
                        .sign_digest(enc, &prehashed(message)?, &mut out)
                        .map_err(|_| AsymError::Failed)?,
                    MessageType::ExternalMu => return Err(AsymError::Algorithm),
                }
                Ok(out)
            }
            (Inner::Ecdsa(kp), MessageType::Raw) => kp
                .sign(&rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| AsymError::Failed),
            (Inner::Ecdsa(kp), MessageType::Digest) => kp
                .sign_digest(&prehashed(message)?)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| AsymError::Failed),
            (Inner::Ed25519(_, ph), _) if alg == SigningAlgorithm::Ed25519PhSha512 => {
                Ok(ph.sign_prehashed(&ed25519_prehash(kind, message)?).to_vec())
            }
            (Inner::Ed25519(kp, _), MessageType::Raw) => kp
                .try_sign(message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| AsymError::Failed),
            (Inner::MlDsa(_, mu), MessageType::ExternalMu) => mu
                .as_ref()
                .ok_or(AsymError::Unsupported)?
                .sign_mu(message)
                .ok_or(AsymError::DigestLength),
            (Inner::MlDsa(kp, _), MessageType::Raw) => {
                let mut out = vec![0u8; kp.algorithm().signature_len()];
                let n = kp.sign(message, &mut out).map_err(|_| AsymError::Failed)?;
                out.truncate(n);
                Ok(out)
            }
            _ => Err(AsymError::Algorithm),
        }
    }

    /// Verifies a signature made by [`KeyMaterial::sign`] (or any signer
    /// holding the private key). `BadSignature` when it does not verify.
    pub fn verify(
        &self,
        alg: SigningAlgorithm,
        kind: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), AsymError> {
        if let (Inner::Ed25519(_, ph), SigningAlgorithm::Ed25519PhSha512) = (&self.inner, alg) {
            let ph_message = ed25519_prehash(kind, message)?;
            return if ed25519ph::verify_prehashed(&ph.public_key(), &ph_message, signature) {
                Ok(())
            } else {
                Err(AsymError::BadSignature)
            };
        }
        if let (Inner::MlDsa(_, mu), MessageType::ExternalMu) = (&self.inner, kind) {
            let mu = mu.as_ref().ok_or(AsymError::Unsupported)?;
            if message.len() != 64 {
                return Err(AsymError::DigestLength);
            }
            return if mu.verify_mu(message, signature) {
                Ok(())
            } else {
                Err(AsymError::BadSignature)
            };
        }
        let key = self
            .verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, k)| k)
            .ok_or(AsymError::Algorithm)?;
        match kind {
            MessageType::Raw => key
                .verify_sig(message, signature)
                .map_err(|_| AsymError::BadSignature),
            MessageType::ExternalMu => Err(AsymError::Algorithm),
            MessageType::Digest => {
                let d = digest_alg(alg).ok_or(AsymError::Algorithm)?;
                let digest = digest::Digest::import_less_safe(message, d)
                    .map_err(|_| AsymError::DigestLength)?;
                key.verify_digest_sig(&digest, signature)
                    .map_err(|_| AsymError::BadSignature)
            }
        }
    }

    /// RSAES-OAEP encryption with the public key.
    pub fn encrypt(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AsymError> {
        let public = self.oaep_public.as_ref().ok_or(AsymError::Algorithm)?;
        let oaep = oaep_alg(alg)?;
        let mut out = vec![0u8; public.ciphertext_size()];
        let n = public
            .encrypt(oaep, plaintext, &mut out, None)
            .map_err(|_| AsymError::Failed)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// RSAES-OAEP decryption with the private key.
    pub fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Secret, AsymError> {
        let Inner::RsaDecrypt(key) = &self.inner else {
            return Err(AsymError::Algorithm);
        };
        let oaep = oaep_alg(alg)?;
        let mut out = zeroize::Zeroizing::new(vec![0u8; key.min_output_size()]);
        let n = key
            .decrypt(oaep, ciphertext, &mut out, None)
            .map_err(|_| AsymError::BadCiphertext)?
            .len();
        Ok(Secret::from_slice(&out[..n]))
    }

    /// HMAC of `message`.
    pub fn mac(&self, message: &[u8]) -> Result<Vec<u8>, AsymError> {
        let Inner::Hmac(key) = &self.inner else {
            return Err(AsymError::Algorithm);
        };
        Ok(hmac::sign(key, message).as_ref().to_vec())
    }

    /// Constant-time HMAC verification.
    pub fn verify_mac(&self, message: &[u8], mac: &[u8]) -> Result<(), AsymError> {
        let Inner::Hmac(key) = &self.inner else {
            return Err(AsymError::Algorithm);
        };
        hmac::verify(key, message, mac).map_err(|_| AsymError::BadSignature)
    }

    /// ECDH with a peer public key given as DER SubjectPublicKeyInfo on
    /// this key's curve; returns the raw shared secret (the x coordinate).
    pub fn derive(&self, peer_spki: &[u8]) -> Result<Secret, AsymError> {
        let Inner::Ecdh(key) = &self.inner else {
            return Err(AsymError::Algorithm);
        };
        let parsed = agreement::ParsedPublicKey::try_from(agreement::UnparsedPublicKey::new(
            key.algorithm(),
            peer_spki,
        ))
        .map_err(|_| AsymError::BadPublicKey)?;
        if parsed.format() != agreement::ParsedPublicKeyFormat::X509 {
            return Err(AsymError::BadPublicKey);
        }
        agreement::agree(key, parsed, AsymError::BadPublicKey, |s| {
            Ok(Secret::from_slice(s))
        })
    }

    /// ML-KEM encapsulation to this key: (ciphertext, shared secret).
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Secret), AsymError> {
        let Inner::MlKem(_, ek) = &self.inner else {
            return Err(AsymError::Algorithm);
        };
        let (ct, ss) = ek.encapsulate().map_err(|_| AsymError::Failed)?;
        Ok((ct.as_ref().to_vec(), Secret::from_slice(ss.as_ref())))
    }

    /// ML-KEM decapsulation.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Secret, AsymError> {
        let Inner::MlKem(dk, _) = &self.inner else {
            return Err(AsymError::Algorithm);
        };
        let ss = dk
            .decapsulate(kem::Ciphertext::from(ciphertext))
            .map_err(|_| AsymError::BadCiphertext)?;
        Ok(Secret::from_slice(ss.as_ref()))
    }
}

/// PH(M) for ED25519_PH_SHA_512: SHA-512 of a RAW message, or the
/// 64-byte DIGEST as given.
fn ed25519_prehash(kind: MessageType, message: &[u8]) -> Result<[u8; 64], AsymError> {
    match kind {
        MessageType::Raw => Ok(ed25519ph::prehash(message)),
        MessageType::Digest => <[u8; 64]>::try_from(message).map_err(|_| AsymError::DigestLength),
        MessageType::ExternalMu => Err(AsymError::Algorithm),
    }
}

fn oaep_alg(alg: EncryptionAlgorithm) -> Result<&'static rsa::OaepAlgorithm, AsymError> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok(&rsa::OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok(&rsa::OAEP_SHA256_MGF1SHA256),
        EncryptionAlgorithm::SymmetricDefault | EncryptionAlgorithm::Sm2pke => {
            Err(AsymError::Algorithm)
        }
    }
}

/// A data key pair: (public key DER SPKI, private key DER PKCS#8).
pub fn generate_data_key_pair(spec: KeySpec) -> Result<(Vec<u8>, Secret), AsymError> {
    if let Some(size) = rsa_size(spec) {
        let kp = m(rsa::KeyPair::generate(size))?;
        let public = m(kp.public_key().as_der())?.as_ref().to_vec();
        return Ok((public, Secret::new(m(kp.as_der())?.as_ref().to_vec())));
    }
    if let Some(alg) = ecdsa_signing(spec) {
        let kp = m(sig::EcdsaKeyPair::generate(alg))?;
        let public = m(kp.public_key().as_der())?.as_ref().to_vec();
        return Ok((public, Secret::new(m(kp.to_pkcs8v1())?.as_ref().to_vec())));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let kp = m(sig::Ed25519KeyPair::generate())?;
        let public = m(kp.public_key().as_der())?.as_ref().to_vec();
        return Ok((public, Secret::new(m(kp.to_pkcs8v1())?.as_ref().to_vec())));
    }
    if let Some((_, n)) = mlkem_alg(spec) {
        // The seed form (d ‖ z, 64 bytes), which most ML-KEM libraries read;
        // RustCrypto's ml-kem derives the encapsulation key from it
        // (aws-lc-rs cannot take seeds).
        let seed = crate::crypto::random_bytes(64).map_err(|_| AsymError::Material)?;
        let ek = mlkem_ek_from_seed(spec, seed.expose())?;
        let public = mlkem_spki(n, &ek);
        return Ok((public, Secret::new(mlkem_pkcs8_seed(n, seed.expose()))));
    }
    Err(AsymError::Algorithm)
}

/// The encapsulation key of the ML-KEM key with this 64-byte seed
/// (FIPS 203 ML-KEM.KeyGen_internal(d, z)).
fn mlkem_ek_from_seed(spec: KeySpec, seed: &[u8]) -> Result<Vec<u8>, AsymError> {
    use ml_kem::{DecapsulationKey, KeyExport, MlKem1024, MlKem512, MlKem768, Seed};
    let seed = Seed::try_from(seed).map_err(|_| AsymError::Material)?;
    Ok(match spec {
        KeySpec::MlKem512 => DecapsulationKey::<MlKem512>::from_seed(seed)
            .encapsulation_key()
            .to_bytes()
            .to_vec(),
        KeySpec::MlKem768 => DecapsulationKey::<MlKem768>::from_seed(seed)
            .encapsulation_key()
            .to_bytes()
            .to_vec(),
        KeySpec::MlKem1024 => DecapsulationKey::<MlKem1024>::from_seed(seed)
            .encapsulation_key()
            .to_bytes()
            .to_vec(),
        _ => return Err(AsymError::Algorithm),
    })
}

// --- minimal DER for ML-KEM keys (aws-lc-rs has no DER encoding for them)

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// AlgorithmIdentifier of id-alg-ml-kem-{512,768,1024}
/// (2.16.840.1.101.3.4.4.{1,2,3}, no parameters).
fn mlkem_alg_id(n: u8) -> Vec<u8> {
    der(
        0x30,
        &der(0x06, &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, n]),
    )
}

/// The encapsulation key inside a FIPS 203 decapsulation key
/// (`dk = dk_PKE ‖ ek ‖ H(ek) ‖ z`, `|dk_PKE| = 384·k`, `|ek| = 384·k + 32`,
/// k = 2, 3, 4 for ML-KEM-512/768/1024).
fn mlkem_ek_of_dk(n: u8, dk: &[u8]) -> Result<&[u8], AsymError> {
    let k = usize::from(n) + 1;
    dk.get(384 * k..384 * k + 384 * k + 32)
        .ok_or(AsymError::Material)
}

/// SubjectPublicKeyInfo of an ML-KEM encapsulation key.
pub fn mlkem_spki(n: u8, ek: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(ek);
    let mut body = mlkem_alg_id(n);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// PKCS#8 PrivateKeyInfo of an ML-KEM key in the `seed` form
/// (`ML-KEM-PrivateKey ::= CHOICE { seed [0] OCTET STRING (SIZE (64)), ... }`).
fn mlkem_pkcs8_seed(n: u8, seed: &[u8]) -> Vec<u8> {
    let mut body = der(0x02, &[0]);
    body.extend(mlkem_alg_id(n));
    body.extend(der(0x04, &der(0x80, seed)));
    der(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SigningAlgorithm as S;

    fn key(spec: KeySpec, usage: KeyUsage) -> KeyMaterial {
        let bytes = generate(spec, usage).unwrap();
        KeyMaterial::load(spec, usage, bytes.expose())
            .unwrap_or_else(|e| panic!("{spec:?} {usage:?}: {e}"))
    }

    #[test]
    fn every_signing_key_signs_and_verifies_raw_and_digest() {
        for spec in KeySpec::SUPPORTED {
            if !spec.usages().contains(&KeyUsage::SignVerify) || spec == KeySpec::Rsa4096 {
                continue;
            }
            let k = key(spec, KeyUsage::SignVerify);
            assert!(k.public_key_der().starts_with(&[0x30]));
            for &alg in spec.signing_algorithms(KeyUsage::SignVerify) {
                let s = k.sign(alg, MessageType::Raw, b"hello").unwrap();
                k.verify(alg, MessageType::Raw, b"hello", &s).unwrap();
                assert_eq!(
                    k.verify(alg, MessageType::Raw, b"hellO", &s),
                    Err(AsymError::BadSignature),
                    "{spec:?} {alg:?}"
                );
                if let Some(d) = digest_alg(alg) {
                    let dg = digest::digest(d, b"hello");
                    // A digest signature verifies as a raw message and back.
                    let s2 = k.sign(alg, MessageType::Digest, dg.as_ref()).unwrap();
                    k.verify(alg, MessageType::Raw, b"hello", &s2).unwrap();
                    k.verify(alg, MessageType::Digest, dg.as_ref(), &s).unwrap();
                    assert_eq!(
                        k.sign(alg, MessageType::Digest, &dg.as_ref()[1..]),
                        Err(AsymError::DigestLength)
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_algorithm_for_key() {
        let k = key(KeySpec::EccNistP256, KeyUsage::SignVerify);
        assert_eq!(
            k.verify(S::EcdsaSha384, MessageType::Raw, b"x", b"y"),
            Err(AsymError::Algorithm)
        );
        assert!(k.encrypt(EncryptionAlgorithm::RsaesOaepSha1, b"x").is_err());
    }

    #[test]
    fn rsa_oaep_round_trip_and_limits() {
        let k = key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
        for alg in [
            EncryptionAlgorithm::RsaesOaepSha1,
            EncryptionAlgorithm::RsaesOaepSha256,
        ] {
            let max = alg.max_plaintext(KeySpec::Rsa2048).unwrap();
            let ct = k.encrypt(alg, &vec![7u8; max]).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(k.decrypt(alg, &ct).unwrap().expose(), &vec![7u8; max][..]);
            assert!(k.encrypt(alg, &vec![7u8; max + 1]).is_err());
        }
    }

    #[test]
    fn hmac_ecdh_mlkem() {
        for spec in [
            KeySpec::Hmac224,
            KeySpec::Hmac256,
            KeySpec::Hmac384,
            KeySpec::Hmac512,
        ] {
            let k = key(spec, KeyUsage::GenerateVerifyMac);
            let t = k.mac(b"m").unwrap();
            assert_eq!(t.len(), spec.hmac_key_len().unwrap());
            k.verify_mac(b"m", &t).unwrap();
            assert!(k.verify_mac(b"n", &t).is_err());
        }
        let a = key(KeySpec::EccNistP384, KeyUsage::KeyAgreement);
        let b = key(KeySpec::EccNistP384, KeyUsage::KeyAgreement);
        let s1 = a.derive(b.public_key_der()).unwrap();
        let s2 = b.derive(a.public_key_der()).unwrap();
        assert_eq!(s1.expose(), s2.expose());
        assert_eq!(s1.len(), 48);
        let other_curve = key(KeySpec::EccNistP256, KeyUsage::KeyAgreement);
        assert_eq!(
            a.derive(other_curve.public_key_der()).err(),
            Some(AsymError::BadPublicKey)
        );
        for spec in [KeySpec::MlKem512, KeySpec::MlKem768, KeySpec::MlKem1024] {
            let k = key(spec, KeyUsage::EncapsulateDecapsulate);
            let (ct, ss) = k.encapsulate().unwrap();
            assert_eq!(k.decapsulate(&ct).unwrap().expose(), ss.expose());
            assert!(k.decapsulate(&ct[1..]).is_err());
            assert_eq!(k.public_key_der()[0], 0x30);
        }
    }

    /// A seed-form ML-KEM data key pair: the public key from ml-kem takes
    /// aws-lc encapsulations that ml-kem decapsulates.
    #[test]
    fn mlkem_seed_pairs_agree_with_aws_lc() {
        use ml_kem::{Decapsulate, DecapsulationKey, MlKem768, Seed};
        let (public, private) = generate_data_key_pair(KeySpec::MlKem768).unwrap();
        let p = private.expose();
        assert_eq!(&p[p.len() - 66..p.len() - 64], &[0x80, 0x40]);
        let seed = Seed::try_from(&p[p.len() - 64..]).unwrap();
        let ek =
            kem::EncapsulationKey::new(&kem::ML_KEM_768, &public[public.len() - 1184..]).unwrap();
        let (ct, ss) = ek.encapsulate().unwrap();
        let dk = DecapsulationKey::<MlKem768>::from_seed(seed);
        let ct = ml_kem::Ciphertext::<MlKem768>::try_from(ct.as_ref()).unwrap();
        assert_eq!(dk.decapsulate(&ct).as_slice(), ss.as_ref());
    }

    #[test]
    fn data_key_pairs_parse_back() {
        for spec in crate::keys::spec::DATA_KEY_PAIR_SPECS {
            if spec == KeySpec::Rsa4096 || spec == KeySpec::Rsa3072 {
                continue;
            }
            let (public, private) = generate_data_key_pair(spec).unwrap();
            assert_eq!(public[0], 0x30, "{spec:?}");
            assert_eq!(private.expose()[0], 0x30, "{spec:?}");
        }
    }
}
